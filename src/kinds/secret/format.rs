//! The bundle format of secrets (spec §6.3): the `meta` of `secret_scope` and `secret`
//! records, and the resources export writes for them. Values are only ever stored sealed.

use crate::bundle::inventory::Record;
use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::records::{check_secret_name, Out, RecordContext};
use crate::bundle::resource::{json_part, Content, Part, Resource};
use crate::kinds::format::meta_value;
use crate::model::secret::{AclItem, ScopeBackend, SecretMetadata, SecretScope, ValueEncoding};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

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

impl From<ScopeBackend> for Backend {
    fn from(b: ScopeBackend) -> Self {
        match b {
            ScopeBackend::Databricks => Backend::Databricks,
            ScopeBackend::AzureKeyvault => Backend::AzureKeyvault,
        }
    }
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

impl From<ValueEncoding> for Encoding {
    fn from(e: ValueEncoding) -> Self {
        match e {
            ValueEncoding::String => Encoding::String,
            ValueEncoding::Bytes => Encoding::Bytes,
        }
    }
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

impl Resource {
    /// A secret scope: names and ACLs (never values), and the sealed digest index when any
    /// value is sealed (§8.2).
    pub fn secret_scope(
        scope: &SecretScope,
        acls: &[AclItem],
        keys: &[SecretMetadata],
        sealed_index: Option<Vec<u8>>,
    ) -> Self {
        let mut acls = acls.to_vec();
        acls.sort();
        let mut keys = keys.to_vec();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        let meta = ScopeMeta {
            backend_type: scope.backend_type.into(),
            keyvault_metadata: scope
                .keyvault_metadata
                .as_ref()
                .map(|kv| serde_json::to_value(kv).expect("Key Vault metadata serializes")),
            acls: acls
                .iter()
                .map(|a| ScopeAcl {
                    principal: a.principal.clone(),
                    permission: json!(a.permission).as_str().unwrap_or_default().to_string(),
                })
                .collect(),
            keys: keys.iter().map(|k| k.key.clone()).collect(),
        };
        let mut r = Resource::new(
            Kind::SecretScope,
            &scope.name,
            &scope.name,
            meta_value(&meta),
        );
        let mut doc = Map::new();
        doc.insert("name".into(), json!(scope.name));
        doc.insert("backend_type".into(), json!(scope.backend_type));
        if let Some(kv) = &scope.keyvault_metadata {
            doc.insert("keyvault_metadata".into(), json!(kv));
        }
        doc.insert("acls".into(), json!(acls));
        doc.insert("keys".into(), json!(keys));
        r.parts.push(json_part(
            LogicalPath::file(segs(["secrets", &scope.name, "scope"]), Some("json")),
            &Value::Object(doc),
        ));
        if let Some(index) = sealed_index {
            r.parts.push(Part {
                path: LogicalPath::file(
                    segs(["secrets", &scope.name, "digests"]),
                    Some("json.age"),
                ),
                content: Content::Bytes(index),
                sealed: true,
            });
        }
        r
    }

    /// A secret: its sealed value when it could be read, else no stored file.
    pub fn secret(
        scope: &str,
        key: &SecretMetadata,
        encoding: ValueEncoding,
        sealed_value: Option<Vec<u8>>,
    ) -> Self {
        let id = format!("{scope}/{}", key.key);
        let meta = SecretMeta {
            scope: scope.to_string(),
            key: key.key.clone(),
            encoding: encoding.into(),
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
