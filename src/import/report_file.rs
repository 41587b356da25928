//! `import --report FILE`: the import's report written to disk while the import runs, one JSON
//! line per object, so that what happened to every object is on disk as each kind's stage
//! finishes rather than held to the end (issue #15), and survives a run that is killed.
//!
//! The file is JSON Lines; every line is an object whose `record` says what it is:
//!
//! | `record` | when | fields |
//! |---|---|---|
//! | `header` | first, once the plan is made | `format` (`dbxport-import-report`), `version` (1), `bundle`, `bundle_id`, `target`, `journal` |
//! | `object` | one per plan item: as the stage that carried it out finishes, then every item that needed no request (or was not reached) | those of an item of `import --json`'s `report.items`: `kind`, `source`, `target`, `outcome`, `reasons`, `notes` |
//! | `summary` | last, once | those of `import --json`'s `report` but `items` |
//!
//! Lines are written to `FILE.partial` (mode 0600, in FILE's folder) and the file is renamed
//! to FILE once the summary is written and synced: FILE is always a whole report. An import
//! stopped by an error before its first step leaves nothing; one that is killed leaves
//! `FILE.partial`, whose lines are objects that really were carried out (the journal, not this
//! file, is what `--resume` reads).

use super::plan::PlanItem;
use super::report::{ImportReport, ItemOutcome, ItemResult};
use crate::bundle::error::{no_room, NO_ROOM};
pub use crate::bundle::fsutil::partial_path;
use crate::bundle::fsutil::{parent_dir, sync_dir};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The value of the header's `format`.
pub const FORMAT: &str = "dbxport-import-report";
/// The report file's format version.
pub const VERSION: u32 = 1;

/// A report file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("report {}: {}{source}", .path.display(), if no_room(.source) { format!("{NO_ROOM}: ") } else { String::new() })]
pub struct ReportFileError {
    /// The file that could not be written (FILE, or FILE.partial).
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

/// One line of the file; see the module docs.
#[derive(Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Line<'a> {
    Header {
        format: &'static str,
        version: u32,
        bundle: &'a str,
        bundle_id: &'a str,
        target: &'a str,
        journal: &'a str,
    },
    Object(ItemOutcome<'a>),
    Summary(Summary<'a>),
}

/// An [`ImportReport`] but its items, which the `object` lines hold.
#[derive(Serialize)]
struct Summary<'a> {
    refused: bool,
    interrupted: bool,
    counts: &'a std::collections::BTreeMap<crate::model::Kind, super::report::Counts>,
    dropped_principals: &'a [super::principals::Unmapped],
    must_recreate: &'a super::MustRecreate,
    requests: u64,
    mutating_requests: u64,
    seconds: f64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    folders: &'a std::collections::BTreeMap<String, String>,
}

impl<'a> Summary<'a> {
    fn of(r: &'a ImportReport) -> Summary<'a> {
        // Destructured so that a field added to the report is not silently left out here.
        let ImportReport {
            bundle: _,
            bundle_id: _,
            target: _,
            journal: _,
            refused,
            interrupted,
            counts,
            items: _,
            dropped_principals,
            must_recreate,
            requests,
            mutating_requests,
            seconds,
            warnings,
            folders,
            // Known only once this file is finished.
            report_file_error: _,
        } = r;
        Summary {
            refused: *refused,
            interrupted: *interrupted,
            counts,
            dropped_principals,
            must_recreate,
            requests: *requests,
            mutating_requests: *mutating_requests,
            seconds: *seconds,
            warnings,
            folders,
        }
    }
}

/// The report file of one import, being written.
#[derive(Debug)]
pub struct ReportFile {
    dest: PathBuf,
    partial: PathBuf,
    out: Option<BufWriter<File>>,
    /// The first write that failed; nothing more is written after it.
    failed: Option<std::io::Error>,
    /// Keep `FILE.partial` when dropped unfinished: the target may have changed.
    keep: bool,
}

impl ReportFile {
    /// Starts the report of importing `bundle` (id `bundle_id`) into `target` at `dest`: opens
    /// `dest.partial` (replacing one an earlier run left) and writes the header line.
    pub fn create(
        dest: &Path,
        bundle: &str,
        bundle_id: &str,
        target: &str,
        journal: &str,
    ) -> Result<ReportFile, ReportFileError> {
        let partial = partial_path(dest);
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportFileError { path, source }
        };
        if dest.is_dir() {
            return Err(ReportFileError {
                path: dest.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "is a folder; name a file",
                ),
            });
        }
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Names of principals and paths: the bundle's, kept as private as the journal.
            o.mode(0o600);
        }
        let file = o.open(&partial).map_err(err(&partial))?;
        let mut r = ReportFile {
            dest: dest.to_path_buf(),
            partial,
            out: Some(BufWriter::new(file)),
            failed: None,
            keep: false,
        };
        r.line(&Line::Header {
            format: FORMAT,
            version: VERSION,
            bundle,
            bundle_id,
            target,
            journal,
        });
        r.flush();
        match r.failed.take() {
            Some(source) => Err(ReportFileError {
                path: r.partial.clone(),
                source,
            }),
            None => Ok(r),
        }
    }

    /// From now on an unfinished file is kept as `FILE.partial`: steps are about to be sent.
    pub(crate) fn keep_when_unfinished(&mut self) {
        self.keep = true;
    }

    /// Writes the line of one item and its result (not flushed; see [`ReportFile::flush`]).
    pub(crate) fn object(&mut self, item: &PlanItem, result: &ItemResult) {
        self.line(&Line::Object(ItemOutcome::of(item, result)));
    }

    /// Writes the lines of every item of a report (a refused plan, whose items were not run).
    pub(crate) fn objects_of(&mut self, report: &ImportReport) {
        for o in report.items.iter() {
            self.line(&Line::Object(o));
        }
    }

    /// Hands what is buffered to the file, so that a reader (or a killed run) sees it.
    pub(crate) fn flush(&mut self) {
        if let (Some(out), None) = (self.out.as_mut(), &self.failed) {
            if let Err(e) = out.flush() {
                self.failed = Some(e);
            }
        }
    }

    fn line(&mut self, line: &Line<'_>) {
        if self.failed.is_some() {
            return;
        }
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let r = serde_json::to_writer(&mut *out, line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = r {
            self.failed = Some(e);
        }
    }

    /// Writes the summary, syncs, and renames `FILE.partial` to FILE. On failure the partial
    /// file is kept when steps were sent, and the error names it.
    pub fn finish(mut self, report: &ImportReport) -> Result<PathBuf, ReportFileError> {
        self.line(&Line::Summary(Summary::of(report)));
        self.flush();
        let partial = self.partial.clone();
        let err = |source| ReportFileError {
            path: partial.clone(),
            source,
        };
        if let Some(e) = self.failed.take() {
            return Err(err(e));
        }
        let file = self
            .out
            .take()
            .expect("open until finished")
            .into_inner()
            .map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        drop(file);
        std::fs::rename(&self.partial, &self.dest).map_err(|source| ReportFileError {
            path: self.dest.clone(),
            source,
        })?;
        // Renamed: nothing for Drop to remove.
        self.keep = true;
        sync_dir(&parent_dir(&self.dest)).map_err(|e| ReportFileError {
            path: self.dest.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(self.dest.clone())
    }
}

impl Drop for ReportFile {
    fn drop(&mut self) {
        // An import that stopped before its first step changed nothing: leave nothing.
        if !self.keep {
            self.out.take();
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::plan::{Action, Plan};
    use crate::model::report::Outcome;
    use crate::model::Kind;

    fn report(plan: Plan, results: Vec<ItemResult>) -> ImportReport {
        let mut r = ImportReport::for_tests(plan, results);
        r.requests = 3;
        r.mutating_requests = 1;
        r.seconds = 0.5;
        r.warnings = vec!["w".into()];
        r.folders = [("/f".to_string(), "archive (1 notebooks)".to_string())].into();
        r
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_are_on_disk_before_the_end_and_the_file_is_whole_once_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.jsonl");
        let mut plan = Plan::default();
        plan.items.push(
            PlanItem::new(Kind::Notebook, "/a", "/t/a".to_string()).set(Action::Create, "new"),
        );
        let result = ItemResult::ran(Ok(Outcome::Created));
        let mut f = ReportFile::create(&dest, "b.zip", "id", "https://t", "j").unwrap();
        f.keep_when_unfinished();
        f.object(&plan.items[0], &result);
        f.flush();
        // Streamed: the object is on disk, under the partial name, before the summary.
        assert!(!dest.exists());
        let got = lines(&partial_path(&dest));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["record"], "header");
        assert_eq!(got[0]["format"], FORMAT);
        assert_eq!(
            got[1],
            serde_json::json!({"record": "object", "kind": "notebook", "source": "/a",
                "target": "/t/a", "outcome": "created"})
        );
        let r = report(plan, vec![result]);
        assert_eq!(f.finish(&r).unwrap(), dest);
        assert!(!partial_path(&dest).exists());
        let got = lines(&dest);
        let summary = got.last().unwrap();
        assert_eq!(summary["record"], "summary");
        // The summary holds every field of the report but its items.
        let mut want = serde_json::to_value(&r).unwrap();
        let want = want.as_object_mut().unwrap();
        for gone in ["items", "bundle", "bundle_id", "target", "journal"] {
            want.remove(gone);
        }
        let mut have = summary.as_object().unwrap().clone();
        have.remove("record");
        assert_eq!(&have, want);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_import_stopped_before_its_first_step_leaves_nothing_a_killed_one_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.jsonl");
        drop(ReportFile::create(&dest, "b", "i", "t", "j").unwrap());
        assert!(!dest.exists() && !partial_path(&dest).exists());
        let mut f = ReportFile::create(&dest, "b", "i", "t", "j").unwrap();
        f.keep_when_unfinished();
        drop(f);
        assert!(!dest.exists());
        assert_eq!(lines(&partial_path(&dest)).len(), 1);
        // A folder, or a folder that does not exist, is refused up front, naming the path.
        let e = ReportFile::create(dir.path(), "b", "i", "t", "j").unwrap_err();
        assert!(e.to_string().contains("name a file"), "{e}");
        let missing = dir.path().join("no/such/r.jsonl");
        let e = ReportFile::create(&missing, "b", "i", "t", "j").unwrap_err();
        assert!(e.to_string().contains("no/such/r.jsonl.partial"), "{e}");
    }
}
