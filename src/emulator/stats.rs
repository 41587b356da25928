//! Request counts, so that tests and benchmarks can assert how many calls a command made and
//! whether any of them could have changed the workspace.
//!
//! A request is *mutating* when it may change what a dump of the workspace would show: every
//! `POST`, `PUT`, `PATCH` and `DELETE`, except those that only read (listing latest model
//! versions, issuing OAuth tokens, command execution of dbxport's read-only snippets, and SQL
//! statements that only `SHOW` or `USE`). Routes are keyed `METHOD /route/pattern`, e.g.
//! `GET /api/2.0/workspace/list` or `GET /api/2.0/repos/{id}`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Counts of one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    /// Requests served by the route.
    pub count: u64,
    /// Of those, how many were mutating.
    pub mutating: u64,
    /// Responses by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
}

/// Counts of one rate-limit class (see [`crate::emulator::limit_class`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStats {
    /// Requests received, 429s included.
    pub requests: u64,
    /// Of those, how many a rate limit answered 429.
    pub throttled: u64,
}

/// A snapshot of the request counters since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every request received, whatever became of it (control endpoints under `/emulator/`
    /// excluded).
    pub total: u64,
    /// Requests a route served that only read.
    pub read: u64,
    /// Requests a route served that may have changed the workspace.
    pub mutating: u64,
    /// Requests answered 429 by a rate limit.
    pub throttled: u64,
    /// Requests answered with an injected error.
    pub injected_errors: u64,
    /// Connections closed without an answer.
    pub dropped: u64,
    /// Requests refused for a missing or wrong credential.
    pub unauthenticated: u64,
    /// Requests no route serves (answered `ENDPOINT_NOT_FOUND`).
    pub unknown_endpoints: u64,
    /// Per route.
    pub routes: BTreeMap<String, RouteStats>,
    /// Per rate-limit class (`workspace.export`, `permissions.read`, `dbfs`, …), every request
    /// received.
    pub classes: BTreeMap<String, ClassStats>,
}

impl Stats {
    /// Requests served by `route` (`"GET /api/2.0/workspace/list"`).
    pub fn count(&self, route: &str) -> u64 {
        self.routes.get(route).map(|r| r.count).unwrap_or(0)
    }

    /// The counts of rate-limit class `class` (zero when it saw no request).
    pub fn class(&self, class: &str) -> ClassStats {
        self.classes.get(class).cloned().unwrap_or_default()
    }

    /// Requests served by every route of `method`.
    pub fn count_method(&self, method: &str) -> u64 {
        let prefix = format!("{method} ");
        self.routes
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, r)| r.count)
            .sum()
    }

    /// The routes that served at least one mutating request, sorted.
    pub fn mutating_routes(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|(_, r)| r.mutating > 0)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    inner: Mutex<Stats>,
}

impl StatsRecorder {
    fn with(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }

    pub fn received(&self, class: &str) {
        self.with(|s| {
            s.total += 1;
            s.classes.entry(class.to_string()).or_default().requests += 1;
        });
    }

    pub fn throttled(&self, class: &str) {
        self.with(|s| {
            s.throttled += 1;
            s.classes.entry(class.to_string()).or_default().throttled += 1;
        });
    }

    pub fn injected_error(&self) {
        self.with(|s| s.injected_errors += 1);
    }

    pub fn dropped(&self) {
        self.with(|s| s.dropped += 1);
    }

    pub fn unauthenticated(&self) {
        self.with(|s| s.unauthenticated += 1);
    }

    pub fn unknown_endpoint(&self) {
        self.with(|s| s.unknown_endpoints += 1);
    }

    /// Records one request a route served.
    pub fn served(&self, route: String, mutating: bool, status: u16) {
        self.with(|s| {
            if mutating {
                s.mutating += 1;
            } else {
                s.read += 1;
            }
            let r = s.routes.entry(route).or_default();
            r.count += 1;
            if mutating {
                r.mutating += 1;
            }
            *r.statuses.entry(status).or_default() += 1;
        });
    }

    pub fn snapshot(&self) -> Stats {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.with(|s| *s = Stats::default());
    }
}
