//! Publication of run events behind one interface. The persisted log is the source of
//! truth; the bus only wakes followers. In-process it carries the events themselves;
//! with PostgreSQL, `LISTEN/NOTIFY` tells the instances that follow a run from elsewhere
//! that it has new events, and their followers read them from the log. The store sends
//! that `NOTIFY` in the statement that appends the events
//! ([`draftsmith_store::RUN_EVENTS_CHANNEL`]), so it costs no round trip of its own and
//! arrives only once they are committed, and only while such a follower watches the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use draftsmith_core::{InstanceId, RunEvent, RunId, Timestamp};
use draftsmith_store::Store;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The `NOTIFY` channel carrying `run_id:seq`.
const CHANNEL: &str = draftsmith_store::RUN_EVENTS_CHANNEL;
/// Buffer per run; a follower that falls further behind reads the log instead.
const CAPACITY: usize = 256;

/// What a follower is woken with.
#[derive(Debug, Clone)]
pub enum BusMessage {
    /// The event itself (published in this process).
    Event(Arc<RunEvent>),
    /// The run has events up to this `seq`; read them from the log.
    Hint(i64),
}

/// Wakes followers of a run.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Announces a persisted event.
    async fn publish(&self, event: &RunEvent);
    /// Announces events persisted together, in order.
    async fn publish_all(&self, events: &[RunEvent]) {
        for event in events {
            self.publish(event).await;
        }
    }
    /// Follows a run from now on.
    fn subscribe(&self, run: RunId) -> broadcast::Receiver<BusMessage>;
}

/// Followers in this process.
#[derive(Default)]
pub struct LocalBus {
    runs: Mutex<HashMap<RunId, broadcast::Sender<BusMessage>>>,
}

impl LocalBus {
    /// The runs someone here follows.
    fn followed(&self) -> Vec<RunId> {
        let Ok(runs) = self.runs.lock() else {
            return Vec::new();
        };
        runs.iter()
            .filter(|(_, sender)| sender.receiver_count() > 0)
            .map(|(run, _)| *run)
            .collect()
    }

    fn send(&self, run: RunId, message: BusMessage, terminal: bool) {
        let Ok(mut runs) = self.runs.lock() else {
            return;
        };
        if let Some(sender) = runs.get(&run) {
            let _ = sender.send(message);
        }
        // Drop channels nobody follows, and every channel once its run has ended.
        runs.retain(|id, sender| sender.receiver_count() > 0 && !(terminal && *id == run));
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, event: &RunEvent) {
        let terminal = event.body.terminal_status().is_some();
        self.send(
            event.run_id,
            BusMessage::Event(Arc::new(event.clone())),
            terminal,
        );
    }

    fn subscribe(&self, run: RunId) -> broadcast::Receiver<BusMessage> {
        match self.runs.lock() {
            Ok(mut runs) => runs
                .entry(run)
                .or_insert_with(|| broadcast::channel(CAPACITY).0)
                .subscribe(),
            Err(_) => broadcast::channel(1).1,
        }
    }
}

/// Followers in every instance sharing one PostgreSQL database. A run's events are
/// announced to other instances only while one of them watches it, so this bus watches the
/// runs its followers follow (see [`draftsmith_store::RunStore::watch_runs`]): at once when
/// one subscribes, then every [`WATCH_RENEW`] while any still follows.
pub struct PgBus {
    local: Arc<LocalBus>,
    store: Arc<dyn Store>,
    instance: InstanceId,
}

/// How long a watch lasts unless renewed.
const WATCH_FOR: Duration = Duration::from_secs(30);
/// How often the watches of followed runs are renewed.
const WATCH_RENEW: Duration = Duration::from_secs(10);

impl PgBus {
    /// Connects a listener to `url` and forwards notifications to local followers until
    /// `stop` fires. Notifications about the runs `instance` executes are dropped: their
    /// events are published here in process as they are written, so a hint would only
    /// make each follower read back what it already has (a query per batch of events).
    pub async fn start(
        url: &str,
        store: Arc<dyn Store>,
        instance: InstanceId,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, sqlx::Error> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let local = Arc::new(LocalBus::default());
        let forward = local.clone();
        let listening = stop.clone();
        tokio::spawn(async move {
            loop {
                let notification = tokio::select! {
                    _ = listening.cancelled() => return,
                    n = listener.recv() => n,
                };
                match notification {
                    Ok(n) => {
                        if let Some((run, seq)) = hint(n.payload(), instance) {
                            forward.send(run, BusMessage::Hint(seq), false);
                        }
                    }
                    // PgListener reconnects by itself; followers also poll the log.
                    Err(err) => tracing::warn!(error = %err, "event listener interrupted"),
                }
            }
        });
        let bus = Arc::new(Self {
            local,
            store,
            instance,
        });
        let renewing = bus.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WATCH_RENEW);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = every.tick() => {
                        let followed = renewing.local.followed();
                        watch(renewing.store.as_ref(), renewing.instance, &followed).await;
                    }
                }
            }
        });
        Ok(bus)
    }
}

/// Has `instance` watch `runs` for [`WATCH_FOR`] from now; a failure is logged (followers
/// still poll the log every second).
async fn watch(store: &dyn Store, instance: InstanceId, runs: &[RunId]) {
    if runs.is_empty() {
        return;
    }
    let until = Timestamp::from_micros(Timestamp::now().as_micros() + WATCH_FOR.as_micros() as i64);
    if let Err(err) = store.watch_runs(instance, runs, until).await {
        tracing::warn!(error = %err, runs = runs.len(), "could not watch followed runs");
    }
}

/// The run and seq a notification's `run_id:seq:owner` payload announces, unless the run
/// is one `instance` executes.
fn hint(payload: &str, instance: InstanceId) -> Option<(RunId, i64)> {
    let mut parts = payload.split(':');
    let run = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let owner = parts
        .next()
        .and_then(|owner| owner.parse::<InstanceId>().ok());
    (owner != Some(instance)).then_some((run, seq))
}

#[async_trait]
impl EventBus for PgBus {
    /// Other instances were told by the store as it appended the event.
    async fn publish(&self, event: &RunEvent) {
        self.local.publish(event).await;
    }

    /// Subscribes, and watches the run at once: announcements start with the next append
    /// (the follower reads the log after subscribing, so it misses nothing before).
    fn subscribe(&self, run: RunId) -> broadcast::Receiver<BusMessage> {
        let receiver = self.local.subscribe(run);
        let (store, instance) = (self.store.clone(), self.instance);
        tokio::spawn(async move { watch(store.as_ref(), instance, &[run]).await });
        receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runs_of_other_instances_are_hinted() {
        let (here, there, run) = (InstanceId::new(), InstanceId::new(), RunId::new());
        assert_eq!(hint(&format!("{run}:7:{there}"), here), Some((run, 7)));
        assert_eq!(hint(&format!("{run}:7:{here}"), here), None);
        // A run without an owner, or a payload of the earlier `run_id:seq` form.
        assert_eq!(hint(&format!("{run}:8:"), here), Some((run, 8)));
        assert_eq!(hint(&format!("{run}:9"), here), Some((run, 9)));
        assert_eq!(hint("not a run:1", here), None);
        assert_eq!(hint(&format!("{run}:x:{there}"), here), None);
    }
}
