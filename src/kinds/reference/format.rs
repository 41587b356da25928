//! The bundle format of reference-only records (spec §6.6): their `meta`, their payload files
//! ([`ClusterFile`], [`InstancePoolFile`], [`ClusterPolicyFile`], [`WarehouseFile`],
//! [`MountFile`], [`UserFile`], [`GroupFile`], [`ServicePrincipalFile`]), and the resources
//! export writes for them.

use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::resource::Resource;
use crate::kinds::format::{meta_value, payload_part, PayloadFile};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `meta` of a reference-only record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceMeta {
    /// The object's id (a mount's mount point).
    pub id: String,
    /// Its name.
    pub name: String,
    /// A mount's source URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A principal's type: `user`, `group` or `service_principal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
}

impl ReferenceMeta {
    fn new(id: &str, name: &str) -> Self {
        ReferenceMeta {
            id: id.to_string(),
            name: name.to_string(),
            source: None,
            principal_type: None,
        }
    }
}

/// `reference/clusters/⟨id⟩.json` (§6.6): a cluster as the clusters API described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The cluster's id.
    pub cluster_id: String,
    /// Its name (`""` when the API gave none).
    #[serde(default)]
    pub cluster_name: String,
    /// Every other field of the answer (`spark_version`, `node_type_id`, …), kept verbatim
    /// by design: the file says what to recreate, in the API's own words.
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// `reference/instance-pools/⟨id⟩.json` (§6.6): an instance pool as `instance-pools/list`
/// described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancePoolFile {
    /// The pool's id.
    pub instance_pool_id: String,
    /// Its name (`""` when the API gave none).
    #[serde(default)]
    pub instance_pool_name: String,
    /// Every other field of the answer, kept verbatim by design (as [`ClusterFile::spec`]).
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// `reference/cluster-policies/⟨id⟩.json` (§6.6): a cluster policy as `policies/clusters/list`
/// described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterPolicyFile {
    /// The policy's id.
    pub policy_id: String,
    /// Its name (`""` when the API gave none).
    #[serde(default)]
    pub name: String,
    /// Every other field of the answer (`definition`, a JSON document in a string, …), kept
    /// verbatim by design (as [`ClusterFile::spec`]).
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// `reference/warehouses/⟨id⟩.json` (§6.6): a SQL warehouse as the SQL warehouses API
/// described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarehouseFile {
    /// The warehouse's id.
    pub id: String,
    /// Its name (`""` when the API gave none).
    #[serde(default)]
    pub name: String,
    /// Every other field of the answer, kept verbatim by design (as [`ClusterFile::spec`]).
    #[serde(flatten)]
    pub spec: Map<String, Value>,
}

/// `reference/mounts/⟨mount point⟩.json` (§6.6): a DBFS mount point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountFile {
    /// Where it is mounted (`/mnt/…`).
    pub mount_point: String,
    /// The storage URI it points at (`abfss://…`, `s3a://…`).
    pub source: String,
    /// Its encryption type, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
}

/// A SCIM `{value, display?, primary?}` entry of a principal's file: an email, a group, a
/// member or an entitlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScimEntry {
    /// The id, email or entitlement.
    pub value: String,
    /// Its display text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// True for the primary email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// `reference/principals/users/⟨user name⟩.json` (§6.6): a user as SCIM described it (in
/// SCIM's camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFile {
    /// The SCIM id.
    pub id: String,
    /// `userName`: the user name (an email).
    #[serde(rename = "userName")]
    pub user_name: String,
    /// `displayName`.
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// Whether the user is active (`true` when absent).
    #[serde(default = "active")]
    pub active: bool,
    /// Emails; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ScimEntry>,
    /// The groups the user belongs to; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ScimEntry>,
    /// Entitlements; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<ScimEntry>,
}

/// `reference/principals/groups/⟨display name⟩.json` (§6.6): a group as SCIM described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFile {
    /// The SCIM id.
    pub id: String,
    /// `displayName`: the group's name.
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// Members; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ScimEntry>,
    /// Entitlements; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<ScimEntry>,
}

/// `reference/principals/service-principals/⟨application id⟩.json` (§6.6): a service
/// principal as SCIM described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePrincipalFile {
    /// The SCIM id.
    pub id: String,
    /// `applicationId`: the id ACLs name it by.
    #[serde(rename = "applicationId")]
    pub application_id: String,
    /// `displayName`.
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// Whether it is active (`true` when absent).
    #[serde(default = "active")]
    pub active: bool,
}

fn active() -> bool {
    true
}

impl Resource {
    fn reference(kind: Kind, folder: &str, id: &str, name: &str, file: &impl PayloadFile) -> Self {
        let mut r = Resource::new(kind, id, name, meta_value(&ReferenceMeta::new(id, name)));
        r.parts.push(payload_part(
            LogicalPath::file(segs(["reference", folder, id]), Some("json")),
            file,
        ));
        r
    }

    fn cluster_record(f: ClusterFile) -> Self {
        Self::reference(
            Kind::Cluster,
            "clusters",
            &f.cluster_id,
            &f.cluster_name,
            &f,
        )
    }

    fn instance_pool_record(f: InstancePoolFile) -> Self {
        Self::reference(
            Kind::InstancePool,
            "instance-pools",
            &f.instance_pool_id,
            &f.instance_pool_name,
            &f,
        )
    }

    fn cluster_policy_record(f: ClusterPolicyFile) -> Self {
        Self::reference(
            Kind::ClusterPolicy,
            "cluster-policies",
            &f.policy_id,
            &f.name,
            &f,
        )
    }

    fn warehouse_record(f: WarehouseFile) -> Self {
        Self::reference(Kind::Warehouse, "warehouses", &f.id, &f.name, &f)
    }

    /// A mount record: stored by its mount point's components.
    fn mount_record(f: MountFile) -> Self {
        let meta = ReferenceMeta {
            source: Some(f.source.clone()),
            ..ReferenceMeta::new(&f.mount_point, &f.mount_point)
        };
        let mut r = Resource::new(
            Kind::Mount,
            &f.mount_point,
            &f.mount_point,
            meta_value(&meta),
        );
        let mut s = segs(["reference", "mounts"]);
        s.extend(
            f.mount_point
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        );
        if s.len() == 2 {
            s.push("root".into());
        }
        r.parts
            .push(payload_part(LogicalPath::file(s, Some("json")), &f));
        r
    }

    fn principal_record(
        kind_folder: &str,
        principal_type: &str,
        id: &str,
        name: &str,
        file: &impl PayloadFile,
    ) -> Self {
        let meta = ReferenceMeta {
            principal_type: Some(principal_type.to_string()),
            ..ReferenceMeta::new(id, name)
        };
        let mut r = Resource::new(Kind::Principal, id, name, meta_value(&meta));
        r.parts.push(payload_part(
            LogicalPath::file(
                segs(["reference", "principals", kind_folder, name]),
                Some("json"),
            ),
            file,
        ));
        r
    }

    fn user_record(f: UserFile) -> Self {
        Self::principal_record("users", "user", &f.id, &f.user_name, &f)
    }

    fn group_record(f: GroupFile) -> Self {
        Self::principal_record("groups", "group", &f.id, &f.display_name, &f)
    }

    fn service_principal_record(f: ServicePrincipalFile) -> Self {
        Self::principal_record(
            "service-principals",
            "service_principal",
            &f.id,
            &f.application_id,
            &f,
        )
    }
}

/// The API's side: conversions between the reference files and the model's compute and SCIM
/// types, and the constructors export calls with what the APIs returned.
mod wire {
    use super::{
        ClusterFile, ClusterPolicyFile, GroupFile, InstancePoolFile, MountFile, ScimEntry,
        ServicePrincipalFile, UserFile, WarehouseFile,
    };
    use crate::bundle::resource::Resource;
    use crate::kinds::format::PayloadFile;
    use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
    use crate::model::principal::{Group, ScimRef, ServicePrincipal, User};

    impl From<&Cluster> for ClusterFile {
        fn from(c: &Cluster) -> Self {
            ClusterFile {
                cluster_id: c.cluster_id.clone(),
                cluster_name: c.cluster_name.clone(),
                spec: c.spec.clone(),
            }
        }
    }

    impl PayloadFile for ClusterFile {
        type Wire = Cluster;

        fn into_wire(self) -> Cluster {
            Cluster {
                cluster_id: self.cluster_id,
                cluster_name: self.cluster_name,
                spec: self.spec,
            }
        }
    }

    impl From<&InstancePool> for InstancePoolFile {
        fn from(p: &InstancePool) -> Self {
            InstancePoolFile {
                instance_pool_id: p.instance_pool_id.clone(),
                instance_pool_name: p.instance_pool_name.clone(),
                spec: p.spec.clone(),
            }
        }
    }

    impl PayloadFile for InstancePoolFile {
        type Wire = InstancePool;

        fn into_wire(self) -> InstancePool {
            InstancePool {
                instance_pool_id: self.instance_pool_id,
                instance_pool_name: self.instance_pool_name,
                spec: self.spec,
            }
        }
    }

    impl From<&ClusterPolicy> for ClusterPolicyFile {
        fn from(p: &ClusterPolicy) -> Self {
            ClusterPolicyFile {
                policy_id: p.policy_id.clone(),
                name: p.name.clone(),
                spec: p.spec.clone(),
            }
        }
    }

    impl PayloadFile for ClusterPolicyFile {
        type Wire = ClusterPolicy;

        fn into_wire(self) -> ClusterPolicy {
            ClusterPolicy {
                policy_id: self.policy_id,
                name: self.name,
                spec: self.spec,
            }
        }
    }

    impl From<&Warehouse> for WarehouseFile {
        fn from(w: &Warehouse) -> Self {
            WarehouseFile {
                id: w.id.clone(),
                name: w.name.clone(),
                spec: w.spec.clone(),
            }
        }
    }

    impl PayloadFile for WarehouseFile {
        type Wire = Warehouse;

        fn into_wire(self) -> Warehouse {
            Warehouse {
                id: self.id,
                name: self.name,
                spec: self.spec,
            }
        }
    }

    impl From<&Mount> for MountFile {
        fn from(m: &Mount) -> Self {
            MountFile {
                mount_point: m.mount_point.clone(),
                source: m.source.clone(),
                encryption_type: m.encryption_type.clone(),
            }
        }
    }

    impl PayloadFile for MountFile {
        type Wire = Mount;

        fn into_wire(self) -> Mount {
            Mount {
                mount_point: self.mount_point,
                source: self.source,
                encryption_type: self.encryption_type,
            }
        }
    }

    fn entries(refs: &[ScimRef]) -> Vec<ScimEntry> {
        refs.iter()
            .map(|r| ScimEntry {
                value: r.value.clone(),
                display: r.display.clone(),
                primary: r.primary,
            })
            .collect()
    }

    fn refs(entries: Vec<ScimEntry>) -> Vec<ScimRef> {
        entries
            .into_iter()
            .map(|e| ScimRef {
                value: e.value,
                display: e.display,
                primary: e.primary,
            })
            .collect()
    }

    impl From<&User> for UserFile {
        fn from(u: &User) -> Self {
            UserFile {
                id: u.id.clone(),
                user_name: u.user_name.clone(),
                display_name: u.display_name.clone(),
                active: u.active,
                emails: entries(&u.emails),
                groups: entries(&u.groups),
                entitlements: entries(&u.entitlements),
            }
        }
    }

    impl PayloadFile for UserFile {
        type Wire = User;

        fn into_wire(self) -> User {
            User {
                id: self.id,
                user_name: self.user_name,
                display_name: self.display_name,
                active: self.active,
                emails: refs(self.emails),
                groups: refs(self.groups),
                entitlements: refs(self.entitlements),
            }
        }
    }

    impl From<&Group> for GroupFile {
        fn from(g: &Group) -> Self {
            GroupFile {
                id: g.id.clone(),
                display_name: g.display_name.clone(),
                members: entries(&g.members),
                entitlements: entries(&g.entitlements),
            }
        }
    }

    impl PayloadFile for GroupFile {
        type Wire = Group;

        fn into_wire(self) -> Group {
            Group {
                id: self.id,
                display_name: self.display_name,
                members: refs(self.members),
                entitlements: refs(self.entitlements),
            }
        }
    }

    impl From<&ServicePrincipal> for ServicePrincipalFile {
        fn from(sp: &ServicePrincipal) -> Self {
            ServicePrincipalFile {
                id: sp.id.clone(),
                application_id: sp.application_id.clone(),
                display_name: sp.display_name.clone(),
                active: sp.active,
            }
        }
    }

    impl PayloadFile for ServicePrincipalFile {
        type Wire = ServicePrincipal;

        fn into_wire(self) -> ServicePrincipal {
            ServicePrincipal {
                id: self.id,
                application_id: self.application_id,
                display_name: self.display_name,
                active: self.active,
            }
        }
    }

    impl Resource {
        /// A cluster, to recreate.
        pub fn cluster(c: &Cluster) -> Self {
            Resource::cluster_record(c.into())
        }

        /// An instance pool, to recreate.
        pub fn instance_pool(p: &InstancePool) -> Self {
            Resource::instance_pool_record(p.into())
        }

        /// A cluster policy, to recreate.
        pub fn cluster_policy(p: &ClusterPolicy) -> Self {
            Resource::cluster_policy_record(p.into())
        }

        /// A SQL warehouse, to recreate.
        pub fn warehouse(w: &Warehouse) -> Self {
            Resource::warehouse_record(w.into())
        }

        /// A mount, to recreate: stored by its mount point's components.
        pub fn mount(m: &Mount) -> Self {
            Resource::mount_record(m.into())
        }

        /// A user, for the principal mapping.
        pub fn user(u: &User) -> Self {
            Resource::user_record(u.into())
        }

        /// A group, for the principal mapping.
        pub fn group(g: &Group) -> Self {
            Resource::group_record(g.into())
        }

        /// A service principal, by application id, for the principal mapping.
        pub fn service_principal(sp: &ServicePrincipal) -> Self {
            Resource::service_principal_record(sp.into())
        }
    }
}
