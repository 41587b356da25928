//! SCIM (`/api/2.0/preview/scim/v2/*`): `Me`, and list and get of Users, Groups and
//! ServicePrincipals, with `startIndex`/`count` paging and simple `filter` expressions
//! (`attr eq|co|sw "value"`). Errors use the SCIM error shape.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::model::principal::ScimRef;

use super::error::ApiResult;
use super::extract::{self, Caller, Ctx, Params};
use super::state::Shared;
use super::state::State;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    const B: &str = "/api/2.0/preview/scim/v2";
    Router::new()
        .route(&format!("{B}/Me"), get(me))
        .route(
            &format!("{B}/Users"),
            get(|c: Ctx, p: Params| list(c, p, Kind::User)),
        )
        .route(
            &format!("{B}/Users/{{id}}"),
            get(|c: Ctx, id: Path<String>| get_one(c, id, Kind::User)),
        )
        .route(
            &format!("{B}/Groups"),
            get(|c: Ctx, p: Params| list(c, p, Kind::Group)),
        )
        .route(
            &format!("{B}/Groups/{{id}}"),
            get(|c: Ctx, id: Path<String>| get_one(c, id, Kind::Group)),
        )
        .route(
            &format!("{B}/ServicePrincipals"),
            get(|c: Ctx, p: Params| list(c, p, Kind::ServicePrincipal)),
        )
        .route(
            &format!("{B}/ServicePrincipals/{{id}}"),
            get(|c: Ctx, id: Path<String>| get_one(c, id, Kind::ServicePrincipal)),
        )
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    User,
    Group,
    ServicePrincipal,
}

fn scim_error(status: StatusCode, detail: String) -> Response {
    (
        status,
        axum::Json(json!({"schemas": [ERROR_SCHEMA], "detail": detail, "status": status.as_u16().to_string()})),
    )
        .into_response()
}

/// The groups a member id belongs to, as SCIM references.
fn groups_of(st: &State, member_id: &str) -> Vec<ScimRef> {
    st.principals
        .groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m.value == member_id))
        .map(|g| ScimRef {
            value: g.id.clone(),
            display: Some(g.display_name.clone()),
            primary: None,
        })
        .collect()
}

fn user_json(st: &State, u: &crate::model::principal::User) -> Value {
    let mut u = u.clone();
    if u.groups.is_empty() {
        u.groups = groups_of(st, &u.id);
    }
    if u.emails.is_empty() {
        u.emails = vec![ScimRef {
            value: u.user_name.clone(),
            display: None,
            primary: Some(true),
        }];
    }
    let mut v = serde_json::to_value(u).unwrap_or_default();
    v["schemas"] = json!([USER_SCHEMA]);
    v
}

fn all(st: &State, kind: Kind) -> Vec<Value> {
    match kind {
        Kind::User => st
            .principals
            .users
            .iter()
            .map(|u| user_json(st, u))
            .collect(),
        Kind::Group => st
            .principals
            .groups
            .iter()
            .map(|g| {
                let mut v = serde_json::to_value(g).unwrap_or_default();
                v["schemas"] = json!([GROUP_SCHEMA]);
                v
            })
            .collect(),
        Kind::ServicePrincipal => st
            .principals
            .service_principals
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["groups"] = json!(groups_of(st, &s.id));
                v["schemas"] = json!([SP_SCHEMA]);
                v
            })
            .collect(),
    }
}

/// Evaluates `attr op "value"` (`eq`, `co`, `sw`, `ne`; case-insensitive values as SCIM
/// specifies for these attributes).
fn filter_matches(filter: &str, v: &Value) -> Result<bool, String> {
    // Hand-written: the crate's regex has no Unicode case folding, and `(?i)` needs it.
    let unsupported = || format!("Unsupported filter expression: {filter}");
    let mut parts = filter.trim().splitn(3, char::is_whitespace);
    let attr = parts.next().ok_or_else(unsupported)?;
    let op = parts.next().ok_or_else(unsupported)?.to_ascii_lowercase();
    let value = parts.next().ok_or_else(unsupported)?.trim();
    let want = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .ok_or_else(unsupported)?
        .to_lowercase();
    let got = v
        .get(attr)
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .unwrap_or_default();
    Ok(match op.as_str() {
        "eq" => got == want,
        "ne" => got != want,
        "co" => got.contains(&want),
        "sw" => got.starts_with(&want),
        _ => return Err(unsupported()),
    })
}

async fn list(ctx: Ctx, p: Params, kind: Kind) -> Response {
    let st = ctx.state();
    let mut items = all(&st, kind);
    if let Some(f) = p.get("filter").filter(|f| !f.is_empty()) {
        let mut kept = Vec::new();
        for v in items {
            match filter_matches(f, &v) {
                Ok(true) => kept.push(v),
                Ok(false) => {}
                Err(e) => return scim_error(StatusCode::BAD_REQUEST, e),
            }
        }
        items = kept;
    }
    let total = items.len();
    let start = p
        .get("startIndex")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let count = p
        .get("count")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(10_000);
    let page: Vec<Value> = items.into_iter().skip(start - 1).take(count).collect();
    extract::json(json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    }))
}

async fn get_one(ctx: Ctx, Path(id): Path<String>, kind: Kind) -> Response {
    let st = ctx.state();
    let found = all(&st, kind)
        .into_iter()
        .find(|v| v.get("id").and_then(Value::as_str) == Some(id.as_str()));
    match found {
        Some(v) => extract::json(v),
        None => {
            let what = match kind {
                Kind::User => "User",
                Kind::Group => "Group",
                Kind::ServicePrincipal => "Service Principal",
            };
            scim_error(
                StatusCode::NOT_FOUND,
                format!("{what} with id {id} not found."),
            )
        }
    }
}

async fn me(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    let v = match &ctx.caller {
        Caller::User(name) => st
            .principals
            .users
            .iter()
            .find(|u| &u.user_name == name)
            .map(|u| user_json(&st, u))
            .unwrap_or_else(
                || json!({"schemas": [USER_SCHEMA], "id": "0", "userName": name, "active": true}),
            ),
        Caller::ServicePrincipal(app) => {
            let sp = st
                .principals
                .service_principals
                .iter()
                .find(|s| &s.application_id == app);
            match sp {
                Some(s) => json!({
                    "schemas": [USER_SCHEMA],
                    "id": s.id,
                    "userName": s.application_id,
                    "displayName": s.display_name,
                    "active": s.active,
                    "groups": groups_of(&st, &s.id),
                }),
                None => {
                    json!({"schemas": [USER_SCHEMA], "id": "0", "userName": app, "active": true})
                }
            }
        }
    };
    Ok(extract::json(v))
}
