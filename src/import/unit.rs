//! The one trait every kind's import implements, and the order import runs them in.
//!
//! `plan` and `apply` know no kind: [`mod@super::plan`] asks each [`Unit`] of [`UNITS`], in
//! order, to read the target and add its plan items; [`super::apply`] asks each, in the same
//! order, to carry out its items. `diff` is `plan` in [`super::plan::Mode::Diff`]. What a kind
//! means — which records it reads, how it compares them with the target, which requests
//! create or update it — lives in that kind's module under [`crate::kinds`].

use super::apply::{Run, StepResult};
use super::plan::{PlanItem, Planner};
use super::source::SourceBundle;
use super::ImportError;
use crate::bundle::inventory::Record;
use crate::model::Kind;
use std::future::Future;
use std::pin::Pin;

/// What [`Unit::plan`] returns: adding its items to the planner may fail as a whole (a
/// refused token, a target that cannot be read).
pub(crate) type Planned<'p> = Pin<Box<dyn Future<Output = Result<(), ImportError>> + 'p>>;

/// What [`Unit::apply`] returns: the outcome of every item it ran (items it did not reach are
/// reported by the driver as not run). Neither needs `Send`: the drivers await each unit in
/// place, one after another.
pub(crate) type Applied<'r> = Pin<Box<dyn Future<Output = Vec<(&'r PlanItem, StepResult)>> + 'r>>;

/// One kind (or a few kinds replayed together, such as secret scopes and their secrets) as
/// import sees it.
pub(crate) trait Unit: Sync {
    /// The kinds of the records this unit reads and replays.
    fn kinds(&self) -> &'static [Kind];

    /// Reads one record of its kinds — its typed meta (spec §6), and its JSON payload when
    /// the kind has one — into the source bundle, in the API's terms: import's boundary
    /// between the format and the wire model.
    fn load(
        &self,
        source: &mut SourceBundle,
        record: &Record,
        payload: Option<Vec<u8>>,
    ) -> Result<(), ImportError>;

    /// Reads what the target holds for this unit's records and adds one plan item per
    /// selected record, with its action, reasons and the step that would apply it. Writes
    /// nothing. Later units may read what earlier ones planned (jobs read the repos' and
    /// notebooks' target paths).
    fn plan<'p>(&self, planner: &'p mut Planner<'_, '_>) -> Planned<'p>;

    /// Carries out this unit's items of the plan, journaling each finished step.
    fn apply<'r>(&self, run: &'r Run<'_>) -> Applied<'r>;
}

/// Every unit, in the import order of spec §14.2: folders and files before what lives in
/// them, repos, scopes before secrets, models before the jobs that may use them, jobs before
/// their permissions, table grants last.
pub(crate) const UNITS: &[&dyn Unit] = &[
    &crate::kinds::workspace::import::Workspace,
    &crate::kinds::repo::import::Repos,
    &crate::kinds::secret::import::Secrets,
    &crate::kinds::model::import::Models,
    &crate::kinds::job::import::Jobs,
    &crate::kinds::permissions::import::Permissions,
    &crate::kinds::grants::import::Grants,
];

/// How apply runs the units: stage after stage; within a stage, its lanes at once, each lane's
/// units in the order of [`UNITS`]. A lane holds what depends on another unit of the lane: the
/// workspace tree before the repos that live in its folders; scopes before secrets, models
/// before the jobs that may use them. The two lanes of the first stage need nothing of each
/// other (a job names notebook paths, which a workspace checks only when the job runs), so the
/// rate limits of their API families — workspace import, jobs create — are used together
/// rather than one after the other. Permissions need every object; grants come last.
pub(crate) const APPLY_STAGES: &[&[&[&dyn Unit]]] = &[
    &[
        &[
            &crate::kinds::workspace::import::Workspace,
            &crate::kinds::repo::import::Repos,
        ],
        &[
            &crate::kinds::secret::import::Secrets,
            &crate::kinds::model::import::Models,
            &crate::kinds::job::import::Jobs,
        ],
    ],
    &[&[&crate::kinds::permissions::import::Permissions]],
    &[&[&crate::kinds::grants::import::Grants]],
];

/// The unit that replays records of `kind`; `None` for the reference-only kinds, which import
/// lists under "must recreate" and never replays.
pub(crate) fn unit_of(kind: Kind) -> Option<&'static dyn Unit> {
    UNITS.iter().copied().find(|u| u.kinds().contains(&kind))
}

/// Declares a kind module's import unit, `$unit`, replaying records of `$kind`s, by the
/// module's own free functions: `load(source, record, payload)`, `async fn plan(planner)` and
/// `async fn apply(run)`. A kind module writes those three; the trait's plumbing is here once.
macro_rules! unit {
    ($(#[$doc:meta])* $unit:ident: [$($kind:expr),+ $(,)?]) => {
        $(#[$doc])*
        pub(crate) struct $unit;

        impl $crate::import::unit::Unit for $unit {
            fn kinds(&self) -> &'static [$crate::model::Kind] {
                &[$($kind),+]
            }

            fn load(
                &self,
                source: &mut $crate::import::source::SourceBundle,
                record: &$crate::bundle::inventory::Record,
                payload: Option<Vec<u8>>,
            ) -> Result<(), $crate::import::ImportError> {
                load(source, record, payload)
            }

            fn plan<'p>(
                &self,
                planner: &'p mut $crate::import::plan::Planner<'_, '_>,
            ) -> $crate::import::unit::Planned<'p> {
                Box::pin(plan(planner))
            }

            fn apply<'r>(
                &self,
                run: &'r $crate::import::apply::Run<'_>,
            ) -> $crate::import::unit::Applied<'r> {
                Box::pin(apply(run))
            }
        }
    };
}
pub(crate) use unit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_stages_run_every_unit_once_in_import_order_within_each_lane() {
        let position = |u: &dyn Unit| {
            UNITS
                .iter()
                .position(|v| v.kinds() == u.kinds())
                .expect("a unit of UNITS")
        };
        let mut seen: Vec<usize> = Vec::new();
        let mut before_stage = 0usize;
        for stage in APPLY_STAGES {
            let mut last_in_stage = before_stage;
            for lane in stage.iter() {
                let mut prev: Option<usize> = None;
                for unit in lane.iter() {
                    let p = position(*unit);
                    assert!(prev.is_none_or(|q| q < p), "a lane runs in UNITS order");
                    // Nothing in a stage comes before what an earlier stage ran.
                    assert!(seen.is_empty() || p >= before_stage, "stage order");
                    prev = Some(p);
                    seen.push(p);
                    last_in_stage = last_in_stage.max(p + 1);
                }
            }
            before_stage = last_in_stage;
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..UNITS.len()).collect::<Vec<_>>());
    }
}
