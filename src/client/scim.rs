//! Users, groups and service principals (`/api/2.0/preview/scim/v2/*`): the caller (`Me`), and
//! listings with SCIM paging (`startIndex`/`count`, stopping at `totalResults`).

use super::transport::Call;
use super::{encode_segment, Client, ClientError};
use crate::model::principal::{Group, ServicePrincipal, User};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// SCIM API calls.
#[derive(Debug, Clone, Copy)]
pub struct ScimApi<'a> {
    c: &'a Client,
}

/// Page size of SCIM listings.
pub const PAGE: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    #[serde(default = "Vec::new", rename = "Resources")]
    resources: Vec<T>,
    #[serde(default)]
    total_results: Option<usize>,
}

impl<'a> ScimApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        ScimApi { c }
    }

    async fn list<T: DeserializeOwned>(
        &self,
        route: &'static str,
        filter: Option<&str>,
    ) -> Result<Vec<T>, ClientError> {
        let mut out: Vec<T> = Vec::new();
        let mut start = 1usize;
        loop {
            let call = Call::get(route)
                .query("startIndex", start)
                .query("count", PAGE)
                .query_opt("filter", filter);
            let page: Page<T> = self.c.transport().json(call).await?;
            let n = page.resources.len();
            out.extend(page.resources);
            start += n;
            let done = n == 0 || page.total_results.is_some_and(|t| out.len() >= t);
            if done {
                return Ok(out);
            }
        }
    }

    /// The calling user (or service principal, as a user record).
    pub async fn me(&self) -> Result<User, ClientError> {
        self.c
            .transport()
            .json(Call::get("/api/2.0/preview/scim/v2/Me"))
            .await
    }

    /// Every user matching `filter` (SCIM filter syntax), all pages.
    pub async fn list_users(&self, filter: Option<&str>) -> Result<Vec<User>, ClientError> {
        self.list("/api/2.0/preview/scim/v2/Users", filter).await
    }

    /// One user by SCIM id.
    pub async fn get_user(&self, id: &str) -> Result<User, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/preview/scim/v2/Users/{id}")
                    .path(format!(
                        "/api/2.0/preview/scim/v2/Users/{}",
                        encode_segment(id)
                    ))
                    .object(format!("user_id={id}")),
            )
            .await
    }

    /// Every group matching `filter`, all pages.
    pub async fn list_groups(&self, filter: Option<&str>) -> Result<Vec<Group>, ClientError> {
        self.list("/api/2.0/preview/scim/v2/Groups", filter).await
    }

    /// One group by SCIM id.
    pub async fn get_group(&self, id: &str) -> Result<Group, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/preview/scim/v2/Groups/{id}")
                    .path(format!(
                        "/api/2.0/preview/scim/v2/Groups/{}",
                        encode_segment(id)
                    ))
                    .object(format!("group_id={id}")),
            )
            .await
    }

    /// Every service principal matching `filter`, all pages.
    pub async fn list_service_principals(
        &self,
        filter: Option<&str>,
    ) -> Result<Vec<ServicePrincipal>, ClientError> {
        self.list("/api/2.0/preview/scim/v2/ServicePrincipals", filter)
            .await
    }

    /// One service principal by SCIM id.
    pub async fn get_service_principal(&self, id: &str) -> Result<ServicePrincipal, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/preview/scim/v2/ServicePrincipals/{id}")
                    .path(format!(
                        "/api/2.0/preview/scim/v2/ServicePrincipals/{}",
                        encode_segment(id)
                    ))
                    .object(format!("service_principal_id={id}")),
            )
            .await
    }
}
