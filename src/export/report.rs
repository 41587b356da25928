//! The export report: per kind, how many objects were found, exported, degraded and not
//! exported (each with its reason), and the "must recreate" checklist — compute, mounts, Key
//! Vault-backed scopes and every line of code that depends on them. The report is written into
//! the bundle as the tag files `export-report.json` and `export-report.md` (content only, no
//! timings, so it depends on the workspace and the options alone) and printed at the end of a
//! run together with the run's statistics ([`RunStats`]).

use crate::bundle::inventory::kind_rank;
use crate::bundle::printable::printable;
pub use crate::model::report::{MustRecreate, Outcome, RecreateItem, RecreateKind};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Name of the JSON report tag file.
pub const REPORT_JSON: &str = "export-report.json";
/// Name of the Markdown report tag file.
pub const REPORT_MD: &str = "export-report.md";

/// Counts for one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCounts {
    /// Objects found in the workspace (after selection).
    pub found: u64,
    /// Exported whole.
    pub exported: u64,
    /// Exported with a loss.
    pub degraded: u64,
    /// Not exported (omitted or failed).
    pub not_exported: u64,
    /// Of those not exported, how many failed.
    pub failed: u64,
}

/// One object that was degraded or not exported.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Issue {
    /// Its kind.
    pub kind: Kind,
    /// Its original name or path.
    pub name: String,
    /// Its id in the source workspace.
    pub source_id: String,
    /// What became of it.
    pub outcome: Outcome,
    /// Why, naming the call that failed where one did.
    pub reason: String,
}

/// The report; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always `dbxport-export-report`.
    pub format: String,
    /// Report format version.
    pub version: u32,
    /// The bundle's id.
    pub bundle_id: String,
    /// The source workspace URL.
    pub host: String,
    /// The source workspace id.
    pub workspace_id: String,
    /// Per kind, in import order.
    pub kinds: BTreeMap<String, KindCounts>,
    /// Degraded and not exported objects, sorted by kind and name.
    pub issues: Vec<Issue>,
    /// Things the user must know about the run as a whole.
    pub notices: Vec<String>,
    /// The checklist, stored grouped by kind (`clusters`, `mounts`, …).
    #[serde(with = "crate::model::report::by_kind")]
    pub must_recreate: MustRecreate,
}

/// Numbers about the run itself, not part of the bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    /// HTTP requests sent (every attempt, token requests included).
    pub requests: u64,
    /// Of those, retries.
    pub retries: u64,
    /// 429/503 answers.
    pub throttled: u64,
    /// Requests per `METHOD route`.
    pub by_call: BTreeMap<String, u64>,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
    /// True when this run continued an interrupted one.
    pub resumed: bool,
    /// Objects already held by the interrupted run and not fetched again.
    pub reused: u64,
    /// Bytes of the bundle written.
    pub bundle_bytes: u64,
    /// Per folder holding notebooks to fetch: how they were fetched — `archive (N notebooks)`
    /// (one directory export), or `per object (N notebooks): <why>`; an archive that did not
    /// carry some of them says which and why.
    #[serde(default)]
    pub folders: BTreeMap<String, String>,
    /// Model artifacts streamed from the registry straight into the bundle as it was written,
    /// never staged (spec §11, streamed files).
    #[serde(default)]
    pub streamed_artifacts: u64,
}

impl Report {
    /// Counts what became of one object and keeps the reasons of any outcome but exported.
    pub fn record(&mut self, kind: Kind, source_id: &str, entry: &super::stage::DoneEntry) {
        let outcome = entry.outcome.unwrap_or(Outcome::Exported);
        let c = self.kinds.entry(kind.as_str().to_string()).or_default();
        match outcome {
            Outcome::Exported => c.exported += 1,
            Outcome::Degraded => c.degraded += 1,
            Outcome::Omitted => c.not_exported += 1,
            Outcome::Failed => {
                c.not_exported += 1;
                c.failed += 1;
            }
            // Import's words; no export stage records them.
            Outcome::Created | Outcome::Updated | Outcome::Unchanged | Outcome::Skipped => {
                debug_assert!(false, "import outcome {outcome:?} in an export");
                c.not_exported += 1;
            }
        }
        if outcome != Outcome::Exported {
            for why in &entry.notes {
                self.issues.push(Issue {
                    kind,
                    name: entry.name.clone(),
                    source_id: source_id.to_string(),
                    outcome,
                    reason: why.clone(),
                });
            }
        }
    }

    /// An empty report.
    pub fn new(bundle_id: &str, host: &str, workspace_id: &str) -> Report {
        Report {
            format: "dbxport-export-report".into(),
            version: 1,
            bundle_id: bundle_id.into(),
            host: host.into(),
            workspace_id: workspace_id.into(),
            kinds: BTreeMap::new(),
            issues: Vec::new(),
            notices: Vec::new(),
            must_recreate: MustRecreate::default(),
        }
    }

    /// True when any object failed (the command then exits 1).
    pub fn has_failures(&self) -> bool {
        self.kinds.values().any(|c| c.failed > 0)
    }

    /// Totals over every kind.
    pub fn totals(&self) -> KindCounts {
        let mut t = KindCounts::default();
        for c in self.kinds.values() {
            t.found += c.found;
            t.exported += c.exported;
            t.degraded += c.degraded;
            t.not_exported += c.not_exported;
            t.failed += c.failed;
        }
        t
    }

    /// The counts of `kind`.
    pub fn counts(&self, kind: Kind) -> KindCounts {
        self.kinds.get(kind.as_str()).cloned().unwrap_or_default()
    }

    /// Sorts every list, so that the same workspace gives the same report.
    pub fn normalize(&mut self) {
        self.issues.sort_by(|a, b| {
            (kind_rank(a.kind), &a.name, &a.source_id, &a.reason).cmp(&(
                kind_rank(b.kind),
                &b.name,
                &b.source_id,
                &b.reason,
            ))
        });
        self.issues.dedup();
        self.notices.sort();
        self.notices.dedup();
        self.must_recreate.normalize();
    }

    /// The JSON tag file: canonical JSON (sorted keys, two-space indent, trailing LF).
    pub fn to_json(&self) -> Vec<u8> {
        crate::bundle::json::to_canonical_bytes(self).expect("the report serializes")
    }

    /// The Markdown tag file.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Export report\n");
        let _ = writeln!(
            s,
            "Bundle `{}` of workspace `{}` at {}.\n",
            code(&self.bundle_id),
            code(&self.workspace_id),
            md(&self.host)
        );
        if !self.notices.is_empty() {
            let _ = writeln!(s, "## Notices\n");
            for n in &self.notices {
                let _ = writeln!(s, "- **{}**", md(n));
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Objects\n");
        let _ = writeln!(s, "| kind | found | exported | degraded | not exported |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for (k, c) in self.kinds_in_order() {
            let _ = writeln!(
                s,
                "| {k} | {} | {} | {} | {} |",
                c.found, c.exported, c.degraded, c.not_exported
            );
        }
        let t = self.totals();
        let _ = writeln!(
            s,
            "| **total** | {} | {} | {} | {} |\n",
            t.found, t.exported, t.degraded, t.not_exported
        );
        if !self.issues.is_empty() {
            let _ = writeln!(s, "## Degraded and not exported\n");
            let _ = writeln!(s, "| kind | object | outcome | reason |");
            let _ = writeln!(s, "|---|---|---|---|");
            for i in &self.issues {
                let outcome = match i.outcome {
                    Outcome::Omitted => "not exported",
                    o => o.as_str(),
                };
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {outcome} | {} |",
                    i.kind,
                    code(&i.name),
                    md(&i.reason)
                );
            }
            s.push('\n');
        }
        let m = &self.must_recreate;
        let _ = writeln!(s, "## Must recreate\n");
        let _ = writeln!(
            s,
            "These are recorded in the bundle for reference and are never replayed: recreate them in the target, then revisit the code that uses them.\n"
        );
        for kind in RecreateKind::ALL {
            let title = match kind {
                RecreateKind::Cluster => "Clusters",
                RecreateKind::InstancePool => "Instance pools",
                RecreateKind::ClusterPolicy => "Cluster policies",
                RecreateKind::Warehouse => "SQL warehouses",
                RecreateKind::Mount => "DBFS mounts",
                RecreateKind::KeyvaultScope => "Key Vault-backed secret scopes",
            };
            let mut list = m.of(kind).peekable();
            if list.peek().is_none() {
                continue;
            }
            let _ = writeln!(s, "### {title}\n");
            for i in list {
                let _ = writeln!(s, "- [ ] `{}` ({})", code(&i.name), code(&i.id));
                for d in &i.details {
                    let _ = writeln!(s, "  - {}", md(d));
                }
            }
            s.push('\n');
        }
        if !m.code.is_empty() {
            let _ = writeln!(s, "### Code that depends on them\n");
            let _ = writeln!(s, "| path | line | depends on | text |");
            let _ = writeln!(s, "|---|---:|---|---|");
            for f in &m.code {
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | `{}` |",
                    code(&f.path),
                    f.line,
                    f.dependency.describe(),
                    code(&f.matched)
                );
            }
            s.push('\n');
        }
        s
    }

    fn kinds_in_order(&self) -> Vec<(&str, &KindCounts)> {
        let mut v: Vec<(&str, &KindCounts)> =
            self.kinds.iter().map(|(k, c)| (k.as_str(), c)).collect();
        v.sort_by_key(|(k, _)| Kind::parse(k).map_or(usize::MAX, kind_rank));
        v
    }
}

/// Escapes text for a Markdown table cell. Names and lines of code come from the workspace; the
/// file is read in terminals (`cat`, `less -R`) too, so control characters are escaped as
/// `dbxport` prints them ([`printable`]), not kept raw.
fn md(s: &str) -> String {
    printable(&s.replace('|', "\\|").replace(['\n', '\r'], " ")).into_owned()
}

/// Text inside backticks in a table cell (escaped as [`md`]).
fn code(s: &str) -> String {
    printable(
        &s.replace('`', "'")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " "),
    )
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::scan::{Dependency, Finding};

    #[test]
    fn markdown_lists_counts_issues_and_checklist() {
        let mut r = Report::new("id", "https://h", "1");
        r.kinds.insert(
            "notebook".into(),
            KindCounts {
                found: 3,
                exported: 2,
                degraded: 1,
                ..KindCounts::default()
            },
        );
        r.issues.push(Issue {
            kind: Kind::Notebook,
            name: "/a|b".into(),
            source_id: "7".into(),
            outcome: Outcome::Degraded,
            reason: "outputs dropped".into(),
        });
        let mut mount = RecreateItem::new(RecreateKind::Mount, "/mnt/x", "/mnt/x");
        mount.details = vec!["source s3a://b".into()];
        r.must_recreate.items.push(mount);
        r.must_recreate.code.push(Finding {
            path: "/a".into(),
            line: 4,
            dependency: Dependency::MountPath,
            matched: "/mnt/x/y".into(),
        });
        r.normalize();
        let m = r.to_markdown();
        assert!(m.contains("| notebook | 3 | 2 | 1 | 0 |"));
        assert!(m.contains("`/a\\|b`"));
        assert!(m.contains("- [ ] `/mnt/x`"));
        assert!(m.contains("| `/a` | 4 |"));
        assert!(!r.has_failures());
        let back: Report = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    // The Markdown report is stored in the bundle and read in terminals: a notebook line or a
    // name with ESC/OSC/CR must not carry raw control characters into it.
    #[test]
    fn markdown_escapes_control_characters() {
        let mut r = Report::new("id", "https://h", "1");
        r.notices.push("notice \u{1b}[2J".into());
        r.issues.push(Issue {
            kind: Kind::Job,
            name: "job\u{1b}]0;x\u{7}".into(),
            source_id: "7".into(),
            outcome: Outcome::Failed,
            reason: "because\u{9b}31m".into(),
        });
        let mut cluster = RecreateItem::new(RecreateKind::Cluster, "c1", "shared\u{202e}");
        cluster.details = vec!["init \u{7f}".into()];
        r.must_recreate.items.push(cluster);
        r.must_recreate.code.push(Finding {
            path: "/a".into(),
            line: 2,
            dependency: Dependency::MountPath,
            matched: "/dbfs/mnt/x\u{1b}]0;x\u{7}".into(),
        });
        let m = r.to_markdown();
        assert!(
            !m.chars()
                .any(|c| c != '\n' && crate::bundle::printable::is_unsafe_for_terminal(c)),
            "{m:?}"
        );
        assert!(m.contains("`/dbfs/mnt/x\\x1b]0;x\\x07`"), "{m}");
        assert!(m.contains("`job\\x1b]0;x\\x07`"), "{m}");
        assert!(m.contains("`shared\\u{202e}`"), "{m}");
    }

    // `export-report.json` is stored in bundles: the shared report model must write it byte
    // for byte as the export-only types did (this text is what they wrote for this report).
    #[test]
    fn json_is_byte_compatible_with_the_export_only_types() {
        let mut r = Report::new("b-1", "https://h", "42");
        r.kinds.insert(
            "cluster".into(),
            KindCounts {
                found: 2,
                exported: 2,
                ..KindCounts::default()
            },
        );
        r.issues.push(Issue {
            kind: Kind::Notebook,
            name: "/a".into(),
            source_id: "7".into(),
            outcome: Outcome::Degraded,
            reason: "outputs dropped".into(),
        });
        r.issues.push(Issue {
            kind: Kind::Secret,
            name: "s/k".into(),
            source_id: "s/k".into(),
            outcome: Outcome::Omitted,
            reason: "no recipient".into(),
        });
        r.notices.push("SECRET VALUES ARE NOT EXPORTED".into());
        let item = |kind, id: &str, name: &str, details: &[&str]| {
            let mut i = RecreateItem::new(kind, id, name);
            i.details = details.iter().map(|d| d.to_string()).collect();
            i
        };
        r.must_recreate.items = vec![
            item(RecreateKind::Cluster, "c2", "b", &["init dbfs:/i.sh"]),
            item(RecreateKind::Cluster, "c1", "a", &[]),
            item(RecreateKind::Warehouse, "w1", "wh", &["size Small"]),
            item(RecreateKind::Mount, "/mnt/x", "/mnt/x", &["source s3a://b"]),
            item(RecreateKind::KeyvaultScope, "kv", "kv", &[]),
        ];
        r.must_recreate.code.push(Finding {
            path: "/a".into(),
            line: 4,
            dependency: Dependency::MountPath,
            matched: "/mnt/x/y".into(),
        });
        r.normalize();
        let want = r#"{
  "bundle_id": "b-1",
  "format": "dbxport-export-report",
  "host": "https://h",
  "issues": [
    {
      "kind": "notebook",
      "name": "/a",
      "outcome": "degraded",
      "reason": "outputs dropped",
      "source_id": "7"
    },
    {
      "kind": "secret",
      "name": "s/k",
      "outcome": "omitted",
      "reason": "no recipient",
      "source_id": "s/k"
    }
  ],
  "kinds": {
    "cluster": {
      "degraded": 0,
      "exported": 2,
      "failed": 0,
      "found": 2,
      "not_exported": 0
    }
  },
  "must_recreate": {
    "cluster_policies": [],
    "clusters": [
      {
        "id": "c1",
        "name": "a"
      },
      {
        "details": [
          "init dbfs:/i.sh"
        ],
        "id": "c2",
        "name": "b"
      }
    ],
    "code": [
      {
        "dependency": "mount_path",
        "line": 4,
        "matched": "/mnt/x/y",
        "path": "/a"
      }
    ],
    "instance_pools": [],
    "keyvault_scopes": [
      {
        "id": "kv",
        "name": "kv"
      }
    ],
    "mounts": [
      {
        "details": [
          "source s3a://b"
        ],
        "id": "/mnt/x",
        "name": "/mnt/x"
      }
    ],
    "warehouses": [
      {
        "details": [
          "size Small"
        ],
        "id": "w1",
        "name": "wh"
      }
    ]
  },
  "notices": [
    "SECRET VALUES ARE NOT EXPORTED"
  ],
  "version": 1,
  "workspace_id": "42"
}
"#;
        assert_eq!(String::from_utf8(r.to_json()).unwrap(), want);
        let back: Report = serde_json::from_slice(want.as_bytes()).unwrap();
        assert_eq!(back, r);
    }
}
