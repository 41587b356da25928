//! The workspace MLflow model registry (`/api/2.0/mlflow/*`): registered models (create, get in
//! the OSS and Databricks flavours, search, list, update, rename, delete, tags) and model
//! versions (create, get, search, update, delete, tags, stage transitions, download URI), with
//! artifact listing and download through signed URLs (`signed.rs`).
//!
//! No aliases: real workspaces keep aliases for Unity Catalog models only. The workspace
//! registry serves no `registered-models/alias` route (MLflow 3.17 refuses the alias calls for
//! it before sending anything), so such a request gets the `ENDPOINT_NOT_FOUND` any path a
//! workspace does not serve gets (CONFORMANCE-NOTES.md).
//!
//! A version's artifacts live in the emulated DBFS at its storage location
//! `dbfs:/databricks/mlflow-registry/<model id>/models/<name>/<version>`, which `get-download-uri`
//! returns. Creating a version copies its source there: a `dbfs:/` path (the artifacts of a run
//! or logged model are DBFS paths too), `runs:/<run>/<path>` or `models:/<logged model id>`; a
//! source that does not exist fails registration; other sources register with no artifacts.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::mlflow::{FileInfo, ModelVersion, RegisteredModel};
use crate::model::permissions::AccessControlRequest;
use crate::model::KeyValue;

use super::dbfs::{self, subtree};
use super::error::{ApiError, ApiResult};
use super::extract::{self, mark, read_page_token, Body, Ctx, Fields, Params};
use super::signed;
use super::state::{ModelState, Shared, State};
use super::tracking;

/// The four stages, as the registry spells them.
const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    const M: &str = "/api/2.0/mlflow/registered-models";
    const V: &str = "/api/2.0/mlflow/model-versions";
    Router::new()
        .route(&format!("{M}/create"), post(create_model))
        .route(&format!("{M}/get"), get(get_model))
        .route(
            "/api/2.0/mlflow/databricks/registered-models/get",
            get(get_model_databricks),
        )
        .route(&format!("{M}/search"), get(search_models))
        .route(&format!("{M}/list"), get(search_models))
        .route(&format!("{M}/update"), axum::routing::patch(update_model))
        .route(&format!("{M}/rename"), post(rename_model))
        .route(&format!("{M}/delete"), axum::routing::delete(delete_model))
        .route(&format!("{M}/set-tag"), post(set_model_tag))
        .route(
            &format!("{M}/delete-tag"),
            axum::routing::delete(delete_model_tag),
        )
        .route(
            &format!("{M}/get-latest-versions"),
            get(latest_versions_get).post(latest_versions_post),
        )
        .route(&format!("{V}/create"), post(create_version))
        .route(&format!("{V}/get"), get(get_version))
        .route(&format!("{V}/search"), get(search_versions))
        .route(&format!("{V}/update"), axum::routing::patch(update_version))
        .route(
            &format!("{V}/delete"),
            axum::routing::delete(delete_version),
        )
        .route(&format!("{V}/set-tag"), post(set_version_tag))
        .route(
            &format!("{V}/delete-tag"),
            axum::routing::delete(delete_version_tag),
        )
        .route(
            &format!("{V}/transition-stage"),
            post(|ctx: Ctx, b: Body| transition(ctx, b, false)),
        )
        .route(
            "/api/2.0/mlflow/databricks/model-versions/transition-stage",
            post(|ctx: Ctx, b: Body| transition(ctx, b, true)),
        )
        .route(&format!("{V}/get-download-uri"), get(download_uri))
        .route(&format!("{V}/list-artifacts"), get(list_artifacts))
        .route(&format!("{V}/get-signed-download-uri"), get(signed_uri))
}

/// The DBFS path (without `dbfs:`) where a version's artifacts are stored.
pub(crate) fn storage_path(model_id: &str, name: &str, version: u64) -> String {
    format!("/databricks/mlflow-registry/{model_id}/models/{name}/{version}")
}

fn model_missing(name: &str) -> ApiError {
    ApiError::not_found(format!("Registered Model (name={name}) not found"))
}

fn version_missing(name: &str, v: &str) -> ApiError {
    ApiError::not_found(format!(
        "Model Version (name={name}, version={v}) not found"
    ))
}

fn model<'a>(st: &'a State, name: &str) -> Result<&'a ModelState, ApiError> {
    st.models.get(name).ok_or_else(|| model_missing(name))
}

fn model_mut<'a>(st: &'a mut State, name: &str) -> Result<&'a mut ModelState, ApiError> {
    st.models.get_mut(name).ok_or_else(|| model_missing(name))
}

/// A version number given as a string or a number.
fn version_arg(b: &Map<String, Value>) -> Result<u64, ApiError> {
    let raw = match b.get("version") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::missing("version")),
    };
    raw.trim().parse().map_err(|_| {
        ApiError::invalid(format!(
            "Invalid version {raw}: it must be a positive integer"
        ))
    })
}

fn input(p: &Params, mut b: Map<String, Value>) -> Map<String, Value> {
    p.merge_into(&mut b);
    b
}

fn params_map(p: &Params) -> Map<String, Value> {
    input(p, Map::new())
}

fn version_value(ms: &ModelState, v: &ModelVersion) -> Value {
    let mut mv = v.clone();
    mv.aliases = ms
        .model
        .aliases
        .iter()
        .filter(|a| a.version == v.version)
        .map(|a| a.alias.clone())
        .collect();
    serde_json::to_value(mv).unwrap_or_default()
}

fn latest(ms: &ModelState, stages: &[String]) -> Vec<Value> {
    STAGES
        .iter()
        .filter(|s| stages.is_empty() || stages.iter().any(|x| x.eq_ignore_ascii_case(s)))
        .filter_map(|s| {
            ms.versions
                .values()
                .filter(|v| v.current_stage.as_deref().unwrap_or("None") == *s)
                .max_by_key(|v| v.version.parse::<u64>().unwrap_or(0))
        })
        .map(|v| version_value(ms, v))
        .collect()
}

fn model_value(ms: &ModelState) -> Value {
    let mut v = serde_json::to_value(&ms.model).unwrap_or_default();
    let latest = latest(ms, &[]);
    if !latest.is_empty() {
        v["latest_versions"] = Value::Array(latest);
    }
    v
}

fn tags_arg(b: &Map<String, Value>) -> Result<Vec<KeyValue>, ApiError> {
    match b.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::invalid(format!("Invalid tags: {e}"))),
    }
}

fn set_tag(tags: &mut Vec<KeyValue>, key: &str, value: &str) {
    match tags.iter_mut().find(|t| t.key == key) {
        Some(t) => t.value = value.to_string(),
        None => tags.push(KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }),
    }
    tags.sort();
}

/// Creates a registered model; used by the API so that the creator's rights match real ones.
pub(crate) fn new_model(st: &mut State, name: &str, caller: &super::extract::Caller) -> ModelState {
    let now = st.now();
    let id = format!("{:032x}", st.ids.next_model);
    st.ids.next_model += 1;
    ModelState {
        id,
        model: RegisteredModel {
            name: name.to_string(),
            creation_timestamp: Some(now),
            last_updated_timestamp: Some(now),
            user_id: Some(caller.name().to_string()),
            description: None,
            latest_versions: Vec::new(),
            tags: Vec::new(),
            aliases: Vec::new(),
            owner: None,
        },
        versions: Default::default(),
        acl: vec![AccessControlRequest {
            principal: caller.principal(),
            permission_level: "CAN_MANAGE".into(),
        }],
        next_version: 1,
        pending: Default::default(),
    }
}

async fn create_model(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("name")?.to_string();
    let tags = tags_arg(&b)?;
    let description = b.opt_str("description")?.map(str::to_string);
    let caller = ctx.caller.clone();
    let mut st = ctx.state();
    if st.models.contains_key(&name) {
        return Err(ApiError::exists(format!(
            "Registered Model (name={name}) already exists."
        )));
    }
    let mut ms = new_model(&mut st, &name, &caller);
    ms.model.description = description;
    for t in tags {
        set_tag(&mut ms.model.tags, &t.key, &t.value);
    }
    let v = model_value(&ms);
    st.models.insert(name, ms);
    Ok(extract::json(json!({ "registered_model": v })))
}

async fn get_model(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("name")?;
    let st = ctx.state();
    Ok(extract::json(
        json!({ "registered_model": model_value(model(&st, name)?) }),
    ))
}

async fn get_model_databricks(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("name")?;
    let st = ctx.state();
    let ms = model(&st, name)?;
    let mut v = model_value(ms);
    v["id"] = json!(ms.id);
    v["permission_level"] = json!("CAN_MANAGE");
    Ok(extract::json(json!({ "registered_model_databricks": v })))
}

/// One `attr op value` clause of a search filter.
struct Clause {
    attr: String,
    op: String,
    value: String,
}

fn parse_filter(f: &str) -> Result<Vec<Clause>, ApiError> {
    // Hand-written: the crate's regex has no Unicode case folding, and `(?i)` needs it.
    let bad = || ApiError::invalid(format!("Invalid filter '{f}'"));
    let chars: Vec<char> = f.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let word = |i: &mut usize| {
        let s = *i;
        while *i < chars.len() && chars[*i].is_ascii_alphabetic() {
            *i += 1;
        }
        chars[s..*i].iter().collect::<String>().to_ascii_uppercase()
    };
    let mut out = Vec::new();
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.`".contains(chars[i])) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let attr: String = chars[start..i].iter().collect();
        let attr = attr.trim_matches('`').to_ascii_lowercase();
        skip_ws(&mut i);
        let op = if chars[i..].starts_with(&['!', '=']) {
            i += 2;
            "!=".to_string()
        } else if chars.get(i) == Some(&'=') {
            i += 1;
            "=".to_string()
        } else {
            match word(&mut i).as_str() {
                w @ ("LIKE" | "ILIKE") => w.to_string(),
                _ => return Err(bad()),
            }
        };
        skip_ws(&mut i);
        let quote = *chars.get(i).ok_or_else(bad)?;
        if quote != '\'' && quote != '"' {
            return Err(bad());
        }
        i += 1;
        let mut value = String::new();
        loop {
            match chars.get(i) {
                None => return Err(bad()),
                Some('\\') => {
                    value.push(*chars.get(i + 1).ok_or_else(bad)?);
                    i += 2;
                }
                Some(c) if *c == quote => {
                    i += 1;
                    break;
                }
                Some(c) => {
                    value.push(*c);
                    i += 1;
                }
            }
        }
        out.push(Clause { attr, op, value });
        skip_ws(&mut i);
        if i < chars.len() && word(&mut i) != "AND" {
            return Err(bad());
        }
    }
    Ok(out)
}

pub(crate) fn sql_like(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let (pattern, value) = if case_insensitive {
        (pattern.to_lowercase(), value.to_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    let mut re = String::from("(?s)^");
    for ch in pattern.chars() {
        match ch {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(&value))
}

fn matches(clauses: &[Clause], get: impl Fn(&str) -> Option<String>) -> Result<bool, ApiError> {
    for c in clauses {
        let v = get(&c.attr).ok_or_else(|| {
            ApiError::invalid(format!("Invalid attribute key '{}' in filter", c.attr))
        })?;
        let ok = match c.op.as_str() {
            "=" => v == c.value,
            "!=" => v != c.value,
            "LIKE" => sql_like(&c.value, &v, false),
            _ => sql_like(&c.value, &v, true),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn page_bounds(
    p: &Params,
    default: usize,
    max: usize,
    len: usize,
) -> Result<(usize, usize), ApiError> {
    let size = match p.i64("max_results")? {
        None => default,
        Some(n) if n >= 1 && (n as usize) <= max => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied: it must be between 1 and {max}"
            )))
        }
    };
    let start = match p.get("page_token").filter(|t| !t.is_empty()) {
        Some(t) => read_page_token(t)?
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?,
        None => 0,
    };
    let start = start.min(len);
    Ok((start, (start + size).min(len)))
}

fn order(items: &mut [Value], order_by: &[&str], default: &[(&str, bool)]) {
    let keys: Vec<(String, bool)> = if order_by.is_empty() {
        default.iter().map(|(k, d)| (k.to_string(), *d)).collect()
    } else {
        order_by
            .iter()
            .map(|o| {
                let mut parts = o.split_whitespace();
                let k = parts.next().unwrap_or("").to_string();
                let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("DESC"));
                (k, desc)
            })
            .collect()
    };
    items.sort_by(|a, b| {
        for (k, desc) in &keys {
            let field = if k == "version_number" {
                "version"
            } else {
                k.as_str()
            };
            let (x, y) = (&a[field], &b[field]);
            let ord = match (x, y) {
                (Value::String(s), Value::String(t)) => {
                    match (s.parse::<u64>(), t.parse::<u64>()) {
                        (Ok(m), Ok(n)) if field == "version" => m.cmp(&n),
                        _ => s.cmp(t),
                    }
                }
                (Value::Number(m), Value::Number(n)) => {
                    m.as_i64().unwrap_or(0).cmp(&n.as_i64().unwrap_or(0))
                }
                _ => std::cmp::Ordering::Equal,
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn paged(key: &str, mut items: Vec<Value>, start: usize, end: usize) -> Response {
    let total = items.len();
    let page: Vec<Value> = items.drain(start..end).collect();
    let mut out = Map::new();
    if !page.is_empty() {
        out.insert(key.into(), Value::Array(page));
    }
    if end < total {
        out.insert(
            "next_page_token".into(),
            json!(extract::page_token(&end.to_string())),
        );
    }
    extract::json(Value::Object(out))
}

async fn search_models(ctx: Ctx, p: Params) -> ApiResult {
    let clauses = parse_filter(p.get("filter").unwrap_or(""))?;
    let st = ctx.state();
    let mut items = Vec::new();
    for ms in candidates(&st, &clauses) {
        let keep = matches(&clauses, |a| match a {
            "name" => Some(ms.model.name.clone()),
            _ => None,
        })?;
        if keep {
            items.push(model_value(ms));
        }
    }
    order(&mut items, &p.all("order_by"), &[("name", false)]);
    let (start, end) = page_bounds(&p, 100, 1000, items.len())?;
    Ok(paged("registered_models", items, start, end))
}

async fn update_model(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("name")?;
    let mut st = ctx.state();
    let now = st.now();
    let ms = model_mut(&mut st, name)?;
    if let Some(d) = b.opt_str("description")? {
        ms.model.description = Some(d.to_string());
    }
    ms.model.last_updated_timestamp = Some(now);
    let v = model_value(ms);
    Ok(extract::json(json!({ "registered_model": v })))
}

async fn rename_model(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("name")?;
    let new_name = b.req_str("new_name")?;
    let mut st = ctx.state();
    model(&st, name)?;
    if st.models.contains_key(new_name) {
        return Err(ApiError::exists(format!(
            "Registered Model (name={new_name}) already exists."
        )));
    }
    let now = st.now();
    let mut ms = st.models.remove(name).expect("checked above");
    // Artifacts follow the model to its new storage location.
    for n in ms.versions.keys() {
        let from = storage_path(&ms.id, name, *n);
        if st.dbfs.nodes.contains_key(&from) {
            dbfs::move_tree(&mut st, &from, &storage_path(&ms.id, new_name, *n))?;
        }
    }
    ms.model.name = new_name.to_string();
    ms.model.last_updated_timestamp = Some(now);
    for v in ms.versions.values_mut() {
        v.name = new_name.to_string();
    }
    let v = model_value(&ms);
    st.models.insert(new_name.to_string(), ms);
    Ok(extract::json(json!({ "registered_model": v })))
}

async fn delete_model(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = input(&p, b);
    let name = b.req_str("name")?;
    let mut st = ctx.state();
    let ms = st.models.remove(name).ok_or_else(|| model_missing(name))?;
    dbfs::remove_tree(&mut st, &format!("/databricks/mlflow-registry/{}", ms.id));
    Ok(extract::empty())
}

async fn set_model_tag(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("name")?;
    let key = b.req_str("key")?;
    let value = b.opt_str("value")?.unwrap_or("");
    let mut st = ctx.state();
    let ms = model_mut(&mut st, name)?;
    set_tag(&mut ms.model.tags, key, value);
    Ok(extract::empty())
}

async fn delete_model_tag(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = input(&p, b);
    let name = b.req_str("name")?;
    let key = b.req_str("key")?;
    let mut st = ctx.state();
    let ms = model_mut(&mut st, name)?;
    let before = ms.model.tags.len();
    ms.model.tags.retain(|t| t.key != key);
    if ms.model.tags.len() == before {
        return Err(ApiError::not_found(format!(
            "Registered model tag with name={name}, key={key} not found"
        )));
    }
    Ok(extract::empty())
}

fn latest_response(st: &State, b: &Map<String, Value>) -> ApiResult {
    let name = b.req_str("name")?;
    let stages: Vec<String> = match b.get("stages") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let ms = model(st, name)?;
    Ok(mark(
        extract::json(json!({ "model_versions": latest(ms, &stages) })),
        false,
    ))
}

async fn latest_versions_post(ctx: Ctx, Body(b): Body) -> ApiResult {
    latest_response(&ctx.state(), &b)
}

async fn latest_versions_get(ctx: Ctx, p: Params) -> ApiResult {
    let mut b = params_map(&p);
    let stages: Vec<Value> = p.all("stages").into_iter().map(|s| json!(s)).collect();
    if !stages.is_empty() {
        b.insert("stages".into(), Value::Array(stages));
    }
    latest_response(&ctx.state(), &b)
}

/// Where the files of a version's `source` are in DBFS, and the run it came from when the
/// source says: a `dbfs:/` path as it is; `runs:/<run id>/<path>` inside that run's artifacts;
/// `models:/<model id>` (a logged model) its artifacts. `Err` is the registration failure
/// message; `Ok(None)` a source the emulator cannot read (registered with no files).
fn source_files(st: &State, source: &str) -> Result<Option<(String, Option<String>)>, String> {
    let missing = || format!("Failed to copy artifacts: the source {source} does not exist");
    let (path, run) = if let Some(src) = source.strip_prefix("dbfs:") {
        (dbfs::dbfs_path(src).map_err(|e| e.message)?, None)
    } else if let Some(rest) = source.strip_prefix("runs:/") {
        let (run_id, rel) = rest.split_once('/').unwrap_or((rest, ""));
        let r = st.tracking.runs.get(run_id).ok_or_else(missing)?;
        let root = tracking::run_artifact_root(&r.experiment_id, &r.id);
        let path = dbfs::dbfs_path(&format!("{root}/{rel}")).map_err(|e| e.message)?;
        (path, Some(run_id.to_string()))
    } else if let Some(id) = source
        .strip_prefix("models:/")
        .filter(|id| id.starts_with("m-") && !id.contains('/'))
    {
        let m = st.tracking.logged_models.get(id).ok_or_else(missing)?;
        let root = tracking::logged_model_artifact_root(&m.experiment_id, &m.id);
        (root, m.source_run_id.clone())
    } else {
        return Ok(None);
    };
    if !st.dbfs.nodes.contains_key(&path) {
        return Err(missing());
    }
    Ok(Some((path, run)))
}

/// Creates a version: `PENDING_REGISTRATION` in the answer, its files copied from the source
/// at once; the first `model-versions/get` then shows `READY` (or `FAILED_REGISTRATION`), as
/// the MLflow client polls for. Deterministic: no timer decides when a version is ready.
async fn create_version(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("name")?;
    let source = b.req_str("source")?.to_string();
    let tags = tags_arg(&b)?;
    let caller = ctx.caller.name().to_string();
    let mut st = ctx.state();
    let now = st.now();
    let (id, version) = {
        let ms = model_mut(&mut st, name)?;
        let v = ms
            .next_version
            .max(ms.versions.keys().max().map_or(1, |m| m + 1));
        ms.next_version = v + 1;
        (ms.id.clone(), v)
    };
    let dest = storage_path(&id, name, version);
    // A version of a logged model records the run that logged it, as MLflow servers do.
    let mut run_id = b
        .opt_str("run_id")?
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if run_id.is_none() {
        if let Some(m) = b
            .opt_str("model_id")?
            .and_then(|id| st.tracking.logged_models.get(id))
        {
            run_id = m.source_run_id.clone();
        }
    }
    let outcome = match source_files(&st, &source) {
        Ok(Some((src, run))) => {
            copy_tree(&mut st, &src, &dest)?;
            run_id = run_id.or(run);
            ("READY".to_string(), None)
        }
        Ok(None) => ("READY".to_string(), None),
        Err(message) => ("FAILED_REGISTRATION".to_string(), Some(message)),
    };
    let mut mv = ModelVersion {
        name: name.to_string(),
        version: version.to_string(),
        creation_timestamp: Some(now),
        last_updated_timestamp: Some(now),
        user_id: Some(caller),
        current_stage: Some("None".into()),
        description: b.opt_str("description")?.map(str::to_string),
        source: Some(source),
        run_id,
        run_link: b.opt_str("run_link")?.map(str::to_string),
        status: Some("PENDING_REGISTRATION".to_string()),
        status_message: None,
        tags: Vec::new(),
        aliases: Vec::new(),
        run_tracking_server_id: None,
    };
    for t in tags {
        set_tag(&mut mv.tags, &t.key, &t.value);
    }
    let ms = model_mut(&mut st, name)?;
    ms.model.last_updated_timestamp = Some(now);
    ms.versions.insert(version, mv);
    ms.pending.insert(version, outcome);
    let v = version_value(ms, &ms.versions[&version]);
    Ok(extract::json(json!({ "model_version": v })))
}

/// Copies a DBFS file or directory tree to `dest`.
fn copy_tree(st: &mut State, src: &str, dest: &str) -> Result<(), ApiError> {
    let is_file = st.dbfs.nodes.get(src).is_some_and(|n| !n.is_dir);
    if is_file {
        let data = st.dbfs.nodes[src].data.clone();
        let name = crate::model::workspace::base_name(src);
        return dbfs::write_file(st, &format!("{dest}/{name}"), data, true);
    }
    dbfs::make_dirs(st, dest)?;
    for p in subtree(st, src) {
        let rel = &p[src.len()..];
        if rel.is_empty() {
            continue;
        }
        let n = st.dbfs.nodes[&p].clone();
        let target = format!("{dest}{rel}");
        if n.is_dir {
            dbfs::make_dirs(st, &target)?;
        } else {
            dbfs::write_file(st, &target, n.data, true)?;
        }
    }
    Ok(())
}

fn find_version<'a>(
    st: &'a State,
    b: &Map<String, Value>,
) -> Result<(&'a ModelState, &'a ModelVersion), ApiError> {
    let name = b.req_str("name")?;
    let version = version_arg(b)?;
    let ms = model(st, name)?;
    let v = ms
        .versions
        .get(&version)
        .ok_or_else(|| version_missing(name, &version.to_string()))?;
    Ok((ms, v))
}

fn find_version_mut<'a>(
    st: &'a mut State,
    b: &Map<String, Value>,
) -> Result<&'a mut ModelVersion, ApiError> {
    let name = b.req_str("name")?;
    let version = version_arg(b)?;
    model_mut(st, name)?
        .versions
        .get_mut(&version)
        .ok_or_else(|| version_missing(name, &version.to_string()))
}

async fn get_version(ctx: Ctx, p: Params) -> ApiResult {
    let b = params_map(&p);
    let mut st = ctx.state();
    let v = find_version_mut(&mut st, &b)?;
    if v.status.as_deref() == Some("PENDING_REGISTRATION") {
        let n: u64 = v.version.parse().unwrap_or(0);
        let name = v.name.clone();
        let ms = model_mut(&mut st, &name)?;
        let (status, message) = ms.pending.remove(&n).unwrap_or(("READY".into(), None));
        let v = ms.versions.get_mut(&n).expect("found above");
        v.status = Some(status);
        v.status_message = message;
    }
    let (ms, v) = find_version(&st, &b)?;
    Ok(extract::json(
        json!({ "model_version": version_value(ms, v) }),
    ))
}

/// The models a search can match: only the one named when the filter says `name = '…'` (what
/// a client asks for each model in turn), else every model. The other clauses still apply;
/// this only spares a client listing each model's versions a scan of every version of the
/// registry per model (issue #15: quadratic in a registry of 30,000 versions).
fn candidates<'a>(
    st: &'a State,
    clauses: &[Clause],
) -> Box<dyn Iterator<Item = &'a ModelState> + 'a> {
    match clauses.iter().find(|c| c.attr == "name" && c.op == "=") {
        Some(c) => Box::new(st.models.get(&c.value).into_iter()),
        None => Box::new(st.models.values()),
    }
}

async fn search_versions(ctx: Ctx, p: Params) -> ApiResult {
    let clauses = parse_filter(p.get("filter").unwrap_or(""))?;
    let st = ctx.state();
    let mut items = Vec::new();
    for ms in candidates(&st, &clauses) {
        for v in ms.versions.values() {
            let keep = matches(&clauses, |a| match a {
                "name" => Some(v.name.clone()),
                "run_id" => Some(v.run_id.clone().unwrap_or_default()),
                "source_path" | "source" => Some(v.source.clone().unwrap_or_default()),
                "version_number" | "version" => Some(v.version.clone()),
                "current_stage" => Some(v.current_stage.clone().unwrap_or_default()),
                _ => None,
            })?;
            if keep {
                items.push(version_value(ms, v));
            }
        }
    }
    order(
        &mut items,
        &p.all("order_by"),
        &[("name", false), ("version_number", true)],
    );
    let (start, end) = page_bounds(&p, 10_000, 200_000, items.len())?;
    Ok(paged("model_versions", items, start, end))
}

async fn update_version(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let now = st.now();
    let v = find_version_mut(&mut st, &b)?;
    if let Some(d) = b.opt_str("description")? {
        v.description = Some(d.to_string());
    }
    v.last_updated_timestamp = Some(now);
    let (ms, v) = find_version(&st, &b)?;
    Ok(extract::json(
        json!({ "model_version": version_value(ms, v) }),
    ))
}

async fn delete_version(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = input(&p, b);
    let name = b.req_str("name")?;
    let version = version_arg(&b)?;
    let mut st = ctx.state();
    let ms = model_mut(&mut st, name)?;
    ms.versions
        .remove(&version)
        .ok_or_else(|| version_missing(name, &version.to_string()))?;
    ms.pending.remove(&version);
    let vs = version.to_string();
    ms.model.aliases.retain(|a| a.version != vs);
    let id = ms.id.clone();
    dbfs::remove_tree(&mut st, &storage_path(&id, name, version));
    Ok(extract::empty())
}

async fn set_version_tag(ctx: Ctx, Body(b): Body) -> ApiResult {
    let key = b.req_str("key")?;
    let value = b.opt_str("value")?.unwrap_or("");
    let mut st = ctx.state();
    let v = find_version_mut(&mut st, &b)?;
    set_tag(&mut v.tags, key, value);
    Ok(extract::empty())
}

async fn delete_version_tag(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = input(&p, b);
    let key = b.req_str("key")?;
    let mut st = ctx.state();
    let v = find_version_mut(&mut st, &b)?;
    let before = v.tags.len();
    v.tags.retain(|t| t.key != key);
    if v.tags.len() == before {
        return Err(ApiError::not_found(format!(
            "Model version tag with key={key} not found"
        )));
    }
    Ok(extract::empty())
}

async fn transition(ctx: Ctx, Body(b): Body, databricks: bool) -> ApiResult {
    let stage_raw = b.req_str("stage")?;
    let stage = STAGES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(stage_raw))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid Model Version stage: {stage_raw}. Value must be one of None, Staging, Production, Archived."
            ))
        })?;
    let archive = b.opt_bool("archive_existing_versions")?.unwrap_or(false);
    let name = b.req_str("name")?;
    let version = version_arg(&b)?;
    let mut st = ctx.state();
    let now = st.now();
    let ms = model_mut(&mut st, name)?;
    if !ms.versions.contains_key(&version) {
        return Err(version_missing(name, &version.to_string()));
    }
    if archive && matches!(*stage, "Staging" | "Production") {
        for (n, v) in ms.versions.iter_mut() {
            if *n != version && v.current_stage.as_deref() == Some(stage) {
                v.current_stage = Some("Archived".into());
                v.last_updated_timestamp = Some(now);
            }
        }
    }
    let v = ms.versions.get_mut(&version).expect("checked above");
    v.current_stage = Some(stage.to_string());
    v.last_updated_timestamp = Some(now);
    let value = version_value(ms, &ms.versions[&version]);
    if databricks {
        let mut d = value;
        d["permission_level"] = json!("CAN_MANAGE");
        return Ok(extract::json(json!({ "model_version_databricks": d })));
    }
    Ok(extract::json(json!({ "model_version": value })))
}

async fn download_uri(ctx: Ctx, p: Params) -> ApiResult {
    let b = params_map(&p);
    let st = ctx.state();
    let (ms, v) = find_version(&st, &b)?;
    let n: u64 = v.version.parse().unwrap_or(0);
    Ok(extract::json(
        json!({ "artifact_uri": format!("dbfs:{}", storage_path(&ms.id, &ms.model.name, n)) }),
    ))
}

/// The DBFS path of `rel` inside a version's artifacts, refusing escapes.
fn artifact_path(ms: &ModelState, v: &ModelVersion, rel: &str) -> Result<String, ApiError> {
    let n: u64 = v.version.parse().unwrap_or(0);
    let root = storage_path(&ms.id, &ms.model.name, n);
    let rel = rel.trim_matches('/');
    if rel.split('/').any(|c| c == ".." || c == ".") {
        return Err(ApiError::invalid(format!("Invalid artifact path {rel}")));
    }
    Ok(if rel.is_empty() {
        root
    } else {
        format!("{root}/{rel}")
    })
}

async fn list_artifacts(ctx: Ctx, p: Params) -> ApiResult {
    let b = params_map(&p);
    let st = ctx.state();
    let (ms, v) = find_version(&st, &b)?;
    let rel = p.get("path").unwrap_or("");
    let base = artifact_path(ms, v, rel)?;
    let root = artifact_path(ms, v, "")?;
    let strip = |full: &str| full[root.len()..].trim_start_matches('/').to_string();
    let files: Vec<FileInfo> = match st.dbfs.nodes.get(&base) {
        Some(n) if !n.is_dir => vec![FileInfo {
            path: strip(&base),
            is_dir: false,
            file_size: Some(n.data.len() as i64),
        }],
        Some(_) => dbfs::children(&st, &base)
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
    };
    Ok(extract::json(json!({
        "root_uri": format!("dbfs:{root}"),
        "files": files,
    })))
}

async fn signed_uri(ctx: Ctx, p: Params, headers: HeaderMap) -> ApiResult {
    let b = params_map(&p);
    let st = ctx.state();
    let path = {
        let (ms, v) = find_version(&st, &b)?;
        artifact_path(ms, v, p.req("path")?)?
    };
    match st.dbfs.nodes.get(&path) {
        Some(n) if !n.is_dir => {}
        Some(_) => return Err(ApiError::invalid(format!("{path} is a directory"))),
        None => {
            return Err(ApiError::not_found(format!(
                "Artifact {path} does not exist"
            )))
        }
    }
    let url = signed::url(
        &st,
        &signed::base_url(&headers),
        signed::Access::Read,
        &path,
    );
    Ok(mark(
        extract::json(json!({
            "signed_uri": url,
            "headers": [],
        })),
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let c = parse_filter("name LIKE '%churn%' AND run_id = \"abc\"").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].op, "LIKE");
        assert_eq!(c[1].value, "abc");
        assert!(parse_filter("name ~ 'x'").is_err());
        assert!(parse_filter("").unwrap().is_empty());
        let c = parse_filter("name='soil' and `run_id` ilike \"%A%\"").unwrap();
        assert_eq!(
            (c[0].op.as_str(), c[1].attr.as_str(), c[1].op.as_str()),
            ("=", "run_id", "ILIKE")
        );
        assert!(parse_filter("name = 'x' OR name = 'y'").is_err());
        assert!(parse_filter("name = 'unterminated").is_err());
        assert!(sql_like("%churn%", "my-churn-model", false));
        assert!(!sql_like("churn", "Churn", false));
        assert!(sql_like("churn", "Churn", true));
    }
}
