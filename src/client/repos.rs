//! Git folders (`/api/2.0/repos`): list (paged with `next_page_token`), get, create, update
//! to a branch or tag, delete.

use super::transport::Call;
use super::{check_page, Client, ClientError};
use crate::model::repo::{Repo, SparseCheckout};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Repos API calls.
#[derive(Debug, Clone, Copy)]
pub struct ReposApi<'a> {
    c: &'a Client,
}

/// The body of a repo creation.
#[derive(Debug, Clone, Serialize)]
pub struct CreateRepo {
    /// Remote URL.
    pub url: String,
    /// Provider (any case).
    pub provider: String,
    /// Workspace path (`/Repos/<folder>/<name>` or a Git folder path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Sparse checkout (cannot be switched on later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_checkout: Option<SparseCheckout>,
    /// Git credential to use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_credential_id: Option<i64>,
}

/// What to check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// A branch.
    Branch(String),
    /// A tag (detached HEAD).
    Tag(String),
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    repos: Vec<Repo>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl<'a> ReposApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        ReposApi { c }
    }

    /// Every repo under `path_prefix` (all pages).
    pub async fn list(&self, path_prefix: Option<&str>) -> Result<Vec<Repo>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let call = Call::get("/api/2.0/repos")
                .query_opt("path_prefix", path_prefix)
                .query_opt("next_page_token", token.as_deref())
                .object(format!("path_prefix={}", path_prefix.unwrap_or("")));
            let describe = call.describe();
            let r: ListResponse = self.c.transport().json(call).await?;
            out.extend(r.repos);
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

    /// One repo.
    pub async fn get(&self, id: i64) -> Result<Repo, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/repos/{id}")
                    .path(format!("/api/2.0/repos/{id}"))
                    .object(format!("repo_id={id}")),
            )
            .await
    }

    /// Creates (clones) a repo.
    pub async fn create(&self, req: &CreateRepo) -> Result<Repo, ClientError> {
        self.c
            .transport()
            .json(Call::post("/api/2.0/repos").json(req).object(format!(
                "path={} url={}",
                req.path.as_deref().unwrap_or(""),
                req.url
            )))
            .await
    }

    /// Checks out a branch or tag (safe to replay).
    pub async fn update(&self, id: i64, to: &Checkout) -> Result<(), ClientError> {
        let body = match to {
            Checkout::Branch(b) => serde_json::json!({ "branch": b }),
            Checkout::Tag(t) => serde_json::json!({ "tag": t }),
        };
        self.c
            .transport()
            .send(
                Call::patch("/api/2.0/repos/{id}")
                    .path(format!("/api/2.0/repos/{id}"))
                    .json(&body)
                    .safe_to_retry()
                    .object(format!("repo_id={id}")),
            )
            .await
    }

    /// Deletes a repo.
    pub async fn delete(&self, id: i64) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/repos/{id}")
                    .path(format!("/api/2.0/repos/{id}"))
                    .object(format!("repo_id={id}")),
            )
            .await
    }
}
