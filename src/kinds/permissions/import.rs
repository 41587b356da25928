//! How object permissions are planned and replayed into a target.

use crate::import::apply::Run;
use crate::import::plan::Planner;
use crate::import::unit::{Applied, Planned, Unit};

/// The import unit of object permissions.
pub(crate) struct Permissions;

impl Unit for Permissions {
    fn plan<'p>(&self, planner: &'p mut Planner<'_, '_>) -> Planned<'p> {
        Box::pin(planner.permissions())
    }

    fn apply<'r>(&self, run: &'r Run<'_>) -> Applied<'r> {
        Box::pin(run.permissions())
    }
}
