//! The bundle side of models: artifact manifests and their digest, the marker that ties a
//! version created by import to the artifacts it was made from, and the model records of an
//! inventory gathered per model and version (with duplicate artifacts resolved to the stored
//! copy, spec §6.5). Pure; no I/O.

use super::error::ModelsError;
use super::select::version_number;
use super::uri::is_safe_relative;
use crate::bundle::inventory::is_sha256_hex;
use crate::bundle::{Inventory, Record};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One artifact file of a version: its path below the version's artifact root, size and
/// SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactEntry {
    /// Path relative to the artifact root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// The digest of a version's artifact set: SHA-256 of the lines `<sha256>  <path>\n`, sorted
/// by path bytes (the `sha256sum` format). Equal sets of files give equal digests.
pub fn manifest_digest(entries: &[ArtifactEntry]) -> String {
    crate::bundle::records::artifacts_digest(
        entries.iter().map(|e| (e.path.as_str(), e.sha256.as_str())),
    )
}

const MARKER_PREFIX: &str = "dbxport-";
const MARKER_HEX: usize = 32;

/// The last path component of the `source` of every version import creates:
/// `dbxport-<first 32 hex digits of the manifest digest>`. A later run recognises the
/// version's artifacts by it without downloading them.
pub fn marker(manifest_digest: &str) -> String {
    format!(
        "{MARKER_PREFIX}{}",
        &manifest_digest[..MARKER_HEX.min(manifest_digest.len())]
    )
}

/// The marker at the end of a version's `source`, if it has one.
pub fn marker_of(source: &str) -> Option<&str> {
    let last = source.trim_end_matches('/').rsplit('/').next()?;
    let hex = last.strip_prefix(MARKER_PREFIX)?;
    (hex.len() == MARKER_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(last)
}

/// One artifact of a version in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleArtifact {
    /// Path below the version's artifact root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// The stored path holding the bytes (the first copy's, for a duplicate).
    pub stored: String,
}

/// One version of a model in a bundle.
#[derive(Debug, Clone)]
pub struct BundleVersion {
    /// Version number as the source gave it.
    pub version: String,
    /// Its record.
    pub record: Record,
    /// Its artifacts, sorted by path.
    pub artifacts: Vec<BundleArtifact>,
    /// Artifacts the export could not read (paths).
    pub missing: Vec<String>,
    /// False when the export could not read every artifact: such a version is not imported.
    pub complete: bool,
    /// The stored path of the source run's provenance (`run.json`), when exported.
    pub run_stored: Option<String>,
}

impl BundleVersion {
    /// The digest of the artifact set.
    pub fn manifest_digest(&self) -> String {
        manifest_digest(&self.entries())
    }

    /// The artifact set as entries.
    pub fn entries(&self) -> Vec<ArtifactEntry> {
        self.artifacts
            .iter()
            .map(|a| ArtifactEntry {
                path: a.path.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
            })
            .collect()
    }

    /// Total artifact bytes.
    pub fn bytes(&self) -> u64 {
        self.artifacts.iter().map(|a| a.size).sum()
    }
}

/// One registered model in a bundle.
#[derive(Debug, Clone)]
pub struct BundleModel {
    /// The model name.
    pub name: String,
    /// Its record.
    pub record: Record,
    /// Its exported versions, in ascending version order.
    pub versions: Vec<BundleVersion>,
    /// Its permissions record (Databricks sources).
    pub permissions: Option<Record>,
    /// True for a model of Unity Catalog's registry (`meta.registry` is `uc`).
    pub uc: bool,
}

fn meta_str<'a>(r: &'a Record, key: &str) -> Result<&'a str, ModelsError> {
    r.meta_str(key).ok_or_else(|| ModelsError::Inconsistent {
        record: format!("{} {}", r.kind, r.name),
        message: format!("meta.{key} is missing"),
    })
}

fn bad(r: &Record, message: impl Into<String>) -> ModelsError {
    ModelsError::Inconsistent {
        record: format!("{} {}", r.kind, r.name),
        message: message.into(),
    }
}

/// Gathers the model records of an inventory per model and version, resolving duplicate
/// artifacts to their stored copy and checking that records agree with each other (each
/// artifact under an exported version, digests of duplicates equal to the copy's, the
/// version's recorded manifest digest equal to its artifacts').
pub fn collect(inv: &Inventory) -> Result<Vec<BundleModel>, ModelsError> {
    collect_records(&inv.records)
}

/// [`collect`] over `records`: the model records of an inventory (registered models, versions,
/// artifacts and the permissions of registered models), in its order, which `import` keeps
/// whole while the rest of the inventory is read lean (issue #15).
pub fn collect_records(records: &[Record]) -> Result<Vec<BundleModel>, ModelsError> {
    let mut models: BTreeMap<String, BundleModel> = BTreeMap::new();
    let mut versions: BTreeMap<(String, String), BundleVersion> = BTreeMap::new();
    let mut artifacts: Vec<&Record> = Vec::new();
    let mut by_id: BTreeMap<&str, &Record> = BTreeMap::new();
    let mut perms: Vec<&Record> = Vec::new();
    for r in records {
        match r.kind {
            Kind::RegisteredModel => {
                let name = r.meta_str("name").unwrap_or(&r.name).to_string();
                if r.stored.is_empty() {
                    return Err(bad(r, "has no stored model.json"));
                }
                models.insert(
                    name.clone(),
                    BundleModel {
                        name,
                        record: r.clone(),
                        versions: Vec::new(),
                        permissions: None,
                        uc: r.meta_str("registry") == Some("uc"),
                    },
                );
            }
            Kind::ModelVersion => {
                let model = meta_str(r, "model")?.to_string();
                let version = meta_str(r, "version")?.to_string();
                if r.stored.is_empty() {
                    return Err(bad(r, "has no stored version.json"));
                }
                let run_stored = r.stored.get(1).cloned();
                let missing: Vec<String> = r
                    .meta
                    .get("missing_artifacts")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let complete = r.meta.get("complete").and_then(|c| c.as_bool()) != Some(false)
                    && missing.is_empty();
                versions.insert(
                    (model, version.clone()),
                    BundleVersion {
                        version,
                        record: r.clone(),
                        artifacts: Vec::new(),
                        missing,
                        complete,
                        run_stored,
                    },
                );
            }
            Kind::ModelArtifact => {
                by_id.insert(r.source_id.as_str(), r);
                artifacts.push(r);
            }
            Kind::Permissions if r.meta_str("request_object_type") == Some("registered-models") => {
                perms.push(r);
            }
            _ => {}
        }
    }
    for r in artifacts {
        let model = meta_str(r, "model")?;
        let version = meta_str(r, "version")?;
        let path = meta_str(r, "path")?;
        if !is_safe_relative(path) {
            return Err(bad(
                r,
                format!("artifact path {path:?} is not a safe relative path"),
            ));
        }
        let (stored, size, sha256) = match r.stored.first() {
            Some(s) => (
                s.clone(),
                r.size,
                r.sha256
                    .clone()
                    .ok_or_else(|| bad(r, "has a stored file but no digest"))?,
            ),
            None => {
                let first = meta_str(r, "same_as")?;
                let copy = by_id
                    .get(first)
                    .filter(|c| !c.stored.is_empty())
                    .ok_or_else(|| {
                        bad(
                            r,
                            format!("same_as names {first:?}, which is not a stored artifact"),
                        )
                    })?;
                let sha = meta_str(r, "sha256")?;
                let size = r.meta.get("size").and_then(|v| v.as_u64());
                if !is_sha256_hex(sha)
                    || copy.sha256.as_deref() != Some(sha)
                    || size != Some(copy.size)
                {
                    return Err(bad(
                        r,
                        format!("its digest or size differs from the copy it names ({first})"),
                    ));
                }
                (copy.stored[0].clone(), copy.size, sha.to_string())
            }
        };
        let v = versions
            .get_mut(&(model.to_string(), version.to_string()))
            .ok_or_else(|| {
                bad(
                    r,
                    format!("its version {model}/{version} is not in the bundle"),
                )
            })?;
        v.artifacts.push(BundleArtifact {
            path: path.to_string(),
            size,
            sha256,
            stored,
        });
    }
    for ((model, _), mut v) in versions {
        v.artifacts
            .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        if let Some(want) = v.record.meta_str("artifacts_sha256") {
            let got = v.manifest_digest();
            if got != want {
                return Err(bad(
                    &v.record,
                    format!("its artifacts' manifest digest is {got}, the record says {want}"),
                ));
            }
        }
        let m = models.get_mut(&model).ok_or_else(|| {
            bad(
                &v.record,
                format!("its model {model:?} is not in the bundle"),
            )
        })?;
        m.versions.push(v);
    }
    for p in perms {
        if let Some(name) = p.meta_str("object_name") {
            if let Some(m) = models.get_mut(name) {
                m.permissions = Some(p.clone());
            }
        }
    }
    let mut out: Vec<BundleModel> = models.into_values().collect();
    for m in &mut out {
        m.versions.sort_by_key(|v| version_number(&v.version));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(path: &str, sha: char) -> ArtifactEntry {
        ArtifactEntry {
            path: path.into(),
            size: 1,
            sha256: sha.to_string().repeat(64),
        }
    }

    #[test]
    fn manifest_digest_ignores_order_and_sees_changes() {
        let a = manifest_digest(&[e("b", '1'), e("a", '2')]);
        assert_eq!(a, manifest_digest(&[e("a", '2'), e("b", '1')]));
        assert_ne!(a, manifest_digest(&[e("a", '2'), e("b", '3')]));
        assert_ne!(a, manifest_digest(&[e("a", '2'), e("c", '1')]));
        // The empty set has the digest of no bytes.
        assert_eq!(
            manifest_digest(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn markers_round_trip() {
        let d = manifest_digest(&[e("a", '1')]);
        let m = marker(&d);
        assert_eq!(
            marker_of(&format!("mlflow-artifacts:/1/r/artifacts/{m}")),
            Some(m.as_str())
        );
        assert_eq!(
            marker_of(&format!("dbfs:/dbxport/x/{m}/")),
            Some(m.as_str())
        );
        assert_eq!(marker_of("runs:/abc/model"), None);
        assert_eq!(marker_of("dbfs:/x/dbxport-short"), None);
    }

    fn rec(
        kind: Kind,
        id: &str,
        stored: &[&str],
        sha: Option<&str>,
        meta: serde_json::Value,
    ) -> Record {
        Record {
            kind,
            source_id: id.into(),
            name: id.into(),
            stored: stored.iter().map(|s| s.to_string()).collect(),
            size: if stored.is_empty() { 0 } else { 5 },
            sha256: sha.map(str::to_string),
            sealed: false,
            notes: vec![],
            meta,
        }
    }

    #[test]
    fn collect_resolves_duplicates_and_checks_them() {
        let sha = "a".repeat(64);
        let mut inv = Inventory::new(
            "0b8e6f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b".into(),
            time::OffsetDateTime::UNIX_EPOCH,
            crate::bundle::Source {
                host: String::new(),
                workspace_id: String::new(),
            },
            json!({}),
        );
        let digest = manifest_digest(&[ArtifactEntry {
            path: "model.pkl".into(),
            size: 5,
            sha256: sha.clone(),
        }]);
        inv.records = vec![
            rec(
                Kind::RegisteredModel,
                "m",
                &["data/models/m/model.json"],
                Some(&sha),
                json!({"name": "m"}),
            ),
            rec(
                Kind::ModelVersion,
                "m/1",
                &["data/models/m/versions/1/version.json"],
                Some(&sha),
                json!({"model": "m", "version": "1", "artifacts_sha256": digest}),
            ),
            rec(
                Kind::ModelVersion,
                "m/2",
                &["data/models/m/versions/2/version.json"],
                Some(&sha),
                json!({"model": "m", "version": "2", "artifacts_sha256": digest}),
            ),
            rec(
                Kind::ModelArtifact,
                "m/1/model.pkl",
                &["data/models/m/versions/1/artifacts/model.pkl"],
                Some(&sha),
                json!({"model": "m", "version": "1", "path": "model.pkl"}),
            ),
            rec(
                Kind::ModelArtifact,
                "m/2/model.pkl",
                &[],
                None,
                json!({"model": "m", "version": "2", "path": "model.pkl", "same_as": "m/1/model.pkl", "sha256": sha, "size": 5}),
            ),
        ];
        let models = collect(&inv).unwrap();
        assert_eq!(models.len(), 1);
        let v2 = &models[0].versions[1];
        assert_eq!(v2.version, "2");
        assert_eq!(
            v2.artifacts[0].stored,
            "data/models/m/versions/1/artifacts/model.pkl"
        );
        assert_eq!(v2.manifest_digest(), digest);

        // A duplicate whose digest differs from its copy is refused.
        inv.records[4].meta["sha256"] = json!("b".repeat(64));
        assert!(collect(&inv).is_err());
        inv.records[4].meta["sha256"] = json!(sha);
        // So is an artifact that climbs out of its root.
        inv.records[3].meta["path"] = json!("../x");
        assert!(collect(&inv).is_err());
    }
}
