//! The staging folder of an export, `<output>.partial/` (mode 0700), beside the output:
//!
//! ```text
//! <output>.partial/journal.jsonl   finished listings and objects (crate::journal)
//! <output>.partial/<bag>/          the bag being filled (bundle::BagBuilder)
//! <output>.partial/tmp/            downloads in progress
//! ```
//!
//! An object is committed in two durable steps: its journal line (outcome, notes, the code
//! findings and principals it references) and then its staged record in the bag. The bag is the
//! authority on what is held — an object is skipped on `--resume` only when the bag holds it —
//! and the journal line, written first, carries what the report needs about it. A crash between
//! the two steps leaves a journal line without a record; the object is then fetched again and
//! its line rewritten. Folder listings are journaled too, so a resumed walk lists only the
//! folders it had not listed.
//!
//! The output path only ever receives a complete bundle: [`crate::bundle::pack`] verifies the
//! zip it wrote under a temporary name before renaming it into place; then the staging folder
//! is removed.

use super::error::ExportError;
use super::report::Outcome;
use super::scan::Finding;
use crate::bundle::pack::find_bag;
use crate::bundle::writer::BagSettings;
use crate::bundle::{BagBuilder, Resource, Sealer};
use crate::journal::{Journal, OpenMode};
use crate::model::workspace::ObjectInfo;
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    resumed: bool,
}

/// `<output>.partial`.
pub fn staging_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    output.with_file_name(name)
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

fn listing_key(path: &str) -> String {
    format!("list:{path}")
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
            return Ok(Stage {
                root,
                bag_dir,
                tmp,
                builder,
                journal: Mutex::new(journal),
                resumed: true,
            });
        }
        make_private_dir(&root)?;
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

    /// What the journal says about an object the bag already holds; `None` when the bag
    /// does not hold it (it must be fetched).
    pub fn held(&self, kind: Kind, source_id: &str) -> Option<DoneEntry> {
        let b = self.builder.as_ref()?;
        if !b.contains(kind, source_id) {
            return None;
        }
        Some(
            self.journal()
                .get::<DoneEntry>(&journal_key(kind, source_id))
                .unwrap_or_default(),
        )
    }

    /// Journals and stages one object (blocking: call from a blocking thread).
    pub fn commit(&self, entry: &DoneEntry, resource: Resource) -> Result<(), ExportError> {
        let key = journal_key(resource.kind, &resource.source_id);
        self.journal().record(&key, entry)?;
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
        self.journal()
            .record(&journal_key(kind, source_id), entry)?;
        Ok(())
    }

    /// The listing of a folder journaled by an earlier run.
    pub fn listing(&self, path: &str) -> Option<Vec<ObjectInfo>> {
        self.journal().get(&listing_key(path))
    }

    /// Journals a folder's listing (blocking).
    pub fn record_listing(&self, path: &str, entries: &[ObjectInfo]) -> Result<(), ExportError> {
        self.journal().record(&listing_key(path), &entries)?;
        Ok(())
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

    /// Removes the staging folder after the bundle is in place.
    pub fn remove(self) -> Result<(), ExportError> {
        let root = self.root.clone();
        drop(self.builder);
        let journal = self.journal.into_inner().unwrap_or_else(|p| p.into_inner());
        journal.finish()?;
        std::fs::remove_dir_all(&root).map_err(|e| ExportError::io(&root, e))
    }
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
}
