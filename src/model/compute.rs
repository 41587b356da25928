//! Reference-only compute and storage records: clusters, pools, policies, warehouses, mounts.
//!
//! None of these is replayed by import; they are carried so that the report can tell the user
//! exactly what to recreate. Like job settings, their specs are kept as whole JSON objects.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use super::command::{is_builtin_mount, MOUNTS_SNIPPET};

/// A cluster as `clusters/get` returns it, kept whole (`cluster_id` and `cluster_name` named).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Cluster id.
    pub cluster_id: String,
    /// Display name.
    #[serde(default)]
    pub cluster_name: String,
    /// Every other field of the spec.
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// An instance pool, kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancePool {
    /// Pool id.
    pub instance_pool_id: String,
    /// Display name.
    #[serde(default)]
    pub instance_pool_name: String,
    /// Every other field.
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// A cluster policy, kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterPolicy {
    /// Policy id.
    pub policy_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Every other field (`definition` is a JSON string on the wire).
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// A SQL warehouse, kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warehouse {
    /// Warehouse id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Every other field.
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// A DBFS mount point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mount {
    /// `/mnt/...`.
    pub mount_point: String,
    /// The storage URI it points at (`abfss://…`, `s3a://…`).
    pub source: String,
    /// Encryption type, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
}
