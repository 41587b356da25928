//! The export pipeline: list → fetch → stage → write, from a workspace (through
//! [`crate::client`]) into one verified bundle (through [`crate::bundle`]).
//!
//! * **List.** One call tells who we are and which workspace this is (and fails fast on a
//!   refused token). Compute and jobs are listed first: the code scanner
//!   ([`crate::model::scan`]) looks for their ids in notebooks. The workspace tree is walked with one listing per folder.
//! * **Fetch.** Every stage runs at once, each object fetched by a bounded pool; the client's
//!   limiter bounds the requests in flight and slows the whole run when the workspace
//!   throttles. Each object costs one content call and one permissions call.
//! * **Stage.** Each finished object is journaled and staged into the bag under
//!   `<output>.partial/` ([`stage`]); secret values are sealed in memory first. An interrupted
//!   run continues with `--resume` and fetches nothing it already holds.
//! * **Write.** The report ([`report`]) goes into the bag as tag files and the bundle is
//!   written straight from the staged files (each digest checked again as it is written), read
//!   back and verified, and only then renamed to the output path. A run resumed after its bag
//!   was finalized packs that bag instead ([`crate::bundle::pack()`], which verifies the same way).
//!
//! What each kind is fetched and staged as lives with the kind (`kinds::<kind>::export`);
//! this module runs those stages in dependency order.
//!
//! The source is a workspace ([`export`]), or only a model registry — a workspace's, or an
//! MLflow server's — for `models export` ([`export_from`] with [`ExportSource::Registry`]):
//! the same staging folder, journal, `--resume` and report, with only the model kinds.
//!
//! Every object found ends up exported, or in the report with the reason it was not.
//! This module must not import `emulator` or `import`.

pub mod cluster;
pub mod context;
pub mod error;
pub mod options;
pub mod progress;
pub mod report;
pub mod select;
pub mod stage;

pub use error::ExportError;
pub use options::{ExportOptions, SecretsOptions, Selection, DEFAULT_KINDS};
pub use progress::{Event, Observer, Quiet};
pub use report::{Outcome, Report, RunStats, REPORT_JSON, REPORT_MD};

use crate::bundle::pack::{pack, PackOptions, PackSummary};
use crate::bundle::writer::BagSettings;
use crate::bundle::Source;
use crate::client::{Call, Client};
use crate::hints::Hint;
use crate::kinds::{
    grants::export as grants, job::export as jobs, model::export as models,
    reference::export as reference, secret::export as secrets, workspace::export as workspace,
};
use crate::model::scan::ScanContext;
use crate::model::Kind;
use crate::models::Registry;
use context::Ctx;
use select::PathFilter;
use serde::Serialize;
use serde_json::json;
use stage::Stage;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::time::Instant;

/// What a finished export produced.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// The bundle written.
    pub output: PathBuf,
    /// What `pack` wrote.
    pub pack: PackSummary,
    /// The report (also in the bundle).
    pub report: Report,
    /// Numbers about the run.
    pub run: RunStats,
}

impl ExportSummary {
    /// True when any object failed: the command exits 1.
    pub fn has_failures(&self) -> bool {
        self.report.has_failures()
    }
}

/// Where an export reads from.
pub enum ExportSource {
    /// A Databricks workspace: every kind the options select.
    Workspace(Client),
    /// A model registry alone (a workspace's, or an MLflow server's): only the model kinds.
    Registry(Registry),
}

/// Checks options that cannot work together, before anything is sent.
pub fn validate(opts: &mut ExportOptions) -> Result<(), ExportError> {
    if let Err(e) = opts.models.export_options() {
        return Err(ExportError::Usage(e.to_string()));
    }
    if opts.kinds.contains(&Kind::Secret) {
        // Values are staged with their scope.
        opts.kinds.insert(Kind::SecretScope);
    }
    if opts.envelope.is_some() && opts.secrets.sealer.is_none() {
        return Err(ExportError::Usage(format!(
            "--envelope needs recipients\n{}",
            Hint::EnvelopeNeedsRecipients
        )));
    }
    if opts.kinds.is_empty() {
        return Err(ExportError::Usage(format!(
            "nothing to export: every kind is excluded\n{}",
            Hint::NothingToExport
        )));
    }
    Ok(())
}

/// The caller's identity check and the workspace id: one request, which also fails fast on
/// refused credentials.
async fn identify(client: &Client) -> Result<String, ExportError> {
    let f = client
        .transport()
        .fetch(&Call::get("/api/2.0/preview/scim/v2/Me"))
        .await
        .map_err(|source| ExportError::Client {
            context: format!("connecting to {}", client.host()),
            source,
        })?;
    let from_header = f
        .headers
        .get("x-databricks-org-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(client
        .config()
        .workspace_id
        .clone()
        .or(from_header)
        .unwrap_or_default())
}

/// Runs an export of a workspace. Objects that fail are in the returned report; an error
/// means the run as a whole could not finish (the staging folder is then kept for `--resume`).
pub async fn export(
    client: Client,
    opts: ExportOptions,
    observer: Arc<dyn Observer>,
) -> Result<ExportSummary, ExportError> {
    export_from(ExportSource::Workspace(client), opts, observer).await
}

/// Runs an export from `source`, as [`export`] does. A registry source exports only the
/// model kinds among `opts.kinds` (and refuses any other kind).
pub async fn export_from(
    source: ExportSource,
    mut opts: ExportOptions,
    observer: Arc<dyn Observer>,
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    if let ExportSource::Registry(_) = &source {
        if let Some(k) = opts.kinds.iter().find(|k| !models::MODEL_KINDS.contains(k)) {
            return Err(ExportError::Usage(format!(
                "{k}: a model registry holds only registered_model, model_version and model_artifact\n{}",
                Hint::RegistryHoldsModelsOnly
            )));
        }
    }
    validate(&mut opts)?;
    let filter = PathFilter::new(&opts.selection)?;
    stage::precheck(&opts.output, opts.resume)?;
    let (client, registry) = match source {
        ExportSource::Workspace(c) => (c, None),
        ExportSource::Registry(r) => (r.client().clone(), Some(r)),
    };
    observer.event(Event::Phase(format!("connecting to {}", client.host())));
    // An MLflow server has no identity endpoint and no workspace id.
    let workspace_id = match &registry {
        Some(r) if r.is_oss() => String::new(),
        _ => identify(&client).await?,
    };
    let host = client.host().to_string();
    let recorded = opts.recorded();
    let header = json!({
        "format": "dbxport-export-journal",
        "host": host,
        "workspace_id": workspace_id,
        "options": recorded,
    });
    let settings = BagSettings::new(
        Source {
            host: host.clone(),
            workspace_id: workspace_id.clone(),
        },
        recorded,
    );
    let sealer = opts.secrets.sealer.take();
    let envelope = opts.envelope.take();
    let output = opts.output.clone();
    let stage = {
        let output = output.clone();
        let resume = opts.resume;
        tokio::task::spawn_blocking(move || Stage::open(&output, resume, &header, settings, sealer))
            .await
            .map_err(|e| ExportError::Internal(e.to_string()))??
    };
    let resumed = stage.resumed();
    let bundle_id = stage
        .settings()
        .map(|s| s.bundle_id.clone())
        .unwrap_or_default();
    let report = Report::new(&bundle_id, &host, &workspace_id);
    let mut ctx = Arc::new(Ctx::new(
        client.clone(),
        opts,
        stage,
        filter,
        Arc::clone(&observer),
        report,
        registry,
    ));
    if ctx.stage.builder().is_some() {
        run_stages(&ctx).await;
        if let Some(fatal) = ctx.take_fatal() {
            return Err(fatal);
        }
        // The models stage recalls its steps while it runs (the artifacts of one registry
        // found again in the next); what is left to do only records (issue #15).
        ctx.stage.forget_steps(crate::models::STEP_PREFIX);
    }
    let reused = ctx.reused();
    let folders = ctx.folder_paths();
    ctx.phase("writing and verifying the bundle");
    // Model versions whose large artifacts stream from the registry into the bundle as it is
    // written (§11, streamed files). When one does not arrive as listed, they are staged like any other
    // file and the bundle is written again from the staging folder.
    let mut envelope = envelope;
    let mut streamed = None;
    let deferred = ctx.take_deferred();
    if !deferred.is_empty() {
        let (outcome, back) = write_streamed(&ctx, &deferred, &output, envelope).await?;
        envelope = back;
        match outcome {
            Ok(done) => streamed = Some(done),
            Err(failures) => {
                ctx.notice(format!(
                    "a model artifact streamed into the bundle did not arrive as listed ({}); its version was staged and the bundle written again",
                    failures.join("; ")
                ));
                for d in deferred {
                    crate::kinds::model::export::stage_deferred(&ctx, d).await;
                }
                if let Some(fatal) = ctx.take_fatal() {
                    return Err(fatal);
                }
            }
        }
    }
    let mut report = ctx.report();
    report.normalize();
    // Every stage has finished: this is the last reference.
    let ctx_owned = loop {
        match Arc::try_unwrap(ctx) {
            Ok(c) => break c,
            Err(c) => {
                ctx = c;
                tokio::task::yield_now().await;
            }
        }
    };
    let mut stage = ctx_owned.into_stage();
    let streamed_artifacts = streamed.as_ref().map_or(0, |s: &Streamed| s.artifacts);
    // The bundle is written straight from the staged files (one read of each, one write); a
    // run interrupted after an older version finalized the bag packs that folder instead.
    let (report, packed) = match (streamed, stage.take_builder()) {
        (Some(s), _) => (s.report, s.packed),
        (None, Some(builder)) => {
            let (written, _) = write_from_stage(
                builder,
                report.clone(),
                output.clone(),
                envelope,
                Vec::new(),
            )
            .await?;
            (report, written.map_err(ExportError::Pack)?)
        }
        // The interrupted run had finalized the bag already: its report is in it.
        (None, None) => {
            let path = stage.bag_dir().join(REPORT_JSON);
            let bytes = std::fs::read(&path).map_err(|e| ExportError::io(&path, e))?;
            let report = serde_json::from_slice(&bytes).map_err(|e| ExportError::Staging {
                path: stage.root().to_path_buf(),
                detail: format!("{REPORT_JSON} is damaged: {e}"),
            })?;
            let bag_dir = stage.bag_dir().to_path_buf();
            let out = output.clone();
            let packed = tokio::task::spawn_blocking(move || {
                let t0 = std::time::Instant::now();
                let r = pack(
                    &bag_dir,
                    &out,
                    &PackOptions {
                        envelope,
                        replace: false,
                    },
                );
                tracing::info!(target: "dbxport::export", secs = t0.elapsed().as_secs_f64(), "bundle packed and verified");
                r
            })
            .await
            .map_err(|e| ExportError::Internal(e.to_string()))?
            .map_err(ExportError::Pack)?;
            (report, packed)
        }
    };
    tokio::task::spawn_blocking(move || stage.remove())
        .await
        .map_err(|e| ExportError::Internal(e.to_string()))??;
    let stats = client.stats();
    let run = RunStats {
        requests: stats.requests,
        retries: stats.retries,
        throttled: stats.throttled,
        by_call: stats.by_call,
        elapsed_secs: started.elapsed().as_secs_f64(),
        resumed,
        reused,
        bundle_bytes: packed.bytes,
        folders,
        streamed_artifacts,
    };
    Ok(ExportSummary {
        output: packed.output.clone(),
        pack: packed,
        report,
        run,
    })
}

/// A bundle written with streamed model artifacts: its report, what was written, and how many
/// artifacts streamed.
struct Streamed {
    report: Report,
    packed: PackSummary,
    artifacts: u64,
}

/// Writes the bundle from the staged files plus `streamed` resources, with the report as its
/// tag files, on a blocking thread. Gives the envelope back for a second attempt; the inner
/// error is the writer's.
async fn write_from_stage(
    builder: crate::bundle::BagBuilder,
    report: Report,
    out: PathBuf,
    envelope: Option<crate::bundle::seal::Sealer>,
    streamed: Vec<crate::bundle::Resource>,
) -> Result<
    (
        Result<PackSummary, crate::bundle::Problems>,
        Option<crate::bundle::seal::Sealer>,
    ),
    ExportError,
> {
    tokio::task::spawn_blocking(move || -> Result<_, ExportError> {
        let t0 = std::time::Instant::now();
        builder.add_tag_file(REPORT_JSON, &report.to_json())?;
        builder.add_tag_file(REPORT_MD, report.to_markdown().as_bytes())?;
        let written = builder
            .write_bundle_file_with(&out, envelope.as_ref(), false, streamed)
            .map(|w| {
                tracing::info!(target: "dbxport::export", secs = t0.elapsed().as_secs_f64(), "bundle written and verified");
                PackSummary {
                    output: out,
                    bag: w.bag,
                    bundle_id: w.bundle_id,
                    entries: w.entries,
                    payload_files: w.payload_files,
                    payload_bytes: w.payload_bytes,
                    bytes: w.bytes,
                    envelope: envelope.is_some(),
                }
            });
        Ok((written, envelope))
    })
    .await
    .map_err(|e| ExportError::Internal(e.to_string()))?
}

/// Writes the bundle with the held-back model versions' artifacts streamed into it (§11, streamed files),
/// through a second handle on the staging folder, so that the context's own stays intact for
/// staging them instead. The inner error lists the streamed files that did not arrive as
/// listed; any other failure is the export's.
async fn write_streamed(
    ctx: &Arc<Ctx>,
    deferred: &[crate::models::Deferred],
    output: &Path,
    envelope: Option<crate::bundle::seal::Sealer>,
) -> Result<
    (
        Result<Streamed, Vec<String>>,
        Option<crate::bundle::seal::Sealer>,
    ),
    ExportError,
> {
    let failures: crate::models::pipe::StreamFailures = Default::default();
    let resources: Vec<crate::bundle::Resource> = deferred
        .iter()
        .flat_map(|d| d.resources(&failures))
        .collect();
    let mut report = ctx.report();
    let mut done = Vec::with_capacity(resources.len());
    for r in &resources {
        let entry = crate::kinds::model::export::done_entry(r);
        report.record(r.kind, &r.source_id, &entry);
        done.push((r.kind, entry.bytes));
    }
    let artifacts = done
        .iter()
        .filter(|(k, _)| *k == Kind::ModelArtifact)
        .count() as u64;
    report.normalize();
    let bag_dir = ctx.stage.bag_dir().to_path_buf();
    let builder =
        tokio::task::spawn_blocking(move || crate::bundle::BagBuilder::resume(&bag_dir, None))
            .await
            .map_err(|e| ExportError::Internal(e.to_string()))??;
    let (written, envelope) = write_from_stage(
        builder,
        report.clone(),
        output.to_path_buf(),
        envelope,
        resources,
    )
    .await?;
    let failed = std::mem::take(&mut *failures.lock().unwrap_or_else(|p| p.into_inner()));
    match written {
        Ok(packed) => {
            for (kind, bytes) in done {
                ctx.emit(Event::Done {
                    kind,
                    bytes,
                    outcome: report::Outcome::Exported,
                    reused: false,
                });
            }
            Ok((
                Ok(Streamed {
                    report,
                    packed,
                    artifacts,
                }),
                envelope,
            ))
        }
        Err(_) if !failed.is_empty() => Ok((Err(failed), envelope)),
        Err(p) => Err(ExportError::Pack(p)),
    }
}

/// Every stage, in dependency order; the independent ones at once.
async fn run_stages(ctx: &Arc<Ctx>) {
    let o = &ctx.opts;
    let code_kinds = o.wants(Kind::Notebook) || o.wants(Kind::File);
    let compute_kinds = [
        Kind::Cluster,
        Kind::InstancePool,
        Kind::ClusterPolicy,
        Kind::Warehouse,
    ];
    let want_compute = code_kinds || compute_kinds.iter().any(|k| o.wants(*k));
    let want_jobs = code_kinds || o.wants(Kind::Job) || o.wants(Kind::Permissions);
    ctx.phase("listing compute and jobs");
    let (compute, jobs) = tokio::join!(
        async {
            if want_compute {
                reference::list_compute(ctx).await
            } else {
                reference::Compute::default()
            }
        },
        async {
            if want_jobs {
                jobs::list_jobs(ctx).await.unwrap_or_default()
            } else {
                Vec::new()
            }
        }
    );
    if ctx.is_stopped() {
        return;
    }
    ctx.set_scan_context(ScanContext {
        cluster_ids: compute
            .clusters
            .iter()
            .map(|c| c.cluster_id.clone())
            .collect(),
        job_ids: jobs.iter().map(|j| j.job_id).collect(),
        warehouse_ids: compute.warehouses.iter().map(|w| w.id.clone()).collect(),
    });
    tokio::join!(
        workspace::export_tree(Arc::clone(ctx)),
        jobs::export_jobs(Arc::clone(ctx), jobs),
        secrets::export_secrets(Arc::clone(ctx)),
        grants::export_hive(Arc::clone(ctx)),
        grants::export_unity(Arc::clone(ctx)),
        reference::export_compute(Arc::clone(ctx), compute),
        reference::export_mounts(Arc::clone(ctx)),
        models::export_models(Arc::clone(ctx)),
    );
    if ctx.is_stopped() {
        return;
    }
    reference::export_principals(Arc::clone(ctx)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientOptions;

    fn opts(output: PathBuf, kinds: &[Kind]) -> ExportOptions {
        ExportOptions {
            output,
            kinds: kinds.iter().copied().collect(),
            selection: Selection::default(),
            notebook_format: None,
            secrets: SecretsOptions {
                sealer: None,
                cluster_id: None,
            },
            warehouse_id: None,
            cluster_id: None,
            envelope: None,
            resume: false,
            concurrency: 1,
            models: crate::models::ModelArgs::default(),
        }
    }

    // A registry holds models only: asking it for notebooks is a usage error, found before
    // any request (the address below has no server) and before any staging folder exists.
    #[tokio::test]
    async fn a_registry_source_refuses_other_kinds() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("m.zip");
        let reg = Registry::oss("http://127.0.0.1:9", None, "e", ClientOptions::default()).unwrap();
        let r = export_from(
            ExportSource::Registry(reg),
            opts(out.clone(), &[Kind::RegisteredModel, Kind::Notebook]),
            Arc::new(Quiet),
        )
        .await;
        match r {
            Err(ExportError::Usage(m)) => assert!(m.contains("notebook"), "{m}"),
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("exported notebooks from a registry"),
        }
        assert!(!stage::staging_path(&out).exists());
    }
}
