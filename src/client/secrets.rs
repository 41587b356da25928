//! Secrets (`/api/2.0/secrets/*`): scopes, keys, values and scope ACLs.
//!
//! Values travel only as [`Zeroizing`] buffers: `put` takes a borrowed slice and builds its
//! body in a buffer wiped on drop; `get` decodes into a wiped buffer. No value is ever logged
//! or placed in an error (the calls name scope and key only).

use super::transport::Call;
use super::{Client, ClientError};
use crate::model::secret::{
    AclItem, AclPermission, KeyVaultMetadata, SecretMetadata, SecretScope, ValueEncoding,
};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// Secrets API calls.
#[derive(Debug, Clone, Copy)]
pub struct SecretsApi<'a> {
    c: &'a Client,
}

#[derive(Deserialize)]
struct ScopesResponse {
    #[serde(default)]
    scopes: Vec<SecretScope>,
}

#[derive(Deserialize)]
struct SecretsResponse {
    #[serde(default)]
    secrets: Vec<SecretMetadata>,
}

#[derive(Deserialize)]
struct AclsResponse {
    #[serde(default)]
    items: Vec<AclItem>,
}

/// A scope to create.
#[derive(Debug, Clone, Default)]
pub struct CreateScope {
    /// Scope name.
    pub scope: String,
    /// `users` to give the `users` group MANAGE (else the creator gets it).
    pub initial_manage_principal: Option<String>,
    /// Key Vault backing (Azure only); `None` for a Databricks-backed scope.
    pub keyvault: Option<KeyVaultMetadata>,
}

fn acl_level(p: AclPermission) -> &'static str {
    match p {
        AclPermission::Read => "READ",
        AclPermission::Write => "WRITE",
        AclPermission::Manage => "MANAGE",
    }
}

impl<'a> SecretsApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        SecretsApi { c }
    }

    /// Every scope.
    pub async fn list_scopes(&self) -> Result<Vec<SecretScope>, ClientError> {
        let r: ScopesResponse = self
            .c
            .transport()
            .json(Call::get("/api/2.0/secrets/scopes/list"))
            .await?;
        Ok(r.scopes)
    }

    /// Creates a scope.
    pub async fn create_scope(&self, req: &CreateScope) -> Result<(), ClientError> {
        let mut body = json!({ "scope": req.scope });
        if let Some(p) = &req.initial_manage_principal {
            body["initial_manage_principal"] = json!(p);
        }
        if let Some(kv) = &req.keyvault {
            body["scope_backend_type"] = json!("AZURE_KEYVAULT");
            body["backend_azure_keyvault"] =
                json!({ "resource_id": kv.resource_id, "dns_name": kv.dns_name });
        }
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/secrets/scopes/create")
                    .json(&body)
                    .object(format!("scope={}", req.scope)),
            )
            .await
    }

    /// Deletes a scope and everything in it.
    pub async fn delete_scope(&self, scope: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/secrets/scopes/delete")
                    .json(&json!({ "scope": scope }))
                    .object(format!("scope={scope}")),
            )
            .await
    }

    /// The keys of a scope (values are never listed).
    pub async fn list_secrets(&self, scope: &str) -> Result<Vec<SecretMetadata>, ClientError> {
        let r: SecretsResponse = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/secrets/list")
                    .query("scope", scope)
                    .object(format!("scope={scope}")),
            )
            .await?;
        Ok(r.secrets)
    }

    /// Stores a value (overwriting; safe to replay). `String` sends `string_value` (the bytes
    /// must be UTF-8), `Bytes` sends base64 `bytes_value`.
    pub async fn put(
        &self,
        scope: &str,
        key: &str,
        value: &[u8],
        encoding: ValueEncoding,
    ) -> Result<(), ClientError> {
        let what = format!("scope={scope} key={key}");
        let mut body = json!({ "scope": scope, "key": key });
        let field = match encoding {
            ValueEncoding::String => {
                let s = std::str::from_utf8(value).map_err(|_| ClientError::Protocol {
                    call: format!("POST /api/2.0/secrets/put {what}"),
                    message: "a string secret value must be UTF-8; store it as bytes".into(),
                })?;
                body["string_value"] = Value::String(s.to_string());
                "string_value"
            }
            ValueEncoding::Bytes => {
                let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
                body["bytes_value"] = Value::String(b64.as_str().to_string());
                "bytes_value"
            }
        };
        let bytes = super::secret_json(body, &[field]);
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/secrets/put")
                    .json_bytes(bytes)
                    .safe_to_retry()
                    .object(what),
            )
            .await
    }

    /// Reads a value (base64-decoded). Real workspaces refuse this outside notebooks
    /// (`PERMISSION_DENIED` / `BAD_REQUEST`).
    pub async fn get(&self, scope: &str, key: &str) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        #[derive(Deserialize)]
        struct Raw {
            value: Option<String>,
        }
        let call = Call::get("/api/2.0/secrets/get")
            .query("scope", scope)
            .query("key", key)
            .object(format!("scope={scope} key={key}"));
        let describe = call.describe();
        let f = self.c.transport().fetch(&call).await?;
        let raw: Raw = super::transport::decode_json(&describe, &f.body)?;
        let b64 = Zeroizing::new(raw.value.unwrap_or_default());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| ClientError::Decode {
                call: describe,
                message: "the secret value is not valid base64".into(),
            })?;
        Ok(Zeroizing::new(decoded))
    }

    /// Deletes one secret.
    pub async fn delete_secret(&self, scope: &str, key: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/secrets/delete")
                    .json(&json!({ "scope": scope, "key": key }))
                    .object(format!("scope={scope} key={key}")),
            )
            .await
    }

    /// The ACL of a scope.
    pub async fn list_acls(&self, scope: &str) -> Result<Vec<AclItem>, ClientError> {
        let r: AclsResponse = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/secrets/acls/list")
                    .query("scope", scope)
                    .object(format!("scope={scope}")),
            )
            .await?;
        Ok(r.items)
    }

    /// One principal's ACL entry.
    pub async fn get_acl(&self, scope: &str, principal: &str) -> Result<AclItem, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/secrets/acls/get")
                    .query("scope", scope)
                    .query("principal", principal)
                    .object(format!("scope={scope} principal={principal}")),
            )
            .await
    }

    /// Sets a principal's level (create or overwrite; safe to replay).
    pub async fn put_acl(
        &self,
        scope: &str,
        principal: &str,
        permission: AclPermission,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/secrets/acls/put")
                    .json(&json!({ "scope": scope, "principal": principal, "permission": acl_level(permission) }))
                    .safe_to_retry()
                    .object(format!("scope={scope} principal={principal}")),
            )
            .await
    }

    /// Removes a principal's entry. Safe to replay: a retry after a lost answer that finds
    /// the entry gone counts as done.
    pub async fn delete_acl(&self, scope: &str, principal: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/secrets/acls/delete")
                    .json(&json!({ "scope": scope, "principal": principal }))
                    .gone_means_done()
                    .object(format!("scope={scope} principal={principal}")),
            )
            .await
    }
}
