//! The import journal: where it lives, what it records, and a writer that keeps journaling off
//! the request path.
//!
//! The journal is kept beside the bundle (never in the target), named
//! `<bundle>.import-<target hash>.journal`, mode 0600, and is an ordinary
//! [`crate::journal::Journal`] whose header names the bundle id and the target host. Its keys:
//!
//! | key | data | meaning |
//! |---|---|---|
//! | `run` | `{"finished", "options"}` | whether the last run finished, with the options it used |
//! | `dir:<path>`, `notebook:<path>`, `file:<path>` | `{"sha256"}` | the object is in place |
//! | `repo:<path>` | `{"id"}` | the repo exists with this id |
//! | `scope:<name>` | `{}` | the scope exists with the bundle's ACL |
//! | `secret-intent:<scope>/<key>` | `{"sealed_sha256"}` | a put of this value was about to be sent |
//! | `secret:<scope>/<key>` | `{"sealed_sha256"}` | the value was put |
//! | `job:<source id>` | `{"job_id"}` | the job exists in the target with this id |
//! | `permissions:<type>/<source id>` | `{}` | the ACL was set |
//! | `hive:<object>`, `uc:<securable>` | `{}` | the grants were replayed |
//!
//! The journal saves work; it never overrules the target. Planning compares every object with
//! what the target shows (content, settings, ACLs, and secret values where the workspace lets
//! them be read back), whatever the journal says. Only a secret value that cannot be read back
//! is decided by the journal: one recorded with the same sealed file's SHA-256 (which is
//! public; it hashes ciphertext) was put by this bundle and counts as unchanged, and one with
//! an intent but no completion is put again (a put is idempotent). No digest of a plaintext is
//! ever written.

use crate::journal::{Journal, JournalError, OpenMode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The journal's file for importing `bundle` into `target_host`.
pub fn journal_path(bundle: &Path, target_host: &str) -> PathBuf {
    let h = hex::encode(Sha256::digest(target_host.as_bytes()));
    let mut name = bundle
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".import-{}.journal", &h[..12]));
    bundle.with_file_name(name)
}

/// The header that ties a journal to one bundle and one target.
pub fn header(bundle_id: &str, target_host: &str) -> Value {
    json!({
        "format": "dbxport-import-journal",
        "bundle_id": bundle_id,
        "target": target_host,
    })
}

/// Journal keys.
pub mod keys {
    /// The run state.
    pub const RUN: &str = "run";

    /// A workspace object of `kind` (`dir`, `notebook`, `file`) at a target path.
    pub fn object(kind: &str, path: &str) -> String {
        format!("{kind}:{path}")
    }

    /// A repo at a target path.
    pub fn repo(path: &str) -> String {
        format!("repo:{path}")
    }

    /// A target scope.
    pub fn scope(name: &str) -> String {
        format!("scope:{name}")
    }

    /// A secret value put (target scope).
    pub fn secret(scope: &str, key: &str) -> String {
        format!("secret:{scope}/{key}")
    }

    /// A secret value about to be put.
    pub fn secret_intent(scope: &str, key: &str) -> String {
        format!("secret-intent:{scope}/{key}")
    }

    /// A source job.
    pub fn job(source_id: i64) -> String {
        format!("job:{source_id}")
    }

    /// An ACL replayed.
    pub fn permissions(request_type: &str, source_id: &str) -> String {
        format!("permissions:{request_type}/{source_id}")
    }

    /// Hive grants of one object replayed.
    pub fn hive(object: &str) -> String {
        format!("hive:{object}")
    }

    /// Unity Catalog grants of one securable replayed.
    pub fn uc(securable: &str) -> String {
        format!("uc:{securable}")
    }
}

/// What an existing journal knows, read without locking or changing it (for `plan` and `diff`,
/// and for the planning step of a resumed import).
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    entries: BTreeMap<String, Value>,
    /// True when the journal held any step, kept or not.
    any: bool,
}

/// Journal keys of steps nothing reads back (one per workspace object or ACL): see
/// [`Knowledge::from_journal`].
const PER_OBJECT: &[&str] = &["dir:", "notebook:", "file:", "permissions:"];

impl Knowledge {
    /// Reads the journal at `path` if it exists and belongs to `header`; otherwise nothing is
    /// known. A torn last line is ignored.
    pub fn load(path: &Path, header: &Value) -> Knowledge {
        let Ok(bytes) = std::fs::read(path) else {
            return Knowledge::default();
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.split('\n').filter(|l| !l.trim().is_empty());
        match lines
            .next()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
        {
            Some(h) if &h == header => {}
            _ => return Knowledge::default(),
        }
        let mut entries = BTreeMap::new();
        let mut any = false;
        for l in lines {
            if let Ok(v) = serde_json::from_str::<Value>(l) {
                if let Some(k) = v.get("key").and_then(Value::as_str) {
                    any = true;
                    if PER_OBJECT.iter().any(|p| k.starts_with(p)) {
                        continue;
                    }
                    entries.insert(k.to_string(), v.get("data").cloned().unwrap_or(Value::Null));
                }
            }
        }
        Knowledge { entries, any }
    }

    /// Knowledge taken out of an open journal (which keeps none of it in memory afterwards).
    /// Only what a run reads back is kept: the run, secret values and the models stage's
    /// steps; the lines of workspace objects and permissions, one per object, are in the file
    /// only (whatever they say, the target is compared) — and [`Knowledge::is_empty`] still
    /// tells whether the journal held any step.
    pub fn from_journal(j: &mut Journal) -> Knowledge {
        let mut entries = j.take_entries();
        let any = !entries.is_empty();
        entries.retain(|k, _| !PER_OBJECT.iter().any(|p| k.starts_with(p)));
        Knowledge { entries, any }
    }

    /// The data of a finished step.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// True when the step is recorded.
    pub fn has(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// A string field of a step's data.
    pub fn field(&self, key: &str, field: &str) -> Option<&str> {
        self.get(key)?.get(field)?.as_str()
    }

    /// True when the journal held no step.
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// True when a run was recorded and did not finish.
    pub fn interrupted(&self) -> bool {
        self.get(keys::RUN)
            .and_then(|r| r.get("finished"))
            .and_then(Value::as_bool)
            == Some(false)
    }

    /// The options the last run recorded.
    pub fn options(&self) -> Option<&Value> {
        self.get(keys::RUN).and_then(|r| r.get("options"))
    }
}

enum Msg {
    Record(
        String,
        Value,
        Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    ),
}

/// Appends to a journal from a thread of its own, so that steps never wait for a disk sync
/// except when they must (an intent recorded before its request). Lines that queue up while
/// a sync is in progress are written together with one sync.
pub struct Ledger {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<(Journal, Option<JournalError>)>>,
}

impl Ledger {
    /// Starts the writer over an open journal.
    pub fn start(mut journal: Journal) -> Ledger {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("dbxport-journal".into())
            .spawn(move || {
                let mut failed: Option<JournalError> = None;
                // Group commit: every line waiting when the disk is free goes out with one sync,
                // so journaling keeps up with any request rate.
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < 4096 {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    let mut lines = Vec::with_capacity(batch.len());
                    let mut acks = Vec::new();
                    for Msg::Record(key, data, ack) in batch {
                        lines.push((key, data));
                        acks.extend(ack);
                    }
                    let r = if failed.is_some() {
                        Err("an earlier journal write failed".to_string())
                    } else {
                        // Nothing reads the steps back from this journal during the run
                        // (planning read them before, as [`Knowledge`]).
                        journal.record_batch_unkept(&lines).map_err(|e| {
                            let text = e.to_string();
                            failed = Some(e);
                            text
                        })
                    };
                    for ack in acks {
                        let _ = ack.send(r.clone());
                    }
                }
                (journal, failed)
            })
            .expect("spawning the journal thread");
        Ledger {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Records a finished step; returns at once (the line is synced by the writer).
    pub fn record(&self, key: String, data: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Record(key, data, None));
        }
    }

    /// Records a step and waits until the line is on disk.
    pub async fn record_durable(&self, key: String, data: Value) -> Result<(), String> {
        let (ack, done) = tokio::sync::oneshot::channel();
        match &self.tx {
            Some(tx) => tx
                .send(Msg::Record(key, data, Some(ack)))
                .map_err(|_| "the journal writer stopped".to_string())?,
            None => return Err("the journal is closed".into()),
        }
        done.await
            .map_err(|_| "the journal writer stopped".to_string())?
    }

    /// Waits for every pending line and returns the journal (or the first write error).
    pub fn finish(mut self) -> Result<Journal, JournalError> {
        self.tx.take();
        let (journal, failed) = self
            .thread
            .take()
            .expect("the journal thread runs until finish")
            .join()
            .expect("the journal thread does not panic");
        match failed {
            Some(e) => Err(e),
            None => Ok(journal),
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the journal for a run. A journal left by a finished run is continued silently; one
/// left by an interrupted run needs `resume`; one of another bundle or target is refused.
pub fn open(path: &Path, header: &Value, resume: bool) -> Result<Journal, JournalError> {
    if !resume && path.exists() && Knowledge::load(path, header).interrupted() {
        return Err(JournalError::Exists {
            path: path.to_path_buf(),
        });
    }
    Journal::open(path, header, OpenMode::Resume)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_sits_beside_the_bundle_and_names_the_target() {
        let p = journal_path(Path::new("/media/usb/poc.zip"), "https://prod.example");
        assert_eq!(p.parent(), Some(Path::new("/media/usb")));
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("poc.zip.import-") && name.ends_with(".journal"),
            "{name}"
        );
        assert_ne!(
            p,
            journal_path(Path::new("/media/usb/poc.zip"), "https://other")
        );
    }

    #[test]
    fn a_finished_journal_continues_an_interrupted_one_needs_resume() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.zip.import-x.journal");
        let h = header("b1", "t");
        {
            let j = open(&p, &h, false).unwrap();
            let l = Ledger::start(j);
            l.record(keys::RUN.into(), json!({"finished": false}));
            l.record("notebook:/a".into(), json!({"sha256": "x"}));
            l.record("secret:s/k".into(), json!({"sealed_sha256": "y"}));
            l.finish().unwrap();
        }
        assert!(Knowledge::load(&p, &h).interrupted());
        assert!(matches!(
            open(&p, &h, false),
            Err(JournalError::Exists { .. })
        ));
        {
            let mut j = open(&p, &h, true).unwrap();
            j.record(keys::RUN, &json!({"finished": true})).unwrap();
        }
        let k = Knowledge::load(&p, &h);
        // What a run reads back is kept; the line of each object is in the file only.
        assert!(!k.interrupted() && k.has("secret:s/k") && !k.has("notebook:/a"));
        assert!(open(&p, &h, false).is_ok());
        assert!(Knowledge::load(&p, &header("b2", "t")).is_empty());
    }
}
