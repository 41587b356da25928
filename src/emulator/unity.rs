//! Unity Catalog grants (`/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}`):
//! GET (with `principal` filter and paging) and PATCH (add and remove privileges); and the
//! listings of catalogs, schemas and tables that lead to them (`/catalogs`, `/schemas`,
//! `/tables`), derived from the securables the seed names.
//!
//! Only securables the seed names (or that hold grants) exist; any other answers 404, as a
//! missing catalog, schema or table does.

use std::sync::Arc;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::grants::PrivilegeAssignment;

use super::error::{ApiError, ApiResult};
use super::extract::{self, read_page_token, Body, Ctx, Fields, Params};
use super::state::{Shared, State};

/// Securable types the API accepts in its path (lowercase).
pub(crate) const SECURABLE_TYPES: [&str; 15] = [
    "catalog",
    "schema",
    "table",
    "volume",
    "function",
    "external_location",
    "storage_credential",
    "metastore",
    "connection",
    "share",
    "credential",
    "registered_model",
    "model",
    "external_metadata",
    "service_credential",
];

/// Page size used when `max_results` is 0.
const SERVER_PAGE: usize = 150;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}",
            get(get_grants).patch(update_grants),
        )
        .route("/api/2.1/unity-catalog/catalogs", get(list_catalogs))
        .route("/api/2.1/unity-catalog/schemas", get(list_schemas))
        .route("/api/2.1/unity-catalog/tables", get(list_tables))
}

/// Every securable name with `depth` dot-separated parts, from the securables of the seed and
/// the parents their full names imply.
fn names_at(st: &State, depth: usize) -> std::collections::BTreeSet<Vec<String>> {
    st.unity
        .securables
        .keys()
        .filter(|(ty, _)| {
            matches!(
                ty.as_str(),
                "catalog" | "schema" | "table" | "volume" | "function"
            )
        })
        .filter_map(|(_, name)| {
            let parts: Vec<String> = name.split('.').map(str::to_string).collect();
            (parts.len() >= depth).then(|| parts[..depth].to_vec())
        })
        .collect()
}

async fn list_catalogs(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    let catalogs: Vec<Value> = names_at(&st, 1)
        .into_iter()
        .map(|p| json!({ "name": p[0], "full_name": p[0], "catalog_type": "MANAGED_CATALOG" }))
        .collect();
    Ok(extract::json(json!({ "catalogs": catalogs })))
}

async fn list_schemas(ctx: Ctx, p: Params) -> ApiResult {
    let catalog = p.req("catalog_name")?.to_string();
    let st = ctx.state();
    if !names_at(&st, 1).contains(&vec![catalog.clone()]) {
        return Err(ApiError::not_found(format!(
            "Catalog '{catalog}' does not exist."
        )));
    }
    let schemas: Vec<Value> = names_at(&st, 2)
        .into_iter()
        .filter(|p| p[0] == catalog)
        .map(|p| json!({ "name": p[1], "catalog_name": p[0], "full_name": p.join(".") }))
        .collect();
    Ok(extract::json(json!({ "schemas": schemas })))
}

async fn list_tables(ctx: Ctx, p: Params) -> ApiResult {
    let catalog = p.req("catalog_name")?.to_string();
    let schema = p.req("schema_name")?.to_string();
    let st = ctx.state();
    if !names_at(&st, 2).contains(&vec![catalog.clone(), schema.clone()]) {
        return Err(ApiError::not_found(format!(
            "Schema '{catalog}.{schema}' does not exist."
        )));
    }
    let tables: Vec<Value> = st
        .unity
        .securables
        .keys()
        .filter(|(ty, _)| ty == "table")
        .filter_map(|(_, name)| {
            let parts: Vec<&str> = name.split('.').collect();
            (parts.len() == 3 && parts[0] == catalog && parts[1] == schema).then(|| {
                json!({ "name": parts[2], "catalog_name": parts[0], "schema_name": parts[1], "full_name": name })
            })
        })
        .collect();
    Ok(extract::json(json!({ "tables": tables })))
}

fn securable_type(raw: &str) -> Result<String, ApiError> {
    let t = raw.to_ascii_lowercase();
    if SECURABLE_TYPES.contains(&t.as_str()) {
        Ok(t)
    } else {
        Err(ApiError::invalid(format!(
            "Invalid securable type {raw}; valid types are {}",
            SECURABLE_TYPES.join(", ")
        )))
    }
}

fn lookup<'a>(
    st: &'a State,
    ty: &str,
    name: &str,
) -> Result<&'a Vec<PrivilegeAssignment>, ApiError> {
    st.unity
        .securables
        .get(&(ty.to_string(), name.to_string()))
        .ok_or_else(|| ApiError::not_found(format!("{} '{name}' does not exist.", capitalized(ty))))
}

fn capitalized(ty: &str) -> String {
    let mut c = ty.replace('_', " ");
    if let Some(f) = c.get_mut(0..1) {
        f.make_ascii_uppercase();
    }
    c
}

fn normalize_privilege(p: &str) -> String {
    p.trim().to_ascii_uppercase().replace(' ', "_")
}

async fn get_grants(ctx: Ctx, Path((ty, name)): Path<(String, String)>, p: Params) -> ApiResult {
    let ty = securable_type(&ty)?;
    let principal = p.get("principal").filter(|s| !s.is_empty());
    let page_size = match p.i64("max_results")? {
        None => None,
        Some(0) => Some(SERVER_PAGE),
        Some(n) if n >= 150 => Some(n as usize),
        Some(n) => {
            return Err(ApiError::invalid(format!(
            "Invalid max_results {n}: use 0 for the server's page size or a value of at least 150"
        )))
        }
    };
    let start = match p.get("page_token").filter(|s| !s.is_empty()) {
        Some(t) => read_page_token(t)?
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?,
        None => 0,
    };
    let st = ctx.state();
    let all: Vec<&PrivilegeAssignment> = lookup(&st, &ty, &name)?
        .iter()
        .filter(|a| principal.is_none_or(|f| a.principal == f))
        .collect();
    let end = page_size.map_or(all.len(), |n| (start + n).min(all.len()));
    let start = start.min(all.len());
    let mut out = Map::new();
    out.insert(
        "privilege_assignments".into(),
        serde_json::to_value(&all[start..end]).unwrap_or_default(),
    );
    if end < all.len() {
        out.insert(
            "next_page_token".into(),
            json!(extract::page_token(&end.to_string())),
        );
    }
    Ok(extract::json(Value::Object(out)))
}

async fn update_grants(
    ctx: Ctx,
    Path((ty, name)): Path<(String, String)>,
    Body(b): Body,
) -> ApiResult {
    let ty = securable_type(&ty)?;
    let changes = b.opt_array("changes")?.cloned().unwrap_or_default();
    let omit = b.opt_bool("omit_permissions_in_response")?.unwrap_or(false);
    let mut st = ctx.state();
    lookup(&st, &ty, &name)?;
    let mut parsed = Vec::new();
    for c in &changes {
        let o = c
            .as_object()
            .ok_or_else(|| ApiError::invalid("each change must be an object"))?;
        let principal = o.req_str("principal")?.to_string();
        if !st.principals.name_exists(&principal) {
            return Err(ApiError::not_found(format!(
                "Could not find principal with name {principal}"
            )));
        }
        let list = |k: &str| -> Result<Vec<String>, ApiError> {
            Ok(o.opt_array(k)?
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(normalize_privilege)
                        .collect()
                })
                .unwrap_or_default())
        };
        let add = list("add")?;
        let remove = list("remove")?;
        if let Some(both) = add.iter().find(|p| remove.contains(p)) {
            return Err(ApiError::invalid(format!(
                "Privilege {both} is both added and removed for {principal}"
            )));
        }
        parsed.push((principal, add, remove));
    }
    let assignments = st
        .unity
        .securables
        .get_mut(&(ty.clone(), name.clone()))
        .expect("checked above");
    for (principal, add, remove) in parsed {
        let idx = match assignments.iter().position(|a| a.principal == principal) {
            Some(i) => i,
            None => {
                assignments.push(PrivilegeAssignment {
                    principal: principal.clone(),
                    privileges: Vec::new(),
                });
                assignments.len() - 1
            }
        };
        let a = &mut assignments[idx];
        a.privileges.retain(|p| !remove.contains(p));
        for p in add {
            if !a.privileges.contains(&p) {
                a.privileges.push(p);
            }
        }
        a.privileges.sort();
    }
    assignments.retain(|a| !a.privileges.is_empty());
    assignments.sort();
    if omit {
        return Ok(extract::empty());
    }
    Ok(extract::json(
        json!({ "privilege_assignments": assignments }),
    ))
}
