//! Object permissions (`/api/2.0/permissions/{request_object_type}/{id}`): get, set (PUT,
//! replaces the direct ACL), update (PATCH, merges), permission levels.

use super::transport::Call;
use super::{encode_segment, Client, ClientError};
use crate::model::permissions::{AccessControlRequest, ObjectPermissions};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Permissions API calls.
#[derive(Debug, Clone, Copy)]
pub struct PermissionsApi<'a> {
    c: &'a Client,
}

/// One level an object type supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionLevel {
    /// e.g. `CAN_MANAGE`.
    pub permission_level: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Deserialize)]
struct LevelsResponse {
    #[serde(default)]
    permission_levels: Vec<PermissionLevel>,
}

fn path(object_type: &str, id: &str) -> String {
    format!("/api/2.0/permissions/{object_type}/{}", encode_segment(id))
}

impl<'a> PermissionsApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        PermissionsApi { c }
    }

    /// The ACL of an object (`object_type` as in the path: `notebooks`, `jobs`, …), inherited
    /// entries included.
    pub async fn get(&self, object_type: &str, id: &str) -> Result<ObjectPermissions, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/permissions/{type}/{id}")
                    .path(path(object_type, id))
                    .object(format!("{object_type}/{id}")),
            )
            .await
    }

    /// Replaces the direct ACL (safe to replay).
    pub async fn set(
        &self,
        object_type: &str,
        id: &str,
        acl: &[AccessControlRequest],
    ) -> Result<ObjectPermissions, ClientError> {
        self.c
            .transport()
            .json(
                Call::put("/api/2.0/permissions/{type}/{id}")
                    .path(path(object_type, id))
                    .json(&json!({ "access_control_list": acl }))
                    .safe_to_retry()
                    .object(format!("{object_type}/{id}")),
            )
            .await
    }

    /// Adds entries to the ACL (safe to replay).
    pub async fn update(
        &self,
        object_type: &str,
        id: &str,
        acl: &[AccessControlRequest],
    ) -> Result<ObjectPermissions, ClientError> {
        self.c
            .transport()
            .json(
                Call::patch("/api/2.0/permissions/{type}/{id}")
                    .path(path(object_type, id))
                    .json(&json!({ "access_control_list": acl }))
                    .safe_to_retry()
                    .object(format!("{object_type}/{id}")),
            )
            .await
    }

    /// The levels an object supports.
    pub async fn levels(
        &self,
        object_type: &str,
        id: &str,
    ) -> Result<Vec<PermissionLevel>, ClientError> {
        let r: LevelsResponse = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/permissions/{type}/{id}/permissionLevels")
                    .path(format!("{}/permissionLevels", path(object_type, id)))
                    .object(format!("{object_type}/{id}")),
            )
            .await?;
        Ok(r.permission_levels)
    }
}
