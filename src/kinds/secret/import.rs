//! How secret scopes and secrets are planned and replayed into a target.

use crate::import::apply::Run;
use crate::import::plan::Planner;
use crate::import::unit::{Applied, Planned, Unit};

/// The import unit of secret scopes and secrets.
pub(crate) struct Secrets;

impl Unit for Secrets {
    fn plan<'p>(&self, planner: &'p mut Planner<'_, '_>) -> Planned<'p> {
        Box::pin(planner.secrets())
    }

    fn apply<'r>(&self, run: &'r Run<'_>) -> Applied<'r> {
        Box::pin(async move {
            let mut done = run.scopes().await;
            done.extend(run.secrets().await);
            done
        })
    }
}
