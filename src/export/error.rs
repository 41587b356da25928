//! Errors that stop an export as a whole. A failure concerning one object never becomes one of
//! these: it is recorded in the report with the object it concerns, and the run goes on.

use crate::bundle::error::no_room;
use crate::bundle::{BundleError, Problems};
use crate::client::ClientError;
use crate::hints::Hint;
use crate::journal::JournalError;
use std::path::PathBuf;

/// Why an export could not run or could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The options are inconsistent or malformed.
    #[error("{0}")]
    Usage(String),
    /// The output path already holds something.
    #[error("bundle {}: already exists\n{}", .0.display(), Hint::OutputExists)]
    OutputExists(PathBuf),
    /// An interrupted export left its staging folder and `--resume` was not given.
    #[error("staging folder {}: an earlier export to this output was interrupted\n{}", .0.display(), Hint::StagingExists)]
    StagingExists(PathBuf),
    /// The staging folder cannot be resumed.
    #[error("staging folder {}: {detail}\n{}", path.display(), Hint::StagingUnusable)]
    Staging {
        /// The staging folder.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// `--resume` was given other recipients (or another passphrase) than the interrupted run
    /// sealed to: finishing would leave a bundle whose values open with different keys.
    #[error("staging folder {}: the interrupted export sealed secret values to {was}, this run to {now} [E503]\n{}", path.display(), Hint::RecipientsChanged)]
    RecipientsChanged {
        /// The staging folder.
        path: PathBuf,
        /// The interrupted run's recipients, described.
        was: String,
        /// This run's recipients, described.
        now: String,
    },
    /// A call every later step depends on failed (refused credentials, unreachable host).
    #[error("{context}: {source}")]
    Client {
        /// What the export was doing.
        context: String,
        /// The client's error (its message names the call).
        #[source]
        source: ClientError,
    },
    /// Staging an object failed in a way every later object would too (a full disk, a
    /// journal that cannot be written); what was staged before is kept for `--resume`.
    #[error("staging folder {}: cannot stage {what}: {detail}", path.display())]
    StagingFailed {
        /// The staging folder.
        path: PathBuf,
        /// The object, as `<kind> <name>`.
        what: String,
        /// Why.
        detail: String,
        /// True when the disk (or quota, or file size limit) was full.
        no_room: bool,
    },
    /// The journal cannot be used.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Staging or finalizing the bag failed.
    #[error("{0}")]
    Bundle(#[from] BundleError),
    /// Writing the bundle failed, or the bundle written did not verify.
    #[error("writing the bundle: {0}")]
    Pack(Problems),
    /// Local I/O failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A background task died.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExportError {
    /// True when the workspace refused the credentials (the run stops at once).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, ExportError::Client { source, .. } if source.is_auth_failure())
    }

    /// True when a write failed for want of room (a full disk or quota, or a file past the
    /// size the file system or `ulimit -f` allows): making room and resuming finishes the run.
    pub fn is_no_room(&self) -> bool {
        match self {
            ExportError::Io { source, .. } => no_room(source),
            ExportError::Journal(j) => j.is_no_room(),
            ExportError::Bundle(b) => b.is_no_room(),
            ExportError::Pack(p) => p.0.iter().any(BundleError::is_no_room),
            ExportError::StagingFailed { no_room, .. } => *no_room,
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ExportError {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }
}
