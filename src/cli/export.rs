//! `dbxport export`: a whole workspace (or a selection) into one verified bundle. Parses the
//! flags, builds the client and the options, runs [`dbxport::export::export`] with a progress
//! display, and prints the report.

use super::flags::{AuthFlags, EngineFlags, ModelFlags};
use super::keys::{exit_code_for, print_json, read_passphrase, RecipientArgs};
use super::progress::Live;
use super::{EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use dbxport::bundle::printable::{printable, printable_lines};
use dbxport::bundle::seal::read_recipients_file;
use dbxport::bundle::Sealer;
use dbxport::client::Client;
use dbxport::export::options::DEFAULT_KINDS;
use dbxport::export::report::Outcome;
use dbxport::export::stage::staging_path;
use dbxport::export::{
    Event, ExportError, ExportOptions, ExportSource, ExportSummary, Observer, SecretsOptions,
    Selection,
};
use dbxport::hints::Hint;
use dbxport::journal::JournalError;
use dbxport::model::kinds;
use dbxport::model::workspace::Format;
use dbxport::model::Kind;
use indicatif::HumanBytes;
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Export a workspace into one bundle: notebooks, files, folders, repos, jobs, secrets, table
/// ACLs, ML models, permissions, and reference records of what must be recreated by hand.
///
/// Objects are fetched concurrently within the workspace's rate limits; throttling slows the
/// whole run instead of failing it. Every object found is exported, or listed in the report
/// with the reason it was not. The report is printed at the end and stored in the bundle
/// (export-report.json, export-report.md).
///
/// Work in progress is kept in OUTPUT.partial/; after an interruption (Ctrl-C, a crash, a lost
/// network) run the same command with --resume to finish without fetching again what is
/// already held. OUTPUT only ever receives a complete, verified bundle.
///
/// Secret values are sealed with age to --recipient/--recipients-file keys or a --passphrase
/// before anything is written; without those, values are not exported at all.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport export -o hub.zip -r age1...\n  dbxport export -o hub.zip --passphrase --secrets-cluster 0611-083245-abcd --warehouse-id 4b9e1f2c\n  dbxport export -o lena.zip --user lena@example.org --exclude secrets\n  dbxport export -o hub.zip -r age1... --resume"
)]
pub struct Args {
    /// The bundle to write (`*.zip`, or `*.zip.age` with --envelope).
    #[arg(short = 'o', long = "output", value_name = "BUNDLE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub auth: AuthFlags,
    #[command(flatten)]
    pub engine: EngineFlags,
    /// Export only these kinds (comma-separated, repeatable): notebook, directory, file, repo,
    /// job, secret_scope, secret, permissions, hive_grants, uc_grants, cluster, instance_pool,
    /// cluster_policy, warehouse, mount, principal, registered_model, model_version,
    /// model_artifact, or the groups workspace, secrets, grants, reference, models.
    /// Default: all.
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub include: Vec<String>,
    /// Leave out a kind (as for --include), or the workspace paths matching a glob
    /// (`/Users/*/scratch`, `**/*.tmp`; `*` stays within one folder). Repeatable.
    #[arg(long, value_name = "KIND|GLOB")]
    pub exclude: Vec<String>,
    /// Export only this part of the workspace tree (repeatable).
    #[arg(long = "path", value_name = "PREFIX")]
    pub paths: Vec<String>,
    /// Export one user's home folders (/Users/EMAIL, /Repos/EMAIL) and the jobs they own.
    #[arg(long, value_name = "EMAIL")]
    pub user: Option<String>,
    /// Also export notebooks in this richer format: jupyter (with outputs), html, dbc or
    /// r_markdown. SOURCE is always exported; a notebook over the 10 MB export limit keeps
    /// only its SOURCE, and the report says so.
    #[arg(long, value_name = "FORMAT")]
    pub notebook_format: Option<String>,
    #[command(flatten)]
    pub recipients: RecipientArgs,
    /// Wrap the whole bundle in age to the same recipients (name it *.zip.age).
    #[arg(long)]
    pub envelope: bool,
    /// A running cluster to read secret values on (through command execution) when the
    /// workspace refuses the secrets API, as real workspaces do.
    #[arg(long, value_name = "CLUSTER_ID")]
    pub secrets_cluster: Option<String>,
    /// A SQL warehouse for reading legacy table ACLs (else the profile's warehouse_id).
    #[arg(long, value_name = "ID")]
    pub warehouse_id: Option<String>,
    /// A running cluster for reading DBFS mount sources (else --secrets-cluster, else the
    /// profile's cluster_id).
    #[arg(long, value_name = "CLUSTER_ID")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub models: ModelFlags,
    /// Continue an interrupted export into the same output.
    #[arg(long)]
    pub resume: bool,
    /// Print the summary and report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Log what happens (-v: steps and failures, -vv: every request).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn parse_format(s: &str) -> anyhow::Result<Format> {
    let up = s.trim().to_ascii_uppercase().replace('-', "_");
    match Format::parse(&up) {
        Some(
            f @ (Format::Source | Format::Jupyter | Format::Html | Format::Dbc | Format::RMarkdown),
        ) => Ok(f),
        _ => bail!(
            "--notebook-format {s}: not a notebook format\n{}",
            Hint::NotebookFormat
        ),
    }
}

/// Kinds and path globs from --include / --exclude.
fn selection(args: &Args) -> anyhow::Result<(BTreeSet<Kind>, Vec<String>)> {
    let mut kinds: BTreeSet<Kind> = if args.include.is_empty() {
        DEFAULT_KINDS.iter().copied().collect()
    } else {
        kinds::parse_list(&args.include).map_err(|e| anyhow::anyhow!("--include: {e}"))?
    };
    let mut globs = Vec::new();
    for e in &args.exclude {
        // A kind never starts with / or *; a glob always does.
        if e.starts_with('/') || e.starts_with('*') {
            globs.push(e.clone());
            continue;
        }
        let found = kinds::parse_list(std::slice::from_ref(e))
            .map_err(|err| anyhow::anyhow!("--exclude: {err}\n{}", Hint::ExcludeNotAGlob))?;
        for k in found {
            kinds.remove(&k);
        }
    }
    Ok((kinds, globs))
}

/// The sealer for secret values and, with --envelope, a second one for the envelope.
fn sealers(args: &Args) -> anyhow::Result<(Option<Sealer>, Option<Sealer>)> {
    let r = &args.recipients;
    let mut keys = r.recipient.clone();
    for f in &r.recipients_file {
        keys.extend(read_recipients_file(f)?);
    }
    let pass = r.passphrase || r.passphrase_file.is_some();
    match (keys.is_empty(), pass) {
        (true, false) => Ok((None, None)),
        (false, true) => bail!("a passphrase cannot be combined with --recipient/--recipients-file (age allows only one passphrase per file)"),
        (false, false) => Ok((
            Some(Sealer::to_recipients(&keys)?),
            if args.envelope { Some(Sealer::to_recipients(&keys)?) } else { None },
        )),
        (true, true) => {
            let p = read_passphrase(r.passphrase_file.as_deref(), !args.resume)?;
            Ok((
                Some(Sealer::with_passphrase(p.clone())?),
                if args.envelope { Some(Sealer::with_passphrase(p)?) } else { None },
            ))
        }
    }
}

fn init_logging(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = if verbose == 1 { "info" } else { "debug" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("dbxport={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}

/// Runs `export`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    init_logging(args.verbose);
    let (kinds, globs) = selection(&args)?;
    let name = args.output.to_string_lossy().to_string();
    match (args.envelope, name.ends_with(".age")) {
        (true, false) => bail!(
            "{name}: an enveloped bundle should be named *.zip.age\n{}",
            Hint::EnvelopeName
        ),
        (false, true) => bail!(
            "{name}: a name ending in .age promises an envelope\n{}",
            Hint::AgeNameWithoutEnvelope
        ),
        _ => {}
    }
    let notebook_format = args
        .notebook_format
        .as_deref()
        .map(parse_format)
        .transpose()?;
    let (sealer, envelope) = sealers(&args)?;
    if args.envelope && envelope.is_none() {
        bail!(
            "--envelope needs recipients\n{}",
            Hint::EnvelopeNeedsRecipients
        );
    }
    let (client, warnings) = Client::from_args(&args.auth.get(), &args.engine.get())
        .context("export: cannot set up the workspace connection")?;
    for w in warnings {
        eprintln!("dbxport: warning: {w}");
    }
    let config = client.config().clone();
    let opts = ExportOptions {
        output: args.output.clone(),
        kinds,
        selection: Selection {
            paths: args.paths.clone(),
            exclude: globs,
            user: args.user.clone(),
        },
        notebook_format,
        secrets: SecretsOptions {
            sealer,
            cluster_id: args.secrets_cluster.clone(),
        },
        warehouse_id: args.warehouse_id.clone().or(config.warehouse_id.clone()),
        cluster_id: args.cluster.clone().or(config.cluster_id.clone()),
        envelope,
        resume: args.resume,
        concurrency: args.engine.concurrency.unwrap_or(8) as usize,
        models: args.models.get(),
    };
    drive(
        ExportSource::Workspace(client),
        opts,
        args.json,
        args.verbose,
    )
}

/// Runs the export engine from `source` with a progress display and Ctrl-C handling, prints
/// the summary (and with `json` the summary as JSON on stdout), and gives the exit status.
/// `export` and `models export` both end here.
pub(super) fn drive(
    source: ExportSource,
    opts: ExportOptions,
    json: bool,
    verbose: u8,
) -> anyhow::Result<u8> {
    let output = opts.output.clone();
    let terminal = std::io::stderr().is_terminal() && verbose == 0;
    let display = Arc::new(Display::new(terminal));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("export: cannot start the async runtime")?;
    let observer: Arc<dyn Observer> = display.clone();
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = dbxport::export::export_from(source, opts, observer) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    display.finish();
    // In-flight staging finishes before the process exits; nothing half-written is kept.
    runtime.shutdown_timeout(Duration::from_secs(30));
    match outcome {
        None => {
            eprintln!(
                "dbxport: export interrupted; what was fetched is kept in {}\n{}",
                staging_path(&output).display(),
                Hint::ResumeToFinish
            );
            Ok(EXIT_INTERRUPTED)
        }
        Some(Err(e)) => {
            // Errors quote the workspace's answers and names.
            eprintln!("dbxport: export: {}", printable_lines(&e.to_string()));
            if let Some(hint) = resume_hint(&e, &staging_path(&output)) {
                eprintln!("{hint}");
            }
            Ok(exit_code(&e))
        }
        Some(Ok(summary)) => {
            if json {
                print_json(&summary)?;
            }
            print_summary(&summary);
            if summary.has_failures() {
                eprintln!("{}", failures_hint(&summary.report));
                return Ok(EXIT_PROBLEMS);
            }
            Ok(EXIT_OK)
        }
    }
}

/// A bundle that did not verify is a problem found (1); a bundle that could not be written
/// (a full disk, an unwritable folder) is a command that could not run (2).
fn exit_code(e: &ExportError) -> u8 {
    match e {
        ExportError::Pack(p) => exit_code_for(&p.0),
        _ => EXIT_ERROR,
    }
}

/// After an export stopped with its staging folder kept: what to do so that `--resume`
/// finishes it. Refused credentials, and errors that carry their own hint, get none here.
fn resume_hint(e: &ExportError, staging: &std::path::Path) -> Option<String> {
    if e.is_auth_failure() || !staging.exists() {
        return None;
    }
    if e.is_no_room() {
        return Some(
            Hint::ExportNoRoom
                .with(&[("staging", &staging.display())])
                .to_string(),
        );
    }
    matches!(
        e,
        ExportError::Client { .. }
            | ExportError::Journal(JournalError::Io { .. })
            | ExportError::Io { .. }
            | ExportError::StagingFailed { .. }
            | ExportError::Bundle(_)
            | ExportError::Pack(_)
    )
    .then(|| Hint::ExportStopped.to_string())
}

/// What to do about the objects that failed: a workspace that refused this token some of
/// them (403) needs another token; other failures say their own cause.
fn failures_hint(r: &dbxport::export::report::Report) -> Hint {
    // Failure reasons quote the API's answer, `<call>: 403 PERMISSION_DENIED: …`.
    let refused = r.issues.iter().any(|i| {
        i.outcome == Outcome::Failed
            && (i.reason.contains(": 403 ") || i.reason.contains("PERMISSION_DENIED"))
    });
    if refused {
        Hint::ExportPermissionDenied
    } else {
        Hint::ExportObjectsFailed
    }
}

/// Prints the summary on stderr. Notices, names and reasons come from the workspace: each goes
/// through `printable`.
fn print_summary(s: &ExportSummary) {
    let r = &s.report;
    let t = r.totals();
    eprintln!(
        "dbxport: wrote {} ({}): {} objects found, {} exported, {} degraded, {} not exported",
        s.output.display(),
        HumanBytes(s.pack.bytes),
        t.found,
        t.exported,
        t.degraded,
        t.not_exported
    );
    for (kind, c) in &r.kinds {
        eprintln!(
            "  {kind:<16} found {:>6}  exported {:>6}  degraded {:>4}  not exported {:>4}",
            c.found, c.exported, c.degraded, c.not_exported
        );
    }
    for n in &r.notices {
        eprintln!("dbxport: notice: {}", printable(n));
    }
    const SHOWN: usize = 20;
    for i in r.issues.iter().take(SHOWN) {
        let what = match i.outcome {
            Outcome::Failed => "failed",
            Outcome::Degraded => "degraded",
            _ => "not exported",
        };
        eprintln!(
            "  {what}: {} {}: {}",
            i.kind,
            printable(&i.name),
            printable(&i.reason)
        );
    }
    if r.issues.len() > SHOWN {
        eprintln!(
            "  … and {} more (see export-report.md in the bundle, or --json)",
            r.issues.len() - SHOWN
        );
    }
    let m = &r.must_recreate;
    let items = m.items.len();
    if items + m.code.len() > 0 {
        eprintln!(
            "dbxport: must recreate: {items} compute, mount and Key Vault items; {} lines of code depend on them (export-report.md)",
            m.code.len()
        );
    }
    print_folders(&s.run.folders);
    eprintln!(
        "dbxport: {} requests ({} retries, {} throttled) in {:.1} s{}",
        s.run.requests,
        s.run.retries,
        s.run.throttled,
        s.run.elapsed_secs,
        if s.run.resumed {
            format!("; resumed, {} objects reused", s.run.reused)
        } else {
            String::new()
        }
    );
}

/// How the folders' notebooks were fetched: the count by archive, and each folder that went
/// object by object with its reason (the first ten; `--json` lists them all).
fn print_folders(folders: &std::collections::BTreeMap<String, String>) {
    if folders.is_empty() {
        return;
    }
    let whole = folders
        .values()
        .filter(|h| h.starts_with("archive") && !h.contains("per object"))
        .count();
    let others: Vec<(&String, &String)> = folders
        .iter()
        .filter(|(_, h)| !h.starts_with("archive") || h.contains("per object"))
        .collect();
    eprintln!(
        "dbxport: folders: {whole} fetched as one archive each, {} in part or wholly object by object",
        others.len()
    );
    for (path, how) in others.iter().take(10) {
        eprintln!("dbxport:   {path}: {how}");
    }
    if others.len() > 10 {
        eprintln!(
            "dbxport:   … and {} more (--json lists them)",
            others.len() - 10
        );
    }
}

/// Export's progress: counts per kind, drawn through the live area on a terminal; off a
/// terminal, a plain line every 10 seconds.
struct Display {
    live: Live,
    inner: Mutex<Counts>,
}

struct Counts {
    /// found, done and failed objects of each kind.
    kinds: BTreeMap<Kind, (u64, u64, u64)>,
    found: u64,
    done: u64,
    bytes: u64,
    started: Instant,
    last_line: Instant,
}

impl Display {
    fn new(terminal: bool) -> Display {
        Display {
            live: Live::new(terminal),
            inner: Mutex::new(Counts {
                kinds: BTreeMap::new(),
                found: 0,
                done: 0,
                bytes: 0,
                started: Instant::now(),
                last_line: Instant::now(),
            }),
        }
    }

    fn finish(&self) {
        self.live.finish();
    }

    /// Redraws `kind`'s line and the total.
    fn draw(&self, c: &Counts, kind: Kind) {
        let (found, done, failed) = c.kinds.get(&kind).copied().unwrap_or_default();
        self.live.kind(kind.as_str(), done, found, failed);
        let rate = c.done as f64 / c.started.elapsed().as_secs_f64().max(0.001);
        self.live.total(
            c.done,
            c.found,
            &format!("{} · {rate:.0} objects/s", HumanBytes(c.bytes)),
        );
    }
}

impl Observer for Display {
    fn event(&self, e: Event) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Phase(p) => self.live.status(&format!("dbxport: {}", printable(&p))),
            // Warnings name objects of the workspace.
            Event::Warning(w) => self
                .live
                .status(&format!("dbxport: warning: {}", printable(&w))),
            Event::Found { kind, count } => {
                c.found += count;
                c.kinds.entry(kind).or_default().0 += count;
                self.draw(&c, kind);
            }
            Event::Done {
                kind,
                bytes,
                outcome,
                ..
            } => {
                c.done += 1;
                c.bytes += bytes;
                let k = c.kinds.entry(kind).or_default();
                k.1 += 1;
                if outcome == Outcome::Failed {
                    k.2 += 1;
                }
                if self.live.drawn() {
                    self.draw(&c, kind);
                } else if c.last_line.elapsed() >= Duration::from_secs(10) {
                    c.last_line = Instant::now();
                    let secs = c.started.elapsed().as_secs_f64().max(0.001);
                    self.live.status(&format!(
                        "dbxport: {}/{} objects, {}, {:.0} objects/s",
                        c.done,
                        c.found,
                        HumanBytes(c.bytes),
                        c.done as f64 / secs
                    ));
                }
            }
        }
    }
}
