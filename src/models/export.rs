//! Model export: lists the registry's models and their selected versions, fetches each
//! version's source run (params, metrics, tags) as provenance, and streams every artifact file
//! into the bundle builder, hashing as it goes.
//!
//! * Artifacts pass through in constant memory (see [`super::pipe`]); a file whose byte count
//!   differs from the listing is listed again and read again, and the change is reported.
//! * Identical files (same SHA-256 and size) are stored once: later copies get a record
//!   without stored bytes whose `meta.same_as` names the first copy (spec §6.5).
//! * Records are committed in an order that makes a resumed export safe: a model first, then
//!   each version's artifacts, then the version (which lists its artifacts' manifest digest).
//!   With a journal, each stored artifact's digest is kept so a resumed export still
//!   recognises duplicates; without one, a resumed export re-reads such files to hash them.
//!
//! Files are exported one at a time in a fixed order (model name, version number, path), so
//! the same registry always gives the same bundle — which copy of a duplicate is stored
//! included.

use super::error::{stops_run, ModelsError};
use super::manifest::ArtifactEntry;
use super::pipe::{ChannelReader, Known, PipeState, StreamFailures, StreamedFile, DEPTH};
use super::registry::{ArtifactLocation, ListedFile, Registry};
use super::select::{NameFilter, VersionSelection};
use super::steps::StepLog;
use super::Problem;
use crate::bundle::resource::Content;
use crate::bundle::{BagBuilder, Resource};
use crate::client::ClientError;
use crate::kinds::model::format::{RunFile, VersionDetails};
use crate::model::mlflow::{ModelVersion, RegisteredModel};
use crate::model::Kind;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Which versions of each model.
    pub versions: VersionSelection,
    /// Which models.
    pub names: NameFilter,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            versions: VersionSelection::All,
            names: NameFilter::all(),
        }
    }
}

/// What an export of models did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// The registry read.
    pub registry: String,
    /// Registered models exported.
    pub models: u64,
    /// Versions exported.
    pub versions: u64,
    /// Artifact files exported (stored or deduplicated).
    pub artifacts: u64,
    /// Bytes of artifact files stored.
    pub stored_bytes: u64,
    /// Artifact files identical to one already stored, recorded without a second copy.
    pub deduplicated: u64,
    /// Bytes those duplicates would have taken.
    pub deduplicated_bytes: u64,
    /// Records already in the bundle from an interrupted run, left as they were.
    pub resumed: u64,
    /// Things the user should know that did not stop anything (a file that changed during
    /// the export, a source run that is gone).
    pub warnings: Vec<Problem>,
    /// Objects that could not be exported, with the reason.
    pub problems: Vec<Problem>,
}

/// What the journal keeps per stored artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournaledArtifact {
    sha256: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    same_as: Option<String>,
    /// The warning the file gave (it changed while it was read), for the report of a resumed
    /// run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

fn journal_key(id: &str) -> String {
    format!("models/artifact:{id}")
}

/// What the journal keeps per version, written just before the version's record is staged:
/// everything its report lines need, so a resumed run that finds the version staged reports
/// it (and its artifacts) as the uninterrupted run did, without reading the registry again.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JournaledVersion {
    /// Artifact files listed (found).
    #[serde(default)]
    listed: Vec<String>,
    /// Why the artifacts could not be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    listing_error: Option<String>,
    /// Artifact files not exported: path and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    failed: Vec<(String, String)>,
    /// Warnings about the version (its source run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

fn version_key(id: &str) -> String {
    format!("models/version:{id}")
}

/// Journals what a version's report lines need, before its record is staged.
fn remember_version(
    journal: Option<&dyn StepLog>,
    id: &str,
    jv: &JournaledVersion,
) -> Result<(), ModelsError> {
    match journal {
        Some(j) => j.remember(
            &version_key(id),
            serde_json::to_value(jv).map_err(|e| ModelsError::task("journal", e))?,
        ),
        None => Ok(()),
    }
}

/// How many times one file is read again after its byte count disagreed with the listing.
const CHANGE_ATTEMPTS: usize = 3;

/// Where export puts model records: a bundle builder, or anything that holds one (the export
/// pipeline's context). `contains` and `add` are called from blocking threads; artifact bytes
/// arrive as [`Content::Stream`] parts to be read to the end.
pub trait StageSink: Send + Sync {
    /// True when a record of `kind` with `source_id` is already staged (a resumed run skips
    /// it).
    fn contains(&self, kind: Kind, source_id: &str) -> bool;
    /// Stages and commits one record with its bytes.
    fn add(&self, resource: Resource) -> Result<(), ModelsError>;
    /// `count` more objects of `kind` were found (for progress).
    fn found(&self, _kind: Kind, _count: u64) {}
    /// One object could not be exported, with the reason (it is in the report too).
    fn failed(&self, _kind: Kind, _name: &str, _source_id: &str, _why: &str) {}
    /// True when the sink takes versions whose large artifacts are streamed from the registry
    /// into the bundle as it is written ([`Deferred`]); otherwise every artifact is staged.
    fn streams(&self) -> bool {
        false
    }
    /// Takes the versions held back for streaming, once a registry's export has ended. Only
    /// called when [`StageSink::streams`] said yes.
    fn defer(&self, _deferred: Deferred) -> Result<(), ModelsError> {
        Err(ModelsError::task(
            "bundle builder",
            "this sink does not take streamed artifacts",
        ))
    }
}

impl StageSink for BagBuilder {
    fn contains(&self, kind: Kind, source_id: &str) -> bool {
        BagBuilder::contains(self, kind, source_id)
    }

    fn add(&self, resource: Resource) -> Result<(), ModelsError> {
        BagBuilder::add(self, resource).map_err(ModelsError::Bundle)
    }
}

/// Exports the models of `registry` selected by `opts` into `builder`. Failures of single
/// models, versions or artifacts are collected in the report; the error is for failures
/// that stop everything (the registry cannot be listed, the credentials are refused, the
/// bundle cannot be written).
pub async fn export_models(
    registry: &Registry,
    opts: &ExportOptions,
    builder: Arc<dyn StageSink>,
    journal: Option<&dyn StepLog>,
    progress: &ProgressBar,
) -> Result<ExportReport, ModelsError> {
    let mut run = Run::new(registry, builder, progress);
    run.stream = run.builder.streams();
    if let Some(j) = journal {
        for (key, data) in j.recall_prefix("models/artifact:") {
            let Some(id) = key.strip_prefix("models/artifact:") else {
                continue;
            };
            if let Ok(a) = serde_json::from_value::<JournaledArtifact>(data.clone()) {
                if a.same_as.is_none() {
                    Arc::make_mut(&mut run.known)
                        .entry(a.sha256)
                        .or_insert_with(|| (id.to_string(), a.size));
                }
            }
        }
    }
    let models: Vec<RegisteredModel> = registry
        .list_models()
        .await?
        .into_iter()
        .filter(|m| opts.names.matches(m))
        .collect();
    run.builder
        .found(Kind::RegisteredModel, models.len() as u64);
    for m in models {
        run.model(m, &opts.versions, journal).await?;
    }
    if !run.deferred.is_empty() {
        let versions = std::mem::take(&mut run.deferred);
        run.builder.defer(Deferred {
            registry: registry.clone(),
            versions,
        })?;
    }
    Ok(run.report)
}

/// Artifact files at least this large are streamed into the bundle when the export allows it
/// (§11, streamed files); smaller ones are staged, which costs little.
pub const STREAM_MIN: u64 = 1 << 20;

/// Model versions held back until the bundle is written, because some of their artifacts are
/// streamed from the registry straight into the bundle file (spec §11, streamed files) instead of being
/// staged first: a large artifact then crosses the disk once. A file is streamed only when its
/// listed size is at least [`STREAM_MIN`] and no other file of the export has that size, so it
/// cannot be a duplicate of another (§6.5): deduplication and the bundle's bytes are the same
/// as when every file is staged. Nothing held here is staged or journaled: an interrupted
/// export exports these versions again when resumed.
pub struct Deferred {
    registry: Registry,
    versions: Vec<DeferredVersion>,
}

/// One held-back version: what its record needs and where each of its files stands.
struct DeferredVersion {
    v: ModelVersion,
    provenance: Option<RunFile>,
    loc: ArtifactLocation,
    notes: Vec<String>,
    jv: JournaledVersion,
    files: Vec<(ListedFile, FileState)>,
}

/// Where one artifact file of a held-back version stands.
enum FileState {
    /// To be read from the registry when the writer reaches its entry.
    Streamed,
    /// Staged (or recorded as a duplicate), with its digest.
    Entry(ArtifactEntry),
    /// Not exported; reported already.
    Failed,
}

impl DeferredVersion {
    fn id(&self) -> String {
        format!("{}/{}", self.v.name, self.v.version)
    }

    fn streams(&self) -> bool {
        self.files
            .iter()
            .any(|(_, s)| matches!(s, FileState::Streamed))
    }

    /// Records how file `i` ended.
    fn settle(&mut self, i: usize, outcome: Result<ArtifactEntry, String>) {
        let state = match outcome {
            Ok(e) => FileState::Entry(e),
            Err(msg) => {
                let path = self.files[i].0.path.clone();
                self.notes
                    .push(format!("artifact {path} not exported: {msg}"));
                self.jv.failed.push((path, msg));
                FileState::Failed
            }
        };
        self.files[i].1 = state;
    }

    /// Its artifact summary (streamed files with their listed size and no digest yet) and the
    /// paths not exported.
    fn summary(&self) -> (Vec<ArtifactEntry>, Vec<String>) {
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        for (f, state) in &self.files {
            match state {
                FileState::Entry(e) => entries.push(e.clone()),
                FileState::Streamed => entries.push(ArtifactEntry {
                    path: f.path.clone(),
                    size: f.size.unwrap_or(0),
                    sha256: String::new(),
                }),
                FileState::Failed => missing.push(f.path.clone()),
            }
        }
        (entries, missing)
    }
}

impl Deferred {
    /// Versions held back.
    pub fn versions(&self) -> usize {
        self.versions.len()
    }

    /// The records to write with the staged ones: each held-back version's record, whose
    /// `artifacts_sha256` the writer fills in once the streamed files' digests are known
    /// (§11, streamed files), and a record per streamed file whose bytes are downloaded when the writer
    /// reaches its entry. A streamed file that fails is named in `failures`.
    pub(crate) fn resources(&self, failures: &StreamFailures) -> Vec<Resource> {
        let mut out = Vec::new();
        for dv in &self.versions {
            let id = dv.id();
            for (f, state) in &dv.files {
                if let FileState::Streamed = state {
                    let size = f.size.unwrap_or(0);
                    let reader = StreamedFile::new(
                        self.registry.clone(),
                        dv.loc.clone(),
                        f.path.clone(),
                        size,
                        format!("{id}/{}", f.path),
                        Arc::clone(failures),
                    );
                    out.push(Resource::model_artifact(
                        &dv.v.name,
                        &dv.v.version,
                        &f.path,
                        Content::Stream {
                            len: size,
                            reader: Box::new(reader),
                        },
                    ));
                }
            }
            let (entries, missing) = dv.summary();
            let complete = missing.is_empty();
            let mut r = version_record(
                &self.registry,
                &dv.v,
                dv.provenance.clone(),
                Some(&dv.loc),
                &entries,
                missing,
                dv.notes.clone(),
                complete,
            );
            if dv.streams() {
                if let Some(m) = r.meta.as_object_mut() {
                    m.insert("artifacts_sha256".into(), serde_json::Value::Null);
                }
            }
            out.push(r);
        }
        out
    }
}

/// Stages the held-back versions the ordinary way — their streamed files downloaded and staged,
/// then their records — after a streamed write failed (a file changed or a download broke
/// while the bundle was written). Reports like [`export_models`].
pub async fn stage_deferred(
    deferred: Deferred,
    builder: Arc<dyn StageSink>,
    journal: Option<&dyn StepLog>,
) -> Result<ExportReport, ModelsError> {
    let hidden = ProgressBar::hidden();
    let mut run = Run::new(&deferred.registry, builder, &hidden);
    for mut dv in deferred.versions {
        for i in 0..dv.files.len() {
            if let FileState::Streamed = dv.files[i].1 {
                let (v, loc, f) = (dv.v.clone(), dv.loc.clone(), dv.files[i].0.clone());
                let id = format!("{}/{}/{}", v.name, v.version, f.path);
                let outcome = run.store(&v, &loc, &f, &id, journal).await?;
                dv.settle(i, outcome);
            }
        }
        run.finish_version(dv, journal).await?;
    }
    Ok(run.report)
}

/// A version's record from what its export found.
#[allow(clippy::too_many_arguments)]
fn version_record(
    registry: &Registry,
    v: &ModelVersion,
    provenance: Option<RunFile>,
    loc: Option<&ArtifactLocation>,
    entries: &[ArtifactEntry],
    missing: Vec<String>,
    notes: Vec<String>,
    complete: bool,
) -> Resource {
    let files = entries
        .iter()
        .map(|e| (e.path.as_str(), e.sha256.as_str(), e.size));
    let details = VersionDetails {
        status: v.status.clone(),
        artifact_location: loc.map(|l| l.uri()),
        missing_artifacts: missing,
        run: provenance,
    };
    mark(
        registry,
        Resource::model_version_with(v, files, complete, details).with_notes(notes),
    )
}

/// Marks a model or version record of Unity Catalog's registry (`meta.registry`), so import
/// sends it back to Unity Catalog.
fn mark(registry: &Registry, mut r: Resource) -> Resource {
    if registry.is_uc() {
        if let Some(m) = r.meta.as_object_mut() {
            m.insert("registry".into(), serde_json::json!("uc"));
        }
    }
    r
}

struct Run<'a> {
    registry: &'a Registry,
    builder: Arc<dyn StageSink>,
    progress: &'a ProgressBar,
    /// Shared with the reader of the file being exported; changed only between files.
    known: Arc<Known>,
    report: ExportReport,
    /// Large files with a size no other file has may be streamed ([`Deferred`]).
    stream: bool,
    /// Streamed files by listed size: (index in `deferred`, index in its files).
    pending: HashMap<u64, (usize, usize)>,
    /// Every listed size met so far.
    sizes: HashSet<u64>,
    /// Versions held back because some of their files are streamed.
    deferred: Vec<DeferredVersion>,
}

/// How one artifact file ended.
enum FileOutcome {
    /// Stored, with a warning when it changed while it was read.
    Stored(ArtifactEntry, Option<String>),
    Duplicate(ArtifactEntry),
    Failed(String),
}

fn fatal_or(e: ClientError) -> Result<String, ModelsError> {
    if stops_run(&e) {
        Err(ModelsError::Client(e))
    } else {
        Ok(e.to_string())
    }
}

impl<'a> Run<'a> {
    /// A run that stages every file (streaming is the caller's to turn on).
    fn new(registry: &'a Registry, builder: Arc<dyn StageSink>, progress: &'a ProgressBar) -> Self {
        Run {
            registry,
            builder,
            progress,
            known: Arc::new(Known::new()),
            report: ExportReport {
                registry: registry.describe(),
                ..ExportReport::default()
            },
            stream: false,
            pending: HashMap::new(),
            sizes: HashSet::new(),
            deferred: Vec::new(),
        }
    }

    async fn add(&self, r: Resource) -> Result<(), ModelsError> {
        let b = Arc::clone(&self.builder);
        tokio::task::spawn_blocking(move || b.add(r))
            .await
            .map_err(|e| ModelsError::task("bundle builder", e))?
    }

    fn problem(&mut self, kind: Kind, id: &str, object: String, message: String) {
        tracing::warn!(target: "dbxport::models", object = %object, "{message}");
        self.builder.failed(kind, id, id, &message);
        self.report.problems.push(Problem { object, message });
    }

    fn mark(&self, r: Resource) -> Resource {
        mark(self.registry, r)
    }

    fn warn(&mut self, object: String, message: String) {
        tracing::info!(target: "dbxport::models", object = %object, "{message}");
        self.report.warnings.push(Problem { object, message });
    }

    async fn model(
        &mut self,
        mut m: RegisteredModel,
        selection: &VersionSelection,
        journal: Option<&dyn StepLog>,
    ) -> Result<(), ModelsError> {
        let name = m.name.clone();
        let object = format!("model {name}");
        let versions = match self.registry.list_versions(&name).await {
            Ok(v) => selection.apply(v),
            Err(e) => {
                let msg = fatal_or(e)?;
                self.problem(
                    Kind::RegisteredModel,
                    &name,
                    object,
                    format!("its versions could not be listed: {msg}"),
                );
                return Ok(());
            }
        };
        // `latest_versions` is a changing view of the versions, which have their own records.
        m.latest_versions.clear();
        if self.builder.contains(Kind::RegisteredModel, &name) {
            self.report.resumed += 1;
        } else {
            let selected = versions.iter().map(|v| v.version.clone()).collect();
            let r = self.mark(Resource::registered_model_with(&m, Some(selected)));
            self.add(r).await?;
        }
        self.report.models += 1;
        self.builder
            .found(Kind::ModelVersion, versions.len() as u64);
        self.permissions(&name).await?;
        for v in versions {
            self.version(v, journal).await?;
        }
        Ok(())
    }

    async fn permissions(&mut self, name: &str) -> Result<(), ModelsError> {
        let object = format!("model {name}");
        let id = match self.registry.permissions_id(name).await {
            Ok(Some(id)) => id,
            Ok(None) => return Ok(()),
            Err(e) => {
                let msg = fatal_or(e)?;
                self.problem(
                    Kind::Permissions,
                    name,
                    object,
                    format!("its permissions id could not be read: {msg}"),
                );
                return Ok(());
            }
        };
        self.builder.found(Kind::Permissions, 1);
        if self.builder.contains(Kind::Permissions, &id) {
            return Ok(());
        }
        match self.registry.model_permissions(&id).await {
            Ok(p) => {
                self.add(Resource::permissions(
                    "registered-models",
                    &id,
                    Some(name),
                    &p,
                ))
                .await
            }
            Err(e) => {
                let msg = fatal_or(e)?;
                self.problem(
                    Kind::Permissions,
                    &id,
                    object,
                    format!("its permissions could not be read: {msg}"),
                );
                Ok(())
            }
        }
    }

    async fn version(
        &mut self,
        v: ModelVersion,
        journal: Option<&dyn StepLog>,
    ) -> Result<(), ModelsError> {
        let id = format!("{}/{}", v.name, v.version);
        let object = format!("model version {id}");
        if self.builder.contains(Kind::ModelVersion, &id) {
            self.report.resumed += 1;
            self.report.versions += 1;
            return self.held_version(&v, &id, journal).await;
        }
        let mut jv = JournaledVersion::default();
        let mut notes = Vec::new();
        let provenance = match v.run_id.as_deref().filter(|r| !r.is_empty()) {
            None => None,
            Some(run_id) => match self.registry.get_run(run_id).await {
                Ok(Some(run)) => match RunFile::from_wire(&run) {
                    Some(file) => Some(file),
                    None => {
                        let msg = format!(
                            "its source run {run_id} came back as no run object; no run provenance recorded"
                        );
                        notes.push(msg.clone());
                        jv.warnings.push(msg.clone());
                        self.warn(object.clone(), msg);
                        None
                    }
                },
                Ok(None) => {
                    let msg = format!(
                        "its source run {run_id} no longer exists; no run provenance recorded"
                    );
                    notes.push(msg.clone());
                    jv.warnings.push(msg.clone());
                    self.warn(object.clone(), msg);
                    None
                }
                Err(e) if e.is_endpoint_not_found() => {
                    // The API is missing, not the run: say so rather than "the run is gone".
                    let msg = format!(
                        "the {} did not serve runs/get, so its source run {run_id} could not be read; no run provenance recorded",
                        if self.registry.is_oss() { "server" } else { "workspace" }
                    );
                    notes.push(msg.clone());
                    jv.warnings.push(msg.clone());
                    self.warn(object.clone(), msg);
                    None
                }
                Err(e) => {
                    let msg = format!(
                        "its source run {run_id} could not be read ({}); no run provenance recorded",
                        fatal_or(e)?
                    );
                    notes.push(msg.clone());
                    jv.warnings.push(msg.clone());
                    self.warn(object.clone(), msg);
                    None
                }
            },
        };
        let (loc, listed) = match self.listing(&v).await? {
            Ok(x) => x,
            Err(msg) => {
                self.problem(
                    Kind::ModelVersion,
                    &id,
                    object.clone(),
                    format!("its artifacts could not be listed: {msg}"),
                );
                notes.push(format!("artifacts not exported: {msg}"));
                jv.listing_error = Some(msg);
                remember_version(journal, &id, &jv)?;
                return self
                    .add_version(&v, provenance, None, Vec::new(), vec![], notes, false)
                    .await;
            }
        };
        let total: u64 = listed.iter().filter_map(|f| f.size).sum();
        self.progress.inc_length(total);
        self.builder.found(Kind::ModelArtifact, listed.len() as u64);
        jv.listed = listed.iter().map(|f| f.path.clone()).collect();
        let slot = self.deferred.len();
        let mut cur = DeferredVersion {
            v,
            provenance,
            loc,
            notes,
            jv,
            files: Vec::with_capacity(listed.len()),
        };
        for f in listed {
            let art_id = format!("{id}/{}", f.path);
            let i = cur.files.len();
            cur.files.push((f.clone(), FileState::Failed));
            if self.builder.contains(Kind::ModelArtifact, &art_id) {
                self.report.resumed += 1;
                match self.resumed_entry(&cur.loc, &f, &art_id, journal).await? {
                    Ok(e) => {
                        self.progress.inc(e.size);
                        cur.files[i].1 = FileState::Entry(e);
                    }
                    Err(msg) => {
                        self.problem(
                            Kind::ModelArtifact,
                            &art_id,
                            format!("model artifact {art_id}"),
                            msg.clone(),
                        );
                        // Its record says why already; the version's notes are for this run.
                        cur.jv.failed.push((f.path.clone(), msg));
                    }
                }
                continue;
            }
            if self.stream {
                // A file streamed earlier with this size might hold the same bytes: stage it
                // now, before this one, so this one is compared with it as without streaming.
                // A file the listing gives no size (MLflow leaves it out for empty files)
                // might match any of them.
                match f.size {
                    Some(size) => {
                        if let Some(at) = self.pending.remove(&size) {
                            self.demote(&mut cur, slot, at, journal).await?;
                        }
                    }
                    None => {
                        let all: Vec<(usize, usize)> =
                            self.pending.drain().map(|(_, at)| at).collect();
                        for at in all {
                            self.demote(&mut cur, slot, at, journal).await?;
                        }
                    }
                }
                if let Some(size) = f.size {
                    let first = self.sizes.insert(size);
                    if first && size >= STREAM_MIN {
                        self.pending.insert(size, (slot, i));
                        cur.files[i].1 = FileState::Streamed;
                        self.progress.inc(size);
                        continue;
                    }
                }
            }
            let outcome = self.store(&cur.v, &cur.loc, &f, &art_id, journal).await?;
            if let Ok(e) = &outcome {
                // Its true size, which a later file must not stream with.
                self.sizes.insert(e.size);
            }
            cur.settle(i, outcome);
        }
        if cur.streams() {
            self.deferred.push(cur);
            return Ok(());
        }
        self.finish_version(cur, journal).await
    }

    /// Stages a file streamed earlier instead (see [`Deferred`]); `cur` is the version being
    /// exported, which `slot` would be in `deferred`.
    async fn demote(
        &mut self,
        cur: &mut DeferredVersion,
        slot: usize,
        (di, fi): (usize, usize),
        journal: Option<&dyn StepLog>,
    ) -> Result<(), ModelsError> {
        let (v, loc, f) = {
            let dv = if di == slot {
                &*cur
            } else {
                &self.deferred[di]
            };
            (dv.v.clone(), dv.loc.clone(), dv.files[fi].0.clone())
        };
        let art_id = format!("{}/{}/{}", v.name, v.version, f.path);
        let outcome = self.store(&v, &loc, &f, &art_id, journal).await?;
        let dv = if di == slot {
            cur
        } else {
            &mut self.deferred[di]
        };
        dv.settle(fi, outcome);
        Ok(())
    }

    /// Exports one file the staged way, with its report lines and journal record; the inner
    /// error is why it was not exported.
    async fn store(
        &mut self,
        v: &ModelVersion,
        loc: &ArtifactLocation,
        f: &ListedFile,
        art_id: &str,
        journal: Option<&dyn StepLog>,
    ) -> Result<Result<ArtifactEntry, String>, ModelsError> {
        match self.file(v, loc, f).await? {
            FileOutcome::Stored(e, warning) => {
                if let Some(w) = &warning {
                    self.warn(format!("model artifact {art_id}"), w.clone());
                }
                self.report.stored_bytes += e.size;
                Arc::make_mut(&mut self.known)
                    .entry(e.sha256.clone())
                    .or_insert_with(|| (art_id.to_string(), e.size));
                if let Some(j) = journal {
                    j.remember(
                        &journal_key(art_id),
                        json!(JournaledArtifact {
                            sha256: e.sha256.clone(),
                            size: e.size,
                            same_as: None,
                            warning,
                        }),
                    )?;
                }
                Ok(Ok(e))
            }
            FileOutcome::Duplicate(e) => {
                self.report.deduplicated += 1;
                self.report.deduplicated_bytes += e.size;
                if let Some(j) = journal {
                    let same_as = self.known.get(&e.sha256).map(|(id, _)| id.clone());
                    j.remember(
                        &journal_key(art_id),
                        json!(JournaledArtifact {
                            sha256: e.sha256.clone(),
                            size: e.size,
                            same_as,
                            warning: None,
                        }),
                    )?;
                }
                Ok(Ok(e))
            }
            FileOutcome::Failed(msg) => {
                self.problem(
                    Kind::ModelArtifact,
                    art_id,
                    format!("model artifact {art_id}"),
                    msg.clone(),
                );
                Ok(Err(msg))
            }
        }
    }

    /// Journals and stages a version whose files are all settled.
    async fn finish_version(
        &mut self,
        dv: DeferredVersion,
        journal: Option<&dyn StepLog>,
    ) -> Result<(), ModelsError> {
        let id = dv.id();
        let (entries, missing) = dv.summary();
        self.report.artifacts += entries.len() as u64;
        let complete = missing.is_empty();
        remember_version(journal, &id, &dv.jv)?;
        self.add_version(
            &dv.v,
            dv.provenance,
            Some(&dv.loc),
            entries,
            missing,
            dv.notes,
            complete,
        )
        .await
    }

    /// A version an interrupted run staged: its report lines (artifacts found and reused,
    /// artifacts and listings that failed, warnings) rebuilt from the journal, so the report
    /// equals an uninterrupted run's. Without a journal record (no journal), its artifacts
    /// are listed again to be counted.
    async fn held_version(
        &mut self,
        v: &ModelVersion,
        id: &str,
        journal: Option<&dyn StepLog>,
    ) -> Result<(), ModelsError> {
        let object = format!("model version {id}");
        let recorded = journal
            .and_then(|j| j.recall(&version_key(id)))
            .and_then(|d| serde_json::from_value::<JournaledVersion>(d).ok());
        let jv = match recorded {
            Some(jv) => jv,
            None => match self.listing(v).await? {
                Ok((_, files)) => JournaledVersion {
                    listed: files.into_iter().map(|f| f.path).collect(),
                    ..JournaledVersion::default()
                },
                Err(msg) => JournaledVersion {
                    listing_error: Some(msg),
                    ..JournaledVersion::default()
                },
            },
        };
        for w in jv.warnings {
            self.warn(object.clone(), w);
        }
        if let Some(msg) = jv.listing_error {
            self.problem(
                Kind::ModelVersion,
                id,
                object,
                format!("its artifacts could not be listed: {msg}"),
            );
            return Ok(());
        }
        self.builder
            .found(Kind::ModelArtifact, jv.listed.len() as u64);
        for path in &jv.listed {
            let art_id = format!("{id}/{path}");
            if let Some(why) = jv.failed.iter().find(|(p, _)| p == path).map(|f| &f.1) {
                self.problem(
                    Kind::ModelArtifact,
                    &art_id,
                    format!("model artifact {art_id}"),
                    why.clone(),
                );
                continue;
            }
            // Counted as reused by the sink; its warning comes back from the journal.
            if self.builder.contains(Kind::ModelArtifact, &art_id) {
                self.report.resumed += 1;
                self.report.artifacts += 1;
                if let Some(w) = journal
                    .and_then(|j| j.recall(&journal_key(&art_id)))
                    .and_then(|d| serde_json::from_value::<JournaledArtifact>(d).ok())
                    .and_then(|a| a.warning)
                {
                    self.warn(format!("model artifact {art_id}"), w);
                }
            }
        }
        Ok(())
    }

    /// Where the version's artifacts are and what they are. The outer error stops the run;
    /// the inner one is this version's problem.
    async fn listing(
        &mut self,
        v: &ModelVersion,
    ) -> Result<Result<(ArtifactLocation, Vec<ListedFile>), String>, ModelsError> {
        let loc = match self.registry.locate(v).await {
            Ok(l) => l,
            Err(ModelsError::Client(e)) => return fatal_or(e).map(Err),
            Err(ModelsError::Usage { message, hint, .. }) => {
                return Ok(Err(format!("{message}; {hint}")))
            }
            Err(e) => return Err(e),
        };
        match self.registry.list_files(&loc).await {
            Ok(files) => Ok(Ok((loc, files))),
            Err(ModelsError::Client(e)) if !stops_run(&e) => {
                // A workspace may refuse the registry's own listing (older workspaces, odd
                // permissions) while its DBFS copy is readable: try that before giving up.
                if matches!(loc, ArtifactLocation::Registry { .. }) {
                    if let Ok(Some(dbfs)) = self.registry.locate_dbfs(v).await {
                        if let Ok(files) = self.registry.list_files(&dbfs).await {
                            return Ok(Ok((dbfs, files)));
                        }
                    }
                }
                Ok(Err(e.to_string()))
            }
            Err(ModelsError::Client(e)) => Err(ModelsError::Client(e)),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// An artifact committed by an interrupted run: its digest from the journal, or read
    /// again (and hashed, not stored) when the journal does not have it.
    async fn resumed_entry(
        &mut self,
        loc: &ArtifactLocation,
        f: &ListedFile,
        art_id: &str,
        journal: Option<&dyn StepLog>,
    ) -> Result<Result<ArtifactEntry, String>, ModelsError> {
        if let Some(a) = journal
            .and_then(|j| j.recall(&journal_key(art_id)))
            .and_then(|v| serde_json::from_value::<JournaledArtifact>(v).ok())
        {
            if a.same_as.is_none() {
                Arc::make_mut(&mut self.known)
                    .entry(a.sha256.clone())
                    .or_insert_with(|| (art_id.to_string(), a.size));
            }
            if let Some(w) = a.warning {
                self.warn(format!("model artifact {art_id}"), w);
            }
            return Ok(Ok(ArtifactEntry {
                path: f.path.clone(),
                size: a.size,
                sha256: a.sha256,
            }));
        }
        let mut s = match self.registry.open(loc, &f.path).await {
            Ok(s) => s,
            Err(e) => return fatal_or(e).map(Err),
        };
        let mut sha = <sha2::Sha256 as sha2::Digest>::new();
        let mut size = 0u64;
        while let Some(c) = s.next_chunk().await {
            match c {
                Ok(c) => {
                    sha2::Digest::update(&mut sha, &c);
                    size += c.len() as u64;
                }
                Err(e) => return fatal_or(e).map(Err),
            }
        }
        let sha256 = hex::encode(sha2::Digest::finalize(sha));
        // Only a stored copy may be named by later duplicates; a resumed record might be a
        // duplicate itself, so it is not added to the known digests.
        Ok(Ok(ArtifactEntry {
            path: f.path.clone(),
            size,
            sha256,
        }))
    }

    /// Streams one file into the bundle, reading it again when its size changed under us.
    async fn file(
        &mut self,
        v: &ModelVersion,
        loc: &ArtifactLocation,
        f: &ListedFile,
    ) -> Result<FileOutcome, ModelsError> {
        let mut listed = f.size;
        let mut changes: Vec<String> = Vec::new();
        for attempt in 1..=CHANGE_ATTEMPTS {
            let mut stream = match self.registry.open(loc, &f.path).await {
                Ok(s) => s,
                Err(e) => return fatal_or(e).map(FileOutcome::Failed),
            };
            let Some(expected) = listed.or(stream.content_length) else {
                return Ok(FileOutcome::Failed(
                    "neither the listing nor the download gives its size".into(),
                ));
            };
            if attempt > 1 {
                self.progress.inc_length(expected);
            }
            let (tx, rx) = tokio::sync::mpsc::channel(DEPTH);
            let state = Arc::new(Mutex::new(PipeState::default()));
            let reader = ChannelReader::new(rx, expected, state.clone(), Arc::clone(&self.known));
            let resource = Resource::model_artifact(
                &v.name,
                &v.version,
                &f.path,
                Content::Stream {
                    len: expected,
                    reader: Box::new(reader),
                },
            );
            let b = Arc::clone(&self.builder);
            let adding = tokio::task::spawn_blocking(move || b.add(resource));
            let mut download_error = None;
            while let Some(chunk) = stream.next_chunk().await {
                match chunk {
                    Ok(c) => {
                        let n = c.len() as u64;
                        if tx.send(Ok(c)).await.is_err() {
                            break;
                        }
                        self.progress.inc(n);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        download_error = Some(e);
                        break;
                    }
                }
            }
            drop(tx);
            drop(stream);
            let added = adding
                .await
                .map_err(|e| ModelsError::task("bundle builder", e))?;
            let st = state.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if added.is_ok() {
                let warning = (!changes.is_empty()).then(|| {
                    format!(
                        "changed while it was exported ({}); the bytes stored are those of the last, consistent read",
                        changes.join("; ")
                    )
                });
                return Ok(FileOutcome::Stored(
                    ArtifactEntry {
                        path: f.path.clone(),
                        size: expected,
                        sha256: st.digest.unwrap_or_default(),
                    },
                    warning,
                ));
            }
            if let (Some(first), Some(sha)) = (st.duplicate_of.clone(), st.digest.clone()) {
                let mut r = Resource::model_artifact_duplicate(
                    &v.name, &v.version, &f.path, &first, &sha, expected,
                );
                if !changes.is_empty() {
                    r.notes.push(format!(
                        "changed while it was exported ({})",
                        changes.join("; ")
                    ));
                }
                self.add(r).await?;
                return Ok(FileOutcome::Duplicate(ArtifactEntry {
                    path: f.path.clone(),
                    size: expected,
                    sha256: sha,
                }));
            }
            if let Some(e) = download_error {
                return fatal_or(e).map(FileOutcome::Failed);
            }
            if st.too_long || st.too_short {
                let now = match self.registry.stat(loc, &f.path).await {
                    Ok(s) => s,
                    Err(e) => return fatal_or(e).map(FileOutcome::Failed),
                };
                let got = if st.too_long {
                    format!("more than {expected}")
                } else {
                    st.received.to_string()
                };
                changes.push(format!(
                    "listed as {expected} bytes, {got} bytes arrived, listed now as {}",
                    now.map_or("gone".to_string(), |n| format!("{n} bytes"))
                ));
                match now {
                    Some(n) => {
                        listed = Some(n);
                        continue;
                    }
                    None => {
                        return Ok(FileOutcome::Failed(format!(
                            "it disappeared during the export ({})",
                            changes.join("; ")
                        )))
                    }
                }
            }
            // Neither the download nor the listing: the bundle could not take the bytes.
            return Err(added.err().unwrap_or_else(|| {
                ModelsError::task("bundle builder", "failed without a reason")
            }));
        }
        Ok(FileOutcome::Failed(format!(
            "its bytes kept changing between listing and download ({}); nothing stored",
            changes.join("; ")
        )))
    }

    #[allow(clippy::too_many_arguments)]
    async fn add_version(
        &mut self,
        v: &ModelVersion,
        provenance: Option<RunFile>,
        loc: Option<&ArtifactLocation>,
        entries: Vec<ArtifactEntry>,
        missing: Vec<String>,
        notes: Vec<String>,
        complete: bool,
    ) -> Result<(), ModelsError> {
        let r = version_record(
            self.registry,
            v,
            provenance,
            loc,
            &entries,
            missing,
            notes,
            complete,
        );
        self.add(r).await?;
        self.report.versions += 1;
        Ok(())
    }
}
