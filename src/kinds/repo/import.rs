//! How Git folders are planned and replayed into a target.

use crate::import::apply::Run;
use crate::import::plan::Planner;
use crate::import::unit::{Applied, Planned, Unit};

/// The import unit of Git folders.
pub(crate) struct Repos;

impl Unit for Repos {
    fn plan<'p>(&self, planner: &'p mut Planner<'_, '_>) -> Planned<'p> {
        Box::pin(planner.repos())
    }

    fn apply<'r>(&self, run: &'r Run<'_>) -> Applied<'r> {
        Box::pin(run.repos())
    }
}
