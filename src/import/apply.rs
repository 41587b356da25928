//! Carrying a plan out: in dependency order (folders, notebooks and files, repos, secret scopes,
//! secrets, jobs, permissions, table grants), with bounded concurrency within each phase, and
//! a journal line for every finished step.
//!
//! Crash safety. A step may be applied in the target and not journaled (the process died
//! between the answer and the journal line, or the answer was lost). A resumed run therefore
//! plans again from the target's state and relies on idempotent lookups rather than on the
//! journal alone: a notebook is found by its path and compared, a job by its source tag, a
//! scope by its name, a secret value read back where the workspace allows it; only secret
//! values that cannot be read back depend on the journal (an intent line is synced before
//! every put). A create whose answer was lost is checked the
//! same way before it is sent again, so no object is ever made twice.

use super::acl::scope_acl_changes;
use super::ledger::{self, keys, Knowledge, Ledger};
use super::plan::{
    job_refs, plan, substitute_job_refs, Action, Mode, Plan, PlanInput, PlanItem, Step,
};
use super::report::{ImportReport, ItemOutcome, Outcome};
use super::source::{SecretValues, SourceBundle, MAX_IMPORT_BYTES};
use super::target::{concurrently, find_job_by_tag};
use super::{ImportError, Options};
use crate::bundle::Opener;
use crate::client::workspace::Import;
use crate::client::{Client, ClientError};
use crate::model::workspace::{parent_path, Format};
use crate::model::Kind;
use serde_json::{json, Map, Value};
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

/// Progress of an import, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Steps finished (whatever their outcome).
    pub done: u64,
    /// Steps in the plan that need a request.
    pub total: u64,
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
/// refuses — applies. Returns the plan and the report.
pub async fn import(
    source: &SourceBundle,
    client: &Client,
    options: &Options,
    opener: Option<&Opener>,
    apply_options: &ApplyOptions,
    interrupt: &Interrupt,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Plan, ImportReport), ImportError> {
    let started = Instant::now();
    let requests_before = client.stats().requests;
    let values = source.unseal_all(opener, &|s| source.needs_value(s, &options.filter))?;
    let journal_path = apply_options
        .journal
        .clone()
        .unwrap_or_else(|| ledger::journal_path(source.path(), client.host()));
    let header = ledger::header(&source.bundle_id, client.host());
    let journal = ledger::open(&journal_path, &header, apply_options.resume)?;
    let knowledge = Knowledge::from_journal(&journal);
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
    let mut report = ImportReport {
        bundle: source.path().display().to_string(),
        bundle_id: source.bundle_id.clone(),
        target: client.host().to_string(),
        journal: journal_path.display().to_string(),
        refused: false,
        interrupted: false,
        counts: BTreeMap::new(),
        items: Vec::new(),
        dropped_principals: the_plan.dropped_principals.clone(),
        must_recreate: the_plan.must_recreate.clone(),
        requests: 0,
        mutating_requests: 0,
        seconds: 0.0,
        warnings: Vec::new(),
    };
    if the_plan.is_refused() {
        // Nothing was written; a journal this run created holds only its header.
        if fresh_journal {
            journal.finish()?;
        }
        report.refused = true;
        report.items = the_plan
            .items
            .iter()
            .map(|i| outcome_of_unrun(i, "refused"))
            .collect();
        report.counts = ImportReport::tally(&report.items);
        report.requests = client.stats().requests - requests_before;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok((the_plan, report));
    }
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
        progress,
        state: Mutex::new(State::default()),
    };
    let outcomes = run.all().await;
    report.mutating_requests = run.writes.load(Ordering::Relaxed);
    report.interrupted = interrupt.is_set();
    report.warnings =
        std::mem::take(&mut run.state.lock().unwrap_or_else(|p| p.into_inner()).warnings);
    drop(run);
    if !report.interrupted {
        ledger.record(
            keys::RUN.into(),
            json!({"finished": true, "options": opts_now}),
        );
    }
    ledger.finish()?;
    report.items = outcomes;
    report.counts = ImportReport::tally(&report.items);
    report.requests = client.stats().requests - requests_before;
    report.seconds = started.elapsed().as_secs_f64();
    Ok((the_plan, report))
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

/// The outcome of an item that needed no request (or was not run).
pub(crate) fn outcome_of_unrun(i: &PlanItem, why_not_run: &str) -> ItemOutcome {
    let (outcome, mut reasons) = match i.action {
        Action::Unchanged => (Outcome::Unchanged, Vec::new()),
        Action::Skip => (Outcome::Skipped, i.reasons.clone()),
        Action::Cannot => (Outcome::Failed, i.reasons.clone()),
        Action::Refuse => (Outcome::Failed, i.reasons.clone()),
        Action::Create | Action::Update => (Outcome::Skipped, Vec::new()),
    };
    if matches!(i.action, Action::Create | Action::Update) {
        reasons.push(format!("not done: {why_not_run}"));
    }
    ItemOutcome {
        kind: i.kind,
        source: i.source.clone(),
        target: i.target.clone(),
        outcome,
        reasons,
        notes: i.notes.clone(),
    }
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
    pub(crate) progress: &'a (dyn Fn(Progress) + Sync),
    pub(crate) state: Mutex<State>,
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

    pub(crate) fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        (self.progress)(Progress {
            done,
            total: self.total,
        });
    }

    pub(crate) fn items_of(&self, kinds: &[Kind]) -> Vec<&PlanItem> {
        self.plan
            .items
            .iter()
            .filter(|i| kinds.contains(&i.kind))
            .collect()
    }

    async fn all(&self) -> Vec<ItemOutcome> {
        let mut out: BTreeMap<usize, ItemOutcome> = BTreeMap::new();
        let index: BTreeMap<*const PlanItem, usize> = self
            .plan
            .items
            .iter()
            .enumerate()
            .map(|(i, p)| (p as *const PlanItem, i))
            .collect();
        let mut record = |item: &PlanItem, r: StepResult| {
            let i = index[&(item as *const PlanItem)];
            let (outcome, reasons) = match r {
                Ok(o) => (o, item.reasons.clone()),
                Err(e) => (Outcome::Failed, vec![e]),
            };
            out.insert(
                i,
                ItemOutcome {
                    kind: item.kind,
                    source: item.source.clone(),
                    target: item.target.clone(),
                    outcome,
                    reasons: if outcome == Outcome::Created {
                        Vec::new()
                    } else {
                        reasons
                    },
                    notes: item.notes.clone(),
                },
            );
        };
        for unit in super::unit::UNITS {
            for (item, r) in unit.apply(self).await {
                record(item, r);
            }
        }
        // Everything that needed no request, and what was not reached.
        for (i, item) in self.plan.items.iter().enumerate() {
            out.entry(i)
                .or_insert_with(|| outcome_of_unrun(item, "interrupted; run again with --resume"));
        }
        out.into_values().collect()
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
                self.tick();
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

    // ----------------------------------------------------------------------------------------
    // Folders.

    pub(crate) async fn directories(&self) -> Vec<(&PlanItem, StepResult)> {
        if self.interrupt.is_set() {
            return Vec::new();
        }
        // Every folder this import needs: folder records, and the parents of what it creates.
        let mut needed: BTreeSet<String> = BTreeSet::new();
        for i in &self.plan.items {
            match &i.step {
                Some(Step::Dir { path }) => {
                    needed.insert(path.clone());
                }
                Some(Step::Import { path, .. })
                | Some(Step::Repo {
                    path,
                    existing: None,
                    ..
                }) => {
                    let p = parent_path(path);
                    if !self.plan.tree.is_dir(p) {
                        needed.insert(p.to_string());
                    }
                }
                _ => {}
            }
        }
        // mkdirs makes parents, so only the deepest folders need a call.
        let leaves: Vec<String> = needed
            .iter()
            .filter(|p| {
                !needed
                    .range::<String, _>((std::ops::Bound::Excluded(*p), std::ops::Bound::Unbounded))
                    .take_while(|q| q.starts_with(p.as_str()))
                    .any(|q| q.starts_with(&format!("{p}/")))
            })
            .cloned()
            .collect();
        let results = concurrently(leaves, self.options.concurrency(), |leaf| async move {
            if self.interrupt.is_set() {
                return (leaf, Err(INTERRUPTED.to_string()));
            }
            self.wrote();
            let r = self.client.workspace().mkdirs(&leaf).await;
            (leaf, r.map_err(|e| e.to_string()))
        })
        .await;
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for (leaf, r) in results {
            if let Err(e) = r {
                failed.insert(leaf, e);
            }
        }
        // A folder is done when every leaf at or below it was made.
        let mut out = Vec::new();
        for item in self.items_of(&[Kind::Directory]) {
            let Some(Step::Dir { path }) = &item.step else {
                continue;
            };
            let bad = failed
                .iter()
                .find(|(leaf, _)| *leaf == path || leaf.starts_with(&format!("{path}/")));
            let r = match bad {
                Some((_, e)) if e == INTERRUPTED => continue,
                Some((leaf, e)) => Err(format!("mkdirs {leaf}: {e}")),
                None => {
                    self.ledger
                        .record(item.key.clone(), json!({ "sha256": Value::Null }));
                    self.tick();
                    Ok(Outcome::Created)
                }
            };
            out.push((item, r));
        }
        self.st().failed_dirs = failed.into_keys().collect();
        out
    }

    // ----------------------------------------------------------------------------------------
    // Notebooks and files.

    pub(crate) async fn objects(&self) -> Vec<(&PlanItem, StepResult)> {
        let items = self.items_of(&[Kind::Notebook, Kind::File]);
        let r = self
            .each(items, |item, step| async move {
                let Step::Import {
                    index,
                    path,
                    overwrite,
                } = step
                else {
                    return Err("internal: wrong step".into());
                };
                let r = self.import_object(*index, path, *overwrite).await;
                if r.is_err() {
                    self.st().failed_paths.insert(path.clone());
                } else {
                    let o = &self.source.objects[*index];
                    self.ledger
                        .record(item.key.clone(), json!({ "sha256": o.sha256 }));
                }
                r.map(|_| Self::created_or_updated(item))
            })
            .await;
        r
    }

    pub(crate) async fn import_object(
        &self,
        index: usize,
        path: &str,
        overwrite: bool,
    ) -> Result<(), String> {
        let o = &self.source.objects[index];
        if self
            .st()
            .failed_dirs
            .iter()
            .any(|d| parent_path(path) == d || parent_path(path).starts_with(&format!("{d}/")))
        {
            return Err(format!(
                "its folder {} could not be created",
                parent_path(path)
            ));
        }
        let stored = o.stored.as_deref().ok_or("no content in the bundle")?;
        let content = self
            .source
            .read(stored, MAX_IMPORT_BYTES)
            .map_err(|e| e.to_string())?;
        let content = bytes::Bytes::from(content);
        let (format, language) = if o.kind == Kind::Notebook {
            (o.format, o.language)
        } else {
            (Format::Raw, None)
        };
        let req = Import {
            path,
            content: content.clone(),
            format,
            language,
            overwrite,
        };
        let mut last = String::new();
        for attempt in 0..AMBIGUOUS_ATTEMPTS {
            self.wrote();
            match self.client.workspace().upload(&req).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_already_exists() && attempt > 0 => {
                    // An earlier attempt whose answer was lost may have made it.
                    return self.check_object(index, path).await;
                }
                Err(e) if ambiguous(&e) => {
                    last = e.to_string();
                    if !overwrite && self.check_object(index, path).await.is_ok() {
                        return Ok(());
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(last)
    }

    /// Succeeds when the target holds the bundle's object at `path`.
    pub(crate) async fn check_object(&self, index: usize, path: &str) -> Result<(), String> {
        let o = &self.source.objects[index];
        let format = if o.kind == Kind::Notebook {
            o.format
        } else {
            Format::Source
        };
        let bytes = self
            .client
            .workspace()
            .export(path, format, None)
            .await
            .map_err(|e| format!("checking {path}: {e}"))?;
        let stored = o.stored.as_deref().unwrap_or_default();
        let mine = self
            .source
            .read(stored, MAX_IMPORT_BYTES)
            .map_err(|e| e.to_string())?;
        if super::compare::same_content(&mine, &bytes) {
            Ok(())
        } else {
            Err(format!("{path} appeared in the target with other content"))
        }
    }

    // ----------------------------------------------------------------------------------------
    // Repos.

    // ----------------------------------------------------------------------------------------
    // Secret scopes and secrets.

    pub(crate) async fn scopes(&self) -> Vec<(&PlanItem, StepResult)> {
        let items = self.items_of(&[Kind::SecretScope]);
        let me = self.plan.me.as_ref().map(|p| p.name().to_string());
        self.each(items, |item, step| {
            let me = me.clone();
            async move {
                let Step::Scope {
                    name,
                    create,
                    acl,
                    put,
                    delete,
                } = step
                else {
                    return Err("internal: wrong step".into());
                };
                let api = self.client.secrets();
                let (put, delete) = if *create {
                    self.create_scope(name).await?;
                    let current = api.list_acls(name).await.map_err(|e| e.to_string())?;
                    scope_acl_changes(acl, &current, me.as_deref())
                } else {
                    (put.clone(), delete.clone())
                };
                for a in &put {
                    self.wrote();
                    api.put_acl(name, &a.principal, a.permission)
                        .await
                        .map_err(|e| format!("ACL {}: {e}", a.principal))?;
                }
                for p in &delete {
                    self.wrote();
                    match api.delete_acl(name, p).await {
                        Ok(()) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(format!("removing ACL {p}: {e}")),
                    }
                }
                self.ledger.record(item.key.clone(), json!({}));
                Ok(Self::created_or_updated(item))
            }
        })
        .await
    }

    pub(crate) async fn create_scope(&self, name: &str) -> Result<(), String> {
        let req = crate::client::secrets::CreateScope {
            scope: name.to_string(),
            ..Default::default()
        };
        let mut last = String::new();
        for attempt in 0..AMBIGUOUS_ATTEMPTS {
            self.wrote();
            match self.client.secrets().create_scope(&req).await {
                Ok(()) => return Ok(()),
                // A scope is identified by its name: one that exists is this one.
                Err(e) if e.is_already_exists() => return Ok(()),
                Err(e) if ambiguous(&e) => {
                    last = e.to_string();
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(last)
    }

    pub(crate) async fn secrets(&self) -> Vec<(&PlanItem, StepResult)> {
        let items = self.items_of(&[Kind::Secret]);
        self.each(items, |item, step| async move {
            let Step::Secret { index, scope } = step else {
                return Err("internal: wrong step".into());
            };
            let s = &self.source.secrets[*index];
            let value = self
                .values
                .get(&s.scope, &s.key)
                .ok_or("its value was not opened")?;
            let sealed = json!({ "sealed_sha256": s.sealed_sha256 });
            // The intent is on disk before the value can be in the target.
            self.ledger
                .record_durable(keys::secret_intent(scope, &s.key), sealed.clone())
                .await
                .map_err(|e| format!("journal: {e}"))?;
            self.wrote();
            self.client
                .secrets()
                .put(scope, &s.key, value, s.encoding)
                .await
                .map_err(|e| e.to_string())?;
            self.ledger.record(item.key.clone(), sealed);
            Ok(Self::created_or_updated(item))
        })
        .await
    }

    // ----------------------------------------------------------------------------------------
    // Jobs.

    pub(crate) async fn jobs(&self) -> Vec<(&PlanItem, StepResult)> {
        let mut out = Vec::new();
        if self.interrupt.is_set() {
            return out;
        }
        self.st().job_ids = self.plan.job_ids.clone();
        let items = self.items_of(&[Kind::Job]);
        let mut creates: Vec<&PlanItem> = Vec::new();
        let mut updates: Vec<&PlanItem> = Vec::new();
        for i in items {
            match &i.step {
                Some(Step::Job { existing: None, .. }) => creates.push(i),
                Some(Step::Job { .. }) => updates.push(i),
                _ => {}
            }
        }
        let creating: BTreeSet<i64> = creates
            .iter()
            .filter_map(|i| match &i.step {
                Some(Step::Job { source_id, .. }) => Some(*source_id),
                _ => None,
            })
            .collect();
        // Create in dependency order: a job after the jobs its run_job_tasks point at.
        let mut placeholders: Vec<&PlanItem> = Vec::new();
        let mut remaining = creates;
        while !remaining.is_empty() && !self.interrupt.is_set() {
            let ready: Vec<&PlanItem>;
            let waiting: Vec<&PlanItem>;
            {
                let st = self.st();
                (ready, waiting) = remaining.into_iter().partition(|i| {
                    let Some(Step::Job { template, .. }) = &i.step else {
                        return false;
                    };
                    job_refs(template).iter().all(|r| {
                        !creating.contains(r)
                            || st.job_ids.contains_key(r)
                            || st.failed_jobs.contains(r)
                    })
                });
            }
            if ready.is_empty() {
                // A cycle: create these with a placeholder, and set them whole afterwards.
                placeholders = waiting;
                break;
            }
            let results = self
                .each(ready, |item, step| async move {
                    let Step::Job {
                        source_id,
                        template,
                        ..
                    } = step
                    else {
                        return Err("internal: wrong step".into());
                    };
                    let blocked: Vec<i64> = job_refs(template)
                        .into_iter()
                        .filter(|r| self.st().failed_jobs.contains(r))
                        .collect();
                    if !blocked.is_empty() {
                        self.st().failed_jobs.insert(*source_id);
                        return Err(format!(
                            "it runs job(s) {} whose import failed",
                            blocked
                                .iter()
                                .map(i64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    let mut settings = template.clone();
                    substitute_job_refs(&mut settings, &self.st().job_ids);
                    match self.create_job(*source_id, &settings).await {
                        Ok(id) => {
                            self.st().job_ids.insert(*source_id, id);
                            self.ledger
                                .record(item.key.clone(), json!({ "job_id": id }));
                            Ok(Outcome::Created)
                        }
                        Err(e) => {
                            self.st().failed_jobs.insert(*source_id);
                            Err(e)
                        }
                    }
                })
                .await;
            out.extend(results);
            remaining = waiting;
        }
        if !placeholders.is_empty() && !self.interrupt.is_set() {
            let results = self
                .each(placeholders.clone(), |_item, step| async move {
                    let Step::Job {
                        source_id,
                        template,
                        ..
                    } = step
                    else {
                        return Err("internal: wrong step".into());
                    };
                    let mut shell = Map::new();
                    for k in ["name", "tags"] {
                        if let Some(v) = template.get(k) {
                            shell.insert(k.into(), v.clone());
                        }
                    }
                    match self.create_job(*source_id, &shell).await {
                        Ok(id) => {
                            self.st().job_ids.insert(*source_id, id);
                            Ok(Outcome::Created)
                        }
                        Err(e) => {
                            self.st().failed_jobs.insert(*source_id);
                            Err(e)
                        }
                    }
                })
                .await;
            // Failed placeholders are final; the others are set whole below.
            for (item, r) in results {
                if r.is_err() {
                    out.push((item, r));
                } else {
                    updates.push(item);
                }
            }
        }
        let placeholder_ids: BTreeSet<*const PlanItem> =
            placeholders.iter().map(|p| *p as *const PlanItem).collect();
        let creating = &creating;
        let results = self
            .each(updates, |item, step| {
                let was_placeholder = placeholder_ids.contains(&(item as *const PlanItem));
                async move {
                    let Step::Job {
                        source_id,
                        template,
                        existing,
                    } = step
                    else {
                        return Err("internal: wrong step".into());
                    };
                    let id = match existing.or_else(|| self.st().job_ids.get(source_id).copied()) {
                        Some(id) => id,
                        None => return Err("its job id is unknown".into()),
                    };
                    let mut settings = template.clone();
                    substitute_job_refs(&mut settings, &self.st().job_ids);
                    let unresolved: Vec<i64> = job_refs(&settings)
                        .into_iter()
                        .filter(|r| creating.contains(r) && !self.st().job_ids.contains_key(r))
                        .collect();
                    if !unresolved.is_empty() {
                        return Err(format!(
                            "it runs job(s) {} whose import failed",
                            unresolved
                                .iter()
                                .map(i64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    self.wrote();
                    self.client
                        .jobs()
                        .reset(id, &settings)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.ledger
                        .record(item.key.clone(), json!({ "job_id": id }));
                    Ok(if was_placeholder {
                        Outcome::Created
                    } else {
                        Outcome::Updated
                    })
                }
            })
            .await;
        out.extend(results);
        out
    }

    /// Creates a job, making sure a lost answer never leads to a second job: before sending
    /// again, the job is looked for by its source tag.
    pub(crate) async fn create_job(
        &self,
        source_id: i64,
        settings: &Map<String, Value>,
    ) -> Result<i64, String> {
        let tag = self.source.job_tag(source_id);
        let name = settings
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("Untitled")
            .to_string();
        let mut last = String::new();
        for attempt in 0..AMBIGUOUS_ATTEMPTS {
            if attempt > 0 {
                match find_job_by_tag(self.client, &name, &tag).await {
                    Ok(Some(id)) => return Ok(id),
                    Ok(None) => {}
                    Err(e) => return Err(format!("looking for the job after a lost answer: {e}")),
                }
            }
            self.wrote();
            match self.client.jobs().create(settings).await {
                Ok(id) => return Ok(id),
                Err(e) if ambiguous(&e) => {
                    last = e.to_string();
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(last)
    }

    // ----------------------------------------------------------------------------------------
    // Permissions.

    // ----------------------------------------------------------------------------------------
    // ML models.

    // ----------------------------------------------------------------------------------------
    // Table grants.
}

const INTERRUPTED: &str = "\u{0}interrupted";

pub(crate) fn backoff(attempt: usize) -> Duration {
    Duration::from_millis(250 << attempt.min(5))
}
