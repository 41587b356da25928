//! Compute: clusters (`/api/2.0|2.1/clusters/*`: list, get, create, edit, start, restart,
//! resize, delete — which terminates — and permanent-delete), instance pools and cluster
//! policies (list, get). Mounts have no REST listing on real workspaces; they are read through
//! command execution.
//!
//! No machine is started. A cluster's state moves as real clusters' do, one step each time it is
//! read: `PENDING`, `RESTARTING` and `RESIZING` become `RUNNING`, `TERMINATING` becomes
//! `TERMINATED`; so a client polling `clusters/get` sees the transitions in a fixed order.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::compute::Cluster;
use crate::model::permissions::AccessControlRequest;

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, Body, Ctx, Fields, Params};
use super::legacy;
use super::state::{Shared, State};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut r = Router::new();
    for v in ["2.0", "2.1"] {
        r = r
            .route(&format!("/api/{v}/clusters/list"), get(list_clusters))
            .route(&format!("/api/{v}/clusters/get"), get(get_cluster))
            .route(&format!("/api/{v}/clusters/create"), post(create_cluster))
            .route(&format!("/api/{v}/clusters/edit"), post(edit_cluster))
            .route(&format!("/api/{v}/clusters/start"), post(start_cluster))
            .route(&format!("/api/{v}/clusters/restart"), post(restart_cluster))
            .route(&format!("/api/{v}/clusters/resize"), post(resize_cluster))
            .route(
                &format!("/api/{v}/clusters/delete"),
                post(terminate_cluster),
            )
            .route(
                &format!("/api/{v}/clusters/permanent-delete"),
                post(permanent_delete_cluster),
            );
    }
    r.route("/api/2.0/instance-pools/list", get(list_pools))
        .route("/api/2.0/instance-pools/get", get(get_pool))
        .route("/api/2.0/policies/clusters/list", get(list_policies))
        .route("/api/2.0/policies/clusters/get", get(get_policy))
}

fn values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .collect()
}

async fn list_clusters(ctx: Ctx) -> ApiResult {
    let mut st = ctx.state();
    let shown = values(&st.compute.clusters);
    let ids: Vec<String> = st
        .compute
        .clusters
        .iter()
        .map(|c| c.cluster_id.clone())
        .collect();
    for id in ids {
        settle(&mut st, &id);
    }
    Ok(extract::mark(
        extract::json(json!({ "clusters": shown })),
        false,
    ))
}

fn no_cluster(id: &str) -> ApiError {
    // Real workspaces answer an unknown cluster id with this 400.
    ApiError::invalid(format!("Cluster {id} does not exist"))
}

fn cluster_index(st: &State, id: &str) -> Result<usize, ApiError> {
    st.compute
        .clusters
        .iter()
        .position(|c| c.cluster_id == id)
        .ok_or_else(|| no_cluster(id))
}

fn state_of(c: &Cluster) -> &str {
    c.spec
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("TERMINATED")
}

fn set_state(c: &mut Cluster, state: &str, message: &str) {
    c.spec.insert("state".into(), json!(state));
    c.spec.insert("state_message".into(), json!(message));
}

/// Moves a cluster one step towards where its last request sends it.
fn settle(st: &mut State, id: &str) {
    let now = st.now();
    let Ok(i) = cluster_index(st, id) else {
        return;
    };
    let c = &mut st.compute.clusters[i];
    match state_of(c) {
        "PENDING" | "RESTARTING" => {
            set_state(c, "RUNNING", "");
            c.spec.insert("last_restarted_time".into(), json!(now));
            c.spec.remove("terminated_time");
            c.spec.remove("termination_reason");
            legacy::cluster_restarted(st, id);
        }
        "RESIZING" => set_state(c, "RUNNING", ""),
        "TERMINATING" => {
            set_state(c, "TERMINATED", "Terminated by user");
            c.spec.insert("terminated_time".into(), json!(now));
        }
        _ => {}
    }
}

async fn get_cluster(ctx: Ctx, p: Params) -> ApiResult {
    let id = p.req("cluster_id")?;
    let mut st = ctx.state();
    let c = &st.compute.clusters[cluster_index(&st, id)?];
    let shown = serde_json::to_value(c).unwrap_or_default();
    settle(&mut st, id);
    Ok(extract::mark(extract::json(shown), false))
}

/// The fields of a cluster spec the server sets, never the caller.
const SERVER_FIELDS: [&str; 13] = [
    "cluster_id",
    "creator_user_name",
    "state",
    "state_message",
    "start_time",
    "terminated_time",
    "last_restarted_time",
    "last_state_loss_time",
    "termination_reason",
    "default_tags",
    "cluster_source",
    "spark_context_id",
    "cluster_memory_mb",
];

/// Checks a create or edit request and returns the spec it asks for.
fn requested_spec(st: &State, b: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    b.req_str("spark_version")?;
    let pool = b.opt_str("instance_pool_id")?;
    let policy = b.opt_str("policy_id")?;
    if b.opt_str("node_type_id")?.is_none() && pool.is_none() && policy.is_none() {
        return Err(ApiError::invalid(
            "Missing required field: node_type_id (or instance_pool_id, or a policy_id that sets it)",
        ));
    }
    if let Some(p) = pool {
        if !st.compute.pools.iter().any(|x| x.instance_pool_id == p) {
            return Err(ApiError::invalid(format!(
                "Instance pool {p} does not exist"
            )));
        }
    }
    if let Some(p) = policy {
        if !st.compute.policies.iter().any(|x| x.policy_id == p) {
            return Err(ApiError::invalid(format!(
                "Cluster policy {p} does not exist"
            )));
        }
    }
    match (b.opt_i64("num_workers")?, b.opt_object("autoscale")?) {
        (Some(n), _) if n < 0 => {
            return Err(ApiError::invalid("num_workers must not be negative"));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Only one of num_workers and autoscale can be given",
            ));
        }
        (None, Some(a)) => {
            let min = a.opt_i64("min_workers")?.unwrap_or(0);
            let max = a.opt_i64("max_workers")?.unwrap_or(0);
            if min < 0 || max < min || max == 0 {
                return Err(ApiError::invalid(format!(
                    "Invalid autoscale: min_workers {min}, max_workers {max}"
                )));
            }
        }
        _ => {}
    }
    let mut spec = b.clone();
    spec.retain(|k, v| !v.is_null() && !SERVER_FIELDS.contains(&k.as_str()));
    if !spec.contains_key("autoscale") && !spec.contains_key("num_workers") {
        spec.insert("num_workers".into(), json!(0));
    }
    Ok(spec)
}

fn default_tags(creator: &str, name: &str, id: &str) -> Value {
    json!({"Vendor": "Databricks", "Creator": creator, "ClusterName": name, "ClusterId": id})
}

/// A new cluster id in the real form, `MMDD-HHMMSS-<8 characters>`.
fn new_cluster_id(now_ms: i64) -> Result<String, ApiError> {
    let t = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("no randomness for a cluster id: {e}"),
        )
    })?;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = raw
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    Ok(format!(
        "{:02}{:02}-{:02}{:02}{:02}-{tail}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

async fn create_cluster(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let spec = requested_spec(&st, &b)?;
    let name = b.opt_str("cluster_name")?.unwrap_or("").to_string();
    let now = st.now();
    let id = new_cluster_id(now)?;
    let creator = ctx.caller.name().to_string();
    let mut c = Cluster {
        cluster_id: id.clone(),
        cluster_name: name.clone(),
        spec,
    };
    c.spec.insert("creator_user_name".into(), json!(creator));
    c.spec.insert("cluster_source".into(), json!("API"));
    c.spec.insert("start_time".into(), json!(now));
    c.spec
        .insert("default_tags".into(), default_tags(&creator, &name, &id));
    set_state(&mut c, "PENDING", "Starting Spark");
    st.compute.clusters.push(c);
    // Whoever creates a cluster manages it.
    st.compute.acls.insert(
        format!("clusters/{id}"),
        vec![AccessControlRequest {
            principal: ctx.caller.principal(),
            permission_level: "CAN_MANAGE".into(),
        }],
    );
    Ok(extract::json(json!({ "cluster_id": id })))
}

fn invalid_state(id: &str, state: &str) -> ApiError {
    let mut word = state.to_ascii_lowercase();
    if let Some(f) = word.get_mut(0..1) {
        f.make_ascii_uppercase();
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_STATE",
        format!("Cluster {id} is in unexpected state {word}."),
    )
}

/// The cluster a request names, checked for `level`: its index and its state.
fn target(
    st: &State,
    ctx: &Ctx,
    b: &Map<String, Value>,
    level: &str,
) -> Result<(usize, String), ApiError> {
    let id = b.req_str("cluster_id")?;
    let i = cluster_index(st, id)?;
    access::check_compute(st, &ctx.caller, &format!("clusters/{id}"), level)?;
    Ok((i, state_of(&st.compute.clusters[i]).to_string()))
}

async fn edit_cluster(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let (i, state) = target(&st, &ctx, &b, "CAN_MANAGE")?;
    let spec = requested_spec(&st, &b)?;
    let c = &mut st.compute.clusters[i];
    let id = c.cluster_id.clone();
    let next = match state.as_str() {
        "RUNNING" => "RESTARTING",
        "TERMINATED" => "TERMINATED",
        other => return Err(invalid_state(&id, other)),
    };
    let kept: Map<String, Value> = c
        .spec
        .iter()
        .filter(|(k, _)| SERVER_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    c.cluster_name = b.opt_str("cluster_name")?.unwrap_or("").to_string();
    c.spec = spec;
    c.spec.extend(kept);
    let creator = c
        .spec
        .get("creator_user_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let tags = default_tags(&creator, &c.cluster_name, &id);
    c.spec.insert("default_tags".into(), tags);
    if next == "RESTARTING" {
        set_state(c, next, "Restarting Spark to apply the new configuration");
    }
    Ok(extract::empty())
}

async fn start_cluster(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let (i, state) = target(&st, &ctx, &b, "CAN_RESTART")?;
    let c = &mut st.compute.clusters[i];
    if state != "TERMINATED" {
        return Err(invalid_state(&c.cluster_id, &state));
    }
    set_state(c, "PENDING", "Starting Spark");
    Ok(extract::empty())
}

async fn restart_cluster(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let (i, state) = target(&st, &ctx, &b, "CAN_RESTART")?;
    let c = &mut st.compute.clusters[i];
    if state != "RUNNING" {
        return Err(invalid_state(&c.cluster_id, &state));
    }
    set_state(c, "RESTARTING", "Restarting Spark");
    Ok(extract::empty())
}

async fn resize_cluster(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let (i, state) = target(&st, &ctx, &b, "CAN_MANAGE")?;
    let workers = b.opt_i64("num_workers")?;
    let autoscale = b.opt_object("autoscale")?.cloned();
    let c = &mut st.compute.clusters[i];
    if state != "RUNNING" {
        return Err(invalid_state(&c.cluster_id, &state));
    }
    match (workers, autoscale) {
        (Some(n), None) if n >= 0 => {
            c.spec.remove("autoscale");
            c.spec.insert("num_workers".into(), json!(n));
        }
        (None, Some(a)) => {
            c.spec.remove("num_workers");
            c.spec.insert("autoscale".into(), Value::Object(a));
        }
        _ => {
            return Err(ApiError::invalid(
                "Exactly one of num_workers (zero or more) and autoscale must be given",
            ))
        }
    }
    set_state(c, "RESIZING", "Resizing the cluster");
    Ok(extract::empty())
}

async fn terminate_cluster(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let (i, state) = target(&st, &ctx, &b, "CAN_RESTART")?;
    let user = ctx.caller.name().to_string();
    let c = &mut st.compute.clusters[i];
    if state != "TERMINATED" && state != "TERMINATING" {
        set_state(c, "TERMINATING", "Terminating the cluster");
        c.spec.insert(
            "termination_reason".into(),
            json!({"code": "USER_REQUEST", "type": "SUCCESS", "parameters": {"username": user}}),
        );
    }
    Ok(extract::empty())
}

async fn permanent_delete_cluster(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let (i, _) = target(&st, &ctx, &b, "CAN_MANAGE")?;
    let id = st.compute.clusters.remove(i).cluster_id;
    st.compute.acls.remove(&format!("clusters/{id}"));
    legacy::cluster_deleted(&mut st, &id);
    Ok(extract::empty())
}

async fn list_pools(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    Ok(extract::json(
        json!({ "instance_pools": values(&st.compute.pools) }),
    ))
}

async fn get_pool(ctx: Ctx, p: Params) -> ApiResult {
    let id = p.req("instance_pool_id")?;
    let st = ctx.state();
    let c = st
        .compute
        .pools
        .iter()
        .find(|c| c.instance_pool_id == id)
        .ok_or_else(|| ApiError::not_found(format!("Instance pool {id} does not exist")))?;
    Ok(extract::json(serde_json::to_value(c).unwrap_or_default()))
}

async fn list_policies(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    Ok(extract::json(
        json!({ "policies": values(&st.compute.policies) }),
    ))
}

async fn get_policy(ctx: Ctx, p: Params) -> ApiResult {
    let id = p.req("policy_id")?;
    let st = ctx.state();
    let c = st
        .compute
        .policies
        .iter()
        .find(|c| c.policy_id == id)
        .ok_or_else(|| ApiError::not_found(format!("Cluster policy {id} does not exist")))?;
    Ok(extract::json(serde_json::to_value(c).unwrap_or_default()))
}
