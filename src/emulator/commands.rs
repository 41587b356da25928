//! Command execution 1.2 (`/api/1.2/contexts/*`, `/api/1.2/commands/*`) on a seeded running
//! cluster.
//!
//! The emulator runs no code. It recognises exactly dbxport's fixed programs
//! ([`crate::model::command`]): the secret reader, evaluated against the secrets it holds
//! (refusal of `secrets/get` does not apply, as `dbutils` works inside a cluster), and the mount
//! lister. Anything else finishes with an error result, as a cluster does for code it cannot run.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::model::command::{
    is_mounts_command, parse_secret_read_command, MountsOutput, SecretReadError, SecretReadOutput,
    SecretReadValue, BUILTIN_MOUNT_POINTS,
};
use crate::model::compute::Mount;
use crate::model::secret::AclPermission;

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, b64, mark, Body, Caller, Ctx, Fields, Params};
use super::state::{CommandRecord, ExecContext, Shared, State};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/1.2/contexts/create", post(create_context))
        .route("/api/1.2/contexts/status", get(context_status))
        .route("/api/1.2/contexts/destroy", post(destroy_context))
        .route("/api/1.2/commands/execute", post(execute))
        .route("/api/1.2/commands/status", get(command_status))
        .route("/api/1.2/commands/cancel", post(cancel))
}

const LANGUAGES: [&str; 4] = ["python", "scala", "sql", "r"];

/// Checks that `cluster_id` names a running cluster.
fn running_cluster(st: &State, cluster_id: &str) -> Result<(), ApiError> {
    let c = st
        .compute
        .clusters
        .iter()
        .find(|c| c.cluster_id == cluster_id)
        .ok_or_else(|| ApiError::invalid(format!("Cluster {cluster_id} does not exist")))?;
    let state = c
        .spec
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("TERMINATED");
    if state != "RUNNING" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!(
                "Cluster {cluster_id} is in state {state}; commands run only on a RUNNING cluster."
            ),
        ));
    }
    Ok(())
}

fn context<'a>(
    st: &'a State,
    cluster_id: &str,
    context_id: &str,
) -> Result<&'a ExecContext, ApiError> {
    st.contexts
        .get(context_id)
        .filter(|c| c.cluster_id == cluster_id)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Context {context_id} does not exist on cluster {cluster_id}"
            ))
        })
}

async fn create_context(ctx: Ctx, Body(b): Body) -> ApiResult {
    let cluster_id = b.req_str("clusterId")?;
    let language = b
        .opt_str("language")?
        .unwrap_or("python")
        .to_ascii_lowercase();
    if !LANGUAGES.contains(&language.as_str()) {
        return Err(ApiError::invalid(format!("Invalid language {language}")));
    }
    let mut st = ctx.state();
    running_cluster(&st, cluster_id)?;
    let id = format!("{}", 7_000_000_000_000_000_000u64 + st.next_seq());
    st.contexts.insert(
        id.clone(),
        ExecContext {
            cluster_id: cluster_id.to_string(),
            language,
        },
    );
    Ok(mark(extract::json(json!({ "id": id })), false))
}

async fn context_status(ctx: Ctx, p: Params) -> ApiResult {
    let cluster_id = p.req("clusterId")?;
    let context_id = p.req("contextId")?;
    let st = ctx.state();
    context(&st, cluster_id, context_id)?;
    Ok(extract::json(
        json!({"id": context_id, "status": "Running"}),
    ))
}

async fn destroy_context(ctx: Ctx, Body(b): Body) -> ApiResult {
    let cluster_id = b.req_str("clusterId")?;
    let context_id = b.req_str("contextId")?;
    let mut st = ctx.state();
    context(&st, cluster_id, context_id)?;
    st.contexts.remove(context_id);
    st.commands.retain(|_, c| c.context_id != context_id);
    Ok(mark(extract::empty(), false))
}

/// The result of a command that raised, shaped as a cluster reports a Python exception.
fn error_result(exception: &str, message: &str) -> Value {
    json!({
        "resultType": "error",
        "summary": format!("<span class='ansi-red-fg'>{exception}</span>: {message}"),
        "cause": format!("---------------------------------------------------------------------------\n{exception}: {message}"),
    })
}

fn text_result(data: String) -> Value {
    json!({"resultType": "text", "data": data})
}

/// Evaluates one command against the workspace.
fn evaluate(st: &State, caller: &Caller, language: &str, command: &str) -> Value {
    if language != "python" {
        return error_result(
            "UnsupportedOperationException",
            "the dbxport emulator evaluates only dbxport's fixed Python programs",
        );
    }
    if let Some(keys) = parse_secret_read_command(command) {
        let mut out = SecretReadOutput::default();
        for (scope, key) in keys {
            // dbutils reads with the caller's rights: READ on the scope.
            if st.scopes.contains_key(&scope)
                && access::check_scope(st, caller, &scope, AclPermission::Read).is_err()
            {
                out.errors.push(SecretReadError {
                    error: format!(
                        "PermissionDeniedException: User {} does not have READ permission on scope {scope}",
                        caller.name()
                    ),
                    scope,
                    key,
                });
                continue;
            }
            let value = st
                .scopes
                .get(&scope)
                .ok_or_else(|| format!("Secret does not exist with scope: {scope} and key: {key}"))
                .and_then(|s| {
                    s.secrets.get(&key).ok_or_else(|| {
                        format!("Secret does not exist with scope: {scope} and key: {key}")
                    })
                });
            match value {
                Ok(v) => out.values.push(SecretReadValue {
                    scope,
                    key,
                    value: b64(&v.value),
                }),
                Err(e) => out.errors.push(SecretReadError {
                    scope,
                    key,
                    error: format!("IllegalArgumentException: {e}"),
                }),
            }
        }
        return text_result(serde_json::to_string(&out).unwrap_or_default());
    }
    if is_mounts_command(command) {
        let mut mounts: Vec<Mount> = st.mounts.clone();
        for mp in BUILTIN_MOUNT_POINTS {
            if !mounts.iter().any(|m| m.mount_point == mp) {
                let source = match mp {
                    "/" => "DatabricksRoot",
                    "/Volumes" => "UnityCatalogVolumes",
                    "/Volume" | "/volume" | "/volumes" => "DbfsReserved",
                    other => other.trim_start_matches('/'),
                };
                mounts.push(Mount {
                    mount_point: mp.to_string(),
                    source: source.to_string(),
                    encryption_type: Some(String::new()),
                });
            }
        }
        mounts.sort();
        let out = MountsOutput { mounts };
        return text_result(serde_json::to_string(&out).unwrap_or_default());
    }
    error_result(
        "NotImplementedError",
        "the dbxport emulator evaluates only dbxport's fixed programs (model::command); this command is not one of them",
    )
}

async fn execute(ctx: Ctx, Body(b): Body) -> ApiResult {
    let cluster_id = b.req_str("clusterId")?;
    let context_id = b.req_str("contextId")?;
    let command = b.opt_str("command")?.unwrap_or("");
    let mut st = ctx.state();
    running_cluster(&st, cluster_id)?;
    let cx_lang = context(&st, cluster_id, context_id)?.language.clone();
    let language = b
        .opt_str("language")?
        .map(str::to_ascii_lowercase)
        .unwrap_or(cx_lang);
    let id = format!("{:032x}", st.next_seq());
    let results = evaluate(&st, &ctx.caller, &language, command);
    st.remember_command(
        id.clone(),
        CommandRecord {
            context_id: context_id.to_string(),
            cluster_id: cluster_id.to_string(),
            response: json!({"id": id, "status": "Finished", "results": results}),
        },
    );
    Ok(mark(extract::json(json!({ "id": id })), false))
}

async fn command_status(ctx: Ctx, p: Params) -> ApiResult {
    let cluster_id = p.req("clusterId")?;
    let context_id = p.req("contextId")?;
    let command_id = p.req("commandId")?;
    let st = ctx.state();
    let c = st
        .commands
        .get(command_id)
        .filter(|c| c.cluster_id == cluster_id && c.context_id == context_id)
        .ok_or_else(|| ApiError::invalid(format!("Command {command_id} does not exist")))?;
    Ok(extract::json(c.response.clone()))
}

async fn cancel(ctx: Ctx, Body(b): Body) -> ApiResult {
    let cluster_id = b.req_str("clusterId")?;
    let context_id = b.req_str("contextId")?;
    let command_id = b.req_str("commandId")?;
    let st = ctx.state();
    // Commands finish as they are submitted, so there is nothing left to cancel.
    st.commands
        .get(command_id)
        .filter(|c| c.cluster_id == cluster_id && c.context_id == context_id)
        .ok_or_else(|| ApiError::invalid(format!("Command {command_id} does not exist")))?;
    Ok(mark(extract::empty(), false))
}
