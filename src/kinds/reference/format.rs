//! The bundle format of reference-only records (spec §6.6): their `meta`, and the resources
//! export writes for them — each the object as its API returns it.

use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::resource::{json_part, Resource};
use crate::kinds::format::meta_value;
use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
use crate::model::principal::{Group, ServicePrincipal, User};
use crate::model::Kind;
use serde::{Deserialize, Serialize};

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

impl Resource {
    fn reference(kind: Kind, folder: &str, id: &str, name: &str, value: &impl Serialize) -> Self {
        let mut r = Resource::new(kind, id, name, meta_value(&ReferenceMeta::new(id, name)));
        r.parts.push(json_part(
            LogicalPath::file(segs(["reference", folder, id]), Some("json")),
            value,
        ));
        r
    }

    /// A cluster, to recreate.
    pub fn cluster(c: &Cluster) -> Self {
        Self::reference(Kind::Cluster, "clusters", &c.cluster_id, &c.cluster_name, c)
    }

    /// An instance pool, to recreate.
    pub fn instance_pool(p: &InstancePool) -> Self {
        Self::reference(
            Kind::InstancePool,
            "instance-pools",
            &p.instance_pool_id,
            &p.instance_pool_name,
            p,
        )
    }

    /// A cluster policy, to recreate.
    pub fn cluster_policy(p: &ClusterPolicy) -> Self {
        Self::reference(
            Kind::ClusterPolicy,
            "cluster-policies",
            &p.policy_id,
            &p.name,
            p,
        )
    }

    /// A SQL warehouse, to recreate.
    pub fn warehouse(w: &Warehouse) -> Self {
        Self::reference(Kind::Warehouse, "warehouses", &w.id, &w.name, w)
    }

    /// A mount, to recreate: stored by its mount point's components.
    pub fn mount(m: &Mount) -> Self {
        let meta = ReferenceMeta {
            source: Some(m.source.clone()),
            ..ReferenceMeta::new(&m.mount_point, &m.mount_point)
        };
        let mut r = Resource::new(
            Kind::Mount,
            &m.mount_point,
            &m.mount_point,
            meta_value(&meta),
        );
        let mut s = segs(["reference", "mounts"]);
        s.extend(
            m.mount_point
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        );
        if s.len() == 2 {
            s.push("root".into());
        }
        r.parts
            .push(json_part(LogicalPath::file(s, Some("json")), m));
        r
    }

    fn principal(
        kind_folder: &str,
        principal_type: &str,
        id: &str,
        name: &str,
        value: &impl Serialize,
    ) -> Self {
        let meta = ReferenceMeta {
            principal_type: Some(principal_type.to_string()),
            ..ReferenceMeta::new(id, name)
        };
        let mut r = Resource::new(Kind::Principal, id, name, meta_value(&meta));
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["reference", "principals", kind_folder, name]),
                Some("json"),
            ),
            value,
        ));
        r
    }

    /// A user, for the principal mapping.
    pub fn user(u: &User) -> Self {
        Self::principal("users", "user", &u.id, &u.user_name, u)
    }

    /// A group, for the principal mapping.
    pub fn group(g: &Group) -> Self {
        Self::principal("groups", "group", &g.id, &g.display_name, g)
    }

    /// A service principal, by application id, for the principal mapping.
    pub fn service_principal(sp: &ServicePrincipal) -> Self {
        Self::principal(
            "service-principals",
            "service_principal",
            &sp.id,
            &sp.application_id,
            sp,
        )
    }
}
