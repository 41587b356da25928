//! Errors that stop an export as a whole. A failure concerning one object never becomes one of
//! these: it is recorded in the report with the object it concerns, and the run goes on.

use crate::bundle::{BundleError, Problems};
use crate::client::ClientError;
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
    #[error("bundle {}: already exists\nhint: choose another output path, or remove the file first", .0.display())]
    OutputExists(PathBuf),
    /// An interrupted export left its staging folder and `--resume` was not given.
    #[error("staging folder {}: an earlier export to this output was interrupted\nhint: add --resume to finish it, or remove the folder to start over", .0.display())]
    StagingExists(PathBuf),
    /// The staging folder cannot be resumed.
    #[error("staging folder {}: {detail}\nhint: remove the folder to start over", path.display())]
    Staging {
        /// The staging folder.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// `--resume` was given other recipients (or another passphrase) than the interrupted run
    /// sealed to: finishing would leave a bundle whose values open with different keys.
    #[error("staging folder {}: the interrupted export sealed secret values to {was}, this run to {now} [E503]\nhint: resume with the same --recipient/--recipients-file or passphrase as the interrupted run, or remove the folder to start over", path.display())]
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
    /// The journal cannot be used.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Staging or finalizing the bag failed.
    #[error("{0}")]
    Bundle(#[from] BundleError),
    /// Packing refused the bag or could not verify the bundle.
    #[error("bundle: {0}")]
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

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ExportError {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }
}
