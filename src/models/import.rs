//! Model import: recreates a bundle's registered models and versions in a registry, in
//! version order, with their descriptions, tags, stages and aliases, uploading each version's
//! artifacts first.
//!
//! * **Idempotent.** Every version import creates has a `source` ending in a marker derived
//!   from its artifacts' manifest digest ([`super::manifest::marker`]), so a later run knows
//!   the version and its artifacts without downloading them. A version found that way, whose
//!   description, tags and stage already match, is left alone: a second run makes no
//!   mutating request.
//! * **Resumable.** The journal records each finished step (model created, upload location
//!   prepared, each file uploaded, version created); `--resume` goes on from there. A version
//!   created just before a crash is found again by its marker, never created twice.
//! * **Version numbers.** On a fresh target, versions are created in ascending order, which
//!   reproduces the source's numbers when they run 1..N. Where the target gives another
//!   number (gaps in the source, versions already there), the mapping is reported and kept in
//!   the journal; aliases follow it.
//! * **Conflicts.** A target model of the same name that was not created from this bundle
//!   (none of its versions carry a marker of the bundle's versions) is a conflict, settled by
//!   the [`OnConflict`] policy.

use super::error::{ambiguous, stops_run, ModelsError};
use super::manifest::{marker, marker_of, BundleArtifact, BundleModel, BundleVersion};
use super::pipe;
use super::registry::{Registry, RunProvenance, UploadTarget, AMBIGUOUS_ATTEMPTS};
use super::steps::StepLog;
use super::Problem;
use crate::bundle::Bundle;
use crate::client::ClientError;
use crate::hints::Hint;
use crate::kinds::format::PayloadFile;
use crate::kinds::model::format::{ModelFile, RunFile, VersionFile};
use crate::model::mlflow::{ModelVersion, RegisteredModel};
use crate::model::report::{OnConflict, Outcome};
use crate::model::KeyValue;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// What to do with a model name taken in the target by other content.
    pub conflict: OnConflict,
    /// Plan only: read the target and report what would change, writing nothing.
    pub dry_run: bool,
    /// Which of the bundle's models this run takes, and their names in the target.
    pub route: Route,
}

/// Which models of a bundle one run of the models stage takes, and the names they get.
///
/// A bundle may hold models of a workspace registry (or an MLflow server) and of Unity
/// Catalog. Into a workspace, the first go to its registry and the second to its Unity
/// Catalog (two runs), unless `--models-to-uc` sends the first to Unity Catalog as well;
/// into an MLflow server every model goes to the server.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// This run writes Unity Catalog's registry.
    pub to_uc: bool,
    /// This run writes an MLflow server, which takes every model.
    pub to_mlflow: bool,
    /// `--models-to-uc CATALOG.SCHEMA`: workspace-registry models go to Unity Catalog, into
    /// this schema, their stages turned into aliases ([`stage_alias`]).
    pub models_to_uc: Option<String>,
    /// Catalog renames (`[catalogs]` of the mapping file).
    pub catalogs: BTreeMap<String, String>,
    /// Schema renames, `catalog.schema` to `catalog.schema` (`[schemas]`).
    pub schemas: BTreeMap<String, String>,
    /// Principal renames (`[principals]`), for owners.
    pub principals: BTreeMap<String, String>,
    /// Unity Catalog models that this run does not take are reported as skipped (set where no
    /// other run sends them to Unity Catalog: `models import` into a workspace registry).
    pub report_uc_left_out: bool,
}

impl Route {
    /// The name a bundle model gets in this run's target, or `None` when another run (or
    /// none) takes it.
    pub fn target(&self, bm: &BundleModel) -> Option<String> {
        match (bm.uc, self.to_uc, self.to_mlflow) {
            (true, _, true) | (true, true, _) => Some(self.uc_name(&bm.name)),
            (true, false, false) => None,
            (false, _, true) => Some(bm.name.clone()),
            (false, true, _) => self
                .models_to_uc
                .as_ref()
                .map(|cs| format!("{cs}.{}", uc_identifier(&bm.name))),
            (false, false, false) => self.models_to_uc.is_none().then(|| bm.name.clone()),
        }
    }

    /// A three-level name with its catalog and schema renamed ([`remap_uc`]).
    pub fn uc_name(&self, full: &str) -> String {
        remap_uc(full, &self.catalogs, &self.schemas)
    }

    /// The owner a model gets: the `[principals]` mapping of `owner`, or `owner`.
    fn owner(&self, owner: &str) -> String {
        self.principals
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(owner))
            .map_or_else(|| owner.to_string(), |(_, v)| v.clone())
    }
}

/// A Unity Catalog name (`catalog`, `catalog.schema` or deeper) with its catalog and schema
/// renamed: a `schemas` entry (`catalog.schema` → `catalog.schema`) wins over a `catalogs`
/// entry. Names compare case-insensitively, as Unity Catalog's do.
pub fn remap_uc(
    full: &str,
    catalogs: &BTreeMap<String, String>,
    schemas: &BTreeMap<String, String>,
) -> String {
    let find = |map: &BTreeMap<String, String>, key: &str| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let parts: Vec<&str> = full.splitn(3, '.').collect();
    if parts.len() >= 2 {
        if let Some(to) = find(schemas, &format!("{}.{}", parts[0], parts[1])) {
            return match parts.get(2) {
                Some(rest) => format!("{to}.{rest}"),
                None => to,
            };
        }
    }
    match find(catalogs, parts[0]) {
        Some(to) => match full.split_once('.') {
            Some((_, rest)) => format!("{to}.{rest}"),
            None => to,
        },
        None => full.to_string(),
    }
}

/// A workspace-registry model name as a Unity Catalog model name: lowercase, every
/// character other than a letter, digit or `_` turned into `_` (`Ocean-Heat v2` →
/// `ocean_heat_v2`).
pub fn uc_identifier(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The alias a workspace-registry stage becomes in Unity Catalog (`--models-to-uc`):
/// `Production` → `production`, `Staging` → `staging`, `Archived` → `archived`; `None` gets
/// none. When several versions share a stage, the alias points at the highest.
pub fn stage_alias(stage: &str) -> Option<&'static str> {
    match stage {
        "Production" => Some("production"),
        "Staging" => Some("staging"),
        "Archived" => Some("archived"),
        _ => None,
    }
}

/// What import does (or, planning, would do) with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Created in the target.
    Create,
    /// Changed in the target to match the bundle.
    Update,
    /// Already as in the bundle; nothing sent.
    Unchanged,
    /// Left alone: by the conflict policy `skip`, or because the target has no place for it
    /// (an alias in a workspace's registry).
    Skip,
    /// Refused: the name is taken by other content (policy `fail`).
    Conflict,
    /// Could not be imported; see the problems.
    Fail,
}

impl ActionKind {
    /// What became of the object once the action ran, in the words every report shares
    /// (this enum keeps its own JSON words, `create`, `conflict`…, because a plan prints it
    /// too): a conflict left alone under policy `fail` is a failure.
    pub fn outcome(self) -> Outcome {
        match self {
            ActionKind::Create => Outcome::Created,
            ActionKind::Update => Outcome::Updated,
            ActionKind::Unchanged => Outcome::Unchanged,
            ActionKind::Skip => Outcome::Skipped,
            ActionKind::Conflict | ActionKind::Fail => Outcome::Failed,
        }
    }
}

/// One object's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// `model NAME`, `model version NAME/N`, `alias NAME@ALIAS`.
    pub object: String,
    /// What happened.
    pub action: ActionKind,
    /// Details (what changed, which target version).
    pub detail: String,
}

/// A source version that has another number in the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMapping {
    /// Model name.
    pub model: String,
    /// The version's number in the bundle.
    pub source_version: String,
    /// Its number in the target.
    pub target_version: String,
}

/// What an import of models did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// The registry written to.
    pub registry: String,
    /// True when nothing was written (planning).
    pub dry_run: bool,
    /// One entry per model, version and alias.
    pub actions: Vec<Action>,
    /// Versions whose target number differs from the source's.
    pub version_mappings: Vec<VersionMapping>,
    /// Databricks permissions ids of models: bundle (source) id → target id, for the
    /// permissions stage to apply the models' ACLs to.
    pub permission_ids: BTreeMap<String, String>,
    /// Artifact files uploaded.
    pub uploaded_files: u64,
    /// Artifact bytes uploaded.
    pub uploaded_bytes: u64,
    /// Requests that change the target (POST, PUT, PATCH, DELETE) sent by this import;
    /// 0 for a plan and for a run that found everything in place.
    pub write_requests: u64,
    /// Things the user should know that did not stop anything.
    pub warnings: Vec<Problem>,
    /// Staging folders of uploaded artifacts that could not be removed from the target after
    /// their version was registered (also in the warnings): remove them by hand.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub staged_left: Vec<String>,
    /// Objects that could not be imported, with the reason.
    pub problems: Vec<Problem>,
}

impl ImportReport {
    /// Adds what a run into a second registry of the same target did (`models import` into a
    /// workspace fills its registry and its Unity Catalog).
    pub fn absorb(&mut self, other: ImportReport) {
        if self.registry.is_empty() {
            self.registry = other.registry;
        } else if !other.registry.is_empty() {
            self.registry = format!("{} and {}", self.registry, other.registry);
        }
        self.actions.extend(other.actions);
        self.version_mappings.extend(other.version_mappings);
        self.permission_ids.extend(other.permission_ids);
        self.uploaded_files += other.uploaded_files;
        self.uploaded_bytes += other.uploaded_bytes;
        self.write_requests += other.write_requests;
        self.warnings.extend(other.warnings);
        self.staged_left.extend(other.staged_left);
        self.problems.extend(other.problems);
    }

    /// How many objects ended with `kind`.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.action == kind).count()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournaledVersion {
    target_version: String,
}

fn key_model(name: &str) -> String {
    format!("models/model:{name}")
}
fn key_upload(name: &str, v: &str) -> String {
    format!("models/upload:{name}/{v}")
}
fn key_uploaded(name: &str, v: &str, path: &str) -> String {
    format!("models/uploaded:{name}/{v}/{path}")
}
fn key_version(name: &str, v: &str) -> String {
    format!("models/version:{name}/{v}")
}
fn key_cleaned(name: &str, v: &str) -> String {
    format!("models/cleaned:{name}/{v}")
}

/// Removing a version's staged artifacts is tried this many times before it is reported as
/// left behind (the transport retries each request too; this covers a failure after those).
const CLEANUP_ATTEMPTS: u32 = 3;

/// Uploads of one file are tried this many times before the import stops (resumable).
const UPLOAD_ATTEMPTS: u32 = 5;
/// The largest JSON document read from a bundle (model.json, version.json, run.json).
const MAX_DOC: u64 = 64 << 20;

/// Imports `models` (gathered from `bundle`'s inventory, [`super::manifest::Gather`]) into
/// `registry`. `journal` (absent when planning) records each finished step so an
/// interrupted import can resume. Failures of single models and versions are collected in
/// the report; the error is for what stops everything (refused credentials, a damaged
/// bundle, a journal that cannot be written).
pub async fn import_models(
    bundle: &Arc<Mutex<Bundle>>,
    models: &[BundleModel],
    registry: &Registry,
    opts: &ImportOptions,
    journal: Option<&dyn StepLog>,
    progress: &ProgressBar,
) -> Result<ImportReport, ModelsError> {
    let (bundle_id, source) = {
        let b = bundle.lock().unwrap_or_else(|p| p.into_inner());
        let inv = b.inventory();
        (inv.bundle_id.clone(), inv.source.host.clone())
    };
    let writes_before = write_requests(registry);
    let mut run = Apply {
        bundle: Arc::clone(bundle),
        reg: registry,
        opts: opts.clone(),
        journal,
        progress,
        bundle_id,
        source,
        report: ImportReport {
            registry: registry.describe(),
            dry_run: opts.dry_run,
            ..ImportReport::default()
        },
    };
    if !opts.dry_run {
        let total: u64 = models
            .iter()
            .flat_map(|m| m.versions.iter())
            .map(BundleVersion::bytes)
            .sum();
        progress.set_length(total);
    }
    for m in models {
        let Some(target) = opts.route.target(m) else {
            if m.uc && opts.route.report_uc_left_out {
                let why = "a Unity Catalog model: `dbxport import` sends it to the target's Unity Catalog; a workspace registry cannot hold it as it is".to_string();
                run.action(format!("model {}", m.name), ActionKind::Skip, why.clone());
                run.warn(format!("model {}", m.name), why);
            }
            continue;
        };
        let mut m = m.clone();
        m.name = target;
        let m = &m;
        match run.model(m).await {
            Ok(()) => {}
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Object(msg)) => {
                run.action(format!("model {}", m.name), ActionKind::Fail, msg.clone());
                run.problem(format!("model {}", m.name), msg);
            }
        }
    }
    run.report.write_requests = write_requests(registry) - writes_before;
    Ok(run.report)
}

/// Mutating requests a registry's client has sent so far.
fn write_requests(registry: &Registry) -> u64 {
    registry
        .stats()
        .by_call
        .iter()
        .filter(|(k, _)| !(k.starts_with("GET ") || k.starts_with("HEAD ")))
        .map(|(_, n)| *n)
        .sum()
}

/// Why one object stopped: for this object only, or for the whole run.
enum Failure {
    Object(String),
    Fatal(ModelsError),
}

impl From<ModelsError> for Failure {
    fn from(e: ModelsError) -> Self {
        match e {
            ModelsError::Client(c) => Failure::from(c),
            other => Failure::Fatal(other),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        if stops_run(&e) {
            Failure::Fatal(ModelsError::Client(e))
        } else {
            Failure::Object(e.to_string())
        }
    }
}

struct Apply<'a> {
    bundle: Arc<Mutex<Bundle>>,
    reg: &'a Registry,
    opts: ImportOptions,
    journal: Option<&'a dyn StepLog>,
    progress: &'a ProgressBar,
    bundle_id: String,
    source: String,
    report: ImportReport,
}

fn norm(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn stage(s: &Option<String>) -> &str {
    match s.as_deref() {
        None | Some("") => "None",
        Some(x) => x,
    }
}

/// The tags of `want` whose value in `have` differs or is missing.
fn differing<'t>(want: &'t [KeyValue], have: &[KeyValue]) -> Vec<&'t KeyValue> {
    want.iter()
        .filter(|w| !have.iter().any(|h| h.key == w.key && h.value == w.value))
        .collect()
}

impl Apply<'_> {
    fn action(&mut self, object: String, action: ActionKind, detail: String) {
        self.report.actions.push(Action {
            object,
            action,
            detail,
        });
    }

    fn problem(&mut self, object: String, message: String) {
        tracing::warn!(target: "dbxport::models", object = %object, "{message}");
        self.report.problems.push(Problem { object, message });
    }

    fn warn(&mut self, object: String, message: String) {
        self.report.warnings.push(Problem { object, message });
    }

    fn done(&self, key: &str) -> bool {
        self.journal.is_some_and(|j| j.recall(key).is_some())
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.journal
            .and_then(|j| j.recall(key))
            .and_then(|v| serde_json::from_value(v).ok())
    }

    fn record<T: Serialize>(&mut self, key: &str, data: &T) -> Result<(), Failure> {
        if let Some(j) = self.journal {
            let v = serde_json::to_value(data)
                .map_err(|e| Failure::Fatal(ModelsError::task("journal", e)))?;
            j.remember(key, v).map_err(Failure::Fatal)?;
        }
        Ok(())
    }

    /// A payload file of the bundle (§6.5), read as its format type and turned into the
    /// registry's terms.
    fn read_file<F: PayloadFile>(&self, stored: &str) -> Result<F::Wire, Failure> {
        let bytes = {
            let mut b = self.bundle.lock().unwrap_or_else(|p| p.into_inner());
            b.read_payload(stored, MAX_DOC)
                .map_err(|e| Failure::Fatal(ModelsError::Bundle(e)))?
        };
        serde_json::from_slice::<F>(&bytes)
            .map(PayloadFile::into_wire)
            .map_err(|e| {
                Failure::Fatal(ModelsError::Inconsistent {
                    record: stored.to_string(),
                    message: format!("not the JSON the format defines (spec §6.5): {e}"),
                })
            })
    }

    async fn model(&mut self, bm: &BundleModel) -> Result<(), Failure> {
        let name = bm.name.as_str();
        let object = format!("model {name}");
        let mut doc = self.read_file::<ModelFile>(&bm.stored)?;
        if self.reg.is_uc() && !bm.uc {
            // --models-to-uc: stages become aliases; the workspace ACL has no UC meaning.
            doc.aliases = self.stage_aliases(bm)?;
        }
        let target = self.reg.get_model(name).await?;
        let tversions = match &target {
            Some(_) => self.reg.list_versions(name).await?,
            None => Vec::new(),
        };
        let bundle_markers: HashSet<String> = bm
            .versions
            .iter()
            .filter(|v| v.complete)
            .map(|v| marker(&v.manifest_digest()))
            .collect();
        let carries_ours = tversions.iter().any(|t| {
            t.source
                .as_deref()
                .and_then(marker_of)
                .is_some_and(|m| bundle_markers.contains(m))
        });
        let ours = match &target {
            None => true,
            Some(t) => {
                self.done(&key_model(name))
                    || carries_ours
                    || (tversions.is_empty()
                        && norm(&t.description) == norm(&doc.description)
                        && differing(&doc.tags, &t.tags).is_empty())
            }
        };
        if !ours {
            let foreign = tversions.len();
            let why = format!(
                "a model of this name exists in the target with other content ({foreign} version(s) not created from this bundle{})",
                if foreign == 0 { ", other description or tags" } else { "" }
            );
            match self.opts.conflict {
                OnConflict::Fail => {
                    self.action(object.clone(), ActionKind::Conflict, why.clone());
                    self.problem(object, format!("{why}\n{}", Hint::ModelConflict));
                    return Ok(());
                }
                OnConflict::Skip => {
                    self.action(object.clone(), ActionKind::Skip, why.clone());
                    self.warn(object, format!("{why}; left as it is (--on-conflict skip)"));
                    return Ok(());
                }
                OnConflict::Overwrite => {
                    self.warn(
                        object.clone(),
                        format!("{why}; the bundle's versions are added to it (--on-conflict overwrite)"),
                    );
                }
            }
        }
        let target_aliases = target
            .as_ref()
            .map(|t| t.aliases.clone())
            .unwrap_or_default();
        match &target {
            None => {
                if !self.opts.dry_run {
                    self.create_model(name, &doc).await?;
                    self.record(&key_model(name), &())?;
                }
                self.action(object.clone(), ActionKind::Create, String::new());
            }
            Some(t) => {
                let mut changed = Vec::new();
                if norm(&t.description) != norm(&doc.description) {
                    changed.push("description".to_string());
                    if !self.opts.dry_run {
                        self.reg.update_model(name, norm(&doc.description)).await?;
                    }
                }
                for tag in differing(&doc.tags, &t.tags) {
                    changed.push(format!("tag {}", tag.key));
                    if !self.opts.dry_run {
                        self.reg.set_model_tag(name, &tag.key, &tag.value).await?;
                    }
                }
                if !self.opts.dry_run && !self.done(&key_model(name)) {
                    self.record(&key_model(name), &())?;
                }
                if changed.is_empty() {
                    self.action(object.clone(), ActionKind::Unchanged, String::new());
                } else {
                    self.action(object.clone(), ActionKind::Update, changed.join(", "));
                }
            }
        }
        if self.reg.is_uc() {
            self.sync_owner(name, &doc, target.as_ref()).await?;
        }
        if let Some(sid) = &bm.permissions_id {
            if !self.opts.dry_run {
                if let Some(tid) = self.reg.permissions_id(name).await? {
                    self.report.permission_ids.insert(sid.clone(), tid);
                }
            }
        }
        // Versions, in ascending order.
        let mut claimed: HashSet<String> = HashSet::new();
        let mut mapped: BTreeMap<String, String> = BTreeMap::new();
        for bv in &bm.versions {
            let vobject = format!("model version {name}/{}", bv.version);
            match self.version(bm, bv, &tversions, &mut claimed).await {
                Ok(Some(tv)) => {
                    if tv != bv.version {
                        self.report.version_mappings.push(VersionMapping {
                            model: name.to_string(),
                            source_version: bv.version.clone(),
                            target_version: tv.clone(),
                        });
                    }
                    mapped.insert(bv.version.clone(), tv);
                }
                Ok(None) => {}
                Err(Failure::Fatal(e)) => return Err(Failure::Fatal(e)),
                Err(Failure::Object(msg)) => {
                    self.action(vobject.clone(), ActionKind::Fail, msg.clone());
                    self.problem(vobject, msg);
                }
            }
        }
        // Aliases, through the version mapping. A workspace's own registry has none: an
        // alias from Unity Catalog or an MLflow server is reported, never sent.
        for a in &doc.aliases {
            let aobject = format!("alias {name}@{}", a.alias);
            if self.reg.is_workspace_registry() {
                let why = format!(
                    "points at version {}; no home in the workspace registry, which has no aliases (Unity Catalog models have them); not set (import into Unity Catalog with --models-to-uc CATALOG.SCHEMA to keep it)",
                    a.version
                );
                self.action(aobject.clone(), ActionKind::Skip, why.clone());
                self.warn(aobject, why);
                continue;
            }
            let Some(tv) = mapped.get(&a.version) else {
                if !self.opts.dry_run || !bm.versions.iter().any(|v| v.version == a.version) {
                    self.warn(
                        aobject,
                        format!(
                            "points at version {}, which was not imported; not set",
                            a.version
                        ),
                    );
                }
                continue;
            };
            let current = target_aliases.iter().find(|t| t.alias == a.alias);
            if current.is_some_and(|c| &c.version == tv) {
                self.action(aobject, ActionKind::Unchanged, format!("version {tv}"));
                continue;
            }
            if !self.opts.dry_run {
                if let Err(e) = self.reg.set_alias(name, &a.alias, tv).await {
                    let f = Failure::from(e);
                    match f {
                        Failure::Fatal(e) => return Err(Failure::Fatal(e)),
                        Failure::Object(msg) => {
                            self.action(aobject.clone(), ActionKind::Fail, msg.clone());
                            self.problem(aobject, msg);
                            continue;
                        }
                    }
                }
            }
            let kind = if current.is_some() {
                ActionKind::Update
            } else {
                ActionKind::Create
            };
            self.action(aobject, kind, format!("version {tv}"));
        }
        Ok(())
    }

    /// Imports one version; returns its target number (none when planning a creation).
    async fn version(
        &mut self,
        bm: &BundleModel,
        bv: &BundleVersion,
        tversions: &[ModelVersion],
        claimed: &mut HashSet<String>,
    ) -> Result<Option<String>, Failure> {
        let name = bm.name.as_str();
        let vobject = format!("model version {name}/{}", bv.version);
        if !bv.complete {
            return Err(Failure::Object(format!(
                "the bundle does not hold all its artifacts (missing: {}); not imported",
                if bv.missing.is_empty() {
                    "all".to_string()
                } else {
                    bv.missing.join(", ")
                }
            )));
        }
        let vdoc = self.read_file::<VersionFile>(&bv.stored)?;
        let mk = marker(&bv.manifest_digest());
        let has_marker =
            |t: &&ModelVersion| t.source.as_deref().and_then(marker_of) == Some(mk.as_str());
        let journaled: Option<JournaledVersion> = self.get(&key_version(name, &bv.version));
        let found = journaled
            .and_then(|j| {
                tversions
                    .iter()
                    .find(|t| t.version == j.target_version && has_marker(t))
            })
            .or_else(|| {
                tversions
                    .iter()
                    .filter(has_marker)
                    .find(|t| t.version == bv.version && !claimed.contains(&t.version))
            })
            .or_else(|| {
                tversions
                    .iter()
                    .filter(has_marker)
                    .find(|t| !claimed.contains(&t.version))
            })
            .cloned();
        if let Some(t) = found {
            claimed.insert(t.version.clone());
            if self.reg.is_uc() && t.status.as_deref() == Some("PENDING_REGISTRATION") {
                // Created by an earlier run that stopped before its files were all uploaded.
                if self.opts.dry_run {
                    self.action(
                        vobject,
                        ActionKind::Update,
                        format!(
                            "target version {}: finish its registration ({} artifact files)",
                            t.version,
                            bv.artifacts.len()
                        ),
                    );
                    return Ok(Some(t.version));
                }
                self.fill_uc_version(name, bv, &t).await?;
                self.action(
                    vobject,
                    ActionKind::Create,
                    format!("target version {} (registration finished)", t.version),
                );
                return Ok(Some(t.version));
            }
            // An earlier run registered it but may have stopped before removing its staging.
            if !self.opts.dry_run {
                if let Some(target) = self.get::<UploadTarget>(&key_upload(name, &bv.version)) {
                    self.cleanup(name, &bv.version, &target).await?;
                }
            }
            // Nothing to upload: its bytes count as done.
            self.progress.inc(bv.bytes());
            let changed = self.sync_version(name, &vdoc, &t).await?;
            if changed.is_empty() {
                self.action(
                    vobject,
                    ActionKind::Unchanged,
                    format!("target version {}", t.version),
                );
            } else {
                self.action(
                    vobject,
                    ActionKind::Update,
                    format!("target version {}: {}", t.version, changed.join(", ")),
                );
            }
            return Ok(Some(t.version));
        }
        if self.opts.dry_run {
            self.action(
                vobject,
                ActionKind::Create,
                format!(
                    "{} artifact files, {} bytes to upload",
                    bv.artifacts.len(),
                    bv.bytes()
                ),
            );
            return Ok(None);
        }
        let created = self.create_version(bm, bv, &vdoc, &mk).await?;
        claimed.insert(created.clone());
        self.action(
            vobject,
            ActionKind::Create,
            format!("target version {created}"),
        );
        Ok(Some(created))
    }

    /// Makes an existing target version's description, tags and stage those of the bundle.
    async fn sync_version(
        &mut self,
        name: &str,
        vdoc: &ModelVersion,
        t: &ModelVersion,
    ) -> Result<Vec<String>, Failure> {
        let dry = self.opts.dry_run;
        let mut changed = Vec::new();
        if norm(&t.description) != norm(&vdoc.description) {
            changed.push("description".to_string());
            if !dry {
                self.reg
                    .update_version(name, &t.version, norm(&vdoc.description))
                    .await?;
            }
        }
        for tag in differing(&vdoc.tags, &t.tags) {
            changed.push(format!("tag {}", tag.key));
            if !dry {
                self.reg
                    .set_version_tag(name, &t.version, &tag.key, &tag.value)
                    .await?;
            }
        }
        if !self.reg.is_uc() && stage(&t.current_stage) != stage(&vdoc.current_stage) {
            changed.push(format!("stage {}", stage(&vdoc.current_stage)));
            if !dry {
                self.reg
                    .transition_stage(name, &t.version, stage(&vdoc.current_stage))
                    .await?;
            }
        }
        Ok(changed)
    }

    async fn create_version(
        &mut self,
        bm: &BundleModel,
        bv: &BundleVersion,
        vdoc: &ModelVersion,
        mk: &str,
    ) -> Result<String, Failure> {
        let name = bm.name.as_str();
        if self.reg.is_uc() {
            return self.create_uc_version(name, bv, vdoc, mk).await;
        }
        let target: UploadTarget = match self.get(&key_upload(name, &bv.version)) {
            Some(t) => t,
            None => {
                let provenance: Option<RunProvenance> = match &bv.run_stored {
                    Some(s) => Some(self.read_file::<RunFile>(s)?),
                    None => None,
                };
                let mut tags = vec![
                    KeyValue {
                        key: "dbxport.source_version".into(),
                        value: format!("{name}/{}", bv.version),
                    },
                    KeyValue {
                        key: "dbxport.bundle_id".into(),
                        value: self.bundle_id.clone(),
                    },
                    KeyValue {
                        key: "dbxport.source".into(),
                        value: self.source.clone(),
                    },
                ];
                if let Some(r) = vdoc.run_id.as_deref().filter(|r| !r.is_empty()) {
                    tags.push(KeyValue {
                        key: "dbxport.source_run_id".into(),
                        value: r.to_string(),
                    });
                }
                let t = self
                    .reg
                    .prepare_upload(name, &bv.version, mk, provenance.as_ref(), &tags)
                    .await?;
                self.record(&key_upload(name, &bv.version), &t)?;
                t
            }
        };
        for a in &bv.artifacts {
            let key = key_uploaded(name, &bv.version, &a.path);
            if self.done(&key) {
                self.progress.inc(a.size);
                continue;
            }
            self.upload_file(&target, a).await?;
            self.record(&key, &a.sha256)?;
            self.report.uploaded_files += 1;
            self.report.uploaded_bytes += a.size;
        }
        self.reg.finish_upload(&target).await?;
        let created = self.create_version_once(name, &target, vdoc).await?;
        self.record(
            &key_version(name, &bv.version),
            &JournaledVersion {
                target_version: created.version.clone(),
            },
        )?;
        let ready = self.reg.wait_ready(name, &created.version).await?;
        if ready.status.as_deref() == Some("FAILED_REGISTRATION") {
            return Err(Failure::Object(format!(
                "the target could not register version {} from {}: {}",
                created.version,
                target.source,
                norm(&ready.status_message)
            )));
        }
        self.cleanup(name, &bv.version, &target).await?;
        if stage(&vdoc.current_stage) != "None" {
            self.reg
                .transition_stage(name, &created.version, stage(&vdoc.current_stage))
                .await?;
        }
        Ok(created.version)
    }

    /// Creates a Unity Catalog version the way the registry wants it: created first
    /// (`PENDING_REGISTRATION`, its `source` ending in the marker), then its files uploaded
    /// through presigned URLs, then finalized.
    async fn create_uc_version(
        &mut self,
        name: &str,
        bv: &BundleVersion,
        vdoc: &ModelVersion,
        mk: &str,
    ) -> Result<String, Failure> {
        let target = UploadTarget {
            via: "uc".into(),
            base: String::new(),
            source: format!("dbxport:/{}/{mk}", self.bundle_id),
            run_id: vdoc.run_id.clone().filter(|r| !r.is_empty()),
        };
        let created = self.create_version_once(name, &target, vdoc).await?;
        self.record(
            &key_version(name, &bv.version),
            &JournaledVersion {
                target_version: created.version.clone(),
            },
        )?;
        self.fill_uc_version(name, bv, &created).await?;
        Ok(created.version)
    }

    /// Uploads a pending UC version's files (those the journal does not record as sent) and
    /// finalizes it.
    async fn fill_uc_version(
        &mut self,
        name: &str,
        bv: &BundleVersion,
        created: &ModelVersion,
    ) -> Result<(), Failure> {
        let target = self.reg.uc_upload_target(name, created).await?;
        for a in &bv.artifacts {
            let key = key_uploaded(name, &bv.version, &a.path);
            if self.done(&key) {
                self.progress.inc(a.size);
                continue;
            }
            self.upload_file(&target, a).await?;
            self.record(&key, &a.sha256)?;
            self.report.uploaded_files += 1;
            self.report.uploaded_bytes += a.size;
        }
        self.reg.finalize(name, &created.version).await?;
        let ready = self.reg.wait_ready(name, &created.version).await?;
        if ready.status.as_deref() != Some("READY") {
            return Err(Failure::Object(format!(
                "Unity Catalog left version {} {} after finalizing it: {}",
                created.version,
                norm(&ready.status),
                norm(&ready.status_message)
            )));
        }
        Ok(())
    }

    /// The aliases a workspace-registry model's stages become in Unity Catalog
    /// ([`stage_alias`]): each stage's alias on its highest version.
    fn stage_aliases(
        &self,
        bm: &BundleModel,
    ) -> Result<Vec<crate::model::mlflow::ModelAlias>, Failure> {
        let mut by_alias: BTreeMap<&'static str, String> = BTreeMap::new();
        for bv in &bm.versions {
            let vdoc = self.read_file::<VersionFile>(&bv.stored)?;
            if let Some(a) = stage_alias(stage(&vdoc.current_stage)) {
                by_alias.insert(a, bv.version.clone());
            }
        }
        Ok(by_alias
            .into_iter()
            .map(|(alias, version)| crate::model::mlflow::ModelAlias {
                alias: alias.to_string(),
                version,
            })
            .collect())
    }

    /// Gives a UC model the bundle's owner (after `[principals]`), when it has another. An
    /// owner the target refuses is reported; the model is in place all the same.
    async fn sync_owner(
        &mut self,
        name: &str,
        doc: &RegisteredModel,
        target: Option<&RegisteredModel>,
    ) -> Result<(), Failure> {
        let Some(owner) = doc.owner.as_deref().filter(|o| !o.is_empty()) else {
            return Ok(());
        };
        let owner = self.opts.route.owner(owner);
        if target.and_then(|t| t.owner.as_deref()) == Some(owner.as_str()) {
            return Ok(());
        }
        let oobject = format!("owner {name}");
        if !self.opts.dry_run {
            if let Err(e) = self.reg.set_owner(name, &owner).await {
                match Failure::from(e) {
                    Failure::Fatal(e) => return Err(Failure::Fatal(e)),
                    Failure::Object(msg) => {
                        let why = format!("{owner} could not be made its owner: {msg}");
                        self.action(oobject.clone(), ActionKind::Fail, why.clone());
                        self.problem(oobject, why);
                        return Ok(());
                    }
                }
            }
        }
        let kind = if target.is_some() {
            ActionKind::Update
        } else {
            ActionKind::Create
        };
        self.action(oobject, kind, owner);
        Ok(())
    }

    /// Removes a registered version's staged artifacts, trying again after a failure; what
    /// cannot be removed is reported (warnings and `staged_left`), not fatal: the version is
    /// in place. Refused credentials still stop the run.
    async fn cleanup(
        &mut self,
        name: &str,
        version: &str,
        target: &UploadTarget,
    ) -> Result<(), Failure> {
        let key = key_cleaned(name, version);
        if self.done(&key) {
            return Ok(());
        }
        let mut attempt = 0;
        let e = loop {
            attempt += 1;
            match self.reg.cleanup_upload(target).await {
                Ok(()) => return self.record(&key, &target.base),
                Err(e) if e.is_auth_failure() => return Err(Failure::from(e)),
                Err(e) if attempt >= CLEANUP_ATTEMPTS => break e,
                Err(e) => {
                    tracing::info!(target: "dbxport::models", base = %target.base, attempt, "removing staged artifacts failed: {e}");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
            }
        };
        self.warn(
            format!("model version {name}/{version}"),
            format!(
                "its staged artifacts at {} were left in the target ({} attempts to remove them failed: {e}); remove that folder by hand",
                target.base, CLEANUP_ATTEMPTS
            ),
        );
        self.report.staged_left.push(target.base.clone());
        Ok(())
    }

    /// Creates a registered model. A write whose answer was lost is checked (is the model
    /// there now?) before it is sent again, so a dropped connection never fails the import
    /// nor creates anything twice.
    async fn create_model(&mut self, name: &str, doc: &RegisteredModel) -> Result<(), Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .reg
                .create_model(name, doc.description.as_deref(), &doc.tags)
                .await
            {
                Ok(()) => return Ok(()),
                // An earlier attempt went through after all.
                Err(e) if attempt > 1 && e.is_already_exists() => return Ok(()),
                // Unity Catalog: the model's catalog or schema is not in the target.
                Err(e) if self.reg.is_uc() && e.is_not_found() => {
                    return Err(Failure::Object(format!("{e}\n{}", Hint::UcSchemaMissing)))
                }
                Err(e) if ambiguous(&e) && attempt < AMBIGUOUS_ATTEMPTS => {
                    if self.reg.get_model(name).await?.is_some() {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(e) => return Err(Failure::from(e)),
            }
        }
    }

    /// Creates a version from uploaded artifacts, exactly once: after a write whose answer was
    /// lost, a version that appeared since with this source is the one created.
    async fn create_version_once(
        &mut self,
        name: &str,
        target: &UploadTarget,
        vdoc: &ModelVersion,
    ) -> Result<ModelVersion, Failure> {
        let before: HashSet<String> = self
            .reg
            .version_sources(name)
            .await?
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match self
                .reg
                .create_version(
                    name,
                    &target.source,
                    target.run_id.as_deref(),
                    vdoc.description.as_deref(),
                    &vdoc.tags,
                    vdoc.run_tracking_server_id.as_deref(),
                )
                .await
            {
                Ok(v) => return Ok(v),
                Err(e) if ambiguous(&e) && attempt < AMBIGUOUS_ATTEMPTS => e,
                Err(e) => return Err(Failure::from(e)),
            };
            let mut appeared: Vec<String> = self
                .reg
                .version_sources(name)
                .await?
                .into_iter()
                .filter(|(v, src)| {
                    !before.contains(v) && src.as_deref() == Some(target.source.as_str())
                })
                .map(|(v, _)| v)
                .collect();
            appeared.sort_by_key(|v| super::select::version_number(v));
            if let Some(v) = appeared.into_iter().next() {
                return Ok(self.reg.get_version(name, &v).await?);
            }
            tracing::info!(target: "dbxport::models", model = name, attempt, "version create failed, sending again: {e}");
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }

    /// Uploads one artifact from the bundle, digest-checked, trying again after a failure
    /// that is not the target refusing the request.
    async fn upload_file(
        &mut self,
        target: &UploadTarget,
        a: &BundleArtifact,
    ) -> Result<(), Failure> {
        let mut last: Option<ClientError> = None;
        for attempt in 1..=UPLOAD_ATTEMPTS {
            if attempt > 1 {
                self.progress.inc_length(a.size);
                tokio::time::sleep(Duration::from_millis(125 << attempt)).await;
            }
            let bar = self.progress.clone();
            let (rx, reading) =
                pipe::read_payload(Arc::clone(&self.bundle), a.stored.clone(), move |n| {
                    bar.inc(n)
                });
            let sent = self.reg.upload(target, &a.path, a.size, rx).await;
            let read = reading
                .await
                .map_err(|e| Failure::Fatal(ModelsError::task("bundle reader", e)))?;
            match read {
                Err(e) => return Err(Failure::Fatal(ModelsError::Bundle(e))),
                Ok(n) if sent.is_ok() && n != a.size => {
                    return Err(Failure::Fatal(ModelsError::Inconsistent {
                        record: a.stored.clone(),
                        message: format!("holds {n} bytes, the record says {}", a.size),
                    }))
                }
                Ok(_) => {}
            }
            match sent {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let refused = e.is_auth_failure()
                        || e.api()
                            .is_some_and(|x| (400..500).contains(&x.status) && x.status != 429);
                    if refused {
                        return Err(Failure::from(e));
                    }
                    tracing::info!(target: "dbxport::models", path = %a.path, attempt, "upload failed: {e}");
                    last = Some(e);
                }
            }
        }
        let e = last.expect("at least one attempt failed");
        if stops_run(&e) || matches!(e, ClientError::Api(_)) {
            // The target stopped answering (or keeps failing): stop here, resumable.
            return Err(Failure::Fatal(ModelsError::Client(e)));
        }
        Err(Failure::Object(format!(
            "artifact {} could not be uploaded after {UPLOAD_ATTEMPTS} attempts: {e}",
            a.path
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_model(name: &str, uc: bool) -> BundleModel {
        BundleModel {
            name: name.into(),
            stored: String::new(),
            versions: vec![],
            permissions_id: None,
            uc,
        }
    }

    #[test]
    fn routes_send_each_registry_s_models_where_they_belong() {
        let ws = bundle_model("Ocean-Heat v2", false);
        let uc = bundle_model("poc.ml.m", true);
        let maps = Route {
            catalogs: BTreeMap::from([("POC".to_string(), "prod".to_string())]),
            schemas: BTreeMap::from([("poc.soil".to_string(), "agri.models".to_string())]),
            ..Route::default()
        };
        // Into a workspace: its registry takes the workspace models, Unity Catalog the others.
        let registry = maps.clone();
        let unity = Route {
            to_uc: true,
            ..maps.clone()
        };
        assert_eq!(registry.target(&ws).as_deref(), Some("Ocean-Heat v2"));
        assert_eq!(registry.target(&uc), None);
        assert_eq!(unity.target(&ws), None);
        assert_eq!(unity.target(&uc).as_deref(), Some("prod.ml.m"));
        // --models-to-uc: the workspace registry takes none, Unity Catalog all.
        let to_uc = |to_uc| Route {
            to_uc,
            models_to_uc: Some("main.ml".into()),
            ..maps.clone()
        };
        assert_eq!(to_uc(false).target(&ws), None);
        assert_eq!(
            to_uc(true).target(&ws).as_deref(),
            Some("main.ml.ocean_heat_v2")
        );
        // An MLflow server takes everything, UC names renamed.
        let mlflow = Route {
            to_mlflow: true,
            ..maps.clone()
        };
        assert_eq!(mlflow.target(&ws).as_deref(), Some("Ocean-Heat v2"));
        assert_eq!(mlflow.target(&uc).as_deref(), Some("prod.ml.m"));
        // A [schemas] entry wins over its catalog's.
        assert_eq!(maps.uc_name("poc.soil.x"), "agri.models.x");
        assert_eq!(maps.uc_name("Poc.Ocean.x"), "prod.Ocean.x");
        assert_eq!(maps.uc_name("other.s.x"), "other.s.x");
        assert_eq!(
            remap_uc("poc.soil", &maps.catalogs, &maps.schemas),
            "agri.models"
        );
        assert_eq!(remap_uc("poc", &maps.catalogs, &maps.schemas), "prod");
    }

    #[test]
    fn stages_become_aliases_and_names_uc_identifiers() {
        assert_eq!(stage_alias("Production"), Some("production"));
        assert_eq!(stage_alias("Staging"), Some("staging"));
        assert_eq!(stage_alias("Archived"), Some("archived"));
        assert_eq!(stage_alias("None"), None);
        assert_eq!(
            uc_identifier("soil-carbon_Regressor.v2"),
            "soil_carbon_regressor_v2"
        );
    }

    // A plan and `models import --json` print the action's own words; the import report and
    // the text output use the shared outcome's.
    #[test]
    fn actions_keep_their_words_and_map_to_shared_outcomes() {
        let cases = [
            (ActionKind::Create, "create", Outcome::Created),
            (ActionKind::Update, "update", Outcome::Updated),
            (ActionKind::Unchanged, "unchanged", Outcome::Unchanged),
            (ActionKind::Skip, "skip", Outcome::Skipped),
            (ActionKind::Conflict, "conflict", Outcome::Failed),
            (ActionKind::Fail, "fail", Outcome::Failed),
        ];
        for (a, word, outcome) in cases {
            assert_eq!(serde_json::to_value(a).unwrap(), word);
            assert_eq!(a.outcome(), outcome);
        }
    }
}
