//! Table grants on replay: legacy Hive metastore grants (compared with the target's
//! `SHOW GRANTS`, replayed as `GRANT` / `DENY` / `ALTER … OWNER TO` statements) and Unity
//! Catalog privilege assignments (compared with the grants API, replayed through `PATCH`).
//!
//! A grant's identity is its statement: a grant the target already holds is never issued
//! again, so a second run issues none. Grants the target holds beyond the bundle's are left in
//! place (import adds, it never revokes) and shown by `diff`.

use crate::client::unity::PermissionsChange;
use crate::import::mapping::PrincipalOutcome;
use crate::import::principals::Mapper;
use crate::model::grants::{
    compare_key, quote_name, replay_statement, shown_type, HiveGrant, HiveObjectType, UcGrants,
};

/// The statement that replays a grant. The catalog is named (`hive_metastore`): the name is
/// optional in the grammar, and naming it keeps `TO` from being read as a catalog name.
pub fn statement(g: &HiveGrant) -> String {
    let st = replay_statement(g);
    if g.object_type == HiveObjectType::Catalog {
        st.replacen(" ON CATALOG ", " ON CATALOG `hive_metastore` ", 1)
            .replacen("ALTER CATALOG ", "ALTER CATALOG `hive_metastore` ", 1)
    } else {
        st
    }
}
use std::collections::{BTreeMap, BTreeSet};

/// A grant reduced to what identifies it: principal (lowercase), action, type, key.
pub type GrantKey = (String, String, HiveObjectType, String);

/// The identity of a grant, for comparisons.
pub fn grant_key(g: &HiveGrant) -> GrantKey {
    (
        g.principal.to_lowercase(),
        g.action_type.to_uppercase(),
        shown_type(g.object_type),
        compare_key(g.object_type, &g.object_key),
    )
}

/// `SHOW GRANTS ON <object>` for one object.
pub fn show_statement(object_type: HiveObjectType, object_key: &str) -> String {
    match object_type {
        HiveObjectType::Catalog | HiveObjectType::AnyFile | HiveObjectType::AnonymousFunction => {
            format!("SHOW GRANTS ON {}", object_type.sql_keyword())
        }
        t => format!(
            "SHOW GRANTS ON {} {}",
            t.sql_keyword(),
            quote_name(object_key)
        ),
    }
}

/// What replaying one object's Hive grants takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HivePlan {
    /// Statements to run, grants and denies first, the owner change last.
    pub statements: Vec<String>,
    /// Bundle grants the target lacks (after mapping), as statements.
    pub missing: Vec<String>,
    /// Target grants the bundle does not have, as statements (never revoked; `diff` shows them).
    pub extra: Vec<String>,
    /// Principals that could not be mapped.
    pub unmapped: Vec<String>,
    /// What the mapping dropped.
    pub notes: Vec<String>,
}

/// Compares the bundle's grants on one object with the target's rows.
pub fn plan_hive(
    source: &[HiveGrant],
    current: &[HiveGrant],
    place: &str,
    mapper: &Mapper<'_>,
) -> HivePlan {
    let mut out = HivePlan::default();
    let mut desired: Vec<HiveGrant> = Vec::new();
    for g in source {
        match mapper.map(&g.principal, place) {
            PrincipalOutcome::Use(to) => desired.push(HiveGrant {
                principal: to,
                ..g.clone()
            }),
            PrincipalOutcome::Drop => out.notes.push(format!(
                "{} {} dropped (unmapped principal)",
                g.action_type, g.principal
            )),
            PrincipalOutcome::Unmapped => out.unmapped.push(g.principal.clone()),
        }
    }
    let have: BTreeSet<GrantKey> = current.iter().map(grant_key).collect();
    let want: BTreeSet<GrantKey> = desired.iter().map(grant_key).collect();
    let mut owner_change = None;
    for g in &desired {
        if have.contains(&grant_key(g)) {
            continue;
        }
        let st = statement(g);
        out.missing.push(st.clone());
        if g.action_type == "OWN" {
            owner_change = Some(st);
        } else {
            out.statements.push(st);
        }
    }
    out.statements.extend(owner_change);
    for g in current {
        if !want.contains(&grant_key(g)) {
            // The owner is replaced, not added to: an old owner row is not "extra".
            if g.action_type == "OWN" && desired.iter().any(|d| d.action_type == "OWN") {
                continue;
            }
            out.extra.push(statement(g));
        }
    }
    out.unmapped.sort();
    out.unmapped.dedup();
    out
}

/// What replaying one securable's Unity Catalog grants takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UcPlan {
    /// Privileges to add, per principal.
    pub changes: Vec<PermissionsChange>,
    /// Target privileges the bundle does not have (`principal: PRIV`), never removed.
    pub extra: Vec<String>,
    /// Principals that could not be mapped.
    pub unmapped: Vec<String>,
    /// What the mapping dropped.
    pub notes: Vec<String>,
}

/// Compares the bundle's assignments on one securable with the target's.
pub fn plan_uc(source: &UcGrants, current: &UcGrants, place: &str, mapper: &Mapper<'_>) -> UcPlan {
    let mut out = UcPlan::default();
    let mut want: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for a in &source.privilege_assignments {
        match mapper.map(&a.principal, place) {
            PrincipalOutcome::Use(to) => {
                want.entry(to.to_lowercase())
                    .or_insert_with(|| (to.clone(), BTreeSet::new()))
                    .1
                    .extend(a.privileges.iter().map(|p| p.to_uppercase()));
            }
            PrincipalOutcome::Drop => out.notes.push(format!(
                "{} on {} dropped (unmapped principal)",
                a.principal, source.full_name
            )),
            PrincipalOutcome::Unmapped => out.unmapped.push(a.principal.clone()),
        }
    }
    let mut have: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in &current.privilege_assignments {
        have.entry(a.principal.to_lowercase())
            .or_default()
            .extend(a.privileges.iter().map(|p| p.to_uppercase()));
    }
    for (k, (name, privs)) in &want {
        let held = have.get(k).cloned().unwrap_or_default();
        let add: Vec<String> = privs.difference(&held).cloned().collect();
        if !add.is_empty() {
            out.changes.push(PermissionsChange {
                principal: name.clone(),
                add,
                remove: Vec::new(),
            });
        }
    }
    for (k, privs) in &have {
        let wanted = want.get(k).map(|w| w.1.clone()).unwrap_or_default();
        for p in privs.difference(&wanted) {
            let name = current
                .privilege_assignments
                .iter()
                .find(|a| a.principal.to_lowercase() == *k)
                .map(|a| a.principal.clone())
                .unwrap_or_else(|| k.clone());
            out.extra.push(format!("{name}: {p}"));
        }
    }
    out.unmapped.sort();
    out.unmapped.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::sql::StatementResult;
    use crate::import::mapping::Mapping;
    use crate::import::principals::Directory;
    use crate::model::grants::PrivilegeAssignment;

    fn g(p: &str, a: &str, t: HiveObjectType, k: &str) -> HiveGrant {
        HiveGrant {
            principal: p.into(),
            action_type: a.into(),
            object_type: t,
            object_key: k.into(),
        }
    }

    #[test]
    fn show_grants_rows_are_filtered_to_the_object() {
        let r = StatementResult {
            statement_id: "s".into(),
            columns: vec![
                "Principal".into(),
                "ActionType".into(),
                "ObjectType".into(),
                "ObjectKey".into(),
            ],
            rows: vec![
                vec![
                    Some("analysts".into()),
                    Some("SELECT".into()),
                    Some("TABLE".into()),
                    Some("`sales`.`orders`".into()),
                ],
                vec![
                    Some("analysts".into()),
                    Some("USAGE".into()),
                    Some("DATABASE".into()),
                    Some("`sales`".into()),
                ],
                vec![
                    Some("admins".into()),
                    Some("OWN".into()),
                    Some("CATALOG$".into()),
                    Some("".into()),
                ],
            ],
        };
        let rows = r.grants_about(HiveObjectType::View, "sales.orders");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].principal, "analysts");
        assert_eq!(r.grants_about(HiveObjectType::Catalog, "").len(), 1);
    }

    /// `` `a``b` `` is the table `` a`b ``: the target's row for it is read under that name,
    /// and a grant on `` a`b `` is not taken for one on `ab`.
    #[test]
    fn doubled_backtick_names_one_table() {
        let r = StatementResult {
            statement_id: "s".into(),
            columns: vec![
                "principal".into(),
                "action_type".into(),
                "object_type".into(),
                "object_key".into(),
            ],
            rows: vec![
                vec![
                    Some("users".into()),
                    Some("SELECT".into()),
                    Some("TABLE".into()),
                    Some("`s`.`a``b`".into()),
                ],
                vec![
                    Some("admins".into()),
                    Some("SELECT".into()),
                    Some("TABLE".into()),
                    Some("`s`.`ab`".into()),
                ],
            ],
        };
        let cur = r.grants_about(HiveObjectType::Table, "s.a`b");
        assert_eq!(
            cur,
            vec![g("users", "SELECT", HiveObjectType::Table, "s.a`b")]
        );
        let m = Mapping::default();
        let d = Directory::default();
        let mapper = Mapper::new(&m, &d, Vec::<String>::new());
        let src = vec![g("admins", "SELECT", HiveObjectType::Table, "s.a`b")];
        let current_ab = r.grants_about(HiveObjectType::Table, "s.ab");
        let p = plan_hive(&src, &current_ab, "TABLE s.a`b", &mapper);
        assert_eq!(
            p.statements,
            vec!["GRANT SELECT ON TABLE `s`.`a``b` TO `admins`".to_string()]
        );
    }

    #[test]
    fn only_missing_grants_become_statements_owner_last() {
        let m = Mapping::default();
        let d = Directory::default();
        let mapper = Mapper::new(&m, &d, Vec::<String>::new());
        let src = vec![
            g("admins", "OWN", HiveObjectType::Table, "s.o"),
            g("users", "SELECT", HiveObjectType::Table, "s.o"),
            g("users", "DENIED_MODIFY", HiveObjectType::Table, "s.o"),
        ];
        let cur = vec![
            g("Users", "SELECT", HiveObjectType::Table, "S.O"),
            g("admins", "MODIFY", HiveObjectType::Table, "s.o"),
        ];
        let p = plan_hive(&src, &cur, "TABLE s.o", &mapper);
        assert_eq!(
            p.statements,
            vec![
                "DENY MODIFY ON TABLE `s`.`o` TO `users`".to_string(),
                "ALTER TABLE `s`.`o` OWNER TO `admins`".to_string()
            ]
        );
        assert_eq!(p.extra, vec!["GRANT MODIFY ON TABLE `s`.`o` TO `admins`"]);
        let all = plan_hive(&src, &src, "x", &mapper);
        assert!(all.statements.is_empty() && all.extra.is_empty());
    }

    #[test]
    fn uc_adds_only_what_is_missing() {
        let m = Mapping::default();
        let d = Directory::default();
        let mapper = Mapper::new(&m, &d, Vec::<String>::new());
        let a = |p: &str, privs: &[&str]| PrivilegeAssignment {
            principal: p.into(),
            privileges: privs.iter().map(|s| s.to_string()).collect(),
        };
        let src = UcGrants {
            securable_type: "schema".into(),
            full_name: "m.s".into(),
            privilege_assignments: vec![a("users", &["USE_SCHEMA", "SELECT"])],
        };
        let cur = UcGrants {
            privilege_assignments: vec![a("users", &["USE_SCHEMA"]), a("admins", &["MODIFY"])],
            ..src.clone()
        };
        let p = plan_uc(&src, &cur, "schema m.s", &mapper);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].add, vec!["SELECT".to_string()]);
        assert_eq!(p.extra, vec!["admins: MODIFY".to_string()]);
    }
}
