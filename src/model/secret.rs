//! Secret scopes, keys, ACLs (`/api/2.0/secrets/*`).
//!
//! Secret *values* never appear in this module's types: they travel as sealed age files and are
//! held in memory only as [`zeroize::Zeroizing`] buffers by the code that must touch them.

use serde::{Deserialize, Serialize};

pub use super::command::{secret_read_command, SECRET_READ_SNIPPET};

/// The backend of a secret scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScopeBackend {
    /// Values stored by Databricks; replayable.
    Databricks,
    /// Values live in an Azure Key Vault; read-only through the API, must be recreated.
    AzureKeyvault,
}

/// Key Vault details of an `AZURE_KEYVAULT` scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVaultMetadata {
    /// Azure resource id of the vault.
    pub resource_id: String,
    /// The vault's DNS name.
    pub dns_name: String,
}

/// A scope as `secrets/scopes/list` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretScope {
    /// Scope name.
    pub name: String,
    /// Backend type.
    pub backend_type: ScopeBackend,
    /// Vault details (Key Vault scopes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyvault_metadata: Option<KeyVaultMetadata>,
}

/// A key as `secrets/list` returns it (values are never listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMetadata {
    /// Key name.
    pub key: String,
    /// Last update, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
}

/// A scope ACL level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AclPermission {
    /// Read values.
    Read,
    /// Read and write values.
    Write,
    /// Everything, including ACLs.
    Manage,
}

/// One scope ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclItem {
    /// User, group or service principal.
    pub principal: String,
    /// Level.
    pub permission: AclPermission,
}

/// Whether a stored secret value was put as a string or as bytes; replay uses the same field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueEncoding {
    /// `string_value` (UTF-8 text).
    String,
    /// `bytes_value` (arbitrary bytes).
    Bytes,
}

/// True when `name` is a valid scope or key name (`[A-Za-z0-9._-]`, 1..=128 characters).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
