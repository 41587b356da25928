//! Object permissions: one `GET /api/2.0/permissions/{type}/{id}` per notebook, folder, file,
//! repo and job, staged as a `permissions` record. Inherited entries are kept (they show where
//! access came from); import replays only the direct ones.

use crate::bundle::Resource;
use crate::export::context::{commit, Ctx};
use crate::export::stage::DoneEntry;
use crate::model::permissions::{ObjectPermissions, PrincipalRef};
use crate::model::Kind;
use std::sync::Arc;

/// The principals an ACL names, as `user:…`, `group:…`, `sp:…`.
pub fn acl_principals(p: &ObjectPermissions) -> Vec<String> {
    let mut out: Vec<String> = p
        .access_control_list
        .iter()
        .map(|ac| match &ac.principal {
            PrincipalRef::UserName(n) => format!("user:{n}"),
            PrincipalRef::GroupName(n) => format!("group:{n}"),
            PrincipalRef::ServicePrincipalName(n) => format!("sp:{n}"),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Fetches and stages the permissions of one object; returns them when fetched (callers that
/// select by owner look at them). `request_type` is the API path segment (`notebooks`, `jobs`).
pub async fn export_permissions(
    ctx: &Arc<Ctx>,
    request_type: &str,
    object_id: &str,
    object_name: &str,
) -> Option<ObjectPermissions> {
    let perms = fetch_permissions(ctx, request_type, object_id, object_name).await?;
    stage_permissions(ctx, request_type, object_id, object_name, &perms).await;
    Some(perms)
}

/// Fetches the permissions of one object, recording a failure in the report.
pub async fn fetch_permissions(
    ctx: &Arc<Ctx>,
    request_type: &str,
    object_id: &str,
    object_name: &str,
) -> Option<ObjectPermissions> {
    let name = format!("{request_type}/{object_id}");
    match ctx.client.permissions().get(request_type, object_id).await {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.client_failure(
                Kind::Permissions,
                &name,
                object_id,
                &format!("permissions of {object_name}"),
                e,
            );
            None
        }
    }
}

/// Stages fetched permissions.
pub async fn stage_permissions(
    ctx: &Arc<Ctx>,
    request_type: &str,
    object_id: &str,
    object_name: &str,
    perms: &ObjectPermissions,
) {
    let resource = Resource::permissions(request_type, object_id, Some(object_name), perms);
    let entry = DoneEntry {
        name: resource.name.clone(),
        principals: acl_principals(perms),
        ..DoneEntry::default()
    };
    commit(
        ctx,
        Kind::Permissions,
        object_id.to_string(),
        entry,
        resource,
    )
    .await;
}

/// True when permissions of objects are exported and this one is not held yet; counts it as
/// found either way.
pub fn wants_permissions(ctx: &Ctx, object_id: &str) -> bool {
    if !ctx.opts.wants(Kind::Permissions) {
        return false;
    }
    ctx.found(Kind::Permissions, 1);
    !ctx.reuse(Kind::Permissions, object_id)
}
