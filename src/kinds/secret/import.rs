//! How secret scopes and secrets are planned and replayed into a target.
//!
//! A scope is tied to its source by its (mapped) name: a scope of that name in the target is
//! this one, and only its ACL may need changes; a Key Vault-backed scope there is a conflict
//! that even `--on-conflict overwrite` refuses. A secret is tied by scope and key; its value
//! is read back and compared where the workspace allows it, else the journal's `sealed_sha256`
//! decides, and another value (or one this bundle did not put) is a conflict. Apply creates
//! scopes and sets their ACLs first, then puts each value after a durable intent line.

use crate::bundle::inventory::Record;
use crate::import::acl::scope_acl_changes;
use crate::import::apply::{ambiguous, backoff, Run, StepResult, AMBIGUOUS_ATTEMPTS};
use crate::import::ledger::keys;
use crate::import::mapping::PrincipalOutcome;
use crate::import::plan::{secret_value_matches, Action, Mode, PlanItem, Planner, ScopeStep, Step};
use crate::import::source::SourceBundle;
use crate::import::target::concurrently;
use crate::import::ImportError;
use crate::model::secret::{AclItem, ScopeBackend};
use crate::model::Kind;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

crate::import::unit::unit! {
    /// The import unit of secret scopes and secrets.
    Secrets: [Kind::SecretScope, Kind::Secret]
}

/// Scopes first (their secrets need them), then secrets.
async fn apply<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let mut done = scopes(run).await;
    done.extend(secrets(run).await);
    done
}

async fn plan(p: &mut Planner<'_, '_>) -> Result<(), ImportError> {
    let f = &p.opts().filter;
    let (want_scopes, want_secrets) = (f.kind(Kind::SecretScope), f.kind(Kind::Secret));
    if !want_scopes && !want_secrets {
        return Ok(());
    }
    let client = p.client().clone();
    let target_scopes = client.secrets().list_scopes().await.map_err(|e| p.err(e))?;
    let m = &p.opts().mapping;
    let existing: BTreeMap<String, ScopeBackend> = target_scopes
        .iter()
        .map(|s| (s.name.clone(), s.backend_type))
        .collect();
    // Keys and ACLs of the scopes that exist.
    let to_read: Vec<String> = p
        .src()
        .scopes
        .iter()
        .map(|s| m.scope(&s.name).to_string())
        .filter(|t| existing.contains_key(t))
        .collect();
    let read = concurrently(to_read, p.limit, |name| {
        let client = client.clone();
        async move {
            let api = client.secrets();
            let (keys, acls) = tokio::join!(api.list_secrets(&name), api.list_acls(&name));
            (name, keys, acls)
        }
    })
    .await;
    let mut keys_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut acls_of: BTreeMap<String, Vec<AclItem>> = BTreeMap::new();
    for (name, k, a) in read {
        keys_of.insert(
            name.clone(),
            k.map_err(|e| p.err(e))?
                .into_iter()
                .map(|s| s.key)
                .collect(),
        );
        acls_of.insert(name, a.map_err(|e| p.err(e))?);
    }
    let me = p
        .mapper
        .directory()
        .me
        .as_ref()
        .map(|p| p.name().to_string());
    let mut kv_scopes: BTreeSet<String> = BTreeSet::new();
    for s in &p.src().scopes {
        let tgt = m.scope(&s.name).to_string();
        if s.backend == ScopeBackend::AzureKeyvault {
            kv_scopes.insert(s.name.clone());
            if want_scopes {
                let mut item = PlanItem::new(Kind::SecretScope, &s.name, &tgt).set(
                    Action::Skip,
                    "backed by Azure Key Vault: recreate it by hand (see must recreate)",
                );
                item.key = keys::scope(&tgt);
                p.items.push(item);
            }
            continue;
        }
        if !want_scopes {
            continue;
        }
        let mut item = PlanItem::new(Kind::SecretScope, &s.name, &tgt);
        item.key = keys::scope(&tgt);
        if s.name != tgt {
            item.notes.push(format!("{} → {tgt}", s.name));
        }
        if !crate::model::secret::is_valid_name(&tgt) {
            p.items.push(item.set(
                Action::Refuse,
                format!("{tgt:?} is not a valid scope name ([A-Za-z0-9._-], at most 128)"),
            ));
            continue;
        }
        let mut desired: Vec<AclItem> = Vec::new();
        let mut unmapped = Vec::new();
        for a in &s.acls {
            match p
                .mapper
                .map(&a.principal, &format!("secret scope {}: ACL", s.name))
            {
                PrincipalOutcome::Use(to) => desired.push(AclItem {
                    principal: to,
                    permission: a.permission,
                }),
                PrincipalOutcome::Drop => item.notes.push(format!(
                    "{} {:?} dropped (unmapped principal)",
                    a.principal, a.permission
                )),
                PrincipalOutcome::Unmapped => unmapped.push(a.principal.clone()),
            }
        }
        desired.sort();
        desired.dedup_by(|a, b| a.principal.eq_ignore_ascii_case(&b.principal));
        if !unmapped.is_empty() {
            p.items.push(item.set(
                Action::Refuse,
                format!("ACL names unmapped principal(s): {}", unmapped.join(", ")),
            ));
            continue;
        }
        match existing.get(&tgt) {
            Some(ScopeBackend::AzureKeyvault) => {
                let (a, r) = p.conflict(format!(
                    "a Key Vault-backed scope {tgt} exists in the target"
                ));
                p.items.push(item.set(
                    if a == Action::Update {
                        Action::Refuse
                    } else {
                        a
                    },
                    r,
                ));
            }
            Some(_) => {
                let current = acls_of.get(&tgt).cloned().unwrap_or_default();
                let (put, delete) = scope_acl_changes(&desired, &current, me.as_deref());
                if put.is_empty() && delete.is_empty() {
                    item.action = Action::Unchanged;
                } else {
                    item.action = Action::Update;
                    item.reasons.push(format!(
                        "ACL differs ({} to set, {} to remove)",
                        put.len(),
                        delete.len()
                    ));
                    item.step = Some(Step::Scope(Box::new(ScopeStep {
                        name: tgt.clone(),
                        create: false,
                        acl: desired,
                        put,
                        delete,
                    })));
                }
                p.items.push(item);
            }
            None => {
                item.action = Action::Create;
                if p.input.mode == Mode::Diff {
                    item.reasons.push("missing in target".into());
                }
                item.step = Some(Step::Scope(Box::new(ScopeStep {
                    name: tgt.clone(),
                    create: true,
                    acl: desired,
                    put: Vec::new(),
                    delete: Vec::new(),
                })));
                p.items.push(item);
            }
        }
    }
    if !want_secrets {
        return Ok(());
    }
    let scope_actions: BTreeMap<String, Action> = p
        .items
        .iter()
        .filter(|i| i.kind == Kind::SecretScope)
        .map(|i| (i.target.clone(), i.action))
        .collect();
    for (idx, sec) in p.src().secrets.iter().enumerate() {
        let tscope = m.scope(&sec.scope).to_string();
        let name = format!("{}/{}", sec.scope, sec.key);
        let mut item = PlanItem::new(Kind::Secret, &name, format!("{tscope}/{}", sec.key));
        item.key = keys::secret(&tscope, &sec.key);
        if kv_scopes.contains(&sec.scope) {
            p.items.push(item.set(
                Action::Skip,
                "its scope is backed by Azure Key Vault; the value lives in the vault",
            ));
            continue;
        }
        match scope_actions.get(&tscope) {
            Some(Action::Refuse | Action::Skip | Action::Cannot) => {
                p.items
                    .push(item.set(Action::Skip, format!("its scope {tscope} is not imported")));
                continue;
            }
            None if !existing.contains_key(&tscope) => {
                p.items.push(item.set(
                    Action::Cannot,
                    format!("its scope {tscope} does not exist in the target and is not imported"),
                ));
                continue;
            }
            _ => {}
        }
        let Some(sealed) = sec.sealed_sha256.clone() else {
            let why = if sec.notes.is_empty() {
                "the bundle holds no value for it".to_string()
            } else {
                format!("the bundle holds no value for it: {}", sec.notes.join("; "))
            };
            p.items.push(item.set(Action::Cannot, why));
            continue;
        };
        let step = Step::Secret {
            index: idx,
            scope: tscope.clone(),
        };
        let exists = keys_of.get(&tscope).is_some_and(|k| k.contains(&sec.key));
        if !exists {
            item.action = Action::Create;
            if p.input.mode == Mode::Diff {
                item.reasons.push("missing in target".into());
            }
            item.step = Some(step);
            p.items.push(item);
            continue;
        }
        // What the target shows decides; the journal speaks only where the target cannot
        // be read (no opened value, or a workspace that refuses reading values back).
        let mine = p.input.secrets.and_then(|v| v.get(&sec.scope, &sec.key));
        let verdict = secret_value_matches(&client, &tscope, &sec.key, mine)
            .await
            .map_err(|e| p.err(e))?;
        let k = p.input.knowledge;
        let journaled = |key: String| {
            p.input.mode == Mode::Import && k.field(&key, "sealed_sha256") == Some(sealed.as_str())
        };
        match verdict {
            Some(true) => item.action = Action::Unchanged,
            Some(false) => {
                let (a, r) = p.conflict(format!("{tscope}/{} holds another value", sec.key));
                item = item.set(a, r);
                if a == Action::Update {
                    item.step = Some(step);
                }
            }
            None if p.input.mode == Mode::Diff => {
                item.action = Action::Unchanged;
                item.notes.push(
                    "value not compared (give --identity, and the workspace must allow reading values)"
                        .into(),
                );
            }
            None if journaled(keys::secret(&tscope, &sec.key)) => {
                item.action = Action::Unchanged;
                item.notes.push(
                    "value not read back; the journal records that this bundle's value was put"
                        .into(),
                );
            }
            None if journaled(keys::secret_intent(&tscope, &sec.key)) => {
                item.action = Action::Update;
                item.reasons
                    .push("put again: an interrupted run may have put it".into());
                item.step = Some(step);
            }
            None => {
                let (a, r) = p.conflict(format!(
                    "{tscope}/{} exists and its value was not put by this bundle (values cannot be read back to compare)",
                    sec.key
                ));
                item = item.set(a, r);
                if a == Action::Update {
                    item.step = Some(step);
                }
            }
        }
        p.items.push(item);
    }
    Ok(())
}

async fn scopes<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let items = run.items_of(&[Kind::SecretScope]);
    let me = run.plan.me.as_ref().map(|p| p.name().to_string());
    run.each(items, |item, step| {
        let me = me.clone();
        async move {
            let Step::Scope(scope) = step else {
                return Err("internal: wrong step".into());
            };
            let ScopeStep {
                name,
                create,
                acl,
                put,
                delete,
            } = &**scope;
            let api = run.client.secrets();
            let (put, delete) = if *create {
                create_scope(run, name).await?;
                let current = api.list_acls(name).await.map_err(|e| e.to_string())?;
                scope_acl_changes(acl, &current, me.as_deref())
            } else {
                (put.clone(), delete.clone())
            };
            for a in &put {
                run.wrote();
                api.put_acl(name, &a.principal, a.permission)
                    .await
                    .map_err(|e| format!("ACL {}: {e}", a.principal))?;
            }
            for p in &delete {
                run.wrote();
                match api.delete_acl(name, p).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(format!("removing ACL {p}: {e}")),
                }
            }
            run.ledger.record(item.key.clone(), json!({}));
            Ok(Run::created_or_updated(item))
        }
    })
    .await
}

async fn create_scope(run: &Run<'_>, name: &str) -> Result<(), String> {
    let req = crate::client::secrets::CreateScope {
        scope: name.to_string(),
        ..Default::default()
    };
    let mut last = String::new();
    for attempt in 0..AMBIGUOUS_ATTEMPTS {
        run.wrote();
        match run.client.secrets().create_scope(&req).await {
            Ok(()) => return Ok(()),
            // A scope is identified by its name: one that exists is this one.
            Err(e) if e.is_already_exists() => return Ok(()),
            Err(e) if ambiguous(&e) => {
                last = e.to_string();
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

async fn secrets<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let items = run.items_of(&[Kind::Secret]);
    run.each(items, |item, step| async move {
        let Step::Secret { index, scope } = step else {
            return Err("internal: wrong step".into());
        };
        let s = &run.source.secrets[*index];
        let value = run
            .values
            .get(&s.scope, &s.key)
            .ok_or("its value was not opened")?;
        let sealed = json!({ "sealed_sha256": s.sealed_sha256 });
        // The intent is on disk before the value can be in the target.
        run.ledger
            .record_durable(keys::secret_intent(scope, &s.key), sealed.clone())
            .await
            .map_err(|e| format!("journal: {e}"))?;
        run.wrote();
        run.client
            .secrets()
            .put(scope, &s.key, value, s.encoding)
            .await
            .map_err(|e| e.to_string())?;
        run.ledger.record(item.key.clone(), sealed);
        Ok(Run::created_or_updated(item))
    })
    .await
}

/// Reads a scope or secret record: its typed meta (§6.3), turned into the API's terms.
fn load(
    source: &mut SourceBundle,
    r: &Record,
    _payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    use super::format::{ScopeMeta, SecretMeta};
    use crate::import::source::{SrcScope, SrcSecret};
    if r.kind == Kind::SecretScope {
        let m: ScopeMeta = source.typed_meta(r)?;
        let acls = m
            .acls
            .iter()
            .map(|a| {
                a.to_wire().ok_or_else(|| ImportError::Record {
                    record: format!("secret_scope {}", r.name),
                    message: format!(
                        "meta.acls: permission {:?} is not READ, WRITE or MANAGE",
                        a.permission
                    ),
                })
            })
            .collect::<Result<Vec<AclItem>, _>>()?;
        source.scopes.push(SrcScope {
            name: r.name.clone(),
            backend: m.backend_type.into(),
            keyvault: m
                .keyvault_metadata
                .and_then(|v| serde_json::from_value(v).ok()),
            acls,
            keys: m.keys,
        });
        return Ok(());
    }
    let m: SecretMeta = source.typed_meta(r)?;
    source.secrets.push(SrcSecret {
        scope: m.scope,
        key: m.key,
        encoding: m.encoding.into(),
        sealed_sha256: if r.sealed { r.sha256.clone() } else { None },
        notes: r.notes.clone(),
        record: r.clone(),
    });
    Ok(())
}
