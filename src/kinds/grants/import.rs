//! How table grants are planned and replayed into a target.
//!
//! Grants are tied to their source by the object they are on (a Hive `TYPE key`, a Unity
//! Catalog securable's type and full name) and each grant by its statement: the target's
//! `SHOW GRANTS` (Hive) or grants API (Unity Catalog) is read, and only what it lacks is sent —
//! `GRANT` / `DENY` / `ALTER … OWNER` statements on a SQL warehouse, or a `PATCH` of privileges.
//! There is no conflict: grants only in the target are left in place (import never revokes);
//! grants naming an unmapped principal are refused, and a missing object cannot be granted on.

use super::replay::{plan_hive, plan_uc, show_statement};
use crate::bundle::inventory::Record;
use crate::client::sql::Statement;
use crate::import::apply::{ambiguous, backoff, Run, StepResult, AMBIGUOUS_ATTEMPTS};
use crate::import::ledger::keys;
use crate::import::plan::{Action, Mode, PlanItem, Planner, Step, UcStep};
use crate::import::source::SourceBundle;
use crate::import::target::concurrently;
use crate::import::ImportError;
use crate::model::Kind;
use serde_json::{json, Value};
use std::time::Duration;

crate::import::unit::unit! {
    /// The import unit of table grants.
    Grants: [Kind::HiveGrants, Kind::UcGrants]
}

async fn plan(p: &mut Planner<'_, '_>) -> Result<(), ImportError> {
    let f = p.opts().filter.clone();
    let client = p.client().clone();
    if f.kind(Kind::HiveGrants) && !p.src().hive_grants.is_empty() {
        let warehouse = choose_warehouse(p).await?;
        p.warehouse = warehouse.as_ref().ok().cloned();
        let objects: Vec<usize> = (0..p.src().hive_grants.len()).collect();
        let wh = warehouse.clone();
        let src = p.input.source;
        let shown = concurrently(objects, p.limit, |i| {
            let client = client.clone();
            let wh = wh.clone();
            async move {
                let g = &src.hive_grants[i];
                let Ok(wh) = wh else {
                    return (i, None);
                };
                let st = show_statement(g.object_type, &g.object_key);
                let r = client
                    .sql()
                    .execute(&Statement {
                        statement: &st,
                        warehouse_id: &wh,
                        catalog: None,
                        schema: None,
                        read_only: true,
                        timeout: Duration::from_secs(300),
                    })
                    .await;
                (i, Some(r))
            }
        })
        .await;
        for (i, r) in shown {
            let g = &p.src().hive_grants[i];
            let type_name = format!("{:?}", g.object_type).to_uppercase();
            let name = if g.object_key.is_empty() {
                type_name.clone()
            } else {
                format!("{type_name} {}", g.object_key)
            };
            let mut item = PlanItem::new(Kind::HiveGrants, &name, &name);
            item.key = keys::hive(&name);
            let result = match (r, &warehouse) {
                (_, Err(why)) => {
                    p.items.push(item.set(Action::Cannot, why.clone()));
                    continue;
                }
                (Some(Ok(res)), _) => res,
                (Some(Err(e)), _) if e.is_auth_failure() => return Err(p.err(e)),
                (Some(Err(e)), _) => {
                    let msg = e.to_string();
                    let why = if msg.contains("NOT_FOUND") || msg.contains("does not exist") {
                        format!("{name} does not exist in the target (dbxport replays grants, not tables: create it first)")
                    } else {
                        format!("SHOW GRANTS failed: {msg}")
                    };
                    p.items.push(item.set(Action::Cannot, why));
                    continue;
                }
                (None, _) => unreachable!("a statement runs when there is a warehouse"),
            };
            let current = result.grants_about(g.object_type, &g.object_key);
            let hp = plan_hive(&g.grants, &current, &format!("grants on {name}"), p.mapper);
            item.notes.extend(hp.notes.clone());
            if !hp.unmapped.is_empty() {
                p.items.push(item.set(
                    Action::Refuse,
                    format!(
                        "grants name unmapped principal(s): {}",
                        hp.unmapped.join(", ")
                    ),
                ));
                continue;
            }
            if p.input.mode == Mode::Diff {
                item.reasons
                    .extend(hp.missing.iter().map(|s| format!("missing: {s}")));
                item.reasons
                    .extend(hp.extra.iter().map(|s| format!("only in target: {s}")));
            } else {
                item.notes
                    .extend(hp.extra.iter().map(|s| format!("the target also has: {s}")));
            }
            if hp.statements.is_empty() && (p.input.mode == Mode::Import || hp.extra.is_empty()) {
                item.action = Action::Unchanged;
            } else {
                item.action = if current.is_empty() {
                    Action::Create
                } else {
                    Action::Update
                };
                if p.input.mode == Mode::Import {
                    item.reasons
                        .push(format!("{} statement(s)", hp.statements.len()));
                }
                if !hp.statements.is_empty() {
                    item.step = Some(Step::Hive {
                        statements: hp.statements,
                    });
                }
            }
            p.items.push(item);
        }
    }
    if f.kind(Kind::UcGrants) && !p.src().uc_grants.is_empty() {
        let all: Vec<usize> = (0..p.src().uc_grants.len()).collect();
        let src = p.input.source;
        let mapping = &p.opts().mapping;
        let got = concurrently(all, p.limit, |i| {
            let client = client.clone();
            async move {
                let g = &src.uc_grants[i];
                let full_name = mapping.uc_name(&g.full_name);
                (
                    i,
                    client
                        .unity()
                        .get_grants(&g.securable_type, &full_name)
                        .await,
                )
            }
        })
        .await;
        for (i, r) in got {
            let g = &p.src().uc_grants[i];
            let full_name = p.opts().mapping.uc_name(&g.full_name);
            let name = format!("{} {}", g.securable_type, full_name);
            let mut item = PlanItem::new(Kind::UcGrants, &name, &name);
            item.key = keys::uc(&name);
            let current = match r {
                Ok(c) => c,
                Err(e) if e.is_auth_failure() => return Err(p.err(e)),
                // A model this import creates first has no grants yet.
                Err(e)
                    if e.is_not_found()
                        && g.securable_type == "function"
                        && p.model_actions.get(&full_name) == Some(&Action::Create) =>
                {
                    crate::model::grants::UcGrants {
                        securable_type: g.securable_type.clone(),
                        full_name: full_name.clone(),
                        privilege_assignments: Vec::new(),
                    }
                }
                Err(e) if e.is_not_found() => {
                    p.items.push(item.set(
                        Action::Cannot,
                        format!("{name} does not exist in the target (create it first)"),
                    ));
                    continue;
                }
                Err(e) => {
                    p.items
                        .push(item.set(Action::Cannot, format!("reading its grants: {e}")));
                    continue;
                }
            };
            let up = plan_uc(g, &current, &format!("grants on {name}"), p.mapper);
            item.notes.extend(up.notes.clone());
            if !up.unmapped.is_empty() {
                p.items.push(item.set(
                    Action::Refuse,
                    format!(
                        "grants name unmapped principal(s): {}",
                        up.unmapped.join(", ")
                    ),
                ));
                continue;
            }
            if p.input.mode == Mode::Diff {
                for c in &up.changes {
                    item.reasons
                        .push(format!("missing: {}: {}", c.principal, c.add.join(", ")));
                }
                item.reasons
                    .extend(up.extra.iter().map(|s| format!("only in target: {s}")));
            } else {
                item.notes
                    .extend(up.extra.iter().map(|s| format!("the target also has {s}")));
            }
            if up.changes.is_empty() && (p.input.mode == Mode::Import || up.extra.is_empty()) {
                item.action = Action::Unchanged;
            } else {
                item.action = if current.privilege_assignments.is_empty() {
                    Action::Create
                } else {
                    Action::Update
                };
                if !up.changes.is_empty() {
                    item.step = Some(Step::Uc(Box::new(UcStep {
                        securable_type: g.securable_type.clone(),
                        full_name: full_name.clone(),
                        changes: up.changes,
                    })));
                }
            }
            p.items.push(item);
        }
    }
    Ok(())
}

/// The warehouse for Hive statements: the flag, else the profile's, else the target's only
/// warehouse (or its only running one). `Err` holds why there is none.
async fn choose_warehouse(p: &mut Planner<'_, '_>) -> Result<Result<String, String>, ImportError> {
    if let Some(w) = &p.opts().warehouse_id {
        return Ok(Ok(w.clone()));
    }
    if let Some(w) = &p.client().config().warehouse_id {
        return Ok(Ok(w.clone()));
    }
    let all = match p.client().sql().list_warehouses().await {
        Ok(a) => a,
        Err(e) if e.is_auth_failure() => return Err(p.err(e)),
        Err(e) => return Ok(Err(format!("listing SQL warehouses failed: {e}"))),
    };
    let running: Vec<_> = all
        .iter()
        .filter(|w| w.spec.get("state").and_then(Value::as_str) == Some("RUNNING"))
        .collect();
    Ok(match (all.len(), running.len()) {
        (0, _) => Err(
            "the target has no SQL warehouse to run GRANT statements on; create one and pass --warehouse-id"
                .into(),
        ),
        (1, _) => Ok(all[0].id.clone()),
        (_, 1) => Ok(running[0].id.clone()),
        _ => Err(format!(
            "the target has {} SQL warehouses; choose one with --warehouse-id",
            all.len()
        )),
    })
}

async fn apply<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let items = run.items_of(&[Kind::HiveGrants, Kind::UcGrants]);
    let warehouse = run.plan.warehouse_id.clone();
    run.each(items, |item, step| {
        let warehouse = warehouse.clone();
        async move {
            match step {
                Step::Hive { statements } => {
                    let wh = warehouse.ok_or("no SQL warehouse")?;
                    for st in statements {
                        run_statement(run, &wh, st).await?;
                    }
                }
                Step::Uc(uc) => {
                    let UcStep {
                        securable_type,
                        full_name,
                        changes,
                    } = &**uc;
                    run.wrote();
                    run.client
                        .unity()
                        .update_grants(securable_type, full_name, changes)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                _ => return Err("internal: wrong step".into()),
            }
            run.ledger.record(item.key.clone(), json!({}));
            Ok(Run::created_or_updated(item))
        }
    })
    .await
}

/// Runs one grant statement. `GRANT`, `DENY` and `ALTER … OWNER` have the same effect when
/// repeated, so an answer that was lost is simply sent again.
async fn run_statement(run: &Run<'_>, warehouse: &str, statement: &str) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..AMBIGUOUS_ATTEMPTS {
        run.wrote();
        let r = run
            .client
            .sql()
            .execute(&Statement {
                statement,
                warehouse_id: warehouse,
                catalog: None,
                schema: None,
                read_only: false,
                timeout: Duration::from_secs(300),
            })
            .await;
        match r {
            Ok(_) => return Ok(()),
            Err(e) if ambiguous(&e) => {
                last = e.to_string();
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

/// Reads a table-grants record: its typed meta (§6.4) and the stored grants.
fn load(
    source: &mut SourceBundle,
    r: &Record,
    payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    use super::format::{HiveGrantsFile, HiveGrantsMeta, UcGrantsFile};
    use crate::model::grants::HiveObjectType;
    if r.kind == Kind::UcGrants {
        let g = source.payload::<UcGrantsFile>(r, &payload)?;
        source.uc_grants.push(g);
        return Ok(());
    }
    let m: HiveGrantsMeta = source.typed_meta(r)?;
    let grants = source.payload::<HiveGrantsFile>(r, &payload)?;
    let object_type = HiveObjectType::parse(&m.object_type).ok_or_else(|| ImportError::Record {
        record: format!("hive_grants {}", r.name),
        message: format!(
            "meta.object_type {:?} is not a Hive object type",
            m.object_type
        ),
    })?;
    source
        .hive_grants
        .push(crate::import::source::SrcHiveGrants {
            object_type,
            object_key: m.object_key,
            grants,
        });
    Ok(())
}
