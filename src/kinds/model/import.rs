//! How ML models are planned and replayed into a target.
//!
//! Both run the models stage ([`crate::models::import_models`]), once: plan as a dry run that
//! reads the target registry, apply for real, with its steps in this import's journal. A model
//! is tied to its source by its name, a version by the marker of its artifacts' digest in its
//! `source`; a same-named model none of whose versions carries a marker of the bundle's is a
//! conflict, settled by `--on-conflict`. Apply uploads artifacts, creates versions in order and
//! sets tags, stages and aliases.

use crate::bundle::inventory::Record;
use crate::import::apply::{Run, StepResult};
use crate::import::ledger::{Knowledge, Ledger};
use crate::import::plan::{Action, PlanItem, Planner, Step};
use crate::import::report::Outcome;
use crate::import::source::SourceBundle;
use crate::import::ImportError;
use crate::model::Kind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

crate::import::unit::unit! {
    /// The import unit of ML models.
    Models: [Kind::RegisteredModel, Kind::ModelVersion, Kind::ModelArtifact]
}

/// ML models: the models stage run as a plan (it reads the target registry and writes
/// nothing), one item per model, version and alias.
async fn plan(p: &mut Planner<'_, '_>) -> Result<(), ImportError> {
    let f = p.opts().filter.clone();
    let wanted = [
        Kind::RegisteredModel,
        Kind::ModelVersion,
        Kind::ModelArtifact,
    ]
    .iter()
    .any(|k| f.kind(*k));
    if !wanted || p.src().models.is_empty() {
        return Ok(());
    }
    let client = p.client().clone();
    let runs = registries(p.opts(), &client, p.src())?;
    for (registry, route) in runs {
        let opts = crate::models::ImportOptions {
            conflict: p.opts().on_conflict,
            dry_run: true,
            route,
        };
        let hidden = indicatif::ProgressBar::hidden();
        let report = crate::models::import_models(
            &p.src().shared_bundle(),
            &p.src().models,
            &registry,
            &opts,
            None,
            &hidden,
        )
        .await?;
        plan_report(p, &registry, report);
    }
    Ok(())
}

/// The registries one import writes models to, each with the models it takes: into a
/// workspace, its own registry and (when the bundle holds Unity Catalog models, or
/// `--models-to-uc` is given) its Unity Catalog; into an MLflow server, the server alone.
fn registries(
    opts: &crate::import::Options,
    client: &crate::client::Client,
    src: &SourceBundle,
) -> Result<Vec<(crate::models::Registry, crate::models::import::Route)>, ImportError> {
    let base = crate::models::import::Route {
        catalogs: opts.mapping.catalogs.clone(),
        schemas: opts.mapping.schemas.clone(),
        principals: opts.mapping.principals.clone(),
        ..Default::default()
    };
    let has_uc = src.models.iter().any(|m| m.uc);
    Ok(opts
        .models
        .routes(Some(client), client.options().clone(), base, has_uc)?)
}

/// Adds the plan items of one models-stage dry run.
fn plan_report(
    p: &mut Planner<'_, '_>,
    registry: &crate::models::Registry,
    report: crate::models::ImportReport,
) {
    let target = registry.describe();
    for a in report.actions {
        let (kind, source) = model_item(&a.object);
        let action = match a.action {
            crate::models::ActionKind::Create => Action::Create,
            crate::models::ActionKind::Update => Action::Update,
            crate::models::ActionKind::Unchanged => Action::Unchanged,
            crate::models::ActionKind::Skip => Action::Skip,
            crate::models::ActionKind::Conflict => Action::Refuse,
            crate::models::ActionKind::Fail => Action::Cannot,
        };
        let mut item = PlanItem::new(kind, &source, format!("{target}: {source}"));
        item.key = a.object.clone();
        if a.object.starts_with("model ") && !a.object.starts_with("model version ") {
            p.model_actions.insert(source.clone(), action);
        }
        if matches!(action, Action::Create | Action::Update) {
            item.step = Some(Step::Models);
        }
        p.items.push(item.set(action, a.detail));
    }
    for w in report.warnings {
        p.notes.push(w.to_string());
    }
}

/// The plan item of a models-stage object (`model NAME`, `model version NAME/N`,
/// `alias NAME@ALIAS`): its kind and source name.
fn model_item(object: &str) -> (Kind, String) {
    if let Some(v) = object.strip_prefix("model version ") {
        (Kind::ModelVersion, v.to_string())
    } else if let Some(m) = object.strip_prefix("model ") {
        (Kind::RegisteredModel, m.to_string())
    } else if let Some(a) = object.strip_prefix("alias ") {
        (Kind::RegisteredModel, a.to_string())
    } else if let Some(a) = object.strip_prefix("owner ") {
        (Kind::RegisteredModel, a.to_string())
    } else {
        (Kind::RegisteredModel, object.to_string())
    }
}

/// Replays every model item with a step in one pass of the models stage, which uploads
/// artifacts, creates versions in order and sets tags, stages and aliases; its journal
/// steps go to this import's journal.
async fn apply<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let stepped: Vec<&PlanItem> = run
        .items_of(&[Kind::RegisteredModel, Kind::ModelVersion])
        .into_iter()
        .filter(|i| matches!(i.step, Some(Step::Models)))
        .collect();
    if stepped.is_empty() || run.interrupt.is_set() {
        return Vec::new();
    }
    // The engine flags (--max-response-mb, --http-timeout, …) of this import, not the
    // profile's alone.
    let runs = match registries(run.options, run.client, run.source) {
        Ok(r) => r,
        Err(e) => {
            let why = e.to_string();
            return stepped.into_iter().map(|i| (i, Err(why.clone()))).collect();
        }
    };
    let steps = ModelSteps {
        knowledge: run.knowledge,
        ledger: run.ledger,
        now: Mutex::new(BTreeMap::new()),
    };
    let mut actions: Vec<crate::models::Action> = Vec::new();
    for (registry, route) in runs {
        let opts = crate::models::ImportOptions {
            conflict: run.options.on_conflict,
            dry_run: false,
            route,
        };
        let hidden = indicatif::ProgressBar::hidden();
        let result = crate::models::import_models(
            &run.source.shared_bundle(),
            &run.source.models,
            &registry,
            &opts,
            Some(&steps),
            &hidden,
        )
        .await;
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                let why = e.to_string();
                return stepped.into_iter().map(|i| (i, Err(why.clone()))).collect();
            }
        };
        run.writes
            .fetch_add(report.write_requests, Ordering::Relaxed);
        run.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .warnings
            .extend(report.warnings.iter().map(ToString::to_string));
        actions.extend(report.actions);
    }
    let by_object: BTreeMap<&str, &crate::models::Action> =
        actions.iter().map(|a| (a.object.as_str(), a)).collect();
    let mut out = Vec::with_capacity(stepped.len());
    for item in stepped {
        run.tick(item.kind);
        let r = match by_object.get(item.key.as_str()) {
            Some(a) => match a.action.outcome() {
                Outcome::Failed => Err(a.detail.clone()),
                o => Ok(o),
            },
            // Planned, then found in place by the run (another import got there first).
            None => Ok(Outcome::Unchanged),
        };
        out.push((item, r));
    }
    out
}

/// This import's journal as the models stage's step log: what earlier runs recorded (the
/// journal read at start) and what this run records (through the journal writer).
struct ModelSteps<'a> {
    knowledge: &'a Knowledge,
    ledger: &'a Ledger,
    now: Mutex<BTreeMap<String, Value>>,
}

impl crate::models::StepLog for ModelSteps<'_> {
    fn recall(&self, key: &str) -> Option<Value> {
        let now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        now.get(key)
            .cloned()
            .or_else(|| self.knowledge.get(key).cloned())
    }

    fn recall_prefix(&self, prefix: &str) -> Vec<(String, Value)> {
        // The models stage of an import looks steps up by key only.
        let now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        now.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn remember(&self, key: &str, data: Value) -> Result<(), crate::models::ModelsError> {
        self.ledger.record(key.to_string(), data.clone());
        self.now
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), data);
        Ok(())
    }
}

/// Gathers a model record into the compact form the models stage reads
/// ([`crate::models::Gather`]); model.json and version.json are read from the bundle when
/// their model is imported.
fn load(
    source: &mut SourceBundle,
    r: &Record,
    _payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    source.gather_model(r)
}
