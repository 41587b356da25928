//! The place of ML models in the pipeline: registered models, their versions and artifacts
//! (kinds `registered_model`, `model_version`, `model_artifact`), exported by
//! [`crate::models::export_models`] from the workspace's registry — or from the MLflow server
//! of `--mlflow-uri` — into this export's bag. It runs with the other stages, after the
//! listings that give the scanner its ids and before principals are gathered. Models are
//! staged, journaled, reported and counted exactly like every other object: this module only
//! adapts the pipeline's context to the models' [`StageSink`] and [`StepLog`].

use crate::bundle::resource::Content;
use crate::bundle::Resource;
use crate::export::context::{reason, Ctx};
use crate::export::error::ExportError;
use crate::export::report::Outcome;
use crate::export::stage::DoneEntry;
use crate::model::Kind;
use crate::models::export::Deferred;
use crate::models::{ModelsError, StageSink, StepLog};
use serde_json::Value;
use std::sync::Arc;

/// The model kinds.
pub const MODEL_KINDS: [Kind; 3] = [
    Kind::RegisteredModel,
    Kind::ModelVersion,
    Kind::ModelArtifact,
];

/// The pipeline's context as the models' staging sink.
struct Sink(Arc<Ctx>);

fn staged_bytes(r: &Resource) -> u64 {
    r.parts
        .iter()
        .map(|p| match &p.content {
            Content::Bytes(b) => b.len() as u64,
            Content::Stream { len, .. } | Content::Range { len, .. } => *len,
            Content::File(f) => std::fs::metadata(f).map_or(0, |m| m.len()),
            Content::Dir => 0,
        })
        .sum()
}

impl StageSink for Sink {
    fn contains(&self, kind: Kind, source_id: &str) -> bool {
        self.0.reuse(kind, source_id)
    }

    fn add(&self, resource: Resource) -> Result<(), ModelsError> {
        let (kind, id) = (resource.kind, resource.source_id.clone());
        let entry = done_entry(&resource);
        match self.0.stage.commit(&entry, resource) {
            Ok(()) => {
                self.0.outcome(kind, &id, &entry, false);
                Ok(())
            }
            Err(ExportError::Bundle(e)) => Err(ModelsError::Bundle(e)),
            Err(ExportError::Journal(e)) => Err(ModelsError::Journal(e)),
            Err(e) => Err(ModelsError::task("staging", e)),
        }
    }

    fn found(&self, kind: Kind, count: u64) {
        self.0.found(kind, count);
    }

    fn failed(&self, kind: Kind, name: &str, source_id: &str, why: &str) {
        self.0.failed(kind, name, source_id, why.to_string());
    }

    fn streams(&self) -> bool {
        self.0.streams_models()
    }

    fn defer(&self, deferred: Deferred) -> Result<(), ModelsError> {
        self.0.defer_models(deferred);
        Ok(())
    }
}

/// What the report says of a model record once it is in the bundle.
pub(crate) fn done_entry(resource: &Resource) -> DoneEntry {
    DoneEntry {
        name: resource.name.clone(),
        // Notes about provenance (a source run that is gone) or a file that changed while
        // it was read stay on the record and in the notices; a version is degraded only
        // when some of its artifacts could not be exported.
        outcome: Some(
            if resource.meta.get("complete") == Some(&Value::Bool(false)) {
                Outcome::Degraded
            } else {
                Outcome::Exported
            },
        ),
        notes: resource.notes.clone(),
        bytes: staged_bytes(resource),
        ..DoneEntry::default()
    }
}

/// The pipeline's journal as the models' step log.
struct Log(Arc<Ctx>);

impl StepLog for Log {
    fn recall(&self, key: &str) -> Option<Value> {
        self.0.stage.step(key)
    }

    fn recall_prefix(&self, prefix: &str) -> Vec<(String, Value)> {
        self.0.stage.steps(prefix)
    }

    fn remember(&self, key: &str, data: Value) -> Result<(), ModelsError> {
        self.0.stage.record_step(key, &data).map_err(|e| match e {
            ExportError::Journal(j) => ModelsError::Journal(j),
            other => ModelsError::task("journal", other),
        })
    }
}

/// Exports ML models when any model kind is selected (all three kinds move together: a
/// version needs its artifacts, an artifact its version).
pub async fn export_models(ctx: Arc<Ctx>) {
    if !MODEL_KINDS.iter().any(|k| ctx.opts.wants(*k)) || ctx.is_stopped() {
        return;
    }
    ctx.phase("ML models");
    let opts = match ctx.opts.models.export_options() {
        Ok(o) => o,
        Err(e) => return ctx.set_fatal(ExportError::Usage(e.to_string())),
    };
    let registry = match &ctx.registry {
        Some(r) => r.clone(),
        None => {
            let options = ctx.client.options().clone();
            match ctx.opts.models.registry(Some(&ctx.client), options) {
                Ok(r) => r,
                Err(e) => return ctx.set_fatal(ExportError::Usage(e.to_string())),
            }
        }
    };
    // A workspace has two registries: its own and, with a metastore, Unity Catalog's —
    // whether `export` or `models export` reads it.
    let workspace = !registry.is_oss() && !registry.is_uc();
    let mut registries = vec![registry];
    if workspace {
        registries.push(crate::models::Registry::uc(ctx.client.clone()));
    }
    for registry in registries {
        if ctx.is_stopped() {
            return;
        }
        let sink: Arc<dyn StageSink> = Arc::new(Sink(Arc::clone(&ctx)));
        let log = Log(Arc::clone(&ctx));
        let hidden = indicatif::ProgressBar::hidden();
        match crate::models::export_models(&registry, &opts, sink, Some(&log), &hidden).await {
            Ok(report) => {
                for w in &report.warnings {
                    ctx.notice(w.to_string());
                }
            }
            Err(ModelsError::Client(e)) if registry.is_uc() && no_unity(&e) => {
                ctx.notice(format!(
                    "Unity Catalog models: none exported, the workspace has no Unity Catalog model registry ({})",
                    reason(&e)
                ));
            }
            Err(e) => {
                return ctx.set_fatal(fatal(
                    e,
                    format!("exporting ML models from {}", registry.describe()),
                ))
            }
        }
    }
}

/// The export's error for a models failure that stops it; `context` says what was under way.
fn fatal(e: ModelsError, context: String) -> ExportError {
    match e {
        ModelsError::Client(source) => ExportError::Client { context, source },
        ModelsError::Bundle(e) => ExportError::Bundle(e),
        ModelsError::Journal(e) => ExportError::Journal(e),
        e => ExportError::Internal(format!("exporting ML models: {}", reason(&e))),
    }
}

/// Unity Catalog is absent (not enabled, or the workspace has no metastore).
fn no_unity(e: &crate::client::ClientError) -> bool {
    e.api().is_some_and(|a| {
        matches!(
            a.error_code.as_deref(),
            Some("ENDPOINT_NOT_FOUND" | "FEATURE_DISABLED" | "METASTORE_DOES_NOT_EXIST")
        )
    })
}

/// Stages model versions held for streaming the ordinary way, after the streamed write failed
/// (see [`crate::models::export::stage_deferred`]); a failure that stops the export is set as
/// the context's fatal error.
pub async fn stage_deferred(ctx: &Arc<Ctx>, deferred: Deferred) {
    let sink: Arc<dyn StageSink> = Arc::new(Sink(Arc::clone(ctx)));
    let log = Log(Arc::clone(ctx));
    match crate::models::export::stage_deferred(deferred, sink, Some(&log)).await {
        Ok(report) => {
            for w in &report.warnings {
                ctx.notice(w.to_string());
            }
        }
        Err(e) => ctx.set_fatal(fatal(e, "exporting ML models".into())),
    }
}
