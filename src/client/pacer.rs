//! A learned request rate per API family, so that a run converges on a workspace's rate limit
//! instead of oscillating between bursts and 429 pauses.
//!
//! Until a family is rate-limited it is not paced at all. When a 429 arrives (a new loss, not
//! one of a burst already counted), the family's rate becomes 95% of the rate at which its
//! requests actually succeeded over the last ten seconds — what the server let through,
//! including any burst allowance it had saved up, so the first estimates are high and later
//! ones settle just below the limit. While no 429 arrives the rate grows by 2% a second, so a
//! limit that is raised, or an estimate that came out low, is found again. Requests of a paced
//! family start at most at that rate, evenly spaced. 503 answers (overload, injected errors)
//! teach nothing here: they slow the client through the concurrency limiter only.
//!
//! A family is the API area of a path (`workspace`, `permissions`, `jobs`, …), the unit real
//! workspaces rate-limit by.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How far back successes are counted.
const WINDOW: Duration = Duration::from_secs(10);
/// The rate after a loss, as a share of the rate that succeeded.
const DECREASE: f64 = 0.95;
/// Growth per second without a loss.
const INCREASE_PER_SEC: f64 = 0.02;
/// Successes needed in the window before a rate is learned from it.
const MIN_SAMPLES: usize = 20;
/// The lowest rate ever set, in requests per second.
const MIN_RATE: f64 = 1.0;

#[derive(Debug)]
struct Pace {
    rate: Option<f64>,
    next: Instant,
    ok: VecDeque<Instant>,
    first: Instant,
    last_change: Instant,
}

impl Pace {
    fn new(now: Instant) -> Pace {
        Pace {
            rate: None,
            next: now,
            ok: VecDeque::new(),
            first: now,
            last_change: now,
        }
    }

    fn trim(&mut self, now: Instant) {
        while self
            .ok
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            self.ok.pop_front();
        }
    }
}

/// Learned rates of every family.
#[derive(Debug, Default)]
pub struct Pacer {
    families: Mutex<HashMap<String, Pace>>,
}

/// The family of a request path: the API area after `/api/<version>/` (`workspace`,
/// `permissions`, `preview`), else the first segment.
pub fn family(path: &str) -> &str {
    let mut parts = path.trim_start_matches('/').split('/');
    match parts.next() {
        Some("api") => {
            parts.next();
            parts.next().unwrap_or("api")
        }
        Some(first) => first,
        None => "",
    }
}

impl Pacer {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pace>> {
        self.families.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the next start slot of `family` when it is paced.
    pub async fn wait(&self, family: &str) {
        if let Some(at) = self.slot(family, Instant::now()) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Reserves the next start slot of `family` at or after `now`; `None` when unpaced.
    fn slot(&self, family: &str, now: Instant) -> Option<Instant> {
        let mut m = self.lock();
        let p = m.get_mut(family)?;
        let rate = p.rate?;
        let at = p.next.max(now);
        p.next = at + Duration::from_secs_f64(1.0 / rate);
        Some(at)
    }

    /// Records a success of `family`; raises its rate while no loss comes.
    pub fn on_success(&self, family: &str) {
        self.success_at(family, Instant::now());
    }

    fn success_at(&self, family: &str, now: Instant) {
        let mut m = self.lock();
        let p = m
            .entry(family.to_string())
            .or_insert_with(|| Pace::new(now));
        p.ok.push_back(now);
        p.trim(now);
        if let Some(rate) = p.rate {
            let since = now.duration_since(p.last_change).as_secs_f64();
            if since >= 1.0 {
                p.rate = Some(rate * (1.0 + INCREASE_PER_SEC).powf(since));
                p.last_change = now;
            }
        }
    }

    /// Records a 429 of `family` that counts as a new loss: sets the rate from what succeeded.
    pub fn on_throttle(&self, family: &str) {
        self.throttle_at(family, Instant::now());
    }

    fn throttle_at(&self, family: &str, now: Instant) {
        let mut m = self.lock();
        let p = m
            .entry(family.to_string())
            .or_insert_with(|| Pace::new(now));
        p.trim(now);
        if p.ok.len() < MIN_SAMPLES {
            return;
        }
        let span = now
            .duration_since(p.first)
            .min(WINDOW)
            .as_secs_f64()
            .max(0.1);
        let succeeded = p.ok.len() as f64 / span;
        let learned = (succeeded * DECREASE).max(MIN_RATE);
        p.rate = Some(p.rate.map_or(learned, |r| r.min(learned).max(MIN_RATE)));
        p.last_change = now;
        tracing::debug!(target: "dbxport::client", family, rate = p.rate.unwrap_or(0.0), "learned a request rate");
    }

    /// The learned rate of `family`, if it is paced.
    pub fn rate(&self, family: &str) -> Option<f64> {
        self.lock().get(family).and_then(|p| p.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family("/api/2.0/workspace/export"), "workspace");
        assert_eq!(family("/api/2.0/permissions/notebooks/1"), "permissions");
        assert_eq!(family("/api/2.2/jobs/list"), "jobs");
        assert_eq!(family("/oidc/v1/token"), "oidc");
    }

    #[test]
    fn learns_below_what_succeeded_then_paces_evenly() {
        let p = Pacer::default();
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        // Nothing learned from too few samples.
        p.success_at("ws", at(0));
        p.throttle_at("ws", at(10));
        assert_eq!(p.rate("ws"), None);
        assert_eq!(p.slot("ws", at(10)), None);
        // 100 successes over 2 s = 50/s; a loss sets 47.5/s.
        for i in 1..=100 {
            p.success_at("ws", at(i * 20));
        }
        p.throttle_at("ws", at(2000));
        let r = p.rate("ws").unwrap();
        assert!((46.0..49.0).contains(&r), "{r}");
        // Other families are not paced.
        assert_eq!(p.rate("jobs"), None);
        // Starts are spaced 1/rate apart.
        let slots: Vec<Instant> = (0..10).map(|_| p.slot("ws", at(2000)).unwrap()).collect();
        let step = slots[9].duration_since(slots[0]).as_secs_f64() / 9.0;
        assert!((step - 1.0 / r).abs() < 1e-6, "{step}");
        // Without losses the rate grows 2% a second.
        p.success_at("ws", at(12_000));
        let grown = p.rate("ws").unwrap();
        assert!(grown > r * 1.20 && grown < r * 1.24, "{r} → {grown}");
        // A later loss never raises the rate, even with fast successes just before it.
        for i in 0..200 {
            p.success_at("ws", at(12_000 + i));
        }
        p.throttle_at("ws", at(12_300));
        assert!(p.rate("ws").unwrap() <= grown);
    }
}
