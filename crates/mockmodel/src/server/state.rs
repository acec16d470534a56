//! What all requests of one server share: the script, attempt counters, the recorded requests
//! and violations, the id counter and the simulated prompt cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use crate::cache::PromptCache;
use crate::plan::Plan;
use crate::recorded::{RecordedRequest, ReportedUsage};
use crate::script::Script;

/// State shared by all requests of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(super) script: Script,
    /// Requests seen so far per (scenario index, turn index), for attempt selection.
    counters: Mutex<HashMap<(usize, usize), usize>>,
    /// Requests answered so far per sequential scenario, for its turn selection.
    sequences: Mutex<HashMap<usize, usize>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// When each of `requests` arrived (pushed under its lock, so the two stay aligned).
    arrivals: Mutex<Vec<Instant>>,
    violations: Mutex<Vec<String>>,
    next_id: AtomicU64,
    pub(super) cache: PromptCache,
}

impl Shared {
    pub(crate) fn new(script: Script) -> Shared {
        Shared {
            script,
            counters: Mutex::new(HashMap::new()),
            sequences: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            cache: PromptCache::default(),
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub(crate) fn arrivals(&self) -> Vec<Instant> {
        lock(&self.arrivals).clone()
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }

    /// A fresh number for generated ids (tool calls, messages).
    pub(super) fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a request and when it arrived; returns its index.
    pub(super) fn record(&self, request: RecordedRequest) -> usize {
        let arrived = Instant::now();
        let mut requests = lock(&self.requests);
        lock(&self.arrivals).push(arrived);
        requests.push(request);
        requests.len() - 1
    }

    /// Notes the usage the answer to request `index` reports, once it is planned.
    pub(super) fn report_usage(&self, index: usize, plan: &Plan) {
        if let Some(recorded) = lock(&self.requests).get_mut(index)
            && plan.report_usage
        {
            recorded.usage = Some(ReportedUsage {
                input_tokens: plan.input_tokens,
                output_tokens: plan.output_tokens,
                cache_read_tokens: plan.cache_read_tokens,
                cache_write_tokens: plan.cache_write_tokens,
            });
        }
    }

    /// Counts a tool-result invariant violation.
    pub(super) fn violation(&self, message: String) {
        lock(&self.violations).push(message);
    }

    /// The turn a sequential `scenario` plays next: how many requests it answered before.
    pub(super) fn next_in_sequence(&self, scenario: usize) -> usize {
        let mut sequences = lock(&self.sequences);
        let counter = sequences.entry(scenario).or_insert(0);
        let turn = *counter;
        *counter += 1;
        turn
    }

    /// Which request for (`scenario`, `turn`) this is, counting from 0.
    pub(super) fn next_attempt(&self, scenario: usize, turn: usize) -> usize {
        let mut counters = lock(&self.counters);
        let counter = counters.entry((scenario, turn)).or_insert(0);
        let k = *counter;
        *counter += 1;
        k
    }
}

/// Locks a mutex, ignoring poisoning (the data stays usable: only appends happen under it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What handlers get: the shared state and the shutdown signal for open streams.
#[derive(Clone)]
pub(super) struct App {
    pub(super) shared: Arc<Shared>,
    pub(super) stop: watch::Receiver<bool>,
}
