//! An append-only journal of finished steps, so an interrupted export or import can finish what
//! is left (`--resume`) without repeating what is done.
//!
//! The file is JSON Lines. The first line is a header naming what the journal belongs to (for
//! import: the bundle id and the target host); `--resume` refuses a journal whose header differs.
//! Every later line records one finished step, keyed by a stable string, and is flushed and synced
//! before the caller moves on — so after a crash, even `kill -9`, every line in the file is a step
//! that really finished. A torn last line (the crash happened mid-write) is ignored.
//!
//! The journal is held under an exclusive lock while open: two runs cannot append to it at once.

use crate::bundle::error::{no_room, NO_ROOM};
use crate::hints::Hint;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A journal that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading or writing the file failed.
    #[error("journal {path}: {}{source}", if no_room(source) { format!("{NO_ROOM}: ") } else { String::new() })]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process holds the journal.
    #[error(
        "journal {path}: another dbxport run is using it\n{}",
        Hint::JournalLocked
    )]
    Locked {
        /// The journal file.
        path: PathBuf,
    },
    /// The journal belongs to a different run.
    #[error(
        "journal {path}: it belongs to a different run ({found}), not {expected}\n{}",
        Hint::JournalMismatch
    )]
    Mismatch {
        /// The journal file.
        path: PathBuf,
        /// What the journal says.
        found: String,
        /// What this run is.
        expected: String,
    },
    /// A journal exists and `--resume` was not given.
    #[error(
        "journal {path}: an earlier run was interrupted here\n{}",
        Hint::JournalExists
    )]
    Exists {
        /// The journal file.
        path: PathBuf,
    },
    /// A line in the middle of the file is not valid JSON.
    #[error("journal {path}: line {line} is damaged\n{}", Hint::JournalDamaged)]
    Damaged {
        /// The journal file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
}

impl JournalError {
    /// True when writing the journal failed for want of room.
    pub fn is_no_room(&self) -> bool {
        matches!(self, JournalError::Io { source, .. } if no_room(source))
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(default)]
    data: Value,
}

/// An open journal.
pub struct Journal {
    path: PathBuf,
    file: File,
    done: BTreeMap<String, Value>,
}

/// How to open a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Start fresh; refuse if a journal is already there.
    Fresh,
    /// Continue an existing journal (or start one if there is none).
    Resume,
}

impl Journal {
    /// Opens (or creates) the journal at `path` whose header must equal `header`.
    pub fn open(path: &Path, header: &Value, mode: OpenMode) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let exists = path.exists();
        if exists && mode == OpenMode::Fresh {
            return Err(JournalError::Exists {
                path: path.to_path_buf(),
            });
        }
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(io)?;
        if file.try_lock().is_err() {
            return Err(JournalError::Locked {
                path: path.to_path_buf(),
            });
        }
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
            done: BTreeMap::new(),
        };
        let lines = journal.read_lines()?;
        if lines.is_empty() {
            let mut text = serde_json::to_string(header).expect("header serializes");
            text.push('\n');
            journal.file.set_len(0).map_err(io)?;
            journal.file.write_all(text.as_bytes()).map_err(io)?;
            journal.file.sync_all().map_err(io)?;
        } else {
            let found: Value =
                serde_json::from_str(&lines[0]).map_err(|_| JournalError::Damaged {
                    path: path.to_path_buf(),
                    line: 1,
                })?;
            if &found != header {
                return Err(JournalError::Mismatch {
                    path: path.to_path_buf(),
                    found: found.to_string(),
                    expected: header.to_string(),
                });
            }
            let last = lines.len() - 1;
            for (i, text) in lines.iter().enumerate().skip(1) {
                match serde_json::from_str::<Line>(text) {
                    Ok(l) => {
                        journal.done.insert(l.key, l.data);
                    }
                    // A torn final line is the write a crash interrupted: that step did not finish.
                    Err(_) if i == last => {}
                    Err(_) => {
                        return Err(JournalError::Damaged {
                            path: path.to_path_buf(),
                            line: i + 1,
                        })
                    }
                }
            }
        }
        Ok(journal)
    }

    /// Reads the complete lines and cuts off a torn tail, so the next append starts on a fresh
    /// line.
    fn read_lines(&mut self) -> Result<Vec<String>, JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut bytes = Vec::new();
        let mut f = self.file.try_clone().map_err(io)?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(io)?;
        std::io::Read::read_to_end(&mut f, &mut bytes).map_err(io)?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut out: Vec<String> = String::from_utf8_lossy(&bytes[..complete])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        if complete < bytes.len() {
            // Keep the torn line visible to the parser (it is ignored there), then drop it.
            out.push(String::from_utf8_lossy(&bytes[complete..]).into_owned());
            self.file.set_len(complete as u64).map_err(io)?;
        }
        Ok(out)
    }

    /// True when the step `key` finished in this or an earlier run.
    pub fn is_done(&self, key: &str) -> bool {
        self.done.contains_key(key)
    }

    /// What was recorded with a finished step.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.done
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Every finished step.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.done.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Appends one line and syncs it: the journal's only write of a step.
    fn append(&mut self, key: &str, data: &Value) -> Result<(), JournalError> {
        #[derive(Serialize)]
        struct LineRef<'a> {
            key: &'a str,
            data: &'a Value,
        }
        let mut text =
            serde_json::to_string(&LineRef { key, data }).expect("journal line serializes");
        text.push('\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Records that `key` finished, with data (e.g. the id the target assigned); durable on
    /// return.
    pub fn record<T: Serialize>(&mut self, key: &str, data: &T) -> Result<(), JournalError> {
        let data = serde_json::to_value(data).expect("journal data serializes");
        self.append(key, &data)?;
        self.done.insert(key.to_string(), data);
        Ok(())
    }

    /// Like [`Journal::record`], without keeping `data` in memory: the step reads as done, and
    /// its data is in the file for the next [`Journal::open`], but [`Journal::get`] and
    /// [`Journal::entries`] give `null` for it in this run. For callers that keep what they need
    /// of the data themselves (an export's batches of listings and outcomes): a copy of every
    /// line as a JSON tree cost more memory per object than anything else the journal held.
    pub fn record_unkept<T: Serialize>(&mut self, key: &str, data: &T) -> Result<(), JournalError> {
        let data = serde_json::to_value(data).expect("journal data serializes");
        self.append(key, &data)?;
        self.done.insert(key.to_string(), Value::Null);
        Ok(())
    }

    /// Forgets the data of every step whose key starts with `prefix` (the steps stay done), once
    /// the caller has read what it needs of it; see [`Journal::record_unkept`].
    pub fn forget_data(&mut self, prefix: &str) {
        for (_, v) in self
            .done
            .range_mut::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            *v = Value::Null;
        }
    }

    /// Records several finished steps with one write and one sync (group commit), for callers
    /// that finish many steps at once; durable on return. A crash mid-write leaves a prefix of
    /// the lines (and at most one torn line, which a reopen ignores).
    pub fn record_batch(&mut self, steps: &[(String, Value)]) -> Result<(), JournalError> {
        self.write_batch(steps)?;
        for (key, data) in steps {
            self.done.insert(key.clone(), data.clone());
        }
        Ok(())
    }

    /// Like [`Journal::record_batch`], keeping nothing of the steps in memory: they are in the
    /// file for the next [`Journal::open`], but [`Journal::is_done`] does not see them in this
    /// run. For a writer whose caller keeps what it needs itself (an import's ledger): a
    /// copy of every key and its data cost more memory per object than the import's plan
    /// (issue #15).
    pub fn record_batch_unkept(&mut self, steps: &[(String, Value)]) -> Result<(), JournalError> {
        self.write_batch(steps)
    }

    /// Writes `steps` with one write and one sync.
    fn write_batch(&mut self, steps: &[(String, Value)]) -> Result<(), JournalError> {
        if steps.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for (key, data) in steps {
            let line = Line {
                key: key.clone(),
                data: data.clone(),
            };
            text.push_str(&serde_json::to_string(&line).expect("journal line serializes"));
            text.push('\n');
        }
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Takes every finished step out of the journal (which then holds none in memory; the
    /// file is unchanged), for a caller that keeps what it needs of them itself.
    pub fn take_entries(&mut self) -> BTreeMap<String, Value> {
        std::mem::take(&mut self.done)
    }

    /// Number of finished steps.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// True when no step has finished.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the journal after a run that finished everything.
    pub fn finish(self) -> Result<(), JournalError> {
        let path = self.path.clone();
        drop(self.file);
        std::fs::remove_file(&path).map_err(|source| JournalError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_survive_reopen_and_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let h = json!({"bundle": "b1", "target": "t"});
        {
            let mut j = Journal::open(&p, &h, OpenMode::Fresh).unwrap();
            j.record("job:1", &json!({"new_id": 9})).unwrap();
            j.record("nb:/a", &json!(null)).unwrap();
        }
        // Simulate a crash in the middle of a write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"key\":\"nb:/b\",\"da")
            .unwrap();
        assert!(matches!(
            Journal::open(&p, &h, OpenMode::Fresh),
            Err(JournalError::Exists { .. })
        ));
        let mut j = Journal::open(&p, &h, OpenMode::Resume).unwrap();
        assert!(j.is_done("job:1") && j.is_done("nb:/a") && !j.is_done("nb:/b"));
        j.record("nb:/b", &json!(1)).unwrap();
        drop(j);
        let j = Journal::open(&p, &h, OpenMode::Resume).unwrap();
        assert!(
            j.is_done("nb:/b"),
            "an append after a torn tail must start on a fresh line"
        );
        assert_eq!(j.get::<Value>("job:1").unwrap()["new_id"], 9);
        drop(j);
        let other = json!({"bundle": "b2", "target": "t"});
        assert!(matches!(
            Journal::open(&p, &other, OpenMode::Resume),
            Err(JournalError::Mismatch { .. })
        ));
    }

    #[test]
    fn a_batch_is_recorded_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let h = json!({"x": 1});
        {
            let mut j = Journal::open(&p, &h, OpenMode::Fresh).unwrap();
            j.record_batch(&[("a".into(), json!(1)), ("b".into(), json!({"id": 2}))])
                .unwrap();
            assert!(j.is_done("a") && j.is_done("b"));
        }
        let j = Journal::open(&p, &h, OpenMode::Resume).unwrap();
        assert_eq!(j.get::<Value>("b").unwrap()["id"], 2);
        assert_eq!(j.len(), 2);
    }

    #[test]
    fn unkept_data_is_in_the_file_not_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let h = json!({"x": 1});
        {
            let mut j = Journal::open(&p, &h, OpenMode::Fresh).unwrap();
            j.record_unkept("batch:0", &json!({"big": [1, 2, 3]}))
                .unwrap();
            j.record("other", &json!(7)).unwrap();
            assert!(j.is_done("batch:0"));
            assert_eq!(j.get::<Value>("batch:0"), Some(Value::Null));
        }
        let mut j = Journal::open(&p, &h, OpenMode::Resume).unwrap();
        assert_eq!(j.get::<Value>("batch:0").unwrap()["big"][2], 3);
        j.forget_data("batch:");
        assert!(j.is_done("batch:0"));
        assert_eq!(j.get::<Value>("batch:0"), Some(Value::Null));
        assert_eq!(j.get::<Value>("other"), Some(json!(7)));
    }

    #[test]
    fn second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let h = json!({"x": 1});
        let _a = Journal::open(&p, &h, OpenMode::Fresh).unwrap();
        assert!(matches!(
            Journal::open(&p, &h, OpenMode::Resume),
            Err(JournalError::Locked { .. })
        ));
    }
}
