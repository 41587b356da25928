//! Jobs 2.1 and 2.2 (`/api/2.{1,2}/jobs/*`): list (token and offset paging, `expand_tasks`),
//! get (2.2 pages arrays of more than 100 elements), create, reset, update, delete.
//!
//! Jobs 2.0 (`/api/2.0/jobs/*`, what older tools call) as real workspaces still serve it: a job
//! created in the single-task form (the task's fields — `notebook_task`, `existing_cluster_id`,
//! `libraries`, `max_retries`, … — at the level of the settings) is kept as a job of format
//! `SINGLE_TASK` whose one task holds those fields, and 2.0 reads show it in that form again; a
//! multi-task job reads the same in 2.0 as in 2.1 (its `tasks` whole, never paged), and 2.0
//! `list` answers every job at once unless a `limit` is given.
//!
//! Server defaults (`format`, empty notification objects, `timeout_seconds`, a task's `run_if`
//! and `notebook_task.source`, …) are filled when settings are stored, so every read shows them
//! and a dump holds the same settings a read returns.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::job::Job;
use crate::model::repo::canonical_provider;

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, read_page_token, Body, Ctx, Fields, Params};
use super::permissions::{parse_acl_list, single_owner};
use super::state::{JobState, Shared, State};

/// Elements of each array property per `jobs/get` page in 2.2, and per job in a 2.2 list.
pub(crate) const ARRAY_PAGE: usize = 100;

/// The array properties 2.2 pages.
const PAGED_ARRAYS: [&str; 4] = ["tasks", "job_clusters", "environments", "parameters"];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut r = Router::new();
    for v in ["2.1", "2.2"] {
        let v22 = v == "2.2";
        r = r
            .route(
                &format!("/api/{v}/jobs/list"),
                get(move |ctx: Ctx, p: Params| list(ctx, p, v22)),
            )
            .route(
                &format!("/api/{v}/jobs/get"),
                get(move |ctx: Ctx, p: Params| get_job(ctx, p, v22)),
            )
            .route(&format!("/api/{v}/jobs/create"), post(create))
            .route(&format!("/api/{v}/jobs/reset"), post(reset))
            .route(&format!("/api/{v}/jobs/update"), post(update))
            .route(&format!("/api/{v}/jobs/delete"), post(delete));
    }
    r.route("/api/2.0/jobs/list", get(list_v20))
        .route("/api/2.0/jobs/get", get(get_v20))
        .route("/api/2.0/jobs/create", post(create_v20))
        .route("/api/2.0/jobs/reset", post(reset_v20))
        .route("/api/2.0/jobs/update", post(update_v20))
        .route("/api/2.0/jobs/delete", post(delete))
}

/// The settings of a 2.0 single-task job that belong to its one task.
const SINGLE_TASK_FIELDS: [&str; 15] = [
    "existing_cluster_id",
    "new_cluster",
    "notebook_task",
    "spark_jar_task",
    "spark_python_task",
    "spark_submit_task",
    "pipeline_task",
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "run_job_task",
    "libraries",
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
];

/// The task key a single-task job's task gets: its name, in the characters task keys allow.
fn task_key_for(name: Option<&str>) -> String {
    let key: String = name
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if key.trim_matches('_').is_empty() {
        "task".to_string()
    } else {
        key
    }
}

/// Turns 2.0 settings into the stored form; true when they are in the single-task form (no
/// `tasks`), whose task fields then move into one task.
fn from_v20(s: &mut Map<String, Value>) -> bool {
    if s.get("tasks").is_some_and(|t| !t.is_null()) {
        return false;
    }
    let mut task = Map::new();
    for k in SINGLE_TASK_FIELDS {
        if let Some(v) = s.remove(k).filter(|v| !v.is_null()) {
            task.insert(k.to_string(), v);
        }
    }
    if !task.is_empty() {
        let key = task_key_for(s.get("name").and_then(Value::as_str));
        task.insert("task_key".into(), json!(key));
        s.insert("tasks".into(), json!([task]));
    }
    true
}

/// Normalises stored settings, keeping the single-task format when `single`.
fn normalize_as(s: &mut Map<String, Value>, single: bool) -> Result<(), ApiError> {
    normalize_settings(s)?;
    if single {
        s.insert("format".into(), json!("SINGLE_TASK"));
    }
    Ok(())
}

fn is_single(settings: &Map<String, Value>) -> bool {
    settings.get("format").and_then(Value::as_str) == Some("SINGLE_TASK")
}

/// Stored settings as 2.0 shows them: a single-task job's task fields back at the top.
fn to_v20(settings: &mut Map<String, Value>) {
    if !is_single(settings) {
        return;
    }
    if let Some(Value::Array(tasks)) = settings.remove("tasks") {
        if let Some(Value::Object(t)) = tasks.into_iter().next() {
            for (k, v) in t {
                if SINGLE_TASK_FIELDS.contains(&k.as_str()) {
                    settings.insert(k, v);
                }
            }
        }
    }
}

/// A job as 2.0 `get` and `list` show it.
fn job_v20(job: &Job) -> Value {
    let (mut o, _) = job_json(job, &[], View::Whole);
    if let Some(Value::Object(s)) = o.get_mut("settings") {
        to_v20(s);
    }
    Value::Object(o)
}

async fn get_v20(ctx: Ctx, p: Params) -> ApiResult {
    let id = p
        .i64("job_id")?
        .ok_or_else(|| ApiError::missing("job_id"))?;
    let st = ctx.state();
    let job = &find_job(&st, id)?.job;
    access::check_job(&st, &ctx.caller, id, "CAN_VIEW")?;
    Ok(extract::json(job_v20(job)))
}

async fn list_v20(ctx: Ctx, p: Params) -> ApiResult {
    let limit = match p.i64("limit")? {
        None | Some(0) => None,
        Some(l) if (1..=100).contains(&l) => Some(l as usize),
        Some(l) => {
            return Err(ApiError::invalid(format!(
                "Invalid limit {l}: it must be between 1 and 100"
            )))
        }
    };
    let offset = p.i64("offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid("offset must not be negative"));
    }
    let st = ctx.state();
    let admin = access::is_admin(&st, &ctx.caller);
    let all: Vec<&Job> = st
        .jobs
        .values()
        .map(|j| &j.job)
        .filter(|j| admin || access::can_job(&st, &ctx.caller, j.job_id, "CAN_VIEW"))
        .collect();
    let start = (offset as usize).min(all.len());
    let end = limit.map_or(all.len(), |l| (start + l).min(all.len()));
    let jobs: Vec<Value> = all[start..end].iter().map(|j| job_v20(j)).collect();
    let mut out = Map::new();
    if !jobs.is_empty() {
        out.insert("jobs".into(), Value::Array(jobs));
    }
    out.insert("has_more".into(), json!(end < all.len()));
    Ok(extract::json(Value::Object(out)))
}

async fn create_v20(ctx: Ctx, Body(mut b): Body) -> ApiResult {
    let acl = b.remove("access_control_list");
    let single = from_v20(&mut b);
    create_stored(ctx, b, acl, single)
}

async fn reset_v20(ctx: Ctx, Body(mut b): Body) -> ApiResult {
    if let Some(Value::Object(new)) = b.get_mut("new_settings") {
        let single = from_v20(new);
        return reset_stored(ctx, b, single);
    }
    reset_stored(ctx, b, false)
}

async fn update_v20(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_i64("job_id")?;
    let single = {
        let st = ctx.state();
        is_single(&find_job(&st, id)?.job.settings)
    };
    if !single {
        return update(ctx, Body(b)).await;
    }
    // A single-task job is updated in the 2.0 form: its fields sit at the top.
    let new = b.opt_object("new_settings")?.cloned().unwrap_or_default();
    let remove: Vec<String> = b
        .opt_array("fields_to_remove")?
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut st = ctx.state();
    access::check_job(&st, &ctx.caller, id, "CAN_MANAGE")?;
    let job = &mut st.jobs.get_mut(&id).ok_or_else(|| missing(id))?.job;
    let mut settings = job.settings.clone();
    to_v20(&mut settings);
    settings.remove("format");
    for (k, v) in new {
        settings.insert(k, v);
    }
    for f in remove {
        settings.remove(&f);
    }
    let single = from_v20(&mut settings);
    normalize_as(&mut settings, single)?;
    job.settings = settings;
    Ok(extract::empty())
}

pub(crate) fn missing(id: i64) -> ApiError {
    // Real workspaces answer an unknown job id with this 400 (the SDK maps it to NotFound).
    ApiError::invalid(format!("Job {id} does not exist."))
}

fn obj_mut<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

fn set_default(m: &mut Map<String, Value>, key: &str, v: Value) {
    if !m.contains_key(key) || m.get(key) == Some(&Value::Null) {
        m.insert(key.to_string(), v);
    }
}

/// Validates job settings and fills the server defaults.
pub(crate) fn normalize_settings(s: &mut Map<String, Value>) -> Result<(), ApiError> {
    s.remove("format");
    s.retain(|_, v| !v.is_null());
    if let Some(name) = s.get("name") {
        let name = name
            .as_str()
            .ok_or_else(|| ApiError::invalid("Job name must be a string"))?;
        if name.len() > 4096 {
            return Err(ApiError::invalid("Job name must be at most 4096 bytes"));
        }
    }
    set_default(s, "name", json!("Untitled"));
    set_default(s, "email_notifications", json!({}));
    set_default(s, "webhook_notifications", json!({}));
    set_default(s, "timeout_seconds", json!(0));
    set_default(s, "max_concurrent_runs", json!(1));
    s.insert("format".into(), json!("MULTI_TASK"));

    let has_git = if let Some(g) = obj_mut(s, "git_source") {
        if g.opt_str("git_url")?.is_none_or(str::is_empty) {
            return Err(ApiError::invalid("git_source.git_url is required"));
        }
        let p = g
            .opt_str("git_provider")?
            .ok_or_else(|| ApiError::invalid("git_source.git_provider is required"))?;
        let canon = canonical_provider(p)
            .ok_or_else(|| ApiError::invalid(format!("Invalid git provider: {p}")))?;
        g.insert("git_provider".into(), json!(canon));
        let refs = ["git_branch", "git_tag", "git_commit"]
            .iter()
            .filter(|k| g.contains_key(**k))
            .count();
        if refs > 1 {
            return Err(ApiError::invalid(
                "Only one of git_branch, git_tag and git_commit can be given in git_source",
            ));
        }
        true
    } else {
        false
    };

    if let Some(sch) = obj_mut(s, "schedule") {
        sch.req_str("quartz_cron_expression")
            .map_err(|_| ApiError::invalid("schedule.quartz_cron_expression is required"))?;
        sch.req_str("timezone_id")
            .map_err(|_| ApiError::invalid("schedule.timezone_id is required"))?;
        set_default(sch, "pause_status", json!("UNPAUSED"));
    }
    if let Some(tags) = s.get("tags").and_then(Value::as_object) {
        if tags.len() > 25 {
            return Err(ApiError::invalid("A job can have at most 25 tags"));
        }
    }

    let mut cluster_keys = Vec::new();
    if let Some(jcs) = s.get("job_clusters") {
        let jcs = jcs
            .as_array()
            .ok_or_else(|| ApiError::invalid("job_clusters must be an array"))?;
        for jc in jcs {
            let key = jc
                .get("job_cluster_key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid("job_cluster_key is required for each job cluster")
                })?;
            if cluster_keys.contains(&key.to_string()) {
                return Err(ApiError::invalid(format!(
                    "Job cluster key {key} is used more than once"
                )));
            }
            cluster_keys.push(key.to_string());
        }
    }

    if let Some(tasks) = s.get_mut("tasks") {
        let tasks = tasks
            .as_array_mut()
            .ok_or_else(|| ApiError::invalid("tasks must be an array"))?;
        if tasks.len() > 1000 {
            return Err(ApiError::invalid("A job can have at most 1000 tasks"));
        }
        let mut keys: Vec<String> = Vec::new();
        for t in tasks.iter() {
            let key = t
                .get("task_key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| ApiError::invalid("task_key is required for each task"))?;
            if keys.iter().any(|k| k == key) {
                return Err(ApiError::invalid(format!(
                    "Task key {key} is used more than once"
                )));
            }
            keys.push(key.to_string());
        }
        for t in tasks.iter_mut() {
            let t = t
                .as_object_mut()
                .ok_or_else(|| ApiError::invalid("each task must be an object"))?;
            t.retain(|_, v| !v.is_null());
            let key = t.req_str("task_key")?.to_string();
            for d in t.opt_array("depends_on")?.into_iter().flatten() {
                let dk = d.get("task_key").and_then(Value::as_str).unwrap_or("");
                if !keys.iter().any(|k| k == dk) || dk == key {
                    return Err(ApiError::invalid(format!(
                        "Task {key} depends on {dk}, which is not a task of this job"
                    )));
                }
            }
            if let Some(jck) = t.opt_str("job_cluster_key")? {
                if !cluster_keys.iter().any(|k| k == jck) {
                    return Err(ApiError::invalid(format!(
                        "Task {key} uses job cluster {jck}, which is not defined in job_clusters"
                    )));
                }
            }
            set_default(t, "run_if", json!("ALL_SUCCESS"));
            set_default(t, "timeout_seconds", json!(0));
            set_default(t, "email_notifications", json!({}));
            if let Some(nt) = obj_mut(t, "notebook_task") {
                if nt.opt_str("notebook_path")?.is_none_or(str::is_empty) {
                    return Err(ApiError::invalid(format!(
                        "Task {key}: notebook_task.notebook_path is required"
                    )));
                }
                let source = if has_git { "GIT" } else { "WORKSPACE" };
                set_default(nt, "source", json!(source));
            }
        }
    }
    Ok(())
}

fn run_as_user(job: &Job) -> Option<String> {
    let ra = job.settings.get("run_as").and_then(Value::as_object);
    ra.and_then(|r| {
        r.get("user_name")
            .or_else(|| r.get("service_principal_name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    })
    .or_else(|| job.creator_user_name.clone())
}

/// How the array properties of a job's settings are shown.
#[derive(Clone, Copy)]
enum View {
    /// Whole (2.1).
    Whole,
    /// Left out (a list without `expand_tasks`).
    Without,
    /// One page of [`ARRAY_PAGE`] elements (2.2).
    Page(usize),
}

/// The job as `jobs/get` returns it, with the arrays named by `keys` shown as `view` says, and
/// whether any of them has more elements than shown. Copies only what it shows, so that listing
/// jobs with many tasks stays cheap.
fn job_json(job: &Job, keys: &[&str], view: View) -> (Map<String, Value>, bool) {
    let mut o = Map::new();
    o.insert("job_id".into(), json!(job.job_id));
    if let Some(c) = &job.creator_user_name {
        o.insert("creator_user_name".into(), json!(c));
    }
    if let Some(r) = run_as_user(job) {
        o.insert("run_as_user_name".into(), json!(r));
    }
    if let Some(t) = job.created_time {
        o.insert("created_time".into(), json!(t));
    }
    let mut settings = Map::new();
    let mut more = false;
    for (k, v) in &job.settings {
        if !keys.contains(&k.as_str()) {
            settings.insert(k.clone(), v.clone());
            continue;
        }
        match (view, v) {
            (View::Without, _) => {}
            (View::Page(page), Value::Array(a)) => {
                let start = (page * ARRAY_PAGE).min(a.len());
                let end = (start + ARRAY_PAGE).min(a.len());
                more |= end < a.len();
                settings.insert(k.clone(), Value::Array(a[start..end].to_vec()));
            }
            _ => {
                settings.insert(k.clone(), v.clone());
            }
        }
    }
    o.insert("settings".into(), Value::Object(settings));
    (o, more)
}

fn find_job(st: &State, id: i64) -> Result<&JobState, ApiError> {
    st.jobs.get(&id).ok_or_else(|| missing(id))
}

async fn get_job(ctx: Ctx, p: Params, v22: bool) -> ApiResult {
    let id = p
        .i64("job_id")?
        .ok_or_else(|| ApiError::missing("job_id"))?;
    let page = match p.get("page_token") {
        None | Some("") => 0usize,
        Some(t) => read_page_token(t)?
            .strip_prefix("page:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::invalid(format!("Invalid page token: {t}")))?,
    };
    let st = ctx.state();
    let job = &find_job(&st, id)?.job;
    access::check_job(&st, &ctx.caller, id, "CAN_VIEW")?;
    let view = if v22 { View::Page(page) } else { View::Whole };
    let (mut o, more) = job_json(job, &PAGED_ARRAYS, view);
    // The last page carries no token at all: clients loop while one is present.
    if more {
        o.insert(
            "next_page_token".into(),
            json!(extract::page_token(&format!("page:{}", page + 1))),
        );
    }
    Ok(extract::json(Value::Object(o)))
}

async fn list(ctx: Ctx, p: Params, v22: bool) -> ApiResult {
    let limit = match p.i64("limit")? {
        None | Some(0) => 20usize,
        Some(l) if (1..=100).contains(&l) => l as usize,
        Some(l) => {
            return Err(ApiError::invalid(format!(
                "Invalid limit {l}: it must be between 1 and 100"
            )))
        }
    };
    let offset = p.i64("offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid("offset must not be negative"));
    }
    let expand = p.bool("expand_tasks")?.unwrap_or(false);
    let name = p.get("name").filter(|n| !n.is_empty());
    let st = ctx.state();
    let admin = access::is_admin(&st, &ctx.caller);
    let all: Vec<&Job> = st
        .jobs
        .values()
        .map(|j| &j.job)
        .filter(|j| admin || access::can_job(&st, &ctx.caller, j.job_id, "CAN_VIEW"))
        .filter(|j| {
            name.is_none_or(|n| {
                j.settings
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|jn| jn.eq_ignore_ascii_case(n))
            })
        })
        .collect();
    let (start, end) = match p.get("page_token").filter(|t| !t.is_empty()) {
        Some(t) => {
            let tok = read_page_token(t)?;
            if let Some(after) = tok
                .strip_prefix("next:")
                .and_then(|x| x.parse::<i64>().ok())
            {
                let s = all
                    .iter()
                    .position(|j| j.job_id > after)
                    .unwrap_or(all.len());
                (s, (s + limit).min(all.len()))
            } else if let Some(before) = tok
                .strip_prefix("prev:")
                .and_then(|x| x.parse::<i64>().ok())
            {
                let e = all
                    .iter()
                    .position(|j| j.job_id >= before)
                    .unwrap_or(all.len());
                (e.saturating_sub(limit), e)
            } else {
                return Err(ApiError::invalid(format!("Invalid page token: {t}")));
            }
        }
        None => {
            let s = (offset as usize).min(all.len());
            (s, (s + limit).min(all.len()))
        }
    };
    let jobs: Vec<Value> = all[start..end]
        .iter()
        .map(|j| {
            let view = match (expand, v22) {
                (false, _) => View::Without,
                (true, true) => View::Page(0),
                (true, false) => View::Whole,
            };
            let (mut o, truncated) = job_json(j, &["tasks", "job_clusters"], view);
            o.remove("run_as_user_name");
            if expand && v22 {
                o.insert("has_more".into(), json!(truncated));
            }
            Value::Object(o)
        })
        .collect();
    let mut out = Map::new();
    let has_more = end < all.len();
    if !jobs.is_empty() {
        out.insert("jobs".into(), Value::Array(jobs));
    }
    out.insert("has_more".into(), json!(has_more));
    if has_more && end > 0 {
        out.insert(
            "next_page_token".into(),
            json!(extract::page_token(&format!(
                "next:{}",
                all[end - 1].job_id
            ))),
        );
    }
    if start > 0 && start < all.len() {
        out.insert(
            "prev_page_token".into(),
            json!(extract::page_token(&format!("prev:{}", all[start].job_id))),
        );
    }
    Ok(extract::json(Value::Object(out)))
}

async fn create(ctx: Ctx, Body(mut b): Body) -> ApiResult {
    let acl = b.remove("access_control_list");
    create_stored(ctx, b, acl, false)
}

/// Creates a job from stored-form settings `b`.
fn create_stored(
    ctx: Ctx,
    mut b: Map<String, Value>,
    acl_value: Option<Value>,
    single: bool,
) -> ApiResult {
    normalize_as(&mut b, single)?;
    let caller = ctx.caller.clone();
    let mut st = ctx.state();
    let mut acl = match &acl_value {
        Some(v) if !v.is_null() => parse_acl_list(&st, v, "jobs")?,
        _ => Vec::new(),
    };
    if !acl.iter().any(|a| a.permission_level == "IS_OWNER") {
        acl.insert(
            0,
            crate::model::permissions::AccessControlRequest {
                principal: caller.principal(),
                permission_level: "IS_OWNER".into(),
            },
        );
    }
    single_owner(&acl)?;
    let id = st.ids.next_job_id;
    st.ids.next_job_id += 1;
    let now = st.now();
    let job = Job {
        job_id: id,
        creator_user_name: Some(caller.name().to_string()),
        run_as_user_name: None,
        created_time: Some(now),
        settings: b,
    };
    st.jobs.insert(id, JobState { job, acl });
    Ok(extract::json(json!({ "job_id": id })))
}

async fn reset(ctx: Ctx, Body(b): Body) -> ApiResult {
    reset_stored(ctx, b, false)
}

/// Replaces a job's settings with the stored-form `new_settings` of `b`.
fn reset_stored(ctx: Ctx, b: Map<String, Value>, single: bool) -> ApiResult {
    let id = b.req_i64("job_id")?;
    let mut new = b
        .opt_object("new_settings")?
        .cloned()
        .ok_or_else(|| ApiError::missing("new_settings"))?;
    let mut st = ctx.state();
    find_job(&st, id)?;
    access::check_job(&st, &ctx.caller, id, "CAN_MANAGE")?;
    let job = &mut st.jobs.get_mut(&id).ok_or_else(|| missing(id))?.job;
    // Omitting run_as keeps the identity the job already runs as.
    if !new.contains_key("run_as") {
        if let Some(ra) = job.settings.get("run_as") {
            new.insert("run_as".into(), ra.clone());
        }
    }
    normalize_as(&mut new, single)?;
    job.settings = new;
    Ok(extract::empty())
}

/// Merges `new` into `old` keyed by `key` (an element with a known key replaces it).
fn merge_keyed(old: &mut Vec<Value>, new: &[Value], key: &str) {
    for n in new {
        let k = n.get(key).and_then(Value::as_str);
        match old
            .iter_mut()
            .find(|o| k.is_some() && o.get(key).and_then(Value::as_str) == k)
        {
            Some(o) => *o = n.clone(),
            None => old.push(n.clone()),
        }
    }
}

fn array_key(field: &str) -> Option<&'static str> {
    match field {
        "tasks" => Some("task_key"),
        "job_clusters" => Some("job_cluster_key"),
        "parameters" => Some("name"),
        "environments" => Some("environment_key"),
        _ => None,
    }
}

async fn update(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_i64("job_id")?;
    let new = b.opt_object("new_settings")?.cloned().unwrap_or_default();
    let remove: Vec<String> = b
        .opt_array("fields_to_remove")?
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut st = ctx.state();
    find_job(&st, id)?;
    access::check_job(&st, &ctx.caller, id, "CAN_MANAGE")?;
    let job = &mut st.jobs.get_mut(&id).ok_or_else(|| missing(id))?.job;
    let mut settings = job.settings.clone();
    for (k, v) in new {
        match (array_key(&k), settings.get_mut(&k), &v) {
            (Some(key), Some(Value::Array(old)), Value::Array(newer)) => {
                merge_keyed(old, newer, key)
            }
            _ => {
                settings.insert(k, v);
            }
        }
    }
    for f in remove {
        match f.split_once('/') {
            Some((field, item)) => {
                let key = array_key(field)
                    .ok_or_else(|| ApiError::invalid(format!("Invalid field to remove: {f}")))?;
                if let Some(Value::Array(a)) = settings.get_mut(field) {
                    a.retain(|e| e.get(key).and_then(Value::as_str) != Some(item));
                }
            }
            None => {
                settings.remove(&f);
            }
        }
    }
    normalize_settings(&mut settings)?;
    job.settings = settings;
    Ok(extract::empty())
}

async fn delete(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_i64("job_id")?;
    let mut st = ctx.state();
    find_job(&st, id)?;
    access::check_job(&st, &ctx.caller, id, "CAN_MANAGE")?;
    st.jobs.remove(&id);
    Ok(extract::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_filled() {
        let mut s =
            json!({"name": "n", "git_source": {"git_url": "https://x", "git_provider": "github"},
            "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "nb"}},
                      {"task_key": "b", "depends_on": [{"task_key": "a"}]}]})
            .as_object()
            .unwrap()
            .clone();
        normalize_settings(&mut s).unwrap();
        assert_eq!(s["format"], "MULTI_TASK");
        assert_eq!(s["email_notifications"], json!({}));
        assert_eq!(s["git_source"]["git_provider"], "gitHub");
        assert_eq!(s["tasks"][0]["notebook_task"]["source"], "GIT");
        assert_eq!(s["tasks"][1]["run_if"], "ALL_SUCCESS");
        let again = s.clone();
        normalize_settings(&mut s).unwrap();
        assert_eq!(s, again, "normalising twice changes nothing");
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            json!({"tasks": [{"task_key": "a"}, {"task_key": "a"}]}),
            json!({"tasks": [{"task_key": "a", "depends_on": [{"task_key": "x"}]}]}),
            json!({"git_source": {"git_url": "https://x"}}),
            json!({"schedule": {"quartz_cron_expression": "0 0 * * * ?"}}),
            json!({"tasks": [{"task_key": "a", "job_cluster_key": "nope"}]}),
        ] {
            let mut s = bad.as_object().unwrap().clone();
            assert!(normalize_settings(&mut s).is_err(), "{bad}");
        }
    }

    #[test]
    fn single_task_form_round_trips() {
        let v20 = json!({"name": "Nightly ETL (v2)", "existing_cluster_id": "c-1",
            "notebook_task": {"notebook_path": "/Shared/etl"}, "max_retries": 2,
            "libraries": [{"pypi": {"package": "x"}}], "timeout_seconds": 60});
        let mut s = v20.as_object().unwrap().clone();
        assert!(from_v20(&mut s));
        normalize_as(&mut s, true).unwrap();
        assert_eq!(s["format"], "SINGLE_TASK");
        assert_eq!(s["tasks"][0]["task_key"], "Nightly_ETL__v2_");
        assert_eq!(s["tasks"][0]["existing_cluster_id"], "c-1");
        assert_eq!(
            s["timeout_seconds"], 60,
            "the job's timeout stays the job's"
        );
        let mut back = s.clone();
        to_v20(&mut back);
        assert!(!back.contains_key("tasks"));
        for k in ["existing_cluster_id", "max_retries", "libraries", "name"] {
            assert_eq!(back[k], v20[k], "{k}");
        }
        assert_eq!(back["notebook_task"]["notebook_path"], "/Shared/etl");
        let mut multi = json!({"name": "m", "tasks": [{"task_key": "a"}]})
            .as_object()
            .unwrap()
            .clone();
        assert!(
            !from_v20(&mut multi),
            "a tasks array is the multi-task form"
        );
    }
}
