//! The bundle format of object permissions (spec §6.4): the `meta` of `permissions` records,
//! and the resource export writes for one.

use crate::bundle::inventory::Record;
use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::records::{is_component, Out, PERMISSION_TYPES};
use crate::bundle::resource::{json_part, Resource};
use crate::kinds::format::meta_value;
use crate::model::permissions::ObjectPermissions;
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

impl Resource {
    /// The permissions of one object, as the permissions API returned them.
    pub fn permissions(
        request_object_type: &str,
        object_id: &str,
        object_name: Option<&str>,
        perms: &ObjectPermissions,
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
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["permissions", request_object_type, object_id]),
                Some("json"),
            ),
            perms,
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
