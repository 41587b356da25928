//! The bundle format of object permissions (spec §6.4): the `meta` of `permissions` records,
//! their payload file ([`PermissionsFile`]), and the resource export writes for one.

use crate::bundle::inventory::Record;
use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::records::{is_component, Out, PERMISSION_TYPES};
use crate::bundle::resource::Resource;
use crate::kinds::format::{meta_value, payload_part};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An object id as `meta` holds it: a string, or a number in bundles that wrote one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ObjectId {
    /// The id as text (what export writes).
    Text(String),
    /// A numeric id.
    Number(i64),
}

/// `meta` of a `permissions` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsMeta {
    /// The object type of the permissions API path (`notebooks`, `directories`, `files`,
    /// `repos`, `jobs`, `registered-models`).
    pub request_object_type: String,
    /// The object's id in the source workspace.
    pub object_id: ObjectId,
    /// The object's workspace path, job name or model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
}

/// `permissions/<request type>/⟨object id⟩.json` (§6.4): an object's access control list, as
/// the permissions API's GET answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsFile {
    /// `/<request type>/<id>`, as the API names the object.
    pub object_id: String,
    /// The singular object type (`notebook`, `job`, …).
    pub object_type: String,
    /// Its entries, inherited ones included.
    #[serde(default)]
    pub access_control_list: Vec<AccessControlEntry>,
}

/// One principal's entry of a [`PermissionsFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessControlEntry {
    /// Who: one of `user_name`, `group_name` or `service_principal_name`.
    #[serde(flatten)]
    pub principal: AclPrincipal,
    /// The principal's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The levels it holds.
    #[serde(default)]
    pub all_permissions: Vec<PermissionLevel>,
}

/// The principal of an [`AccessControlEntry`]: the field that names it says what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclPrincipal {
    /// `user_name`: a user, by user name (email).
    #[serde(rename = "user_name")]
    UserName(String),
    /// `group_name`: a group, by display name.
    #[serde(rename = "group_name")]
    GroupName(String),
    /// `service_principal_name`: a service principal, by application id.
    #[serde(rename = "service_principal_name")]
    ServicePrincipalName(String),
}

/// One level an [`AccessControlEntry`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionLevel {
    /// The level (`CAN_MANAGE`, `IS_OWNER`, …).
    pub permission_level: String,
    /// True when inherited from a parent object (only direct levels are replayed).
    #[serde(default)]
    pub inherited: bool,
    /// Where it is inherited from (`["/directories/123"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherited_from_object: Option<Vec<String>>,
}

impl Resource {
    /// The permissions record of one object, from its file.
    fn permissions_record(
        request_object_type: &str,
        object_id: &str,
        object_name: Option<&str>,
        file: PermissionsFile,
    ) -> Self {
        let meta = PermissionsMeta {
            request_object_type: request_object_type.to_string(),
            object_id: ObjectId::Text(object_id.to_string()),
            object_name: object_name.map(str::to_string),
        };
        let mut r = Resource::new(
            Kind::Permissions,
            object_id,
            format!("{request_object_type}/{object_id}"),
            meta_value(&meta),
        );
        r.parts.push(payload_part(
            LogicalPath::file(
                segs(["permissions", request_object_type, object_id]),
                Some("json"),
            ),
            &file,
        ));
        r
    }
}

/// The rules of §6.4 for a `permissions` record: a known object type and a clean id, both
/// of which go into a request path (E307).
pub(crate) fn check_record(r: &Record, out: &mut Out) {
    let t = r.meta_str("request_object_type").unwrap_or("");
    if !PERMISSION_TYPES.contains(&t) {
        out.invalid(
            r,
            format!("meta.request_object_type {t:?} is not one of {PERMISSION_TYPES:?}"),
        );
    }
    let id = match r.meta.get("object_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if !is_component(&id) {
        out.invalid(r, format!("meta.object_id {id:?} is not a plain id"));
    } else if r.name != format!("{t}/{id}") {
        out.invalid(r, "name is not meta.request_object_type/meta.object_id");
    }
}

/// The API's side: conversions between [`PermissionsFile`] and the permissions API's
/// `ObjectPermissions`, and the constructor export calls with what the API returned.
mod wire {
    use super::{AccessControlEntry, AclPrincipal, PermissionLevel, PermissionsFile};
    use crate::bundle::resource::Resource;
    use crate::kinds::format::PayloadFile;
    use crate::model::permissions::{AccessControl, ObjectPermissions, Permission, PrincipalRef};

    impl From<&ObjectPermissions> for PermissionsFile {
        fn from(p: &ObjectPermissions) -> Self {
            PermissionsFile {
                object_id: p.object_id.clone(),
                object_type: p.object_type.clone(),
                access_control_list: p
                    .access_control_list
                    .iter()
                    .map(|ac| AccessControlEntry {
                        principal: match &ac.principal {
                            PrincipalRef::UserName(n) => AclPrincipal::UserName(n.clone()),
                            PrincipalRef::GroupName(n) => AclPrincipal::GroupName(n.clone()),
                            PrincipalRef::ServicePrincipalName(n) => {
                                AclPrincipal::ServicePrincipalName(n.clone())
                            }
                        },
                        display_name: ac.display_name.clone(),
                        all_permissions: ac
                            .all_permissions
                            .iter()
                            .map(|l| PermissionLevel {
                                permission_level: l.permission_level.clone(),
                                inherited: l.inherited,
                                inherited_from_object: l.inherited_from_object.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            }
        }
    }

    impl PayloadFile for PermissionsFile {
        type Wire = ObjectPermissions;

        fn into_wire(self) -> ObjectPermissions {
            ObjectPermissions {
                object_id: self.object_id,
                object_type: self.object_type,
                access_control_list: self
                    .access_control_list
                    .into_iter()
                    .map(|e| AccessControl {
                        principal: match e.principal {
                            AclPrincipal::UserName(n) => PrincipalRef::UserName(n),
                            AclPrincipal::GroupName(n) => PrincipalRef::GroupName(n),
                            AclPrincipal::ServicePrincipalName(n) => {
                                PrincipalRef::ServicePrincipalName(n)
                            }
                        },
                        display_name: e.display_name,
                        all_permissions: e
                            .all_permissions
                            .into_iter()
                            .map(|l| Permission {
                                permission_level: l.permission_level,
                                inherited: l.inherited,
                                inherited_from_object: l.inherited_from_object,
                            })
                            .collect(),
                    })
                    .collect(),
            }
        }
    }

    impl Resource {
        /// The permissions of one object, from the permissions API's answer (§6.4).
        pub fn permissions(
            request_object_type: &str,
            object_id: &str,
            object_name: Option<&str>,
            perms: &ObjectPermissions,
        ) -> Self {
            Resource::permissions_record(
                request_object_type,
                object_id,
                object_name,
                PermissionsFile::from(perms),
            )
        }
    }
}
