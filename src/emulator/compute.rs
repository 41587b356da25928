//! Reference-only compute: clusters (`/api/2.0|2.1/clusters/list|get`), instance pools and
//! cluster policies (list, get). Nothing here is created through the API; the seed provides it.
//! Mounts have no REST listing on real workspaces; they are read through command execution.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{self, Ctx, Params};
use super::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/clusters/list", get(list_clusters))
        .route("/api/2.1/clusters/list", get(list_clusters))
        .route("/api/2.0/clusters/get", get(get_cluster))
        .route("/api/2.1/clusters/get", get(get_cluster))
        .route("/api/2.0/instance-pools/list", get(list_pools))
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
    let st = ctx.state();
    Ok(extract::json(
        json!({ "clusters": values(&st.compute.clusters) }),
    ))
}

async fn get_cluster(ctx: Ctx, p: Params) -> ApiResult {
    let id = p.req("cluster_id")?;
    let st = ctx.state();
    let c = st
        .compute
        .clusters
        .iter()
        .find(|c| c.cluster_id == id)
        .ok_or_else(|| ApiError::invalid(format!("Cluster {id} does not exist")))?;
    Ok(extract::json(serde_json::to_value(c).unwrap_or_default()))
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
