//! How jobs are planned and replayed into a target.
//!
//! A job is tied to its source by the source tag in its settings' `tags` (source workspace and
//! job id): the target job carrying it is this one (the lowest id when several do), so a job
//! without it, whatever its name, is never touched and there is no conflict. The settings are
//! rewritten for the target (`remap::rewrite_job`); a cluster, principal or job reference that
//! cannot be mapped refuses the job. Apply creates new jobs in dependency order (placeholders
//! for a cycle), looking for the tag before sending a create again, and resets changed ones
//! whole.

use crate::bundle::inventory::Record;
use crate::import::apply::{ambiguous, backoff, Run, StepResult, AMBIGUOUS_ATTEMPTS};
use crate::import::compare::first_difference;
use crate::import::ledger::keys;
use crate::import::plan::{Action, Mode, PlanItem, Planner, Step};
use crate::import::remap::{rewrite_job, JobContext, Refusal};
use crate::import::report::Outcome;
use crate::import::source::SourceBundle;
use crate::import::target::{find_job_by_tag, read_jobs, Jobs as TargetJobs};
use crate::import::ImportError;
use crate::model::Kind;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

crate::import::unit::unit! {
    /// The import unit of jobs.
    Jobs: [Kind::Job]
}

async fn plan(p: &mut Planner<'_, '_>) -> Result<(), ImportError> {
    if !p.opts().filter.kind(Kind::Job) {
        return Ok(());
    }
    let jobs: TargetJobs = read_jobs(p.client()).await.map_err(|e| p.err(e))?;
    let src = p.input.source;
    // Every source job id a reference may name → the id it has in the target, when known.
    let mut known: BTreeMap<i64, i64> = BTreeMap::new();
    let bundle_ids: BTreeSet<i64> = src.jobs.iter().map(|j| j.job_id).collect();
    for j in &src.jobs {
        if let Some(t) = jobs.find(&src.job_tag(j.job_id)) {
            known.insert(j.job_id, t.job_id);
        }
    }
    // References to jobs outside the bundle can still resolve through their tags.
    for j in &src.jobs {
        for r in job_refs(&j.settings) {
            if !bundle_ids.contains(&r) {
                if let Some(t) = jobs.find(&src.job_tag(r)) {
                    known.insert(r, t.job_id);
                }
            }
        }
    }
    let resolvable: BTreeMap<i64, i64> = bundle_ids
        .iter()
        .chain(known.keys())
        .map(|id| (*id, *id))
        .collect();
    let keep_schedules = p.opts().keep_schedules;
    for j in &src.jobs {
        let name = j
            .settings
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let place = format!("job {name} ({})", j.job_id);
        let mut item = PlanItem::new(Kind::Job, format!("{name} ({})", j.job_id), &name);
        item.key = keys::job(j.job_id);
        let mut settings = j.settings.clone();
        for f in crate::model::job::SERVER_SETTINGS_FIELDS {
            settings.remove(f);
        }
        let mapper = p.mapper;
        let map_principal = |n: &str, field: &str| mapper.map(n, &format!("{place}: {field}"));
        let external = |a: &str| a.contains('@') && !mapper.is_source_principal(a);
        let ctx = JobContext {
            mapping: &p.opts().mapping,
            map_principal: &map_principal,
            is_external_address: &external,
            job_ids: &resolvable,
            keep_schedules,
            source_tag: src.job_tag(j.job_id),
        };
        let rw = rewrite_job(&settings, &ctx);
        item.notes.extend(rw.notes.iter().map(|n| n.0.clone()));
        let existing = jobs.find(&src.job_tag(j.job_id));
        if let Some(e) = existing {
            item.target = format!("{name} (job {})", e.job_id);
            let dups: Vec<String> = jobs.by_tag[&src.job_tag(j.job_id)]
                .iter()
                .skip(1)
                .map(|d| d.job_id.to_string())
                .collect();
            if !dups.is_empty() {
                item.notes.push(format!(
                    "other target jobs carry the same source tag ({}); job {} is used",
                    dups.join(", "),
                    e.job_id
                ));
            }
        }
        if !rw.refusals.is_empty() {
            for r in &rw.refusals {
                if let Refusal::UnmappedCluster { cluster_id } = r {
                    p.unmapped_clusters
                        .entry(cluster_id.clone())
                        .or_default()
                        .insert(place.clone());
                }
            }
            item.action = Action::Refuse;
            item.reasons = rw.refusals.iter().map(|r| r.to_string()).collect();
            p.job_items.insert(j.job_id, Action::Refuse);
            p.items.push(item);
            continue;
        }
        let template = rw.settings;
        match existing {
            None => {
                item.action = Action::Create;
                if p.input.mode == Mode::Diff {
                    item.reasons.push("missing in target".into());
                }
                item.step = Some(Step::Job {
                    source_id: j.job_id,
                    existing: None,
                    template: Box::new(template),
                });
            }
            Some(e) => {
                let refs = job_refs(&template);
                let unresolved: Vec<i64> = refs
                    .into_iter()
                    .filter(|r| !known.contains_key(r))
                    .collect();
                let diff = if unresolved.is_empty() {
                    let mut s = template.clone();
                    substitute_job_refs(&mut s, &known);
                    let mut have = e.settings.clone();
                    for f in crate::model::job::SERVER_SETTINGS_FIELDS {
                        have.remove(f);
                    }
                    first_difference(&Value::Object(s), &Value::Object(have))
                        .map(|p| format!("settings differ at {p}"))
                } else {
                    Some(format!(
                        "run_job_task references job(s) {} that this import creates",
                        unresolved
                            .iter()
                            .map(i64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                };
                match diff {
                    None => item.action = Action::Unchanged,
                    Some(d) => {
                        item.action = Action::Update;
                        item.reasons.push(d);
                        item.step = Some(Step::Job {
                            source_id: j.job_id,
                            existing: Some(e.job_id),
                            template: Box::new(template),
                        });
                    }
                }
            }
        }
        p.job_items.insert(j.job_id, item.action);
        p.items.push(item);
    }
    p.job_ids = known;
    Ok(())
}

async fn apply<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let mut out = Vec::new();
    if run.interrupt.is_set() {
        return out;
    }
    run.st().job_ids = run.plan.job_ids.clone();
    let items = run.items_of(&[Kind::Job]);
    let mut creates: Vec<&PlanItem> = Vec::new();
    let mut updates: Vec<&PlanItem> = Vec::new();
    for i in items {
        match &i.step {
            Some(Step::Job { existing: None, .. }) => creates.push(i),
            Some(Step::Job { .. }) => updates.push(i),
            _ => {}
        }
    }
    let creating: BTreeSet<i64> = creates
        .iter()
        .filter_map(|i| match &i.step {
            Some(Step::Job { source_id, .. }) => Some(*source_id),
            _ => None,
        })
        .collect();
    // Create in dependency order: a job after the jobs its run_job_tasks point at.
    let mut placeholders: Vec<&PlanItem> = Vec::new();
    let mut remaining = creates;
    while !remaining.is_empty() && !run.interrupt.is_set() {
        let ready: Vec<&PlanItem>;
        let waiting: Vec<&PlanItem>;
        {
            let st = run.st();
            (ready, waiting) = remaining.into_iter().partition(|i| {
                let Some(Step::Job { template, .. }) = &i.step else {
                    return false;
                };
                job_refs(template).iter().all(|r| {
                    !creating.contains(r)
                        || st.job_ids.contains_key(r)
                        || st.failed_jobs.contains(r)
                })
            });
        }
        if ready.is_empty() {
            // A cycle: create these with a placeholder, and set them whole afterwards.
            placeholders = waiting;
            break;
        }
        let results = run
            .each(ready, |item, step| async move {
                let Step::Job {
                    source_id,
                    template,
                    ..
                } = step
                else {
                    return Err("internal: wrong step".into());
                };
                let blocked: Vec<i64> = job_refs(template)
                    .into_iter()
                    .filter(|r| run.st().failed_jobs.contains(r))
                    .collect();
                if !blocked.is_empty() {
                    run.st().failed_jobs.insert(*source_id);
                    return Err(format!(
                        "it runs job(s) {} whose import failed",
                        blocked
                            .iter()
                            .map(i64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let mut settings = template.clone();
                substitute_job_refs(&mut settings, &run.st().job_ids);
                match create_job(run, *source_id, &settings).await {
                    Ok(id) => {
                        run.st().job_ids.insert(*source_id, id);
                        run.ledger.record(item.key.clone(), json!({ "job_id": id }));
                        Ok(Outcome::Created)
                    }
                    Err(e) => {
                        run.st().failed_jobs.insert(*source_id);
                        Err(e)
                    }
                }
            })
            .await;
        out.extend(results);
        remaining = waiting;
    }
    if !placeholders.is_empty() && !run.interrupt.is_set() {
        let results = run
            .each(placeholders.clone(), |_item, step| async move {
                let Step::Job {
                    source_id,
                    template,
                    ..
                } = step
                else {
                    return Err("internal: wrong step".into());
                };
                let mut shell = Map::new();
                for k in ["name", "tags"] {
                    if let Some(v) = template.get(k) {
                        shell.insert(k.into(), v.clone());
                    }
                }
                match create_job(run, *source_id, &shell).await {
                    Ok(id) => {
                        run.st().job_ids.insert(*source_id, id);
                        Ok(Outcome::Created)
                    }
                    Err(e) => {
                        run.st().failed_jobs.insert(*source_id);
                        Err(e)
                    }
                }
            })
            .await;
        // Failed placeholders are final; the others are set whole below.
        for (item, r) in results {
            if r.is_err() {
                out.push((item, r));
            } else {
                updates.push(item);
            }
        }
    }
    let placeholder_ids: BTreeSet<*const PlanItem> =
        placeholders.iter().map(|p| *p as *const PlanItem).collect();
    let creating = &creating;
    let results = run
        .each(updates, |item, step| {
            let was_placeholder = placeholder_ids.contains(&(item as *const PlanItem));
            async move {
                let Step::Job {
                    source_id,
                    template,
                    existing,
                } = step
                else {
                    return Err("internal: wrong step".into());
                };
                let id = match existing.or_else(|| run.st().job_ids.get(source_id).copied()) {
                    Some(id) => id,
                    None => return Err("its job id is unknown".into()),
                };
                let mut settings = template.clone();
                substitute_job_refs(&mut settings, &run.st().job_ids);
                let unresolved: Vec<i64> = job_refs(&settings)
                    .into_iter()
                    .filter(|r| creating.contains(r) && !run.st().job_ids.contains_key(r))
                    .collect();
                if !unresolved.is_empty() {
                    return Err(format!(
                        "it runs job(s) {} whose import failed",
                        unresolved
                            .iter()
                            .map(i64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                run.wrote();
                run.client
                    .jobs()
                    .reset(id, &settings)
                    .await
                    .map_err(|e| e.to_string())?;
                run.ledger.record(item.key.clone(), json!({ "job_id": id }));
                Ok(if was_placeholder {
                    Outcome::Created
                } else {
                    Outcome::Updated
                })
            }
        })
        .await;
    out.extend(results);
    out
}

/// Creates a job, making sure a lost answer never leads to a second job: before sending
/// again, the job is looked for by its source tag.
async fn create_job(
    run: &Run<'_>,
    source_id: i64,
    settings: &Map<String, Value>,
) -> Result<i64, String> {
    let tag = run.source.job_tag(source_id);
    let name = settings
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("Untitled")
        .to_string();
    let mut last = String::new();
    for attempt in 0..AMBIGUOUS_ATTEMPTS {
        if attempt > 0 {
            match find_job_by_tag(run.client, &name, &tag).await {
                Ok(Some(id)) => return Ok(id),
                Ok(None) => {}
                Err(e) => return Err(format!("looking for the job after a lost answer: {e}")),
            }
        }
        run.wrote();
        match run.client.jobs().create(settings).await {
            Ok(id) => return Ok(id),
            Err(e) if ambiguous(&e) => {
                last = e.to_string();
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

/// Rewrites every `run_job_task.job_id` of `settings` (source ids) through `ids`; ids not in
/// `ids` are left as they are.
pub fn substitute_job_refs(settings: &mut Map<String, Value>, ids: &BTreeMap<i64, i64>) {
    crate::model::job::substitute_run_job_ids(settings, ids);
}

/// Source job ids a job's settings reference through `run_job_task`, nested tasks included.
pub fn job_refs(settings: &Map<String, Value>) -> Vec<i64> {
    let mut out = crate::model::job::run_job_references(settings);
    out.sort();
    out.dedup();
    out
}

/// Reads a job record: its stored `jobs/get` answer (§6.2).
fn load(
    source: &mut SourceBundle,
    r: &Record,
    payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    let job = source.payload::<super::format::JobFile>(r, &payload)?;
    source.jobs.push(job);
    Ok(())
}
