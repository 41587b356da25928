//! A monotonic clock for what expires or refills, real or manual: the emulator's OAuth tokens
//! and codes, Entra tokens and rate-limit buckets, and the client's cached tokens. It runs
//! with real time unless a test asks for a manual clock, which stands still until moved
//! forward (`EmulatorHandle::advance_clock`, `POST /emulator/clock/advance {"seconds": …}`, or
//! [`Clock::advance`] on a clock given to a client through `TransportOptions::clock`), so timed
//! behaviour is checked without sleeping — on a loaded machine a sleep proves nothing about
//! what happened before it. Timestamps the emulator reports (`created_time`…) follow the wall
//! clock or its fixed clock (`EmulatorConfig::with_fixed_clock`), not this one.
//!
//! It is its own module, below both the client and the emulator, so neither borrows the
//! other's; a test-only feature of the async runtime (tokio's paused clock) would change the
//! runtime the tests link against, not the one users run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A monotonic clock, real or manual; clones share the same time.
#[derive(Debug, Clone)]
pub struct Clock(Arc<Mode>);

#[derive(Debug)]
enum Mode {
    Real,
    /// Starts at the moment it was made and moves only when advanced.
    Manual {
        start: Instant,
        /// The wall-clock time at `start`, so that expiry times written into URLs move with
        /// the manual clock too.
        start_wall: SystemTime,
        moved: Mutex<Duration>,
    },
}

impl Clock {
    /// Real time.
    pub fn real() -> Clock {
        Clock(Arc::new(Mode::Real))
    }

    /// A clock that stands still until [`Clock::advance`] moves it.
    pub fn manual() -> Clock {
        Clock(Arc::new(Mode::Manual {
            start: Instant::now(),
            start_wall: SystemTime::now(),
            moved: Mutex::new(Duration::ZERO),
        }))
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match &*self.0 {
            Mode::Real => Instant::now(),
            Mode::Manual { start, moved, .. } => {
                *start + *moved.lock().unwrap_or_else(|p| p.into_inner())
            }
        }
    }

    /// The current wall-clock time: the system's for a real clock; for a manual one the time it
    /// was made plus how far it was moved. For expiry times that travel as numbers (signed URLs).
    pub fn wall_now(&self) -> SystemTime {
        match &*self.0 {
            Mode::Real => SystemTime::now(),
            Mode::Manual {
                start_wall, moved, ..
            } => *start_wall + *moved.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock forward by `by`; `false` (and nothing moves) for a real clock.
    pub fn advance(&self, by: Duration) -> bool {
        match &*self.0 {
            Mode::Real => false,
            Mode::Manual { moved, .. } => {
                *moved.lock().unwrap_or_else(|p| p.into_inner()) += by;
                true
            }
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let c = Clock::manual();
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), t0);
        assert!(c.clone().advance(Duration::from_secs(2)));
        assert_eq!(c.now(), t0 + Duration::from_secs(2));
        assert!(!Clock::real().advance(Duration::from_secs(1)));
        let w = c.wall_now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.wall_now(), w);
        c.advance(Duration::from_secs(3));
        assert_eq!(c.wall_now(), w + Duration::from_secs(3));
    }
}
