//! The bundle format of ML models (spec §6.5): the `meta` of `registered_model`,
//! `model_version` and `model_artifact` records, and the resources export writes for them.

use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::resource::{json_part, Content, Part, Resource};
use crate::kinds::format::meta_value;
use crate::model::mlflow::{ModelVersion, RegisteredModel};
use crate::model::Kind;
use serde::{Deserialize, Serialize};

/// `meta` of a `registered_model` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredModelMeta {
    /// The model's name.
    pub name: String,
    /// The version numbers exported (absent in bundles written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_versions: Option<Vec<String>>,
}

/// `meta` of a `model_version` record. The four artifact summary fields are required from
/// format 1.1 (§14.3); that rule depends on the bundle's version and is checked with the
/// records (`bundle::records`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelVersionMeta {
    /// The model's name.
    pub model: String,
    /// The version number.
    pub version: String,
    /// The MLflow run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Where the registry says its files came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its stage in a workspace registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<String>,
    /// Its registry status (`READY`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// SHA-256 of the version's artifact manifest (§6.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_sha256: Option<String>,
    /// How many artifact files the version has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_count: Option<u64>,
    /// Their bytes in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_bytes: Option<u64>,
    /// False when export could not read every file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// Where the files were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_location: Option<String>,
    /// Paths of the files that could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_artifacts: Option<Vec<String>>,
    /// True when `run.json` is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_provenance: Option<bool>,
}

/// `meta` of a `model_artifact` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelArtifactMeta {
    /// The model's name.
    pub model: String,
    /// The version number.
    pub version: String,
    /// The file's path below the version's artifact root.
    pub path: String,
    /// For a duplicate: the `source_id` of the record that stores the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
    /// For a duplicate: the file's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For a duplicate: the file's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What export learned about a version beyond the registry's answer.
#[derive(Debug, Clone, Default)]
pub struct VersionDetails {
    /// The registry's status of the version (`READY`, …).
    pub status: Option<String>,
    /// Where the files were read.
    pub artifact_location: Option<String>,
    /// Paths of the files that could not be read.
    pub missing_artifacts: Vec<String>,
    /// The run's `runs/get` answer, stored as `run.json` when present.
    pub run: Option<Vec<u8>>,
}

impl Resource {
    /// A registered model, without `latest_versions` (the versions have records of their own).
    pub fn registered_model(m: &RegisteredModel) -> Self {
        Self::registered_model_with(m, None)
    }

    /// A registered model with the version numbers exported.
    pub fn registered_model_with(m: &RegisteredModel, selected: Option<Vec<String>>) -> Self {
        let meta = RegisteredModelMeta {
            name: m.name.clone(),
            selected_versions: selected,
        };
        let mut r = Resource::new(Kind::RegisteredModel, &m.name, &m.name, meta_value(&meta));
        r.parts.push(json_part(
            LogicalPath::file(segs(["models", &m.name, "model"]), Some("json")),
            m,
        ));
        r
    }

    /// A model version with its artifact summary: `(path, sha256, size)` of every file.
    pub fn model_version<'a>(
        v: &ModelVersion,
        artifacts: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
        complete: bool,
    ) -> Self {
        Self::model_version_with(v, artifacts, complete, VersionDetails::default())
    }

    /// A model version with its artifact summary and what export learned about it.
    pub fn model_version_with<'a>(
        v: &ModelVersion,
        artifacts: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
        complete: bool,
        details: VersionDetails,
    ) -> Self {
        let id = format!("{}/{}", v.name, v.version);
        let artifacts: Vec<(&str, &str, u64)> = artifacts.into_iter().collect();
        let meta = ModelVersionMeta {
            model: v.name.clone(),
            version: v.version.clone(),
            run_id: v.run_id.clone(),
            source: v.source.clone(),
            current_stage: v.current_stage.clone(),
            status: details.status,
            artifacts_sha256: Some(crate::bundle::records::artifacts_digest(
                artifacts.iter().map(|(path, sha, _)| (*path, *sha)),
            )),
            artifact_count: Some(artifacts.len() as u64),
            artifact_bytes: Some(artifacts.iter().map(|a| a.2).sum()),
            complete: Some(complete),
            artifact_location: details.artifact_location,
            missing_artifacts: (!details.missing_artifacts.is_empty())
                .then_some(details.missing_artifacts),
            run_provenance: details.run.is_some().then_some(true),
        };
        let mut r = Resource::new(Kind::ModelVersion, &id, &id, meta_value(&meta));
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["models", &v.name, "versions", &v.version, "version"]),
                Some("json"),
            ),
            v,
        ));
        if let Some(run) = details.run {
            r.parts.push(Part {
                path: LogicalPath::file(
                    segs(["models", &v.name, "versions", &v.version, "run"]),
                    Some("json"),
                ),
                content: Content::Bytes(run),
                sealed: false,
            });
        }
        r
    }

    /// One artifact file of a version.
    pub fn model_artifact(model: &str, version: &str, path: &str, content: Content) -> Self {
        let id = format!("{model}/{version}/{path}");
        let meta = ModelArtifactMeta {
            model: model.to_string(),
            version: version.to_string(),
            path: path.to_string(),
            same_as: None,
            sha256: None,
            size: None,
        };
        let mut r = Resource::new(Kind::ModelArtifact, &id, &id, meta_value(&meta));
        let mut s = segs(["models", model, "versions", version, "artifacts"]);
        s.extend(
            path.split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        );
        r.parts.push(Part {
            path: LogicalPath::file(s, None),
            content,
            sealed: false,
        });
        r
    }

    /// An artifact file whose bytes another record stores (`same_as`, its `source_id`): a
    /// record with no stored file (§6.5, duplicates).
    pub fn model_artifact_duplicate(
        model: &str,
        version: &str,
        path: &str,
        same_as: &str,
        sha256: &str,
        size: u64,
    ) -> Self {
        let id = format!("{model}/{version}/{path}");
        let meta = ModelArtifactMeta {
            model: model.to_string(),
            version: version.to_string(),
            path: path.to_string(),
            same_as: Some(same_as.to_string()),
            sha256: Some(sha256.to_string()),
            size: Some(size),
        };
        Resource::new(Kind::ModelArtifact, &id, &id, meta_value(&meta))
    }
}
