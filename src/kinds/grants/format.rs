//! The bundle format of table ACLs (spec §6.4): the `meta` of `hive_grants` and `uc_grants`
//! records, their payload files ([`HiveGrantsFile`], [`UcGrantsFile`]), and the resources
//! export writes for them.

use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::resource::Resource;
use crate::kinds::format::{meta_value, payload_part};
use crate::model::Kind;
use serde::{Deserialize, Serialize};

/// `meta` of a `hive_grants` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiveGrantsMeta {
    /// The object's type, as a grant row spells it ([`HiveObject`]).
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

/// `grants/hive/⟨object type⟩[/⟨object key⟩].json` (§6.4): the legacy table ACL grants on one
/// object, one `SHOW GRANTS` row each, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HiveGrantsFile(pub Vec<HiveGrantRow>);

/// One grant of a [`HiveGrantsFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiveGrantRow {
    /// The user, group or service principal holding it.
    pub principal: String,
    /// `SELECT`, `MODIFY`, `OWN`, `DENIED_SELECT`, … (uppercase).
    pub action_type: String,
    /// What it is on.
    pub object_type: HiveObject,
    /// The object's plain dotted name (`sales.orders`); empty for the catalog, `ANY FILE`
    /// and `ANONYMOUS FUNCTION`.
    pub object_key: String,
}

/// The type of object a Hive grant is on, as a [`HiveGrantRow`] and `meta.object_type` spell
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiveObject {
    /// The whole catalog.
    #[serde(rename = "CATALOG")]
    Catalog,
    /// A database (schema).
    #[serde(rename = "DATABASE")]
    Database,
    /// A table.
    #[serde(rename = "TABLE")]
    Table,
    /// A view.
    #[serde(rename = "VIEW")]
    View,
    /// A function.
    #[serde(rename = "FUNCTION")]
    Function,
    /// `ANY FILE`.
    #[serde(rename = "ANY_FILE")]
    AnyFile,
    /// `ANONYMOUS FUNCTION`.
    #[serde(rename = "ANONYMOUS_FUNCTION")]
    AnonymousFunction,
}

impl HiveObject {
    /// The spelling of the format (`CATALOG`, `ANY_FILE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HiveObject::Catalog => "CATALOG",
            HiveObject::Database => "DATABASE",
            HiveObject::Table => "TABLE",
            HiveObject::View => "VIEW",
            HiveObject::Function => "FUNCTION",
            HiveObject::AnyFile => "ANY_FILE",
            HiveObject::AnonymousFunction => "ANONYMOUS_FUNCTION",
        }
    }
}

/// `grants/unity-catalog/⟨securable_type⟩/⟨full_name⟩.json` (§6.4): the direct grants on one
/// Unity Catalog securable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UcGrantsFile {
    /// The securable's type, lowercase (`catalog`, `schema`, `table`, …).
    pub securable_type: String,
    /// Its full name (`main.sales`).
    pub full_name: String,
    /// Who holds which privileges.
    #[serde(default)]
    pub privilege_assignments: Vec<UcAssignment>,
}

/// One principal's privileges in a [`UcGrantsFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UcAssignment {
    /// The principal.
    pub principal: String,
    /// Its privileges (`USE_CATALOG`, `SELECT`, …).
    #[serde(default)]
    pub privileges: Vec<String>,
}

impl Resource {
    /// The record of the legacy table ACL grants on one object, from its file (rows sorted
    /// already).
    fn hive_grants_record(object_type: HiveObject, object_key: &str, file: HiveGrantsFile) -> Self {
        let type_name = object_type.as_str();
        let name = if object_key.is_empty() {
            type_name.to_string()
        } else {
            format!("{type_name} {object_key}")
        };
        let meta = HiveGrantsMeta {
            object_type: type_name.to_string(),
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
            .push(payload_part(LogicalPath::file(path, Some("json")), &file));
        r
    }

    /// The record of the Unity Catalog grants on one securable, from its file.
    fn uc_grants_record(file: UcGrantsFile) -> Self {
        let name = format!("{} {}", file.securable_type, file.full_name);
        let meta = UcGrantsMeta {
            securable_type: file.securable_type.clone(),
            full_name: file.full_name.clone(),
        };
        let mut r = Resource::new(Kind::UcGrants, &name, &name, meta_value(&meta));
        r.parts.push(payload_part(
            LogicalPath::file(
                segs([
                    "grants",
                    "unity-catalog",
                    &file.securable_type,
                    &file.full_name,
                ]),
                Some("json"),
            ),
            &file,
        ));
        r
    }
}

/// The API's side: conversions between the grants files and the model's `HiveGrant` rows and
/// `UcGrants`, and the constructors export calls with what it read.
mod wire {
    use super::{HiveGrantRow, HiveGrantsFile, HiveObject, UcAssignment, UcGrantsFile};
    use crate::bundle::resource::Resource;
    use crate::kinds::format::PayloadFile;
    use crate::model::grants::{HiveGrant, HiveObjectType, PrivilegeAssignment, UcGrants};

    impl From<HiveObjectType> for HiveObject {
        fn from(t: HiveObjectType) -> Self {
            match t {
                HiveObjectType::Catalog => HiveObject::Catalog,
                HiveObjectType::Database => HiveObject::Database,
                HiveObjectType::Table => HiveObject::Table,
                HiveObjectType::View => HiveObject::View,
                HiveObjectType::Function => HiveObject::Function,
                HiveObjectType::AnyFile => HiveObject::AnyFile,
                HiveObjectType::AnonymousFunction => HiveObject::AnonymousFunction,
            }
        }
    }

    impl From<HiveObject> for HiveObjectType {
        fn from(t: HiveObject) -> Self {
            match t {
                HiveObject::Catalog => HiveObjectType::Catalog,
                HiveObject::Database => HiveObjectType::Database,
                HiveObject::Table => HiveObjectType::Table,
                HiveObject::View => HiveObjectType::View,
                HiveObject::Function => HiveObjectType::Function,
                HiveObject::AnyFile => HiveObjectType::AnyFile,
                HiveObject::AnonymousFunction => HiveObjectType::AnonymousFunction,
            }
        }
    }

    impl From<&[HiveGrant]> for HiveGrantsFile {
        /// The rows in the order given (export sorts them first).
        fn from(grants: &[HiveGrant]) -> Self {
            HiveGrantsFile(
                grants
                    .iter()
                    .map(|g| HiveGrantRow {
                        principal: g.principal.clone(),
                        action_type: g.action_type.clone(),
                        object_type: g.object_type.into(),
                        object_key: g.object_key.clone(),
                    })
                    .collect(),
            )
        }
    }

    impl PayloadFile for HiveGrantsFile {
        type Wire = Vec<HiveGrant>;

        fn into_wire(self) -> Vec<HiveGrant> {
            self.0
                .into_iter()
                .map(|g| HiveGrant {
                    principal: g.principal,
                    action_type: g.action_type,
                    object_type: g.object_type.into(),
                    object_key: g.object_key,
                })
                .collect()
        }
    }

    impl From<&UcGrants> for UcGrantsFile {
        fn from(g: &UcGrants) -> Self {
            UcGrantsFile {
                securable_type: g.securable_type.clone(),
                full_name: g.full_name.clone(),
                privilege_assignments: g
                    .privilege_assignments
                    .iter()
                    .map(|a| UcAssignment {
                        principal: a.principal.clone(),
                        privileges: a.privileges.clone(),
                    })
                    .collect(),
            }
        }
    }

    impl PayloadFile for UcGrantsFile {
        type Wire = UcGrants;

        fn into_wire(self) -> UcGrants {
            UcGrants {
                securable_type: self.securable_type,
                full_name: self.full_name,
                privilege_assignments: self
                    .privilege_assignments
                    .into_iter()
                    .map(|a| PrivilegeAssignment {
                        principal: a.principal,
                        privileges: a.privileges,
                    })
                    .collect(),
            }
        }
    }

    impl Resource {
        /// The legacy table ACL grants on one object, sorted (§6.4).
        pub fn hive_grants(
            object_type: HiveObjectType,
            object_key: &str,
            grants: &[HiveGrant],
        ) -> Self {
            // Sorted in the model's order (principal, action, type, key), as every bundle
            // before the format types was.
            let mut grants = grants.to_vec();
            grants.sort();
            Resource::hive_grants_record(
                object_type.into(),
                object_key,
                HiveGrantsFile::from(grants.as_slice()),
            )
        }

        /// The Unity Catalog grants on one securable (§6.4).
        pub fn uc_grants(g: &UcGrants) -> Self {
            Resource::uc_grants_record(UcGrantsFile::from(g))
        }
    }
}
