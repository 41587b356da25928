//! The bundle format of secrets (spec §6.3): the `meta` of `secret_scope` and `secret`
//! records, a scope's payload file ([`ScopeFile`]), and the resources export writes for them.
//! Values are only ever stored sealed.

use crate::bundle::inventory::Record;
use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::records::{check_secret_name, Out, RecordContext};
use crate::bundle::resource::{Content, Part, Resource};
use crate::kinds::format::{meta_value, payload_part};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a scope keeps its values, as §6.3 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// Databricks-managed.
    #[serde(rename = "DATABRICKS")]
    Databricks,
    /// Backed by an Azure Key Vault.
    #[serde(rename = "AZURE_KEYVAULT")]
    AzureKeyvault,
}

/// One entry of a scope's ACL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeAcl {
    /// A user, group or service principal name.
    pub principal: String,
    /// `READ`, `WRITE` or `MANAGE`.
    pub permission: String,
}

/// `meta` of a `secret_scope` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeMeta {
    /// Where the scope keeps its values.
    pub backend_type: Backend,
    /// The Key Vault of an `AZURE_KEYVAULT` scope (`resource_id`, `dns_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyvault_metadata: Option<Value>,
    /// The scope's ACL.
    pub acls: Vec<ScopeAcl>,
    /// The names of its keys.
    pub keys: Vec<String>,
}

/// How a secret's value was given to the API, as §6.3 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// A `string_value`: the sealed bytes are its UTF-8.
    #[serde(rename = "string")]
    String,
    /// A `bytes_value`: the sealed bytes are the decoded bytes.
    #[serde(rename = "bytes")]
    Bytes,
}

/// `meta` of a `secret` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    /// The scope's name.
    pub scope: String,
    /// The key.
    pub key: String,
    /// How the value was given.
    pub encoding: Encoding,
    /// When the value was last set, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
}

/// `secrets/⟨scope⟩/scope.json` (§6.3): a scope's names and ACLs, never its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeFile {
    /// The scope's name.
    pub name: String,
    /// Where it keeps its values.
    pub backend_type: Backend,
    /// The Key Vault of an `AZURE_KEYVAULT` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyvault_metadata: Option<KeyVaultFile>,
    /// Its ACL, sorted by principal, then level (`READ`, `WRITE`, `MANAGE`).
    pub acls: Vec<ScopeAcl>,
    /// Its keys, sorted by name.
    pub keys: Vec<ScopeKey>,
}

/// `keyvault_metadata` of a [`ScopeFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVaultFile {
    /// The vault's Azure resource id.
    pub resource_id: String,
    /// The vault's DNS name.
    pub dns_name: String,
}

/// One key of a [`ScopeFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeKey {
    /// The key's name.
    pub key: String,
    /// When its value was last set, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
}

impl Resource {
    /// A secret scope record from its file, and the sealed digest index when any value is
    /// sealed (§8.2).
    fn secret_scope_record(file: ScopeFile, sealed_index: Option<Vec<u8>>) -> Self {
        let meta = ScopeMeta {
            backend_type: file.backend_type,
            keyvault_metadata: file
                .keyvault_metadata
                .as_ref()
                .map(|kv| serde_json::to_value(kv).expect("Key Vault metadata serializes")),
            acls: file.acls.clone(),
            keys: file.keys.iter().map(|k| k.key.clone()).collect(),
        };
        let mut r = Resource::new(Kind::SecretScope, &file.name, &file.name, meta_value(&meta));
        r.parts.push(payload_part(
            LogicalPath::file(segs(["secrets", &file.name, "scope"]), Some("json")),
            &file,
        ));
        if let Some(index) = sealed_index {
            r.parts.push(Part {
                path: LogicalPath::file(segs(["secrets", &file.name, "digests"]), Some("json.age")),
                content: Content::Bytes(index),
                sealed: true,
            });
        }
        r
    }

    /// A secret record: its sealed value when it could be read, else no stored file.
    fn secret_record(
        scope: &str,
        key: &ScopeKey,
        encoding: Encoding,
        sealed_value: Option<Vec<u8>>,
    ) -> Self {
        let id = format!("{scope}/{}", key.key);
        let meta = SecretMeta {
            scope: scope.to_string(),
            key: key.key.clone(),
            encoding,
            last_updated_timestamp: key.last_updated_timestamp,
        };
        let mut r = Resource::new(Kind::Secret, &id, &id, meta_value(&meta));
        if let Some(v) = sealed_value {
            r.parts.push(Part {
                path: LogicalPath::file(segs(["secrets", scope, "values", &key.key]), Some("age")),
                content: Content::Bytes(v),
                sealed: true,
            });
        }
        r
    }
}

/// The rules of §6.3 for a `secret_scope` record (E307).
pub(crate) fn check_scope(r: &Record, out: &mut Out) {
    out.result(r, check_secret_name("scope", &r.name));
    if r.source_id != r.name {
        out.invalid(r, "source_id differs from the scope name");
    }
    for k in r.meta.get("keys").and_then(Value::as_array).into_iter() {
        for k in k {
            match k.as_str().or_else(|| k.get("key").and_then(Value::as_str)) {
                Some(k) => out.result(r, check_secret_name("meta.keys: key", k)),
                None => out.invalid(r, "meta.keys holds something not a key name"),
            }
        }
    }
}

/// The rules of §6.3 for a `secret` record: its name, and a scope record for it (E307).
pub(crate) fn check_secret(r: &Record, ctx: &RecordContext<'_>, out: &mut Out) {
    let (Some(scope), Some(key)) = (r.meta_str("scope"), r.meta_str("key")) else {
        out.invalid(r, "meta.scope or meta.key is not a string");
        return;
    };
    out.result(r, check_secret_name("scope", scope));
    out.result(r, check_secret_name("key", key));
    if r.name != format!("{scope}/{key}") {
        out.invalid(
            r,
            format!("name is not meta.scope/meta.key ({scope}/{key})"),
        );
    }
    if !ctx.scopes.contains(scope) {
        out.invalid(r, format!("its scope {scope:?} has no secret_scope record"));
    }
}

/// The API's side: conversions between the secrets API's types and the format's, and the
/// constructors export calls with what the API returned.
mod wire {
    use super::{Backend, Encoding, KeyVaultFile, ScopeAcl, ScopeFile, ScopeKey};
    use crate::bundle::resource::Resource;
    use crate::kinds::format::PayloadFile;
    use crate::model::secret::{
        AclItem, AclPermission, KeyVaultMetadata, ScopeBackend, SecretMetadata, SecretScope,
        ValueEncoding,
    };

    impl From<ScopeBackend> for Backend {
        fn from(b: ScopeBackend) -> Self {
            match b {
                ScopeBackend::Databricks => Backend::Databricks,
                ScopeBackend::AzureKeyvault => Backend::AzureKeyvault,
            }
        }
    }

    impl From<Backend> for ScopeBackend {
        fn from(b: Backend) -> Self {
            match b {
                Backend::Databricks => ScopeBackend::Databricks,
                Backend::AzureKeyvault => ScopeBackend::AzureKeyvault,
            }
        }
    }

    impl From<ValueEncoding> for Encoding {
        fn from(e: ValueEncoding) -> Self {
            match e {
                ValueEncoding::String => Encoding::String,
                ValueEncoding::Bytes => Encoding::Bytes,
            }
        }
    }

    impl From<Encoding> for ValueEncoding {
        fn from(e: Encoding) -> Self {
            match e {
                Encoding::String => ValueEncoding::String,
                Encoding::Bytes => ValueEncoding::Bytes,
            }
        }
    }

    fn permission_name(p: AclPermission) -> &'static str {
        match p {
            AclPermission::Read => "READ",
            AclPermission::Write => "WRITE",
            AclPermission::Manage => "MANAGE",
        }
    }

    impl ScopeAcl {
        /// The API's ACL entry; `None` when `permission` is not `READ`, `WRITE` or `MANAGE`.
        pub fn to_wire(&self) -> Option<AclItem> {
            let permission = match self.permission.as_str() {
                "READ" => AclPermission::Read,
                "WRITE" => AclPermission::Write,
                "MANAGE" => AclPermission::Manage,
                _ => return None,
            };
            Some(AclItem {
                principal: self.principal.clone(),
                permission,
            })
        }
    }

    impl From<&SecretMetadata> for ScopeKey {
        fn from(k: &SecretMetadata) -> Self {
            ScopeKey {
                key: k.key.clone(),
                last_updated_timestamp: k.last_updated_timestamp,
            }
        }
    }

    impl ScopeFile {
        /// The file of a scope with its ACL and keys, as the secrets API listed them: the ACL
        /// sorted by principal and level, the keys by name.
        pub fn from_wire(scope: &SecretScope, acls: &[AclItem], keys: &[SecretMetadata]) -> Self {
            let mut acls = acls.to_vec();
            acls.sort();
            let mut keys = keys.to_vec();
            keys.sort_by(|a, b| a.key.cmp(&b.key));
            ScopeFile {
                name: scope.name.clone(),
                backend_type: scope.backend_type.into(),
                keyvault_metadata: scope.keyvault_metadata.as_ref().map(|kv| KeyVaultFile {
                    resource_id: kv.resource_id.clone(),
                    dns_name: kv.dns_name.clone(),
                }),
                acls: acls
                    .iter()
                    .map(|a| ScopeAcl {
                        principal: a.principal.clone(),
                        permission: permission_name(a.permission).to_string(),
                    })
                    .collect(),
                keys: keys.iter().map(ScopeKey::from).collect(),
            }
        }
    }

    impl PayloadFile for ScopeFile {
        /// The scope, its ACL (entries with a level this version does not know left out) and
        /// its keys.
        type Wire = (SecretScope, Vec<AclItem>, Vec<SecretMetadata>);

        fn into_wire(self) -> Self::Wire {
            let scope = SecretScope {
                name: self.name,
                backend_type: self.backend_type.into(),
                keyvault_metadata: self.keyvault_metadata.map(|kv| KeyVaultMetadata {
                    resource_id: kv.resource_id,
                    dns_name: kv.dns_name,
                }),
            };
            let acls = self.acls.iter().filter_map(ScopeAcl::to_wire).collect();
            let keys = self
                .keys
                .into_iter()
                .map(|k| SecretMetadata {
                    key: k.key,
                    last_updated_timestamp: k.last_updated_timestamp,
                })
                .collect();
            (scope, acls, keys)
        }
    }

    impl Resource {
        /// A secret scope: names and ACLs (never values), and the sealed digest index when
        /// any value is sealed (§8.2).
        pub fn secret_scope(
            scope: &SecretScope,
            acls: &[AclItem],
            keys: &[SecretMetadata],
            sealed_index: Option<Vec<u8>>,
        ) -> Self {
            Resource::secret_scope_record(ScopeFile::from_wire(scope, acls, keys), sealed_index)
        }

        /// A secret: its sealed value when it could be read, else no stored file.
        pub fn secret(
            scope: &str,
            key: &SecretMetadata,
            encoding: ValueEncoding,
            sealed_value: Option<Vec<u8>>,
        ) -> Self {
            Resource::secret_record(scope, &ScopeKey::from(key), encoding.into(), sealed_value)
        }
    }
}
