//! The endpoints older tools (the legacy `databricks-cli`, scripts written for it) still call:
//! the 2.0 groups API (`/api/2.0/groups/*`), personal access tokens (`/api/2.0/token/*`),
//! instance profiles, cluster libraries, and job runs (`jobs/run-now`, `jobs/runs/*` in 2.0, 2.1
//! and 2.2).
//!
//! Nothing runs: a run and a library installation move one step through their life cycle each
//! time they are read (`PENDING` → `RUNNING` → `TERMINATED`/`SUCCESS` for a run; `PENDING` →
//! `INSTALLING` → `INSTALLED` for a library on a running cluster), so a client that polls sees
//! the transitions real workspaces go through, in a fixed order.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::principal::{Group, ScimRef};

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, Body, Caller, Ctx, Fields, Params};
use super::state::{Shared, State, TokenGrant};

/// What the endpoints of this module keep between requests.
#[derive(Debug, Default)]
pub(crate) struct Legacy {
    /// Job runs by run id.
    pub runs: BTreeMap<i64, Run>,
    /// The last run id handed out (0: none yet).
    pub last_run_id: i64,
    /// Libraries by cluster id, in installation order.
    pub libraries: BTreeMap<String, Vec<Library>>,
    /// Registered instance profiles, as `instance-profiles/add` was given them.
    pub instance_profiles: Vec<Map<String, Value>>,
}

/// One run of a job.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub run_id: i64,
    pub job_id: i64,
    pub number_in_job: i64,
    pub creator_user_name: String,
    pub run_name: String,
    pub start_time: i64,
    /// 0 pending, 1 running, 2 terminated.
    pub step: u8,
    pub cancelled: bool,
    /// The tasks of the job when the run started (task keys and task types).
    pub tasks: Vec<Value>,
    /// `notebook_params`, `jar_params`, `job_parameters`, … as run-now was given them.
    pub overriding: Map<String, Value>,
}

/// One library on one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Library {
    pub library: Value,
    pub status: LibraryStatus,
}

/// Where a library is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LibraryStatus {
    Pending,
    Installing,
    Installed,
    UninstallOnRestart,
}

impl LibraryStatus {
    fn wire(self) -> &'static str {
        match self {
            LibraryStatus::Pending => "PENDING",
            LibraryStatus::Installing => "INSTALLING",
            LibraryStatus::Installed => "INSTALLED",
            LibraryStatus::UninstallOnRestart => "UNINSTALL_ON_RESTART",
        }
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut r = Router::new()
        .route("/api/2.0/groups/create", post(group_create))
        .route("/api/2.0/groups/list", get(group_list))
        .route("/api/2.0/groups/list-members", get(group_members))
        .route("/api/2.0/groups/add-member", post(group_add))
        .route("/api/2.0/groups/remove-member", post(group_remove))
        .route("/api/2.0/groups/delete", post(group_delete))
        .route("/api/2.0/groups/list-parents", get(group_parents))
        .route("/api/2.0/token/create", post(token_create))
        .route("/api/2.0/token/list", get(token_list))
        .route("/api/2.0/token/delete", post(token_delete))
        .route("/api/2.0/instance-profiles/list", get(profiles_list))
        .route("/api/2.0/instance-profiles/add", post(profiles_add))
        .route("/api/2.0/instance-profiles/remove", post(profiles_remove))
        .route("/api/2.0/libraries/cluster-status", get(library_status))
        .route(
            "/api/2.0/libraries/all-cluster-statuses",
            get(all_library_statuses),
        )
        .route("/api/2.0/libraries/install", post(library_install))
        .route("/api/2.0/libraries/uninstall", post(library_uninstall));
    for v in ["2.0", "2.1", "2.2"] {
        r = r
            .route(&format!("/api/{v}/jobs/run-now"), post(run_now))
            .route(&format!("/api/{v}/jobs/runs/get"), get(run_get))
            .route(&format!("/api/{v}/jobs/runs/list"), get(run_list))
            .route(&format!("/api/{v}/jobs/runs/cancel"), post(run_cancel));
    }
    r
}

fn require_admin(st: &State, caller: &Caller) -> Result<(), ApiError> {
    if access::is_admin(st, caller) {
        Ok(())
    } else {
        Err(ApiError::denied(format!(
            "{} is not an administrator of this workspace; only administrators can do this.",
            caller.name()
        )))
    }
}

// ---- The 2.0 groups API -------------------------------------------------------------------

fn no_group(name: &str) -> ApiError {
    ApiError::not_found(format!("Group {name} does not exist."))
}

fn group_index(st: &State, name: &str) -> Result<usize, ApiError> {
    st.principals
        .groups
        .iter()
        .position(|g| g.display_name == name)
        .ok_or_else(|| no_group(name))
}

/// The member a `user_name` / `group_name` / `service_principal_name` field names, as a SCIM
/// reference to its id.
fn member_ref(st: &State, b: &Map<String, Value>) -> Result<ScimRef, ApiError> {
    let user = b.opt_str("user_name")?.filter(|s| !s.is_empty());
    let group = b.opt_str("group_name")?.filter(|s| !s.is_empty());
    let sp = b
        .opt_str("service_principal_name")?
        .filter(|s| !s.is_empty());
    let found = match (user, group, sp) {
        (Some(u), None, None) => st
            .principals
            .users
            .iter()
            .find(|x| x.user_name == u)
            .map(|x| (x.id.clone(), x.user_name.clone()))
            .ok_or_else(|| ApiError::not_found(format!("User {u} does not exist."))),
        (None, Some(g), None) => st
            .principals
            .groups
            .iter()
            .find(|x| x.display_name == g)
            .map(|x| (x.id.clone(), x.display_name.clone()))
            .ok_or_else(|| no_group(g)),
        (None, None, Some(a)) => st
            .principals
            .service_principals
            .iter()
            .find(|x| x.application_id == a)
            .map(|x| (x.id.clone(), x.application_id.clone()))
            .ok_or_else(|| ApiError::not_found(format!("Service principal {a} does not exist."))),
        _ => Err(ApiError::invalid(
            "Exactly one of user_name, group_name and service_principal_name must be given",
        )),
    }?;
    Ok(ScimRef {
        value: found.0,
        display: Some(found.1),
        primary: None,
    })
}

/// The 2.0 API's name for a member id: `{"user_name": …}`, `{"group_name": …}` or
/// `{"service_principal_name": …}`.
fn member_json(st: &State, id: &str) -> Option<Value> {
    if let Some(u) = st.principals.users.iter().find(|u| u.id == id) {
        return Some(json!({"user_name": u.user_name}));
    }
    if let Some(g) = st.principals.groups.iter().find(|g| g.id == id) {
        return Some(json!({"group_name": g.display_name}));
    }
    st.principals
        .service_principals
        .iter()
        .find(|s| s.id == id)
        .map(|s| json!({"service_principal_name": s.application_id}))
}

async fn group_create(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("group_name")?.to_string();
    let mut st = ctx.state();
    require_admin(&st, &ctx.caller)?;
    if st.principals.groups.iter().any(|g| g.display_name == name) {
        return Err(ApiError::exists(format!("Group {name} already exists.")));
    }
    let id = st.next_object_id().to_string();
    st.principals.groups.push(Group {
        id,
        display_name: name.clone(),
        members: Vec::new(),
        entitlements: Vec::new(),
    });
    Ok(extract::json(json!({ "group_name": name })))
}

async fn group_list(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    let names: Vec<&str> = st
        .principals
        .groups
        .iter()
        .map(|g| g.display_name.as_str())
        .collect();
    Ok(extract::json(json!({ "group_names": names })))
}

async fn group_members(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("group_name")?;
    let st = ctx.state();
    let g = &st.principals.groups[group_index(&st, name)?];
    let members: Vec<Value> = g
        .members
        .iter()
        .filter_map(|m| member_json(&st, &m.value))
        .collect();
    Ok(extract::json(json!({ "members": members })))
}

async fn group_add(ctx: Ctx, Body(b): Body) -> ApiResult {
    let parent = b.req_str("parent_name")?;
    let mut st = ctx.state();
    require_admin(&st, &ctx.caller)?;
    let gi = group_index(&st, parent)?;
    let member = member_ref(&st, &b)?;
    if member.value == st.principals.groups[gi].id {
        return Err(ApiError::invalid(format!(
            "Group {parent} cannot be a member of itself."
        )));
    }
    let g = &mut st.principals.groups[gi];
    if !g.members.iter().any(|m| m.value == member.value) {
        g.members.push(member);
    }
    Ok(extract::empty())
}

async fn group_remove(ctx: Ctx, Body(b): Body) -> ApiResult {
    let parent = b.req_str("parent_name")?;
    let mut st = ctx.state();
    require_admin(&st, &ctx.caller)?;
    let gi = group_index(&st, parent)?;
    let member = member_ref(&st, &b)?;
    let g = &mut st.principals.groups[gi];
    let before = g.members.len();
    g.members.retain(|m| m.value != member.value);
    if g.members.len() == before {
        return Err(ApiError::not_found(format!(
            "{} is not a member of group {parent}.",
            member.display.unwrap_or_default()
        )));
    }
    Ok(extract::empty())
}

async fn group_delete(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("group_name")?;
    let mut st = ctx.state();
    require_admin(&st, &ctx.caller)?;
    if name == "admins" || name == "users" {
        return Err(ApiError::invalid(format!(
            "The {name} group is a system group and cannot be deleted."
        )));
    }
    let gi = group_index(&st, name)?;
    let id = st.principals.groups.remove(gi).id;
    for g in &mut st.principals.groups {
        g.members.retain(|m| m.value != id);
    }
    Ok(extract::empty())
}

async fn group_parents(ctx: Ctx, p: Params) -> ApiResult {
    let mut b = Map::new();
    p.merge_into(&mut b);
    let st = ctx.state();
    let member = member_ref(&st, &b)?;
    let names: Vec<&str> = st
        .principals
        .groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m.value == member.value))
        .map(|g| g.display_name.as_str())
        .collect();
    Ok(extract::json(json!({ "group_names": names })))
}

// ---- Personal access tokens ---------------------------------------------------------------

fn token_info(t: &TokenGrant) -> Value {
    let mut o = Map::new();
    o.insert("token_id".into(), json!(t.token_id));
    if let Some(c) = t.creation_time {
        o.insert("creation_time".into(), json!(c));
    }
    o.insert("expiry_time".into(), json!(t.expiry_time));
    if let Some(c) = &t.comment {
        o.insert("comment".into(), json!(c));
    }
    Value::Object(o)
}

fn token_owner(caller: &Caller) -> Result<&str, ApiError> {
    match caller {
        Caller::User(n) => Ok(n),
        Caller::ServicePrincipal(a) => Err(ApiError::invalid(format!(
            "Service principal {a} signed in with OAuth; the emulator keeps personal access \
             tokens for users only."
        ))),
    }
}

async fn token_create(ctx: Ctx, Body(b): Body) -> ApiResult {
    let lifetime = b.opt_i64("lifetime_seconds")?;
    let comment = b.opt_str("comment")?.map(str::to_string);
    let owner = token_owner(&ctx.caller)?.to_string();
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("no randomness for a new token: {e}"),
        )
    })?;
    let value = format!("dapi{}", hex::encode(raw));
    let mut st = ctx.state();
    let now = st.now();
    let mut grant = TokenGrant::new(value.clone(), owner);
    grant.comment = comment;
    grant.creation_time = Some(now);
    grant.expiry_time = match lifetime {
        None | Some(0) => -1,
        Some(s) if s < 0 => -1,
        Some(s) => now + s * 1000,
    };
    let info = token_info(&grant);
    st.tokens.push(grant);
    // The value is in this answer only; it is never stored elsewhere nor logged.
    Ok(extract::json(
        json!({ "token_value": value, "token_info": info }),
    ))
}

async fn token_list(ctx: Ctx) -> ApiResult {
    let owner = token_owner(&ctx.caller)?;
    let st = ctx.state();
    let infos: Vec<Value> = st
        .tokens
        .iter()
        .filter(|t| t.user_name == owner)
        .map(token_info)
        .collect();
    Ok(extract::json(json!({ "token_infos": infos })))
}

async fn token_delete(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_str("token_id")?.to_string();
    let owner = token_owner(&ctx.caller)?.to_string();
    let mut st = ctx.state();
    let admin = access::is_admin(&st, &ctx.caller);
    let pos = st
        .tokens
        .iter()
        .position(|t| t.token_id == id && (t.user_name == owner || admin))
        .ok_or_else(|| ApiError::not_found(format!("Token with id {id} does not exist.")))?;
    st.tokens.remove(pos);
    Ok(extract::empty())
}

// ---- Instance profiles --------------------------------------------------------------------

async fn profiles_list(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    let items: Vec<Value> = st
        .legacy
        .instance_profiles
        .iter()
        .cloned()
        .map(Value::Object)
        .collect();
    let mut out = Map::new();
    // Like real workspaces, an empty list is an empty object.
    if !items.is_empty() {
        out.insert("instance_profiles".into(), Value::Array(items));
    }
    Ok(extract::json(Value::Object(out)))
}

async fn profiles_add(ctx: Ctx, Body(b): Body) -> ApiResult {
    let arn = b.req_str("instance_profile_arn")?.to_string();
    if !arn.starts_with("arn:aws:iam::") || !arn.contains(":instance-profile/") {
        return Err(ApiError::invalid(format!(
            "{arn} is not a valid instance profile ARN (arn:aws:iam::<account>:instance-profile/<name>)"
        )));
    }
    let mut st = ctx.state();
    require_admin(&st, &ctx.caller)?;
    if st
        .legacy
        .instance_profiles
        .iter()
        .any(|p| p.get("instance_profile_arn").and_then(Value::as_str) == Some(&arn))
    {
        return Err(ApiError::exists(format!(
            "Instance profile {arn} already exists."
        )));
    }
    let mut p = Map::new();
    p.insert("instance_profile_arn".into(), json!(arn));
    if let Some(r) = b.opt_str("iam_role_arn")? {
        p.insert("iam_role_arn".into(), json!(r));
    }
    p.insert(
        "is_meta_instance_profile".into(),
        json!(b.opt_bool("is_meta_instance_profile")?.unwrap_or(false)),
    );
    st.legacy.instance_profiles.push(p);
    Ok(extract::empty())
}

async fn profiles_remove(ctx: Ctx, Body(b): Body) -> ApiResult {
    let arn = b.req_str("instance_profile_arn")?;
    let mut st = ctx.state();
    require_admin(&st, &ctx.caller)?;
    let before = st.legacy.instance_profiles.len();
    st.legacy
        .instance_profiles
        .retain(|p| p.get("instance_profile_arn").and_then(Value::as_str) != Some(arn));
    if st.legacy.instance_profiles.len() == before {
        return Err(ApiError::not_found(format!(
            "Instance profile {arn} does not exist."
        )));
    }
    Ok(extract::empty())
}

// ---- Cluster libraries --------------------------------------------------------------------

const LIBRARY_KINDS: [&str; 7] = ["jar", "egg", "whl", "pypi", "maven", "cran", "requirements"];

fn check_library(v: &Value) -> Result<(), ApiError> {
    let o = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("each library must be an object"))?;
    let kinds: Vec<&String> = o
        .keys()
        .filter(|k| LIBRARY_KINDS.contains(&k.as_str()))
        .collect();
    if kinds.len() != 1 || o.len() != 1 {
        return Err(ApiError::invalid(format!(
            "A library must have exactly one of {}: {v}",
            LIBRARY_KINDS.join(", ")
        )));
    }
    let inner = &o[kinds[0]];
    let ok = match kinds[0].as_str() {
        "pypi" | "cran" => inner.get("package").and_then(Value::as_str).is_some(),
        "maven" => inner.get("coordinates").and_then(Value::as_str).is_some(),
        _ => inner.as_str().is_some_and(|s| !s.is_empty()),
    };
    if !ok {
        return Err(ApiError::invalid(format!(
            "Invalid {} library: {v}",
            kinds[0]
        )));
    }
    Ok(())
}

fn cluster_state(st: &State, id: &str) -> Result<String, ApiError> {
    st.compute
        .clusters
        .iter()
        .find(|c| c.cluster_id == id)
        .map(|c| {
            c.spec
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("TERMINATED")
                .to_string()
        })
        .ok_or_else(|| ApiError::invalid(format!("Cluster {id} does not exist")))
}

/// A cluster came up (started or restarted): what was marked for uninstallation is gone, and
/// what was waiting starts installing.
pub(crate) fn cluster_restarted(st: &mut State, id: &str) {
    if let Some(libs) = st.legacy.libraries.get_mut(id) {
        libs.retain(|l| l.status != LibraryStatus::UninstallOnRestart);
        for l in libs.iter_mut() {
            l.status = LibraryStatus::Installing;
        }
    }
}

/// A cluster was permanently deleted: its libraries go with it.
pub(crate) fn cluster_deleted(st: &mut State, id: &str) {
    st.legacy.libraries.remove(id);
}

/// Reads the libraries of a cluster, moving each one step on when the cluster is running.
fn statuses(st: &mut State, id: &str) -> Vec<Value> {
    let running = cluster_state(st, id).is_ok_and(|s| s == "RUNNING");
    let Some(libs) = st.legacy.libraries.get_mut(id) else {
        return Vec::new();
    };
    libs.iter_mut()
        .map(|l| {
            let shown = l.status;
            if running {
                l.status = match l.status {
                    LibraryStatus::Pending => LibraryStatus::Installing,
                    LibraryStatus::Installing => LibraryStatus::Installed,
                    s => s,
                };
            }
            let mut o = json!({
                "library": l.library,
                "status": shown.wire(),
                "is_library_for_all_clusters": false,
            });
            if shown == LibraryStatus::UninstallOnRestart {
                o["messages"] = json!(["Library will be uninstalled when the cluster restarts."]);
            }
            o
        })
        .collect()
}

fn status_json(st: &mut State, id: &str) -> Value {
    let libs = statuses(st, id);
    let mut o = json!({ "cluster_id": id });
    if !libs.is_empty() {
        o["library_statuses"] = Value::Array(libs);
    }
    o
}

async fn library_status(ctx: Ctx, p: Params) -> ApiResult {
    let id = p.req("cluster_id")?.to_string();
    let mut st = ctx.state();
    cluster_state(&st, &id)?;
    access::check_compute(&st, &ctx.caller, &format!("clusters/{id}"), "CAN_ATTACH_TO")?;
    Ok(extract::mark(
        extract::json(status_json(&mut st, &id)),
        false,
    ))
}

async fn all_library_statuses(ctx: Ctx) -> ApiResult {
    let mut st = ctx.state();
    let ids: Vec<String> = st
        .legacy
        .libraries
        .iter()
        .filter(|(_, l)| !l.is_empty())
        .map(|(k, _)| k.clone())
        .filter(|k| {
            access::can_compute(&st, &ctx.caller, &format!("clusters/{k}"), "CAN_ATTACH_TO")
        })
        .collect();
    let statuses: Vec<Value> = ids.iter().map(|id| status_json(&mut st, id)).collect();
    Ok(extract::mark(
        extract::json(json!({ "statuses": statuses })),
        false,
    ))
}

fn libraries_of(b: &Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    let libs = b
        .opt_array("libraries")?
        .cloned()
        .ok_or_else(|| ApiError::missing("libraries"))?;
    for l in &libs {
        check_library(l)?;
    }
    Ok(libs)
}

async fn library_install(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_str("cluster_id")?.to_string();
    let libs = libraries_of(&b)?;
    let mut st = ctx.state();
    let state = cluster_state(&st, &id)?;
    access::check_compute(&st, &ctx.caller, &format!("clusters/{id}"), "CAN_MANAGE")?;
    let first = if state == "RUNNING" {
        LibraryStatus::Installing
    } else {
        LibraryStatus::Pending
    };
    let slot = st.legacy.libraries.entry(id).or_default();
    for l in libs {
        match slot.iter_mut().find(|x| x.library == l) {
            // Installing again what is marked for removal keeps it.
            Some(x) if x.status == LibraryStatus::UninstallOnRestart => {
                x.status = LibraryStatus::Installed
            }
            Some(_) => {}
            None => slot.push(Library {
                library: l,
                status: first,
            }),
        }
    }
    Ok(extract::empty())
}

async fn library_uninstall(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_str("cluster_id")?.to_string();
    let libs = libraries_of(&b)?;
    let mut st = ctx.state();
    let state = cluster_state(&st, &id)?;
    access::check_compute(&st, &ctx.caller, &format!("clusters/{id}"), "CAN_MANAGE")?;
    let slot = st.legacy.libraries.entry(id).or_default();
    for l in libs {
        if state == "RUNNING" {
            // A running cluster keeps the library loaded until it restarts.
            if let Some(x) = slot.iter_mut().find(|x| x.library == l) {
                x.status = LibraryStatus::UninstallOnRestart;
            }
        } else {
            slot.retain(|x| x.library != l);
        }
    }
    Ok(extract::empty())
}

// ---- Job runs -----------------------------------------------------------------------------

/// Task settings that say what a task runs.
const TASK_TYPES: [&str; 11] = [
    "notebook_task",
    "spark_jar_task",
    "spark_python_task",
    "spark_submit_task",
    "pipeline_task",
    "python_wheel_task",
    "sql_task",
    "dbt_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
];

/// Where run ids start.
const RUN_ID_BASE: i64 = 480_000_000_000;

fn run_json(r: &Run) -> Value {
    let (life, result, message) = match (r.step, r.cancelled) {
        (_, true) => ("TERMINATED", Some("CANCELED"), "Run cancelled."),
        (0, _) => ("PENDING", None, "Waiting for cluster"),
        (1, _) => ("RUNNING", None, "In run"),
        _ => ("TERMINATED", Some("SUCCESS"), ""),
    };
    let mut state = json!({
        "life_cycle_state": life,
        "state_message": message,
        "user_cancelled_or_timedout": r.cancelled,
    });
    if let Some(res) = result {
        state["result_state"] = json!(res);
    }
    // Fixed durations: the emulator executes nothing, so the times only have to be consistent.
    let done = r.cancelled || r.step >= 2;
    let mut o = json!({
        "job_id": r.job_id,
        "run_id": r.run_id,
        "number_in_job": r.number_in_job,
        "original_attempt_run_id": r.run_id,
        "creator_user_name": r.creator_user_name,
        "run_name": r.run_name,
        "state": state,
        "start_time": r.start_time,
        "setup_duration": if r.step >= 1 { 1000 } else { 0 },
        "execution_duration": if done { 1000 } else { 0 },
        "cleanup_duration": 0,
        "end_time": if done { r.start_time + 2000 } else { 0 },
        "trigger": "ONE_TIME",
        "run_type": "JOB_RUN",
        "format": "MULTI_TASK",
        "run_page_url": format!("#job/{}/run/{}", r.job_id, r.run_id),
    });
    let tasks: Vec<Value> = r
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut task = json!({
                "run_id": r.run_id * 1000 + i as i64 + 1,
                "task_key": t.get("task_key").cloned().unwrap_or(Value::Null),
                "state": o["state"].clone(),
                "start_time": r.start_time,
                "attempt_number": 0,
            });
            for k in TASK_TYPES {
                if let Some(v) = t.get(k) {
                    task[k] = v.clone();
                }
            }
            task
        })
        .collect();
    if !tasks.is_empty() {
        o["tasks"] = Value::Array(tasks);
    }
    if !r.overriding.is_empty() {
        o["overriding_parameters"] = Value::Object(r.overriding.clone());
    }
    o
}

fn advance(r: &mut Run) {
    if !r.cancelled && r.step < 2 {
        r.step += 1;
    }
}

async fn run_now(ctx: Ctx, Body(b): Body) -> ApiResult {
    let job_id = b.req_i64("job_id")?;
    let mut st = ctx.state();
    let job = st
        .jobs
        .get(&job_id)
        .ok_or_else(|| super::jobs::missing(job_id))?;
    access::check_job(&st, &ctx.caller, job_id, "CAN_MANAGE_RUN")?;
    let name = job
        .job
        .settings
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("Untitled")
        .to_string();
    let tasks = job
        .job
        .settings
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut overriding = Map::new();
    for k in [
        "notebook_params",
        "jar_params",
        "python_params",
        "spark_submit_params",
        "python_named_params",
        "sql_params",
        "job_parameters",
        "pipeline_params",
    ] {
        if let Some(v) = b.get(k).filter(|v| !v.is_null()) {
            overriding.insert(k.to_string(), v.clone());
        }
    }
    let number_in_job = st
        .legacy
        .runs
        .values()
        .filter(|r| r.job_id == job_id)
        .count() as i64
        + 1;
    // Run ids are large and unrelated to job ids, as on real workspaces.
    st.legacy.last_run_id += 1;
    let run_id = RUN_ID_BASE + st.legacy.last_run_id;
    let start_time = st.now();
    st.legacy.runs.insert(
        run_id,
        Run {
            run_id,
            job_id,
            number_in_job,
            creator_user_name: ctx.caller.name().to_string(),
            run_name: name,
            start_time,
            step: 0,
            cancelled: false,
            tasks,
            overriding,
        },
    );
    Ok(extract::json(
        json!({ "run_id": run_id, "number_in_job": number_in_job }),
    ))
}

fn find_run(st: &State, id: i64) -> Result<&Run, ApiError> {
    st.legacy
        .runs
        .get(&id)
        .ok_or_else(|| ApiError::invalid(format!("Run {id} does not exist.")))
}

async fn run_get(ctx: Ctx, p: Params) -> ApiResult {
    let id = p
        .i64("run_id")?
        .ok_or_else(|| ApiError::missing("run_id"))?;
    let mut st = ctx.state();
    let job_id = find_run(&st, id)?.job_id;
    if st.jobs.contains_key(&job_id) {
        access::check_job(&st, &ctx.caller, job_id, "CAN_VIEW")?;
    }
    let r = st
        .legacy
        .runs
        .get_mut(&id)
        .ok_or_else(|| ApiError::invalid("run"))?;
    let shown = run_json(r);
    advance(r);
    Ok(extract::mark(extract::json(shown), false))
}

async fn run_list(ctx: Ctx, p: Params) -> ApiResult {
    let job_id = p.i64("job_id")?;
    let active_only = p.bool("active_only")?.unwrap_or(false);
    let completed_only = p.bool("completed_only")?.unwrap_or(false);
    if active_only && completed_only {
        return Err(ApiError::invalid(
            "active_only and completed_only cannot both be true",
        ));
    }
    let limit = match p.i64("limit")? {
        None | Some(0) => 25usize,
        Some(l) if (1..=25).contains(&l) => l as usize,
        Some(l) => {
            return Err(ApiError::invalid(format!(
                "Invalid limit {l}: it must be between 1 and 25"
            )))
        }
    };
    let offset = p.i64("offset")?.unwrap_or(0).max(0) as usize;
    let mut st = ctx.state();
    let caller = ctx.caller.clone();
    let visible: Vec<i64> = st
        .legacy
        .runs
        .values()
        .rev()
        .filter(|r| job_id.is_none_or(|j| r.job_id == j))
        .filter(|r| {
            !st.jobs.contains_key(&r.job_id) || access::can_job(&st, &caller, r.job_id, "CAN_VIEW")
        })
        .filter(|r| {
            let done = r.cancelled || r.step >= 2;
            !(active_only && done || completed_only && !done)
        })
        .map(|r| r.run_id)
        .collect();
    let page: Vec<i64> = visible.iter().skip(offset).take(limit).copied().collect();
    let mut runs = Vec::new();
    for id in &page {
        if let Some(r) = st.legacy.runs.get_mut(id) {
            runs.push(run_json(r));
            advance(r);
        }
    }
    let mut out = Map::new();
    if !runs.is_empty() {
        out.insert("runs".into(), Value::Array(runs));
    }
    out.insert(
        "has_more".into(),
        json!(offset + page.len() < visible.len()),
    );
    Ok(extract::mark(extract::json(Value::Object(out)), false))
}

async fn run_cancel(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_i64("run_id")?;
    let mut st = ctx.state();
    let job_id = find_run(&st, id)?.job_id;
    if st.jobs.contains_key(&job_id) {
        access::check_job(&st, &ctx.caller, job_id, "CAN_MANAGE_RUN")?;
    }
    if let Some(r) = st.legacy.runs.get_mut(&id) {
        // A finished run stays as it finished.
        if r.step < 2 {
            r.cancelled = true;
        }
    }
    Ok(extract::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_checked() {
        for good in [
            json!({"pypi": {"package": "numpy==2.0"}}),
            json!({"maven": {"coordinates": "org.x:y:1"}}),
            json!({"whl": "dbfs:/x.whl"}),
        ] {
            assert!(check_library(&good).is_ok(), "{good}");
        }
        for bad in [
            json!({}),
            json!({"pypi": {}}),
            json!({"jar": "a", "whl": "b"}),
            json!({"nuget": "x"}),
        ] {
            assert!(check_library(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn runs_go_through_their_life_cycle() {
        let mut r = Run {
            run_id: 5,
            job_id: 1,
            number_in_job: 1,
            creator_user_name: "a@x".into(),
            run_name: "n".into(),
            start_time: 0,
            step: 0,
            cancelled: false,
            tasks: vec![json!({"task_key": "t", "notebook_task": {"notebook_path": "/x"}})],
            overriding: Map::new(),
        };
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(run_json(&r)["state"]["life_cycle_state"].clone());
            advance(&mut r);
        }
        assert_eq!(seen, ["PENDING", "RUNNING", "TERMINATED", "TERMINATED"]);
        assert_eq!(run_json(&r)["state"]["result_state"], "SUCCESS");
        assert_eq!(run_json(&r)["tasks"][0]["task_key"], "t");
    }
}
