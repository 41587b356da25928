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
use std::collections::{BTreeMap, HashMap};

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

/// One version of a model in a bundle: what import reads of its record.
#[derive(Debug, Clone)]
pub struct BundleVersion {
    /// Version number as the source gave it.
    pub version: String,
    /// The stored path of its `version.json`.
    pub stored: String,
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

/// One registered model in a bundle: what import reads of its records.
#[derive(Debug, Clone)]
pub struct BundleModel {
    /// The model name.
    pub name: String,
    /// The stored path of its `model.json`.
    pub stored: String,
    /// Its exported versions, in ascending version order.
    pub versions: Vec<BundleVersion>,
    /// The source object id of its permissions record (Databricks sources), when exported.
    pub permissions_id: Option<String>,
    /// True for a model of Unity Catalog's registry (`meta.registry` is `uc`).
    pub uc: bool,
}

fn meta_str<'a>(r: &'a Record, key: &str) -> Result<&'a str, ModelsError> {
    r.meta_str(key)
        .ok_or_else(|| bad(r, format!("meta.{key} is missing")))
}

fn bad(r: &Record, message: impl Into<String>) -> ModelsError {
    inconsistent(format!("{} {}", r.kind, r.name), message)
}

fn inconsistent(record: String, message: impl Into<String>) -> ModelsError {
    ModelsError::Inconsistent {
        record,
        message: message.into(),
    }
}

/// Gathers the model records of an inventory per model and version, resolving duplicate
/// artifacts to their stored copy and checking that records agree with each other (each
/// artifact under an exported version, digests of duplicates equal to the copy's, the
/// version's recorded manifest digest equal to its artifacts').
pub fn collect(inv: &Inventory) -> Result<Vec<BundleModel>, ModelsError> {
    let mut g = Gather::default();
    for r in &inv.records {
        g.add(r)?;
    }
    g.finish()
}

/// [`collect`] as the records stream (issue #15): [`Gather::add`] takes each model record
/// (registered models, versions, artifacts and the permissions of registered models) in any
/// order and keeps only what import reads of it; [`Gather::finish`] resolves and checks what
/// needs records seen together.
#[derive(Debug, Default)]
pub struct Gather {
    models: BTreeMap<String, BundleModel>,
    /// One slot per (model, version) named by a version or an artifact record.
    slot_of: BTreeMap<(String, String), usize>,
    slots: Vec<Slot>,
    /// Stored artifacts by source id: their slot and index there, for duplicates to name.
    copies: HashMap<String, (usize, usize)>,
    /// Duplicate artifacts, resolved once every copy is known.
    duplicates: Vec<Duplicate>,
    /// (model name, source object id) of each registered model's permissions record.
    permissions: Vec<(String, String)>,
    records: usize,
}

/// A version as its records are gathered: its own record (once seen) and its artifacts.
#[derive(Debug, Default)]
struct Slot {
    head: Option<VersionHead>,
    artifacts: Vec<BundleArtifact>,
    /// The first artifact record that named this slot (for the error when no version does).
    first_artifact: Option<String>,
}

#[derive(Debug)]
struct VersionHead {
    /// `<kind> <name>` of the version record, for errors.
    label: String,
    version: BundleVersion,
    /// The manifest digest the record gives.
    want: Option<String>,
}

#[derive(Debug)]
struct Duplicate {
    label: String,
    slot: usize,
    path: String,
    same_as: String,
    sha256: String,
    size: Option<u64>,
}

impl Gather {
    /// How many records were gathered.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Takes one record; records of other kinds are ignored.
    pub fn add(&mut self, r: &Record) -> Result<(), ModelsError> {
        match r.kind {
            Kind::RegisteredModel => {
                let name = r.meta_str("name").unwrap_or(&r.name).to_string();
                let stored = r
                    .stored
                    .first()
                    .ok_or_else(|| bad(r, "has no stored model.json"))?
                    .clone();
                self.models.insert(
                    name.clone(),
                    BundleModel {
                        name,
                        stored,
                        versions: Vec::new(),
                        permissions_id: None,
                        uc: r.meta_str("registry") == Some("uc"),
                    },
                );
            }
            Kind::ModelVersion => {
                let model = meta_str(r, "model")?;
                let version = meta_str(r, "version")?;
                let stored = r
                    .stored
                    .first()
                    .ok_or_else(|| bad(r, "has no stored version.json"))?
                    .clone();
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
                let head = VersionHead {
                    label: format!("{} {}", r.kind, r.name),
                    version: BundleVersion {
                        version: version.to_string(),
                        stored,
                        artifacts: Vec::new(),
                        missing,
                        complete,
                        run_stored: r.stored.get(1).cloned(),
                    },
                    want: r.meta_str("artifacts_sha256").map(str::to_string),
                };
                let slot = self.slot(model, version);
                self.slots[slot].head = Some(head);
            }
            Kind::ModelArtifact => {
                let model = meta_str(r, "model")?;
                let version = meta_str(r, "version")?;
                let path = meta_str(r, "path")?;
                if !is_safe_relative(path) {
                    return Err(bad(
                        r,
                        format!("artifact path {path:?} is not a safe relative path"),
                    ));
                }
                let slot = self.slot(model, version);
                let s = &mut self.slots[slot];
                if s.first_artifact.is_none() && s.head.is_none() {
                    s.first_artifact = Some(format!("{} {}", r.kind, r.name));
                }
                match r.stored.first() {
                    Some(stored) => {
                        let sha256 = r
                            .sha256
                            .clone()
                            .ok_or_else(|| bad(r, "has a stored file but no digest"))?;
                        self.copies
                            .insert(r.source_id.clone(), (slot, s.artifacts.len()));
                        s.artifacts.push(BundleArtifact {
                            path: path.to_string(),
                            size: r.size,
                            sha256,
                            stored: stored.clone(),
                        });
                    }
                    None => self.duplicates.push(Duplicate {
                        label: format!("{} {}", r.kind, r.name),
                        slot,
                        path: path.to_string(),
                        same_as: meta_str(r, "same_as")?.to_string(),
                        sha256: meta_str(r, "sha256")?.to_string(),
                        size: r.meta.get("size").and_then(|v| v.as_u64()),
                    }),
                }
            }
            Kind::Permissions if r.meta_str("request_object_type") == Some("registered-models") => {
                if let Some(name) = r.meta_str("object_name") {
                    let id = r.meta_str("object_id").unwrap_or(&r.source_id);
                    self.permissions.push((name.to_string(), id.to_string()));
                }
            }
            _ => return Ok(()),
        }
        self.records += 1;
        Ok(())
    }

    fn slot(&mut self, model: &str, version: &str) -> usize {
        let key = (model.to_string(), version.to_string());
        let next = self.slots.len();
        let slot = *self.slot_of.entry(key).or_insert(next);
        if slot == next {
            self.slots.push(Slot::default());
        }
        slot
    }

    /// The models gathered, each with its versions in ascending order and their artifacts
    /// sorted by path, once every duplicate artifact is resolved to its stored copy and every
    /// version's artifacts match the manifest digest its record gives.
    pub fn finish(self) -> Result<Vec<BundleModel>, ModelsError> {
        let Gather {
            mut models,
            slot_of,
            mut slots,
            copies,
            duplicates,
            permissions,
            records: _,
        } = self;
        for d in duplicates {
            let copy = copies.get(&d.same_as).map(|&(s, i)| &slots[s].artifacts[i]);
            let Some(copy) = copy else {
                return Err(inconsistent(
                    d.label,
                    format!(
                        "same_as names {:?}, which is not a stored artifact",
                        d.same_as
                    ),
                ));
            };
            if !is_sha256_hex(&d.sha256) || copy.sha256 != d.sha256 || d.size != Some(copy.size) {
                return Err(inconsistent(
                    d.label,
                    format!(
                        "its digest or size differs from the copy it names ({})",
                        d.same_as
                    ),
                ));
            }
            let artifact = BundleArtifact {
                path: d.path,
                size: copy.size,
                sha256: d.sha256,
                stored: copy.stored.clone(),
            };
            slots[d.slot].artifacts.push(artifact);
        }
        for ((model, version), slot) in slot_of {
            let s = std::mem::take(&mut slots[slot]);
            let Some(head) = s.head else {
                let label = s.first_artifact.unwrap_or_default();
                return Err(inconsistent(
                    label,
                    format!("its version {model}/{version} is not in the bundle"),
                ));
            };
            let mut v = head.version;
            v.artifacts = s.artifacts;
            v.artifacts
                .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
            if let Some(want) = head.want {
                let got = v.manifest_digest();
                if got != want {
                    return Err(inconsistent(
                        head.label,
                        format!("its artifacts' manifest digest is {got}, the record says {want}"),
                    ));
                }
            }
            let m = models.get_mut(&model).ok_or_else(|| {
                inconsistent(
                    head.label.clone(),
                    format!("its model {model:?} is not in the bundle"),
                )
            })?;
            m.versions.push(v);
        }
        for (name, id) in permissions {
            if let Some(m) = models.get_mut(&name) {
                m.permissions_id = Some(id);
            }
        }
        let mut out: Vec<BundleModel> = models.into_values().collect();
        for m in &mut out {
            m.versions.sort_by_key(|v| version_number(&v.version));
        }
        Ok(out)
    }
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

        // Records may stream in any order: artifacts before their version, a duplicate
        // before its copy.
        let mut reversed = Gather::default();
        for r in inv.records.iter().rev() {
            reversed.add(r).unwrap();
        }
        assert_eq!(reversed.records(), 5);
        let again = reversed.finish().unwrap();
        assert_eq!(again[0].versions.len(), 2);
        assert_eq!(
            again[0].versions[1].artifacts,
            models[0].versions[1].artifacts
        );
        // An artifact of a version the bundle does not hold is refused.
        let mut orphan = Gather::default();
        orphan.add(&inv.records[0]).unwrap();
        orphan.add(&inv.records[3]).unwrap();
        let e = orphan.finish().unwrap_err().to_string();
        assert!(
            e.contains("m/1/model.pkl") && e.contains("m/1 is not in the bundle"),
            "{e}"
        );
        // A duplicate whose digest differs from its copy is refused.
        inv.records[4].meta["sha256"] = json!("b".repeat(64));
        assert!(collect(&inv).is_err());
        inv.records[4].meta["sha256"] = json!(sha);
        // So is an artifact that climbs out of its root.
        inv.records[3].meta["path"] = json!("../x");
        assert!(collect(&inv).is_err());
    }
}
