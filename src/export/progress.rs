//! Progress events: the pipeline tells an [`Observer`] what it found and finished; the command
//! line turns that into a progress bar on a terminal, plain lines otherwise, or nothing. The
//! library itself never prints.

use super::report::Outcome;
use crate::model::Kind;

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stage started (`listing the workspace tree`, `packing`).
    Phase(String),
    /// More objects of `kind` were found.
    Found {
        /// Their kind.
        kind: Kind,
        /// How many more.
        count: u64,
    },
    /// One object of `kind` is done.
    Done {
        /// Its kind.
        kind: Kind,
        /// Bytes staged for it.
        bytes: u64,
        /// What became of it.
        outcome: Outcome,
        /// True when an interrupted run already held it (nothing was fetched).
        reused: bool,
    },
    /// Something the user must see even without `-v` (no recipients for secret values).
    Warning(String),
}

/// Receives events; called from any thread, so keep it quick.
pub trait Observer: Send + Sync {
    /// Handles one event.
    fn event(&self, event: Event);
}

/// Discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _event: Event) {}
}
