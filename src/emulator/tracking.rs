//! The MLflow tracking API (`/api/2.0/mlflow/experiments|runs|metrics|artifacts|logged-models`),
//! enough for an unmodified training script using the MLflow client with
//! `tracking_uri="databricks"`: experiments, runs with params, metrics and tags, logged models,
//! and their artifacts.
//!
//! Artifacts live in the emulated DBFS tree where their `artifact_uri` says:
//! `dbfs:/databricks/mlflow-tracking/<experiment>/<run>/artifacts` for a run,
//! `…/<experiment>/logged_models/<model id>/artifacts` for a logged model. Clients reach them
//! the two ways MLflow 3.17 does: first the Files API under
//! `/WorkspaceInternal/Mlflow/Artifacts/<experiment>/Runs/<run>/…` and
//! `…/LoggedModels/<model id>/…` ([`files_to_dbfs`] maps those paths, `files.rs` serves them),
//! and as a fallback credential calls (`artifacts/credentials-for-read|write`,
//! `logged-models/{id}/artifacts/credentials-for-download|upload`) answered with signed URLs of
//! the emulator itself (`signed.rs`), plus the listings `artifacts/list` and
//! `logged-models/{id}/artifacts/directories`.
//!
//! The tracking state is kept in memory only: dumps (`seed.rs`) hold the artifact files, which
//! are DBFS files, but not the experiments, runs and logged models.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::mlflow::FileInfo;
use crate::model::KeyValue;

use super::dbfs::{self, dbfs_path};
use super::error::{ApiError, ApiResult};
use super::extract::{self, mark, read_page_token, Body, Ctx, Fields, Params};
use super::signed::{self, Access};
use super::state::{Shared, State};

/// Where tracking artifacts live in DBFS.
pub(crate) const DBFS_ROOT: &str = "/databricks/mlflow-tracking";
/// Where the Files API shows them.
const FILES_ROOT: &str = "/WorkspaceInternal/Mlflow/Artifacts";
/// Most credentials one credential call answers; the rest come with a page token.
const CREDENTIALS_PAGE: usize = 1000;

/// Experiments, runs and logged models.
#[derive(Debug, Default)]
pub(crate) struct Tracking {
    pub experiments: BTreeMap<String, Experiment>,
    pub runs: BTreeMap<String, Run>,
    pub logged_models: BTreeMap<String, LoggedModel>,
    pub next_experiment: u64,
}

/// One experiment.
#[derive(Debug, Clone)]
pub(crate) struct Experiment {
    pub id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<KeyValue>,
}

/// One metric value.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub key: String,
    pub value: Value,
    pub timestamp: i64,
    pub step: i64,
}

/// One run.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub id: String,
    pub experiment_id: String,
    pub name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub lifecycle_stage: String,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
    /// Every logged value, in logging order; the latest per key is the run's metric.
    pub metrics: Vec<Metric>,
    pub dataset_inputs: Vec<Value>,
    pub model_inputs: Vec<Value>,
    pub model_outputs: Vec<Value>,
}

/// One logged model (MLflow 3).
#[derive(Debug, Clone)]
pub(crate) struct LoggedModel {
    pub id: String,
    pub experiment_id: String,
    pub name: String,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub tags: Vec<KeyValue>,
    pub params: Vec<KeyValue>,
    pub metrics: Vec<Value>,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    const E: &str = "/api/2.0/mlflow/experiments";
    const R: &str = "/api/2.0/mlflow/runs";
    const L: &str = "/api/2.0/mlflow/logged-models";
    Router::new()
        .route(&format!("{E}/create"), post(create_experiment))
        .route(&format!("{E}/get"), get(get_experiment))
        .route(&format!("{E}/get-by-name"), get(get_experiment_by_name))
        .route(
            &format!("{E}/search"),
            post(search_experiments_post).get(search_experiments_get),
        )
        .route(&format!("{E}/update"), post(update_experiment))
        .route(
            &format!("{E}/delete"),
            post(|c: Ctx, b: Body| experiment_stage(c, b, "deleted")),
        )
        .route(
            &format!("{E}/restore"),
            post(|c: Ctx, b: Body| experiment_stage(c, b, "active")),
        )
        .route(&format!("{E}/set-experiment-tag"), post(set_experiment_tag))
        .route(&format!("{R}/create"), post(create_run))
        .route(&format!("{R}/get"), get(get_run))
        .route(&format!("{R}/update"), post(update_run))
        .route(
            &format!("{R}/delete"),
            post(|c: Ctx, b: Body| run_stage(c, b, "deleted")),
        )
        .route(
            &format!("{R}/restore"),
            post(|c: Ctx, b: Body| run_stage(c, b, "active")),
        )
        .route(&format!("{R}/log-metric"), post(log_metric))
        .route(&format!("{R}/log-parameter"), post(log_param))
        .route(&format!("{R}/set-tag"), post(set_run_tag))
        .route(&format!("{R}/delete-tag"), post(delete_run_tag))
        .route(&format!("{R}/log-batch"), post(log_batch))
        .route(&format!("{R}/log-inputs"), post(log_inputs))
        .route(&format!("{R}/outputs"), post(log_outputs))
        .route(&format!("{R}/log-model"), post(log_model_json))
        .route(&format!("{R}/search"), post(search_runs))
        .route("/api/2.0/mlflow/metrics/get-history", get(metric_history))
        .route("/api/2.0/mlflow/artifacts/list", get(list_run_artifacts))
        .route(
            "/api/2.0/mlflow/artifacts/credentials-for-read",
            post(|c: Ctx, h: HeaderMap, b: Body| run_credentials(c, h, b, Access::Read)),
        )
        .route(
            "/api/2.0/mlflow/artifacts/credentials-for-write",
            post(|c: Ctx, h: HeaderMap, b: Body| run_credentials(c, h, b, Access::Write)),
        )
        .route(L, post(create_logged_model))
        .route(&format!("{L}/search"), post(search_logged_models))
        .route(
            &format!("{L}/{{id}}"),
            get(get_logged_model)
                .patch(finalize_logged_model)
                .delete(delete_logged_model),
        )
        .route(
            &format!("{L}/{{id}}/tags"),
            axum::routing::patch(set_logged_model_tags),
        )
        .route(
            &format!("{L}/{{id}}/tags/{{key}}"),
            axum::routing::delete(delete_logged_model_tag),
        )
        .route(&format!("{L}/{{id}}/params"), post(log_logged_model_params))
        .route(
            &format!("{L}/{{id}}/artifacts/directories"),
            get(list_logged_model_artifacts),
        )
        .route(
            &format!("{L}/{{id}}/artifacts/credentials-for-download"),
            post(|c: Ctx, p: Path<String>, h: HeaderMap, b: Body| {
                logged_model_credentials(c, p, h, b, Access::Read)
            }),
        )
        .route(
            &format!("{L}/{{id}}/artifacts/credentials-for-upload"),
            post(|c: Ctx, p: Path<String>, h: HeaderMap, b: Body| {
                logged_model_credentials(c, p, h, b, Access::Write)
            }),
        )
}

// ---- paths ---------------------------------------------------------------------------------

/// The DBFS folder holding a run's artifacts.
pub(crate) fn run_artifact_root(experiment_id: &str, run_id: &str) -> String {
    format!("{DBFS_ROOT}/{experiment_id}/{run_id}/artifacts")
}

/// The DBFS folder holding a logged model's artifacts.
pub(crate) fn logged_model_artifact_root(experiment_id: &str, model_id: &str) -> String {
    format!("{DBFS_ROOT}/{experiment_id}/logged_models/{model_id}/artifacts")
}

/// The DBFS path a Files API path under `/WorkspaceInternal/Mlflow/Artifacts` stands for, if it
/// names the artifacts of a run or logged model this workspace has; `None` for any other path.
pub(crate) fn files_to_dbfs(st: &State, path: &str) -> Option<String> {
    let rest = path.strip_prefix(FILES_ROOT)?.strip_prefix('/')?;
    let mut parts = rest.splitn(4, '/');
    let (exp, kind, id) = (parts.next()?, parts.next()?, parts.next()?);
    let tail = parts.next().map(|t| format!("/{t}")).unwrap_or_default();
    match kind {
        "Runs" if st.tracking.runs.get(id)?.experiment_id == exp => {
            Some(format!("{DBFS_ROOT}/{exp}/{id}{tail}"))
        }
        "LoggedModels" if st.tracking.logged_models.get(id)?.experiment_id == exp => {
            Some(format!("{DBFS_ROOT}/{exp}/logged_models/{id}{tail}"))
        }
        _ => None,
    }
}

/// The Files API path of a DBFS path under [`DBFS_ROOT`] (the inverse of [`files_to_dbfs`]).
pub(crate) fn dbfs_to_files(path: &str) -> Option<String> {
    let rest = path.strip_prefix(DBFS_ROOT)?.strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    let exp = parts.next()?;
    let second = parts.next()?;
    let tail = parts.next();
    if second == "logged_models" {
        let tail = tail?;
        let (id, more) = tail.split_once('/').unwrap_or((tail, ""));
        let more = if more.is_empty() {
            String::new()
        } else {
            format!("/{more}")
        };
        return Some(format!("{FILES_ROOT}/{exp}/LoggedModels/{id}{more}"));
    }
    let more = tail.map(|t| format!("/{t}")).unwrap_or_default();
    Some(format!("{FILES_ROOT}/{exp}/Runs/{second}{more}"))
}

/// `rel` inside `root`, refusing `..` and `.`.
fn inside(root: &str, rel: &str) -> Result<String, ApiError> {
    let rel = rel.trim_matches('/');
    if rel.split('/').any(|c| c == ".." || c == ".") {
        return Err(ApiError::invalid(format!("Invalid artifact path {rel}")));
    }
    Ok(if rel.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{rel}")
    })
}

// ---- values --------------------------------------------------------------------------------

fn kv(tags: &[KeyValue]) -> Value {
    serde_json::to_value(tags).unwrap_or_default()
}

fn set_kv(list: &mut Vec<KeyValue>, key: &str, value: &str) {
    match list.iter_mut().find(|t| t.key == key) {
        Some(t) => t.value = value.to_string(),
        None => list.push(KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
}

fn kv_arg(b: &Map<String, Value>, field: &str) -> Result<Vec<KeyValue>, ApiError> {
    match b.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value::<Vec<KeyValue>>(v.clone())
            .map_err(|e| ApiError::invalid(format!("Invalid {field}: {e}"))),
    }
}

fn experiment_value(e: &Experiment) -> Value {
    let mut v = json!({
        "experiment_id": e.id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
    });
    if !e.tags.is_empty() {
        v["tags"] = kv(&e.tags);
    }
    v
}

fn latest_metrics(r: &Run) -> Vec<Value> {
    let mut latest: BTreeMap<&str, &Metric> = BTreeMap::new();
    for m in &r.metrics {
        let newer = latest
            .get(m.key.as_str())
            .is_none_or(|o| (m.step, m.timestamp) >= (o.step, o.timestamp));
        if newer {
            latest.insert(&m.key, m);
        }
    }
    latest.values().map(|m| metric_value(m)).collect()
}

fn metric_value(m: &Metric) -> Value {
    json!({"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step})
}

fn run_value(r: &Run) -> Value {
    let mut info = json!({
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": r.experiment_id,
        "user_id": r.user_id,
        "status": r.status,
        "start_time": r.start_time,
        "artifact_uri": format!("dbfs:{}", run_artifact_root(&r.experiment_id, &r.id)),
        "lifecycle_stage": r.lifecycle_stage,
    });
    if let Some(t) = r.end_time {
        info["end_time"] = json!(t);
    }
    let mut data = Map::new();
    let metrics = latest_metrics(r);
    if !metrics.is_empty() {
        data.insert("metrics".into(), Value::Array(metrics));
    }
    if !r.params.is_empty() {
        data.insert("params".into(), kv(&r.params));
    }
    if !r.tags.is_empty() {
        data.insert("tags".into(), kv(&r.tags));
    }
    let mut inputs = Map::new();
    if !r.dataset_inputs.is_empty() {
        inputs.insert("dataset_inputs".into(), json!(r.dataset_inputs));
    }
    if !r.model_inputs.is_empty() {
        inputs.insert("model_inputs".into(), json!(r.model_inputs));
    }
    let mut out = json!({"info": info, "data": data, "inputs": inputs});
    if !r.model_outputs.is_empty() {
        out["outputs"] = json!({"model_outputs": r.model_outputs});
    }
    out
}

fn logged_model_value(m: &LoggedModel) -> Value {
    let mut info = json!({
        "model_id": m.id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.created,
        "last_updated_timestamp_ms": m.updated,
        "artifact_uri": format!("dbfs:{}", logged_model_artifact_root(&m.experiment_id, &m.id)),
        "status": m.status,
    });
    for (k, v) in [
        ("model_type", &m.model_type),
        ("source_run_id", &m.source_run_id),
        ("status_message", &m.status_message),
    ] {
        if let Some(v) = v {
            info[k] = json!(v);
        }
    }
    if !m.tags.is_empty() {
        info["tags"] = kv(&m.tags);
    }
    let mut data = Map::new();
    if !m.params.is_empty() {
        data.insert("params".into(), kv(&m.params));
    }
    if !m.metrics.is_empty() {
        data.insert("metrics".into(), json!(m.metrics));
    }
    json!({"info": info, "data": data})
}

// ---- lookups -------------------------------------------------------------------------------

fn experiment_missing(id: &str) -> ApiError {
    ApiError::not_found(format!("No Experiment with id={id} exists"))
}

fn run_missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Run '{id}' not found"))
}

fn logged_model_missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Logged model with ID '{id}' not found"))
}

fn input(p: &Params, mut b: Map<String, Value>) -> Map<String, Value> {
    p.merge_into(&mut b);
    b
}

/// The run named by `run_id` (or the older `run_uuid`).
fn run_id(b: &Map<String, Value>) -> Result<String, ApiError> {
    match b.opt_str("run_id")?.filter(|s| !s.is_empty()) {
        Some(id) => Ok(id.to_string()),
        None => Ok(b.req_str("run_uuid")?.to_string()),
    }
}

fn run_mut<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Run, ApiError> {
    st.tracking.runs.get_mut(id).ok_or_else(|| run_missing(id))
}

/// A run that can still be written to: a deleted run refuses, as on real workspaces.
fn active_run_mut<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Run, ApiError> {
    let r = run_mut(st, id)?;
    if r.lifecycle_stage != "active" {
        return Err(ApiError::invalid(format!(
            "The run {id} must be in the 'active' state. Current state is {}.",
            r.lifecycle_stage
        )));
    }
    Ok(r)
}

fn logged_model_mut<'a>(st: &'a mut State, id: &str) -> Result<&'a mut LoggedModel, ApiError> {
    st.tracking
        .logged_models
        .get_mut(id)
        .ok_or_else(|| logged_model_missing(id))
}

/// A fresh 32-hex-digit id, unguessable and unique to this emulator.
fn new_id(st: &mut State) -> String {
    st.mint("")[..32].to_string()
}

// ---- experiments ---------------------------------------------------------------------------

async fn create_experiment(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("name")?.to_string();
    if !name.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "Got an invalid experiment name '{name}'. An experiment name must be an absolute \
             path within the Databricks workspace, e.g. '/Users/<some-username>/my-experiment'."
        )));
    }
    let tags = kv_arg(&b, "tags")?;
    let location = b.opt_str("artifact_location")?.map(str::to_string);
    let mut st = ctx.state();
    if st
        .tracking
        .experiments
        .values()
        .any(|e| e.name == name && e.lifecycle_stage == "active")
    {
        return Err(ApiError::exists(format!(
            "Node named '{}' already exists",
            crate::model::workspace::base_name(&name)
        )));
    }
    let now = st.now();
    st.tracking.next_experiment += 1;
    // Shaped like real experiment ids: 16 decimal digits.
    let id = (3_000_000_000_000_000 + st.tracking.next_experiment).to_string();
    let e = Experiment {
        artifact_location: location.unwrap_or_else(|| format!("dbfs:{DBFS_ROOT}/{id}")),
        id: id.clone(),
        name,
        lifecycle_stage: "active".into(),
        creation_time: now,
        last_update_time: now,
        tags,
    };
    st.tracking.experiments.insert(id.clone(), e);
    Ok(extract::json(json!({ "experiment_id": id })))
}

async fn get_experiment(ctx: Ctx, p: Params) -> ApiResult {
    let id = p.req("experiment_id")?;
    let st = ctx.state();
    let e = st
        .tracking
        .experiments
        .get(id)
        .ok_or_else(|| experiment_missing(id))?;
    Ok(extract::json(json!({ "experiment": experiment_value(e) })))
}

async fn get_experiment_by_name(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("experiment_name")?;
    let st = ctx.state();
    // A deleted experiment is found too, but an active one of the same name comes first.
    let e = st
        .tracking
        .experiments
        .values()
        .filter(|e| e.name == name)
        .max_by_key(|e| (e.lifecycle_stage == "active", e.last_update_time))
        .ok_or_else(|| {
            ApiError::not_found(format!("Could not find experiment with name: '{name}'"))
        })?;
    Ok(extract::json(json!({ "experiment": experiment_value(e) })))
}

/// `ACTIVE_ONLY` (default), `DELETED_ONLY` or `ALL` against a lifecycle stage.
fn in_view(view: Option<&str>, stage: &str) -> bool {
    match view.unwrap_or("ACTIVE_ONLY") {
        "ALL" => true,
        "DELETED_ONLY" => stage == "deleted",
        _ => stage == "active",
    }
}

fn page(
    b: &Map<String, Value>,
    default: usize,
    max: usize,
    len: usize,
) -> Result<(usize, usize), ApiError> {
    let size = match b.opt_i64("max_results")? {
        None => default,
        Some(n) if n >= 1 && n as usize <= max => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied: it must be at most {max}"
            )))
        }
    };
    let start = match b.opt_str("page_token")?.filter(|t| !t.is_empty()) {
        Some(t) => read_page_token(t)?
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?,
        None => 0,
    }
    .min(len);
    Ok((start, (start + size).min(len)))
}

fn paged(field: &str, items: Vec<Value>, start: usize, end: usize) -> Value {
    let total = items.len();
    let mut out = json!({ field: items[start..end].to_vec() });
    if end < total {
        out["next_page_token"] = json!(extract::page_token(&end.to_string()));
    }
    out
}

fn search_experiments(st: &State, b: &Map<String, Value>) -> ApiResult {
    let filter = Filter::parse(b.opt_str("filter")?.unwrap_or(""))?;
    let view = b.opt_str("view_type")?;
    let mut items = Vec::new();
    for e in st.tracking.experiments.values() {
        if !in_view(view, &e.lifecycle_stage) {
            continue;
        }
        let keep = filter.matches(|kind, key| match (kind, key) {
            (Kind::Attr, "name") => Some(Value::String(e.name.clone())),
            (Kind::Attr, "creation_time") => Some(json!(e.creation_time)),
            (Kind::Attr, "last_update_time") => Some(json!(e.last_update_time)),
            (Kind::Tag, k) => e
                .tags
                .iter()
                .find(|t| t.key == k)
                .map(|t| Value::String(t.value.clone())),
            _ => None,
        })?;
        if keep {
            items.push(experiment_value(e));
        }
    }
    // Newest first, as the MLflow servers list them by default.
    items.reverse();
    let (start, end) = page(b, 1000, 50_000, items.len())?;
    Ok(mark(
        extract::json(paged("experiments", items, start, end)),
        false,
    ))
}

async fn search_experiments_post(ctx: Ctx, Body(b): Body) -> ApiResult {
    search_experiments(&ctx.state(), &b)
}

async fn search_experiments_get(ctx: Ctx, p: Params) -> ApiResult {
    search_experiments(&ctx.state(), &input(&p, Map::new()))
}

async fn update_experiment(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_str("experiment_id")?;
    let new_name = b.opt_str("new_name")?;
    let mut st = ctx.state();
    let now = st.now();
    let e = st
        .tracking
        .experiments
        .get_mut(id)
        .ok_or_else(|| experiment_missing(id))?;
    if let Some(n) = new_name.filter(|n| !n.is_empty()) {
        e.name = n.to_string();
    }
    e.last_update_time = now;
    Ok(extract::empty())
}

async fn experiment_stage(ctx: Ctx, Body(b): Body, stage: &str) -> ApiResult {
    let id = b.req_str("experiment_id")?;
    let mut st = ctx.state();
    let now = st.now();
    let e = st
        .tracking
        .experiments
        .get_mut(id)
        .ok_or_else(|| experiment_missing(id))?;
    e.lifecycle_stage = stage.to_string();
    e.last_update_time = now;
    Ok(extract::empty())
}

async fn set_experiment_tag(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = b.req_str("experiment_id")?;
    let key = b.req_str("key")?;
    let value = b.opt_str("value")?.unwrap_or("");
    let mut st = ctx.state();
    let e = st
        .tracking
        .experiments
        .get_mut(id)
        .ok_or_else(|| experiment_missing(id))?;
    set_kv(&mut e.tags, key, value);
    Ok(extract::empty())
}

// ---- runs ----------------------------------------------------------------------------------

async fn create_run(ctx: Ctx, Body(b): Body) -> ApiResult {
    let exp = b.req_str("experiment_id")?.to_string();
    let tags = kv_arg(&b, "tags")?;
    let caller = ctx.caller.name().to_string();
    let mut st = ctx.state();
    match st.tracking.experiments.get(&exp) {
        Some(e) if e.lifecycle_stage == "active" => {}
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "The experiment {exp} must be in the 'active' state."
            )))
        }
        None => return Err(experiment_missing(&exp)),
    }
    let now = st.now();
    let id = new_id(&mut st);
    let name = b
        .opt_str("run_name")?
        .filter(|n| !n.is_empty())
        .or_else(|| {
            tags.iter()
                .find(|t| t.key == "mlflow.runName")
                .map(|t| t.value.as_str())
        })
        .map(str::to_string)
        .unwrap_or_else(|| format!("run-{}", &id[..8]));
    let mut r = Run {
        id: id.clone(),
        experiment_id: exp,
        name: name.clone(),
        user_id: b.opt_str("user_id")?.unwrap_or(&caller).to_string(),
        status: "RUNNING".into(),
        start_time: b.opt_i64("start_time")?.unwrap_or(now),
        end_time: None,
        lifecycle_stage: "active".into(),
        params: Vec::new(),
        tags,
        metrics: Vec::new(),
        dataset_inputs: Vec::new(),
        model_inputs: Vec::new(),
        model_outputs: Vec::new(),
    };
    set_kv(&mut r.tags, "mlflow.runName", &name);
    set_kv(&mut r.tags, "mlflow.user", &caller);
    let v = run_value(&r);
    st.tracking.runs.insert(id, r);
    Ok(extract::json(json!({ "run": v })))
}

async fn get_run(ctx: Ctx, p: Params) -> ApiResult {
    let id = run_id(&input(&p, Map::new()))?;
    let st = ctx.state();
    let r = st.tracking.runs.get(&id).ok_or_else(|| run_missing(&id))?;
    Ok(extract::json(json!({ "run": run_value(r) })))
}

async fn update_run(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let status = b.opt_str("status")?.map(str::to_string);
    if let Some(s) = &status {
        if !["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"].contains(&s.as_str()) {
            return Err(ApiError::invalid(format!("Invalid run status {s}")));
        }
    }
    let end = b.opt_i64("end_time")?;
    let name = b.opt_str("run_name")?.map(str::to_string);
    let mut st = ctx.state();
    let r = active_run_mut(&mut st, &id)?;
    if let Some(s) = status {
        r.status = s;
    }
    if end.is_some() {
        r.end_time = end;
    }
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        set_kv(&mut r.tags, "mlflow.runName", &n);
        r.name = n;
    }
    let info = run_value(r)["info"].clone();
    Ok(extract::json(json!({ "run_info": info })))
}

async fn run_stage(ctx: Ctx, Body(b): Body, stage: &str) -> ApiResult {
    let id = run_id(&b)?;
    let mut st = ctx.state();
    run_mut(&mut st, &id)?.lifecycle_stage = stage.to_string();
    Ok(extract::empty())
}

/// Records one metric from a JSON object (`key`, `value`, `timestamp`, `step`).
fn add_metric(r: &mut Run, m: &Map<String, Value>, now: i64) -> Result<(), ApiError> {
    let key = m.req_str("key")?.to_string();
    // NaN and the infinities travel as strings ("NaN", "Infinity"), numbers as numbers.
    let value = match m.get("value") {
        Some(v @ Value::Number(_)) => v.clone(),
        Some(Value::String(s)) if s.parse::<f64>().is_ok() || s.eq_ignore_ascii_case("nan") => {
            Value::String(s.clone())
        }
        _ => return Err(ApiError::missing("value")),
    };
    r.metrics.push(Metric {
        key,
        value,
        timestamp: m.opt_i64("timestamp")?.unwrap_or(now),
        step: m.opt_i64("step")?.unwrap_or(0),
    });
    Ok(())
}

/// Logs a param: once set, a param cannot change, as MLflow servers enforce.
fn add_param(r: &mut Run, key: &str, value: &str) -> Result<(), ApiError> {
    match r.params.iter().find(|p| p.key == key) {
        Some(p) if p.value != value => Err(ApiError::invalid(format!(
            "Changing param values is not allowed. Param with key='{key}' was already logged \
             with value='{}' for run ID='{}'. Attempted logging new value '{value}'.",
            p.value, r.id
        ))),
        Some(_) => Ok(()),
        None => {
            r.params.push(KeyValue {
                key: key.to_string(),
                value: value.to_string(),
            });
            Ok(())
        }
    }
}

async fn log_metric(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let mut st = ctx.state();
    let now = st.now();
    add_metric(active_run_mut(&mut st, &id)?, &b, now)?;
    Ok(extract::empty())
}

async fn log_param(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let key = b.req_str("key")?;
    let value = b.opt_str("value")?.unwrap_or("");
    let mut st = ctx.state();
    add_param(active_run_mut(&mut st, &id)?, key, value)?;
    Ok(extract::empty())
}

async fn set_run_tag(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let key = b.req_str("key")?;
    let value = b.opt_str("value")?.unwrap_or("");
    let mut st = ctx.state();
    let r = active_run_mut(&mut st, &id)?;
    set_kv(&mut r.tags, key, value);
    if key == "mlflow.runName" {
        r.name = value.to_string();
    }
    Ok(extract::empty())
}

async fn delete_run_tag(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let key = b.req_str("key")?;
    let mut st = ctx.state();
    let r = active_run_mut(&mut st, &id)?;
    let before = r.tags.len();
    r.tags.retain(|t| t.key != key);
    if r.tags.len() == before {
        return Err(ApiError::not_found(format!(
            "No tag with name: {key} in run with id {id}"
        )));
    }
    Ok(extract::empty())
}

async fn log_batch(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let params = kv_arg(&b, "params")?;
    let tags = kv_arg(&b, "tags")?;
    let metrics: Vec<Map<String, Value>> = match b.opt_array("metrics")? {
        None => Vec::new(),
        Some(a) => a
            .iter()
            .map(|m| {
                m.as_object()
                    .cloned()
                    .ok_or_else(|| ApiError::invalid("Invalid metrics: expected objects"))
            })
            .collect::<Result<_, _>>()?,
    };
    if metrics.len() > 1000 || params.len() > 100 || tags.len() > 100 {
        return Err(ApiError::invalid(
            "A batch logging request can contain at most 1000 metrics, 100 params and 100 tags",
        ));
    }
    let mut st = ctx.state();
    let now = st.now();
    let r = active_run_mut(&mut st, &id)?;
    for p in &params {
        add_param(r, &p.key, &p.value)?;
    }
    for t in &tags {
        set_kv(&mut r.tags, &t.key, &t.value);
        if t.key == "mlflow.runName" {
            r.name = t.value.clone();
        }
    }
    for m in &metrics {
        add_metric(r, m, now)?;
    }
    Ok(extract::empty())
}

async fn log_inputs(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let datasets = b.opt_array("datasets")?.cloned().unwrap_or_default();
    let models = b.opt_array("models")?.cloned().unwrap_or_default();
    let mut st = ctx.state();
    let r = active_run_mut(&mut st, &id)?;
    r.dataset_inputs.extend(datasets);
    r.model_inputs.extend(models);
    Ok(extract::empty())
}

async fn log_outputs(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let models = b.opt_array("models")?.cloned().unwrap_or_default();
    let mut st = ctx.state();
    for m in &models {
        let mid = m.get("model_id").and_then(Value::as_str).unwrap_or("");
        if !st.tracking.logged_models.contains_key(mid) {
            return Err(logged_model_missing(mid));
        }
    }
    active_run_mut(&mut st, &id)?.model_outputs.extend(models);
    Ok(extract::empty())
}

/// The MLflow 2 `log-model` call: the model's MLmodel as JSON, kept in the run's
/// `mlflow.log-model.history` tag as MLflow servers keep it.
async fn log_model_json(ctx: Ctx, Body(b): Body) -> ApiResult {
    let id = run_id(&b)?;
    let model: Value = serde_json::from_str(b.req_str("model_json")?)
        .map_err(|e| ApiError::invalid(format!("Invalid model_json: {e}")))?;
    let mut st = ctx.state();
    let r = active_run_mut(&mut st, &id)?;
    let mut history: Vec<Value> = r
        .tags
        .iter()
        .find(|t| t.key == "mlflow.log-model.history")
        .and_then(|t| serde_json::from_str(&t.value).ok())
        .unwrap_or_default();
    history.push(model);
    let text = serde_json::to_string(&history).unwrap_or_default();
    set_kv(&mut r.tags, "mlflow.log-model.history", &text);
    Ok(extract::empty())
}

async fn search_runs(ctx: Ctx, Body(b): Body) -> ApiResult {
    let filter = Filter::parse(b.opt_str("filter")?.unwrap_or(""))?;
    let view = b.opt_str("run_view_type")?;
    let experiments: Vec<String> = b
        .opt_array("experiment_ids")?
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let st = ctx.state();
    let mut runs: Vec<&Run> = Vec::new();
    for r in st.tracking.runs.values() {
        if !experiments.contains(&r.experiment_id) || !in_view(view, &r.lifecycle_stage) {
            continue;
        }
        let latest = latest_metrics(r);
        let keep = filter.matches(|kind, key| match kind {
            Kind::Attr => match key {
                "run_id" | "run_uuid" => Some(json!(r.id)),
                "run_name" => Some(json!(r.name)),
                "status" => Some(json!(r.status)),
                "user_id" => Some(json!(r.user_id)),
                "start_time" => Some(json!(r.start_time)),
                "end_time" => Some(json!(r.end_time.unwrap_or(0))),
                "artifact_uri" => Some(json!(format!(
                    "dbfs:{}",
                    run_artifact_root(&r.experiment_id, &r.id)
                ))),
                _ => None,
            },
            Kind::Tag => r.tags.iter().find(|t| t.key == key).map(|t| json!(t.value)),
            Kind::Param => r
                .params
                .iter()
                .find(|t| t.key == key)
                .map(|t| json!(t.value)),
            Kind::Metric => latest
                .iter()
                .find(|m| m["key"] == key)
                .map(|m| m["value"].clone()),
        })?;
        if keep {
            runs.push(r);
        }
    }
    // Newest first (start time, then id), the default order of the MLflow servers.
    runs.sort_by(|a, b| (b.start_time, &b.id).cmp(&(a.start_time, &a.id)));
    let items: Vec<Value> = runs.into_iter().map(run_value).collect();
    let (start, end) = page(&b, 1000, 50_000, items.len())?;
    Ok(mark(extract::json(paged("runs", items, start, end)), false))
}

async fn metric_history(ctx: Ctx, p: Params) -> ApiResult {
    let b = input(&p, Map::new());
    let id = run_id(&b)?;
    let key = b.req_str("metric_key")?;
    let st = ctx.state();
    let r = st.tracking.runs.get(&id).ok_or_else(|| run_missing(&id))?;
    let items: Vec<Value> = r
        .metrics
        .iter()
        .filter(|m| m.key == key)
        .map(metric_value)
        .collect();
    let (start, end) = page(&b, 25_000, 25_000, items.len())?;
    Ok(extract::json(paged("metrics", items, start, end)))
}

// ---- artifacts -----------------------------------------------------------------------------

/// The files directly inside `dir` (or `dir` itself, when it is a file), with paths relative to
/// `root`; nothing when it does not exist.
fn listing(st: &State, root: &str, dir: &str) -> Vec<FileInfo> {
    let strip = |full: &str| full[root.len()..].trim_start_matches('/').to_string();
    match st.dbfs.nodes.get(dir) {
        Some(n) if !n.is_dir => vec![FileInfo {
            path: strip(dir),
            is_dir: false,
            file_size: Some(n.data.len() as i64),
        }],
        Some(_) => dbfs::children(st, dir)
            .iter()
            .filter_map(|c| {
                let n = st.dbfs.nodes.get(c)?;
                Some(FileInfo {
                    path: strip(c),
                    is_dir: n.is_dir,
                    file_size: (!n.is_dir).then_some(n.data.len() as i64),
                })
            })
            .collect(),
        None => Vec::new(),
    }
}

fn listing_answer(st: &State, root: &str, rel: &str) -> ApiResult {
    let dir = inside(root, rel)?;
    let files = listing(st, root, &dir);
    let mut out = json!({ "root_uri": format!("dbfs:{root}") });
    if !files.is_empty() {
        out["files"] = json!(files);
    }
    Ok(extract::json(out))
}

async fn list_run_artifacts(ctx: Ctx, p: Params) -> ApiResult {
    let b = input(&p, Map::new());
    let id = run_id(&b)?;
    let st = ctx.state();
    let r = st.tracking.runs.get(&id).ok_or_else(|| run_missing(&id))?;
    let root = run_artifact_root(&r.experiment_id, &r.id);
    listing_answer(&st, &root, p.get("path").unwrap_or(""))
}

async fn list_logged_model_artifacts(ctx: Ctx, Path(id): Path<String>, p: Params) -> ApiResult {
    let st = ctx.state();
    let m = st
        .tracking
        .logged_models
        .get(&id)
        .ok_or_else(|| logged_model_missing(&id))?;
    let root = logged_model_artifact_root(&m.experiment_id, &m.id);
    listing_answer(&st, &root, p.get("artifact_directory_path").unwrap_or(""))
}

/// One credential: a signed URL for `path` as real workspaces describe an S3 presigned URL.
fn credential(st: &State, base: &str, access: Access, path: &str) -> Value {
    json!({
        "signed_uri": signed::url(st, base, access, path),
        "type": "AWS_PRESIGNED_URL",
        "headers": [],
    })
}

/// The paths of a credential request (`path` or `paths`: a string or a list) and the page of
/// them to answer.
fn credential_paths(b: &Map<String, Value>, field: &str) -> Result<Vec<String>, ApiError> {
    let paths: Vec<String> = match b.get(field) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid(format!("Invalid {field}: expected strings")))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(ApiError::missing(field)),
    };
    let start = match b.opt_str("page_token")?.filter(|t| !t.is_empty()) {
        Some(t) => read_page_token(t)?
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?,
        None => 0,
    };
    Ok(paths.into_iter().skip(start).collect())
}

fn next_token(b: &Map<String, Value>, answered: usize, left: usize) -> Option<String> {
    if left <= answered {
        return None;
    }
    let start = b
        .opt_str("page_token")
        .ok()
        .flatten()
        .and_then(|t| read_page_token(t).ok())
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    Some(extract::page_token(&(start + answered).to_string()))
}

async fn run_credentials(ctx: Ctx, headers: HeaderMap, Body(b): Body, access: Access) -> ApiResult {
    let id = run_id(&b)?;
    let paths = credential_paths(&b, "path")?;
    let base = signed::base_url(&headers);
    let st = ctx.state();
    let r = st.tracking.runs.get(&id).ok_or_else(|| run_missing(&id))?;
    let root = run_artifact_root(&r.experiment_id, &r.id);
    let mut infos = Vec::new();
    for rel in paths.iter().take(CREDENTIALS_PAGE) {
        let full = dbfs_path(&inside(&root, rel)?)?;
        let mut c = credential(&st, &base, access, &full);
        c["run_id"] = json!(id);
        c["path"] = json!(rel);
        infos.push(c);
    }
    let mut out = json!({ "credential_infos": infos });
    if let Some(t) = next_token(&b, CREDENTIALS_PAGE, paths.len()) {
        out["next_page_token"] = json!(t);
    }
    Ok(mark(extract::json(out), false))
}

async fn logged_model_credentials(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(b): Body,
    access: Access,
) -> ApiResult {
    let paths = credential_paths(&b, "paths")?;
    let base = signed::base_url(&headers);
    let st = ctx.state();
    let m = st
        .tracking
        .logged_models
        .get(&id)
        .ok_or_else(|| logged_model_missing(&id))?;
    let root = logged_model_artifact_root(&m.experiment_id, &m.id);
    let mut creds = Vec::new();
    for rel in paths.iter().take(CREDENTIALS_PAGE) {
        let full = dbfs_path(&inside(&root, rel)?)?;
        let mut c = credential(&st, &base, access, &full);
        c["path"] = json!(rel);
        creds.push(json!({ "model_id": id, "credential_info": c }));
    }
    let mut out = json!({ "credentials": creds });
    if let Some(t) = next_token(&b, CREDENTIALS_PAGE, paths.len()) {
        out["next_page_token"] = json!(t);
    }
    Ok(mark(extract::json(out), false))
}

// ---- logged models -------------------------------------------------------------------------

async fn create_logged_model(ctx: Ctx, Body(b): Body) -> ApiResult {
    let exp = b.req_str("experiment_id")?.to_string();
    let tags = kv_arg(&b, "tags")?;
    let params = kv_arg(&b, "params")?;
    let source_run = b
        .opt_str("source_run_id")?
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let mut st = ctx.state();
    if !st.tracking.experiments.contains_key(&exp) {
        return Err(experiment_missing(&exp));
    }
    if let Some(r) = &source_run {
        if !st.tracking.runs.contains_key(r) {
            return Err(run_missing(r));
        }
    }
    let now = st.now();
    let id = format!("m-{}", new_id(&mut st));
    let m = LoggedModel {
        name: b
            .opt_str("name")?
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("model-{}", &id[2..10])),
        id: id.clone(),
        experiment_id: exp,
        model_type: b.opt_str("model_type")?.map(str::to_string),
        source_run_id: source_run,
        status: "LOGGED_MODEL_PENDING".into(),
        status_message: None,
        created: now,
        updated: now,
        tags,
        params,
        metrics: Vec::new(),
    };
    let v = logged_model_value(&m);
    st.tracking.logged_models.insert(id, m);
    Ok(extract::json(json!({ "model": v })))
}

async fn get_logged_model(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let st = ctx.state();
    let m = st
        .tracking
        .logged_models
        .get(&id)
        .ok_or_else(|| logged_model_missing(&id))?;
    Ok(extract::json(json!({ "model": logged_model_value(m) })))
}

async fn finalize_logged_model(ctx: Ctx, Path(id): Path<String>, Body(b): Body) -> ApiResult {
    let status = b.req_str("status")?.to_string();
    if !["LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"].contains(&status.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid status {status}: a logged model is finalized as LOGGED_MODEL_READY or \
             LOGGED_MODEL_UPLOAD_FAILED"
        )));
    }
    let mut st = ctx.state();
    let now = st.now();
    let m = logged_model_mut(&mut st, &id)?;
    m.status = status;
    m.updated = now;
    Ok(extract::json(json!({ "model": logged_model_value(m) })))
}

async fn delete_logged_model(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let mut st = ctx.state();
    let m = st
        .tracking
        .logged_models
        .remove(&id)
        .ok_or_else(|| logged_model_missing(&id))?;
    let root = logged_model_artifact_root(&m.experiment_id, &m.id);
    dbfs::remove_tree(&mut st, &root);
    Ok(extract::empty())
}

async fn set_logged_model_tags(ctx: Ctx, Path(id): Path<String>, Body(b): Body) -> ApiResult {
    let tags = kv_arg(&b, "tags")?;
    let mut st = ctx.state();
    let now = st.now();
    let m = logged_model_mut(&mut st, &id)?;
    for t in tags {
        set_kv(&mut m.tags, &t.key, &t.value);
    }
    m.updated = now;
    Ok(extract::json(json!({ "model": logged_model_value(m) })))
}

async fn delete_logged_model_tag(ctx: Ctx, Path((id, key)): Path<(String, String)>) -> ApiResult {
    let mut st = ctx.state();
    let m = logged_model_mut(&mut st, &id)?;
    let before = m.tags.len();
    m.tags.retain(|t| t.key != key);
    if m.tags.len() == before {
        return Err(ApiError::not_found(format!(
            "No tag with key {key} on logged model {id}"
        )));
    }
    Ok(extract::empty())
}

async fn log_logged_model_params(ctx: Ctx, Path(id): Path<String>, Body(b): Body) -> ApiResult {
    let params = kv_arg(&b, "params")?;
    let mut st = ctx.state();
    let m = logged_model_mut(&mut st, &id)?;
    for p in params {
        set_kv(&mut m.params, &p.key, &p.value);
    }
    Ok(extract::empty())
}

async fn search_logged_models(ctx: Ctx, Body(b): Body) -> ApiResult {
    let filter = Filter::parse(b.opt_str("filter")?.unwrap_or(""))?;
    let experiments: Vec<String> = b
        .opt_array("experiment_ids")?
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let st = ctx.state();
    let mut models: Vec<&LoggedModel> = Vec::new();
    for m in st.tracking.logged_models.values() {
        if !experiments.is_empty() && !experiments.contains(&m.experiment_id) {
            continue;
        }
        let keep = filter.matches(|kind, key| match kind {
            Kind::Attr => match key {
                "name" => Some(json!(m.name)),
                "model_id" => Some(json!(m.id)),
                "model_type" => Some(json!(m.model_type.clone().unwrap_or_default())),
                "status" => Some(json!(m.status)),
                "source_run_id" => Some(json!(m.source_run_id.clone().unwrap_or_default())),
                "creation_timestamp" | "creation_time" => Some(json!(m.created)),
                "last_updated_timestamp" => Some(json!(m.updated)),
                _ => None,
            },
            Kind::Tag => m.tags.iter().find(|t| t.key == key).map(|t| json!(t.value)),
            Kind::Param => m
                .params
                .iter()
                .find(|t| t.key == key)
                .map(|t| json!(t.value)),
            Kind::Metric => None,
        })?;
        if keep {
            models.push(m);
        }
    }
    models.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    let items: Vec<Value> = models.into_iter().map(logged_model_value).collect();
    let (start, end) = page(&b, 50, 50, items.len())?;
    Ok(mark(
        extract::json(paged("models", items, start, end)),
        false,
    ))
}

// ---- search filters ------------------------------------------------------------------------

/// What a filter clause compares: an attribute, a tag, a param or a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Attr,
    Tag,
    Param,
    Metric,
}

/// One `identifier op value` clause.
#[derive(Debug, Clone)]
struct Clause {
    kind: Kind,
    key: String,
    op: String,
    value: Value,
}

/// A search filter: clauses joined by `AND`, as the MLflow search syntax writes them.
#[derive(Debug, Clone, Default)]
struct Filter(Vec<Clause>);

impl Filter {
    fn parse(f: &str) -> Result<Filter, ApiError> {
        let bad = |why: &str| ApiError::invalid(format!("Invalid filter '{f}': {why}"));
        let chars: Vec<char> = f.chars().collect();
        let mut i = 0;
        let ws = |i: &mut usize| {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
        };
        // A quoted string ('…', "…" or `…`), with backslash escapes.
        let quoted = |i: &mut usize| -> Option<String> {
            let q = *chars.get(*i)?;
            if !['\'', '"', '`'].contains(&q) {
                return None;
            }
            *i += 1;
            let mut s = String::new();
            loop {
                match chars.get(*i)? {
                    '\\' => {
                        s.push(*chars.get(*i + 1)?);
                        *i += 2;
                    }
                    c if *c == q => {
                        *i += 1;
                        return Some(s);
                    }
                    c => {
                        s.push(*c);
                        *i += 1;
                    }
                }
            }
        };
        let mut out = Vec::new();
        loop {
            ws(&mut i);
            if i >= chars.len() {
                break;
            }
            // Identifier: `prefix.key` where key may be quoted, or a bare attribute.
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let first: String = chars[start..i].iter().collect();
            let (kind, key) = if chars.get(i) == Some(&'.') {
                i += 1;
                let kind = match first.to_ascii_lowercase().as_str() {
                    "attribute" | "attributes" | "attr" | "run" => Kind::Attr,
                    "tag" | "tags" => Kind::Tag,
                    "param" | "params" | "parameter" | "parameters" => Kind::Param,
                    "metric" | "metrics" => Kind::Metric,
                    other => return Err(bad(&format!("unknown entity type '{other}'"))),
                };
                let key = match quoted(&mut i) {
                    Some(k) => k,
                    None => {
                        let s = i;
                        while i < chars.len()
                            && (chars[i].is_alphanumeric() || "_.-/:".contains(chars[i]))
                        {
                            i += 1;
                        }
                        chars[s..i].iter().collect()
                    }
                };
                (kind, key)
            } else if first.is_empty() {
                return Err(bad("expected an identifier"));
            } else {
                (Kind::Attr, first)
            };
            ws(&mut i);
            let op = if chars[i..].starts_with(&['!', '=']) {
                i += 2;
                "!=".to_string()
            } else if chars[i..].starts_with(&['<', '=']) || chars[i..].starts_with(&['>', '=']) {
                i += 2;
                chars[i - 2..i].iter().collect()
            } else if matches!(chars.get(i), Some('=' | '<' | '>')) {
                i += 1;
                chars[i - 1].to_string()
            } else {
                let s = i;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let w: String = chars[s..i].iter().collect::<String>().to_ascii_uppercase();
                if w != "LIKE" && w != "ILIKE" {
                    return Err(bad(&format!("unsupported comparator '{w}'")));
                }
                w
            };
            ws(&mut i);
            let value = match quoted(&mut i) {
                Some(s) => Value::String(s),
                None => {
                    let s = i;
                    while i < chars.len()
                        && (chars[i].is_ascii_alphanumeric() || "+-.".contains(chars[i]))
                    {
                        i += 1;
                    }
                    let n: String = chars[s..i].iter().collect();
                    let n: f64 = n
                        .parse()
                        .map_err(|_| bad("expected a quoted string or a number"))?;
                    json!(n)
                }
            };
            out.push(Clause {
                kind,
                key,
                op,
                value,
            });
            ws(&mut i);
            if i < chars.len() {
                let s = i;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let w: String = chars[s..i].iter().collect();
                if !w.eq_ignore_ascii_case("AND") {
                    return Err(bad("clauses are joined with AND"));
                }
            }
        }
        Ok(Filter(out))
    }

    /// True when every clause holds; `get` gives the compared value (absent: the clause fails,
    /// except for an unknown attribute, which is an error).
    fn matches(&self, get: impl Fn(Kind, &str) -> Option<Value>) -> Result<bool, ApiError> {
        for c in &self.0 {
            let Some(have) = get(c.kind, &c.key) else {
                if c.kind == Kind::Attr {
                    return Err(ApiError::invalid(format!(
                        "Invalid attribute key '{}' specified",
                        c.key
                    )));
                }
                return Ok(false);
            };
            if !compare(&have, &c.op, &c.value) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn compare(have: &Value, op: &str, want: &Value) -> bool {
    if let (Value::String(h), Value::String(w)) = (have, want) {
        return match op {
            "=" => h == w,
            "!=" => h != w,
            "LIKE" => super::mlflow::sql_like(w, h, false),
            "ILIKE" => super::mlflow::sql_like(w, h, true),
            _ => match (h.parse::<f64>(), w.parse::<f64>()) {
                (Ok(x), Ok(y)) => numeric(x, op, y),
                _ => false,
            },
        };
    }
    match (as_f64(have), as_f64(want)) {
        (Some(x), Some(y)) => numeric(x, op, y),
        _ => false,
    }
}

fn numeric(x: f64, op: &str, y: f64) -> bool {
    match op {
        "=" => x == y,
        "!=" => x != y,
        "<" => x < y,
        ">" => x > y,
        "<=" => x <= y,
        ">=" => x >= y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = Filter::parse(
            "tags.`mlflow.runName` = 'x' and params.alpha != \"0.1\" AND metrics.rmse <= 0.5 \
             AND attributes.status LIKE 'FIN%'",
        )
        .unwrap();
        assert_eq!(f.0.len(), 4);
        assert_eq!(
            (f.0[0].kind, f.0[0].key.as_str()),
            (Kind::Tag, "mlflow.runName")
        );
        assert_eq!(f.0[2].op, "<=");
        let get = |k: Kind, key: &str| match (k, key) {
            (Kind::Tag, "mlflow.runName") => Some(json!("x")),
            (Kind::Param, "alpha") => Some(json!("0.5")),
            (Kind::Metric, "rmse") => Some(json!(0.25)),
            (Kind::Attr, "status") => Some(json!("FINISHED")),
            _ => None,
        };
        assert!(f.matches(get).unwrap());
        assert!(!Filter::parse("metrics.rmse > 1")
            .unwrap()
            .matches(get)
            .unwrap());
        assert!(Filter::parse("name = 'a' OR name = 'b'").is_err());
        assert!(Filter::parse("bogus.x = 'a'").is_err());
        assert!(Filter::parse("").unwrap().matches(get).unwrap());
        assert!(Filter::parse("nope = 'a'").unwrap().matches(get).is_err());
    }

    #[test]
    fn files_paths_map_both_ways() {
        let mut st = State::empty(None);
        st.tracking.runs.insert(
            "r1".into(),
            Run {
                id: "r1".into(),
                experiment_id: "7".into(),
                name: "n".into(),
                user_id: "u".into(),
                status: "RUNNING".into(),
                start_time: 0,
                end_time: None,
                lifecycle_stage: "active".into(),
                params: vec![],
                tags: vec![],
                metrics: vec![],
                dataset_inputs: vec![],
                model_inputs: vec![],
                model_outputs: vec![],
            },
        );
        let f = "/WorkspaceInternal/Mlflow/Artifacts/7/Runs/r1/artifacts/a.txt";
        let d = files_to_dbfs(&st, f).unwrap();
        assert_eq!(d, "/databricks/mlflow-tracking/7/r1/artifacts/a.txt");
        assert_eq!(dbfs_to_files(&d).unwrap(), f);
        // Another experiment's id, or an unknown run, is not a path of this workspace.
        assert!(files_to_dbfs(&st, "/WorkspaceInternal/Mlflow/Artifacts/8/Runs/r1/x").is_none());
        assert!(files_to_dbfs(&st, "/WorkspaceInternal/Mlflow/Artifacts/7/Runs/r2").is_none());
        assert_eq!(
            dbfs_to_files("/databricks/mlflow-tracking/7/logged_models/m-1/artifacts/MLmodel")
                .unwrap(),
            "/WorkspaceInternal/Mlflow/Artifacts/7/LoggedModels/m-1/artifacts/MLmodel"
        );
    }
}
