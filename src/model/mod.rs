//! The resource model: one typed description of every kind of object dbxport moves.
//!
//! This module is the hub of the design. The REST client produces and consumes these types,
//! and the emulator stores and serves them. The serde shapes follow the Databricks REST wire
//! format (`../shared/reference/databricks-api.md`), so one struct serves the wire and the
//! emulator's state. The bundle's JSON payload files are not these types: each kind's
//! `kinds::<kind>::format` has format types of its own, converted from and to these at the
//! export and import boundaries, so a change here cannot change a bundle's bytes.
//!
//! This module owns data shapes and pure helpers only: it performs no I/O and must not import
//! `client`, `bundle`, `emulator`, `export` or `import`.

pub mod command;
pub mod compute;
pub mod grants;
pub mod job;
pub mod kinds;
pub mod mlflow;
pub mod permissions;
pub mod principal;
pub mod repo;
pub mod report;
pub mod scan;
pub mod secret;
pub mod workspace;

use serde::{Deserialize, Serialize};

/// Every kind of resource a bundle can hold, as named in the inventory's `kind` field.
///
/// The first group is replayed by import; the `reference-only` group is recorded so that the user
/// knows what to recreate, and is never replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A workspace folder (kept even when empty).
    Directory,
    /// A notebook, in any of the four languages.
    Notebook,
    /// A workspace file (not a notebook), byte for byte.
    File,
    /// A Git folder (repo) link: URL, provider, branch or tag, head commit.
    Repo,
    /// A job's full settings.
    Job,
    /// A secret scope with its backend, keys and ACLs.
    SecretScope,
    /// One secret value, always sealed with age.
    Secret,
    /// The access control list of one workspace object, repo, job or model.
    Permissions,
    /// Legacy Hive metastore grants, denies and owners.
    HiveGrants,
    /// Unity Catalog privilege assignments on one securable.
    UcGrants,
    /// An MLflow registered model.
    RegisteredModel,
    /// One version of a registered model.
    ModelVersion,
    /// One artifact file of a model version.
    ModelArtifact,
    /// Reference only: an interactive or job cluster definition.
    Cluster,
    /// Reference only: an instance pool.
    InstancePool,
    /// Reference only: a cluster policy.
    ClusterPolicy,
    /// Reference only: a SQL warehouse.
    Warehouse,
    /// Reference only: a DBFS mount point.
    Mount,
    /// Reference only: a user, group or service principal referenced anywhere.
    Principal,
}

impl Kind {
    /// All kinds, in import (dependency) order.
    pub const ALL: [Kind; 19] = [
        Kind::Directory,
        Kind::Notebook,
        Kind::File,
        Kind::Repo,
        Kind::SecretScope,
        Kind::Secret,
        Kind::RegisteredModel,
        Kind::ModelVersion,
        Kind::ModelArtifact,
        Kind::Job,
        Kind::Permissions,
        Kind::HiveGrants,
        Kind::UcGrants,
        Kind::Cluster,
        Kind::InstancePool,
        Kind::ClusterPolicy,
        Kind::Warehouse,
        Kind::Mount,
        Kind::Principal,
    ];

    /// The name used in the inventory and on the command line (`--include notebook`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Directory => "directory",
            Kind::Notebook => "notebook",
            Kind::File => "file",
            Kind::Repo => "repo",
            Kind::Job => "job",
            Kind::SecretScope => "secret_scope",
            Kind::Secret => "secret",
            Kind::Permissions => "permissions",
            Kind::HiveGrants => "hive_grants",
            Kind::UcGrants => "uc_grants",
            Kind::RegisteredModel => "registered_model",
            Kind::ModelVersion => "model_version",
            Kind::ModelArtifact => "model_artifact",
            Kind::Cluster => "cluster",
            Kind::InstancePool => "instance_pool",
            Kind::ClusterPolicy => "cluster_policy",
            Kind::Warehouse => "warehouse",
            Kind::Mount => "mount",
            Kind::Principal => "principal",
        }
    }

    /// Parses the inventory / command-line name of a kind.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// True for kinds that are recorded for the user but never replayed by import.
    pub fn is_reference_only(self) -> bool {
        matches!(
            self,
            Kind::Cluster
                | Kind::InstancePool
                | Kind::ClusterPolicy
                | Kind::Warehouse
                | Kind::Mount
                | Kind::Principal
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `{"key": ..., "value": ...}` pair, the tag shape shared by MLflow and other APIs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyValue {
    /// Tag key.
    pub key: String,
    /// Tag value.
    #[serde(default)]
    pub value: String,
}
