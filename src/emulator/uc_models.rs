//! Unity Catalog registered models, as a workspace with a metastore serves them:
//!
//! * the catalog API, `/api/2.1/unity-catalog/models[/{full_name}[/versions[/{version}]]]` and
//!   `/models/{full_name}/aliases/{alias}` (what `databricks-sdk`'s `registered_models` and
//!   `model_versions` call);
//! * the MLflow client's UC registry, `/api/2.0/mlflow/unity-catalog/registered-models/*` and
//!   `/model-versions/*` (what MLflow 3.17's `databricks-uc` registry store calls), where
//!   versions are created `PENDING_REGISTRATION`, filled through temporary credentials and
//!   made `READY` by `finalize`;
//! * the version files: `model-versions/generate-temporary-credentials` answers with
//!   `storage_mode: DEFAULT_STORAGE`, which tells the MLflow client to read and write through
//!   presigned URLs: `POST /api/2.0/fs/create-download-url` and `/create-upload-url` for
//!   `/Models/<catalog>/<schema>/<model>/<version>/<file>`, listings through
//!   `GET /api/2.0/fs/directories/Models/…`. The URLs are the emulator's signed URLs
//!   ([`super::signed`]): served without a Databricks credential, as cloud storage is, and
//!   refused once expired or altered. The files live in the DBFS tree at [`storage_root`].
//!
//! Grants on a model are those of the securable `function` `<full name>` (the type Terraform's
//! `databricks_grants` sends for a model) in the UC grants API of [`super::unity`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::extract::{self, read_page_token, Body, Ctx, Fields, Params};
use super::signed::{self, Access};
use super::state::{Shared, State};

/// How long temporary credentials are said to last.
const CREDENTIAL_LIFETIME_MS: i64 = 60 * 60 * 1000;
/// The page size of listings when none is asked for (the API documents 100).
const DEFAULT_PAGE: usize = 100;
/// The largest page a listing returns (the API documents 1000).
const MAX_PAGE: usize = 1000;
/// Where the files of UC model versions live in the DBFS tree: below the workspace
/// registry's storage, which dumps write as models rather than as `dbfs/` files.
const STORAGE: &str = "/databricks/mlflow-registry/unity-catalog";

/// The DBFS folder of a UC version's files: by the model's id, so a rename moves nothing.
pub(crate) fn storage_root(model_id: &str, version: u64) -> String {
    format!("{STORAGE}/{model_id}/{version}")
}

/// Every UC model of the metastore, by lowercase full name.
#[derive(Debug, Default)]
pub(crate) struct UcRegistry {
    pub models: BTreeMap<String, UcModel>,
}

/// One registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UcModel {
    pub catalog_name: String,
    pub schema_name: String,
    pub name: String,
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub updated_at: i64,
    #[serde(default)]
    pub updated_by: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Alias name → version number, as the seed writes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<SeedAlias>,
    #[serde(skip)]
    pub versions: BTreeMap<u64, UcVersion>,
}

/// A `{key, value}` tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// An alias as the catalog API names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct SeedAlias {
    pub alias_name: String,
    pub version_num: u64,
}

/// One model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UcVersion {
    pub version: u64,
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_workspace_id: Option<i64>,
    /// `PENDING_REGISTRATION`, `READY` or `FAILED_REGISTRATION`.
    pub status: String,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub updated_at: i64,
    #[serde(default)]
    pub updated_by: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// A seed version's files by path below its root, until [`seed_model`] puts them in the
    /// DBFS tree at [`storage_root`]; always empty after that.
    #[serde(skip)]
    pub files: BTreeMap<String, Vec<u8>>,
}

impl UcModel {
    pub fn full_name(&self) -> String {
        format!("{}.{}.{}", self.catalog_name, self.schema_name, self.name)
    }

    fn storage_location(&self) -> String {
        format!(
            "/Models/{}/{}/{}",
            self.catalog_name, self.schema_name, self.name
        )
    }

    fn alias_of(&self, alias: &str) -> Option<u64> {
        self.aliases
            .iter()
            .find(|a| a.alias_name == alias)
            .map(|a| a.version_num)
    }

    fn aliases_of(&self, version: u64) -> Vec<&str> {
        self.aliases
            .iter()
            .filter(|a| a.version_num == version)
            .map(|a| a.alias_name.as_str())
            .collect()
    }

    fn next_version(&self) -> u64 {
        self.versions.keys().max().map_or(1, |v| v + 1)
    }

    /// The catalog API's `RegisteredModelInfo`.
    fn info(&self, with_aliases: bool) -> Value {
        let mut v = json!({
            "catalog_name": self.catalog_name,
            "schema_name": self.schema_name,
            "name": self.name,
            "full_name": self.full_name(),
            "owner": self.owner,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "storage_location": self.storage_location(),
            "metastore_id": METASTORE_ID,
        });
        if let Some(c) = &self.comment {
            v["comment"] = json!(c);
        }
        if with_aliases {
            v["aliases"] = Value::Array(
                self.aliases
                    .iter()
                    .map(|a| self.alias_info(&a.alias_name, a.version_num))
                    .collect(),
            );
        }
        v
    }

    fn alias_info(&self, alias: &str, version: u64) -> Value {
        json!({
            "alias_name": alias,
            "version_num": version,
            "catalog_name": self.catalog_name,
            "schema_name": self.schema_name,
            "model_name": self.name,
        })
    }

    /// The catalog API's `ModelVersionInfo`.
    fn version_info(&self, v: &UcVersion, with_aliases: bool) -> Value {
        let mut o = json!({
            "catalog_name": self.catalog_name,
            "schema_name": self.schema_name,
            "model_name": self.name,
            "version": v.version,
            "id": v.id,
            "source": v.source,
            "status": v.status,
            "storage_location": format!("{}/{}", self.storage_location(), v.version),
            "created_at": v.created_at,
            "created_by": v.created_by,
            "updated_at": v.updated_at,
            "updated_by": v.updated_by,
            "metastore_id": METASTORE_ID,
        });
        if let Some(c) = &v.comment {
            o["comment"] = json!(c);
        }
        if let Some(r) = &v.run_id {
            o["run_id"] = json!(r);
        }
        if let Some(w) = v.run_workspace_id {
            o["run_workspace_id"] = json!(w);
        }
        if with_aliases {
            o["aliases"] = Value::Array(
                self.aliases_of(v.version)
                    .into_iter()
                    .map(|a| self.alias_info(a, v.version))
                    .collect(),
            );
        }
        o
    }

    /// The MLflow UC registry's `RegisteredModel`.
    fn mlflow(&self) -> Value {
        let mut o = json!({
            "name": self.full_name(),
            "creation_timestamp": self.created_at,
            "last_updated_timestamp": self.updated_at,
            "user_id": self.created_by,
            "aliases": self.aliases.iter().map(|a| json!({"alias": a.alias_name, "version": a.version_num.to_string()})).collect::<Vec<_>>(),
            "tags": self.tags,
        });
        if let Some(c) = &self.comment {
            o["description"] = json!(c);
        }
        o
    }

    /// The MLflow UC registry's `ModelVersion`.
    fn mlflow_version(&self, v: &UcVersion) -> Value {
        let mut o = json!({
            "name": self.full_name(),
            "version": v.version.to_string(),
            "creation_timestamp": v.created_at,
            "last_updated_timestamp": v.updated_at,
            "user_id": v.created_by,
            "source": v.source,
            "status": v.status,
            "storage_location": format!("{}/{}", self.storage_location(), v.version),
            "aliases": self.aliases_of(v.version).into_iter().map(|a| json!({"alias": a, "version": v.version.to_string()})).collect::<Vec<_>>(),
            "tags": v.tags,
        });
        if let Some(c) = &v.comment {
            o["description"] = json!(c);
        }
        if let Some(r) = &v.run_id {
            o["run_id"] = json!(r);
        }
        if let Some(w) = v.run_workspace_id {
            o["run_tracking_server_id"] = json!(w.to_string());
        }
        o
    }
}

/// The metastore every model of the emulator lives in.
const METASTORE_ID: &str = "11111111-2222-4333-8444-555555555555";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    const M: &str = "/api/2.1/unity-catalog/models";
    const R: &str = "/api/2.0/mlflow/unity-catalog/registered-models";
    const V: &str = "/api/2.0/mlflow/unity-catalog/model-versions";
    Router::new()
        .route(M, get(list_models).post(create_model_info))
        .route(
            &format!("{M}/{{full_name}}"),
            get(get_model_info)
                .patch(update_model_info)
                .delete(delete_model_info),
        )
        .route(&format!("{M}/{{full_name}}/versions"), get(list_versions))
        .route(
            &format!("{M}/{{full_name}}/versions/{{version}}"),
            get(get_version_info)
                .patch(update_version_info)
                .delete(delete_version_info),
        )
        .route(
            &format!("{M}/{{full_name}}/aliases/{{alias}}"),
            get(get_by_alias_info)
                .put(set_alias_info)
                .delete(delete_alias_info),
        )
        .route(&format!("{R}/create"), post(ml_create_model))
        .route(&format!("{R}/get"), get(ml_get_model))
        .route(&format!("{R}/search"), get(ml_search_models))
        .route(
            &format!("{R}/update"),
            axum::routing::patch(ml_update_model),
        )
        .route(&format!("{R}/delete"), delete(ml_delete_model))
        .route(&format!("{R}/set-tag"), post(ml_set_model_tag))
        .route(&format!("{R}/delete-tag"), delete(ml_delete_model_tag))
        .route(
            &format!("{R}/alias"),
            post(ml_set_alias)
                .delete(ml_delete_alias)
                .get(ml_get_by_alias),
        )
        .route(
            &format!("{R}:is-databricks-sdk-models-artifact-repository-enabled"),
            get(sdk_repo_enabled),
        )
        .route(&format!("{V}/create"), post(ml_create_version))
        .route(&format!("{V}/get"), get(ml_get_version))
        .route(&format!("{V}/search"), get(ml_search_versions))
        .route(
            &format!("{V}/update"),
            axum::routing::patch(ml_update_version),
        )
        .route(&format!("{V}/delete"), delete(ml_delete_version))
        .route(&format!("{V}/set-tag"), post(ml_set_version_tag))
        .route(&format!("{V}/delete-tag"), delete(ml_delete_version_tag))
        .route(
            &format!("{V}/generate-temporary-credentials"),
            post(ml_credentials),
        )
        .route(&format!("{V}/get-download-uri"), get(ml_download_uri))
        .route(&format!("{V}/finalize"), post(ml_finalize))
        .route("/api/2.0/fs/create-download-url", post(create_download_url))
        .route("/api/2.0/fs/create-upload-url", post(create_upload_url))
}

// ---- names and lookups ---------------------------------------------------------------------

/// Splits a three-level name; UC keeps names in lowercase.
fn split_full(full: &str) -> Result<(String, String, String), ApiError> {
    let parts: Vec<&str> = full.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(ApiError::invalid(format!(
            "Invalid registered model name '{full}': expected <catalog>.<schema>.<model>"
        )));
    }
    Ok((
        parts[0].to_lowercase(),
        parts[1].to_lowercase(),
        parts[2].to_lowercase(),
    ))
}

fn key(full: &str) -> String {
    full.to_lowercase()
}

fn model_missing(full: &str) -> ApiError {
    ApiError::not_found(format!("Registered model '{full}' does not exist."))
}

fn version_missing(full: &str, v: &str) -> ApiError {
    ApiError::not_found(format!(
        "Model version '{full}' version {v} does not exist."
    ))
}

fn model<'a>(st: &'a State, full: &str) -> Result<&'a UcModel, ApiError> {
    st.uc
        .models
        .get(&key(full))
        .ok_or_else(|| model_missing(full))
}

fn model_mut<'a>(st: &'a mut State, full: &str) -> Result<&'a mut UcModel, ApiError> {
    st.uc
        .models
        .get_mut(&key(full))
        .ok_or_else(|| model_missing(full))
}

fn version_number(raw: &str) -> Result<u64, ApiError> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::invalid(format!("Invalid model version number '{raw}'")))
}

/// The catalog and schema must exist in the metastore (as the grants API knows them).
fn check_schema(st: &State, catalog: &str, schema: &str) -> Result<(), ApiError> {
    let has = |ty: &str, name: &str| {
        st.unity
            .securables
            .keys()
            .any(|(t, n)| t == ty && n.eq_ignore_ascii_case(name))
    };
    if !has("catalog", catalog) {
        return Err(ApiError::not_found(format!(
            "Catalog '{catalog}' does not exist."
        )));
    }
    if !has("schema", &format!("{catalog}.{schema}")) {
        return Err(ApiError::not_found(format!(
            "Schema '{catalog}.{schema}' does not exist."
        )));
    }
    Ok(())
}

/// An alias name: letters, digits and underscores, not `latest` and not `v<digits>` (which
/// MLflow reads as version references).
fn check_alias(alias: &str) -> Result<(), ApiError> {
    let lower = alias.to_ascii_lowercase();
    let version_like =
        lower.len() > 1 && lower.starts_with('v') && lower[1..].bytes().all(|b| b.is_ascii_digit());
    if alias.is_empty()
        || !alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        || lower == "latest"
        || version_like
    {
        return Err(ApiError::invalid(format!("Invalid alias name '{alias}'")));
    }
    Ok(())
}

fn new_id(st: &mut State) -> String {
    let n = st.next_object_id();
    let mut h = Sha256::new();
    h.update(st.url_salt.as_bytes());
    h.update(n.to_le_bytes());
    let d = hex::encode(h.finalize());
    format!(
        "{}-{}-4{}-8{}-{}",
        &d[0..8],
        &d[8..12],
        &d[13..16],
        &d[17..20],
        &d[20..32]
    )
}

/// Creates a model; the caller owns it and the securable `function <full name>` appears
/// for grants.
fn insert_model(
    st: &mut State,
    full: &str,
    comment: Option<&str>,
    tags: Vec<Tag>,
    caller: &str,
) -> Result<String, ApiError> {
    let (c, s, n) = split_full(full)?;
    check_schema(st, &c, &s)?;
    let full = format!("{c}.{s}.{n}");
    if st.uc.models.contains_key(&full) {
        return Err(ApiError::exists(format!(
            "Registered model '{full}' already exists."
        )));
    }
    let now = st.now();
    let id = new_id(st);
    st.uc.models.insert(
        full.clone(),
        UcModel {
            catalog_name: c,
            schema_name: s,
            name: n,
            id,
            comment: comment.filter(|c| !c.is_empty()).map(str::to_string),
            owner: caller.to_string(),
            created_at: now,
            created_by: caller.to_string(),
            updated_at: now,
            updated_by: caller.to_string(),
            tags,
            aliases: Vec::new(),
            versions: BTreeMap::new(),
        },
    );
    st.unity
        .securables
        .entry(("function".to_string(), full.clone()))
        .or_default();
    Ok(full)
}

fn remove_model(st: &mut State, full: &str) -> Result<(), ApiError> {
    let k = key(full);
    let m = st.uc.models.remove(&k).ok_or_else(|| model_missing(full))?;
    st.unity.securables.remove(&("function".to_string(), k));
    super::dbfs::remove_tree(st, &format!("{STORAGE}/{}", m.id));
    Ok(())
}

fn parse_tags(b: &Map<String, Value>) -> Result<Vec<Tag>, ApiError> {
    let mut tags: Vec<Tag> = Vec::new();
    for t in b.opt_array("tags")?.cloned().unwrap_or_default() {
        let t: Tag = serde_json::from_value(t)
            .map_err(|e| ApiError::invalid(format!("Invalid tag: {e}")))?;
        tags.retain(|x| x.key != t.key);
        tags.push(t);
    }
    tags.sort();
    Ok(tags)
}

fn set_tag(tags: &mut Vec<Tag>, key: &str, value: &str) {
    tags.retain(|t| t.key != key);
    tags.push(Tag {
        key: key.to_string(),
        value: value.to_string(),
    });
    tags.sort();
}

/// One page of `items` from a page token: `(page, next token)`.
fn page<T: Clone>(
    items: &[T],
    max: Option<i64>,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) if n < 0 => {
            return Err(ApiError::invalid(format!(
                "Invalid max_results {n}: must not be negative"
            )))
        }
        Some(n) => (n as usize).min(MAX_PAGE),
    };
    let start = match token.filter(|t| !t.is_empty()) {
        Some(t) => read_page_token(t)?
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?,
        None => 0,
    }
    .min(items.len());
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| extract::page_token(&end.to_string()));
    Ok((items[start..end].to_vec(), next))
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        v["next_page_token"] = json!(t);
    }
    v
}

fn body_with(p: &Params, mut b: Map<String, Value>) -> Map<String, Value> {
    p.merge_into(&mut b);
    b
}

// ---- catalog API (2.1) ---------------------------------------------------------------------

async fn list_models(ctx: Ctx, p: Params) -> ApiResult {
    let catalog = p.get("catalog_name").filter(|s| !s.is_empty());
    let schema = p.get("schema_name").filter(|s| !s.is_empty());
    if schema.is_some() && catalog.is_none() {
        return Err(ApiError::invalid(
            "schema_name can only be given with catalog_name",
        ));
    }
    let st = ctx.state();
    let all: Vec<Value> = st
        .uc
        .models
        .values()
        .filter(|m| catalog.is_none_or(|c| m.catalog_name.eq_ignore_ascii_case(c)))
        .filter(|m| schema.is_none_or(|s| m.schema_name.eq_ignore_ascii_case(s)))
        .map(|m| m.info(false))
        .collect();
    let (items, next) = page(&all, p.i64("max_results")?, p.get("page_token"))?;
    Ok(extract::json(with_token(
        json!({ "registered_models": items }),
        next,
    )))
}

async fn create_model_info(ctx: Ctx, Body(b): Body) -> ApiResult {
    let full = format!(
        "{}.{}.{}",
        b.req_str("catalog_name")?,
        b.req_str("schema_name")?,
        b.req_str("name")?
    );
    let mut st = ctx.state();
    let full = insert_model(
        &mut st,
        &full,
        b.opt_str("comment")?,
        Vec::new(),
        ctx.caller.name(),
    )?;
    Ok(extract::json(st.uc.models[&full].info(false)))
}

async fn get_model_info(ctx: Ctx, Path(full): Path<String>, p: Params) -> ApiResult {
    let st = ctx.state();
    let m = model(&st, &full)?;
    Ok(extract::json(
        m.info(p.bool("include_aliases")?.unwrap_or(false)),
    ))
}

async fn update_model_info(ctx: Ctx, Path(full): Path<String>, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let now = st.now();
    if let Some(o) = b.opt_str("owner")?.filter(|o| !o.is_empty()) {
        if !st.principals.name_exists(o) {
            return Err(ApiError::not_found(format!(
                "Could not find principal with name {o}"
            )));
        }
    }
    let new_name = b.opt_str("new_name")?.filter(|n| !n.is_empty());
    let m = model_mut(&mut st, &full)?;
    if let Some(c) = b.opt_str("comment")? {
        m.comment = (!c.is_empty()).then(|| c.to_string());
    }
    if let Some(o) = b.opt_str("owner")?.filter(|o| !o.is_empty()) {
        m.owner = o.to_string();
    }
    m.updated_at = now;
    m.updated_by = ctx.caller.name().to_string();
    if let Some(n) = new_name {
        let mut moved = m.clone();
        let target = format!(
            "{}.{}.{}",
            moved.catalog_name,
            moved.schema_name,
            n.to_lowercase()
        );
        if st.uc.models.contains_key(&target) {
            return Err(ApiError::exists(format!(
                "Registered model '{target}' already exists."
            )));
        }
        let grants = st
            .unity
            .securables
            .remove(&("function".to_string(), key(&full)))
            .unwrap_or_default();
        st.uc.models.remove(&key(&full));
        moved.name = n.to_lowercase();
        st.unity
            .securables
            .insert(("function".to_string(), target.clone()), grants);
        let info = moved.info(false);
        st.uc.models.insert(target, moved);
        return Ok(extract::json(info));
    }
    Ok(extract::json(m.info(false)))
}

async fn delete_model_info(ctx: Ctx, Path(full): Path<String>) -> ApiResult {
    remove_model(&mut ctx.state(), &full)?;
    Ok(extract::empty())
}

async fn list_versions(ctx: Ctx, Path(full): Path<String>, p: Params) -> ApiResult {
    let st = ctx.state();
    let m = model(&st, &full)?;
    // The documented answer carries neither aliases nor tags.
    let all: Vec<Value> = m
        .versions
        .values()
        .map(|v| m.version_info(v, false))
        .collect();
    let (items, next) = page(&all, p.i64("max_results")?, p.get("page_token"))?;
    Ok(extract::json(with_token(
        json!({ "model_versions": items }),
        next,
    )))
}

async fn get_version_info(
    ctx: Ctx,
    Path((full, v)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let n = version_number(&v)?;
    let st = ctx.state();
    let m = model(&st, &full)?;
    let ver = m
        .versions
        .get(&n)
        .ok_or_else(|| version_missing(&full, &v))?;
    Ok(extract::json(m.version_info(
        ver,
        p.bool("include_aliases")?.unwrap_or(false),
    )))
}

async fn update_version_info(
    ctx: Ctx,
    Path((full, v)): Path<(String, String)>,
    Body(b): Body,
) -> ApiResult {
    let n = version_number(&v)?;
    let mut st = ctx.state();
    let now = st.now();
    let m = model_mut(&mut st, &full)?;
    let ver = m
        .versions
        .get_mut(&n)
        .ok_or_else(|| version_missing(&full, &v))?;
    // Only the comment can be changed (SDK: "Currently only the comment … can be updated").
    if let Some(c) = b.opt_str("comment")? {
        ver.comment = (!c.is_empty()).then(|| c.to_string());
        ver.updated_at = now;
        ver.updated_by = ctx.caller.name().to_string();
    }
    let ver = ver.clone();
    Ok(extract::json(m.version_info(&ver, false)))
}

async fn delete_version_info(ctx: Ctx, Path((full, v)): Path<(String, String)>) -> ApiResult {
    let n = version_number(&v)?;
    let mut st = ctx.state();
    let m = model_mut(&mut st, &full)?;
    m.versions
        .remove(&n)
        .ok_or_else(|| version_missing(&full, &v))?;
    m.aliases.retain(|a| a.version_num != n);
    let root = storage_root(&m.id, n);
    super::dbfs::remove_tree(&mut st, &root);
    Ok(extract::empty())
}

async fn get_by_alias_info(
    ctx: Ctx,
    Path((full, alias)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let st = ctx.state();
    let m = model(&st, &full)?;
    let n = m.alias_of(&alias).ok_or_else(|| {
        ApiError::not_found(format!(
            "Alias '{alias}' does not exist on registered model '{full}'."
        ))
    })?;
    let v = m
        .versions
        .get(&n)
        .ok_or_else(|| version_missing(&full, &n.to_string()))?;
    Ok(extract::json(m.version_info(
        v,
        p.bool("include_aliases")?.unwrap_or(false),
    )))
}

fn put_alias(st: &mut State, full: &str, alias: &str, n: u64) -> Result<Value, ApiError> {
    check_alias(alias)?;
    let m = model_mut(st, full)?;
    if !m.versions.contains_key(&n) {
        return Err(version_missing(full, &n.to_string()));
    }
    m.aliases.retain(|a| a.alias_name != alias);
    m.aliases.push(SeedAlias {
        alias_name: alias.to_string(),
        version_num: n,
    });
    m.aliases.sort();
    Ok(m.alias_info(alias, n))
}

async fn set_alias_info(
    ctx: Ctx,
    Path((full, alias)): Path<(String, String)>,
    Body(b): Body,
) -> ApiResult {
    let n = u64::try_from(b.req_i64("version_num")?)
        .map_err(|_| ApiError::invalid("version_num must be positive"))?;
    let info = put_alias(&mut ctx.state(), &full, &alias, n)?;
    Ok(extract::json(info))
}

fn drop_alias(st: &mut State, full: &str, alias: &str) -> Result<(), ApiError> {
    let m = model_mut(st, full)?;
    let before = m.aliases.len();
    m.aliases.retain(|a| a.alias_name != alias);
    if m.aliases.len() == before {
        return Err(ApiError::not_found(format!(
            "Alias '{alias}' does not exist on registered model '{full}'."
        )));
    }
    Ok(())
}

async fn delete_alias_info(ctx: Ctx, Path((full, alias)): Path<(String, String)>) -> ApiResult {
    drop_alias(&mut ctx.state(), &full, &alias)?;
    Ok(extract::empty())
}

// ---- MLflow UC registry (2.0) --------------------------------------------------------------

async fn ml_create_model(ctx: Ctx, Body(b): Body) -> ApiResult {
    let tags = parse_tags(&b)?;
    let mut st = ctx.state();
    let full = insert_model(
        &mut st,
        b.req_str("name")?,
        b.opt_str("description")?,
        tags,
        ctx.caller.name(),
    )?;
    Ok(extract::json(
        json!({ "registered_model": st.uc.models[&full].mlflow() }),
    ))
}

async fn ml_get_model(ctx: Ctx, p: Params) -> ApiResult {
    let st = ctx.state();
    let m = model(&st, p.req("name")?)?;
    Ok(mark_read(json!({ "registered_model": m.mlflow() })))
}

fn mark_read(v: Value) -> Response {
    extract::mark(extract::json(v), false)
}

async fn ml_search_models(ctx: Ctx, p: Params) -> ApiResult {
    let st = ctx.state();
    let all: Vec<Value> = st.uc.models.values().map(UcModel::mlflow).collect();
    let (items, next) = page(&all, p.i64("max_results")?, p.get("page_token"))?;
    Ok(extract::json(with_token(
        json!({ "registered_models": items }),
        next,
    )))
}

async fn ml_update_model(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = body_with(&p, b);
    let mut st = ctx.state();
    let now = st.now();
    let m = model_mut(&mut st, b.req_str("name")?)?;
    if let Some(d) = b.opt_str("description")? {
        m.comment = (!d.is_empty()).then(|| d.to_string());
    }
    m.updated_at = now;
    m.updated_by = ctx.caller.name().to_string();
    Ok(extract::json(json!({ "registered_model": m.mlflow() })))
}

async fn ml_delete_model(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = body_with(&p, b);
    remove_model(&mut ctx.state(), b.req_str("name")?)?;
    Ok(extract::empty())
}

async fn ml_set_model_tag(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let m = model_mut(&mut st, b.req_str("name")?)?;
    set_tag(
        &mut m.tags,
        b.req_str("key")?,
        b.opt_str("value")?.unwrap_or(""),
    );
    Ok(extract::empty())
}

async fn ml_delete_model_tag(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = body_with(&p, b);
    let mut st = ctx.state();
    let m = model_mut(&mut st, b.req_str("name")?)?;
    let k = b.req_str("key")?;
    m.tags.retain(|t| t.key != k);
    Ok(extract::empty())
}

async fn ml_set_alias(ctx: Ctx, Body(b): Body) -> ApiResult {
    let n = version_number(&b.req_i64("version")?.to_string())?;
    put_alias(&mut ctx.state(), b.req_str("name")?, b.req_str("alias")?, n)?;
    Ok(extract::empty())
}

async fn ml_delete_alias(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = body_with(&p, b);
    drop_alias(&mut ctx.state(), b.req_str("name")?, b.req_str("alias")?)?;
    Ok(extract::empty())
}

async fn ml_get_by_alias(ctx: Ctx, p: Params) -> ApiResult {
    let full = p.req("name")?;
    let alias = p.req("alias")?;
    let st = ctx.state();
    let m = model(&st, full)?;
    let n = m.alias_of(alias).ok_or_else(|| {
        ApiError::not_found(format!(
            "Alias '{alias}' does not exist on registered model '{full}'."
        ))
    })?;
    let v = m
        .versions
        .get(&n)
        .ok_or_else(|| version_missing(full, &n.to_string()))?;
    Ok(extract::json(
        json!({ "model_version": m.mlflow_version(v) }),
    ))
}

/// The emulator has no Databricks-SDK artifact repository: MLflow then uses presigned URLs.
async fn sdk_repo_enabled(_ctx: Ctx) -> ApiResult {
    Ok(extract::json(
        json!({ "is_databricks_sdk_models_artifact_repository_enabled": false }),
    ))
}

async fn ml_create_version(ctx: Ctx, Body(b): Body) -> ApiResult {
    let full = b.req_str("name")?.to_string();
    let source = b.req_str("source")?.to_string();
    let tags = parse_tags(&b)?;
    let run_id = b
        .opt_str("run_id")?
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let run_workspace_id = match b.opt_str("run_tracking_server_id") {
        Ok(Some(s)) if !s.is_empty() => Some(
            s.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("Invalid run_tracking_server_id '{s}'")))?,
        ),
        Ok(_) => None,
        Err(_) => b.opt_i64("run_tracking_server_id")?,
    };
    let mut st = ctx.state();
    let now = st.now();
    let id = new_id(&mut st);
    let m = model_mut(&mut st, &full)?;
    let n = m.next_version();
    let v = UcVersion {
        version: n,
        id,
        comment: b
            .opt_str("description")?
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        source,
        run_id,
        run_workspace_id,
        status: "PENDING_REGISTRATION".to_string(),
        created_at: now,
        created_by: ctx.caller.name().to_string(),
        updated_at: now,
        updated_by: ctx.caller.name().to_string(),
        tags,
        files: BTreeMap::new(),
    };
    let out = m.mlflow_version(&v);
    m.versions.insert(n, v);
    Ok(extract::json(json!({ "model_version": out })))
}

fn find_version<'a>(
    st: &'a State,
    b: &Map<String, Value>,
) -> Result<(&'a UcModel, &'a UcVersion), ApiError> {
    let full = b.req_str("name")?;
    let raw = match b.get("version") {
        Some(Value::Number(n)) => n.to_string(),
        _ => b.req_str("version")?.to_string(),
    };
    let n = version_number(&raw)?;
    let m = model(st, full)?;
    let v = m
        .versions
        .get(&n)
        .ok_or_else(|| version_missing(full, &raw))?;
    Ok((m, v))
}

fn find_version_mut<'a>(
    st: &'a mut State,
    b: &Map<String, Value>,
) -> Result<&'a mut UcVersion, ApiError> {
    let full = b.req_str("name")?.to_string();
    let raw = match b.get("version") {
        Some(Value::Number(n)) => n.to_string(),
        _ => b.req_str("version")?.to_string(),
    };
    let n = version_number(&raw)?;
    model_mut(st, &full)?
        .versions
        .get_mut(&n)
        .ok_or_else(|| version_missing(&full, &raw))
}

fn params_map(p: &Params) -> Map<String, Value> {
    body_with(p, Map::new())
}

async fn ml_get_version(ctx: Ctx, p: Params) -> ApiResult {
    let b = params_map(&p);
    let st = ctx.state();
    let (m, v) = find_version(&st, &b)?;
    Ok(extract::json(
        json!({ "model_version": m.mlflow_version(v) }),
    ))
}

/// The one filter the UC registry's version search takes: `name='<full name>'` (or `"…"`).
fn filter_name(filter: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "Invalid filter '{filter}': model version search in Unity Catalog requires a filter of the form name='<catalog>.<schema>.<model>'"
        ))
    };
    let (attr, value) = filter.split_once('=').ok_or_else(bad)?;
    if attr.trim() != "name" {
        return Err(bad());
    }
    let v = value.trim();
    let q = v.chars().next().ok_or_else(bad)?;
    if !(q == '\'' || q == '"') || v.len() < 2 || !v.ends_with(q) {
        return Err(bad());
    }
    Ok(v[1..v.len() - 1].to_string())
}

async fn ml_search_versions(ctx: Ctx, p: Params) -> ApiResult {
    let name = filter_name(p.get("filter").unwrap_or(""))?;
    let st = ctx.state();
    let m = model(&st, &name)?;
    let all: Vec<Value> = m.versions.values().map(|v| m.mlflow_version(v)).collect();
    let (items, next) = page(&all, p.i64("max_results")?, p.get("page_token"))?;
    Ok(extract::json(with_token(
        json!({ "model_versions": items }),
        next,
    )))
}

async fn ml_update_version(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = body_with(&p, b);
    let mut st = ctx.state();
    let now = st.now();
    let v = find_version_mut(&mut st, &b)?;
    if let Some(d) = b.opt_str("description")? {
        v.comment = (!d.is_empty()).then(|| d.to_string());
    }
    v.updated_at = now;
    v.updated_by = ctx.caller.name().to_string();
    let (m, v) = find_version(&st, &b)?;
    Ok(extract::json(
        json!({ "model_version": m.mlflow_version(v) }),
    ))
}

async fn ml_delete_version(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = body_with(&p, b);
    let mut st = ctx.state();
    let n = find_version(&st, &b)?.1.version;
    let m = model_mut(&mut st, b.req_str("name")?)?;
    m.versions.remove(&n);
    m.aliases.retain(|a| a.version_num != n);
    let root = storage_root(&m.id, n);
    super::dbfs::remove_tree(&mut st, &root);
    Ok(extract::empty())
}

async fn ml_set_version_tag(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let key = b.req_str("key")?.to_string();
    let value = b.opt_str("value")?.unwrap_or("").to_string();
    let v = find_version_mut(&mut st, &b)?;
    set_tag(&mut v.tags, &key, &value);
    Ok(extract::empty())
}

async fn ml_delete_version_tag(ctx: Ctx, p: Params, Body(b): Body) -> ApiResult {
    let b = body_with(&p, b);
    let mut st = ctx.state();
    let key = b.req_str("key")?.to_string();
    let v = find_version_mut(&mut st, &b)?;
    v.tags.retain(|t| t.key != key);
    Ok(extract::empty())
}

/// Temporary credentials for a version's files. `DEFAULT_STORAGE` (Databricks-managed
/// storage) is the mode whose files are read and written through presigned URLs; writing is
/// refused once the version is finalized.
async fn ml_credentials(ctx: Ctx, Body(b): Body) -> ApiResult {
    let st = ctx.state();
    let (m, v) = find_version(&st, &b)?;
    let op = b
        .opt_str("operation")?
        .unwrap_or("MODEL_VERSION_OPERATION_READ");
    match op {
        "MODEL_VERSION_OPERATION_READ" => {}
        "MODEL_VERSION_OPERATION_READ_WRITE" if v.status == "PENDING_REGISTRATION" => {}
        "MODEL_VERSION_OPERATION_READ_WRITE" => {
            return Err(ApiError::invalid(format!(
                "Model version {} version {} is {}; its files can no longer be written.",
                m.full_name(),
                v.version,
                v.status
            )))
        }
        other => return Err(ApiError::invalid(format!("Invalid operation '{other}'"))),
    }
    let expiration = st.now() + CREDENTIAL_LIFETIME_MS;
    Ok(mark_read(json!({
        "credentials": {
            "storage_mode": "DEFAULT_STORAGE",
            "expiration_time": expiration,
        }
    })))
}

async fn ml_download_uri(ctx: Ctx, p: Params) -> ApiResult {
    let b = params_map(&p);
    let st = ctx.state();
    let (m, v) = find_version(&st, &b)?;
    Ok(extract::json(json!({
        "artifact_uri": format!("{}/{}", m.storage_location(), v.version)
    })))
}

async fn ml_finalize(ctx: Ctx, Body(b): Body) -> ApiResult {
    let mut st = ctx.state();
    let now = st.now();
    let v = find_version_mut(&mut st, &b)?;
    if v.status == "PENDING_REGISTRATION" {
        v.status = "READY".to_string();
        v.updated_at = now;
    }
    let (m, v) = find_version(&st, &b)?;
    Ok(extract::json(
        json!({ "model_version": m.mlflow_version(v) }),
    ))
}

// ---- files: listings and presigned URLs ----------------------------------------------------

/// `/Models/<catalog>/<schema>/<model>/<version>[/<file>]` → (full name, version, file).
fn model_path(path: &str) -> Option<(String, u64, String)> {
    let rest = path.trim_start_matches('/').strip_prefix("Models/")?;
    let mut parts = rest.splitn(5, '/');
    let (c, s, m, v) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let file = parts.next().unwrap_or("").trim_matches('/').to_string();
    if file.split('/').any(|x| x == ".." || x == ".") {
        return None;
    }
    Some((key(&format!("{c}.{s}.{m}")), v.parse().ok()?, file))
}

/// The version a `/Models/…` path names, and the DBFS path it stands for.
fn resolve<'a>(st: &'a State, path: &str) -> Option<(&'a UcVersion, String)> {
    let (full, n, file) = model_path(path)?;
    let m = st.uc.models.get(&full)?;
    let v = m.versions.get(&n)?;
    let root = storage_root(&m.id, n);
    let dbfs = if file.is_empty() {
        root
    } else {
        format!("{root}/{file}")
    };
    Some((v, dbfs))
}

fn files_not_found(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The file or directory {path} does not exist."),
    )
}

/// Whether `path` is a model version path (`/Models/…`), which [`list_model_dir`] serves.
pub(crate) fn is_model_path(raw: &str) -> bool {
    raw.trim_start_matches('/').starts_with("Models/")
}

/// `GET /api/2.0/fs/directories/Models/…`: one level of a version's files.
pub(crate) fn list_model_dir(st: &State, raw: &str) -> ApiResult {
    let path = format!("/{}", raw.trim_start_matches('/').trim_end_matches('/'));
    let (v, dir) = resolve(st, &path).ok_or_else(|| files_not_found(&path))?;
    match st.dbfs.nodes.get(&dir) {
        Some(n) if n.is_dir => {}
        // A version with no file yet lists empty; a missing folder below it is 404.
        None if model_path(&path).is_some_and(|(_, _, f)| f.is_empty()) => {
            return Ok(extract::json(json!({ "contents": [] })))
        }
        _ => return Err(files_not_found(&path)),
    }
    let contents: Vec<Value> = super::dbfs::children(st, &dir)
        .into_iter()
        .filter_map(|c| {
            let n = st.dbfs.nodes.get(&c)?;
            let name = c.rsplit('/').next().unwrap_or(&c).to_string();
            let p = format!("{path}/{name}");
            Some(if n.is_dir {
                json!({ "path": p, "is_directory": true, "name": name })
            } else {
                json!({
                    "path": p, "is_directory": false, "file_size": n.data.len(), "name": name,
                    "last_modified": v.updated_at,
                })
            })
        })
        .collect();
    Ok(extract::json(json!({ "contents": contents })))
}

/// The path of a `create-*-url` request: the JSON body's (MLflow) or the query's (SDK).
fn url_request_path(p: &Params, body: &Bytes) -> Result<String, ApiError> {
    let b = extract::parse_object(body)?;
    let b = body_with(p, b);
    Ok(b.req_str("path")?.to_string())
}

/// A signed URL for reading one file of a version.
async fn create_download_url(ctx: Ctx, p: Params, headers: HeaderMap, body: Bytes) -> ApiResult {
    // Other paths (volumes): not served, so the SDK falls back to a plain GET of the Files
    // API, as before this route existed.
    let path = match url_request_path(&p, &body) {
        Ok(path) if is_model_path(&path) => path,
        _ => {
            return Err(ApiError::no_endpoint(
                "POST",
                "/api/2.0/fs/create-download-url",
            ))
        }
    };
    let st = ctx.state();
    let (_, dbfs) = resolve(&st, &path).ok_or_else(|| files_not_found(&path))?;
    if st.dbfs.nodes.get(&dbfs).is_none_or(|n| n.is_dir) {
        return Err(files_not_found(&path));
    }
    let url = signed::url(&st, &signed::base_url(&headers), Access::Read, &dbfs);
    Ok(mark_read(json!({ "url": url, "headers": [] })))
}

/// A signed URL for writing one file of a version that is still `PENDING_REGISTRATION`.
async fn create_upload_url(ctx: Ctx, p: Params, headers: HeaderMap, body: Bytes) -> ApiResult {
    let path = url_request_path(&p, &body)?;
    let st = ctx.state();
    let Some((full, n, file)) = model_path(&path) else {
        return Err(ApiError::invalid(format!(
            "Invalid path {path}: upload URLs are given for model version files under /Models/<catalog>/<schema>/<model>/<version>/"
        )));
    };
    if file.is_empty() {
        return Err(ApiError::invalid(format!("{path} names no file")));
    }
    let (v, dbfs) = resolve(&st, &path).ok_or_else(|| files_not_found(&path))?;
    if v.status != "PENDING_REGISTRATION" {
        return Err(ApiError::invalid(format!(
            "Model version {full} version {n} is {}; its files can no longer be written.",
            v.status
        )));
    }
    let url = signed::url(&st, &signed::base_url(&headers), Access::Write, &dbfs);
    Ok(mark_read(json!({
        "url": url,
        "headers": [{ "name": "Content-Type", "value": "application/octet-stream" }],
    })))
}

// ---- seed ----------------------------------------------------------------------------------

/// A version as the seed writes it: `version.json`.
pub(crate) type SeedVersion = UcVersion;

/// Adds a seed model (its versions with their files); its catalog, schema and `function`
/// securable are added for the grants API.
pub(crate) fn seed_model(st: &mut State, mut m: UcModel) -> Result<(), String> {
    m.catalog_name = m.catalog_name.to_lowercase();
    m.schema_name = m.schema_name.to_lowercase();
    m.name = m.name.to_lowercase();
    let full = m.full_name();
    split_full(&full).map_err(|e| e.message)?;
    for a in &m.aliases {
        check_alias(&a.alias_name).map_err(|e| e.message)?;
        if !m.versions.contains_key(&a.version_num) {
            return Err(format!(
                "alias {} points at version {}, which the seed does not have",
                a.alias_name, a.version_num
            ));
        }
    }
    if m.id.is_empty() {
        m.id = new_id(st);
    }
    for v in m.versions.values_mut() {
        if v.id.is_empty() {
            v.id = format!("{}-v{}", m.id, v.version);
        }
        let root = storage_root(&m.id, v.version);
        super::dbfs::make_dirs(st, &root).map_err(|e| e.message)?;
        for (p, data) in std::mem::take(&mut v.files) {
            let target = format!("{root}/{p}");
            if let Some((parent, _)) = target.rsplit_once('/') {
                super::dbfs::make_dirs(st, parent).map_err(|e| e.message)?;
            }
            super::dbfs::write_file(st, &target, data, true).map_err(|e| e.message)?;
        }
    }
    m.tags.sort();
    m.aliases.sort();
    let (c, s) = (m.catalog_name.clone(), m.schema_name.clone());
    for (ty, name) in [
        ("catalog", c.clone()),
        ("schema", format!("{c}.{s}")),
        ("function", full.clone()),
    ] {
        st.unity
            .securables
            .entry((ty.to_string(), name))
            .or_default();
    }
    st.uc.models.insert(full, m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_split_into_name_version_and_file() {
        assert_eq!(
            model_path("/Models/Cat/sch/m/3/sub/MLmodel"),
            Some(("cat.sch.m".into(), 3, "sub/MLmodel".into()))
        );
        assert_eq!(
            model_path("/Models/c/s/m/1"),
            Some(("c.s.m".into(), 1, String::new()))
        );
        assert_eq!(model_path("/Models/c/s/m/x/f"), None);
        assert_eq!(model_path("/Models/c/s/m/1/../f"), None);
        assert_eq!(model_path("/Volumes/c/s/v/f"), None);
    }

    #[test]
    fn version_filters_name_one_model() {
        assert_eq!(filter_name("name='a.b.c'").unwrap(), "a.b.c");
        assert_eq!(filter_name(" name = \"a.b.c\"").unwrap(), "a.b.c");
        assert!(filter_name("run_id='x'").is_err());
        assert!(filter_name("name='a.b.c").is_err());
        assert!(filter_name("").is_err());
    }

    #[test]
    fn aliases_follow_the_registry_rules() {
        assert!(check_alias("champion").is_ok());
        assert!(check_alias("v2").is_err());
        assert!(check_alias("latest").is_err());
        assert!(check_alias("a b").is_err());
    }
}
