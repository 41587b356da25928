//! How jobs are planned and replayed into a target.

use crate::import::apply::Run;
use crate::import::plan::Planner;
use crate::import::unit::{Applied, Planned, Unit};

/// The import unit of jobs.
pub(crate) struct Jobs;

impl Unit for Jobs {
    fn plan<'p>(&self, planner: &'p mut Planner<'_, '_>) -> Planned<'p> {
        Box::pin(planner.jobs())
    }

    fn apply<'r>(&self, run: &'r Run<'_>) -> Applied<'r> {
        Box::pin(run.jobs())
    }
}
