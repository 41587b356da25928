//! `dbxport models export|import`: move registered models, their versions and artifacts
//! between a model registry (a workspace's, or an MLflow server's with `--mlflow-uri`) and a
//! bundle of their own. `models export` is the export engine of `export` with the registry as
//! its source (same staging folder, journal, `--resume` and report); the same library
//! functions serve the models stage of `export` and `import`.

use super::flags::{AuthFlags, ConflictFlag, EngineFlags, ModelFlags, ModelTargetFlags};
use super::keys::{print_json, IdentityArgs};
use super::progress::Live;
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS};
use anyhow::Context;
use dbxport::bundle::printable::{printable, printable_lines};
use dbxport::client::{AuthArgs, Client, ClientOptions, TransportArgs};
use dbxport::export::{ExportOptions, ExportSource, SecretsOptions, Selection};
use dbxport::hints::Hint;
use dbxport::import::SourceBundle;
use dbxport::journal::{Journal, OpenMode};
use dbxport::kinds::model::export::MODEL_KINDS;
use dbxport::models::{import_models, ActionKind, ImportOptions, Registry};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

/// Move ML models (registered models, versions, artifacts) into or out of a bundle.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// The `models` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Export registered models, their versions and artifacts into a bundle.
    Export(ExportArgs),
    /// Import the models of a bundle into a registry.
    Import(ImportArgs),
}

/// Export models into a new bundle.
///
/// Reads every registered model (or those chosen with --model) of the workspace's registry,
/// or of the MLflow server given with --mlflow-uri, with the versions chosen by
/// --model-versions: each version's description, tags, stage and status, its source run's
/// params, metrics and tags, and every artifact file with its SHA-256. Identical files shared
/// by several versions are stored once. Artifacts stream through in constant memory.
///
/// This is `dbxport export` with the registry as its source: work in progress is kept in
/// OUTPUT.partial/ (finish an interrupted run with --resume), and the report is printed and
/// stored in the bundle (export-report.json, export-report.md).
///
/// Exit status: 0 when everything was exported, 1 when some object could not be (the bundle
/// is still written, and says what is missing), 2 when the export could not run.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  dbxport models export --mlflow-uri http://127.0.0.1:5000 --out models.zip\n  dbxport models export --profile prod --model 'churn-*' --model-versions stage:Production --out prod-models.zip\n  dbxport models export --mlflow-uri http://127.0.0.1:5000 --out models.zip --resume"
)]
pub struct ExportArgs {
    /// The bundle to write (.zip). Written under a temporary name and renamed when complete.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub models: ModelFlags,
    #[command(flatten)]
    pub auth: AuthFlags,
    #[command(flatten)]
    pub engine: EngineFlags,
    /// Finish an export that was interrupted (its staging folder, OUTPUT.partial/, is next
    /// to --out).
    #[arg(long)]
    pub resume: bool,
    /// Print the summary and report as JSON on stdout (as `export --json` does).
    #[arg(long)]
    pub json: bool,
}

/// Import the models of a bundle into a registry.
///
/// Recreates each registered model and its versions in version order, uploading each
/// version's artifacts first, then sets descriptions, tags, stages and aliases. Version
/// numbers are kept where the target allows; otherwise the mapping is printed. A second run
/// changes nothing; an interrupted run continues with --resume.
///
/// Exit status: 0 when everything was imported (or already there), 1 when some object could
/// not be (conflicts included), 2 when the import could not run.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  dbxport models import models.zip --mlflow-uri http://127.0.0.1:5001\n  dbxport models import models.zip --profile target --plan\n  dbxport models import models.zip --mlflow-uri http://127.0.0.1:5001 --resume"
)]
pub struct ImportArgs {
    /// The bundle to read (.zip, or .zip.age with an identity).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub models: ModelTargetFlags,
    #[command(flatten)]
    pub auth: AuthFlags,
    #[command(flatten)]
    pub engine: EngineFlags,
    #[command(flatten)]
    pub keys: IdentityArgs,
    /// What to do with a model whose name is taken in the target by other content.
    #[arg(long, value_enum, default_value_t = ConflictFlag::Fail)]
    pub on_conflict: ConflictFlag,
    /// Show what would be created, updated or left alone, and write nothing.
    #[arg(long)]
    pub plan: bool,
    /// Finish an import that was interrupted.
    #[arg(long)]
    pub resume: bool,
    /// The journal of finished steps (default: next to the bundle's name in the current
    /// folder, `<bundle file>.models-import.journal`). Removed after a complete import.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Print a JSON report on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `models`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.command {
        // The export engine starts its own runtime.
        ModelsCommand::Export(a) => export(a),
        ModelsCommand::Import(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(import(a)),
    }
}

/// The workspace client of the flags, unless `--mlflow-uri` names an MLflow server instead.
fn workspace(
    mlflow_uri: &Option<String>,
    auth: &AuthArgs,
    engine: &TransportArgs,
) -> anyhow::Result<Option<Client>> {
    if mlflow_uri.is_some() {
        return Ok(None);
    }
    let (client, warnings): (Client, Vec<String>) = Client::from_args(auth, engine)?;
    for w in warnings {
        eprintln!("dbxport: warning: {w}");
    }
    Ok(Some(client))
}

/// `models export`: the export engine with the registry as its source and only the model
/// kinds, so staging (`OUT.partial/`), journal, `--resume` and report are `export`'s.
fn export(a: ExportArgs) -> anyhow::Result<u8> {
    let ws = workspace(&a.models.mlflow_uri, &a.auth.get(), &a.engine.get())?;
    let reg: Registry = a.models.get().registry(
        ws.as_ref(),
        ClientOptions::default().with_args(&a.engine.get()),
    )?;
    let opts = ExportOptions {
        output: a.out,
        kinds: MODEL_KINDS.into_iter().collect(),
        selection: Selection::default(),
        notebook_format: None,
        // Models carry no secret values: nothing is sealed, and a resumed run checks that
        // it still seals nothing, as `export --resume` checks its recipients.
        secrets: SecretsOptions {
            sealer: None,
            cluster_id: None,
        },
        warehouse_id: None,
        cluster_id: None,
        envelope: None,
        resume: a.resume,
        concurrency: a.engine.concurrency.unwrap_or(8) as usize,
        models: a.models.get(),
    };
    super::export::drive(ExportSource::Registry(reg), opts, a.json, 0)
}

async fn import(a: ImportArgs) -> anyhow::Result<u8> {
    let opener = a.keys.opener()?;
    // Exactly `verify`'s checks (`verify --identity` with an identity) before anything else,
    // opened as `import` opens a bundle: each record read into its compact form as the
    // inventory streams, models gathered with what this stage reads of them (issue #15).
    let source = match SourceBundle::open(&a.bundle, opener.as_ref()) {
        Ok(s) => s,
        Err(e) => return Ok(super::import::report_error("models import", &e)),
    };
    let bundle_id = source.bundle_id.clone();
    let ws = workspace(&a.models.mlflow_uri, &a.auth.get(), &a.engine.get())?;
    let has_uc = source.models.iter().any(|m| m.uc);
    // Into a workspace: its registry, and its Unity Catalog when the bundle holds UC models
    // or --models-to-uc asks for it — the routes `import` takes.
    let routes = a.models.get().routes(
        ws.as_ref(),
        ClientOptions::default().with_args(&a.engine.get()),
        dbxport::models::import::Route::default(),
        has_uc,
    )?;
    let reg = &routes[0].0;
    let bundle = source.shared_bundle();
    let live = Live::new(!a.json && !a.plan && std::io::stderr().is_terminal());
    let progress = live.bytes("uploading");
    let journal = if a.plan {
        None
    } else {
        let path = a.journal.clone().unwrap_or_else(|| {
            let name = a
                .bundle
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "bundle".into());
            PathBuf::from(format!("{name}.models-import.journal"))
        });
        let header =
            json!({ "command": "models import", "bundle_id": bundle_id, "target": reg.host() });
        let mode = if a.resume {
            OpenMode::Resume
        } else {
            OpenMode::Fresh
        };
        Some(Mutex::new(Journal::open(&path, &header, mode)?))
    };
    let log = journal.as_ref().map(|j| j as &dyn dbxport::models::StepLog);
    let mut report: Result<dbxport::models::ImportReport, _> = Ok(Default::default());
    for (registry, route) in routes.iter() {
        let opts = ImportOptions {
            conflict: a.on_conflict.into(),
            dry_run: a.plan,
            route: route.clone(),
        };
        let run = import_models(&bundle, &source.models, registry, &opts, log, &progress).await;
        report = match (report, run) {
            (Ok(mut all), Ok(r)) => {
                all.absorb(r);
                Ok(all)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if report.is_err() {
            break;
        }
    }
    live.finish();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let hint = match &journal {
                Some(j) => format!(
                    "\n{}",
                    Hint::ModelsImportStopped.with(&[(
                        "journal",
                        &j.lock().unwrap_or_else(|p| p.into_inner()).path().display()
                    )])
                ),
                None => String::new(),
            };
            eprintln!(
                "dbxport: models import: {}{hint}",
                printable_lines(&e.to_string())
            );
            return Ok(EXIT_ERROR);
        }
    };
    if report.problems.is_empty() {
        if let Some(j) = journal {
            j.into_inner().unwrap_or_else(|p| p.into_inner()).finish()?;
        }
    }
    if a.json {
        print_json(&report)?;
    } else {
        for act in &report.actions {
            if act.action != ActionKind::Unchanged || a.plan {
                let verb = match (act.action, a.plan) {
                    (ActionKind::Create, true) => "would create",
                    (ActionKind::Update, true) => "would update",
                    (ActionKind::Conflict, _) => "conflict",
                    (k, _) => k.outcome().as_str(),
                };
                // Model names and details come from the bundle and the target registry.
                if act.detail.is_empty() {
                    println!("{verb}: {}", printable(&act.object));
                } else {
                    println!(
                        "{verb}: {} ({})",
                        printable(&act.object),
                        printable(&act.detail)
                    );
                }
            }
        }
        for m in &report.version_mappings {
            println!(
                "version mapping: {} version {} is version {} in the target",
                printable(&m.model),
                printable(&m.source_version),
                printable(&m.target_version)
            );
        }
        println!(
            "{}: {} created, {} updated, {} unchanged, {} skipped, {} failed; {} files ({} bytes) uploaded",
            printable(&report.registry),
            report.count(ActionKind::Create),
            report.count(ActionKind::Update),
            report.count(ActionKind::Unchanged),
            report.count(ActionKind::Skip),
            report.count(ActionKind::Fail) + report.count(ActionKind::Conflict),
            report.uploaded_files,
            report.uploaded_bytes,
        );
        // Warnings and problems name models of a server or a bundle.
        for w in &report.warnings {
            eprintln!("dbxport: warning: {}", printable_lines(&w.to_string()));
        }
        for p in &report.problems {
            eprintln!("dbxport: {}", printable_lines(&p.to_string()));
        }
    }
    Ok(if report.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    })
}
