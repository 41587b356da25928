//! What plan, import and diff report: per-kind counts, every object that was not simply
//! carried over (with its reasons), and the "must recreate" list of what import never creates —
//! clusters, pools, policies, warehouses, mounts, Key Vault-backed scopes — with the lines of
//! notebook code that depend on them. Rendering for people lives here too; `--json` prints the
//! same structures with serde.

use super::plan::{Action, Plan, PlanItem};
use crate::bundle::printable::printable as p;
pub use crate::model::report::{MustRecreate, Outcome, RecreateItem, RecreateKind};
use crate::model::Kind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Created.
    pub created: u64,
    /// Updated.
    pub updated: u64,
    /// Unchanged.
    pub unchanged: u64,
    /// Skipped.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed => self.failed += 1,
            // Export's words; no import step records them.
            Outcome::Exported | Outcome::Degraded | Outcome::Omitted => {
                debug_assert!(false, "export outcome {o:?} in an import");
                self.skipped += 1;
            }
        }
    }
}

/// What happened to one plan item, kept beside the plan rather than as a copy of the item's
/// names and notes (issue #15: one such copy per object). See [`ItemOutcome`] for the whole.
#[derive(Debug, Clone)]
pub(crate) struct ItemResult {
    outcome: Outcome,
    /// The item's own reasons are reasons of this outcome.
    own_reasons: bool,
    /// One more reason: the step's error, or why it was not done.
    extra: Option<Box<str>>,
}

impl ItemResult {
    /// The outcome of a step that ran: an error, or the item's reasons (none once created).
    pub(crate) fn ran(r: Result<Outcome, String>) -> ItemResult {
        match r {
            Ok(outcome) => ItemResult {
                outcome,
                own_reasons: outcome != Outcome::Created,
                extra: None,
            },
            Err(e) => ItemResult {
                outcome: Outcome::Failed,
                own_reasons: false,
                extra: Some(e.into()),
            },
        }
    }

    /// The outcome of an item that needed no request, or whose step was not run (and why).
    pub(crate) fn unrun(i: &PlanItem, why_not_run: &str) -> ItemResult {
        let (outcome, own_reasons) = match i.action {
            Action::Unchanged => (Outcome::Unchanged, false),
            Action::Skip => (Outcome::Skipped, true),
            Action::Cannot | Action::Refuse => (Outcome::Failed, true),
            Action::Create | Action::Update => (Outcome::Skipped, false),
        };
        let extra = matches!(i.action, Action::Create | Action::Update)
            .then(|| format!("not done: {why_not_run}").into());
        ItemResult {
            outcome,
            own_reasons,
            extra,
        }
    }
}

/// One object's outcome: its plan item and what happened to it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ItemOutcome<'a> {
    /// Kind.
    pub kind: Kind,
    /// Source name, path or id.
    pub source: &'a str,
    /// Target name or path.
    pub target: &'a str,
    /// What happened.
    pub outcome: Outcome,
    /// Why (for skipped and failed objects), or what changed.
    #[serde(skip_serializing_if = "Reasons::is_empty")]
    pub reasons: Reasons<'a>,
    /// Remaps and other notes.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub notes: &'a [String],
}

impl<'a> ItemOutcome<'a> {
    /// A plan item with what happened to it.
    pub(crate) fn of(i: &'a PlanItem, r: &'a ItemResult) -> ItemOutcome<'a> {
        ItemOutcome {
            kind: i.kind,
            source: &i.source,
            target: &i.target,
            outcome: r.outcome,
            reasons: Reasons {
                item: if r.own_reasons { &i.reasons } else { &[] },
                extra: r.extra.as_deref(),
            },
            notes: &i.notes,
        }
    }
}

/// The reasons of an outcome: some of its plan item's, and perhaps one of its own.
#[derive(Debug, Clone, Copy)]
pub struct Reasons<'a> {
    item: &'a [String],
    extra: Option<&'a str>,
}

impl<'a> Reasons<'a> {
    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.item.is_empty() && self.extra.is_none()
    }

    /// Each reason, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> {
        self.item.iter().map(String::as_str).chain(self.extra)
    }

    /// The reasons joined by `sep`.
    pub fn join(&self, sep: &str) -> String {
        self.iter().collect::<Vec<_>>().join(sep)
    }
}

impl Serialize for Reasons<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Every item of a plan with what happened to it, in import order. Owns the plan: the
/// outcomes name objects through its items.
#[derive(Debug, Clone)]
pub struct Outcomes {
    plan: Plan,
    results: Vec<ItemResult>,
}

impl Outcomes {
    /// The plan and one result per item.
    pub(crate) fn new(plan: Plan, results: Vec<ItemResult>) -> Outcomes {
        assert_eq!(plan.items.len(), results.len(), "one result per plan item");
        Outcomes { plan, results }
    }

    /// The plan that was carried out.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Each item's outcome, in import order.
    pub fn iter(&self) -> impl Iterator<Item = ItemOutcome<'_>> {
        self.plan
            .items
            .iter()
            .zip(&self.results)
            .map(|(i, r)| ItemOutcome::of(i, r))
    }
}

impl Serialize for Outcomes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The result of an import.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The bundle file.
    pub bundle: String,
    /// The bundle id.
    pub bundle_id: String,
    /// The target workspace.
    pub target: String,
    /// The journal file.
    pub journal: String,
    /// True when the plan was refused and nothing was written.
    pub refused: bool,
    /// True when the run was interrupted before it finished.
    pub interrupted: bool,
    /// Counts per kind, in import order.
    pub counts: BTreeMap<Kind, Counts>,
    /// Every object, in import order, with the plan it was imported by.
    pub items: Outcomes,
    /// Principals that were dropped by the `drop` policy, with their uses.
    pub dropped_principals: Vec<super::principals::Unmapped>,
    /// What to recreate by hand.
    pub must_recreate: MustRecreate,
    /// Requests sent to the target during the import (plan included).
    pub requests: u64,
    /// Writes import sent (each attempt counted; `SHOW GRANTS` and other reads not).
    pub mutating_requests: u64,
    /// Seconds the run took.
    pub seconds: f64,
    /// What the user should know that failed nothing: staged model artifacts that could not
    /// be removed from the target, and what to do about them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Per target folder whose notebooks this run created: how — `archive (N notebooks)` (one
    /// directory import, confirmed by one listing), or `per object (N notebooks): <why>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub folders: BTreeMap<String, String>,
    /// The report file (`--report`) that could not be written, and why: the import itself
    /// is reported here whole, but the file the user asked for is not there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_file_error: Option<String>,
}

impl ImportReport {
    /// The report of `plan` with one result per item; the run's figures (requests, seconds,
    /// warnings…) are the caller's to fill.
    pub(crate) fn new(
        source: &super::SourceBundle,
        client: &crate::client::Client,
        journal: &std::path::Path,
        plan: Plan,
        results: Vec<ItemResult>,
    ) -> ImportReport {
        ImportReport::of(
            source.path().display().to_string(),
            source.bundle_id.clone(),
            client.host().to_string(),
            journal.display().to_string(),
            plan,
            results,
        )
    }

    /// The report of importing bundle `bundle` (id `bundle_id`) into `target`, journaled in
    /// `journal`, by `plan` with one result per item; the run's figures zero and empty.
    fn of(
        bundle: String,
        bundle_id: String,
        target: String,
        journal: String,
        plan: Plan,
        results: Vec<ItemResult>,
    ) -> ImportReport {
        let items = Outcomes::new(plan, results);
        ImportReport {
            bundle,
            bundle_id,
            target,
            journal,
            refused: false,
            interrupted: false,
            counts: ImportReport::tally(items.iter()),
            dropped_principals: items.plan().dropped_principals.clone(),
            must_recreate: items.plan().must_recreate.clone(),
            items,
            requests: 0,
            mutating_requests: 0,
            seconds: 0.0,
            warnings: Vec::new(),
            folders: BTreeMap::new(),
            report_file_error: None,
        }
    }

    /// Tallies the outcomes per kind.
    pub fn tally<'a>(items: impl IntoIterator<Item = ItemOutcome<'a>>) -> BTreeMap<Kind, Counts> {
        let mut m: BTreeMap<Kind, Counts> = BTreeMap::new();
        for i in items {
            m.entry(i.kind).or_default().add(i.outcome);
        }
        m
    }

    /// True when something failed or was refused, or the run did not finish.
    pub fn has_problems(&self) -> bool {
        self.refused
            || self.interrupted
            || self.report_file_error.is_some()
            || self.items.iter().any(|i| i.outcome == Outcome::Failed)
    }

    /// The plan that was carried out (or refused).
    pub fn plan(&self) -> &Plan {
        self.items.plan()
    }

    /// Totals over every kind.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.counts.values() {
            t.created += c.created;
            t.updated += c.updated;
            t.unchanged += c.unchanged;
            t.skipped += c.skipped;
            t.failed += c.failed;
        }
        t
    }

    /// The report for people. Every name, reason and note in it comes from the bundle or the
    /// target, so each goes through [`printable`](crate::bundle::printable::printable).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "import of {} into {}", p(&self.bundle), p(&self.target));
        if self.refused {
            let _ = writeln!(s, "refused: nothing was written (see the plan's refusals)");
        }
        let _ = writeln!(
            s,
            "\n{:<18} {:>8} {:>8} {:>10} {:>8} {:>7}",
            "kind", "created", "updated", "unchanged", "skipped", "failed"
        );
        for (k, c) in &self.counts {
            let _ = writeln!(
                s,
                "{:<18} {:>8} {:>8} {:>10} {:>8} {:>7}",
                k.as_str(),
                c.created,
                c.updated,
                c.unchanged,
                c.skipped,
                c.failed
            );
        }
        let t = self.totals();
        let _ = writeln!(
            s,
            "{:<18} {:>8} {:>8} {:>10} {:>8} {:>7}",
            "total", t.created, t.updated, t.unchanged, t.skipped, t.failed
        );
        let failed: Vec<ItemOutcome> = self
            .items
            .iter()
            .filter(|i| i.outcome == Outcome::Failed)
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(s, "\nfailed:");
            for i in failed {
                let _ = writeln!(
                    s,
                    "  {} {}: {}",
                    i.kind,
                    p(i.target),
                    p(&i.reasons.join("; "))
                );
            }
        }
        let skipped: Vec<ItemOutcome> = self
            .items
            .iter()
            .filter(|i| i.outcome == Outcome::Skipped)
            .collect();
        if !skipped.is_empty() {
            let _ = writeln!(s, "\nskipped:");
            for i in skipped {
                let _ = writeln!(
                    s,
                    "  {} {}: {}",
                    i.kind,
                    p(i.target),
                    p(&i.reasons.join("; "))
                );
            }
        }
        if !self.dropped_principals.is_empty() {
            let _ = writeln!(s, "\ndropped principals (unmapped_principals = \"drop\"):");
            for d in &self.dropped_principals {
                let _ = writeln!(
                    s,
                    "  {} (used by {})",
                    p(&d.principal),
                    p(&d.used_by.join(", "))
                );
            }
        }
        if !self.folders.is_empty() {
            let whole = self
                .folders
                .values()
                .filter(|h| h.starts_with("archive") && !h.contains("per object"))
                .count();
            let _ = writeln!(
                s,
                "\nfolders: {whole} created with one directory import each, {} in part or wholly object by object",
                self.folders.len() - whole
            );
            for (path, how) in &self.folders {
                if !how.starts_with("archive") || how.contains("per object") {
                    let _ = writeln!(s, "  {}: {}", p(path), p(how));
                }
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "\nwarnings:");
            for w in &self.warnings {
                let _ = writeln!(s, "  {}", p(w));
            }
        }
        render_recreate(&mut s, &self.must_recreate);
        let _ = writeln!(
            s,
            "\n{} requests to the target ({} that could change it), {:.1} s",
            self.requests, self.mutating_requests, self.seconds
        );
        if let Some(e) = &self.report_file_error {
            let _ = writeln!(s, "the report file was not written: {}", p(e));
        }
        if self.interrupted {
            let _ = writeln!(
                s,
                "interrupted: run the same command with --resume to finish (journal {})",
                p(&self.journal)
            );
        }
        s
    }
}

#[cfg(test)]
impl ImportReport {
    /// The report of `plan` and `results` from bundle `b.zip` (id `id`) into `https://t`, its
    /// run's figures zero and empty.
    pub(crate) fn for_tests(plan: Plan, results: Vec<ItemResult>) -> ImportReport {
        ImportReport::of(
            "b.zip".into(),
            "id".into(),
            "https://t".into(),
            "j".into(),
            plan,
            results,
        )
    }
}

/// Appends the must-recreate section. Names, ids and lines of code come from the bundle (the
/// code from notebooks): all printed through [`printable`](crate::bundle::printable::printable).
pub fn render_recreate(s: &mut String, m: &MustRecreate) {
    if m.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nmust recreate by hand (import never creates these):");
    for r in &m.items {
        let mapped = r
            .mapped_to
            .as_deref()
            .map(|t| format!(" → mapped to {}", p(t)))
            .unwrap_or_default();
        let _ = writeln!(s, "  {} {} ({}){}", r.kind, p(&r.id), p(&r.name), mapped);
        for u in &r.used_by {
            let _ = writeln!(s, "      used by {}", p(u));
        }
    }
    if !m.code.is_empty() {
        let _ = writeln!(s, "  code that depends on them:");
        for f in &m.code {
            let _ = writeln!(
                s,
                "    {}:{}: {} ({})",
                p(&f.path),
                f.line,
                f.dependency.describe(),
                p(&f.matched)
            );
        }
    }
}

/// Renders a plan for people: counts, every refusal and skip, every change. Names, reasons
/// and notes go through [`printable`](crate::bundle::printable::printable).
pub fn render_plan(plan: &super::Plan, verbose: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "plan for importing {} (bundle {}) into {}",
        p(&plan.bundle),
        p(&plan.bundle_id),
        p(&plan.target)
    );
    let _ = writeln!(
        s,
        "\n{:<18} {:>7} {:>7} {:>10} {:>6} {:>7} {:>7}",
        "kind", "create", "update", "unchanged", "skip", "refuse", "cannot"
    );
    for (k, c) in plan.counts() {
        let _ = writeln!(
            s,
            "{:<18} {:>7} {:>7} {:>10} {:>6} {:>7} {:>7}",
            k.as_str(),
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5]
        );
    }
    let show = |a: Action| match a {
        Action::Unchanged => false,
        Action::Create | Action::Update => verbose,
        _ => true,
    };
    let mut changes: Vec<&PlanItem> = plan.items.iter().filter(|i| show(i.action)).collect();
    if !verbose {
        // Updates are rarer than creates and always worth seeing.
        changes.extend(plan.items.iter().filter(|i| i.action == Action::Update));
        changes.sort_by_key(|i| {
            (
                crate::bundle::inventory::kind_rank(i.kind),
                i.target.clone(),
            )
        });
        changes.dedup_by(|a, b| std::ptr::eq(*a, *b));
    }
    if !changes.is_empty() {
        let _ = writeln!(s);
        for i in changes {
            let why = if i.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", p(&i.reasons.join("; ")))
            };
            let _ = writeln!(
                s,
                "  {:<9} {} {}{}",
                i.action.as_str(),
                i.kind,
                p(&i.target),
                why
            );
        }
    }
    if !plan.unmapped_principals.is_empty() {
        let _ = writeln!(
            s,
            "\nunmapped principals (map them under [principals], or set unmapped_principals = \"keep\" or \"drop\"):"
        );
        for u in &plan.unmapped_principals {
            let _ = writeln!(
                s,
                "  {} (used by {})",
                p(&u.principal),
                p(&u.used_by.join(", "))
            );
        }
    }
    if !plan.unmapped_clusters.is_empty() {
        let _ = writeln!(
            s,
            "\nunmapped clusters (map each under [clusters] to an existing cluster or a job-cluster spec):"
        );
        for u in &plan.unmapped_clusters {
            let _ = writeln!(
                s,
                "  {} (used by {})",
                p(&u.principal),
                p(&u.used_by.join(", "))
            );
        }
    }
    if !plan.dropped_principals.is_empty() {
        let _ = writeln!(s, "\nprincipals dropped by unmapped_principals = \"drop\":");
        for u in &plan.dropped_principals {
            let _ = writeln!(
                s,
                "  {} (used by {})",
                p(&u.principal),
                p(&u.used_by.join(", "))
            );
        }
    }
    for n in &plan.notes {
        let _ = writeln!(s, "note: {}", p(n));
    }
    render_recreate(&mut s, &plan.must_recreate);
    if plan.is_refused() {
        let _ = writeln!(
            s,
            "\nimport would be refused: {} object(s) cannot be replayed as they stand; nothing would be written",
            plan.items.iter().filter(|i| i.action == Action::Refuse).count()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rendered_and_serialized() {
        let mut r = ImportReport::for_tests(Plan::default(), Vec::new());
        assert!(!r.render().contains("warnings:"));
        assert!(serde_json::to_value(&r).unwrap().get("warnings").is_none());
        let w = "model version m/1: its staged artifacts at dbfs:/dbxport/model-artifacts/m/1 were left in the target";
        r.warnings.push(w.into());
        assert!(r.render().contains(&format!("\nwarnings:\n  {w}\n")));
        assert_eq!(serde_json::to_value(&r).unwrap()["warnings"][0], w);
        assert!(!r.has_problems(), "a warning is not a failure");
    }

    #[test]
    fn outcomes_name_objects_through_the_plan() {
        let mut plan = Plan::default();
        let mut item = |kind, name: &str, action, reason: &str| {
            let mut i = PlanItem::new(kind, name, format!("/t{name}")).set(action, reason);
            i.notes.push(format!("{name} → /t{name}"));
            plan.items.push(i);
        };
        item(Kind::Notebook, "/a", Action::Create, "missing in target");
        item(Kind::Notebook, "/b", Action::Update, "other content");
        item(Kind::Job, "j", Action::Skip, "filtered");
        item(Kind::Notebook, "/c", Action::Create, "");
        let results = vec![
            ItemResult::ran(Ok(Outcome::Created)),
            ItemResult::ran(Err("HTTP 500".into())),
            ItemResult::unrun(&plan.items[2], "interrupted"),
            ItemResult::unrun(&plan.items[3], "interrupted"),
        ];
        let o = Outcomes::new(plan, results);
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"kind": "notebook", "source": "/a", "target": "/t/a", "outcome": "created",
                 "notes": ["/a → /t/a"]},
                {"kind": "notebook", "source": "/b", "target": "/t/b", "outcome": "failed",
                 "reasons": ["HTTP 500"], "notes": ["/b → /t/b"]},
                {"kind": "job", "source": "j", "target": "/tj", "outcome": "skipped",
                 "reasons": ["filtered"], "notes": ["j → /tj"]},
                {"kind": "notebook", "source": "/c", "target": "/t/c", "outcome": "skipped",
                 "reasons": ["not done: interrupted"], "notes": ["/c → /t/c"]},
            ])
        );
        let counts = ImportReport::tally(o.iter());
        assert_eq!(counts[&Kind::Notebook].failed, 1);
        assert_eq!(counts[&Kind::Notebook].skipped, 1);
        assert_eq!(counts[&Kind::Job].skipped, 1);
    }
}
