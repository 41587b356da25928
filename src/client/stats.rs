//! Request counters for reports: every HTTP request sent (retries and token requests
//! included), grouped by method and route, plus retries, throttled answers and final failures.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// HTTP requests sent, every attempt counted.
    pub requests: u64,
    /// Attempts that were retries of an earlier attempt.
    pub retries: u64,
    /// 429 and 503 answers.
    pub throttled: u64,
    /// Calls that finally failed (after any retries).
    pub failures: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Requests per `METHOD route` (ids in routes are templated, e.g. `GET /api/2.0/repos/{id}`).
    pub by_call: BTreeMap<String, u64>,
    /// The concurrency limit now.
    pub concurrency_limit: usize,
    /// The lowest concurrency limit throttling brought it to.
    pub min_concurrency_limit: usize,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    failures: AtomicU64,
    bytes_received: AtomicU64,
    by_call: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub(crate) fn request(&self, key: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut m = self.by_call.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(key.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn throttle(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, limit: usize, min_limit: usize) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            by_call: self
                .by_call
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            concurrency_limit: limit,
            min_concurrency_limit: min_limit,
        }
    }
}
