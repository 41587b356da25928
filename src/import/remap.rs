//! Rewrites a job's settings for the target workspace: principals, notebook paths, cluster,
//! pool, policy and warehouse ids, references to other jobs, and schedules.
//!
//! Rewriting never guesses. Whatever cannot be mapped (an `existing_cluster_id` with no entry,
//! a principal the target lacks under the `fail` policy, a job reference to a job not in the
//! bundle) is returned as a [`Refusal`], so import can list every one before its first write.

use super::mapping::{ClusterTarget, Mapping, PrincipalOutcome};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a job cannot be replayed as it stands.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// A task runs on an existing cluster that the mapping file does not map.
    UnmappedCluster {
        /// The source cluster id.
        cluster_id: String,
    },
    /// A principal that is neither mapped nor known to the target.
    UnmappedPrincipal {
        /// The principal.
        principal: String,
    },
    /// A `run_job_task` points at a job that is neither in the bundle nor mapped.
    UnknownJobReference {
        /// The source job id.
        job_id: i64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnmappedCluster { cluster_id } => write!(
                f,
                "cluster {cluster_id} is not mapped (add it under [clusters] in the mapping file)"
            ),
            Refusal::UnmappedPrincipal { principal } => write!(
                f,
                "principal {principal} is not in the target and not mapped (add it under [principals], or set unmapped_principals)"
            ),
            Refusal::UnknownJobReference { job_id } => {
                write!(f, "run_job_task points at job {job_id}, which is not in the bundle")
            }
        }
    }
}

/// Something the rewrite changed or dropped that the report should show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note(pub String);

/// Everything a job rewrite needs to know about the target.
pub struct JobContext<'a> {
    /// The mapping file.
    pub mapping: &'a Mapping,
    /// Maps a principal named in the job; the second argument says where (`run_as`,
    /// `on_failure address`), for the report.
    pub map_principal: &'a dyn Fn(&str, &str) -> PrincipalOutcome,
    /// True for a notification address that is not a principal of the source workspace (a
    /// mailing list): such an address is kept as it is.
    pub is_external_address: &'a dyn Fn(&str) -> bool,
    /// Source job id → target job id, for jobs already created (or planned) in this import.
    pub job_ids: &'a BTreeMap<i64, i64>,
    /// Keep schedules, triggers and continuous runs as they were instead of pausing them.
    pub keep_schedules: bool,
    /// Value of the idempotency tag ([`crate::model::job::SOURCE_TAG`]) to set.
    pub source_tag: String,
}

/// The outcome of rewriting one job's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten {
    /// Settings ready for `jobs/create` or `jobs/reset`.
    pub settings: Map<String, Value>,
    /// What cannot be mapped; non-empty means the job must not be written.
    pub refusals: Vec<Refusal>,
    /// Changes worth reporting (dropped principals, paused schedules, inlined clusters).
    pub notes: Vec<Note>,
}

/// Rewrites `settings` (as exported, server fields already stripped) for the target.
///
/// `run_job_task` references are resolved through `ctx.job_ids`; a job whose references are not
/// known yet should be created after the jobs it points at (import orders jobs so), and a
/// reference cycle is handled by creating with a placeholder and resetting afterwards.
pub fn rewrite_job(settings: &Map<String, Value>, ctx: &JobContext<'_>) -> Rewritten {
    let mut s = settings.clone();
    let mut refusals = Vec::new();
    let mut notes = Vec::new();
    let m = ctx.mapping;

    // run_as: a principal.
    if let Some(Value::Object(run_as)) = s.get_mut("run_as") {
        for key in ["user_name", "group_name", "service_principal_name"] {
            if let Some(Value::String(p)) = run_as.get(key).cloned().as_ref() {
                match (ctx.map_principal)(p, "run_as") {
                    PrincipalOutcome::Use(to) => {
                        run_as.insert(key.into(), Value::String(to));
                    }
                    PrincipalOutcome::Drop => {
                        run_as.remove(key);
                        notes.push(Note(format!("run_as {p} dropped (unmapped principal)")));
                    }
                    PrincipalOutcome::Unmapped => refusals.push(Refusal::UnmappedPrincipal {
                        principal: p.clone(),
                    }),
                }
            }
        }
        if run_as.is_empty() {
            s.remove("run_as");
        }
    }

    // Notification addresses, at job and task level.
    rewrite_notifications(
        s.get_mut("email_notifications"),
        ctx,
        &mut refusals,
        &mut notes,
    );

    // Job clusters: pool, policy ids.
    if let Some(Value::Array(jcs)) = s.get_mut("job_clusters") {
        for jc in jcs.iter_mut() {
            if let Some(Value::Object(nc)) = jc.get_mut("new_cluster") {
                rewrite_cluster_spec(nc, m);
            }
        }
    }

    // Tasks.
    let mut added_job_clusters: Vec<Value> = Vec::new();
    crate::model::job::visit_tasks_mut(&mut s, |task| {
        rewrite_task(
            task,
            ctx,
            &mut added_job_clusters,
            &mut refusals,
            &mut notes,
        )
    });
    if !added_job_clusters.is_empty() {
        let jcs = s
            .entry("job_clusters")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = jcs {
            a.extend(added_job_clusters);
        }
    }

    // Schedules arrive paused, so a migrated job never runs before its owner says so.
    if !ctx.keep_schedules {
        for key in ["schedule", "trigger", "continuous"] {
            if let Some(Value::Object(o)) = s.get_mut(key) {
                if o.get("pause_status").and_then(Value::as_str) != Some("PAUSED") {
                    o.insert("pause_status".into(), Value::String("PAUSED".into()));
                    notes.push(Note(format!(
                        "{key} paused (use --keep-schedules to keep it)"
                    )));
                }
            }
        }
    }

    // The idempotency tag.
    let tags = s.entry("tags").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(t) = tags {
        t.insert(
            crate::model::job::SOURCE_TAG.into(),
            Value::String(ctx.source_tag.clone()),
        );
    }

    refusals.sort();
    refusals.dedup();
    Rewritten {
        settings: s,
        refusals,
        notes,
    }
}

/// Rewrites one task (the walker reaches the tasks a `for_each_task` runs).
fn rewrite_task(
    task: &mut Map<String, Value>,
    ctx: &JobContext<'_>,
    added_job_clusters: &mut Vec<Value>,
    refusals: &mut Vec<Refusal>,
    notes: &mut Vec<Note>,
) {
    let m = ctx.mapping;
    if let Some(Value::String(cid)) = task.get("existing_cluster_id").cloned().as_ref() {
        match m.cluster(cid) {
            Some(ClusterTarget::Existing(to)) => {
                task.insert("existing_cluster_id".into(), Value::String(to.clone()));
            }
            Some(ClusterTarget::NewCluster { new_cluster }) => {
                // Jobs share one job cluster per mapped source cluster, as tasks shared
                // the interactive cluster before.
                let key = format!("dbxport_{}", sanitize_key(cid));
                task.remove("existing_cluster_id");
                task.insert("job_cluster_key".into(), Value::String(key.clone()));
                if !added_job_clusters
                    .iter()
                    .any(|j| j["job_cluster_key"] == Value::String(key.clone()))
                {
                    let mut nc = new_cluster.clone();
                    rewrite_cluster_spec(&mut nc, m);
                    added_job_clusters.push(serde_json::json!({
                        "job_cluster_key": key,
                        "new_cluster": nc,
                    }));
                    notes.push(Note(format!(
                        "cluster {cid} replaced by job cluster {key} from the mapping file"
                    )));
                }
            }
            None => {
                let r = Refusal::UnmappedCluster {
                    cluster_id: cid.clone(),
                };
                if !refusals.contains(&r) {
                    refusals.push(r);
                }
            }
        }
    }
    if let Some(Value::Object(nc)) = task.get_mut("new_cluster") {
        rewrite_cluster_spec(nc, m);
    }
    if let Some(Value::Object(nt)) = task.get_mut("notebook_task") {
        let from_git = nt.get("source").and_then(Value::as_str) == Some("GIT");
        if !from_git {
            if let Some(Value::String(p)) = nt.get("notebook_path").cloned().as_ref() {
                nt.insert("notebook_path".into(), Value::String(m.path(p)));
            }
        }
        map_warehouse(nt, m);
    }
    for kind in ["spark_python_task", "python_wheel_task"] {
        if let Some(Value::Object(t)) = task.get_mut(kind) {
            if let Some(Value::String(p)) = t.get("python_file").cloned().as_ref() {
                if p.starts_with('/') {
                    t.insert("python_file".into(), Value::String(m.path(p)));
                }
            }
        }
    }
    if let Some(Value::Object(sql)) = task.get_mut("sql_task") {
        map_warehouse(sql, m);
        if let Some(Value::Object(file)) = sql.get_mut("file") {
            if let Some(Value::String(p)) = file.get("path").cloned().as_ref() {
                if p.starts_with('/') {
                    file.insert("path".into(), Value::String(m.path(p)));
                }
            }
        }
    }
    if let Some(Value::Object(dbt)) = task.get_mut("dbt_task") {
        map_warehouse(dbt, m);
    }
    if let Some(Value::Object(rj)) = task.get_mut("run_job_task") {
        if let Some(src) = rj.get("job_id").and_then(Value::as_i64) {
            match ctx.job_ids.get(&src) {
                Some(to) => {
                    rj.insert("job_id".into(), Value::from(*to));
                }
                None => refusals.push(Refusal::UnknownJobReference { job_id: src }),
            }
        }
    }
    rewrite_notifications(task.get_mut("email_notifications"), ctx, refusals, notes);
}

fn rewrite_notifications(
    v: Option<&mut Value>,
    ctx: &JobContext<'_>,
    refusals: &mut Vec<Refusal>,
    notes: &mut Vec<Note>,
) {
    let Some(Value::Object(en)) = v else { return };
    for (event, list) in en.iter_mut() {
        let Value::Array(addrs) = list else { continue };
        let mut kept = Vec::new();
        for a in addrs.drain(..) {
            let Some(addr) = a.as_str() else {
                kept.push(a);
                continue;
            };
            if (ctx.is_external_address)(addr) {
                kept.push(a);
                continue;
            }
            match (ctx.map_principal)(addr, &format!("{event} address")) {
                PrincipalOutcome::Use(to) => kept.push(Value::String(to)),
                PrincipalOutcome::Drop => {
                    notes.push(Note(format!("{event} address {addr} dropped (unmapped)")))
                }
                PrincipalOutcome::Unmapped => refusals.push(Refusal::UnmappedPrincipal {
                    principal: addr.to_string(),
                }),
            }
        }
        *addrs = kept;
    }
}

fn rewrite_cluster_spec(nc: &mut Map<String, Value>, m: &Mapping) {
    for (field, table) in [
        ("instance_pool_id", &m.instance_pools),
        ("driver_instance_pool_id", &m.instance_pools),
        ("policy_id", &m.policies),
    ] {
        if let Some(Value::String(id)) = nc.get(field).cloned().as_ref() {
            if let Some(to) = table.get(id) {
                nc.insert(field.into(), Value::String(to.clone()));
            }
        }
    }
    if let Some(Value::String(u)) = nc.get("single_user_name").cloned().as_ref() {
        if let Some(to) = m.mapped_principal(u) {
            nc.insert("single_user_name".into(), Value::String(to.to_string()));
        }
    }
}

fn map_warehouse(o: &mut Map<String, Value>, m: &Mapping) {
    if let Some(Value::String(id)) = o.get("warehouse_id").cloned().as_ref() {
        if let Some(to) = m.warehouses.get(id) {
            o.insert("warehouse_id".into(), Value::String(to.clone()));
        }
    }
}

fn sanitize_key(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> Mapping {
        Mapping::parse(
            r#"
[principals]
"alice@poc" = "alice@prod"
[paths]
"/Shared/poc" = "/Shared/prod"
[clusters]
"c-etl" = "c-prod-etl"
"c-ml" = { new_cluster = { spark_version = "15.4.x-scala2.12", num_workers = 1, instance_pool_id = "p-poc" } }
[instance_pools]
"p-poc" = "p-prod"
[warehouses]
"w-poc" = "w-prod"
"#,
            "t",
        )
        .unwrap()
    }

    type MapFn<'a> = dyn Fn(&str, &str) -> PrincipalOutcome + 'a;

    fn mapper(m: &Mapping) -> impl Fn(&str, &str) -> PrincipalOutcome + '_ {
        move |n: &str, _: &str| m.principal(n, &|n: &str| n == "bob@prod")
    }

    fn ctx<'a>(m: &'a Mapping, f: &'a MapFn<'a>, ids: &'a BTreeMap<i64, i64>) -> JobContext<'a> {
        JobContext {
            mapping: m,
            map_principal: f,
            is_external_address: &|a: &str| a.ends_with("@lists.example"),
            job_ids: ids,
            keep_schedules: false,
            source_tag: "ws1/10".into(),
        }
    }

    #[test]
    fn rewrites_every_reference() {
        let m = mapping();
        let ids = BTreeMap::from([(11, 911)]);
        let s = json!({
            "name": "nightly",
            "run_as": {"user_name": "alice@poc"},
            "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"},
            "email_notifications": {"on_failure": ["alice@poc", "bob@prod", "ops@lists.example"]},
            "tasks": [
                {"task_key": "a", "existing_cluster_id": "c-etl",
                 "notebook_task": {"notebook_path": "/Shared/poc/etl", "source": "WORKSPACE"}},
                {"task_key": "b", "existing_cluster_id": "c-ml",
                 "notebook_task": {"notebook_path": "/Users/alice@poc/train"}},
                {"task_key": "c", "run_job_task": {"job_id": 11}},
                {"task_key": "d", "sql_task": {"warehouse_id": "w-poc", "query": {"query_id": "q"}}}
            ]
        });
        let f = mapper(&m);
        let r = rewrite_job(s.as_object().unwrap(), &ctx(&m, &f, &ids));
        assert!(r.refusals.is_empty(), "{:?}", r.refusals);
        let o = Value::Object(r.settings);
        assert_eq!(o["run_as"]["user_name"], "alice@prod");
        assert_eq!(o["schedule"]["pause_status"], "PAUSED");
        assert_eq!(
            o["email_notifications"]["on_failure"],
            json!(["alice@prod", "bob@prod", "ops@lists.example"])
        );
        assert_eq!(o["tasks"][0]["existing_cluster_id"], "c-prod-etl");
        assert_eq!(
            o["tasks"][0]["notebook_task"]["notebook_path"],
            "/Shared/prod/etl"
        );
        assert_eq!(o["tasks"][1]["job_cluster_key"], "dbxport_c_ml");
        assert!(o["tasks"][1].get("existing_cluster_id").is_none());
        assert_eq!(
            o["tasks"][1]["notebook_task"]["notebook_path"],
            "/Users/alice@prod/train"
        );
        assert_eq!(
            o["job_clusters"][0]["new_cluster"]["instance_pool_id"],
            "p-prod"
        );
        assert_eq!(o["tasks"][2]["run_job_task"]["job_id"], 911);
        assert_eq!(o["tasks"][3]["sql_task"]["warehouse_id"], "w-prod");
        assert_eq!(o["tags"]["dbxport_source"], "ws1/10");
    }

    #[test]
    fn lists_every_refusal() {
        let m = mapping();
        let ids = BTreeMap::new();
        let s = json!({
            "run_as": {"user_name": "carol@poc"},
            "tasks": [
                {"task_key": "a", "existing_cluster_id": "c-unknown"},
                {"task_key": "b", "existing_cluster_id": "c-unknown"},
                {"task_key": "c", "run_job_task": {"job_id": 5}}
            ]
        });
        let f = mapper(&m);
        let r = rewrite_job(s.as_object().unwrap(), &ctx(&m, &f, &ids));
        assert_eq!(
            r.refusals,
            vec![
                Refusal::UnmappedCluster {
                    cluster_id: "c-unknown".into()
                },
                Refusal::UnmappedPrincipal {
                    principal: "carol@poc".into()
                },
                Refusal::UnknownJobReference { job_id: 5 },
            ]
        );
    }

    #[test]
    fn keep_schedules_leaves_them() {
        let m = Mapping::default();
        let ids = BTreeMap::new();
        let f = mapper(&m);
        let mut c = ctx(&m, &f, &ids);
        c.keep_schedules = true;
        let s = json!({"schedule": {"quartz_cron_expression": "x", "timezone_id": "UTC", "pause_status": "UNPAUSED"}});
        let r = rewrite_job(s.as_object().unwrap(), &c);
        assert_eq!(
            Value::Object(r.settings)["schedule"]["pause_status"],
            "UNPAUSED"
        );
    }
}
