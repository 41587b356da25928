//! The import pipeline: read → plan → apply, from a bundle into a workspace, with a journal.
//!
//! * [`source`] opens a bundle, verifies every byte of it and reads its records;
//! * [`target`] reads what the target workspace already holds, with few calls;
//! * [`mod@plan`] decides, per object, what import would do: create, update, leave unchanged, skip
//!   or refuse — and writes nothing;
//! * [`apply`] carries a plan out in dependency order, journaling each finished step so that
//!   an interrupted run can be finished with `--resume`;
//! * `unit` is the one trait each kind's import implements (`kinds::<kind>::import`): how its
//!   records are read, planned and applied. `plan` and `apply` drive every unit in import
//!   order and know no kind themselves;
//! * [`mod@diff`] compares a target with a bundle after a migration;
//! * [`report`] holds what the commands print;
//! * [`mapping`] and [`remap`] turn source names and ids into target ones;
//! * [`principals`], [`acl`] and [`compare`] hold rules several kinds share.
//!
//! Idempotence: every object import creates is tied to its source identity — workspace objects
//! by path, repos by path and URL, secret scopes and secrets by name, jobs by the tag
//! [`crate::model::job::SOURCE_TAG`], grants by their statement — so a second run finds
//! everything unchanged and sends no mutating request.
//!
//! This module talks to a workspace only through [`crate::client`] and reads bundles only
//! through [`crate::bundle`].

pub mod acl;
pub mod apply;
pub mod compare;
pub mod diff;
pub mod ledger;
pub mod mapping;
pub mod plan;
pub mod principals;
pub mod remap;
pub mod report;
pub mod report_file;
pub mod source;
pub mod target;
pub(crate) mod unit;

use crate::bundle::BundleError;
use crate::client::ClientError;
use crate::hints::Hint;
use crate::model::Kind;
use std::collections::BTreeSet;

pub use apply::{import, ApplyOptions, Interrupt, Progress};
pub use diff::{diff, DiffReport};
pub use mapping::Mapping;
pub use plan::{plan, Action, Plan, PlanItem};
pub use report::{ImportReport, MustRecreate};
pub use source::{SecretValues, SourceBundle};

/// Something that stopped an import, a plan or a diff as a whole (problems with single objects
/// are reported per object instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The bundle failed verification; nothing was written.
    #[error("bundle {path}: failed verification, nothing was written:\n{}", list_problems(.problems))]
    Bundle {
        /// The bundle file.
        path: String,
        /// Every problem found, with its code.
        problems: Vec<BundleError>,
    },
    /// A record of the bundle is not what the format defines.
    #[error("bundle record {record}: {message}")]
    Record {
        /// The record (kind and name).
        record: String,
        /// What is wrong.
        message: String,
    },
    /// Sealed values are to be written and no identity was given.
    #[error(
        "bundle holds {sealed} sealed secret value(s) to import and no identity was given\n{}",
        Hint::IdentityForSecrets
    )]
    IdentityRequired {
        /// How many sealed values are selected.
        sealed: usize,
    },
    /// The mapping file could not be used.
    #[error(transparent)]
    Mapping(#[from] mapping::MappingError),
    /// Reading the target failed (listing, authentication).
    #[error("target {target}: {source}")]
    Target {
        /// The target workspace.
        target: String,
        /// The failure.
        source: ClientError,
    },
    /// The journal could not be used.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The report file (`--report`) cannot be written; nothing was written to the target.
    #[error("{0}\n{hint}", hint = Hint::ReportFile)]
    ReportFile(#[from] report_file::ReportFileError),
    /// `--resume` was given with options that differ from the interrupted run's.
    #[error(
        "journal {path}: the interrupted run used {recorded}, this one {given}\n{}",
        Hint::ResumeOptionsChanged
    )]
    ResumeOptions {
        /// The journal file.
        path: String,
        /// What the journal recorded.
        recorded: String,
        /// What this run was given.
        given: String,
    },
    /// The models stage could not run (no usable registry, a refused registry).
    #[error(transparent)]
    Models(#[from] crate::models::ModelsError),
    /// A filter names a kind that does not exist.
    #[error("--include/--exclude: {0}")]
    UnknownKind(crate::model::kinds::UnknownKind),
    /// `--include` names only kinds import never replays (clusters, mounts, …).
    #[error(
        "--include {0}: only reference-only kinds, which import never replays\n{hint}",
        hint = Hint::OnlyReferenceKinds
    )]
    OnlyReferenceKinds(String),
}

fn list_problems(p: &[BundleError]) -> String {
    p.iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub use crate::model::report::OnConflict;

/// Which records an import, plan or diff looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these kinds (all when `None`).
    pub include: Option<BTreeSet<Kind>>,
    /// Never these kinds.
    pub exclude: BTreeSet<Kind>,
    /// Only workspace objects (and repos, and their permissions) at or below this source path.
    pub path_prefix: Option<String>,
}

impl Filter {
    /// Builds a filter from `--include`/`--exclude` names (the words of
    /// [`crate::model::kinds`], the same as export's) and `--path`. Reference-only kinds are
    /// accepted and have no effect (import never replays them), but an `--include` of nothing
    /// else is refused: it would replay nothing.
    pub fn from_names(
        include: &[String],
        exclude: &[String],
        path_prefix: Option<String>,
    ) -> Result<Filter, ImportError> {
        let include = if include.iter().all(|w| w.trim().is_empty()) {
            None
        } else {
            let kinds =
                crate::model::kinds::parse_list(include).map_err(ImportError::UnknownKind)?;
            if kinds.iter().all(|k| k.is_reference_only()) {
                return Err(ImportError::OnlyReferenceKinds(include.join(",")));
            }
            Some(kinds)
        };
        let path_prefix = path_prefix
            .map(|p| p.trim_end_matches('/').to_string())
            .map(|p| if p.is_empty() { "/".to_string() } else { p });
        Ok(Filter {
            include,
            exclude: crate::model::kinds::parse_list(exclude).map_err(ImportError::UnknownKind)?,
            path_prefix,
        })
    }

    /// True when records of `kind` are selected.
    pub fn kind(&self, kind: Kind) -> bool {
        !self.exclude.contains(&kind) && self.include.as_ref().is_none_or(|i| i.contains(&kind))
    }

    /// True when a workspace path is selected by `--path`.
    pub fn path(&self, path: &str) -> bool {
        match self.path_prefix.as_deref() {
            None | Some("/") => true,
            Some(p) => path == p || path.starts_with(&format!("{p}/")),
        }
    }

    /// True when nothing is filtered out.
    pub fn is_everything(&self) -> bool {
        self.include.is_none()
            && self.exclude.is_empty()
            && matches!(self.path_prefix.as_deref(), None | Some("/"))
    }

    /// A short description for reports and the journal.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(i) = &self.include {
            parts.push(format!(
                "include={}",
                i.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
            ));
        }
        if !self.exclude.is_empty() {
            parts.push(format!(
                "exclude={}",
                self.exclude
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        if let Some(p) = &self.path_prefix {
            parts.push(format!("path={p}"));
        }
        if parts.is_empty() {
            "everything".into()
        } else {
            parts.join(" ")
        }
    }
}

/// The options of a plan, an import or a diff.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The mapping file's content.
    pub mapping: Mapping,
    /// What to do with conflicting objects.
    pub on_conflict: OnConflict,
    /// Keep schedules, triggers and continuous runs as they were instead of pausing them.
    pub keep_schedules: bool,
    /// Which records to look at.
    pub filter: Filter,
    /// The SQL warehouse that replays table grants (else the profile's, else the target's only
    /// warehouse).
    pub warehouse_id: Option<String>,
    /// Requests in flight at once for reads and independent writes.
    pub concurrency: usize,
    /// ML models: the registry receiving them (the workspace's, or `--mlflow-uri`) and where
    /// their artifacts are uploaded first.
    pub models: crate::models::ModelTargetArgs,
}

impl Options {
    /// The concurrency to use (at least 1).
    pub fn concurrency(&self) -> usize {
        self.concurrency.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_expand_groups_and_check_names() {
        let f = Filter::from_names(
            &["workspace".into(), "job".into()],
            &["file".into()],
            Some("/Shared/".into()),
        )
        .unwrap();
        assert!(f.kind(Kind::Notebook) && f.kind(Kind::Job));
        assert!(!f.kind(Kind::File) && !f.kind(Kind::Secret));
        assert!(f.path("/Shared/a") && f.path("/Shared") && !f.path("/Sharedx"));
        let e = Filter::from_names(&["nonsense".into()], &[], None).unwrap_err();
        assert!(e.to_string().contains("\"nonsense\" is not a kind"), "{e}");
        let e = Filter::from_names(&["clusters,mount".into()], &[], None).unwrap_err();
        assert!(matches!(e, ImportError::OnlyReferenceKinds(_)), "{e}");
        let f = Filter::from_names(&["job,cluster".into()], &["reference".into()], None).unwrap();
        assert!(f.kind(Kind::Job) && !f.kind(Kind::Notebook));
        assert!(Filter::default().is_everything());
    }
}
