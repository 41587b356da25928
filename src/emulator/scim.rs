//! SCIM (`/api/2.0/preview/scim/v2/*`): `Me`, and list and get of Users, Groups and
//! ServicePrincipals, with `startIndex`/`count` paging and simple `filter` expressions
//! (`attr eq|co|sw "value"`); Groups also create, replace, patch (`add`, `remove`, `replace`
//! of `members`, `displayName`) and delete. Errors use the SCIM error shape.
//!
//! Group members and a principal's groups carry `$ref` (`Users/<id>`, `Groups/<id>`,
//! `ServicePrincipals/<id>`) as real workspaces answer them; a member sent without `$ref` is
//! found by its id alone, as real workspaces accept it.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::principal::{Group, ScimRef};

use super::access;
use super::error::ApiResult;
use super::extract::{self, Body, Caller, Ctx, Params};
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
            get(|c: Ctx, p: Params| list(c, p, Kind::Group)).post(create_group),
        )
        .route(
            &format!("{B}/Groups/{{id}}"),
            get(|c: Ctx, id: Path<String>| get_one(c, id, Kind::Group))
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
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

/// The `$ref` of a principal id (`Users/…`, `Groups/…`, `ServicePrincipals/…`).
fn ref_of(st: &State, id: &str) -> Option<String> {
    let p = &st.principals;
    if p.users.iter().any(|u| u.id == id) {
        Some(format!("Users/{id}"))
    } else if p.groups.iter().any(|g| g.id == id) {
        Some(format!("Groups/{id}"))
    } else if p.service_principals.iter().any(|s| s.id == id) {
        Some(format!("ServicePrincipals/{id}"))
    } else {
        None
    }
}

/// SCIM references as served: each with its `$ref` (and `type` for a principal's groups).
fn refs_json(st: &State, refs: &[ScimRef], direct_groups: bool) -> Value {
    Value::Array(
        refs.iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(x) = ref_of(st, &r.value) {
                    v["$ref"] = json!(x);
                }
                if direct_groups {
                    v["type"] = json!("direct");
                }
                v
            })
            .collect(),
    )
}

fn group_json(st: &State, g: &Group) -> Value {
    let mut v = serde_json::to_value(g).unwrap_or_default();
    if !g.members.is_empty() {
        v["members"] = refs_json(st, &g.members, false);
    }
    v["schemas"] = json!([GROUP_SCHEMA]);
    v
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
    let mut v = serde_json::to_value(&u).unwrap_or_default();
    if !u.groups.is_empty() {
        v["groups"] = refs_json(st, &u.groups, true);
    }
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
            .map(|g| group_json(st, g))
            .collect(),
        Kind::ServicePrincipal => st
            .principals
            .service_principals
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["groups"] = refs_json(st, &groups_of(st, &s.id), true);
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
                    "groups": refs_json(&st, &groups_of(&st, &s.id), true),
                }),
                None => {
                    json!({"schemas": [USER_SCHEMA], "id": "0", "userName": app, "active": true})
                }
            }
        }
    };
    Ok(extract::json(v))
}

/// A SCIM error not yet rendered (a `Response` is too large to pass around in a `Result`).
struct ScimError(StatusCode, String);

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        scim_error(self.0, self.1)
    }
}

/// Refuses a change of groups by anyone but an administrator, in the SCIM error shape.
fn admin_only(st: &State, caller: &Caller) -> Result<(), ScimError> {
    if access::is_admin(st, caller) {
        Ok(())
    } else {
        Err(ScimError(
            StatusCode::FORBIDDEN,
            format!(
                "{} is not an administrator; only administrators can change groups.",
                caller.name()
            ),
        ))
    }
}

/// The members a request names: `[{"value": id}]`, `$ref` and `display` optional.
fn members_of(st: &State, v: Option<&Value>) -> Result<Vec<ScimRef>, ScimError> {
    let bad = |m: String| ScimError(StatusCode::BAD_REQUEST, m);
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => std::slice::from_ref(other),
    };
    let mut out: Vec<ScimRef> = Vec::new();
    for m in items {
        let id = m
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("A member needs a value (the principal's id): {m}")))?;
        if ref_of(st, id).is_none() {
            return Err(ScimError(
                StatusCode::NOT_FOUND,
                format!("Principal with id {id} not found."),
            ));
        }
        let display = st
            .principals
            .users
            .iter()
            .find(|u| u.id == id)
            .map(|u| {
                u.display_name
                    .clone()
                    .unwrap_or_else(|| u.user_name.clone())
            })
            .or_else(|| {
                st.principals
                    .groups
                    .iter()
                    .find(|g| g.id == id)
                    .map(|g| g.display_name.clone())
            })
            .or_else(|| {
                st.principals
                    .service_principals
                    .iter()
                    .find(|s| s.id == id)
                    .map(|s| {
                        s.display_name
                            .clone()
                            .unwrap_or_else(|| s.application_id.clone())
                    })
            });
        if !out.iter().any(|r| r.value == id) {
            out.push(ScimRef {
                value: id.to_string(),
                display,
                primary: None,
            });
        }
    }
    Ok(out)
}

fn group_index(st: &State, id: &str) -> Result<usize, ScimError> {
    st.principals
        .groups
        .iter()
        .position(|g| g.id == id)
        .ok_or_else(|| {
            ScimError(
                StatusCode::NOT_FOUND,
                format!("Group with id {id} not found."),
            )
        })
}

fn name_taken(st: &State, name: &str, except: Option<&str>) -> Result<(), ScimError> {
    if st
        .principals
        .groups
        .iter()
        .any(|g| g.display_name == name && Some(g.id.as_str()) != except)
    {
        return Err(ScimError(
            StatusCode::CONFLICT,
            format!("Group with name {name} already exists."),
        ));
    }
    Ok(())
}

fn entitlements_of(v: Option<&Value>) -> Vec<ScimRef> {
    v.and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default()
}

async fn create_group(ctx: Ctx, Body(b): Body) -> Response {
    let mut st = ctx.state();
    let made = (|| {
        admin_only(&st, &ctx.caller)?;
        let name = b
            .get("displayName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ScimError(StatusCode::BAD_REQUEST, "displayName is required".into()))?
            .to_string();
        name_taken(&st, &name, None)?;
        let members = members_of(&st, b.get("members"))?;
        Ok::<_, ScimError>(Group {
            id: String::new(),
            display_name: name,
            members,
            entitlements: entitlements_of(b.get("entitlements")),
        })
    })();
    let mut g = match made {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    g.id = st.next_object_id().to_string();
    let v = group_json(&st, &g);
    st.principals.groups.push(g);
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

async fn replace_group(ctx: Ctx, Path(id): Path<String>, Body(b): Body) -> Response {
    let mut st = ctx.state();
    let done = (|| {
        admin_only(&st, &ctx.caller)?;
        let i = group_index(&st, &id)?;
        let name = b
            .get("displayName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ScimError(StatusCode::BAD_REQUEST, "displayName is required".into()))?
            .to_string();
        name_taken(&st, &name, Some(&id))?;
        let members = members_of(&st, b.get("members"))?;
        Ok::<_, ScimError>((i, name, members))
    })();
    let (i, name, members) = match done {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let g = &mut st.principals.groups[i];
    g.display_name = name;
    g.members = members;
    g.entitlements = entitlements_of(b.get("entitlements"));
    let g = st.principals.groups[i].clone();
    extract::json(group_json(&st, &g))
}

/// The member id a path such as `members[value eq "123"]` selects.
fn selected_member(path: &str) -> Option<String> {
    let inner = path.trim().strip_prefix("members[")?.strip_suffix(']')?;
    let mut parts = inner.splitn(3, char::is_whitespace);
    let (attr, op, value) = (parts.next()?, parts.next()?, parts.next()?);
    if attr != "value" || !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    Some(value.trim().trim_matches('"').to_string())
}

fn apply_op(st: &mut State, i: usize, op: &Map<String, Value>) -> Result<(), ScimError> {
    let bad = |m: String| ScimError(StatusCode::BAD_REQUEST, m);
    let kind = op
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Each operation needs an op".into()))?
        .to_ascii_lowercase();
    let path = op.get("path").and_then(Value::as_str).unwrap_or("");
    let value = op.get("value");
    match (kind.as_str(), path) {
        ("add", "members") | ("add", "")
            if path == "members" || value.is_some_and(|v| v.get("members").is_some()) =>
        {
            let v = if path.is_empty() {
                value.and_then(|v| v.get("members"))
            } else {
                value
            };
            let new = members_of(st, v)?;
            let g = &mut st.principals.groups[i];
            for m in new {
                if !g.members.iter().any(|x| x.value == m.value) {
                    g.members.push(m);
                }
            }
        }
        ("replace", "members") => {
            let new = members_of(st, value)?;
            st.principals.groups[i].members = new;
        }
        ("remove", "members") => {
            // Without a value every member goes, as SCIM specifies.
            let gone: Option<Vec<String>> = match value {
                None | Some(Value::Null) => None,
                v => Some(members_of(st, v)?.into_iter().map(|m| m.value).collect()),
            };
            let g = &mut st.principals.groups[i];
            match gone {
                None => g.members.clear(),
                Some(ids) => g.members.retain(|m| !ids.contains(&m.value)),
            }
        }
        ("remove", p) if selected_member(p).is_some() => {
            let id = selected_member(p).unwrap_or_default();
            st.principals.groups[i].members.retain(|m| m.value != id);
        }
        ("replace", "displayName") | ("replace", "") => {
            let name = if path.is_empty() {
                value.and_then(|v| v.get("displayName"))
            } else {
                value
            }
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "Unsupported replace operation: {}",
                    Value::Object(op.clone())
                ))
            })?
            .to_string();
            let id = st.principals.groups[i].id.clone();
            name_taken(st, &name, Some(&id))?;
            st.principals.groups[i].display_name = name;
        }
        _ => {
            return Err(bad(format!(
                "Unsupported patch operation: {}",
                Value::Object(op.clone())
            )))
        }
    }
    Ok(())
}

async fn patch_group(ctx: Ctx, Path(id): Path<String>, Body(b): Body) -> Response {
    let mut st = ctx.state();
    let done = (|| {
        admin_only(&st, &ctx.caller)?;
        let i = group_index(&st, &id)?;
        let ops = b
            .get("Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| ScimError(StatusCode::BAD_REQUEST, "Operations is required".into()))?
            .clone();
        // All or nothing: the operations apply to a copy that replaces the group at the end.
        let before = st.principals.groups[i].clone();
        for op in &ops {
            let op = op.as_object().cloned().unwrap_or_default();
            if let Err(e) = apply_op(&mut st, i, &op) {
                st.principals.groups[i] = before;
                return Err(e);
            }
        }
        Ok(())
    })();
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn delete_group(ctx: Ctx, Path(id): Path<String>) -> Response {
    let mut st = ctx.state();
    let done = (|| {
        admin_only(&st, &ctx.caller)?;
        let i = group_index(&st, &id)?;
        let name = st.principals.groups[i].display_name.clone();
        if name == "admins" || name == "users" {
            return Err(ScimError(
                StatusCode::BAD_REQUEST,
                format!("The {name} group is a system group and cannot be deleted."),
            ));
        }
        st.principals.groups.remove(i);
        for g in &mut st.principals.groups {
            g.members.retain(|m| m.value != id);
        }
        Ok(())
    })();
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
