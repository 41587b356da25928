//! Access control lists on replay: object permissions (only direct entries, principals
//! mapped, the job owner rule, and whether a write would change what anyone can do once the
//! target's inherited entries are counted) and secret scope ACLs.

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

/// Who an entry names, as workspaces compare principals: by kind, and by name without regard
/// to case.
fn principal_key(p: &PrincipalRef) -> (u8, String) {
    let k = match p {
        PrincipalRef::UserName(_) => 0,
        PrincipalRef::GroupName(_) => 1,
        PrincipalRef::ServicePrincipalName(_) => 2,
    };
    (k, p.name().to_lowercase())
}

/// True when two direct ACLs hold the same entries (principal names compare
/// case-insensitively, as workspaces treat them).
pub fn same_acl(a: &[AccessControlRequest], b: &[AccessControlRequest]) -> bool {
    let norm = |l: &[AccessControlRequest]| {
        let mut v: Vec<((u8, String), String)> = l
            .iter()
            .map(|e| (principal_key(&e.principal), e.permission_level.clone()))
            .collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// One entry a target object shows as inherited, with the objects it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InheritedEntry {
    /// Who.
    pub principal: PrincipalRef,
    /// Level.
    pub permission_level: String,
    /// `inherited_from_object` as the API gave it (`/directories/123`, or a workspace-wide
    /// marker such as `/jobs/`); empty when the API named no source.
    pub from: Vec<String>,
}

impl InheritedEntry {
    /// `analysts CAN_READ from /directories/123`, for reports.
    pub fn describe(&self) -> String {
        let from = if self.from.is_empty() {
            "an unnamed parent".to_string()
        } else {
            self.from.join(", ")
        };
        format!(
            "{} {} from {from}",
            self.principal.name(),
            self.permission_level
        )
    }
}

/// The entries `perms` shows as inherited.
pub fn inherited_acl(perms: &ObjectPermissions) -> Vec<InheritedEntry> {
    perms
        .access_control_list
        .iter()
        .flat_map(|ac| {
            ac.all_permissions
                .iter()
                .filter(|p| p.inherited)
                .map(move |p| InheritedEntry {
                    principal: ac.principal.clone(),
                    permission_level: p.permission_level.clone(),
                    from: p.inherited_from_object.clone().unwrap_or_default(),
                })
        })
        .collect()
}

/// What an object placed inside the folder (or repo) whose permissions are `perms` inherits
/// from it: the folder's direct entries, coming from the folder itself, and whatever the
/// folder inherits, from where the folder has it.
pub fn passed_down(perms: &ObjectPermissions) -> Vec<InheritedEntry> {
    let mut out: Vec<InheritedEntry> = perms
        .direct()
        .into_iter()
        .map(|e| InheritedEntry {
            principal: e.principal,
            permission_level: e.permission_level,
            from: vec![perms.object_id.clone()],
        })
        .collect();
    out.extend(inherited_acl(perms));
    out
}

/// What one principal can do on an object, from all its entries there: the highest of the
/// levels of `request_object_type` it holds (levels are cumulative: `CAN_EDIT` includes
/// `CAN_READ`), whether it owns the object (`IS_OWNER` is ownership, which no other level
/// gives), and any level this version does not rank, compared as itself.
#[derive(Debug, Default, PartialEq, Eq)]
struct Effective {
    top: Option<usize>,
    owner: bool,
    unranked: std::collections::BTreeSet<String>,
}

/// Principal → what it can do, from `entries`.
fn effective<'a>(
    request_object_type: &str,
    entries: impl IntoIterator<Item = (&'a PrincipalRef, &'a str)>,
) -> BTreeMap<(u8, String), Effective> {
    let levels = crate::model::permissions::levels_for(request_object_type);
    let mut out: BTreeMap<(u8, String), Effective> = BTreeMap::new();
    for (p, level) in entries {
        let e = out.entry(principal_key(p)).or_default();
        match levels.iter().position(|l| *l == level) {
            Some(r) => e.top = e.top.max(Some(r)),
            None => {
                e.unranked.insert(level.to_string());
            }
        }
        e.owner |= level == OWNER;
    }
    out
}

/// What writing a direct ACL would do to what principals can do on an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclChange {
    /// The object's direct ACL is already the one to write.
    Same,
    /// The direct ACLs differ, but every principal would end with exactly what it has now:
    /// the inherited entries listed (those of principals whose direct entries differ) already
    /// grant it.
    Inherited(Vec<InheritedEntry>),
    /// The write changes what some principal can do.
    Changes,
}

/// Whether replacing the direct ACL `current` of an object of `request_object_type` with
/// `desired` changes what anyone can do there, given the entries the object inherits and will
/// go on inheriting (`inherited`; the caller leaves out any whose source the same import
/// rewrites). The test is exact: for every principal (names compared without case) the
/// highest level and the ownership that `desired` plus `inherited` give must equal what
/// `current` plus `inherited` give. An inherited level covers only its own principal (a
/// group's `CAN_MANAGE` says nothing of its members' direct entries), and covers a direct
/// level of that principal when it is at least as high.
pub fn acl_change(
    request_object_type: &str,
    desired: &[AccessControlRequest],
    current: &[AccessControlRequest],
    inherited: &[InheritedEntry],
) -> AclChange {
    if same_acl(desired, current) {
        return AclChange::Same;
    }
    fn pairs(l: &[AccessControlRequest]) -> Vec<(&PrincipalRef, &str)> {
        l.iter()
            .map(|e| (&e.principal, e.permission_level.as_str()))
            .collect()
    }
    let inh: Vec<(&PrincipalRef, &str)> = inherited
        .iter()
        .map(|e| (&e.principal, e.permission_level.as_str()))
        .collect();
    let with_inherited = |direct: &[AccessControlRequest]| {
        let mut all = pairs(direct);
        all.extend(inh.iter().copied());
        effective(request_object_type, all)
    };
    if with_inherited(desired) != with_inherited(current) {
        return AclChange::Changes;
    }
    // Name the inherited entries that make the difference moot.
    let (d, c) = (
        effective(request_object_type, pairs(desired)),
        effective(request_object_type, pairs(current)),
    );
    let differing: std::collections::BTreeSet<&(u8, String)> = d
        .keys()
        .chain(c.keys())
        .filter(|k| d.get(*k) != c.get(*k))
        .collect();
    AclChange::Inherited(
        inherited
            .iter()
            .filter(|e| differing.contains(&principal_key(&e.principal)))
            .cloned()
            .collect(),
    )
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

    fn req(p: PrincipalRef, l: &str) -> AccessControlRequest {
        AccessControlRequest {
            principal: p,
            permission_level: l.into(),
        }
    }

    fn inh(p: PrincipalRef, l: &str) -> InheritedEntry {
        InheritedEntry {
            principal: p,
            permission_level: l.into(),
            from: vec!["/directories/7".into()],
        }
    }

    #[test]
    fn a_write_is_moot_only_when_every_principal_ends_with_what_it_has() {
        let analysts = || PrincipalRef::GroupName("analysts".into());
        let admins = || PrincipalRef::GroupName("admins".into());
        let read = [req(analysts(), "CAN_READ")];
        // The same level inherited: nothing to write.
        let by = inh(analysts(), "CAN_READ");
        assert_eq!(
            acl_change("notebooks", &read, &[], std::slice::from_ref(&by)),
            AclChange::Inherited(vec![by])
        );
        // A higher level inherited covers a lower direct one; a lower one does not.
        assert!(matches!(
            acl_change("notebooks", &read, &[], &[inh(analysts(), "CAN_EDIT")]),
            AclChange::Inherited(_)
        ));
        assert_eq!(
            acl_change(
                "notebooks",
                &[req(analysts(), "CAN_EDIT")],
                &[],
                &[inh(analysts(), "CAN_READ")]
            ),
            AclChange::Changes
        );
        // Another principal's level covers nothing, however high.
        assert_eq!(
            acl_change("notebooks", &read, &[], &[inh(admins(), "CAN_MANAGE")]),
            AclChange::Changes
        );
        // Names compare without case; only entries of differing principals are named.
        let both = [
            inh(PrincipalRef::GroupName("Analysts".into()), "CAN_READ"),
            inh(admins(), "CAN_MANAGE"),
        ];
        assert_eq!(
            acl_change("notebooks", &read, &[], &both),
            AclChange::Inherited(vec![both[0].clone()])
        );
        // A redundant direct entry in the target is not removed either.
        assert!(matches!(
            acl_change("notebooks", &[], &read, &[inh(analysts(), "CAN_RUN")]),
            AclChange::Inherited(_)
        ));
        // Equal direct ACLs are the same, whatever is inherited.
        assert_eq!(acl_change("notebooks", &read, &read, &[]), AclChange::Same);
    }

    #[test]
    fn ownership_is_never_covered_by_a_higher_level() {
        let alice = || PrincipalRef::UserName("alice@t".into());
        let bob = || PrincipalRef::UserName("bob@t".into());
        let change = acl_change(
            "jobs",
            &[req(alice(), OWNER)],
            &[req(bob(), OWNER)],
            &[inh(alice(), "CAN_MANAGE"), inh(bob(), "CAN_MANAGE")],
        );
        assert_eq!(change, AclChange::Changes);
        // A level this version does not rank compares as itself.
        assert_eq!(
            acl_change(
                "jobs",
                &[req(alice(), "CAN_FLY")],
                &[],
                &[inh(alice(), "CAN_MANAGE")]
            ),
            AclChange::Changes
        );
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
