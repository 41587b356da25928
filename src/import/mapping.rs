//! The mapping file: how names and ids of the source workspace become those of the target.
//!
//! A mapping file is TOML (see the README for a full example):
//!
//! ```toml
//! unmapped_principals = "fail"          # fail | keep | drop
//!
//! [principals]                          # users, groups, service principals (application ids)
//! "alice@poc.example.org" = "alice@example.org"
//!
//! [paths]                               # workspace path prefixes
//! "/Shared/poc" = "/Shared/projects"
//!
//! [clusters]                            # to an existing cluster, or to a job-cluster spec
//! "0923-101010-abcd" = "1101-202020-wxyz"
//! "0923-101010-efgh" = { new_cluster = { spark_version = "15.4.x-scala2.12", num_workers = 2 } }
//!
//! [warehouses]
//! [instance_pools]
//! [policies]
//! [secret_scopes]
//! [catalogs]                            # Unity Catalog: "poc" = "prod"
//! [schemas]                             # "poc.ml" = "prod.models"
//! ```
//!
//! A user's home folder follows the user: when `alice@poc` maps to `alice@prod`, the path
//! `/Users/alice@poc/x` becomes `/Users/alice@prod/x` unless a `[paths]` entry says otherwise.
//! Principal names compare case-insensitively, as workspaces treat e-mail addresses.

use crate::hints::Hint;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// What happens to a principal that is neither mapped nor present in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedPolicy {
    /// Refuse the import before any write, listing every unmapped principal (the default).
    #[default]
    Fail,
    /// Keep the name as it is (the target may reject it).
    Keep,
    /// Drop the grant, owner or address that names it; each drop is listed in the report.
    Drop,
}

/// Where a source cluster id goes in the target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ClusterTarget {
    /// An existing cluster of the target.
    Existing(String),
    /// A job-cluster spec that replaces `existing_cluster_id` in job tasks.
    NewCluster {
        /// The cluster spec (`spark_version`, `node_type_id`, …).
        new_cluster: Map<String, Value>,
    },
}

/// A parsed mapping file. The default value maps nothing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Policy for principals that are neither mapped nor in the target.
    #[serde(default)]
    pub unmapped_principals: UnmappedPolicy,
    /// Principal renames.
    #[serde(default)]
    pub principals: BTreeMap<String, String>,
    /// Path prefix renames.
    #[serde(default)]
    pub paths: BTreeMap<String, String>,
    /// Cluster id remaps.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterTarget>,
    /// SQL warehouse id remaps.
    #[serde(default)]
    pub warehouses: BTreeMap<String, String>,
    /// Instance pool id remaps.
    #[serde(default)]
    pub instance_pools: BTreeMap<String, String>,
    /// Cluster policy id remaps.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Secret scope renames.
    #[serde(default)]
    pub secret_scopes: BTreeMap<String, String>,
    /// Unity Catalog catalog renames, applied to UC models and grants.
    #[serde(default)]
    pub catalogs: BTreeMap<String, String>,
    /// Unity Catalog schema renames, `catalog.schema` to `catalog.schema`; an entry here wins
    /// over the `[catalogs]` entry of its catalog.
    #[serde(default)]
    pub schemas: BTreeMap<String, String>,
}

/// A mapping file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// The file could not be read.
    #[error("mapping file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid mapping.
    #[error("mapping file {path}: {message}\n{}", Hint::MappingFile)]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with its location.
        message: String,
    },
    /// A path prefix is not an absolute workspace path.
    #[error("mapping file {path}: [paths] entry {prefix:?} must be an absolute workspace path starting with '/'")]
    BadPath {
        /// The file.
        path: String,
        /// The offending prefix.
        prefix: String,
    },
}

/// The result of mapping one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalOutcome {
    /// Use this name in the target.
    Use(String),
    /// Leave the entry out (policy `drop`).
    Drop,
    /// Not mapped, not in the target, policy `fail`.
    Unmapped,
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: shown.clone(),
            source,
        })?;
        Mapping::parse(&text, &shown)
    }

    /// Parses mapping TOML; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Mapping, MappingError> {
        let m: Mapping = toml::from_str(text).map_err(|e| MappingError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim().to_string(),
        })?;
        for (from, to) in &m.schemas {
            for n in [from, to] {
                if n.split('.').count() != 2 || n.split('.').any(str::is_empty) {
                    return Err(MappingError::Parse {
                        path: origin.to_string(),
                        message: format!("[schemas] entry {n:?} must be a CATALOG.SCHEMA name"),
                    });
                }
            }
        }
        for (from, to) in &m.catalogs {
            for n in [from, to] {
                if n.is_empty() || n.contains('.') {
                    return Err(MappingError::Parse {
                        path: origin.to_string(),
                        message: format!("[catalogs] entry {n:?} must be a catalog name (no dots)"),
                    });
                }
            }
        }
        for (from, to) in &m.paths {
            for p in [from, to] {
                if !p.starts_with('/') {
                    return Err(MappingError::BadPath {
                        path: origin.to_string(),
                        prefix: p.clone(),
                    });
                }
            }
        }
        Ok(m)
    }

    /// The explicit mapping of `name`, compared case-insensitively.
    pub fn mapped_principal(&self, name: &str) -> Option<&str> {
        self.principals
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Maps a principal, given whether the target knows a name.
    ///
    /// Order: an explicit mapping wins; then a name the target already has is kept; then the
    /// unmapped policy decides. Built-in groups (`users`, `admins`) exist everywhere.
    pub fn principal(&self, name: &str, target_has: &dyn Fn(&str) -> bool) -> PrincipalOutcome {
        if let Some(to) = self.mapped_principal(name) {
            return PrincipalOutcome::Use(to.to_string());
        }
        if is_builtin_group(name) || target_has(name) {
            return PrincipalOutcome::Use(name.to_string());
        }
        match self.unmapped_principals {
            UnmappedPolicy::Keep => PrincipalOutcome::Use(name.to_string()),
            UnmappedPolicy::Drop => PrincipalOutcome::Drop,
            UnmappedPolicy::Fail => PrincipalOutcome::Unmapped,
        }
    }

    /// Maps a workspace path: the longest `[paths]` prefix wins; otherwise a `/Users/<name>/`
    /// or `/Repos/<name>/` prefix follows its principal's mapping.
    pub fn path(&self, path: &str) -> String {
        let best = self
            .paths
            .iter()
            .filter(|(from, _)| has_prefix(path, from))
            .max_by_key(|(from, _)| from.len());
        if let Some((from, to)) = best {
            return format!(
                "{}{}",
                to.trim_end_matches('/'),
                &path[from.trim_end_matches('/').len()..]
            );
        }
        for root in ["/Users/", "/Repos/"] {
            if let Some(rest) = path.strip_prefix(root) {
                let (user, tail) = rest.split_once('/').map_or((rest, ""), |(u, t)| (u, t));
                if let Some(to) = self.mapped_principal(user) {
                    return if tail.is_empty() && !rest.contains('/') {
                        format!("{root}{to}")
                    } else {
                        format!("{root}{to}/{tail}")
                    };
                }
            }
        }
        path.to_string()
    }

    /// Where a source cluster id goes, if mapped.
    pub fn cluster(&self, id: &str) -> Option<&ClusterTarget> {
        self.clusters.get(id)
    }

    /// A Unity Catalog name (`catalog`, `catalog.schema` or deeper) with its catalog and
    /// schema renamed: a `[schemas]` entry wins over a `[catalogs]` one. Names compare
    /// case-insensitively, as Unity Catalog's do.
    pub fn uc_name(&self, full: &str) -> String {
        crate::models::import::remap_uc(full, &self.catalogs, &self.schemas)
    }

    /// The target secret scope name for a source scope.
    pub fn scope<'a>(&'a self, name: &'a str) -> &'a str {
        self.secret_scopes
            .get(name)
            .map(String::as_str)
            .unwrap_or(name)
    }
}

/// Groups every workspace has, which never need mapping.
pub fn is_builtin_group(name: &str) -> bool {
    matches!(name, "users" | "admins" | "account users")
}

fn has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_and_schemas_are_checked_and_rename_uc_names() {
        let m = Mapping::parse(
            "[catalogs]\n\"poc\" = \"prod\"\n[schemas]\n\"poc.soil\" = \"agri.models\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(m.uc_name("poc.ocean.m"), "prod.ocean.m");
        assert_eq!(m.uc_name("poc.soil.m"), "agri.models.m");
        assert_eq!(m.uc_name("poc.soil"), "agri.models");
        assert_eq!(m.uc_name("poc"), "prod");
        assert_eq!(m.uc_name("main.x.m"), "main.x.m");
        for bad in [
            "[schemas]\n\"poc\" = \"a.b\"\n",
            "[schemas]\n\"poc.s\" = \"a.b.c\"\n",
            "[catalogs]\n\"poc.s\" = \"prod\"\n",
            "[catalogs]\n\"poc\" = \"\"\n",
        ] {
            assert!(
                matches!(Mapping::parse(bad, "t"), Err(MappingError::Parse { .. })),
                "{bad}"
            );
        }
    }

    fn sample() -> Mapping {
        Mapping::parse(
            r#"
unmapped_principals = "drop"
[principals]
"Alice@POC.example.org" = "alice@example.org"
"poc-researchers" = "researchers"
[paths]
"/Shared/poc" = "/Shared/projects"
"/Shared/poc/keep" = "/Shared/kept"
[clusters]
"c1" = "c9"
"c2" = { new_cluster = { spark_version = "15.4.x-scala2.12", num_workers = 2 } }
[secret_scopes]
"poc-etl" = "etl"
"#,
            "test.toml",
        )
        .unwrap()
    }

    #[test]
    fn principals_map_case_insensitively_and_follow_policy() {
        let m = sample();
        let none = |_: &str| false;
        assert_eq!(
            m.principal("alice@poc.example.org", &none),
            PrincipalOutcome::Use("alice@example.org".into())
        );
        assert_eq!(
            m.principal("admins", &none),
            PrincipalOutcome::Use("admins".into())
        );
        assert_eq!(m.principal("bob@poc", &none), PrincipalOutcome::Drop);
        assert_eq!(
            m.principal("bob@poc", &|n: &str| n == "bob@poc"),
            PrincipalOutcome::Use("bob@poc".into())
        );
        let strict = Mapping::default();
        assert_eq!(
            strict.principal("bob@poc", &none),
            PrincipalOutcome::Unmapped
        );
    }

    #[test]
    fn paths_use_longest_prefix_then_follow_users() {
        let m = sample();
        assert_eq!(m.path("/Shared/poc/a"), "/Shared/projects/a");
        assert_eq!(m.path("/Shared/poc"), "/Shared/projects");
        assert_eq!(m.path("/Shared/poc/keep/x"), "/Shared/kept/x");
        assert_eq!(m.path("/Shared/pocket"), "/Shared/pocket");
        assert_eq!(
            m.path("/Users/alice@poc.example.org/nb"),
            "/Users/alice@example.org/nb"
        );
        assert_eq!(
            m.path("/Users/alice@poc.example.org"),
            "/Users/alice@example.org"
        );
        assert_eq!(m.path("/Users/carol@poc/nb"), "/Users/carol@poc/nb");
    }

    #[test]
    fn clusters_and_scopes() {
        let m = sample();
        assert_eq!(m.cluster("c1"), Some(&ClusterTarget::Existing("c9".into())));
        assert!(matches!(
            m.cluster("c2"),
            Some(ClusterTarget::NewCluster { .. })
        ));
        assert_eq!(m.cluster("c3"), None);
        assert_eq!(m.scope("poc-etl"), "etl");
        assert_eq!(m.scope("other"), "other");
    }

    #[test]
    fn bad_files_name_the_problem() {
        let e = Mapping::parse("[paths]\n\"Shared\" = \"/x\"\n", "m.toml").unwrap_err();
        assert!(e.to_string().contains("\"Shared\""), "{e}");
        let e = Mapping::parse("[principal]\n", "m.toml").unwrap_err();
        assert!(e.to_string().contains("m.toml"), "{e}");
    }
}
