//! The Permissions API (`/api/2.0/permissions/{type}/{id}`, also served under the older
//! `/api/2.0/preview/permissions/` prefix) for notebooks, directories, files, repos, jobs,
//! registered models, clusters, cluster policies and instance pools: GET with inherited
//! entries, PUT (replace the direct ACL), PATCH (merge), and `permissionLevels`.
//!
//! Only direct entries are stored, on the object itself. Inherited entries are computed when
//! served: the `admins` group's `CAN_MANAGE` on everything, each enclosing folder's grants, and a
//! home folder's owner on what it holds. A job's ACL always holds exactly one `IS_OWNER`.

use std::sync::Arc;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::model::permissions::{
    levels_for, AccessControl, AccessControlRequest, ObjectPermissions, Permission, PrincipalRef,
    OBJECT_TYPES,
};
use crate::model::workspace::{self as ws, ObjectType};

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, Body, Caller, Ctx, Fields};
use super::state::{Shared, State};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut r = Router::new();
    for prefix in ["/api/2.0/permissions", "/api/2.0/preview/permissions"] {
        r = r
            .route(
                &format!("{prefix}/{{object_type}}/{{object_id}}"),
                get(get_permissions)
                    .put(put_permissions)
                    .patch(patch_permissions),
            )
            .route(
                &format!("{prefix}/{{object_type}}/{{object_id}}/permissionLevels"),
                get(levels),
            );
    }
    r
}

/// What a permissions request addresses.
enum Target {
    Node(String),
    Repo(i64),
    Job(i64),
    Model(String),
    /// A cluster, cluster policy or instance pool, as `<request type>/<id>`.
    Compute(String),
}

fn singular(request_type: &str) -> Result<&'static str, ApiError> {
    OBJECT_TYPES
        .iter()
        .find(|(t, _)| *t == request_type)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Object type {request_type} is not supported; supported types are {}",
                OBJECT_TYPES
                    .iter()
                    .map(|(t, _)| *t)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn resolve(st: &State, request_type: &str, id: &str) -> Result<Target, ApiError> {
    let kind = singular(request_type)?;
    let gone = || ApiError::not_found(format!("{kind} {id} does not exist."));
    let numeric = || id.parse::<i64>().map_err(|_| gone());
    match request_type {
        "notebooks" | "directories" | "files" => {
            let want = match request_type {
                "notebooks" => ObjectType::Notebook,
                "directories" => ObjectType::Directory,
                _ => ObjectType::File,
            };
            let path = st.tree.path_of(numeric()?).ok_or_else(gone)?;
            match st.tree.get(path) {
                Some(n) if n.object_type == want => Ok(Target::Node(path.to_string())),
                _ => Err(gone()),
            }
        }
        "repos" => {
            let id = numeric()?;
            st.repos.get(&id).map(|_| Target::Repo(id)).ok_or_else(gone)
        }
        "jobs" => {
            let id = numeric()?;
            st.jobs.get(&id).map(|_| Target::Job(id)).ok_or_else(gone)
        }
        "clusters" | "cluster-policies" | "instance-pools" => {
            let c = &st.compute;
            let found = match request_type {
                "clusters" => c.clusters.iter().any(|x| x.cluster_id == id),
                "cluster-policies" => c.policies.iter().any(|x| x.policy_id == id),
                _ => c.pools.iter().any(|x| x.instance_pool_id == id),
            };
            if found {
                Ok(Target::Compute(format!("{request_type}/{id}")))
            } else {
                Err(gone())
            }
        }
        _ => st
            .models
            .iter()
            .find(|(_, m)| m.id == id)
            .map(|(name, _)| Target::Model(name.clone()))
            .ok_or_else(gone),
    }
}

fn direct_acl<'a>(st: &'a State, t: &Target) -> &'a [AccessControlRequest] {
    match t {
        Target::Node(p) => st.tree.get(p).map(|n| n.acl.as_slice()).unwrap_or(&[]),
        Target::Repo(id) => st.repos.get(id).map(|r| r.acl.as_slice()).unwrap_or(&[]),
        Target::Job(id) => st.jobs.get(id).map(|j| j.acl.as_slice()).unwrap_or(&[]),
        Target::Model(n) => st.models.get(n).map(|m| m.acl.as_slice()).unwrap_or(&[]),
        Target::Compute(k) => st.compute.acls.get(k).map(Vec::as_slice).unwrap_or(&[]),
    }
}

fn direct_acl_mut<'a>(st: &'a mut State, t: &Target) -> Option<&'a mut Vec<AccessControlRequest>> {
    match t {
        Target::Node(p) => st.tree.get_mut(p).map(|n| &mut n.acl),
        Target::Repo(id) => st.repos.get_mut(id).map(|r| &mut r.acl),
        Target::Job(id) => st.jobs.get_mut(id).map(|j| &mut j.acl),
        Target::Model(n) => st.models.get_mut(n).map(|m| &mut m.acl),
        Target::Compute(k) => Some(st.compute.acls.entry(k.clone()).or_default()),
    }
}

/// The workspace path a target sits at, for inheritance from folders.
fn tree_path(st: &State, t: &Target) -> Option<String> {
    match t {
        Target::Node(p) => Some(p.clone()),
        Target::Repo(id) => st.repos.get(id).and_then(|r| r.repo.path.clone()),
        _ => None,
    }
}

/// Inherited `(principal, level, from)` entries of a target, nearest source first.
fn inherited(st: &State, t: &Target) -> Vec<(PrincipalRef, String, String)> {
    let mut out = Vec::new();
    let root_marker;
    if let Some(path) = tree_path(st, t) {
        let mut p = path.as_str();
        while p != "/" {
            p = ws::parent_path(p);
            if p == "/" {
                break;
            }
            if let Some(n) = st.tree.get(p) {
                let from = match n.object_type {
                    ObjectType::Repo => format!("/repos/{}", n.object_id),
                    _ => format!("/directories/{}", n.object_id),
                };
                for a in &n.acl {
                    out.push((
                        a.principal.clone(),
                        a.permission_level.clone(),
                        from.clone(),
                    ));
                }
            }
        }
        // The owner of a home folder manages what it holds.
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() > 2 && parts[0] == "Users" {
            let home = format!("/Users/{}", parts[1]);
            if let Some(h) = st.tree.get(&home) {
                let owner = if st.principals.users.iter().any(|u| u.user_name == parts[1]) {
                    Some(PrincipalRef::UserName(parts[1].to_string()))
                } else if st
                    .principals
                    .service_principals
                    .iter()
                    .any(|s| s.application_id == parts[1])
                {
                    Some(PrincipalRef::ServicePrincipalName(parts[1].to_string()))
                } else {
                    None
                };
                if let Some(o) = owner {
                    out.push((
                        o,
                        "CAN_MANAGE".into(),
                        format!("/directories/{}", h.object_id),
                    ));
                }
            }
        }
        root_marker = "/directories/".to_string();
    } else {
        root_marker = match t {
            Target::Job(_) => "/jobs/".to_string(),
            Target::Compute(k) => format!("/{}/", k.split('/').next().unwrap_or("")),
            _ => "/registered-models/".to_string(),
        };
    }
    out.push((
        PrincipalRef::GroupName("admins".into()),
        "CAN_MANAGE".into(),
        root_marker,
    ));
    out
}

fn display_name(st: &State, p: &PrincipalRef) -> Option<String> {
    match p {
        PrincipalRef::UserName(n) => st
            .principals
            .users
            .iter()
            .find(|u| &u.user_name == n)
            .and_then(|u| u.display_name.clone()),
        PrincipalRef::GroupName(n) => Some(n.clone()),
        PrincipalRef::ServicePrincipalName(n) => st
            .principals
            .service_principals
            .iter()
            .find(|s| &s.application_id == n)
            .and_then(|s| s.display_name.clone()),
    }
}

fn object_permissions(st: &State, request_type: &str, id: &str, t: &Target) -> ObjectPermissions {
    let mut acl: Vec<AccessControl> = Vec::new();
    let mut add =
        |p: &PrincipalRef, perm: Permission| match acl.iter_mut().find(|a| &a.principal == p) {
            Some(a) => {
                if !a.all_permissions.contains(&perm) {
                    a.all_permissions.push(perm)
                }
            }
            None => acl.push(AccessControl {
                principal: p.clone(),
                display_name: display_name(st, p),
                all_permissions: vec![perm],
            }),
        };
    for a in direct_acl(st, t) {
        add(
            &a.principal,
            Permission {
                permission_level: a.permission_level.clone(),
                inherited: false,
                inherited_from_object: None,
            },
        );
    }
    for (p, level, from) in inherited(st, t) {
        add(
            &p,
            Permission {
                permission_level: level,
                inherited: true,
                inherited_from_object: Some(vec![from]),
            },
        );
    }
    ObjectPermissions {
        object_id: format!("/{request_type}/{id}"),
        object_type: singular(request_type).unwrap_or("").to_string(),
        access_control_list: acl,
    }
}

/// Parses and checks an `access_control_list` request array for `request_type`.
pub(crate) fn parse_acl_list(
    st: &State,
    v: &Value,
    request_type: &str,
) -> Result<Vec<AccessControlRequest>, ApiError> {
    let items = v
        .as_array()
        .ok_or_else(|| ApiError::invalid("access_control_list must be an array"))?;
    let levels = levels_for(request_type);
    let mut out: Vec<AccessControlRequest> = Vec::new();
    for item in items {
        let o = item
            .as_object()
            .ok_or_else(|| ApiError::invalid("each access control entry must be an object"))?;
        let named: Vec<PrincipalRef> = [
            (
                "user_name",
                PrincipalRef::UserName as fn(String) -> PrincipalRef,
            ),
            ("group_name", PrincipalRef::GroupName),
            ("service_principal_name", PrincipalRef::ServicePrincipalName),
        ]
        .iter()
        .filter_map(|(k, f)| o.get(*k).and_then(Value::as_str).map(|s| f(s.to_string())))
        .collect();
        if named.len() != 1 {
            return Err(ApiError::invalid(
                "Each access control entry must name exactly one of user_name, group_name and service_principal_name",
            ));
        }
        let principal = named.into_iter().next().expect("one principal");
        let level = o.req_str("permission_level")?;
        if !levels.contains(&level) {
            return Err(ApiError::invalid(format!(
                "Permission level {level} is not supported for {request_type}; valid levels are {}",
                levels.join(", ")
            )));
        }
        if !st.principals.exists(&principal) {
            return Err(ApiError::invalid(format!(
                "Principal: {} does not exist",
                principal_label(&principal)
            )));
        }
        let req = AccessControlRequest {
            principal,
            permission_level: level.to_string(),
        };
        if !out.contains(&req) {
            out.push(req);
        }
    }
    Ok(out)
}

fn principal_label(p: &PrincipalRef) -> String {
    match p {
        PrincipalRef::UserName(n) => format!("UserName({n})"),
        PrincipalRef::GroupName(n) => format!("GroupName({n})"),
        PrincipalRef::ServicePrincipalName(n) => format!("ServicePrincipalName({n})"),
    }
}

/// A job ACL must name exactly one owner, and the owner is a user or a service principal.
pub(crate) fn single_owner(acl: &[AccessControlRequest]) -> Result<(), ApiError> {
    let owners: Vec<&AccessControlRequest> = acl
        .iter()
        .filter(|a| a.permission_level == "IS_OWNER")
        .collect();
    if owners.len() != 1 {
        return Err(ApiError::invalid("The job must have exactly one owner."));
    }
    if matches!(owners[0].principal, PrincipalRef::GroupName(_)) {
        return Err(ApiError::invalid(
            "A group cannot be the owner of a job; the owner must be a user or a service principal.",
        ));
    }
    Ok(())
}

/// Refuses unless the caller holds the level a read (`manage == false`) or a change of the ACL
/// needs on the target.
fn check(st: &State, caller: &Caller, t: &Target, manage: bool) -> Result<(), ApiError> {
    let ok = match t {
        Target::Node(_) | Target::Repo(_) => {
            let path = tree_path(st, t).unwrap_or_default();
            let level = if manage { "CAN_MANAGE" } else { "CAN_READ" };
            return access::check_path(st, caller, &path, level);
        }
        Target::Job(id) => {
            let level = if manage { "CAN_MANAGE" } else { "CAN_VIEW" };
            return access::check_job(st, caller, *id, level);
        }
        Target::Compute(key) => {
            let ty = key.split('/').next().unwrap_or("");
            // Reading an ACL needs any level; changing it needs the top one, and for a
            // policy, whose only level is CAN_USE, an administrator.
            if manage && ty == "cluster-policies" && !access::is_admin(st, caller) {
                return Err(ApiError::denied(format!(
                    "{} cannot change the permissions of cluster policies; only administrators can.",
                    caller.name()
                )));
            }
            let level = if manage {
                levels_for(ty).last().copied().unwrap_or("CAN_MANAGE")
            } else {
                levels_for(ty).first().copied().unwrap_or("CAN_MANAGE")
            };
            return access::check_compute(st, caller, key, level);
        }
        Target::Model(name) => access::can_model(
            st,
            caller,
            name,
            if manage { "CAN_MANAGE" } else { "CAN_READ" },
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::denied(format!(
            "{} does not have the permissions needed on this registered model.",
            caller.name()
        )))
    }
}

fn respond(st: &State, request_type: &str, id: &str, t: &Target) -> ApiResult {
    let p = object_permissions(st, request_type, id, t);
    Ok(extract::json(serde_json::to_value(p).unwrap_or_default()))
}

async fn get_permissions(ctx: Ctx, Path((ty, id)): Path<(String, String)>) -> ApiResult {
    let st = ctx.state();
    let t = resolve(&st, &ty, &id)?;
    check(&st, &ctx.caller, &t, false)?;
    respond(&st, &ty, &id, &t)
}

fn request_list(
    st: &State,
    b: &serde_json::Map<String, Value>,
    ty: &str,
) -> Result<Vec<AccessControlRequest>, ApiError> {
    match b.get("access_control_list") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => parse_acl_list(st, v, ty),
    }
}

async fn put_permissions(
    ctx: Ctx,
    Path((ty, id)): Path<(String, String)>,
    Body(b): Body,
) -> ApiResult {
    let mut st = ctx.state();
    let t = resolve(&st, &ty, &id)?;
    check(&st, &ctx.caller, &t, true)?;
    let new = request_list(&st, &b, &ty)?;
    if ty == "jobs" {
        single_owner(&new)?;
    }
    if let Some(acl) = direct_acl_mut(&mut st, &t) {
        *acl = new;
    }
    respond(&st, &ty, &id, &t)
}

async fn patch_permissions(
    ctx: Ctx,
    Path((ty, id)): Path<(String, String)>,
    Body(b): Body,
) -> ApiResult {
    let mut st = ctx.state();
    let t = resolve(&st, &ty, &id)?;
    check(&st, &ctx.caller, &t, true)?;
    let changes = request_list(&st, &b, &ty)?;
    let mut acl = direct_acl(&st, &t).to_vec();
    for c in &changes {
        acl.retain(|a| a.principal != c.principal);
        if c.permission_level == "IS_OWNER" {
            // Naming a new owner hands ownership over.
            acl.retain(|a| a.permission_level != "IS_OWNER");
        }
    }
    for c in changes {
        if !acl.contains(&c) {
            acl.push(c);
        }
    }
    if ty == "jobs" {
        single_owner(&acl)?;
    }
    if let Some(slot) = direct_acl_mut(&mut st, &t) {
        *slot = acl;
    }
    respond(&st, &ty, &id, &t)
}

async fn levels(ctx: Ctx, Path((ty, id)): Path<(String, String)>) -> ApiResult {
    let st = ctx.state();
    resolve(&st, &ty, &id)?;
    let kind = singular(&ty)?;
    let levels: Vec<Value> = levels_for(&ty)
        .iter()
        .map(|l| {
            let words = l.to_ascii_lowercase().replace('_', " ");
            json!({"permission_level": l, "description": format!("{words} permission on {kind}")})
        })
        .collect();
    Ok(extract::json(json!({ "permission_levels": levels })))
}
