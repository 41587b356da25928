//! Object permissions (`/api/2.0/permissions/{type}/{id}`).

use serde::{Deserialize, Serialize};

/// The kind of principal an access-control entry names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalRef {
    /// A user, by user name (email).
    UserName(String),
    /// A group, by display name.
    GroupName(String),
    /// A service principal, by application id.
    ServicePrincipalName(String),
}

impl PrincipalRef {
    /// The principal's name, whatever its kind.
    pub fn name(&self) -> &str {
        match self {
            PrincipalRef::UserName(n)
            | PrincipalRef::GroupName(n)
            | PrincipalRef::ServicePrincipalName(n) => n,
        }
    }
}

/// One level held by a principal, possibly inherited.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permission {
    /// Level, e.g. `CAN_MANAGE`.
    pub permission_level: String,
    /// True when inherited from a parent object.
    #[serde(default)]
    pub inherited: bool,
    /// Where it is inherited from, e.g. `["/directories/123"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherited_from_object: Option<Vec<String>>,
}

/// One principal's entry in a GET response.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessControl {
    /// Who.
    #[serde(flatten)]
    pub principal: PrincipalRef,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The levels held.
    #[serde(default)]
    pub all_permissions: Vec<Permission>,
}

/// One entry of a PUT/PATCH request body.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccessControlRequest {
    /// Who.
    #[serde(flatten)]
    pub principal: PrincipalRef,
    /// Level.
    pub permission_level: String,
}

/// The body of a permissions GET/PUT/PATCH response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPermissions {
    /// `/{request_object_type}/{id}`.
    pub object_id: String,
    /// Singular object type, e.g. `notebook`.
    pub object_type: String,
    /// Entries, inherited ones included.
    #[serde(default)]
    pub access_control_list: Vec<AccessControl>,
}

impl ObjectPermissions {
    /// The directly granted (non-inherited) entries, as a replayable request list, sorted.
    pub fn direct(&self) -> Vec<AccessControlRequest> {
        let mut out: Vec<AccessControlRequest> = self
            .access_control_list
            .iter()
            .flat_map(|ac| {
                ac.all_permissions
                    .iter()
                    .filter(|p| !p.inherited)
                    .map(move |p| AccessControlRequest {
                        principal: ac.principal.clone(),
                        permission_level: p.permission_level.clone(),
                    })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The permission object types dbxport moves: `(request path segment, singular response type)`.
pub const OBJECT_TYPES: [(&str, &str); 9] = [
    ("notebooks", "notebook"),
    ("directories", "directory"),
    ("files", "file"),
    ("repos", "repo"),
    ("jobs", "job"),
    ("registered-models", "registered-model"),
    ("clusters", "cluster"),
    ("cluster-policies", "cluster-policy"),
    ("instance-pools", "instance-pool"),
];

/// The request path segment of `OBJECT_TYPES` equal to `name`, as a `'static` string (so that
/// what holds one per object holds no copy of it).
pub fn request_type(name: &str) -> Option<&'static str> {
    OBJECT_TYPES.iter().map(|(r, _)| *r).find(|r| *r == name)
}

/// The permission levels valid for a request object type, in ascending order of power.
pub fn levels_for(request_object_type: &str) -> &'static [&'static str] {
    match request_object_type {
        "notebooks" | "directories" | "files" | "repos" => {
            &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"]
        }
        "jobs" => &["CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"],
        "registered-models" => &[
            "CAN_READ",
            "CAN_EDIT",
            "CAN_MANAGE_STAGING_VERSIONS",
            "CAN_MANAGE_PRODUCTION_VERSIONS",
            "CAN_MANAGE",
        ],
        "clusters" => &["CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"],
        "cluster-policies" => &["CAN_USE"],
        "instance-pools" => &["CAN_ATTACH_TO", "CAN_MANAGE"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_shape() {
        let v = json!({"object_id": "/jobs/1", "object_type": "job", "access_control_list": [
            {"user_name": "a@x", "all_permissions": [{"permission_level": "IS_OWNER", "inherited": false}]},
            {"group_name": "admins", "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": ["/jobs/"]}]}
        ]});
        let p: ObjectPermissions = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.direct().len(), 1);
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }
}
