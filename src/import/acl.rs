//! Access control lists on replay: object permissions (only direct entries, principals
//! mapped, the job owner rule) and secret scope ACLs.

use super::principals::{Mapper, PrincipalKind};
use crate::model::permissions::{AccessControlRequest, ObjectPermissions, PrincipalRef};
use crate::model::secret::AclItem;
use std::collections::BTreeMap;

/// The level that marks a job's owner.
pub const OWNER: &str = "IS_OWNER";

/// The direct ACL to set on the target object, with notes for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAcl {
    /// Entries to `PUT`, sorted.
    pub entries: Vec<AccessControlRequest>,
    /// What the mapping dropped or changed.
    pub notes: Vec<String>,
    /// Principals that could not be mapped.
    pub unmapped: Vec<String>,
}

/// Maps the direct entries of `perms` for an object of `request_object_type` named `place`.
///
/// Jobs keep exactly one `IS_OWNER`, a user or a service principal: when the owner was dropped
/// or maps to a group, the importing identity `me` stays owner, and a note says so.
pub fn desired_acl(
    perms: &ObjectPermissions,
    request_object_type: &str,
    place: &str,
    mapper: &Mapper<'_>,
    me: Option<&PrincipalRef>,
) -> DesiredAcl {
    let mut out = DesiredAcl {
        entries: Vec::new(),
        notes: Vec::new(),
        unmapped: Vec::new(),
    };
    let valid = crate::model::permissions::levels_for(request_object_type);
    for e in perms.direct() {
        if !valid.is_empty() && !valid.contains(&e.permission_level.as_str()) {
            out.notes.push(format!(
                "{} {} dropped: not a level of {request_object_type}",
                e.principal.name(),
                e.permission_level
            ));
            continue;
        }
        match mapper.map_ref(&e.principal, &format!("{place}: ACL")) {
            Ok(Some(p)) => {
                if p.name() != e.principal.name() {
                    out.notes.push(format!(
                        "{} {} → {}",
                        e.permission_level,
                        e.principal.name(),
                        p.name()
                    ));
                }
                out.entries.push(AccessControlRequest {
                    principal: p,
                    permission_level: e.permission_level.clone(),
                })
            }
            Ok(None) => out.notes.push(format!(
                "{} {} dropped (unmapped principal)",
                e.principal.name(),
                e.permission_level
            )),
            Err(name) => out.unmapped.push(name),
        }
    }
    if request_object_type == "jobs" {
        let owners: Vec<usize> = out
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.permission_level == OWNER)
            .map(|(i, _)| i)
            .collect();
        let group_owner = owners.len() == 1
            && matches!(
                super::principals::kind_of(&out.entries[owners[0]].principal),
                PrincipalKind::Group
            );
        if group_owner {
            let e = out.entries.remove(owners[0]);
            out.notes.push(format!(
                "owner {} is a group in the target and a group cannot own a job",
                e.principal.name()
            ));
        }
        if owners.len() > 1 {
            // Keep the first owner; the others keep management rights.
            for &i in owners.iter().skip(1) {
                out.entries[i].permission_level = "CAN_MANAGE".into();
            }
        }
        if !out.entries.iter().any(|e| e.permission_level == OWNER) && out.unmapped.is_empty() {
            if let Some(me) = me {
                out.entries.retain(|e| &e.principal != me);
                out.entries.push(AccessControlRequest {
                    principal: me.clone(),
                    permission_level: OWNER.into(),
                });
                out.notes.push(format!(
                    "the importing identity {} stays owner (the source owner was not mapped)",
                    me.name()
                ));
            }
        }
    }
    // One level per principal, as the API keeps it.
    let mut by: BTreeMap<PrincipalRef, AccessControlRequest> = BTreeMap::new();
    for e in out.entries.drain(..) {
        match by.get(&e.principal) {
            Some(old)
                if rank(request_object_type, &old.permission_level)
                    >= rank(request_object_type, &e.permission_level) => {}
            _ => {
                by.insert(e.principal.clone(), e);
            }
        }
    }
    out.entries = by.into_values().collect();
    out.entries.sort();
    out.unmapped.sort();
    out.unmapped.dedup();
    out
}

fn rank(request_object_type: &str, level: &str) -> usize {
    crate::model::permissions::levels_for(request_object_type)
        .iter()
        .position(|l| *l == level)
        .unwrap_or(0)
}

/// The direct entries of a target object, sorted, for comparison with [`DesiredAcl`].
pub fn current_acl(perms: &ObjectPermissions) -> Vec<AccessControlRequest> {
    perms.direct()
}

/// True when two direct ACLs hold the same entries (principal names compare
/// case-insensitively, as workspaces treat them).
pub fn same_acl(a: &[AccessControlRequest], b: &[AccessControlRequest]) -> bool {
    let norm = |l: &[AccessControlRequest]| {
        let mut v: Vec<(String, String, u8)> = l
            .iter()
            .map(|e| {
                let k = match e.principal {
                    PrincipalRef::UserName(_) => 0,
                    PrincipalRef::GroupName(_) => 1,
                    PrincipalRef::ServicePrincipalName(_) => 2,
                };
                (
                    e.principal.name().to_lowercase(),
                    e.permission_level.clone(),
                    k,
                )
            })
            .collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// The changes that make a scope's ACL equal to the bundle's: entries to put, principals to
/// remove. The importing identity keeps its own `MANAGE` when the bundle gives nobody `MANAGE`,
/// so that the scope stays manageable.
pub fn scope_acl_changes(
    desired: &[AclItem],
    current: &[AclItem],
    me: Option<&str>,
) -> (Vec<AclItem>, Vec<String>) {
    let lower = |s: &str| s.to_lowercase();
    let put: Vec<AclItem> = desired
        .iter()
        .filter(|d| {
            !current
                .iter()
                .any(|c| lower(&c.principal) == lower(&d.principal) && c.permission == d.permission)
        })
        .cloned()
        .collect();
    let any_manage = desired
        .iter()
        .any(|d| d.permission == crate::model::secret::AclPermission::Manage);
    let delete: Vec<String> = current
        .iter()
        .filter(|c| {
            !desired
                .iter()
                .any(|d| lower(&d.principal) == lower(&c.principal))
        })
        .filter(|c| any_manage || me.is_none_or(|m| lower(m) != lower(&c.principal)))
        .map(|c| c.principal.clone())
        .collect();
    (put, delete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::mapping::Mapping;
    use crate::import::principals::Directory;
    use crate::model::permissions::{AccessControl, Permission};
    use crate::model::principal::User;
    use crate::model::secret::AclPermission;

    fn perms(entries: &[(PrincipalRef, &str, bool)]) -> ObjectPermissions {
        ObjectPermissions {
            object_id: "/jobs/1".into(),
            object_type: "job".into(),
            access_control_list: entries
                .iter()
                .map(|(p, l, inh)| AccessControl {
                    principal: p.clone(),
                    display_name: None,
                    all_permissions: vec![Permission {
                        permission_level: l.to_string(),
                        inherited: *inh,
                        inherited_from_object: None,
                    }],
                })
                .collect(),
        }
    }

    fn user(n: &str) -> User {
        User {
            id: n.into(),
            user_name: n.into(),
            display_name: None,
            active: true,
            emails: vec![],
            groups: vec![],
            entitlements: vec![],
        }
    }

    #[test]
    fn dropped_owner_leaves_the_importer_as_owner() {
        let m = Mapping::parse("unmapped_principals = \"drop\"\n", "t").unwrap();
        let d = Directory::new(&[user("me@t"), user("bob@t")], &[], &[], Some("me@t"));
        let mapper = Mapper::new(&m, &d, Vec::<String>::new());
        let p = perms(&[
            (PrincipalRef::UserName("gone@s".into()), "IS_OWNER", false),
            (PrincipalRef::UserName("bob@t".into()), "CAN_VIEW", false),
            (PrincipalRef::GroupName("admins".into()), "CAN_MANAGE", true),
        ]);
        let a = desired_acl(&p, "jobs", "job j", &mapper, d.me.as_ref());
        assert_eq!(a.entries.len(), 2);
        assert!(a
            .entries
            .iter()
            .any(|e| e.principal.name() == "me@t" && e.permission_level == OWNER));
        assert!(
            a.notes.iter().any(|n| n.contains("stays owner")),
            "{:?}",
            a.notes
        );
        assert_eq!(mapper.dropped()[0].principal, "gone@s");
    }

    #[test]
    fn unmapped_principals_are_reported_not_dropped() {
        let m = Mapping::default();
        let d = Directory::new(&[user("me@t")], &[], &[], Some("me@t"));
        let mapper = Mapper::new(&m, &d, Vec::<String>::new());
        let p = perms(&[(
            PrincipalRef::GroupName("poc-team".into()),
            "CAN_READ",
            false,
        )]);
        let a = desired_acl(&p, "notebooks", "/x", &mapper, d.me.as_ref());
        assert_eq!(a.unmapped, vec!["poc-team".to_string()]);
        assert!(a.entries.is_empty());
    }

    #[test]
    fn scope_acl_changes_keep_a_manager() {
        let item = |p: &str, l| AclItem {
            principal: p.into(),
            permission: l,
        };
        let desired = vec![item("users", AclPermission::Read)];
        let current = vec![item("me@t", AclPermission::Manage)];
        let (put, del) = scope_acl_changes(&desired, &current, Some("me@t"));
        assert_eq!(put, desired);
        assert!(del.is_empty());
        let desired = vec![item("lead@t", AclPermission::Manage)];
        let (_, del) = scope_acl_changes(&desired, &current, Some("me@t"));
        assert_eq!(del, vec!["me@t".to_string()]);
    }
}
