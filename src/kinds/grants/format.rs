//! The bundle format of table ACLs (spec §6.4): the `meta` of `hive_grants` and `uc_grants`
//! records, and the resources export writes for them.

use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::resource::{json_part, Resource};
use crate::kinds::format::meta_value;
use crate::model::grants::{HiveGrant, HiveObjectType, UcGrants};
use crate::model::Kind;
use serde::{Deserialize, Serialize};

/// `meta` of a `hive_grants` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiveGrantsMeta {
    /// `CATALOG`, `SCHEMA`, `TABLE`, `VIEW`, `FUNCTION`, `ANY FILE` or `ANONYMOUS FUNCTION`.
    pub object_type: String,
    /// The object's name (`schema.table`); empty for the catalog and the object-less types.
    pub object_key: String,
}

/// `meta` of a `uc_grants` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UcGrantsMeta {
    /// The securable's type (`catalog`, `schema`, `table`, …).
    pub securable_type: String,
    /// Its full name.
    pub full_name: String,
}

impl Resource {
    /// The legacy table ACL grants on one object, sorted.
    pub fn hive_grants(
        object_type: HiveObjectType,
        object_key: &str,
        grants: &[HiveGrant],
    ) -> Self {
        let type_name = serde_json::to_value(object_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let name = if object_key.is_empty() {
            type_name.clone()
        } else {
            format!("{type_name} {object_key}")
        };
        let mut grants = grants.to_vec();
        grants.sort();
        let meta = HiveGrantsMeta {
            object_type: type_name.clone(),
            object_key: object_key.to_string(),
        };
        let mut r = Resource::new(Kind::HiveGrants, &name, &name, meta_value(&meta));
        let lower = type_name.to_lowercase();
        let path = if object_key.is_empty() {
            segs(["grants", "hive", &lower])
        } else {
            segs(["grants", "hive", &lower, object_key])
        };
        r.parts
            .push(json_part(LogicalPath::file(path, Some("json")), &grants));
        r
    }

    /// The Unity Catalog grants on one securable.
    pub fn uc_grants(g: &UcGrants) -> Self {
        let name = format!("{} {}", g.securable_type, g.full_name);
        let meta = UcGrantsMeta {
            securable_type: g.securable_type.clone(),
            full_name: g.full_name.clone(),
        };
        let mut r = Resource::new(Kind::UcGrants, &name, &name, meta_value(&meta));
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["grants", "unity-catalog", &g.securable_type, &g.full_name]),
                Some("json"),
            ),
            g,
        ));
        r
    }
}
