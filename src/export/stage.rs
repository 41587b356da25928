//! The staging folder of an export, `<output>.partial/` (mode 0700), beside the output:
//!
//! ```text
//! <output>.partial/journal.jsonl   finished listings and objects (crate::journal)
//! <output>.partial/recipients.json the recipient set's fingerprint (Sealer::fingerprint)
//! <output>.partial/passphrase-check.age  a marker sealed with the passphrase, if one is used
//! <output>.partial/<bag>/          the bag being filled (bundle::BagBuilder)
//! <output>.partial/tmp/            downloads in progress
//! ```
//!
//! An object is committed in two steps: its journal entry (outcome, notes, the code findings
//! and principals it references) and then its staged record in the bag. The bag is the
//! authority on what is held — an object is skipped on `--resume` only when the bag holds it —
//! and the journal entry, written first, carries what the report needs about it. A crash
//! between the two steps leaves an entry without a record; the object is then fetched again and
//! its entry rewritten. Folder listings are journaled too, so a resumed walk lists only the
//! folders it had not listed.
//!
//! Commits are grouped: one [`Committer`] thread takes every commit waiting, writes their
//! entries as one journal line (one `fsync` for the group), then stages their records. A
//! journal sync per object would cap an export at the disk's sync rate, far below the rate
//! limits of a workspace.
//!
//! The output path only ever receives a complete bundle: [`crate::bundle::pack()`] verifies the
//! zip it wrote under a temporary name before renaming it into place; then the staging folder
//! is removed.

use super::error::ExportError;
use super::report::Outcome;
use crate::bundle::pack::find_bag;
use crate::bundle::writer::BagSettings;
use crate::bundle::{BagBuilder, Resource, Sealer};
use crate::journal::{Journal, OpenMode};
use crate::model::scan::Finding;
use crate::model::workspace::ObjectInfo;
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the journal keeps about one committed object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneEntry {
    /// Original name or path.
    pub name: String,
    /// What became of it (`exported` or `degraded`; omitted objects are committed too when
    /// the bag keeps a record of them, e.g. a secret whose value was not exported).
    pub outcome: Option<Outcome>,
    /// Notes (the reasons of a degraded or omitted outcome).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Bytes staged.
    #[serde(default)]
    pub bytes: u64,
    /// Lines of code flagged by the scanner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Principals the object references (`user:…`, `group:…`, `sp:…`, `any:…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
}

impl DoneEntry {
    /// An object that failed, with the reason.
    pub fn failed(name: &str, why: String) -> DoneEntry {
        DoneEntry::with(name, Outcome::Failed, vec![why])
    }

    /// An object with an outcome and its notes.
    pub fn with(name: &str, outcome: Outcome, notes: Vec<String>) -> DoneEntry {
        DoneEntry {
            name: name.to_string(),
            outcome: Some(outcome),
            notes,
            ..DoneEntry::default()
        }
    }
}

/// The staging folder of one export.
pub struct Stage {
    root: PathBuf,
    bag_dir: PathBuf,
    tmp: PathBuf,
    builder: Option<BagBuilder>,
    journal: Mutex<Journal>,
    /// Journaled objects (`obj:<kind>:<id>` → entry), read from the journal at open and kept
    /// current, and the listings (folder → entries) an interrupted run journaled.
    index: Mutex<Index>,
    resumed: bool,
}

#[derive(Default)]
struct Index {
    /// Entries that say more than "exported": notes, findings, another outcome.
    objects: HashMap<String, DoneEntry>,
    listings: HashMap<String, Vec<ObjectInfo>>,
    /// Every principal any journaled object references.
    principals: std::collections::HashSet<String>,
    batches: usize,
}

/// The key prefix of the journal's batch lines (`batch:<n>`).
const BATCH_PREFIX: &str = "batch:";

/// One journal line holding a group of commits. To keep the journal (and its copy in memory)
/// small, an object that was simply exported has no entry here — a held object without one
/// reads as exported — and principals are listed once, the first time one is referenced.
#[derive(Serialize, Deserialize, Default)]
struct Batch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    objects: Vec<(String, DoneEntry)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    listings: Vec<(String, Vec<ObjectInfo>)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    principals: Vec<String>,
}

impl DoneEntry {
    /// True when the entry says nothing beyond "exported".
    fn is_plain(&self) -> bool {
        matches!(self.outcome, None | Some(Outcome::Exported))
            && self.notes.is_empty()
            && self.findings.is_empty()
    }
}

impl Index {
    fn read(journal: &Journal) -> Index {
        let mut ix = Index::default();
        for (key, value) in journal.entries() {
            if key.starts_with(BATCH_PREFIX) {
                ix.batches += 1;
                if let Ok(b) = serde_json::from_value::<Batch>(value.clone()) {
                    ix.apply(b);
                }
            }
        }
        ix
    }

    /// Adds a batch read from the journal (an interrupted run's).
    fn apply(&mut self, mut b: Batch) {
        self.listings.extend(std::mem::take(&mut b.listings));
        self.apply_outcomes(b);
    }

    /// Adds a batch this run journaled. Its listings are not kept: the walk lists each folder
    /// once, so only an earlier run's listings are ever looked up, and a copy of every listed
    /// object is memory per object for nothing.
    fn apply_outcomes(&mut self, b: Batch) {
        self.objects.extend(b.objects);
        self.principals.extend(b.principals);
    }

    /// Adds an object to a batch being built: its principals not yet journaled, and its
    /// entry unless it is plain.
    fn add_to(&self, batch: &mut Batch, key: String, entry: &DoneEntry) {
        for p in &entry.principals {
            if !self.principals.contains(p) && !batch.principals.contains(p) {
                batch.principals.push(p.clone());
            }
        }
        if !entry.is_plain() {
            let mut e = entry.clone();
            e.principals.clear();
            batch.objects.push((key, e));
        }
    }
}

/// What a commit carries.
pub enum Item {
    /// An object: its journal entry and its resource.
    Object(Box<(DoneEntry, Resource)>),
    /// A folder listing.
    Listing(String, Vec<ObjectInfo>),
}

/// Why a commit failed; `fatal` when every later commit would fail too (the journal or the
/// disk), so the run stops.
#[derive(Debug, Clone)]
pub struct CommitError {
    /// What went wrong.
    pub message: String,
    /// True when the run cannot go on.
    pub fatal: bool,
    /// True when the disk (or quota, or file size limit) was full.
    pub no_room: bool,
}

struct Pending {
    item: Item,
    reply: tokio::sync::oneshot::Sender<Result<(), CommitError>>,
}

/// The thread that commits groups of objects; see the module docs.
pub struct Committer {
    tx: Mutex<Option<std::sync::mpsc::Sender<Pending>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Commits taken into one group at most.
const MAX_GROUP: usize = 512;

/// Threads that stage the resources of one group.
const STAGING_THREADS: usize = 8;

impl Committer {
    /// Starts the committer of `stage`.
    pub fn start(stage: Arc<Stage>) -> Committer {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        let thread = std::thread::Builder::new()
            .name("dbxport-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(p) => group.push(p),
                            Err(_) => break,
                        }
                    }
                    let (items, replies): (Vec<Item>, Vec<_>) =
                        group.into_iter().map(|p| (p.item, p.reply)).unzip();
                    let results = stage.commit_group(items);
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(r);
                    }
                }
            })
            .expect("the commit thread starts");
        Committer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Commits one item; returns once it is journaled and staged.
    pub async fn submit(&self, item: Item) -> Result<(), CommitError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|tx| tx.send(Pending { item, reply }).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(CommitError {
                message: "the commit thread has stopped".into(),
                fatal: true,
                no_room: false,
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(CommitError {
                message: "the commit thread has stopped".into(),
                fatal: true,
                no_room: false,
            })
        })
    }

    /// Stops taking commits and waits for the ones under way.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.close();
    }
}

/// `<output>.partial`.
pub fn staging_path(output: &Path) -> PathBuf {
    crate::bundle::fsutil::partial_path(output)
}

/// The bag name for an output file: its name without `.zip`/`.zip.age` when that is a valid
/// bag name, else the default name of [`BagSettings`].
pub fn bag_name_for(output: &Path, settings: &BagSettings) -> String {
    let file = output
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = file
        .strip_suffix(".age")
        .unwrap_or(file)
        .strip_suffix(".zip")
        .unwrap_or(file.strip_suffix(".age").unwrap_or(file));
    if crate::bundle::bagit::is_bag_name(stem) {
        stem.to_string()
    } else {
        settings.bag_name.clone()
    }
}

fn journal_key(kind: Kind, source_id: &str) -> String {
    format!("obj:{kind}:{source_id}")
}

#[cfg(unix)]
fn make_private_dir(dir: &Path) -> Result<(), ExportError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| ExportError::io(dir, e))
}

#[cfg(not(unix))]
fn make_private_dir(dir: &Path) -> Result<(), ExportError> {
    std::fs::create_dir(dir).map_err(|e| ExportError::io(dir, e))
}

/// Checks the output and staging paths before anything is sent: the output must not exist,
/// its folder must, and an interrupted export's staging folder needs `resume`.
pub fn precheck(output: &Path, resume: bool) -> Result<(), ExportError> {
    if output.exists() {
        return Err(ExportError::OutputExists(output.to_path_buf()));
    }
    let parent = crate::bundle::fsutil::parent_dir(output);
    if !parent.is_dir() {
        return Err(ExportError::io(
            &parent,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the output's folder does not exist",
            ),
        ));
    }
    let root = staging_path(output);
    if root.exists() && !resume {
        return Err(ExportError::StagingExists(root));
    }
    Ok(())
}

const RECIPIENTS_FILE: &str = "recipients.json";
const PASSPHRASE_CHECK: &str = "passphrase-check.age";
const PASSPHRASE_MARKER: &[u8] = b"dbxport: the passphrase this export started with";

/// What `recipients.json` holds: the fingerprint of the recipient set (public keys hashed, a
/// passphrase only as a marker), `None` when values are not sealed at all.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct RecipientsRecord {
    fingerprint: Option<String>,
}

fn describe_recipients(fingerprint: Option<&str>) -> String {
    match fingerprint {
        None => "no recipient (values not exported)".into(),
        Some("passphrase") => "a passphrase".into(),
        Some(f) => format!(
            "recipients {}",
            f.get(..f.len().min("sha256:".len() + 12)).unwrap_or(f)
        ),
    }
}

/// Records whom this export seals to, so that `--resume` can refuse a different set.
fn record_recipients(root: &Path, sealer: Option<&Sealer>) -> Result<(), ExportError> {
    let record = RecipientsRecord {
        fingerprint: sealer.map(Sealer::fingerprint),
    };
    let path = root.join(RECIPIENTS_FILE);
    let bytes = serde_json::to_vec(&record).expect("record serializes");
    crate::bundle::fsutil::write_atomic(&path, &bytes, true).map_err(ExportError::Bundle)?;
    if let Some(s) = sealer.filter(|s| s.sealing().passphrase) {
        // The passphrase itself is never stored; a marker sealed with it shows on resume
        // whether the same one was given (costing one scrypt, as opening any value does).
        let sealed = s
            .seal(PASSPHRASE_MARKER)
            .map_err(|e| ExportError::Staging {
                path: root.to_path_buf(),
                detail: e.to_string(),
            })?;
        let check = root.join(PASSPHRASE_CHECK);
        crate::bundle::fsutil::write_atomic(&check, &sealed, true).map_err(ExportError::Bundle)?;
    }
    Ok(())
}

/// Refuses to resume with other recipients than the interrupted run recorded. A staging
/// folder without the record (an older dbxport's, or one cut short before it was written) is
/// left to the bag's own check ([`BagBuilder::resume`]).
fn check_recipients(root: &Path, sealer: Option<&Sealer>) -> Result<(), ExportError> {
    let path = root.join(RECIPIENTS_FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    let was: RecipientsRecord =
        serde_json::from_slice(&bytes).map_err(|e| ExportError::Staging {
            path: root.to_path_buf(),
            detail: format!("{RECIPIENTS_FILE} is damaged: {e}"),
        })?;
    let now = sealer.map(Sealer::fingerprint);
    let changed = |now: String| ExportError::RecipientsChanged {
        path: root.to_path_buf(),
        was: describe_recipients(was.fingerprint.as_deref()),
        now,
    };
    if was.fingerprint != now {
        return Err(changed(describe_recipients(now.as_deref())));
    }
    if let (Some(s), Ok(sealed)) = (sealer, std::fs::read(root.join(PASSPHRASE_CHECK))) {
        if s.sealing().passphrase && !s.passphrase_opens(&sealed) {
            return Err(changed("a different passphrase".into()));
        }
    }
    Ok(())
}

impl Stage {
    /// Opens the staging folder of `output`: a new one, or (with `resume`) the one an
    /// interrupted run left. `header` identifies the run (host and options); a resumed run
    /// must match it. `settings` names a new bag.
    pub fn open(
        output: &Path,
        resume: bool,
        header: &Value,
        settings: BagSettings,
        sealer: Option<Sealer>,
    ) -> Result<Stage, ExportError> {
        if output.exists() {
            return Err(ExportError::OutputExists(output.to_path_buf()));
        }
        let root = staging_path(output);
        let tmp = root.join("tmp");
        let journal_path = root.join("journal.jsonl");
        if root.exists() {
            if !resume {
                return Err(ExportError::StagingExists(root));
            }
            check_recipients(&root, sealer.as_ref())?;
            let journal = Journal::open(&journal_path, header, OpenMode::Resume)?;
            let bag_dir = find_staged_bag(&root)?;
            let finalized = !bag_dir.join(crate::bundle::builder::STAGING_DIR).exists();
            let builder = if finalized {
                None
            } else {
                Some(BagBuilder::resume(&bag_dir, sealer)?)
            };
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
            let mut journal = journal;
            let index = Index::read(&journal);
            // The index holds what it needs of the batches; the journal need not hold them too.
            journal.forget_data(BATCH_PREFIX);
            return Ok(Stage {
                root,
                bag_dir,
                tmp,
                builder,
                journal: Mutex::new(journal),
                index: Mutex::new(index),
                resumed: true,
            });
        }
        make_private_dir(&root)?;
        record_recipients(&root, sealer.as_ref())?;
        std::fs::create_dir(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
        let journal = Journal::open(&journal_path, header, OpenMode::Fresh)?;
        let mut settings = settings;
        settings.bag_name = bag_name_for(output, &settings);
        let bag_dir = root.join(&settings.bag_name);
        let builder = BagBuilder::create(&bag_dir, settings, sealer)?;
        Ok(Stage {
            root,
            bag_dir,
            tmp,
            builder: Some(builder),
            journal: Mutex::new(journal),
            index: Mutex::new(Index::default()),
            resumed: false,
        })
    }

    /// The staging folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bag folder.
    pub fn bag_dir(&self) -> &Path {
        &self.bag_dir
    }

    /// A folder for downloads in progress.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// True when this run continues an interrupted one.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The builder; `None` when the interrupted run had already finalized the bag.
    pub fn builder(&self) -> Option<&BagBuilder> {
        self.builder.as_ref()
    }

    /// Takes the builder out for finalizing.
    pub fn take_builder(&mut self) -> Option<BagBuilder> {
        self.builder.take()
    }

    /// The bag's settings (bundle id, source), when it is still being filled.
    pub fn settings(&self) -> Option<&BagSettings> {
        self.builder.as_ref().map(BagBuilder::settings)
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        // A panic while appending leaves at worst a torn last line, which the journal ignores.
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the journal says about an object the bag already holds; `None` when the bag
    /// does not hold it (it must be fetched).
    pub fn held(&self, kind: Kind, source_id: &str) -> Option<DoneEntry> {
        let b = self.builder.as_ref()?;
        if !b.contains(kind, source_id) {
            return None;
        }
        Some(
            self.index()
                .objects
                .get(&journal_key(kind, source_id))
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// Journals a group of items as one line, then stages the objects among them (blocking;
    /// the [`Committer`] calls it). One result per item, in order.
    pub fn commit_group(&self, items: Vec<Item>) -> Vec<Result<(), CommitError>> {
        let mut batch = Batch::default();
        {
            let ix = self.index();
            for item in &items {
                match item {
                    Item::Object(o) => {
                        let (entry, r) = o.as_ref();
                        ix.add_to(&mut batch, journal_key(r.kind, &r.source_id), entry)
                    }
                    Item::Listing(path, entries) => {
                        batch.listings.push((path.clone(), entries.clone()))
                    }
                }
            }
        }
        if let Err(e) = self.journal_batch(batch) {
            let (message, no_room) = (e.to_string(), e.is_no_room());
            return items
                .iter()
                .map(|_| {
                    Err(CommitError {
                        message: message.clone(),
                        fatal: true,
                        no_room,
                    })
                })
                .collect();
        }
        let stage_one = |item: Item| match item {
            Item::Listing(..) => Ok(()),
            Item::Object(o) => {
                let (_, resource) = *o;
                let Some(builder) = self.builder.as_ref() else {
                    return Err(CommitError {
                        message: "the bag was already finalized".into(),
                        fatal: true,
                        no_room: false,
                    });
                };
                builder.add(resource).map_err(|e| CommitError {
                    fatal: e.code() == crate::bundle::ErrorCode::Io,
                    // The file inside the staging folder (a numbered blob) means nothing to
                    // the user; the folder is named where the error is reported.
                    message: if e.is_no_room() {
                        e.detail().to_string()
                    } else {
                        e.to_string()
                    },
                    no_room: e.is_no_room(),
                })
            }
        };
        // Hashing bytes and writing them (to a pack each, or to a large part's own file)
        // overlaps across a few threads.
        if items.len() < 4 {
            return items.into_iter().map(stage_one).collect();
        }
        let width = STAGING_THREADS.min(items.len());
        let mut lanes: Vec<Vec<(usize, Item)>> = (0..width).map(|_| Vec::new()).collect();
        let n = items.len();
        for (i, item) in items.into_iter().enumerate() {
            lanes[i % width].push((i, item));
        }
        let mut results: Vec<Option<Result<(), CommitError>>> = (0..n).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = lanes
                .into_iter()
                .map(|lane| {
                    scope.spawn(|| {
                        lane.into_iter()
                            .map(|(i, item)| (i, stage_one(item)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (i, r) in h.join().unwrap_or_default() {
                    results[i] = Some(r);
                }
            }
        });
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(CommitError {
                        message: "staging thread panicked".into(),
                        fatal: true,
                        no_room: false,
                    })
                })
            })
            .collect()
    }

    /// Writes one batch as one journal line (one sync) and adds it to the index.
    fn journal_batch(&self, batch: Batch) -> Result<(), ExportError> {
        if batch.objects.is_empty() && batch.listings.is_empty() && batch.principals.is_empty() {
            return Ok(());
        }
        let mut j = self.journal();
        let key = format!("{BATCH_PREFIX}{}", self.index().batches);
        j.record_unkept(&key, &batch)?;
        let mut ix = self.index();
        ix.batches += 1;
        ix.apply_outcomes(batch);
        Ok(())
    }

    /// Every principal the journal says an object references (from an interrupted run too).
    pub fn journaled_principals(&self) -> Vec<String> {
        self.index().principals.iter().cloned().collect()
    }

    /// Forgets the journal's contents kept in memory once nothing more will be committed.
    pub fn release_index(&self) {
        let mut ix = self.index();
        ix.objects = HashMap::new();
        ix.listings = HashMap::new();
    }

    /// Journals and stages one object at once (blocking).
    pub fn commit(&self, entry: &DoneEntry, resource: Resource) -> Result<(), ExportError> {
        self.journal_object(resource.kind, &resource.source_id.clone(), entry)?;
        let builder = self
            .builder
            .as_ref()
            .ok_or_else(|| ExportError::Internal("the bag was already finalized".to_string()))?;
        builder.add(resource)?;
        Ok(())
    }

    /// Journals the outcome of an object staged by other means (a secret scope, through the
    /// builder's scope writer): call before staging it.
    pub fn journal_object(
        &self,
        kind: Kind,
        source_id: &str,
        entry: &DoneEntry,
    ) -> Result<(), ExportError> {
        let mut batch = Batch::default();
        self.index()
            .add_to(&mut batch, journal_key(kind, source_id), entry);
        self.journal_batch(batch)
    }

    /// The listing of a folder journaled by an earlier run.
    pub fn listing(&self, path: &str) -> Option<Vec<ObjectInfo>> {
        self.index().listings.get(path).cloned()
    }

    /// Every journaled step whose key starts with `prefix`.
    pub fn steps(&self, prefix: &str) -> Vec<(String, Value)> {
        self.journal()
            .entries()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Journals an arbitrary finished step (blocking).
    pub fn record_step(&self, key: &str, data: &Value) -> Result<(), ExportError> {
        self.journal().record(key, data)?;
        Ok(())
    }

    /// Data of a finished step.
    pub fn step(&self, key: &str) -> Option<Value> {
        self.journal().get(key)
    }

    /// Forgets the data of the steps whose key starts with `prefix` (they stay done, and in
    /// the file for a resumed run), once nothing in this run recalls them.
    pub fn forget_steps(&self, prefix: &str) {
        self.journal().forget_data(prefix);
    }

    /// Removes the staging folder after the bundle is in place.
    pub fn remove(self) -> Result<(), ExportError> {
        let root = self.root.clone();
        drop(self.builder);
        let journal = self.journal.into_inner().unwrap_or_else(|p| p.into_inner());
        journal.finish()?;
        remove_tree(&root)
    }
}

/// Removes a folder and everything in it as the walk finds it, each folder after its
/// contents: nothing is collected first (the staging folder holds a handful of files, but the
/// walk need not know that).
fn remove_tree(root: &Path) -> Result<(), ExportError> {
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .contents_first(true)
    {
        let e = e.map_err(|e| ExportError::io(root, std::io::Error::other(e.to_string())))?;
        let removed = if e.file_type().is_dir() {
            std::fs::remove_dir(e.path())
        } else {
            std::fs::remove_file(e.path())
        };
        removed.map_err(|err| ExportError::io(e.path(), err))?;
    }
    Ok(())
}

/// The one bag folder inside a staging folder.
fn find_staged_bag(root: &Path) -> Result<PathBuf, ExportError> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(root).map_err(|e| ExportError::io(root, e))? {
        let p = e.map_err(|e| ExportError::io(root, e))?.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "tmp") {
            found.push(p);
        }
    }
    match found.as_slice() {
        [one] => {
            if one.join(crate::bundle::builder::STAGING_DIR).is_dir() {
                Ok(one.clone())
            } else {
                // Finalized already: a complete bag waiting to be packed.
                find_bag(one).map_err(|e| ExportError::Staging {
                    path: root.to_path_buf(),
                    detail: e.to_string(),
                })
            }
        }
        [] => Err(ExportError::Staging {
            path: root.to_path_buf(),
            detail: "holds no bag".to_string(),
        }),
        _ => Err(ExportError::Staging {
            path: root.to_path_buf(),
            detail: "holds more than one bag".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let s = BagSettings::new(
            crate::bundle::Source {
                host: "https://h".into(),
                workspace_id: "42".into(),
            },
            serde_json::json!({}),
        );
        assert_eq!(bag_name_for(Path::new("/x/out.zip"), &s), "out");
        assert_eq!(bag_name_for(Path::new("/x/out.zip.age"), &s), "out");
        assert_eq!(bag_name_for(Path::new("/x/my bundle.zip"), &s), s.bag_name);
        assert_eq!(
            staging_path(Path::new("/x/out.zip")),
            PathBuf::from("/x/out.zip.partial")
        );
    }

    #[test]
    fn resume_refuses_other_recipients_or_another_passphrase() {
        use age::secrecy::SecretString;
        let t = tempfile::tempdir().unwrap();
        let header = serde_json::json!({"run": 1});
        let settings = || {
            BagSettings::new(
                crate::bundle::Source {
                    host: "https://h".into(),
                    workspace_id: "42".into(),
                },
                serde_json::json!({}),
            )
        };
        let key = || age::x25519::Identity::generate().to_public().to_string();
        let (a, b) = (key(), key());
        let to = |k: &str| Some(Sealer::to_recipients(&[k]).unwrap());
        let pass =
            |p: &str| Some(Sealer::with_passphrase(SecretString::from(p.to_string())).unwrap());
        let refused = |r: Result<Stage, ExportError>| match r {
            Err(e @ ExportError::RecipientsChanged { .. }) => e.to_string(),
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("resumed with other recipients"),
        };

        let out = t.path().join("keys.zip");
        drop(Stage::open(&out, false, &header, settings(), to(&a)).unwrap());
        let e = refused(Stage::open(&out, true, &header, settings(), to(&b)));
        assert!(e.contains("[E503]") && e.contains("hint:"), "{e}");
        refused(Stage::open(&out, true, &header, settings(), None));
        refused(Stage::open(&out, true, &header, settings(), pass("p")));
        // The recipient strings are public, but nothing secret is in the record either way.
        let rec = std::fs::read_to_string(staging_path(&out).join(RECIPIENTS_FILE)).unwrap();
        assert!(!rec.contains(&a), "{rec}");
        assert!(Stage::open(&out, true, &header, settings(), to(&a)).is_ok());

        let out = t.path().join("pass.zip");
        drop(Stage::open(&out, false, &header, settings(), pass("first one")).unwrap());
        let root = staging_path(&out);
        for f in std::fs::read_dir(&root).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap_or_default();
            assert!(!String::from_utf8_lossy(&bytes).contains("first one"));
        }
        let e = refused(Stage::open(&out, true, &header, settings(), pass("second")));
        assert!(e.contains("a different passphrase"), "{e}");
        refused(Stage::open(&out, true, &header, settings(), to(&a)));
        assert!(Stage::open(&out, true, &header, settings(), pass("first one")).is_ok());
    }

    #[test]
    fn only_an_interrupted_runs_listings_are_kept() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("l.zip");
        let header = serde_json::json!({"run": 1});
        let settings = || {
            BagSettings::new(
                crate::bundle::Source {
                    host: "https://h".into(),
                    workspace_id: "42".into(),
                },
                serde_json::json!({}),
            )
        };
        let listing = vec![ObjectInfo {
            object_type: crate::model::workspace::ObjectType::Notebook,
            path: "/a/n".into(),
            object_id: 7,
            language: None,
            created_at: None,
            modified_at: None,
            size: None,
            resource_id: None,
            directory_info: None,
        }];
        {
            let stage = Stage::open(&out, false, &header, settings(), None).unwrap();
            let r = stage.commit_group(vec![Item::Listing("/a".into(), listing.clone())]);
            assert!(r[0].is_ok());
            // This run lists each folder once: its own listings are journaled, not held.
            assert_eq!(stage.listing("/a"), None);
            assert_eq!(stage.journal().get::<Value>("batch:0"), Some(Value::Null));
        }
        let stage = Stage::open(&out, true, &header, settings(), None).unwrap();
        assert_eq!(stage.listing("/a"), Some(listing));
        // Read into the index, and dropped from the journal's memory.
        assert_eq!(stage.journal().get::<Value>("batch:0"), Some(Value::Null));
        assert!(stage.journal().is_done("batch:0"));
    }

    #[test]
    fn removes_a_tree() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("r");
        for i in 0..40 {
            let d = root.join(format!("d{}", i % 5)).join("e");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("f{i}")), b"x").unwrap();
        }
        std::fs::create_dir_all(root.join("empty/deeper")).unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists());
    }
}
