//! Secret scopes and values. Scopes, keys and ACLs are listed through the Secrets API. Values
//! are read with `secrets/get`; a workspace that refuses it (as real workspaces do for calls
//! from outside a notebook) is asked once, and then every value is read through command
//! execution on `--secrets-cluster` with the fixed, reviewed program
//! [`crate::model::command::SECRET_READ_SNIPPET`] (its context is destroyed afterwards).
//!
//! A value lives in memory only in a buffer wiped on drop, and is sealed to the bundle's
//! recipients before anything about it is written. Without recipients no value is read at
//! all: the keys are recorded, each with a note saying why its value is missing.

use crate::export::context::{reason, Ctx};
use crate::export::report::{Outcome, RecreateItem, RecreateKind};
use crate::export::stage::DoneEntry;
use crate::export::ExportError;
use crate::model::command::{secret_read_command, SecretReadOutput};
use crate::model::secret::{AclItem, ScopeBackend, SecretMetadata, SecretScope, ValueEncoding};
use crate::model::Kind;
use base64::Engine as _;
use futures_util::stream::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zeroize::{Zeroize, Zeroizing};

/// How long the value-reading command may run on the cluster.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Why values are missing when no recipient was given.
pub const NO_RECIPIENTS: &str = "value not exported: no --recipient, --recipients-file or --passphrase was given, and dbxport never writes secret values in plaintext";

/// What became of one value.
enum Value {
    Read(Zeroizing<Vec<u8>>),
    Missing(String, Outcome),
}

/// A key and what `secrets/get` answered for it.
type ValueRead = (
    String,
    Result<Zeroizing<Vec<u8>>, crate::client::ClientError>,
);

struct ScopeWork {
    scope: SecretScope,
    acls: Vec<AclItem>,
    keys: Vec<SecretMetadata>,
    values: BTreeMap<String, Value>,
}

fn refused(e: &crate::client::ClientError) -> bool {
    e.is_permission_denied() || e.error_code() == Some("BAD_REQUEST")
}

/// Exports every secret scope, its keys, ACLs and (sealed) values.
pub async fn export_secrets(ctx: Arc<Ctx>) {
    if !ctx.opts.wants(Kind::SecretScope) && !ctx.opts.wants(Kind::Secret) {
        return;
    }
    ctx.phase("secrets");
    let scopes = match ctx.client.secrets().list_scopes().await {
        Ok(s) => s,
        Err(e) => {
            ctx.found(Kind::SecretScope, 1);
            ctx.client_failure(
                Kind::SecretScope,
                "(every scope)",
                "",
                "listing secret scopes",
                e,
            );
            return;
        }
    };
    for s in &scopes {
        if s.backend_type == ScopeBackend::AzureKeyvault {
            let mut details = vec![
                "backed by Azure Key Vault: recreate the scope and link it to the vault by hand"
                    .to_string(),
            ];
            if let Some(kv) = &s.keyvault_metadata {
                details.push(format!("vault {} ({})", kv.dns_name, kv.resource_id));
            }
            ctx.with_report(|r| {
                r.must_recreate.items.push(RecreateItem {
                    kind: RecreateKind::KeyvaultScope,
                    id: s.name.clone(),
                    name: s.name.clone(),
                    details,
                    mapped_to: None,
                    used_by: Vec::new(),
                })
            });
        }
    }
    let sealer_present = ctx.stage.builder().is_some_and(|b| b.sealer().is_some());
    if !sealer_present && ctx.opts.wants(Kind::Secret) && !scopes.is_empty() {
        ctx.notice("SECRET VALUES ARE NOT EXPORTED: no --recipient, --recipients-file or --passphrase was given. Scopes, keys and ACLs are exported; dbxport never writes secret values in plaintext.");
    }
    // Gather keys and ACLs of every scope not already held.
    let mut work: Vec<ScopeWork> = Vec::new();
    for scope in scopes {
        if ctx.is_stopped() {
            return;
        }
        let Some(w) = gather(&ctx, scope).await else {
            continue;
        };
        work.push(w);
    }
    if sealer_present && ctx.opts.wants(Kind::Secret) {
        read_values(&ctx, &mut work).await;
    } else {
        for w in &mut work {
            for k in &w.keys {
                w.values.insert(
                    k.key.clone(),
                    Value::Missing(NO_RECIPIENTS.to_string(), Outcome::Omitted),
                );
            }
        }
    }
    for w in work {
        let c = Arc::clone(&ctx);
        let done = tokio::task::spawn_blocking(move || write_scope(&c, w)).await;
        if let Err(e) = done {
            ctx.set_fatal(ExportError::Internal(format!("secret scope staging: {e}")));
        }
    }
}

/// Lists one scope's keys and ACLs; `None` when the scope is already held (accounted for) or
/// cannot be listed (reported).
async fn gather(ctx: &Arc<Ctx>, scope: SecretScope) -> Option<ScopeWork> {
    let name = scope.name.clone();
    ctx.found(Kind::SecretScope, 1);
    let keys = match ctx.client.secrets().list_secrets(&name).await {
        Ok(k) => k,
        Err(e) => {
            ctx.client_failure(
                Kind::SecretScope,
                &name,
                &name,
                &format!("secret scope {name}"),
                e,
            );
            return None;
        }
    };
    if ctx.opts.wants(Kind::Secret) {
        ctx.found(Kind::Secret, keys.len() as u64);
    }
    if ctx.reuse(Kind::SecretScope, &name) {
        if ctx.opts.wants(Kind::Secret) {
            for k in &keys {
                let id = format!("{name}/{}", k.key);
                if !ctx.reuse(Kind::Secret, &id) {
                    ctx.failed(
                        Kind::Secret,
                        &id,
                        &id,
                        "added to the scope after the interrupted run staged it; export again to include it".into(),
                    );
                }
            }
        }
        return None;
    }
    let acls = match ctx.client.secrets().list_acls(&name).await {
        Ok(a) => a,
        Err(e) => {
            ctx.client_failure(
                Kind::SecretScope,
                &name,
                &name,
                &format!("ACLs of secret scope {name}"),
                e,
            );
            return None;
        }
    };
    Some(ScopeWork {
        scope,
        acls,
        keys,
        values: BTreeMap::new(),
    })
}

/// Reads every value: `secrets/get` while the workspace allows it, else command execution.
async fn read_values(ctx: &Arc<Ctx>, work: &mut [ScopeWork]) {
    let denied = AtomicBool::new(false);
    let mut fallback: Vec<(String, String)> = Vec::new();
    for w in work.iter_mut() {
        let scope = w.scope.name.clone();
        let mut keys = w.keys.iter().map(|k| k.key.clone());
        // Ask once; when the workspace refuses, do not ask again for every key.
        let mut rest: Vec<String> = Vec::new();
        if !denied.load(Ordering::Relaxed) {
            if let Some(first) = keys.next() {
                match ctx.client.secrets().get(&scope, &first).await {
                    Ok(v) => {
                        w.values.insert(first, Value::Read(v));
                    }
                    Err(e) if refused(&e) => {
                        tracing::info!(target: "dbxport::export", error = %e, "secrets/get refused; values are read on a cluster");
                        denied.store(true, Ordering::Relaxed);
                        rest.push(first);
                    }
                    Err(e) => {
                        if e.is_auth_failure() {
                            ctx.client_failure(Kind::Secret, &scope, &scope, "reading secrets", e);
                            return;
                        }
                        w.values
                            .insert(first, Value::Missing(reason(&e), Outcome::Failed));
                    }
                }
            }
        }
        rest.extend(keys);
        if denied.load(Ordering::Relaxed) {
            fallback.extend(rest.into_iter().map(|k| (scope.clone(), k)));
            continue;
        }
        let width = ctx.opts.concurrency.max(1);
        let results: Vec<ValueRead> = futures_util::stream::iter(rest)
            .map(|k| {
                let scope = scope.clone();
                async move {
                    let r = ctx.client.secrets().get(&scope, &k).await;
                    (k, r)
                }
            })
            .buffer_unordered(width)
            .collect()
            .await;
        for (k, r) in results {
            match r {
                Ok(v) => {
                    w.values.insert(k, Value::Read(v));
                }
                Err(e) if refused(&e) => {
                    denied.store(true, Ordering::Relaxed);
                    fallback.push((scope.clone(), k));
                }
                Err(e) => {
                    w.values
                        .insert(k, Value::Missing(reason(&e), Outcome::Failed));
                }
            }
        }
    }
    if fallback.is_empty() {
        return;
    }
    let read = match &ctx.opts.secrets.cluster_id {
        None => Err("the workspace refuses secrets/get from outside a notebook; rerun with --secrets-cluster ID (a running cluster) to read values through command execution".to_string()),
        Some(cluster) => read_on_cluster(ctx, cluster, &fallback).await,
    };
    match read {
        Ok(mut out) => {
            for v in out.values.iter_mut() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(v.value.as_bytes())
                    .map(Zeroizing::new);
                v.value.zeroize();
                let entry = match decoded {
                    Ok(bytes) => Value::Read(bytes),
                    Err(_) => Value::Missing(
                        "the cluster returned a value that is not base64".into(),
                        Outcome::Failed,
                    ),
                };
                if let Some(w) = work.iter_mut().find(|w| w.scope.name == v.scope) {
                    w.values.insert(v.key.clone(), entry);
                }
            }
            for e in &out.errors {
                if let Some(w) = work.iter_mut().find(|w| w.scope.name == e.scope) {
                    w.values.insert(
                        e.key.clone(),
                        Value::Missing(
                            format!("the cluster could not read it: {}", e.error),
                            Outcome::Failed,
                        ),
                    );
                }
            }
        }
        Err(why) => {
            for (scope, key) in fallback {
                if let Some(w) = work.iter_mut().find(|w| w.scope.name == scope) {
                    w.values
                        .entry(key)
                        .or_insert_with(|| Value::Missing(why.clone(), Outcome::Failed));
                }
            }
        }
    }
}

/// Runs the secret-reading program on `cluster` for `keys`.
async fn read_on_cluster(
    ctx: &Arc<Ctx>,
    cluster: &str,
    keys: &[(String, String)],
) -> Result<SecretReadOutput, String> {
    ctx.phase("reading secret values on the cluster");
    let command = secret_read_command(keys);
    let out = crate::export::cluster::run_read_only(ctx, cluster, &command, COMMAND_TIMEOUT)
        .await
        .map_err(|e| format!("reading values on cluster {cluster} failed: {}", reason(&e)))?;
    let mut data = out.data;
    let mut text = match &mut data {
        serde_json::Value::String(s) => std::mem::take(s),
        _ => {
            return Err(format!(
                "reading values on cluster {cluster}: the command printed no text"
            ))
        }
    };
    let parsed = serde_json::from_str::<SecretReadOutput>(text.trim());
    text.zeroize();
    parsed.map_err(|e| {
        format!("reading values on cluster {cluster}: the command's output is not what the program prints: {e}")
    })
}

fn encoding(bytes: &[u8]) -> ValueEncoding {
    if std::str::from_utf8(bytes).is_ok() {
        ValueEncoding::String
    } else {
        ValueEncoding::Bytes
    }
}

/// Stages one scope (blocking): each value sealed and committed, then the scope with its
/// sealed digest index. Each object's journal line goes first (see [`crate::export::stage`]).
fn write_scope(ctx: &Ctx, mut w: ScopeWork) {
    let name = w.scope.name.clone();
    let Some(builder) = ctx.stage.builder() else {
        return;
    };
    let principals: Vec<String> = w
        .acls
        .iter()
        .map(|a| format!("any:{}", a.principal))
        .collect();
    if !ctx.opts.wants(Kind::Secret) {
        // Names and ACLs only: no secret records at all.
        let entry = DoneEntry {
            name: name.clone(),
            principals: principals.clone(),
            ..DoneEntry::default()
        };
        let resource = crate::bundle::Resource::secret_scope(&w.scope, &w.acls, &w.keys, None);
        match ctx.stage.commit(&entry, resource) {
            Ok(()) => {
                ctx.reference_principals(&principals);
                ctx.outcome(Kind::SecretScope, &name, &entry, false);
            }
            Err(e) => ctx.failed(
                Kind::SecretScope,
                &name,
                &name,
                format!("staging failed: {}", reason(&e)),
            ),
        }
        return;
    }
    let mut writer = builder.secret_scope(&w.scope, &w.acls);
    let mut outcomes: Vec<(String, Outcome, Vec<String>, u64)> = Vec::new();
    let mut keys = w.keys.clone();
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    for k in &keys {
        let id = format!("{name}/{}", k.key);
        let value = w
            .values
            .remove(&k.key)
            .unwrap_or_else(|| Value::Missing("the value was not read".into(), Outcome::Failed));
        let (outcome, notes) = match &value {
            Value::Read(_) => (Outcome::Exported, Vec::new()),
            Value::Missing(why, o) => (*o, vec![why.clone()]),
        };
        let entry = DoneEntry {
            name: id.clone(),
            outcome: Some(outcome),
            notes: notes.clone(),
            ..DoneEntry::default()
        };
        if let Err(e) = ctx.stage.journal_object(Kind::Secret, &id, &entry) {
            ctx.set_fatal(e);
            return;
        }
        let staged = match &value {
            Value::Read(bytes) => writer.add_value(k, bytes, encoding(bytes)),
            Value::Missing(why, _) => writer.add_unreadable(k, why),
        };
        match staged {
            Ok(()) => outcomes.push((id, outcome, notes, 0)),
            Err(e) => outcomes.push((
                id,
                Outcome::Failed,
                vec![format!("staging failed: {}", reason(&e))],
                0,
            )),
        }
    }
    let entry = DoneEntry {
        name: name.clone(),
        principals: principals.clone(),
        ..DoneEntry::default()
    };
    if let Err(e) = ctx.stage.journal_object(Kind::SecretScope, &name, &entry) {
        ctx.set_fatal(e);
        return;
    }
    match writer.finish() {
        Ok(()) => {
            ctx.reference_principals(&principals);
            ctx.outcome(Kind::SecretScope, &name, &entry, false);
            for (id, outcome, notes, bytes) in outcomes {
                let e = DoneEntry {
                    bytes,
                    ..DoneEntry::with(&id, outcome, notes)
                };
                ctx.outcome(Kind::Secret, &id, &e, false);
            }
        }
        Err(e) => {
            ctx.failed(
                Kind::SecretScope,
                &name,
                &name,
                format!("staging failed: {}", reason(&e)),
            );
            for (id, _, _, _) in outcomes {
                ctx.failed(
                    Kind::Secret,
                    &id,
                    &id,
                    "not staged: its scope could not be staged".into(),
                );
            }
        }
    }
}
