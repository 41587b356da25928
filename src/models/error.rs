//! Errors of the model pipeline: what stops an export or import of ML models as a whole.
//! Failures of one model, version or artifact do not stop a run; they are collected as
//! [`super::Problem`]s in the run's report instead.

use crate::bundle::BundleError;
use crate::client::ClientError;
use crate::hints::Hint;
use crate::journal::JournalError;

/// Why moving models could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelsError {
    /// A registry call failed in a way that concerns the whole run (listing, credentials).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The bundle could not be read or written.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// An argument is not usable.
    #[error("{what}: {message}\n{hint}")]
    Usage {
        /// The flag or value concerned.
        what: String,
        /// What is wrong with it.
        message: String,
        /// How to fix it.
        hint: Hint,
    },
    /// The bundle's model records contradict each other.
    #[error("bundle record {record}: {message}")]
    Inconsistent {
        /// The record concerned.
        record: String,
        /// What is wrong.
        message: String,
    },
    /// A background task failed.
    #[error("{what}: {message}")]
    Task {
        /// What was running.
        what: String,
        /// Why it stopped.
        message: String,
    },
}

impl ModelsError {
    pub(crate) fn usage(what: impl Into<String>, message: impl Into<String>, hint: Hint) -> Self {
        ModelsError::Usage {
            what: what.into(),
            message: message.into(),
            hint,
        }
    }

    pub(crate) fn task(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        ModelsError::Task {
            what: what.into(),
            message: e.to_string(),
        }
    }

    /// True when the credentials were refused: nothing else will work either.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, ModelsError::Client(e) if e.is_auth_failure())
    }
}

/// True when a failed call means the run cannot go on: the credentials were refused, or the
/// registry stopped answering (connections refused or dropped, timeouts, 5xx and throttling
/// that outlasted the retry budget). Other failures concern one object only.
pub fn stops_run(e: &ClientError) -> bool {
    match e {
        _ if e.is_auth_failure() => true,
        ClientError::Transport { .. } | ClientError::Unreachable { .. } => true,
        ClientError::RetriesExhausted { last, .. } => match last.as_ref() {
            ClientError::Transport { .. } => true,
            other => other
                .api()
                .is_some_and(|a| a.status >= 500 || a.status == 429),
        },
        _ => false,
    }
}

/// True when a failed write leaves it unknown whether the server applied it: the connection
/// dropped, the answer timed out, or the server answered 5xx or 429. Such a write is checked
/// (has the object appeared?) before it is sent again.
pub fn ambiguous(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } | ClientError::RetriesExhausted { .. } => true,
        _ => e.api().is_some_and(|a| a.status >= 500 || a.status == 429),
    }
}
