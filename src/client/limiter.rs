//! Adaptive concurrency for the whole client (AIMD): at most `limit` requests are in flight;
//! a throttled answer (429/503) halves `limit` and pauses every new request until its
//! `Retry-After` has passed; each run of `limit` successes raises `limit` by one again, up to
//! the configured maximum. Losses are counted once per "epoch", so a burst of throttled
//! answers to requests that were sent before the last cut does not collapse the limit to one.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    limit: usize,
    min_limit: usize,
    /// Permits still to be withdrawn from circulation once in-flight requests finish.
    debt: usize,
    successes: usize,
    epoch: u64,
    pause_until: Option<Instant>,
}

/// The shared limiter.
#[derive(Debug)]
pub struct Limiter {
    sem: Arc<Semaphore>,
    max: usize,
    state: Mutex<State>,
}

/// A slot for one request; returns itself to the limiter (or pays down debt) when dropped.
#[derive(Debug)]
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    limiter: Arc<Limiter>,
    /// The epoch the request started in.
    pub epoch: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            p.forget();
            self.limiter.release_one();
        }
    }
}

impl Limiter {
    /// A limiter allowing `max` requests in flight.
    pub fn new(max: usize) -> Arc<Limiter> {
        let max = max.max(1);
        Arc::new(Limiter {
            sem: Arc::new(Semaphore::new(max)),
            max,
            state: Mutex::new(State {
                limit: max,
                min_limit: max,
                debt: 0,
                successes: 0,
                epoch: 0,
                pause_until: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // worse than a slightly wrong limit, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release_one(&self) {
        let mut st = self.lock();
        if st.debt > 0 {
            st.debt -= 1;
        } else {
            self.sem.add_permits(1);
        }
    }

    /// Waits until any throttling pause has passed, then for a free slot.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            let pause = self.lock().pause_until;
            match pause {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        let permit = Arc::clone(&self.sem)
            .acquire_owned()
            .await
            .expect("the limiter's semaphore is never closed");
        let epoch = self.lock().epoch;
        Slot {
            permit: Some(permit),
            limiter: Arc::clone(self),
            epoch,
        }
    }

    /// Records a success: every `limit` successes raise the limit by one.
    pub fn on_success(&self) {
        let mut st = self.lock();
        if st.limit >= self.max {
            return;
        }
        st.successes += 1;
        if st.successes >= st.limit {
            st.successes = 0;
            st.limit += 1;
            if st.debt > 0 {
                st.debt -= 1;
            } else {
                self.sem.add_permits(1);
            }
        }
    }

    /// Records a throttled answer to a request started in `epoch`: halves the limit (once per
    /// epoch) and pauses new requests for `wait`. True when it counted as a new loss (the
    /// first of its epoch).
    pub fn on_throttle(&self, epoch: u64, wait: Duration) -> bool {
        let mut st = self.lock();
        let until = Instant::now() + wait;
        st.pause_until = Some(st.pause_until.map_or(until, |p| p.max(until)));
        st.successes = 0;
        if epoch != st.epoch {
            return false;
        }
        st.epoch += 1;
        if st.limit <= 1 {
            return true;
        }
        let target = (st.limit / 2).max(1);
        let mut cut = st.limit - target;
        st.limit = target;
        st.min_limit = st.min_limit.min(target);
        // Withdraw idle permits now; the rest as in-flight requests finish.
        while cut > 0 {
            match self.sem.try_acquire() {
                Ok(p) => {
                    p.forget();
                    cut -= 1;
                }
                Err(_) => break,
            }
        }
        st.debt += cut;
        true
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// The lowest limit reached so far.
    pub fn min_limit(&self) -> usize {
        self.lock().min_limit
    }

    /// The configured maximum.
    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_once_per_epoch_and_recovers() {
        let l = Limiter::new(8);
        let slots: Vec<Slot> = futures_util::future::join_all((0..8).map(|_| l.acquire())).await;
        // All 8 in flight are throttled: only the first loss of the epoch counts.
        for s in &slots {
            l.on_throttle(s.epoch, Duration::from_millis(0));
        }
        assert_eq!(l.limit(), 4);
        drop(slots);
        assert_eq!(l.sem.available_permits(), 4);
        // A loss from the new epoch halves again.
        let s = l.acquire().await;
        l.on_throttle(s.epoch, Duration::from_millis(0));
        drop(s);
        assert_eq!(l.limit(), 2);
        assert_eq!(l.min_limit(), 2);
        assert_eq!(l.sem.available_permits(), 2);
        // Recovery: 2 successes → 3, 3 more → 4.
        for _ in 0..5 {
            l.on_success();
        }
        assert_eq!(l.limit(), 4);
        assert_eq!(l.sem.available_permits(), 4);
        for _ in 0..100 {
            l.on_success();
        }
        assert_eq!(l.limit(), 8);
        assert_eq!(l.sem.available_permits(), 8);
    }

    #[tokio::test]
    async fn throttle_pauses_new_requests() {
        let l = Limiter::new(2);
        let s = l.acquire().await;
        l.on_throttle(s.epoch, Duration::from_millis(200));
        drop(s);
        let t0 = Instant::now();
        let _s = l.acquire().await;
        assert!(t0.elapsed() >= Duration::from_millis(190));
    }
}
