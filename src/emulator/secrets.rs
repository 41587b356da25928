//! The Secrets API (`/api/2.0/secrets/*`): scopes (Databricks-backed, and Azure Key
//! Vault-backed ones that are read-only through the API), keys, values and scope ACLs.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::model::secret::{is_valid_name, AclPermission, ScopeBackend, ValueEncoding};

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, b64, unb64, Body, Caller, Ctx, Fields, Params};
use super::state::{Scope, SecretValue, Shared, State};

/// Largest value a secret may hold.
pub(crate) const MAX_VALUE: usize = 128 * 1024;
/// Most secrets a scope may hold.
pub(crate) const MAX_SECRETS: usize = 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/secrets/scopes/create", post(create_scope))
        .route("/api/2.0/secrets/scopes/list", get(list_scopes))
        .route("/api/2.0/secrets/scopes/delete", post(delete_scope))
        .route("/api/2.0/secrets/put", post(put_secret))
        .route("/api/2.0/secrets/list", get(list_secrets))
        .route("/api/2.0/secrets/get", get(get_secret))
        .route("/api/2.0/secrets/delete", post(delete_secret))
        .route("/api/2.0/secrets/acls/list", get(list_acls))
        .route("/api/2.0/secrets/acls/get", get(get_acl))
        .route("/api/2.0/secrets/acls/put", post(put_acl))
        .route("/api/2.0/secrets/acls/delete", post(delete_acl))
}

fn no_scope(name: &str) -> ApiError {
    ApiError::not_found(format!("Scope {name} does not exist!"))
}

/// Checks that scope `name` exists (404), then that the caller holds `need` on it (403).
fn allowed(st: &State, caller: &Caller, name: &str, need: AclPermission) -> Result<(), ApiError> {
    scope(st, name)?;
    access::check_scope(st, caller, name, need)
}

fn scope<'a>(st: &'a State, name: &str) -> Result<&'a Scope, ApiError> {
    st.scopes.get(name).ok_or_else(|| no_scope(name))
}

fn scope_mut<'a>(st: &'a mut State, name: &str) -> Result<&'a mut Scope, ApiError> {
    st.scopes.get_mut(name).ok_or_else(|| no_scope(name))
}

fn parse_permission(s: &str) -> Result<AclPermission, ApiError> {
    match s.to_ascii_uppercase().as_str() {
        "READ" => Ok(AclPermission::Read),
        "WRITE" => Ok(AclPermission::Write),
        "MANAGE" => Ok(AclPermission::Manage),
        _ => Err(ApiError::invalid(format!(
            "Invalid permission {s}; valid permissions are READ, WRITE, MANAGE"
        ))),
    }
}

async fn create_scope(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("scope")?;
    if !is_valid_name(name) {
        return Err(ApiError::invalid(format!(
            "Invalid scope name {name}: it must consist of alphanumeric characters, dashes, underscores and periods, and be at most 128 characters"
        )));
    }
    let backend = b.opt_str("scope_backend_type")?.unwrap_or("DATABRICKS");
    match backend {
        "DATABRICKS" => {}
        "AZURE_KEYVAULT" => {
            // Key Vault scopes need an Azure AD token of the caller; personal access tokens
            // and OAuth M2M cannot create them.
            return Err(ApiError::bad_request(
                "Scope with Azure KeyVault must have userAADToken defined!",
            ));
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid scope_backend_type {other}; valid types are DATABRICKS, AZURE_KEYVAULT"
            )))
        }
    }
    let manager = match b.opt_str("initial_manage_principal")? {
        None | Some("") => ctx.caller.name().to_string(),
        Some("users") => "users".to_string(),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "initial_manage_principal must be `users` when given, not {other}"
            )))
        }
    };
    let mut st = ctx.state();
    if st.scopes.contains_key(name) {
        return Err(ApiError::exists(format!("Scope {name} already exists!")));
    }
    let mut acls = std::collections::BTreeMap::new();
    acls.insert(manager, AclPermission::Manage);
    st.scopes.insert(
        name.to_string(),
        Scope {
            backend: ScopeBackend::Databricks,
            keyvault: None,
            acls,
            secrets: Default::default(),
        },
    );
    Ok(extract::empty())
}

async fn list_scopes(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    let scopes: Vec<Value> = st
        .scopes
        .iter()
        .map(|(name, s)| {
            let mut o = json!({"name": name, "backend_type": s.backend});
            if let Some(kv) = &s.keyvault {
                o["keyvault_metadata"] = json!(kv);
            }
            o
        })
        .collect();
    if scopes.is_empty() {
        return Ok(extract::empty());
    }
    Ok(extract::json(json!({ "scopes": scopes })))
}

async fn delete_scope(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("scope")?;
    let mut st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Manage)?;
    st.scopes.remove(name);
    Ok(extract::empty())
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if is_valid_name(key) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid key name {key}: it must consist of alphanumeric characters, dashes, underscores and periods, and be at most 128 characters"
        )))
    }
}

fn read_only(name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Scope {name} is backed by Azure Key Vault; its secrets are read-only through the Databricks API."
    ))
}

async fn put_secret(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("scope")?;
    let key = b.req_str("key")?;
    check_key(key)?;
    let (value, encoding) = match (b.opt_str("string_value")?, b.opt_str("bytes_value")?) {
        (Some(s), None) => (Zeroizing::new(s.as_bytes().to_vec()), ValueEncoding::String),
        (None, Some(v)) => (
            Zeroizing::new(unb64("bytes_value", v)?),
            ValueEncoding::Bytes,
        ),
        _ => {
            return Err(ApiError::invalid(
                "Exactly one of string_value and bytes_value must be given",
            ))
        }
    };
    if value.len() > MAX_VALUE {
        return Err(ApiError::invalid(format!(
            "Secret value of {key} is {} bytes; the limit is {MAX_VALUE} bytes",
            value.len()
        )));
    }
    let mut st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Write)?;
    let now = st.now();
    let sc = scope_mut(&mut st, name)?;
    if sc.backend == ScopeBackend::AzureKeyvault {
        return Err(read_only(name));
    }
    if !sc.secrets.contains_key(key) && sc.secrets.len() >= MAX_SECRETS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "RESOURCE_LIMIT_EXCEEDED",
            format!("Scope {name} already holds {MAX_SECRETS} secrets"),
        ));
    }
    sc.secrets.insert(
        key.to_string(),
        SecretValue {
            value,
            encoding,
            updated: now,
        },
    );
    Ok(extract::empty())
}

async fn list_secrets(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("scope")?;
    let st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Read)?;
    let sc = scope(&st, name)?;
    let secrets: Vec<Value> = sc
        .secrets
        .iter()
        .map(|(k, v)| json!({"key": k, "last_updated_timestamp": v.updated}))
        .collect();
    if secrets.is_empty() {
        return Ok(extract::empty());
    }
    Ok(extract::json(json!({ "secrets": secrets })))
}

async fn get_secret(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("scope")?;
    let key = p.req("key")?;
    let st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Read)?;
    if st.workspace.secrets_get_refused {
        return Err(ApiError::denied(format!(
            "User {} does not have permission to read secret values of scope {name} through this API; secret values can only be read from a notebook or job running on a cluster.",
            ctx.caller.name()
        )));
    }
    let sc = scope(&st, name)?;
    let v = sc.secrets.get(key).ok_or_else(|| {
        ApiError::not_found(format!(
            "Secret does not exist with scope: {name} and key: {key}"
        ))
    })?;
    Ok(extract::json(json!({"key": key, "value": b64(&v.value)})))
}

async fn delete_secret(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("scope")?;
    let key = b.req_str("key")?;
    let mut st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Write)?;
    let sc = scope_mut(&mut st, name)?;
    if sc.backend == ScopeBackend::AzureKeyvault {
        return Err(read_only(name));
    }
    sc.secrets.remove(key).ok_or_else(|| {
        ApiError::not_found(format!(
            "Secret does not exist with scope: {name} and key: {key}"
        ))
    })?;
    Ok(extract::empty())
}

async fn list_acls(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("scope")?;
    let st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Manage)?;
    let items: Vec<Value> = scope(&st, name)?
        .acls
        .iter()
        .map(|(p, l)| json!({"principal": p, "permission": l}))
        .collect();
    if items.is_empty() {
        return Ok(extract::empty());
    }
    Ok(extract::json(json!({ "items": items })))
}

async fn get_acl(ctx: Ctx, p: Params) -> ApiResult {
    let name = p.req("scope")?;
    let principal = p.req("principal")?;
    let st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Manage)?;
    let level = scope(&st, name)?.acls.get(principal).ok_or_else(|| {
        ApiError::not_found(format!(
            "Failed to get secret acl for principal {principal} in scope {name}: no such ACL"
        ))
    })?;
    Ok(extract::json(
        json!({"principal": principal, "permission": level}),
    ))
}

async fn put_acl(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("scope")?;
    let principal = b.req_str("principal")?;
    let level = parse_permission(b.req_str("permission")?)?;
    let mut st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Manage)?;
    if !st.principals.name_exists(principal) {
        return Err(ApiError::not_found(format!(
            "Principal {principal} does not exist"
        )));
    }
    scope_mut(&mut st, name)?
        .acls
        .insert(principal.to_string(), level);
    Ok(extract::empty())
}

async fn delete_acl(ctx: Ctx, Body(b): Body) -> ApiResult {
    let name = b.req_str("scope")?;
    let principal = b.req_str("principal")?;
    let mut st = ctx.state();
    allowed(&st, &ctx.caller, name, AclPermission::Manage)?;
    scope_mut(&mut st, name)?
        .acls
        .remove(principal)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Failed to delete secret acl for principal {principal} in scope {name}: no such ACL"
            ))
        })?;
    Ok(extract::empty())
}
