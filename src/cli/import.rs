//! `dbxport import`: replay a bundle into a workspace — verified first, planned, idempotent,
//! resumable — and the flags `plan` and `diff` share with it.

use super::flags::{AuthFlags, ConflictFlag, EngineFlags, ModelTargetFlags};
use super::keys::{exit_code_for, print_json, print_problems, IdentityArgs};
use super::progress::Live;
use super::{EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS};
use anyhow::Context;
use clap::Args as ClapArgs;
use dbxport::bundle::printable::{printable, printable_lines};
use dbxport::bundle::Opener;
use dbxport::client::Client;
use dbxport::hints::Hint;
use dbxport::import::report::render_plan;
use dbxport::import::{
    ApplyOptions, Filter, ImportError, Interrupt, Mapping, OnConflict, Options, Progress,
    SourceBundle,
};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// The bundle, the target and the selection: what `plan`, `import` and `diff` share.
#[derive(Debug, ClapArgs)]
pub struct CommonArgs {
    /// The bundle (`*.zip`, or `*.zip.age` with an identity).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub auth: AuthFlags,
    #[command(flatten)]
    pub engine: EngineFlags,
    /// The mapping file (TOML): principals, path prefixes, cluster, warehouse, pool and policy
    /// ids, secret scope names. See the README section "Mapping file".
    #[arg(long = "map", value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Only these kinds (comma-separated, repeatable): directory, notebook, file, repo,
    /// secret_scope, secret, job, permissions, hive_grants, uc_grants, registered_model,
    /// model_version, model_artifact, or the groups workspace, secrets, grants, models.
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub include: Vec<String>,
    /// Leave these kinds out (as for --include).
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Only workspace objects and repos at or below this source path (and their permissions).
    #[arg(long = "path", value_name = "PREFIX")]
    pub path: Option<String>,
    /// The SQL warehouse that replays table grants (else the profile's warehouse_id, else the
    /// target's only warehouse).
    #[arg(long, value_name = "ID")]
    pub warehouse_id: Option<String>,
    #[command(flatten)]
    pub models: ModelTargetFlags,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the target does with objects that already exist there.
#[derive(Debug, ClapArgs)]
pub struct BehaviourArgs {
    /// What to do with an object that exists in the target, differs from the bundle, and was
    /// not put there by this bundle: fail (refuse the import, listing every conflict), skip
    /// (keep the target's), overwrite (replace it).
    #[arg(long, value_enum, default_value_t = ConflictFlag::Fail)]
    pub on_conflict: ConflictFlag,
    /// Keep job schedules, triggers and continuous runs as they were; by default imported
    /// jobs are paused.
    #[arg(long)]
    pub keep_schedules: bool,
}

impl CommonArgs {
    /// The plan/import/diff options.
    pub fn options(&self, behaviour: Option<&BehaviourArgs>) -> anyhow::Result<Options> {
        let mapping = match &self.map {
            Some(p) => Mapping::load(p)?,
            None => Mapping::default(),
        };
        Ok(Options {
            mapping,
            on_conflict: behaviour.map_or(OnConflict::Fail, |b| b.on_conflict.into()),
            keep_schedules: behaviour.is_some_and(|b| b.keep_schedules),
            filter: Filter::from_names(&self.include, &self.exclude, self.path.clone())?,
            warehouse_id: self.warehouse_id.clone(),
            concurrency: self.engine.concurrency.unwrap_or(8) as usize,
            models: self.models.get(),
        })
    }

    /// The target client, with warnings printed.
    pub fn client(&self) -> anyhow::Result<Client> {
        let (client, warnings) = Client::from_args(&self.auth.get(), &self.engine.get())
            .context("cannot set up the connection to the target workspace")?;
        for w in warnings {
            eprintln!("dbxport: warning: {w}");
        }
        Ok(client)
    }

    /// Opens and verifies the bundle; `Err(code)` after printing why it cannot be used,
    /// naming `command` (`plan`, `import`, `diff`), the command that ran.
    pub fn open(&self, command: &str, opener: Option<&Opener>) -> Result<SourceBundle, u8> {
        if !self.json && std::io::stderr().is_terminal() {
            eprintln!("dbxport: verifying {}", self.bundle.display());
        }
        SourceBundle::open(&self.bundle, opener).map_err(|e| report_error(command, &e))
    }
}

/// Prints an import error and returns its exit code.
pub fn report_error(context: &str, e: &ImportError) -> u8 {
    match e {
        ImportError::Bundle { problems, path } => {
            eprintln!(
                "dbxport: {context}: bundle {} failed verification; nothing was written",
                printable(path)
            );
            print_problems(context, problems);
            exit_code_for(problems).max(EXIT_PROBLEMS)
        }
        other => {
            // Errors quote the target's answers and the bundle's names.
            eprintln!(
                "dbxport: {context}: {}",
                printable_lines(&other.to_string())
            );
            EXIT_ERROR
        }
    }
}

/// Replay a bundle into a workspace: verified, planned, idempotent, resumable.
///
/// The bundle is verified completely before the first write; a damaged or altered bundle
/// changes nothing. Sealed secret values are opened (in memory only) before the first write,
/// so a missing or wrong identity changes nothing either. Then the target is read and every
/// object planned; when anything is refused (an unmapped principal or cluster, a conflict under
/// --on-conflict fail) the import stops before its first write and lists every refusal.
///
/// Objects are replayed in dependency order: folders, notebooks and files, repos, secret scopes,
/// secrets and their ACLs, jobs (paused unless --keep-schedules), permissions, table grants.
/// Every object is tied to its source (workspace objects by path, jobs by a tag naming the source
/// job), so running the same import again changes nothing. A journal beside the bundle records
/// finished steps; after an interruption (Ctrl-C, kill, lost network) run the same command with
/// --resume to finish.
///
/// Exit status: 0 when everything was replayed (or already there), 1 when something failed or
/// was refused, 2 when the import could not run, 130 when interrupted.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport plan poc.zip --map mapping.toml\n  dbxport import poc.zip --map mapping.toml --identity key.txt\n  dbxport import poc.zip --map mapping.toml --identity key.txt --resume\n  dbxport diff poc.zip --map mapping.toml --identity key.txt"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: IdentityArgs,
    #[command(flatten)]
    pub behaviour: BehaviourArgs,
    /// Finish an interrupted import (same bundle, target and options).
    #[arg(long)]
    pub resume: bool,
    /// The journal file (default: beside the bundle, BUNDLE.import-<target>.journal).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Also write the report to FILE as JSON Lines while the import runs: a header, one line
    /// per object as its stage finishes, a summary last. Written as FILE.partial and renamed
    /// when whole; a killed run leaves FILE.partial.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Runs `import`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    super::alloc::map_large_buffers();
    let opener = args.keys.opener()?;
    let options = args.common.options(Some(&args.behaviour))?;
    let client = args.common.client()?;
    let source = match args.common.open("import", opener.as_ref()) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("import: cannot start the async runtime")?;
    let live = Live::new(!args.common.json && std::io::stderr().is_terminal());
    let interrupt = Interrupt::new();
    let apply = ApplyOptions {
        journal: args.journal.clone(),
        resume: args.resume,
        report: args.report.clone(),
    };
    let progress = |p: Progress| {
        live.kind(p.kind.as_str(), p.kind_done, p.kind_total, 0);
        live.total(p.done, p.total, "steps");
    };
    let result = runtime.block_on(async {
        let work = dbxport::import::import(
            &source,
            &client,
            &options,
            opener.as_ref(),
            &apply,
            &interrupt,
            &progress,
        );
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => Some(r),
            _ = tokio::signal::ctrl_c() => {
                live.status("dbxport: interrupted; finishing the steps in flight (Ctrl-C again to stop at once)");
                interrupt.trigger();
                tokio::select! {
                    r = &mut work => Some(r),
                    _ = tokio::signal::ctrl_c() => None,
                }
            }
        }
    });
    live.finish();
    runtime.shutdown_timeout(Duration::from_secs(10));
    let report = match result {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Ok(report_error("import", &e)),
        None => {
            eprintln!("dbxport: import stopped\n{}", Hint::ResumeToFinish);
            return Ok(EXIT_INTERRUPTED);
        }
    };
    if args.common.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            plan: &'a dbxport::import::Plan,
            report: &'a dbxport::import::ImportReport,
        }
        print_json(&Out {
            plan: report.plan(),
            report: &report,
        })?;
    } else if report.refused {
        eprint!("{}", render_plan(report.plan(), false));
        eprintln!("dbxport: import refused; nothing was written");
    } else {
        eprint!("{}", report.render());
    }
    match (&args.report, &report.report_file_error) {
        // The text report says so itself.
        (_, Some(_)) if !args.common.json && !report.refused => {}
        (_, Some(e)) => eprintln!("dbxport: import: {}", printable_lines(e)),
        (Some(path), None) if !args.common.json => {
            eprintln!(
                "dbxport: report written to {}",
                printable(&path.display().to_string())
            )
        }
        _ => {}
    }
    Ok(if report.interrupted {
        eprintln!(
            "{}",
            Hint::ImportInterrupted.with(&[("journal", &printable(&report.journal))])
        );
        EXIT_INTERRUPTED
    } else if report.has_problems() {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    })
}
