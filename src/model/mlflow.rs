//! MLflow model registry: registered models, versions, artifacts (`/api/2.0/mlflow/*`).

use super::KeyValue;
use serde::{Deserialize, Serialize};

/// A registered model (OSS flavour, `registered_model`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    /// Unique name.
    pub name: String,
    /// Creation, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    /// Last update, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Latest version per stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    /// Aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<ModelAlias>,
}

/// An alias pointing at a version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelAlias {
    /// Alias name.
    pub alias: String,
    /// Version number as a string.
    pub version: String,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Model name.
    pub name: String,
    /// Version number, as a string on the wire.
    pub version: String,
    /// Creation, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    /// Last update, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `None`, `Staging`, `Production`, `Archived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Source URI of the artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Link to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    /// `PENDING_REGISTRATION`, `FAILED_REGISTRATION`, `READY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Status detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    /// Aliases pointing at this version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// One entry of an artifact listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path relative to the artifact root.
    pub path: String,
    /// True for a directory.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes (files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}
