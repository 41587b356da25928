//! Principals: users, groups, service principals (SCIM shapes, reduced to what dbxport uses).

use serde::{Deserialize, Serialize};

/// A SCIM `{ "value": ..., "display"?: ... }` reference or email entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScimRef {
    /// Value (id or email).
    pub value: String,
    /// Display text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// True for the primary email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// A workspace user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// SCIM id.
    pub id: String,
    /// User name (email).
    pub user_name: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Active flag.
    #[serde(default = "yes")]
    pub active: bool,
    /// Emails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ScimRef>,
    /// Groups the user belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ScimRef>,
    /// Entitlements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<ScimRef>,
}

/// A workspace group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// SCIM id.
    pub id: String,
    /// Group name.
    pub display_name: String,
    /// Members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ScimRef>,
    /// Entitlements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<ScimRef>,
}

/// A service principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// SCIM id.
    pub id: String,
    /// Application id (used as `service_principal_name` in ACLs).
    pub application_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Active flag.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}
