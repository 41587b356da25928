//! The state every stage of one export shares: the client, the options, the staging folder, the
//! report being built, the observer, and what the listings learned that later stages need (ids
//! for the code scanner, principals referenced anywhere).

use super::error::ExportError;
use super::options::ExportOptions;
use super::progress::{Event, Observer};
use super::report::{Outcome, Report};
use super::select::PathFilter;
use super::stage::{Committer, DoneEntry, Item, Stage};
use crate::bundle::Resource;
use crate::client::{Client, ClientError};
use crate::model::scan::{Finding, ScanContext};
use crate::model::Kind;
use crate::models::Registry;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Shared state of one export.
pub struct Ctx {
    /// The workspace client.
    pub client: Client,
    /// The options.
    pub opts: ExportOptions,
    /// The staging folder.
    pub stage: Arc<Stage>,
    /// Commits objects to the staging folder in groups.
    pub committer: Committer,
    /// The path filter.
    pub filter: PathFilter,
    /// The model registry when it is the export's source (`models export`); otherwise the
    /// models stage finds it from the options and the client.
    pub registry: Option<Registry>,
    observer: Arc<dyn Observer>,
    report: Mutex<Report>,
    scan: OnceLock<ScanContext>,
    principals: Mutex<BTreeSet<String>>,
    fatal: Mutex<Option<ExportError>>,
    reused: std::sync::atomic::AtomicU64,
    folders: Mutex<std::collections::BTreeMap<String, String>>,
    deferred: Mutex<Vec<crate::models::Deferred>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The first line of an error, for report reasons (hints follow on later lines).
pub fn reason(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}

impl Ctx {
    /// A context for a run.
    pub fn new(
        client: Client,
        opts: ExportOptions,
        stage: Stage,
        filter: PathFilter,
        observer: Arc<dyn Observer>,
        report: Report,
        registry: Option<Registry>,
    ) -> Ctx {
        let stage = Arc::new(stage);
        let principals = stage.journaled_principals().into_iter().collect();
        Ctx {
            client,
            opts,
            committer: Committer::start(Arc::clone(&stage)),
            stage,
            filter,
            registry,
            observer,
            report: Mutex::new(report),
            scan: OnceLock::new(),
            principals: Mutex::new(principals),
            fatal: Mutex::new(None),
            reused: std::sync::atomic::AtomicU64::new(0),
            folders: Mutex::new(std::collections::BTreeMap::new()),
            deferred: Mutex::new(Vec::new()),
        }
    }

    /// Gives back the staging folder once every stage has finished.
    pub fn into_stage(self) -> Stage {
        self.committer.close();
        self.stage.release_index();
        let Ctx { stage, .. } = self;
        Arc::try_unwrap(stage).unwrap_or_else(|_| {
            panic!("the staging folder is still shared after the commit thread stopped")
        })
    }

    /// Sends an event to the observer.
    pub fn emit(&self, e: Event) {
        self.observer.event(e);
    }

    /// A phase starts.
    pub fn phase(&self, what: &str) {
        tracing::info!(target: "dbxport::export", phase = what);
        self.emit(Event::Phase(what.to_string()));
    }

    /// Something the user must see.
    pub fn notice(&self, text: impl Into<String>) {
        let text = text.into();
        tracing::warn!(target: "dbxport::export", "{text}");
        self.emit(Event::Warning(text.clone()));
        lock(&self.report).notices.push(text);
    }

    /// Counts objects found.
    pub fn found(&self, kind: Kind, n: u64) {
        if n == 0 {
            return;
        }
        lock(&self.report)
            .kinds
            .entry(kind.as_str().to_string())
            .or_default()
            .found += n;
        self.emit(Event::Found { kind, count: n });
    }

    /// Records what became of one object: `entry` gives its name, outcome (exported when
    /// unset), notes (the reasons of any other outcome) and staged bytes.
    pub fn outcome(&self, kind: Kind, source_id: &str, entry: &DoneEntry, reused: bool) {
        let outcome = entry.outcome.unwrap_or(Outcome::Exported);
        let (name, reasons, bytes) = (entry.name.as_str(), &entry.notes, entry.bytes);
        lock(&self.report).record(kind, source_id, entry);
        if outcome == Outcome::Failed {
            tracing::warn!(target: "dbxport::export", %kind, name, reason = reasons.join("; "), "not exported");
        }
        self.emit(Event::Done {
            kind,
            bytes,
            outcome,
            reused,
        });
    }

    /// True when the models stage may stream large artifacts into the bundle as it is
    /// written (§11, streamed files): a fresh run does; a resumed one stages everything it exports.
    pub fn streams_models(&self) -> bool {
        !self.stage.resumed()
    }

    /// Holds model versions whose artifacts are streamed when the bundle is written.
    pub fn defer_models(&self, d: crate::models::Deferred) {
        lock(&self.deferred).push(d);
    }

    /// The model versions held for streaming, taken out.
    pub fn take_deferred(&self) -> Vec<crate::models::Deferred> {
        std::mem::take(&mut *lock(&self.deferred))
    }

    /// Records a failure of one object.
    pub fn failed(&self, kind: Kind, name: &str, source_id: &str, why: String) {
        self.outcome(kind, source_id, &DoneEntry::failed(name, why), false);
    }

    /// Adds findings to the checklist.
    pub fn findings(&self, f: &[Finding]) {
        if !f.is_empty() {
            lock(&self.report)
                .must_recreate
                .code
                .extend(f.iter().cloned());
        }
    }

    /// Edits the report.
    pub fn with_report<R>(&self, f: impl FnOnce(&mut Report) -> R) -> R {
        f(&mut lock(&self.report))
    }

    /// The report as it stands.
    pub fn report(&self) -> Report {
        lock(&self.report).clone()
    }

    /// Notes principals referenced by an object (`user:…`, `group:…`, `sp:…`, `any:…`).
    pub fn reference_principals(&self, names: &[String]) {
        lock(&self.principals).extend(names.iter().cloned());
    }

    /// Every principal referenced so far.
    pub fn referenced_principals(&self) -> BTreeSet<String> {
        lock(&self.principals).clone()
    }

    /// Ids the code scanner looks for; set once, before any notebook is fetched.
    pub fn set_scan_context(&self, s: ScanContext) {
        let _ = self.scan.set(s);
    }

    /// The scanner's context.
    pub fn scan_context(&self) -> &ScanContext {
        static EMPTY: OnceLock<ScanContext> = OnceLock::new();
        self.scan
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(ScanContext::default))
    }

    /// Stops the run at the next check: a failure every later step would repeat (refused
    /// credentials, a full disk).
    pub fn set_fatal(&self, e: ExportError) {
        let mut f = lock(&self.fatal);
        if f.is_none() {
            *f = Some(e);
        }
    }

    /// True once a fatal error was set.
    pub fn is_stopped(&self) -> bool {
        lock(&self.fatal).is_some()
    }

    /// Takes the fatal error, if any.
    pub fn take_fatal(&self) -> Option<ExportError> {
        lock(&self.fatal).take()
    }

    /// Records how the notebooks of the folder `path` were fetched (`archive …` or
    /// `per object …`, with the reason).
    pub fn folder_path(&self, path: &str, how: String) {
        lock(&self.folders).insert(path.to_string(), how);
    }

    /// How each folder's notebooks were fetched in this run.
    pub fn folder_paths(&self) -> std::collections::BTreeMap<String, String> {
        lock(&self.folders).clone()
    }

    /// Objects reused from an interrupted run.
    pub fn reused(&self) -> u64 {
        self.reused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When the bag already holds the object, accounts for it from the journal and returns
    /// true: the caller fetches nothing.
    pub fn reuse(&self, kind: Kind, source_id: &str) -> bool {
        let Some(e) = self.stage.held(kind, source_id) else {
            return false;
        };
        self.reused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.findings(&e.findings);
        self.reference_principals(&e.principals);
        self.outcome(kind, source_id, &e, true);
        true
    }

    /// Handles a client error about one object: refused credentials stop the whole run, any
    /// other error is that object's failure.
    pub fn client_failure(
        &self,
        kind: Kind,
        name: &str,
        source_id: &str,
        context: &str,
        e: ClientError,
    ) {
        if e.is_auth_failure() {
            self.set_fatal(ExportError::Client {
                context: context.to_string(),
                source: e,
            });
            return;
        }
        self.failed(kind, name, source_id, reason(&e));
    }
}

/// Journals and stages one object (through the committer), then records its outcome. `entry`
/// carries the name, outcome, notes, findings and principals.
pub async fn commit(
    ctx: &Arc<Ctx>,
    kind: Kind,
    source_id: String,
    entry: DoneEntry,
    resource: Resource,
) {
    match ctx
        .committer
        .submit(Item::Object(Box::new((entry.clone(), resource))))
        .await
    {
        Ok(()) => {
            ctx.findings(&entry.findings);
            ctx.reference_principals(&entry.principals);
            ctx.outcome(kind, &source_id, &entry, false);
        }
        Err(e) => {
            if e.fatal {
                ctx.set_fatal(ExportError::StagingFailed {
                    path: ctx.stage.root().to_path_buf(),
                    what: format!("{kind} {}", entry.name),
                    detail: e.message.clone(),
                    no_room: e.no_room,
                });
            }
            ctx.failed(
                kind,
                &entry.name,
                &source_id,
                format!("staging failed: {}", e.message),
            );
        }
    }
}
