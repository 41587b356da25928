//! Git credentials (`/api/2.0/git-credentials`): list, get, create, update, delete. The
//! provider token is write-only: it is sent on create/update and never returned.

use super::transport::Call;
use super::{Client, ClientError};
use crate::model::repo::GitCredential;
use age::secrecy::{ExposeSecret, SecretString};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

/// Git credentials API calls.
#[derive(Debug, Clone, Copy)]
pub struct GitCredentialsApi<'a> {
    c: &'a Client,
}

/// A credential to create or update.
#[derive(Debug, Clone)]
pub struct GitCredentialRequest {
    /// Provider.
    pub git_provider: String,
    /// User name at the provider.
    pub git_username: Option<String>,
    /// The provider's personal access token.
    pub personal_access_token: Option<SecretString>,
    /// Display name.
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    credentials: Vec<GitCredential>,
}

fn body(req: &GitCredentialRequest) -> Bytes {
    let mut v = json!({ "git_provider": req.git_provider });
    if let Some(u) = &req.git_username {
        v["git_username"] = json!(u);
    }
    if let Some(n) = &req.name {
        v["name"] = json!(n);
    }
    if let Some(t) = &req.personal_access_token {
        v["personal_access_token"] = Value::String(t.expose_secret().to_string());
    }
    super::secret_json(v, &["personal_access_token"])
}

impl<'a> GitCredentialsApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        GitCredentialsApi { c }
    }

    /// The caller's credentials.
    pub async fn list(&self) -> Result<Vec<GitCredential>, ClientError> {
        let r: ListResponse = self
            .c
            .transport()
            .json(Call::get("/api/2.0/git-credentials"))
            .await?;
        Ok(r.credentials)
    }

    /// One credential.
    pub async fn get(&self, id: i64) -> Result<GitCredential, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/git-credentials/{id}")
                    .path(format!("/api/2.0/git-credentials/{id}"))
                    .object(format!("credential_id={id}")),
            )
            .await
    }

    /// Creates a credential.
    pub async fn create(&self, req: &GitCredentialRequest) -> Result<GitCredential, ClientError> {
        self.c
            .transport()
            .json(
                Call::post("/api/2.0/git-credentials")
                    .json_bytes(body(req))
                    .object(format!("git_provider={}", req.git_provider)),
            )
            .await
    }

    /// Replaces a credential's fields (safe to replay).
    pub async fn update(&self, id: i64, req: &GitCredentialRequest) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::patch("/api/2.0/git-credentials/{id}")
                    .path(format!("/api/2.0/git-credentials/{id}"))
                    .json_bytes(body(req))
                    .safe_to_retry()
                    .object(format!("credential_id={id}")),
            )
            .await
    }

    /// Deletes a credential.
    pub async fn delete(&self, id: i64) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/git-credentials/{id}")
                    .path(format!("/api/2.0/git-credentials/{id}"))
                    .object(format!("credential_id={id}")),
            )
            .await
    }
}
