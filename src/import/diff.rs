//! `diff`: after a migration, re-read the target and compare every object of the bundle with
//! what the target holds — content digests, job settings after remapping, ACLs, grants, secret
//! keys, and secret values when an identity is given and the workspace lets values be read.
//!
//! A diff is a plan made in [`Mode::Diff`]: every item that import would still create or
//! update is a difference, and so is every object that cannot be compared for a reason the
//! user must fix (an unmapped principal, a table the target lacks). Objects import never
//! replays (Key Vault scopes, models) are listed as not compared.

use super::ledger::Knowledge;
use super::plan::{plan, Action, Mode, PlanInput};
use super::report::MustRecreate;
use super::source::SourceBundle;
use super::{ImportError, Options};
use crate::bundle::printable::printable as p;
use crate::bundle::Opener;
use crate::client::Client;
use crate::model::Kind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One object that differs.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Kind.
    pub kind: Kind,
    /// Source name, path or id.
    pub source: String,
    /// Target name or path.
    pub target: String,
    /// What differs.
    pub what: Vec<String>,
}

/// One object that was not compared, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NotCompared {
    /// Kind.
    pub kind: Kind,
    /// Target name or path.
    pub target: String,
    /// Why.
    pub reason: String,
}

/// The result of a diff.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// The bundle file.
    pub bundle: String,
    /// The target workspace.
    pub target: String,
    /// Objects compared and found equal, per kind.
    pub equal: BTreeMap<Kind, u64>,
    /// Every difference.
    pub differences: Vec<Difference>,
    /// Objects not compared.
    pub not_compared: Vec<NotCompared>,
    /// Notes (values not compared, and so on).
    pub notes: Vec<String>,
    /// What import never creates, for reference.
    pub must_recreate: MustRecreate,
    /// Requests sent.
    pub requests: u64,
}

impl DiffReport {
    /// True when nothing differs.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// The report for people. Names, differences and notes come from the bundle or the target:
    /// each goes through [`printable`](crate::bundle::printable::printable).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "diff of {} against {}", p(&self.bundle), p(&self.target));
        let equal: u64 = self.equal.values().sum();
        let _ = writeln!(
            s,
            "{equal} object(s) equal, {} different, {} not compared",
            self.differences.len(),
            self.not_compared.len()
        );
        for d in &self.differences {
            let _ = writeln!(s, "  differs: {} {}", d.kind, p(&d.target));
            for w in &d.what {
                let _ = writeln!(s, "      {}", p(w));
            }
        }
        for n in &self.not_compared {
            let _ = writeln!(
                s,
                "  not compared: {} {}: {}",
                n.kind,
                p(&n.target),
                p(&n.reason)
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {}", p(n));
        }
        if self.is_clean() {
            let _ = writeln!(s, "no differences");
        }
        s
    }
}

/// Compares the target with the bundle. With an identity, secret values are opened (in memory
/// only) and compared where the workspace lets them be read.
pub async fn diff(
    source: &SourceBundle,
    client: &Client,
    options: &Options,
    opener: Option<&Opener>,
) -> Result<DiffReport, ImportError> {
    let before = client.stats().requests;
    let f = &options.filter;
    let values = if opener.is_some() {
        Some(source.unseal_all(opener, &|s| source.needs_value(s, f))?)
    } else {
        None
    };
    let knowledge = Knowledge::default();
    let p = plan(PlanInput {
        source,
        options,
        client,
        knowledge: &knowledge,
        secrets: values.as_ref(),
        mode: Mode::Diff,
    })
    .await?;
    let mut report = DiffReport {
        bundle: p.bundle.clone(),
        target: p.target.clone(),
        equal: BTreeMap::new(),
        differences: Vec::new(),
        not_compared: Vec::new(),
        notes: p.notes.clone(),
        must_recreate: p.must_recreate.clone(),
        requests: 0,
    };
    let mut value_notes = 0;
    for i in &p.items {
        match i.action {
            Action::Unchanged => {
                *report.equal.entry(i.kind).or_default() += 1;
                if i.notes.iter().any(|n| n.starts_with("value not compared")) {
                    value_notes += 1;
                }
            }
            Action::Create | Action::Update | Action::Refuse | Action::Cannot => {
                let mut what = i.reasons.clone();
                if what.is_empty() {
                    what.push(if i.action == Action::Create {
                        "missing in target".into()
                    } else {
                        "differs".into()
                    });
                }
                report.differences.push(Difference {
                    kind: i.kind,
                    source: i.source.clone(),
                    target: i.target.clone(),
                    what,
                });
            }
            Action::Skip => report.not_compared.push(NotCompared {
                kind: i.kind,
                target: i.target.clone(),
                reason: i.reasons.join("; "),
            }),
        }
    }
    if value_notes > 0 {
        report.notes.push(format!(
            "{value_notes} secret value(s) not compared: {}",
            if values.is_none() {
                "give --identity or --passphrase to compare values"
            } else {
                "the workspace does not let values be read back"
            }
        ));
    }
    for u in &p.unmapped_principals {
        report.notes.push(format!(
            "principal {} is not mapped (used by {})",
            u.principal,
            u.used_by.join(", ")
        ));
    }
    report.requests = client.stats().requests - before;
    Ok(report)
}
