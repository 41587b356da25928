//! Principals on both sides: who the target knows (from its SCIM listings, read once), who the
//! source had (from the bundle's reference records), and how every name found in the bundle
//! maps — with every unmapped principal and every dropped one remembered for the report.

use super::mapping::{is_builtin_group, Mapping, PrincipalOutcome};
use crate::model::permissions::PrincipalRef;
use crate::model::principal::{Group, ServicePrincipal, User};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

/// The kind of a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A user (by user name).
    User,
    /// A group (by display name).
    Group,
    /// A service principal (by application id).
    ServicePrincipal,
}

/// The principals of the target workspace, by lowercase name.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    names: HashMap<String, (PrincipalKind, String)>,
    /// The identity import runs as.
    pub me: Option<PrincipalRef>,
}

impl Directory {
    /// Builds the directory from SCIM listings and the caller's user name.
    pub fn new(
        users: &[User],
        groups: &[Group],
        sps: &[ServicePrincipal],
        me: Option<&str>,
    ) -> Directory {
        let mut names = HashMap::new();
        for g in groups {
            names.insert(
                g.display_name.to_lowercase(),
                (PrincipalKind::Group, g.display_name.clone()),
            );
        }
        for s in sps {
            names.insert(
                s.application_id.to_lowercase(),
                (PrincipalKind::ServicePrincipal, s.application_id.clone()),
            );
        }
        for u in users {
            names.insert(
                u.user_name.to_lowercase(),
                (PrincipalKind::User, u.user_name.clone()),
            );
        }
        let mut d = Directory { names, me: None };
        d.me = me.map(|m| d.reference(m, PrincipalKind::User));
        d
    }

    /// True when the target knows `name` (case-insensitive), built-in groups included.
    pub fn has(&self, name: &str) -> bool {
        is_builtin_group(name) || self.names.contains_key(&name.to_lowercase())
    }

    /// The kind of `name` in the target, if known.
    pub fn kind(&self, name: &str) -> Option<PrincipalKind> {
        if is_builtin_group(name) {
            return Some(PrincipalKind::Group);
        }
        self.names.get(&name.to_lowercase()).map(|(k, _)| *k)
    }

    /// An ACL reference for `name`: its kind in the target, else `fallback`; its spelling in the
    /// target when known.
    pub fn reference(&self, name: &str, fallback: PrincipalKind) -> PrincipalRef {
        let (kind, spelled) = match self.names.get(&name.to_lowercase()) {
            Some((k, s)) => (*k, s.clone()),
            None if is_builtin_group(name) => (PrincipalKind::Group, name.to_string()),
            None => (fallback, name.to_string()),
        };
        match kind {
            PrincipalKind::User => PrincipalRef::UserName(spelled),
            PrincipalKind::Group => PrincipalRef::GroupName(spelled),
            PrincipalKind::ServicePrincipal => PrincipalRef::ServicePrincipalName(spelled),
        }
    }
}

/// The kind of an ACL reference.
pub fn kind_of(p: &PrincipalRef) -> PrincipalKind {
    match p {
        PrincipalRef::UserName(_) => PrincipalKind::User,
        PrincipalRef::GroupName(_) => PrincipalKind::Group,
        PrincipalRef::ServicePrincipalName(_) => PrincipalKind::ServicePrincipal,
    }
}

/// A principal that could not be mapped, with every place that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmapped {
    /// The source name.
    pub principal: String,
    /// Where it is used (`job nightly: run_as`, `/Shared/etl: ACL`, …).
    pub used_by: Vec<String>,
}

/// Maps principal names for one run, remembering what could not be mapped and what was
/// dropped.
pub struct Mapper<'a> {
    mapping: &'a Mapping,
    target: &'a Directory,
    source: BTreeSet<String>,
    unmapped: Mutex<BTreeMap<String, BTreeSet<String>>>,
    dropped: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl<'a> Mapper<'a> {
    /// A mapper over the mapping file and the target's principals; `source` are the principal
    /// names the source workspace had (empty when the bundle does not list them).
    pub fn new(
        mapping: &'a Mapping,
        target: &'a Directory,
        source: impl IntoIterator<Item = String>,
    ) -> Mapper<'a> {
        Mapper {
            mapping,
            target,
            source: source.into_iter().map(|s| s.to_lowercase()).collect(),
            unmapped: Mutex::new(BTreeMap::new()),
            dropped: Mutex::new(BTreeMap::new()),
        }
    }

    /// The mapping file.
    pub fn mapping(&self) -> &Mapping {
        self.mapping
    }

    /// The target's principals.
    pub fn directory(&self) -> &Directory {
        self.target
    }

    /// True when `name` was a principal of the source workspace (always true when the bundle
    /// lists no principals, so that nothing is waved through unchecked).
    pub fn is_source_principal(&self, name: &str) -> bool {
        self.source.is_empty()
            || self.source.contains(&name.to_lowercase())
            || is_builtin_group(name)
            || self.mapping.mapped_principal(name).is_some()
    }

    /// Maps one name used at `place`; remembers unmapped and dropped names.
    pub fn map(&self, name: &str, place: &str) -> PrincipalOutcome {
        let out = self.mapping.principal(name, &|n| self.target.has(n));
        match &out {
            PrincipalOutcome::Unmapped => {
                self.unmapped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(name.to_string())
                    .or_default()
                    .insert(place.to_string());
            }
            PrincipalOutcome::Drop => {
                self.dropped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(name.to_string())
                    .or_default()
                    .insert(place.to_string());
            }
            PrincipalOutcome::Use(_) => {}
        }
        out
    }

    /// Maps an ACL reference, keeping its kind unless the target knows the new name as
    /// another kind.
    pub fn map_ref(&self, p: &PrincipalRef, place: &str) -> Result<Option<PrincipalRef>, String> {
        match self.map(p.name(), place) {
            PrincipalOutcome::Use(to) => Ok(Some(self.target.reference(&to, kind_of(p)))),
            PrincipalOutcome::Drop => Ok(None),
            PrincipalOutcome::Unmapped => Err(p.name().to_string()),
        }
    }

    /// Records that `name`, used at `place`, could not be mapped (for checks done elsewhere,
    /// such as the job settings rewrite).
    pub fn note_unmapped(&self, name: &str, place: &str) {
        self.unmapped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .insert(place.to_string());
    }

    /// Records a drop made elsewhere.
    pub fn note_dropped(&self, name: &str, place: &str) {
        self.dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .insert(place.to_string());
    }

    /// Every unmapped principal with its uses, sorted.
    pub fn unmapped(&self) -> Vec<Unmapped> {
        collect(&self.unmapped)
    }

    /// Every dropped principal with its uses, sorted.
    pub fn dropped(&self) -> Vec<Unmapped> {
        collect(&self.dropped)
    }
}

fn collect(m: &Mutex<BTreeMap<String, BTreeSet<String>>>) -> Vec<Unmapped> {
    m.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| Unmapped {
            principal: k.clone(),
            used_by: v.iter().cloned().collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: &str) -> User {
        User {
            id: "1".into(),
            user_name: n.into(),
            display_name: None,
            active: true,
            emails: vec![],
            groups: vec![],
            entitlements: vec![],
        }
    }

    #[test]
    fn kinds_follow_the_target_and_unmapped_names_are_collected() {
        let groups = vec![Group {
            id: "2".into(),
            display_name: "Analysts".into(),
            members: vec![],
            entitlements: vec![],
        }];
        let d = Directory::new(&[user("Ann@X.org")], &groups, &[], Some("ann@x.org"));
        assert_eq!(d.me, Some(PrincipalRef::UserName("Ann@X.org".into())));
        let m = Mapping::parse("[principals]\n\"team\" = \"analysts\"\n", "t").unwrap();
        let mapper = Mapper::new(&m, &d, ["team".to_string()]);
        assert_eq!(
            mapper
                .map_ref(&PrincipalRef::UserName("team".into()), "x")
                .unwrap(),
            Some(PrincipalRef::GroupName("Analysts".into()))
        );
        assert!(mapper
            .map_ref(&PrincipalRef::UserName("bob@y".into()), "/a: ACL")
            .is_err());
        mapper.map("bob@y", "job j: run_as");
        assert_eq!(
            mapper.unmapped(),
            vec![Unmapped {
                principal: "bob@y".into(),
                used_by: vec!["/a: ACL".into(), "job j: run_as".into()]
            }]
        );
        assert!(!mapper.is_source_principal("ops@list.example"));
    }
}
