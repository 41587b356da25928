//! The bundle format of ML models (spec §6.5): the `meta` of `registered_model`,
//! `model_version` and `model_artifact` records, their payload files ([`ModelFile`],
//! [`VersionFile`], [`RunFile`]), and the resources export writes for them.

use crate::bundle::inventory::{is_sha256_hex, Record};
use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::records::{
    artifacts_digest, check_model_name, is_artifact_path, is_version, meta_u64, Out,
};
use crate::bundle::resource::{Content, Part, Resource};
use crate::bundle::ErrorCode;
use crate::kinds::format::{meta_value, payload_part};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `meta` of a `registered_model` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredModelMeta {
    /// The model's name.
    pub name: String,
    /// The version numbers exported (absent in bundles written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_versions: Option<Vec<String>>,
    /// `uc` for a model of Unity Catalog's registry; absent for a workspace registry's or an
    /// MLflow server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
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
    /// `uc` for a version of Unity Catalog's registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
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

/// `models/⟨name⟩/model.json` (§6.5): a registered model as the registry described it,
/// without its versions (they have records of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    /// The model's name.
    pub name: String,
    /// Creation time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    /// Last update, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its tags; left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Its aliases; left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<Alias>,
    /// Unity Catalog: its owner (a user, group or service principal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// A `{key, value}` tag of a model or version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag's key.
    pub key: String,
    /// Its value (`""` when absent).
    #[serde(default)]
    pub value: String,
}

/// An alias of a [`ModelFile`]: a name pointing at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// The alias.
    pub alias: String,
    /// The version number it points at.
    pub version: String,
}

/// `models/⟨name⟩/versions/⟨version⟩/version.json` (§6.5): a model version as the registry
/// described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionFile {
    /// The model's name.
    pub name: String,
    /// The version number, as a string.
    pub version: String,
    /// Creation time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    /// Last update, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Its stage in a workspace registry (`None`, `Staging`, `Production`, `Archived`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the registry says its files came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The MLflow run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// A link to that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    /// Its registry status (`READY`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Detail about the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Its tags; left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The aliases pointing at it; left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Unity Catalog: the id of the workspace whose tracking server holds `run_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_workspace_id: Option<String>,
}

/// `models/⟨name⟩/versions/⟨version⟩/run.json` (§6.5): the `run` object of `runs/get` for the
/// version's source run — `info`, `data` (params, the latest value of each metric, tags) and
/// whatever else the server gave — kept verbatim by design: it is provenance, and import
/// replays only `data.params`, `data.metrics` and `data.tags` from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunFile(pub Map<String, Value>);

/// What export learned about a version beyond the registry's answer.
#[derive(Debug, Clone, Default)]
pub struct VersionDetails {
    /// The registry's status of the version (`READY`, …).
    pub status: Option<String>,
    /// Where the files were read.
    pub artifact_location: Option<String>,
    /// Paths of the files that could not be read.
    pub missing_artifacts: Vec<String>,
    /// The source run, stored as `run.json` when present.
    pub run: Option<RunFile>,
}

impl Resource {
    /// A registered model record from its file, with the version numbers exported.
    fn registered_model_record(file: ModelFile, selected: Option<Vec<String>>) -> Self {
        let meta = RegisteredModelMeta {
            name: file.name.clone(),
            selected_versions: selected,
            registry: None,
        };
        let mut r = Resource::new(
            Kind::RegisteredModel,
            &file.name,
            &file.name,
            meta_value(&meta),
        );
        r.parts.push(payload_part(
            LogicalPath::file(segs(["models", &file.name, "model"]), Some("json")),
            &file,
        ));
        r
    }

    /// A model version record from its file, its artifact summary (`(path, sha256, size)` of
    /// every file) and what export learned about it.
    fn model_version_record(
        file: VersionFile,
        artifacts: &[(&str, &str, u64)],
        complete: bool,
        details: VersionDetails,
    ) -> Self {
        let id = format!("{}/{}", file.name, file.version);
        let meta = ModelVersionMeta {
            model: file.name.clone(),
            version: file.version.clone(),
            run_id: file.run_id.clone(),
            source: file.source.clone(),
            current_stage: file.current_stage.clone(),
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
            registry: None,
        };
        let mut r = Resource::new(Kind::ModelVersion, &id, &id, meta_value(&meta));
        let (name, version) = (file.name.as_str(), file.version.as_str());
        let folder = |leaf: &str| segs(["models", name, "versions", version, leaf]);
        r.parts.push(payload_part(
            LogicalPath::file(folder("version"), Some("json")),
            &file,
        ));
        if let Some(run) = details.run {
            r.parts.push(payload_part(
                LogicalPath::file(folder("run"), Some("json")),
                &run,
            ));
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

/// The rules of §6.5 for a `registered_model` record (E307).
pub(crate) fn check_registered_model(r: &Record, out: &mut Out) {
    out.result(r, check_model_name(&r.name));
    if r.meta_str("name").is_some_and(|n| n != r.name) {
        out.invalid(r, "meta.name differs from the record's name");
    }
    if r.stored.is_empty() {
        out.invalid(r, "has no stored model.json");
    }
    check_registry(r, out);
}

/// `meta.registry`, when present, is `uc`, and then the name is three-level (§6.5).
fn check_registry(r: &Record, out: &mut Out) {
    match r.meta.get("registry") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) if s == "uc" => {
            let model = r.meta_str("model").unwrap_or(&r.name);
            let parts: Vec<&str> = model.split('.').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                out.invalid(
                    r,
                    format!(
                        "a Unity Catalog model's name {model:?} is not <catalog>.<schema>.<model>"
                    ),
                );
            }
        }
        Some(other) => out.invalid(r, format!("meta.registry {other} is not \"uc\"")),
    }
}

/// What the cross-record rules of §6.5 need of the model records, gathered as each record is
/// checked on its own ([`ModelFacts::see`]) and checked together once every record was seen
/// ([`ModelFacts::check`]). A reader keeps these few strings per record instead of the record
/// whole, so that a bundle of many model versions is verified in little memory per record
/// (issue #15); [`crate::bundle::records::check`] runs the same two steps on whole records.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ModelFacts {
    /// Names of the registered models.
    models: std::collections::BTreeSet<Box<str>>,
    /// Every version record with a string `meta.model` and `meta.version`, in inventory order.
    versions: Vec<VersionFact>,
    /// Every artifact record with a clean `meta.path`, in inventory order.
    artifacts: Vec<ArtifactFact>,
    /// Artifact records with a stored file, by `source_id` (what a duplicate's `same_as`
    /// names): the stored copy's `sha256` and size.
    stored: std::collections::BTreeMap<Box<str>, (Digest, u64)>,
}

/// A SHA-256 as [`ModelFacts`] keeps it: 32 bytes when it is 64 lowercase hex digits, as a
/// valid one is (half the memory of the text, for the one or two digests of every model
/// record, issue #15), else the text as given — checked and reported elsewhere, and compared
/// and quoted here as it is. A missing digest is the empty text.
#[derive(Debug, Clone, PartialEq)]
enum Digest {
    Bytes([u8; 32]),
    Text(Box<str>),
}

impl Digest {
    fn new(text: &str) -> Digest {
        let mut bytes = [0u8; 32];
        if is_sha256_hex(text) && hex::decode_to_slice(text, &mut bytes).is_ok() {
            Digest::Bytes(bytes)
        } else {
            Digest::Text(text.into())
        }
    }

    fn of(text: Option<&str>) -> Digest {
        Digest::new(text.unwrap_or_default())
    }

    /// The digest as the bundle writes it.
    fn hex(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Digest::Bytes(b) => hex::encode(b).into(),
            Digest::Text(t) => (&**t).into(),
        }
    }

    /// True when `text` is this digest as the bundle writes it.
    fn is(&self, text: &str) -> bool {
        match self {
            Digest::Bytes(_) => Digest::new(text) == *self,
            Digest::Text(t) => **t == *text,
        }
    }
}

/// A version record as [`ModelFacts`] keeps it.
#[derive(Debug, Clone, PartialEq)]
struct VersionFact {
    /// Its name when it is not `model/version` (a problem already reported).
    odd_name: Option<Box<str>>,
    model: Box<str>,
    version: Box<str>,
    artifacts_sha256: Option<Digest>,
    artifact_count: Option<u64>,
    artifact_bytes: Option<u64>,
}

/// An artifact record as [`ModelFacts`] keeps it.
#[derive(Debug, Clone, PartialEq)]
struct ArtifactFact {
    /// Its name when it is not `model/version/path` (a problem already reported).
    odd_name: Option<Box<str>>,
    model: Box<str>,
    version: Box<str>,
    path: Box<str>,
    /// Its stored copy's digest and size; `None` for a duplicate (no stored file).
    stored: Option<(Digest, u64)>,
    /// A duplicate's `meta.same_as`, `meta.sha256` and `meta.size`.
    same_as: Option<Box<str>>,
    listed_sha256: Option<Box<str>>,
    listed_size: Option<u64>,
}

impl VersionFact {
    /// The record's name.
    fn name(&self) -> std::borrow::Cow<'_, str> {
        match &self.odd_name {
            Some(n) => (&**n).into(),
            None => format!("{}/{}", self.model, self.version).into(),
        }
    }
}

impl ArtifactFact {
    /// The record's name.
    fn name(&self) -> std::borrow::Cow<'_, str> {
        match &self.odd_name {
            Some(n) => (&**n).into(),
            None => format!("{}/{}/{}", self.model, self.version, self.path).into(),
        }
    }
}

/// One line of a version's §6.5 artifact manifest: path, SHA-256, size.
type ManifestLine<'a> = (&'a str, &'a Digest, u64);

/// The subject a problem of record `kind` `name` is reported under.
fn subject(kind: Kind, name: &str) -> String {
    format!("record {kind} {name}")
}

impl ModelFacts {
    /// Runs the rules of a `registered_model`, `model_version` or `model_artifact` record
    /// that need no other record (E307, and E303 for an artifact's path), and keeps what the
    /// rest need. Other kinds are ignored.
    pub(crate) fn see(&mut self, r: &Record, out: &mut Out) {
        match r.kind {
            Kind::RegisteredModel => {
                check_registered_model(r, out);
                self.models.insert(r.name.as_str().into());
            }
            Kind::ModelVersion => self.see_version(r, out),
            Kind::ModelArtifact => {
                if !r.stored.is_empty() {
                    self.stored.insert(
                        r.source_id.as_str().into(),
                        (Digest::of(r.sha256.as_deref()), r.size),
                    );
                }
                self.see_artifact(r, out);
            }
            _ => {}
        }
    }

    fn see_version(&mut self, r: &Record, out: &mut Out) {
        let (Some(model), Some(version)) = (r.meta_str("model"), r.meta_str("version")) else {
            out.invalid(r, "meta.model or meta.version is not a string");
            return;
        };
        out.result(r, check_model_name(model));
        if !is_version(version) {
            out.invalid(
                r,
                format!("meta.version {version:?} is not a version number"),
            );
        }
        let odd_name = (r.name != format!("{model}/{version}")).then(|| r.name.as_str().into());
        if odd_name.is_some() {
            out.invalid(r, "name is not meta.model/meta.version");
        }
        if r.stored.is_empty() {
            out.invalid(r, "has no stored version.json");
        }
        check_registry(r, out);
        self.versions.push(VersionFact {
            odd_name,
            model: model.into(),
            version: version.into(),
            artifacts_sha256: r.meta_str("artifacts_sha256").map(Digest::new),
            artifact_count: meta_u64(r, "artifact_count"),
            artifact_bytes: meta_u64(r, "artifact_bytes"),
        });
    }

    fn see_artifact(&mut self, r: &Record, out: &mut Out) {
        let (Some(model), Some(version), Some(path)) = (
            r.meta_str("model"),
            r.meta_str("version"),
            r.meta_str("path"),
        ) else {
            out.invalid(r, "meta.model, meta.version or meta.path is not a string");
            return;
        };
        if !is_artifact_path(path) {
            out.push(
                ErrorCode::RecordMismatch,
                r,
                format!(
                    "meta.path {path:?} is not a relative path without empty, `.` or `..` components"
                ),
            );
            return;
        }
        let odd_name =
            (r.name != format!("{model}/{version}/{path}")).then(|| r.name.as_str().into());
        if odd_name.is_some() {
            out.invalid(r, "name is not meta.model/meta.version/meta.path");
        }
        self.artifacts.push(ArtifactFact {
            odd_name,
            model: model.into(),
            version: version.into(),
            path: path.into(),
            stored: (!r.stored.is_empty()).then(|| (Digest::of(r.sha256.as_deref()), r.size)),
            same_as: r.meta_str("same_as").map(Into::into),
            listed_sha256: r.meta_str("sha256").map(Into::into),
            listed_size: meta_u64(r, "size"),
        });
    }

    /// Frees what the growth of its lists left spare: it is kept until the bundle is checked.
    pub(crate) fn shrink(&mut self) {
        self.versions.shrink_to_fit();
        self.artifacts.shrink_to_fit();
    }

    /// The rules of §6.5 that need other records: a version's model has a record (E307); an
    /// artifact's version has a record (E307), a duplicate's `same_as` names a stored copy
    /// with its digest and size (E303); and each version's `artifacts_sha256`,
    /// `artifact_count` and `artifact_bytes` are what its artifact records give (E303).
    pub(crate) fn check(&self, problems: &mut crate::bundle::ProblemList) {
        use crate::bundle::BundleError;
        let mut push = |code: ErrorCode, kind: Kind, name: &str, detail: String| {
            problems.push(BundleError::new(code, subject(kind, name), detail));
        };
        // Per version: (path, sha256, size) of each artifact, for §6.5's manifest digest.
        let mut manifests: std::collections::BTreeMap<(&str, &str), Vec<ManifestLine>> =
            std::collections::BTreeMap::new();
        for v in &self.versions {
            if !self.models.contains(&v.model) {
                push(
                    ErrorCode::RecordInvalid,
                    Kind::ModelVersion,
                    &v.name(),
                    format!("its model {:?} has no registered_model record", &*v.model),
                );
            }
            manifests.entry((&v.model, &v.version)).or_default();
        }
        for a in &self.artifacts {
            let Some(lines) = manifests.get_mut(&(&*a.model, &*a.version)) else {
                push(
                    ErrorCode::RecordInvalid,
                    Kind::ModelArtifact,
                    &a.name(),
                    format!(
                        "its version {}/{} has no model_version record",
                        a.model, a.version
                    ),
                );
                continue;
            };
            let (sha, size) = match &a.stored {
                // A stored copy's digest is checked against the manifest (E303) already.
                Some((sha, size)) => (sha, *size),
                None => match self.duplicate(a) {
                    Ok(e) => e,
                    Err(why) => {
                        push(
                            ErrorCode::RecordMismatch,
                            Kind::ModelArtifact,
                            &a.name(),
                            why,
                        );
                        continue;
                    }
                },
            };
            lines.push((&a.path, sha, size));
        }
        for v in &self.versions {
            let files = manifests
                .get(&(&*v.model, &*v.version))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let got = artifacts_digest(files.iter().map(|(p, s, _)| (*p, s.hex())));
            match &v.artifacts_sha256 {
                Some(want) if want.is(&got) => {}
                Some(want) => push(
                    ErrorCode::RecordMismatch,
                    Kind::ModelVersion,
                    &v.name(),
                    format!(
                        "meta.artifacts_sha256 is {}, its {} artifact records give {got}",
                        want.hex(),
                        files.len()
                    ),
                ),
                // Only a 1.0 bundle can lack it (fixtures/bundles/golden-v1.zip does): from 1.1
                // the inventory check refuses a version without it (E300, §6.5).
                None => {}
            }
            let bytes: u64 = files.iter().map(|f| f.2).sum();
            if v.artifact_count.is_some_and(|n| n != files.len() as u64)
                || v.artifact_bytes.is_some_and(|n| n != bytes)
            {
                push(
                    ErrorCode::RecordMismatch,
                    Kind::ModelVersion,
                    &v.name(),
                    format!(
                        "meta.artifact_count/artifact_bytes differ from its artifact records ({} files, {bytes} bytes)",
                        files.len()
                    ),
                );
            }
        }
    }

    /// A duplicate artifact (§6.5): its `same_as` copy's digest and size, checked against its
    /// own.
    fn duplicate<'s>(&'s self, a: &'s ArtifactFact) -> Result<(&'s Digest, u64), String> {
        let Some(first) = a.same_as.as_deref() else {
            return Err("has no stored file and no meta.same_as".into());
        };
        let Some((copy_sha, copy_size)) = self.stored.get(first) else {
            return Err(format!(
                "meta.same_as names {first:?}, which is not a stored model_artifact"
            ));
        };
        let sha = a.listed_sha256.as_deref().unwrap_or("");
        if !is_sha256_hex(sha) || !copy_sha.is(sha) || a.listed_size != Some(*copy_size) {
            return Err(format!(
                "meta.sha256 or meta.size differs from the copy it names ({first})"
            ));
        }
        Ok((copy_sha, *copy_size))
    }
}

/// The model versions of a bundle being written whose `meta.artifacts_sha256` is JSON `null`
/// — versions whose artifacts were streamed into the bundle (§11, streamed files), whose
/// digests the writer computes as it writes them — and the artifact records that give it.
/// The writer shows it every record as it plans them ([`StreamedVersions::see`]), and once the
/// payload is written asks for the digests ([`StreamedVersions::digests`]), each by the same
/// §6.5 manifest [`ModelFacts::check`] gathers for the reader's check: a stored copy's digest, or
/// a duplicate's `meta.sha256`.
#[derive(Default)]
pub(crate) struct StreamedVersions {
    /// (model, version) of each version waiting for its digest.
    pending: std::collections::BTreeSet<(String, String)>,
    /// Every artifact record seen.
    artifacts: Vec<SeenArtifact>,
}

/// An artifact record as [`StreamedVersions`] keeps it: its version (model, version), its
/// path, the number the writer gave its record, and its listed digest (`meta.sha256`) when it
/// has no stored copy, whose digest is not known until it is written.
type SeenArtifact = ((String, String), String, usize, Option<String>);

impl StreamedVersions {
    /// Notes record number `row` (the writer's own numbering), of `kind` with `meta`; `stored`
    /// says whether its primary stored path is a file (whose digest is the record's).
    pub(crate) fn see(&mut self, row: usize, kind: Kind, meta: &Value, stored: bool) {
        let text = |k: &str| meta.get(k).and_then(Value::as_str);
        match kind {
            Kind::ModelVersion if meta.get("artifacts_sha256") == Some(&Value::Null) => {
                if let (Some(model), Some(version)) = (text("model"), text("version")) {
                    self.pending.insert((model.into(), version.into()));
                }
            }
            Kind::ModelArtifact => {
                let (Some(model), Some(version), Some(path)) =
                    (text("model"), text("version"), text("path"))
                else {
                    return;
                };
                let listed = (!stored).then(|| text("sha256").unwrap_or_default().to_string());
                self.artifacts
                    .push(((model.into(), version.into()), path.into(), row, listed));
            }
            _ => {}
        }
    }

    /// Forgets the artifacts of versions that wait for nothing: usually all of them.
    pub(crate) fn shrink(&mut self) {
        let pending = &self.pending;
        self.artifacts.retain(|(key, ..)| pending.contains(key));
        self.artifacts.shrink_to_fit();
    }

    /// True when no version waits for its digest.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The digest of every waiting version, keyed by (model, version), once the payload is
    /// written: `digest(row)` gives a stored copy's digest, and `position(row)` its record's
    /// place in the inventory (the order in which a version's lines are gathered).
    pub(crate) fn digests(
        self,
        digest: impl Fn(usize) -> String,
        position: impl Fn(usize) -> usize,
    ) -> std::collections::BTreeMap<(String, String), String> {
        let StreamedVersions {
            pending,
            mut artifacts,
        } = self;
        // In inventory order, as the reader gathers them (a version's lines are then sorted by
        // path, ties kept in this order).
        artifacts.sort_by_key(|(_, _, row, _)| position(*row));
        let mut manifests: std::collections::BTreeMap<(String, String), Vec<(String, String)>> =
            pending.into_iter().map(|k| (k, Vec::new())).collect();
        for (key, path, row, listed) in artifacts {
            if let Some(lines) = manifests.get_mut(&key) {
                lines.push((path, listed.unwrap_or_else(|| digest(row))));
            }
        }
        manifests
            .into_iter()
            .map(|(key, files)| {
                let digest = artifacts_digest(files.iter().map(|(p, s)| (p.as_str(), s.as_str())));
                (key, digest)
            })
            .collect()
    }

    /// Fills `meta.artifacts_sha256` of a version record from `digests`, if it waits for one.
    pub(crate) fn fill(
        kind: Kind,
        meta: &mut Value,
        digests: &std::collections::BTreeMap<(String, String), String>,
    ) {
        if kind != Kind::ModelVersion || meta.get("artifacts_sha256") != Some(&Value::Null) {
            return;
        }
        let text = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
        let key = (text("model").to_string(), text("version").to_string());
        let digest = digests
            .get(&key)
            .cloned()
            .unwrap_or_else(|| artifacts_digest(std::iter::empty::<(&str, &str)>()));
        if let Some(m) = meta.as_object_mut() {
            m.insert("artifacts_sha256".into(), Value::String(digest));
        }
    }
}

/// The API's side: conversions between the registry's types and the model files, and the
/// constructors export calls with what the registry returned.
mod wire {
    use super::{Alias, ModelFile, RunFile, Tag, VersionDetails, VersionFile};
    use crate::bundle::resource::Resource;
    use crate::kinds::format::PayloadFile;
    use crate::model::mlflow::{ModelAlias, ModelVersion, RegisteredModel};
    use crate::model::KeyValue;
    use serde_json::Value;

    fn tags(t: &[KeyValue]) -> Vec<Tag> {
        t.iter()
            .map(|t| Tag {
                key: t.key.clone(),
                value: t.value.clone(),
            })
            .collect()
    }

    fn key_values(t: Vec<Tag>) -> Vec<KeyValue> {
        t.into_iter()
            .map(|t| KeyValue {
                key: t.key,
                value: t.value,
            })
            .collect()
    }

    impl From<&RegisteredModel> for ModelFile {
        /// Leaves out `latest_versions`: a changing view of the versions, which have records
        /// of their own.
        fn from(m: &RegisteredModel) -> Self {
            ModelFile {
                name: m.name.clone(),
                creation_timestamp: m.creation_timestamp,
                last_updated_timestamp: m.last_updated_timestamp,
                user_id: m.user_id.clone(),
                description: m.description.clone(),
                tags: tags(&m.tags),
                aliases: m
                    .aliases
                    .iter()
                    .map(|a| Alias {
                        alias: a.alias.clone(),
                        version: a.version.clone(),
                    })
                    .collect(),
                owner: m.owner.clone(),
            }
        }
    }

    impl PayloadFile for ModelFile {
        type Wire = RegisteredModel;

        fn into_wire(self) -> RegisteredModel {
            RegisteredModel {
                name: self.name,
                creation_timestamp: self.creation_timestamp,
                last_updated_timestamp: self.last_updated_timestamp,
                user_id: self.user_id,
                description: self.description,
                latest_versions: Vec::new(),
                tags: key_values(self.tags),
                aliases: self
                    .aliases
                    .into_iter()
                    .map(|a| ModelAlias {
                        alias: a.alias,
                        version: a.version,
                    })
                    .collect(),
                owner: self.owner,
            }
        }
    }

    impl From<&ModelVersion> for VersionFile {
        fn from(v: &ModelVersion) -> Self {
            VersionFile {
                name: v.name.clone(),
                version: v.version.clone(),
                creation_timestamp: v.creation_timestamp,
                last_updated_timestamp: v.last_updated_timestamp,
                user_id: v.user_id.clone(),
                current_stage: v.current_stage.clone(),
                description: v.description.clone(),
                source: v.source.clone(),
                run_id: v.run_id.clone(),
                run_link: v.run_link.clone(),
                status: v.status.clone(),
                status_message: v.status_message.clone(),
                tags: tags(&v.tags),
                aliases: v.aliases.clone(),
                run_workspace_id: v.run_tracking_server_id.clone(),
            }
        }
    }

    impl PayloadFile for VersionFile {
        type Wire = ModelVersion;

        fn into_wire(self) -> ModelVersion {
            ModelVersion {
                name: self.name,
                version: self.version,
                creation_timestamp: self.creation_timestamp,
                last_updated_timestamp: self.last_updated_timestamp,
                user_id: self.user_id,
                current_stage: self.current_stage,
                description: self.description,
                source: self.source,
                run_id: self.run_id,
                run_link: self.run_link,
                status: self.status,
                status_message: self.status_message,
                tags: key_values(self.tags),
                aliases: self.aliases,
                run_tracking_server_id: self.run_workspace_id,
            }
        }
    }

    impl RunFile {
        /// The file of a `runs/get` answer's `run`; `None` when it is not an object.
        pub fn from_wire(run: &Value) -> Option<Self> {
            run.as_object().map(|m| RunFile(m.clone()))
        }
    }

    impl PayloadFile for RunFile {
        /// The `run` object, as the registry's client takes it.
        type Wire = Value;

        fn into_wire(self) -> Value {
            Value::Object(self.0)
        }
    }

    impl Resource {
        /// A registered model, without `latest_versions` (the versions have records of their
        /// own).
        pub fn registered_model(m: &RegisteredModel) -> Self {
            Self::registered_model_with(m, None)
        }

        /// A registered model with the version numbers exported.
        pub fn registered_model_with(m: &RegisteredModel, selected: Option<Vec<String>>) -> Self {
            Resource::registered_model_record(ModelFile::from(m), selected)
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
            let artifacts: Vec<(&str, &str, u64)> = artifacts.into_iter().collect();
            Resource::model_version_record(VersionFile::from(v), &artifacts, complete, details)
        }
    }
}
