//! The finished steps of a run as models see them: a [`StepLog`] recalls what an earlier run
//! recorded and records what this one finishes. A [`Journal`] behind a mutex is one (the
//! `models` command's); the export and import pipelines adapt their own journals.

use super::error::ModelsError;
use crate::journal::Journal;
use serde_json::Value;
use std::sync::Mutex;

/// What the key of every step models record starts with.
pub const STEP_PREFIX: &str = "models/";

/// Recorded steps of a resumable run. Keys used by models all start with [`STEP_PREFIX`].
pub trait StepLog: Send + Sync {
    /// What was recorded under `key`, by an earlier run or this one.
    fn recall(&self, key: &str) -> Option<Value>;
    /// Every recorded step whose key starts with `prefix`.
    fn recall_prefix(&self, prefix: &str) -> Vec<(String, Value)>;
    /// Records a finished step; durable when the call returns.
    fn remember(&self, key: &str, data: Value) -> Result<(), ModelsError>;
}

impl StepLog for Mutex<Journal> {
    fn recall(&self, key: &str) -> Option<Value> {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .get::<Value>(key)
    }

    fn recall_prefix(&self, prefix: &str) -> Vec<(String, Value)> {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn remember(&self, key: &str, data: Value) -> Result<(), ModelsError> {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(key, &data)
            .map_err(ModelsError::Journal)
    }
}
