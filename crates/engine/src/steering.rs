//! Steering: messages a person sends to a job while it works. The runner that owns the run
//! holds the [`SteeringSender`]; the engine drains its [`Steering`] at each model turn
//! boundary, so a message never interrupts a tool call or a streaming answer.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// The engine's end: what arrived since the last look, without waiting.
#[derive(Clone, Default)]
pub struct Steering {
    inbox: Arc<Mutex<Option<mpsc::UnboundedReceiver<String>>>>,
}

/// The runner's end: hands a message to the job.
#[derive(Clone, Debug)]
pub struct SteeringSender(mpsc::UnboundedSender<String>);

impl Steering {
    /// A connected pair; a [`Steering::default`] never receives anything.
    pub fn channel() -> (SteeringSender, Steering) {
        let (tx, rx) = mpsc::unbounded_channel();
        let steering = Steering {
            inbox: Arc::new(Mutex::new(Some(rx))),
        };
        (SteeringSender(tx), steering)
    }

    /// Every message that arrived since the last call, oldest first.
    pub fn take(&self) -> Vec<String> {
        let mut taken = Vec::new();
        let Ok(mut inbox) = self.inbox.lock() else {
            return taken;
        };
        if let Some(rx) = inbox.as_mut() {
            while let Ok(text) = rx.try_recv() {
                taken.push(text);
            }
        }
        taken
    }
}

impl SteeringSender {
    /// Hands `text` to the job; false once the job has ended.
    pub fn send(&self, text: String) -> bool {
        self.0.send(text).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_arrive_in_order_once() {
        let (tx, steering) = Steering::channel();
        assert!(tx.send("one".into()));
        assert!(tx.send("two".into()));
        let copy = steering.clone();
        assert_eq!(copy.take(), ["one", "two"]);
        assert!(steering.take().is_empty());
        assert!(Steering::default().take().is_empty());
    }
}
