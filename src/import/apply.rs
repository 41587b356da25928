//! Carrying a plan out: each kind's unit in import order (folders, notebooks and files, repos,
//! secret scopes and secrets, models, jobs, permissions, table grants), with bounded
//! concurrency within each, and a journal line for every finished step. What a step sends is
//! the unit's (`kinds::<kind>::import`); this module holds what every unit shares: the run,
//! its journal, retries of ambiguous answers, progress and the outcome of each item.
//!
//! Crash safety. A step may be applied in the target and not journaled (the process died
//! between the answer and the journal line, or the answer was lost). A resumed run therefore
//! plans again from the target's state and relies on idempotent lookups rather than on the
//! journal alone: a notebook is found by its path and compared, a job by its source tag, a
//! scope by its name, a secret value read back where the workspace allows it; only secret
//! values that cannot be read back depend on the journal (an intent line is synced before
//! every put). A create whose answer was lost is checked the
//! same way before it is sent again, so no object is ever made twice.

use super::ledger::{self, keys, Knowledge, Ledger};
use super::plan::{plan, Action, Mode, Plan, PlanInput, PlanItem, Step};
use super::report::{ImportReport, ItemResult, Outcome};
use super::report_file::ReportFile;
use super::source::{SecretValues, SourceBundle};
use super::target::concurrently;
use super::{ImportError, Options};
use crate::bundle::Opener;
use crate::client::{Client, ClientError};
use crate::model::Kind;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to run an import beyond its [`Options`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// The journal file (default: beside the bundle, see [`ledger::journal_path`]).
    pub journal: Option<PathBuf>,
    /// Finish an interrupted run.
    pub resume: bool,
    /// Write the report to this file as the import runs (see [`super::report_file`]).
    pub report: Option<PathBuf>,
}

/// A flag that stops an import between steps (Ctrl-C). Steps in flight finish and are
/// journaled; the rest is left for `--resume`.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag not yet set.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the import to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once asked to stop.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Progress of an import, for a progress bar: told after each finished step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Steps finished (whatever their outcome).
    pub done: u64,
    /// Steps in the plan that need a request.
    pub total: u64,
    /// The kind of the step just finished.
    pub kind: Kind,
    /// Steps of that kind finished.
    pub kind_done: u64,
    /// Steps of that kind in the plan.
    pub kind_total: u64,
}

/// The options recorded in the journal, which a resumed run must repeat.
fn run_options(source: &SourceBundle, options: &Options) -> Value {
    let mapping = serde_json::to_string(&format!("{:?}", options.mapping)).unwrap_or_default();
    json!({
        "bundle_id": source.bundle_id,
        "on_conflict": options.on_conflict.as_str(),
        "keep_schedules": options.keep_schedules,
        "filter": options.filter.describe(),
        "mapping_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(mapping.as_bytes())),
    })
}

/// Imports a verified bundle into the target: opens the sealed values it needs (failing
/// before any write when they do not open), opens the journal, plans, and — unless the plan
/// refuses — applies. Returns the report, which holds the plan.
pub async fn import(
    source: &SourceBundle,
    client: &Client,
    options: &Options,
    opener: Option<&Opener>,
    apply_options: &ApplyOptions,
    interrupt: &Interrupt,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let requests_before = client.stats().requests;
    let values = source.unseal_all(opener, &|s| source.needs_value(s, &options.filter))?;
    let journal_path = apply_options
        .journal
        .clone()
        .unwrap_or_else(|| ledger::journal_path(source.path(), client.host()));
    let mut report_file = match &apply_options.report {
        Some(dest) => Some(ReportFile::create(
            dest,
            &source.path().display().to_string(),
            &source.bundle_id,
            client.host(),
            &journal_path.display().to_string(),
        )?),
        None => None,
    };
    let header = ledger::header(&source.bundle_id, client.host());
    let mut journal = ledger::open(&journal_path, &header, apply_options.resume)?;
    let knowledge = Knowledge::from_journal(&mut journal);
    let opts_now = run_options(source, options);
    if apply_options.resume && knowledge.interrupted() {
        if let Some(rec) = knowledge.options() {
            if rec != &opts_now {
                return Err(ImportError::ResumeOptions {
                    path: journal_path.display().to_string(),
                    recorded: describe_options(rec),
                    given: describe_options(&opts_now),
                });
            }
        }
    }
    let fresh_journal = knowledge.is_empty();
    let planned = plan(PlanInput {
        source,
        options,
        client,
        knowledge: &knowledge,
        secrets: Some(&values),
        mode: Mode::Import,
    })
    .await;
    let the_plan = match planned {
        Ok(p) => p,
        Err(e) => {
            // Nothing was written; a journal this run created holds only its header.
            if fresh_journal {
                let _ = journal.finish();
            }
            return Err(e);
        }
    };
    if the_plan.is_refused() {
        // Nothing was written; a journal this run created holds only its header.
        if fresh_journal {
            journal.finish()?;
        }
        let results = the_plan
            .items
            .iter()
            .map(|i| ItemResult::unrun(i, "refused"))
            .collect();
        let mut report = ImportReport::new(source, client, &journal_path, the_plan, results);
        report.refused = true;
        report.requests = client.stats().requests - requests_before;
        report.seconds = started.elapsed().as_secs_f64();
        if let Some(mut f) = report_file {
            f.objects_of(&report);
            finish_report_file(f, &mut report);
        }
        return Ok(report);
    }
    if let Some(f) = report_file.as_mut() {
        f.keep_when_unfinished();
    }
    let report_file = report_file.map(Mutex::new);
    let ledger = Ledger::start(journal);
    ledger.record(
        keys::RUN.into(),
        json!({"finished": false, "options": opts_now}),
    );
    let run = Run {
        knowledge: &knowledge,
        source,
        client,
        options,
        plan: &the_plan,
        values: &values,
        ledger: &ledger,
        interrupt,
        writes: AtomicU64::new(0),
        done: AtomicU64::new(0),
        total: the_plan.items.iter().filter(|i| i.step.is_some()).count() as u64,
        kind_steps: Mutex::new(the_plan.items.iter().filter(|i| i.step.is_some()).fold(
            BTreeMap::new(),
            |mut m, i| {
                m.entry(i.kind).or_insert((0, 0)).1 += 1;
                m
            },
        )),
        progress,
        state: Mutex::new(State::default()),
        report_file: report_file.as_ref(),
    };
    let results = run.all().await;
    let mutating_requests = run.writes.load(Ordering::Relaxed);
    let (warnings, folders) = {
        let mut st = run.state.lock().unwrap_or_else(|p| p.into_inner());
        (
            std::mem::take(&mut st.warnings),
            std::mem::take(&mut st.folders),
        )
    };
    drop(run);
    let interrupted = interrupt.is_set();
    if !interrupted {
        ledger.record(
            keys::RUN.into(),
            json!({"finished": true, "options": opts_now}),
        );
    }
    ledger.finish()?;
    let mut report = ImportReport::new(source, client, &journal_path, the_plan, results);
    report.interrupted = interrupted;
    report.mutating_requests = mutating_requests;
    report.warnings = warnings;
    report.folders = folders;
    report.requests = client.stats().requests - requests_before;
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(f) = report_file {
        finish_report_file(
            f.into_inner().unwrap_or_else(|p| p.into_inner()),
            &mut report,
        );
    }
    Ok(report)
}

/// Writes the summary of the report file and puts it in place; a file that could not be
/// written is said in the report, which is then one with problems.
fn finish_report_file(f: ReportFile, report: &mut ImportReport) {
    if let Err(e) = f.finish(report) {
        report.report_file_error = Some(e.to_string());
    }
}

fn describe_options(v: &Value) -> String {
    format!(
        "--on-conflict {}{}, {}{}",
        v.get("on_conflict").and_then(Value::as_str).unwrap_or("?"),
        if v.get("keep_schedules").and_then(Value::as_bool) == Some(true) {
            " --keep-schedules"
        } else {
            ""
        },
        v.get("filter").and_then(Value::as_str).unwrap_or("?"),
        v.get("mapping_sha256")
            .and_then(Value::as_str)
            .map(|h| format!(", mapping {}", &h[..12.min(h.len())]))
            .unwrap_or_default()
    )
}

/// What earlier phases learned that later ones need.
#[derive(Default)]
pub(crate) struct State {
    /// Target folders whose creation failed.
    pub(crate) failed_dirs: BTreeSet<String>,
    /// Target repo path → id.
    pub(crate) repo_ids: BTreeMap<String, i64>,
    /// Source job id → target job id.
    pub(crate) job_ids: BTreeMap<i64, i64>,
    /// Source job ids whose create failed.
    pub(crate) failed_jobs: BTreeSet<i64>,
    /// Target paths of workspace objects whose import failed.
    pub(crate) failed_paths: BTreeSet<String>,
    /// Warnings of stages that did not fail anything (staged model artifacts left behind).
    pub(crate) warnings: Vec<String>,
    /// How each target folder's notebooks were created (see [`ImportReport::folders`]).
    pub(crate) folders: BTreeMap<String, String>,
}

/// An import under way, shared by every kind's [`super::unit::Unit`].
pub(crate) struct Run<'a> {
    pub(crate) knowledge: &'a Knowledge,
    pub(crate) source: &'a SourceBundle,
    pub(crate) client: &'a Client,
    pub(crate) options: &'a Options,
    pub(crate) plan: &'a Plan,
    pub(crate) values: &'a SecretValues,
    pub(crate) ledger: &'a Ledger,
    pub(crate) interrupt: &'a Interrupt,
    pub(crate) writes: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) total: u64,
    /// Steps of each kind: (finished, in the plan).
    pub(crate) kind_steps: Mutex<BTreeMap<Kind, (u64, u64)>>,
    pub(crate) progress: &'a (dyn Fn(Progress) + Sync),
    pub(crate) state: Mutex<State>,
    /// `--report`: each item's line is written as its unit finishes.
    report_file: Option<&'a Mutex<ReportFile>>,
}

/// Why a step failed.
pub(crate) type StepResult = Result<Outcome, String>;

/// How many times import itself sends a write again after an answer that leaves it unknown
/// whether the write happened (the client has already retried what is safe to retry).
pub(crate) const AMBIGUOUS_ATTEMPTS: usize = 4;

/// True when a failure leaves it unknown whether the write happened.
pub(crate) fn ambiguous(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } => true,
        ClientError::RetriesExhausted { .. } => true,
        _ => matches!(
            e.kind(),
            Some(
                crate::client::ErrorKind::Internal
                    | crate::client::ErrorKind::Unavailable
                    | crate::client::ErrorKind::DeadlineExceeded
                    | crate::client::ErrorKind::TooManyRequests
            )
        ),
    }
}

impl Run<'_> {
    pub(crate) fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one finished step of `kind` and tells the progress display.
    pub(crate) fn tick(&self, kind: Kind) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let (kind_done, kind_total) = {
            let mut steps = self.kind_steps.lock().unwrap_or_else(|p| p.into_inner());
            let k = steps.entry(kind).or_insert((0, 0));
            k.0 += 1;
            *k
        };
        (self.progress)(Progress {
            done,
            total: self.total,
            kind,
            kind_done,
            kind_total: kind_total.max(kind_done),
        });
    }

    pub(crate) fn items_of(&self, kinds: &[Kind]) -> Vec<&PlanItem> {
        self.plan
            .items
            .iter()
            .filter(|i| kinds.contains(&i.kind))
            .collect()
    }

    async fn all(&self) -> Vec<ItemResult> {
        let items = &self.plan.items;
        // Each item's outcome in its place (no map of every item to its place: an item's
        // place is its offset in the plan's vector).
        let mut out: Vec<Option<ItemResult>> = Vec::with_capacity(items.len());
        out.resize_with(items.len(), || None);
        let base = items.as_ptr() as usize;
        let size = std::mem::size_of::<PlanItem>().max(1);
        let mut record = |item: &PlanItem, r: ItemResult| {
            let i = (item as *const PlanItem as usize - base) / size;
            out[i] = Some(r);
        };
        for stage in super::unit::APPLY_STAGES {
            let lanes = stage.iter().map(|lane| async move {
                let mut done = Vec::new();
                for unit in lane.iter() {
                    let results: Vec<(&PlanItem, ItemResult)> = unit
                        .apply(self)
                        .await
                        .into_iter()
                        .map(|(item, r)| (item, ItemResult::ran(r)))
                        .collect();
                    // On disk as each unit finishes: its outcomes are final then.
                    self.report_lines(results.iter().map(|(i, r)| (*i, r)));
                    done.extend(results);
                }
                done
            });
            for (item, r) in futures_util::future::join_all(lanes)
                .await
                .into_iter()
                .flatten()
            {
                record(item, r);
            }
        }
        // Everything that needed no request, and what was not reached.
        let mut file = self
            .report_file
            .map(|f| f.lock().unwrap_or_else(|p| p.into_inner()));
        let results = out
            .into_iter()
            .zip(items)
            .map(|(o, item)| {
                o.unwrap_or_else(|| {
                    let r = ItemResult::unrun(item, "interrupted; run again with --resume");
                    if let Some(f) = file.as_mut() {
                        f.object(item, &r);
                    }
                    r
                })
            })
            .collect();
        if let Some(f) = file.as_mut() {
            f.flush();
        }
        results
    }

    /// Writes the lines of finished items to the report file, if there is one.
    fn report_lines<'i>(&self, done: impl Iterator<Item = (&'i PlanItem, &'i ItemResult)>) {
        if let Some(f) = self.report_file {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            for (item, r) in done {
                f.object(item, r);
            }
            f.flush();
        }
    }

    /// Runs `f` for every item with a step, concurrently, recording finished steps.
    pub(crate) async fn each<'s, F, Fut>(
        &'s self,
        items: Vec<&'s PlanItem>,
        f: F,
    ) -> Vec<(&'s PlanItem, StepResult)>
    where
        F: Fn(&'s PlanItem, &'s Step) -> Fut,
        Fut: Future<Output = StepResult>,
    {
        let work: Vec<&PlanItem> = items.into_iter().filter(|i| i.step.is_some()).collect();
        concurrently(work, self.options.concurrency(), |item| {
            let fut = f(item, item.step.as_ref().expect("filtered"));
            async move {
                if self.interrupt.is_set() {
                    return (item, Err(INTERRUPTED.to_string()));
                }
                let r = fut.await;
                self.tick(item.kind);
                (item, r)
            }
        })
        .await
        .into_iter()
        .filter(|(_, r)| r.as_ref().err().map(String::as_str) != Some(INTERRUPTED))
        .collect()
    }

    pub(crate) fn created_or_updated(item: &PlanItem) -> Outcome {
        if item.action == Action::Create {
            Outcome::Created
        } else {
            Outcome::Updated
        }
    }
}

/// Why a step that an interrupt stopped before it started is left out of the results.
pub(crate) const INTERRUPTED: &str = "\u{0}interrupted";

pub(crate) fn backoff(attempt: usize) -> Duration {
    Duration::from_millis(250 << attempt.min(5))
}
