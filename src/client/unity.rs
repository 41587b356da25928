//! Unity Catalog grants (`/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}`):
//! the direct grants of one securable (following `next_page_token`) and their update.

use super::transport::Call;
use super::{check_page, encode_path, Client, ClientError};
use crate::model::grants::{PrivilegeAssignment, UcGrants};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;

/// Unity Catalog API calls.
#[derive(Debug, Clone, Copy)]
pub struct UnityApi<'a> {
    c: &'a Client,
}

/// One principal's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsChange {
    /// Principal.
    pub principal: String,
    /// Privileges to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Privileges to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Deserialize)]
struct GrantsResponse {
    #[serde(default)]
    privilege_assignments: Vec<PrivilegeAssignment>,
    #[serde(default)]
    next_page_token: Option<String>,
}

fn path(securable_type: &str, full_name: &str) -> String {
    format!(
        "/api/2.1/unity-catalog/permissions/{}/{}",
        securable_type.to_ascii_lowercase(),
        encode_path(full_name)
    )
}

impl<'a> UnityApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        UnityApi { c }
    }

    /// The direct grants on a securable (`catalog`, `schema`, `table`, …), all pages.
    pub async fn get_grants(
        &self,
        securable_type: &str,
        full_name: &str,
    ) -> Result<UcGrants, ClientError> {
        let mut out = UcGrants {
            securable_type: securable_type.to_ascii_lowercase(),
            full_name: full_name.to_string(),
            privilege_assignments: Vec::new(),
        };
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let call = Call::get("/api/2.1/unity-catalog/permissions/{type}/{name}")
                .path(path(securable_type, full_name))
                .query_opt("page_token", token.as_deref())
                .object(format!("{securable_type} {full_name}"));
            let describe = call.describe();
            let r: GrantsResponse = self.c.transport().json(call).await?;
            out.privilege_assignments.extend(r.privilege_assignments);
            pages += 1;
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => {
                    check_page(&describe, pages, &mut seen, &t)?;
                    token = Some(t);
                }
                None => return Ok(out),
            }
        }
    }

    /// Applies changes; returns the grants afterwards. Safe to replay (adds and removes are
    /// set operations).
    pub async fn update_grants(
        &self,
        securable_type: &str,
        full_name: &str,
        changes: &[PermissionsChange],
    ) -> Result<Vec<PrivilegeAssignment>, ClientError> {
        let r: GrantsResponse = self
            .c
            .transport()
            .json(
                Call::patch("/api/2.1/unity-catalog/permissions/{type}/{name}")
                    .path(path(securable_type, full_name))
                    .json(&json!({ "changes": changes }))
                    .safe_to_retry()
                    .object(format!("{securable_type} {full_name}")),
            )
            .await?;
        Ok(r.privilege_assignments)
    }
}
