//! How folders, notebooks and workspace files are planned and replayed into a target.

use crate::import::apply::Run;
use crate::import::plan::Planner;
use crate::import::unit::{Applied, Planned, Unit};

/// The import unit of folders, notebooks and workspace files.
pub(crate) struct Workspace;

impl Unit for Workspace {
    fn plan<'p>(&self, planner: &'p mut Planner<'_, '_>) -> Planned<'p> {
        Box::pin(planner.workspace())
    }

    fn apply<'r>(&self, run: &'r Run<'_>) -> Applied<'r> {
        Box::pin(async move {
            let mut done = run.directories().await;
            done.extend(run.objects().await);
            done
        })
    }
}
