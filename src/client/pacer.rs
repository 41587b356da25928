//! A learned request rate for the workspace, so that a run converges on its rate limit
//! instead of oscillating between bursts and 429 pauses.
//!
//! Until the workspace answers 429 nothing is paced. When a 429 arrives (a new loss, not one
//! of a burst already counted), the rate becomes 95% of the rate at which requests actually
//! succeeded over the last ten seconds of activity (a pause between two successes, such as an
//! import verifying its bundle after planning, is not counted: idle time would make the
//! estimate far too low) — what the server let through, including any burst allowance it had
//! saved up, so the first estimates are high and later ones settle just below the limit.
//! While no 429 arrives the rate grows by 2% a second, so a limit that is raised, or an
//! estimate that came out low, is found again. Requests start at most at that rate, evenly
//! spaced. 503 answers (overload, injected errors) teach nothing here: they slow the client
//! through the concurrency limiter only.
//!
//! One rate for the whole client, not one per API family: a workspace may limit each family
//! or all of them together, and a client cannot tell which. Export and import move their
//! families in lockstep (an object's content call, then its permissions call), so one pace
//! over the total is within a few percent of the best either way; separate paces learned
//! under a shared limit each froze at the share their family happened to have at its first
//! 429 (measured: 181 of 200 requests/s, against 197 with one pace).

use std::collections::VecDeque;
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
/// A longer pause between two successes ends a busy period; the rate is measured over the
/// latest one only.
const IDLE_GAP: Duration = Duration::from_millis(500);

#[derive(Debug)]
struct Pace {
    rate: Option<f64>,
    next: Instant,
    ok: VecDeque<Instant>,
    last_change: Instant,
}

impl Pace {
    fn new(now: Instant) -> Pace {
        Pace {
            rate: None,
            next: now,
            ok: VecDeque::new(),
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

    /// Successes per second over the latest busy period within the window, from enough
    /// samples; `None` otherwise.
    fn busy_rate(&self, now: Instant) -> Option<f64> {
        let newest = *self.ok.back()?;
        // The period ends now, unless the family has been idle since its last success.
        let end = if now.duration_since(newest) > IDLE_GAP {
            newest
        } else {
            now
        };
        let mut count = 0usize;
        let mut oldest = newest;
        for t in self.ok.iter().rev() {
            if oldest.duration_since(*t) > IDLE_GAP {
                break;
            }
            count += 1;
            oldest = *t;
        }
        if count < MIN_SAMPLES {
            return None;
        }
        let span = end.duration_since(oldest).as_secs_f64().max(0.1);
        Some(count as f64 / span)
    }
}

/// The learned rate of one workspace.
#[derive(Debug)]
pub struct Pacer {
    pace: Mutex<Pace>,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer {
            pace: Mutex::new(Pace::new(Instant::now())),
        }
    }
}

impl Pacer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the next start slot when requests are paced.
    pub async fn wait(&self) {
        if let Some(at) = self.slot(Instant::now()) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Reserves the next start slot at or after `now`; `None` when unpaced.
    fn slot(&self, now: Instant) -> Option<Instant> {
        let mut p = self.lock();
        let rate = p.rate?;
        let at = p.next.max(now);
        p.next = at + Duration::from_secs_f64(1.0 / rate);
        Some(at)
    }

    /// Records a success; raises the rate while no loss comes.
    pub fn on_success(&self) {
        self.success_at(Instant::now());
    }

    fn success_at(&self, now: Instant) {
        let mut p = self.lock();
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

    /// Records a 429 that counts as a new loss: sets the rate from what succeeded.
    pub fn on_throttle(&self) {
        self.throttle_at(Instant::now());
    }

    fn throttle_at(&self, now: Instant) {
        let mut p = self.lock();
        p.trim(now);
        let Some(succeeded) = p.busy_rate(now) else {
            return;
        };
        let learned = (succeeded * DECREASE).max(MIN_RATE);
        p.rate = Some(p.rate.map_or(learned, |r| r.min(learned).max(MIN_RATE)));
        p.last_change = now;
        tracing::debug!(target: "dbxport::client", rate = p.rate.unwrap_or(0.0), "learned a request rate");
    }

    /// The learned rate, if requests are paced.
    pub fn rate(&self) -> Option<f64> {
        self.lock().rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_below_what_succeeded_then_paces_evenly() {
        let p = Pacer::default();
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        // Nothing learned from too few samples.
        p.success_at(at(0));
        p.throttle_at(at(10));
        assert_eq!(p.rate(), None);
        assert_eq!(p.slot(at(10)), None);
        // 100 successes over 2 s = 50/s; a loss sets 47.5/s.
        for i in 1..=100 {
            p.success_at(at(i * 20));
        }
        p.throttle_at(at(2000));
        let r = p.rate().unwrap();
        assert!((46.0..49.0).contains(&r), "{r}");
        // Starts are spaced 1/rate apart.
        let slots: Vec<Instant> = (0..10).map(|_| p.slot(at(2000)).unwrap()).collect();
        let step = slots[9].duration_since(slots[0]).as_secs_f64() / 9.0;
        assert!((step - 1.0 / r).abs() < 1e-6, "{step}");
        // Without losses the rate grows 2% a second.
        p.success_at(at(12_000));
        let grown = p.rate().unwrap();
        assert!(grown > r * 1.20 && grown < r * 1.24, "{r} → {grown}");
        // A later loss never raises the rate, even with fast successes just before it.
        for i in 0..200 {
            p.success_at(at(12_000 + i));
        }
        p.throttle_at(at(12_300));
        assert!(p.rate().unwrap() <= grown);
    }

    #[test]
    fn idle_time_before_a_burst_does_not_lower_the_estimate() {
        let p = Pacer::default();
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        // A few reads while planning, then 5 s of other work, then writes at 250/s.
        for i in 0..30 {
            p.success_at(at(i * 5));
        }
        for i in 0..250 {
            p.success_at(at(5_000 + i * 4));
        }
        p.throttle_at(at(6_000));
        let r = p.rate().unwrap();
        assert!((230.0..245.0).contains(&r), "{r}");
    }
}
