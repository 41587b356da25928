//! Who may do what. Members of `admins` may do everything. Everyone else is held to object ACLs
//! as real workspaces hold them: workspace objects by their own and their folders' grants, with
//! each user managing their own home (`/Users/<name>`, `/Repos/<name>`) and every user managing
//! `/Shared` (the real default); repos and jobs by their ACLs; secret scopes by scope ACLs
//! (`READ` to list and read, `WRITE` to put and delete, `MANAGE` for ACLs and the scope).
//! Refusals are `403 PERMISSION_DENIED`.

use std::collections::BTreeSet;

use crate::model::permissions::{levels_for, AccessControlRequest, PrincipalRef};
use crate::model::secret::AclPermission;
use crate::model::workspace::{self as ws, ObjectType};

use super::error::ApiError;
use super::extract::Caller;
use super::state::State;

/// The SCIM id of the caller, if the caller is a known user or service principal.
fn member_id<'a>(st: &'a State, caller: &Caller) -> Option<&'a str> {
    match caller {
        Caller::User(n) => st
            .principals
            .users
            .iter()
            .find(|u| &u.user_name == n)
            .map(|u| u.id.as_str()),
        Caller::ServicePrincipal(a) => st
            .principals
            .service_principals
            .iter()
            .find(|s| &s.application_id == a)
            .map(|s| s.id.as_str()),
    }
}

/// The names of every group the caller belongs to, nested groups included; users are always in
/// `users`.
pub(crate) fn groups_of(st: &State, caller: &Caller) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = member_id(st, caller)
        .map(|i| BTreeSet::from([i.to_string()]))
        .unwrap_or_default();
    let mut names = BTreeSet::new();
    if matches!(caller, Caller::User(_)) {
        names.insert("users".to_string());
    }
    loop {
        let before = ids.len();
        for g in &st.principals.groups {
            if g.members.iter().any(|m| ids.contains(&m.value)) {
                names.insert(g.display_name.clone());
                ids.insert(g.id.clone());
            }
        }
        if ids.len() == before {
            break;
        }
    }
    names
}

/// True for workspace admins.
pub(crate) fn is_admin(st: &State, caller: &Caller) -> bool {
    groups_of(st, caller).contains("admins")
}

/// The caller as seen by ACLs: their own principal and their groups.
struct Who {
    me: PrincipalRef,
    groups: BTreeSet<String>,
}

impl Who {
    fn new(st: &State, caller: &Caller) -> Who {
        Who {
            me: caller.principal(),
            groups: groups_of(st, caller),
        }
    }

    fn matches(&self, p: &PrincipalRef) -> bool {
        match p {
            PrincipalRef::GroupName(g) => self.groups.contains(g),
            other => other == &self.me,
        }
    }

    /// The highest rank the entries of `acl` give the caller.
    fn best(&self, acl: &[AccessControlRequest], levels: &[&str]) -> usize {
        acl.iter()
            .filter(|a| self.matches(&a.principal))
            .map(|a| rank(levels, &a.permission_level))
            .max()
            .unwrap_or(0)
    }
}

/// The rank of a level in its type's ascending list (1-based; `IS_OWNER` counts as the top).
fn rank(levels: &[&str], level: &str) -> usize {
    if level == "IS_OWNER" {
        return levels.len();
    }
    levels.iter().position(|l| *l == level).map_or(0, |i| i + 1)
}

const WS_LEVELS: &[&str] = &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"];

/// The caller's rank on a workspace path (0 = no access), for non-admins.
fn workspace_rank(st: &State, who: &Who, caller: &Caller, path: &str) -> usize {
    let manage = WS_LEVELS.len();
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let own = |top: &str| parts.len() >= 2 && parts[0] == top && parts[1] == caller.name();
    if own("Users") || own("Repos") || parts.first() == Some(&"Shared") {
        return manage;
    }
    let mut best = if parts.len() <= 1 { 1 } else { 0 };
    let mut p = path;
    loop {
        if let Some(n) = st.tree.get(p) {
            best = best.max(who.best(&n.acl, WS_LEVELS));
            if n.object_type == ObjectType::Repo {
                if let Some(r) = st.repos.get(&n.object_id) {
                    best = best.max(who.best(&r.acl, WS_LEVELS));
                }
            }
        }
        if p == "/" {
            break;
        }
        p = ws::parent_path(p);
    }
    best
}

fn level_word(level: &str) -> String {
    let w = level
        .trim_start_matches("CAN_")
        .replace('_', " ")
        .to_lowercase();
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => w,
    }
}

fn denied(caller: &Caller, level: &str, what: &str) -> ApiError {
    ApiError::denied(format!(
        "{} does not have {} permissions on {what}. Please contact the owner or an administrator for access.",
        caller.name(),
        level_word(level)
    ))
}

/// True when the caller holds at least `level` on the workspace object at `path`.
pub(crate) fn can_path(st: &State, caller: &Caller, path: &str, level: &str) -> bool {
    if is_admin(st, caller) {
        return true;
    }
    let who = Who::new(st, caller);
    workspace_rank(st, &who, caller, path) >= rank(WS_LEVELS, level)
}

/// Refuses unless the caller holds at least `level` on the workspace object at `path`.
pub(crate) fn check_path(
    st: &State,
    caller: &Caller,
    path: &str,
    level: &str,
) -> Result<(), ApiError> {
    if can_path(st, caller, path, level) {
        Ok(())
    } else {
        Err(denied(caller, level, path))
    }
}

/// Refuses unless the caller holds at least `level` on job `id`.
pub(crate) fn check_job(st: &State, caller: &Caller, id: i64, level: &str) -> Result<(), ApiError> {
    if can_job(st, caller, id, level) {
        Ok(())
    } else {
        Err(denied(caller, level, &format!("job {id}")))
    }
}

/// True when the caller holds at least `level` on job `id`.
pub(crate) fn can_job(st: &State, caller: &Caller, id: i64, level: &str) -> bool {
    if is_admin(st, caller) {
        return true;
    }
    let levels = levels_for("jobs");
    let who = Who::new(st, caller);
    let acl = st.jobs.get(&id).map(|j| j.acl.as_slice()).unwrap_or(&[]);
    who.best(acl, levels) >= rank(levels, level)
}

/// True when the caller holds at least `level` on the cluster, instance pool or cluster policy
/// `key` (`<request type>/<id>`, as the permissions API names it).
pub(crate) fn can_compute(st: &State, caller: &Caller, key: &str, level: &str) -> bool {
    if is_admin(st, caller) {
        return true;
    }
    let request_type = key.split('/').next().unwrap_or("");
    let levels = levels_for(request_type);
    let who = Who::new(st, caller);
    let acl = st.compute.acls.get(key).map(Vec::as_slice).unwrap_or(&[]);
    who.best(acl, levels) >= rank(levels, level)
}

/// Refuses unless the caller holds at least `level` on the compute object `key`.
pub(crate) fn check_compute(
    st: &State,
    caller: &Caller,
    key: &str,
    level: &str,
) -> Result<(), ApiError> {
    if can_compute(st, caller, key, level) {
        Ok(())
    } else {
        Err(denied(caller, level, key))
    }
}

/// True when the caller holds at least `level` on registered model `name`.
pub(crate) fn can_model(st: &State, caller: &Caller, name: &str, level: &str) -> bool {
    if is_admin(st, caller) {
        return true;
    }
    let levels = levels_for("registered-models");
    let who = Who::new(st, caller);
    let acl = st.models.get(name).map(|m| m.acl.as_slice()).unwrap_or(&[]);
    who.best(acl, levels) >= rank(levels, level)
}

/// The caller's permission on a secret scope, if any.
fn scope_level(st: &State, caller: &Caller, scope: &str) -> Option<AclPermission> {
    let s = st.scopes.get(scope)?;
    let groups = groups_of(st, caller);
    s.acls
        .iter()
        .filter(|(p, _)| *p == caller.name() || groups.contains(*p))
        .map(|(_, l)| *l)
        .max()
}

/// Refuses unless the caller holds at least `need` on secret scope `scope`.
pub(crate) fn check_scope(
    st: &State,
    caller: &Caller,
    scope: &str,
    need: AclPermission,
) -> Result<(), ApiError> {
    if is_admin(st, caller) || scope_level(st, caller, scope).is_some_and(|l| l >= need) {
        return Ok(());
    }
    let word = match need {
        AclPermission::Read => "READ",
        AclPermission::Write => "WRITE",
        AclPermission::Manage => "MANAGE",
    };
    Err(ApiError::denied(format!(
        "User {} does not have {word} permission on scope {scope} to perform this action.",
        caller.name()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks() {
        assert_eq!(rank(WS_LEVELS, "CAN_READ"), 1);
        assert_eq!(rank(WS_LEVELS, "CAN_MANAGE"), 4);
        assert_eq!(rank(levels_for("jobs"), "IS_OWNER"), 4);
        assert_eq!(rank(WS_LEVELS, "NOPE"), 0);
        assert_eq!(level_word("CAN_MANAGE_RUN"), "Manage run");
    }
}
