//! Finds the lines of notebook code that depend on things a migration cannot carry: DBFS mounts,
//! mount calls, hard-coded cluster and job ids, secret reads. These lines go into the report's
//! "must recreate" checklist, so the user knows exactly which code to revisit.
//!
//! Pure text matching, so it lives in the model: export scans what it fetches, import scans
//! what it plans to write, and neither depends on the other.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Why a line was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    /// A path under `/mnt/` or `dbfs:/mnt/`: the mount must be recreated in the target.
    MountPath,
    /// A call to `dbutils.fs.mount` / `updateMount` / `unmount`: mounts are made by code.
    MountCall,
    /// A cluster id written into the code; ids change in the target.
    ClusterId,
    /// A job id written into the code (e.g. `run-now`); ids change in the target.
    JobId,
    /// A SQL warehouse id written into the code; ids change in the target.
    WarehouseId,
    /// A `dbutils.secrets.get` call; the scope must exist in the target (and Key Vault scopes
    /// must be recreated by hand).
    SecretRead,
}

impl Dependency {
    /// A short phrase for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Dependency::MountPath => "reads or writes a DBFS mount path",
            Dependency::MountCall => "creates or changes a DBFS mount",
            Dependency::ClusterId => "hard-codes a cluster id",
            Dependency::JobId => "hard-codes a job id",
            Dependency::WarehouseId => "hard-codes a SQL warehouse id",
            Dependency::SecretRead => "reads a secret",
        }
    }
}

/// One flagged line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// Workspace path of the notebook or file.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// What the line depends on.
    pub dependency: Dependency,
    /// The matched text (a mount path, an id, `scope/key`), never a secret value.
    pub matched: String,
}

/// What the scanner knows about the source workspace: the ids that, when written in code, point
/// at something that will not exist with the same id in the target.
#[derive(Debug, Clone, Default)]
pub struct ScanContext {
    /// Cluster ids of the source workspace.
    pub cluster_ids: Vec<String>,
    /// Job ids of the source workspace.
    pub job_ids: Vec<i64>,
    /// SQL warehouse ids of the source workspace.
    pub warehouse_ids: Vec<String>,
}

fn mount_path_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r#"(?:dbfs:)?/mnt/[^\s'"`),;{}(]*"#).expect("valid mount regex")
    })
}

fn mount_call_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"dbutils\.fs\.(?:mount|updateMount|unmount|refreshMounts)\b")
            .expect("valid mount-call regex")
    })
}

fn secret_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r#"dbutils\.secrets\.get(?:Bytes)?\(\s*(?:scope\s*=\s*)?["']([^"']+)["']\s*,\s*(?:key\s*=\s*)?["']([^"']+)["']"#,
        )
        .expect("valid secret regex")
    })
}

fn number_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"[0-9]{1,19}").expect("valid number regex"))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The integer literals of a line: digit runs not inside a word, a Scala/Java `L` suffix
/// allowed (`612803417559021L`).
fn integers(line: &str) -> impl Iterator<Item = &str> {
    number_re().find_iter(line).filter_map(move |m| {
        let before = line[..m.start()].chars().next_back();
        let mut after = line[m.end()..].chars();
        let next = match after.next() {
            Some('L' | 'l') => after.next(),
            other => other,
        };
        let standalone = !before.is_some_and(is_word) && !next.is_some_and(is_word);
        standalone.then_some(m.as_str())
    })
}

/// Ids this long are specific enough to flag without the word "job" on the line.
const SPECIFIC_ID_DIGITS: usize = 10;

/// Scans one text file (notebook source or workspace file) line by line.
///
/// Binary content (anything that is not UTF-8) is skipped: it cannot hold code a user edits.
pub fn scan(path: &str, content: &[u8], ctx: &ScanContext) -> Vec<Finding> {
    let Ok(text) = std::str::from_utf8(content) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut push = |dependency, matched: &str| {
            out.push(Finding {
                path: path.to_string(),
                line: i + 1,
                dependency,
                matched: matched.to_string(),
            })
        };
        if let Some(m) = mount_call_re().find(line) {
            push(Dependency::MountCall, m.as_str());
        }
        for m in mount_path_re().find_iter(line) {
            push(Dependency::MountPath, m.as_str());
        }
        for c in secret_re().captures_iter(line) {
            push(Dependency::SecretRead, &format!("{}/{}", &c[1], &c[2]));
        }
        for id in &ctx.cluster_ids {
            if !id.is_empty() && line.contains(id.as_str()) {
                push(Dependency::ClusterId, id);
            }
        }
        for id in &ctx.warehouse_ids {
            if !id.is_empty() && line.contains(id.as_str()) {
                push(Dependency::WarehouseId, id);
            }
        }
        if !ctx.job_ids.is_empty() {
            let says_job = line.to_ascii_lowercase().contains("job");
            for m in integers(line) {
                if !says_job && m.len() < SPECIFIC_ID_DIGITS {
                    continue;
                }
                if let Ok(n) = m.parse::<i64>() {
                    if ctx.job_ids.contains(&n) {
                        push(Dependency::JobId, m);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_each_dependency_with_its_line() {
        let code = b"# Databricks notebook source\n\
            df = spark.read.csv('/mnt/raw/samples.csv')\n\
            dbutils.fs.mount(source='abfss://x@y', mount_point='/mnt/raw')\n\
            pw = dbutils.secrets.get(scope='etl', key='db-password')\n\
            w.jobs.run_now(job_id=1042)\n\
            cluster = '0923-101010-abcd'\n\
            x = 1042  # a plain number, no reference\n\
            val watched = Seq(612803417559021L, 705118223904530L)\n\
            y = 1612803417559021 + a612803417559021\n\
            http_path = '/sql/1.0/warehouses/4b9e1f2c7a3d5e60'\n";
        let ctx = ScanContext {
            cluster_ids: vec!["0923-101010-abcd".into()],
            job_ids: vec![1042, 612803417559021, 705118223904530],
            warehouse_ids: vec!["4b9e1f2c7a3d5e60".into()],
        };
        let f = scan("/Users/a/nb", code, &ctx);
        let got: Vec<(usize, Dependency)> = f.iter().map(|f| (f.line, f.dependency)).collect();
        assert_eq!(
            got,
            vec![
                (2, Dependency::MountPath),
                (3, Dependency::MountCall),
                (3, Dependency::MountPath),
                (4, Dependency::SecretRead),
                (5, Dependency::JobId),
                (6, Dependency::ClusterId),
                (8, Dependency::JobId),
                (8, Dependency::JobId),
                (10, Dependency::WarehouseId),
            ]
        );
        assert_eq!(f[3].matched, "etl/db-password");
        assert_eq!(f[0].matched, "/mnt/raw/samples.csv");
    }

    #[test]
    fn binary_is_skipped() {
        assert!(scan("/f", &[0xff, 0xfe, b'/', b'm'], &ScanContext::default()).is_empty());
    }
}
