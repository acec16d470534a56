//! Where a run's time goes: its moments as the client and the scripted model saw them,
//! gathered over the timed runs and printed as medians, phase by phase.

use std::time::{Duration, Instant};

use draftsmith_mockmodel::MockModel;

use crate::report::median_of;

/// The moments of one run.
pub struct TimedRun {
    /// When the client sent the request that starts the run.
    pub posted: Instant,
    /// When the service answered `201` (`None` where the run's start has no such answer).
    pub created: Option<Instant>,
    /// When each of the run's model requests reached the model.
    pub requests: Vec<Instant>,
    /// When the client saw the run's end.
    pub ended: Instant,
}

/// Marks a run's moments: taken before its start, told its `201` and its end.
pub struct Clock<'a> {
    model: &'a MockModel,
    arrivals: usize,
    posted: Instant,
    created: Option<Instant>,
}

impl<'a> Clock<'a> {
    /// Starts timing a run whose model requests `model` will receive.
    pub fn start(model: &'a MockModel) -> Self {
        Self {
            model,
            arrivals: model.arrivals().len(),
            posted: Instant::now(),
            created: None,
        }
    }

    /// The service answered `201`.
    pub fn created(&mut self) {
        self.created = Some(Instant::now());
    }

    /// The client saw the run's end.
    pub fn ended(self) -> TimedRun {
        let ended = Instant::now();
        TimedRun {
            posted: self.posted,
            created: self.created,
            requests: self.model.arrivals().split_off(self.arrivals),
            ended,
        }
    }
}

/// Where runs' time went, phase by phase, over the timed runs.
#[derive(Default)]
pub struct Phases {
    /// The create request, POST → `201`.
    create: Vec<Duration>,
    /// From the `201` (or the start) to the first model request.
    to_model: Vec<Duration>,
    /// From one model request to the next, averaged over the run.
    between: Vec<Duration>,
    /// From the last model request to the run's end at the client.
    tail: Vec<Duration>,
}

impl Phases {
    pub fn add(&mut self, run: &TimedRun) {
        let (Some(first), Some(last)) = (run.requests.first(), run.requests.last()) else {
            return;
        };
        let head = run.created.unwrap_or(run.posted);
        if let Some(created) = run.created {
            self.create.push(created - run.posted);
        }
        self.to_model.push(first.saturating_duration_since(head));
        if let Ok(gaps) = u32::try_from(run.requests.len() - 1)
            && gaps > 0
        {
            self.between.push((*last - *first) / gaps);
        }
        self.tail.push(run.ended.saturating_duration_since(*last));
    }

    /// One line of medians, in milliseconds.
    pub fn print(&self, label: &str) {
        let ms = |times: &[Duration]| {
            median_of(times.to_vec()).map_or_else(
                || "-".to_owned(),
                |t| format!("{:.3}", t.as_secs_f64() * 1e3),
            )
        };
        println!(
            "  phases{label} (median ms): POST → 201 {}, → first model request {}, \
             between model requests {}, last model request → end {}",
            ms(&self.create),
            ms(&self.to_model),
            ms(&self.between),
            ms(&self.tail)
        );
    }
}
