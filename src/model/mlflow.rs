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
    /// Unity Catalog: its owner, from the catalog API (`/api/2.1/unity-catalog/models`); the
    /// MLflow registries have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
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
    /// Aliases pointing at this version. The workspace registry and MLflow servers send
    /// names; Unity Catalog's registry sends `{alias, version}` objects, read as their names.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "alias_names"
    )]
    pub aliases: Vec<String>,
    /// The workspace whose tracking server holds `run_id` (Unity Catalog's
    /// `run_tracking_server_id`); absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_tracking_server_id: Option<String>,
}

/// Alias names from a list of names or of `{alias, …}` objects.
fn alias_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        Name(String),
        Object { alias: String },
    }
    let list: Option<Vec<One>> = Option::deserialize(d)?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .map(|a| match a {
            One::Name(n) | One::Object { alias: n } => n,
        })
        .collect())
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
