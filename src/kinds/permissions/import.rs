//! How object permissions are planned and replayed into a target.
//!
//! An ACL is tied to its source by the object it belongs to (`{request type}/{source id}`):
//! the object is found in the target by its mapped path, its repo, the job import created or
//! found by its source tag, or the model's name. The bundle's direct ACL is compared with the
//! target's: equal is unchanged, different is an update (no conflict: apply replaces the
//! object's direct ACL with a `PUT`); an ACL naming an unmapped principal is refused, one whose
//! object is not imported is skipped.

use crate::bundle::inventory::Record;
use crate::client::ClientError;
use crate::import::acl::{desired_acl, same_acl};
use crate::import::apply::{Run, StepResult};
use crate::import::ledger::keys;
use crate::import::plan::{AclObject, Action, Mode, PlanItem, Planner, Step};
use crate::import::source::SourceBundle;
use crate::import::target::concurrently;
use crate::import::ImportError;
use crate::model::permissions::AccessControlRequest;
use crate::model::Kind;
use serde_json::json;
use std::collections::BTreeMap;

crate::import::unit::unit! {
    /// The import unit of object permissions.
    Permissions: [Kind::Permissions]
}

async fn plan(p: &mut Planner<'_, '_>) -> Result<(), ImportError> {
    if !p.opts().filter.kind(Kind::Permissions) {
        return Ok(());
    }
    let f = p.opts().filter.clone();
    let m = &p.opts().mapping;
    let me = p.mapper.directory().me.clone();
    // Source object id → source path, for workspace ACL records without an object name.
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    for d in &p.src().directories {
        by_id.insert(d.object_id.to_string(), d.path.clone());
    }
    for o in &p.src().objects {
        by_id.insert(o.object_id.to_string(), o.path.clone());
    }
    let mut reads: Vec<(usize, String, String)> = Vec::new();
    // Item, desired ACL, and whether the current ACL must be read.
    let mut pending: Vec<(PlanItem, Vec<AccessControlRequest>, bool)> = Vec::new();
    for sp in &p.src().permissions {
        let rt = sp.request_object_type.as_str();
        let mut item = PlanItem::new(
            Kind::Permissions,
            format!("{rt}/{}", sp.object_id),
            format!("{rt}/{}", sp.object_id),
        );
        item.key = keys::permissions(rt, &sp.object_id);
        // Resolve the object in the target.
        let (object, target_label, current_known): (
            Option<AclObject>,
            String,
            Option<Vec<AccessControlRequest>>,
        ) = match rt {
            "notebooks" | "directories" | "files" => {
                let src_path = by_id
                    .get(&sp.object_id)
                    .cloned()
                    .or_else(|| sp.object_name.clone());
                let Some(src_path) = src_path else {
                    p.items
                        .push(item.set(Action::Skip, "its object is not in the bundle"));
                    continue;
                };
                if !f.path(&src_path) {
                    continue;
                }
                let tgt = m.path(&src_path);
                let label = format!("{rt} {tgt}");
                match p.created_paths.get(&tgt) {
                    Some((Action::Create, _)) => (
                        Some(AclObject::Path {
                            request_type: rt.to_string(),
                            path: tgt.clone(),
                        }),
                        label,
                        Some(Vec::new()),
                    ),
                    Some((Action::Refuse | Action::Skip | Action::Cannot, _)) => {
                        item.target = label;
                        p.items
                            .push(item.set(Action::Skip, "its object is not imported"));
                        continue;
                    }
                    _ => match p.tree.get(&tgt) {
                        Some(info) => (
                            Some(AclObject::Id {
                                request_type: rt.to_string(),
                                id: info.object_id.to_string(),
                            }),
                            label,
                            None,
                        ),
                        None => {
                            item.target = label;
                            p.items.push(item.set(
                                Action::Skip,
                                "its object is neither in the target nor imported (filtered out)",
                            ));
                            continue;
                        }
                    },
                }
            }
            "repos" => match p.repo_paths.get(&sp.object_id).cloned() {
                Some((path, action, id)) => {
                    if !f.path(&path) && !f.path(sp.object_name.as_deref().unwrap_or("")) {
                        continue;
                    }
                    let label = format!("repos {path}");
                    match (action, id) {
                        (Action::Create, _) => {
                            (Some(AclObject::Repo { path }), label, Some(Vec::new()))
                        }
                        (Action::Unchanged | Action::Update, Some(id)) => (
                            Some(AclObject::Id {
                                request_type: "repos".into(),
                                id: id.to_string(),
                            }),
                            label,
                            None,
                        ),
                        _ => {
                            item.target = label;
                            p.items
                                .push(item.set(Action::Skip, "its repo is not imported"));
                            continue;
                        }
                    }
                }
                None => {
                    if !f.kind(Kind::Repo) || f.path_prefix.is_some() {
                        continue;
                    }
                    p.items
                        .push(item.set(Action::Skip, "its repo is not in the bundle"));
                    continue;
                }
            },
            "jobs" => {
                let Ok(src_id) = sp.object_id.parse::<i64>() else {
                    p.items.push(item.set(Action::Skip, "not a job id"));
                    continue;
                };
                let label = format!(
                    "jobs {}",
                    sp.object_name.clone().unwrap_or_else(|| src_id.to_string())
                );
                match p.job_items.get(&src_id) {
                    Some(Action::Create) => (
                        Some(AclObject::Job { source_id: src_id }),
                        label,
                        me.clone()
                            .map(|p| {
                                vec![AccessControlRequest {
                                    principal: p,
                                    permission_level: crate::import::acl::OWNER.into(),
                                }]
                            })
                            .or(Some(Vec::new())),
                    ),
                    Some(Action::Unchanged | Action::Update) => match p.job_ids.get(&src_id) {
                        Some(t) => (
                            Some(AclObject::Id {
                                request_type: "jobs".into(),
                                id: t.to_string(),
                            }),
                            format!("{label} (job {t})"),
                            None,
                        ),
                        None => {
                            p.items
                                .push(item.set(Action::Skip, "its job is not imported"));
                            continue;
                        }
                    },
                    Some(_) => {
                        item.target = label;
                        p.items
                            .push(item.set(Action::Skip, "its job is not imported"));
                        continue;
                    }
                    None => {
                        if !f.kind(Kind::Job) {
                            continue;
                        }
                        item.target = label;
                        p.items
                            .push(item.set(Action::Skip, "its job is not in the bundle"));
                        continue;
                    }
                }
            }
            "registered-models" => {
                if !f.kind(Kind::RegisteredModel) {
                    continue;
                }
                let name = sp
                    .object_name
                    .clone()
                    .unwrap_or_else(|| sp.object_id.clone());
                let label = format!("registered-models {name}");
                if p.opts().models.mlflow_uri.is_some() {
                    item.target = label;
                    p.items.push(item.set(
                        Action::Skip,
                        "the target is an MLflow server, which has no object permissions",
                    ));
                    continue;
                }
                if let Some(cs) = &p.opts().models.models_to_uc {
                    item.target = label;
                    p.items.push(item.set(
                        Action::Skip,
                        format!("the model goes to Unity Catalog ({cs}, --models-to-uc), where access is granted with UC privileges, not workspace permissions"),
                    ));
                    continue;
                }
                match p.model_actions.get(&name).copied() {
                    Some(Action::Create) => (
                        Some(AclObject::Model { name: name.clone() }),
                        label,
                        Some(Vec::new()),
                    ),
                    Some(Action::Unchanged | Action::Update) => {
                        let got = p.client().mlflow().get_model_databricks(&name).await;
                        match got {
                            Ok(m) => (
                                Some(AclObject::Id {
                                    request_type: "registered-models".into(),
                                    id: m.id.clone(),
                                }),
                                format!("{label} ({})", m.id),
                                None,
                            ),
                            Err(e) if e.is_auth_failure() => return Err(p.err(e)),
                            Err(e) => {
                                item.target = label;
                                p.items
                                    .push(item.set(Action::Cannot, format!("reading its id: {e}")));
                                continue;
                            }
                        }
                    }
                    Some(_) => {
                        item.target = label;
                        p.items
                            .push(item.set(Action::Skip, "its model is not imported"));
                        continue;
                    }
                    None => {
                        item.target = label;
                        p.items
                            .push(item.set(Action::Skip, "its model is not in the bundle"));
                        continue;
                    }
                }
            }
            other => {
                p.items.push(item.set(
                    Action::Skip,
                    format!("permissions of {other} objects are not replayed"),
                ));
                continue;
            }
        };
        item.target = target_label.clone();
        let desired = desired_acl(&sp.permissions, rt, &target_label, p.mapper, me.as_ref());
        item.notes.extend(desired.notes.clone());
        if !desired.unmapped.is_empty() {
            p.items.push(item.set(
                Action::Refuse,
                format!(
                    "ACL names unmapped principal(s): {}",
                    desired.unmapped.join(", ")
                ),
            ));
            continue;
        }
        let object = object.expect("resolved above");
        match current_known {
            Some(current) => {
                // A new object: its ACL is known without reading it.
                if same_acl(&current, &desired.entries) {
                    item.action = Action::Unchanged;
                } else {
                    item.action = Action::Create;
                    if p.input.mode == Mode::Diff {
                        item.reasons.push("missing in target".into());
                    }
                    item.step = Some(Step::Permissions {
                        object,
                        acl: desired.entries,
                    });
                }
                pending.push((item, Vec::new(), false));
            }
            None => {
                let AclObject::Id { request_type, id } = &object else {
                    unreachable!("existing objects have ids")
                };
                reads.push((pending.len(), request_type.clone(), id.clone()));
                item.step = Some(Step::Permissions {
                    object: object.clone(),
                    acl: desired.entries.clone(),
                });
                pending.push((item, desired.entries, true));
            }
        }
    }
    let client = p.client().clone();
    let got = concurrently(reads, p.limit, |(i, rt, id)| {
        let client = client.clone();
        async move { (i, client.permissions().get(&rt, &id).await) }
    })
    .await;
    let mut current: BTreeMap<
        usize,
        Result<crate::model::permissions::ObjectPermissions, ClientError>,
    > = got.into_iter().collect();
    for (i, (mut item, desired, read)) in pending.into_iter().enumerate() {
        if read {
            match current.remove(&i) {
                Some(Ok(p)) => {
                    let have = crate::import::acl::current_acl(&p);
                    if same_acl(&have, &desired) {
                        item.action = Action::Unchanged;
                        item.step = None;
                    } else {
                        item.action = Action::Update;
                        item.reasons.push(format!(
                            "direct ACL differs ({} entries, the bundle has {})",
                            have.len(),
                            desired.len()
                        ));
                    }
                }
                Some(Err(e)) if e.is_auth_failure() => return Err(p.err(e)),
                Some(Err(e)) => {
                    item.step = None;
                    item = item.set(Action::Cannot, format!("reading its ACL: {e}"));
                }
                None => {}
            }
        }
        p.items.push(item);
    }
    Ok(())
}

async fn apply<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let items = run.items_of(&[Kind::Permissions]);
    run.each(items, |item, step| async move {
        let Step::Permissions { object, acl } = step else {
            return Err("internal: wrong step".into());
        };
        let (rt, id) = resolve(run, object).await?;
        run.wrote();
        run.client
            .permissions()
            .set(&rt, &id, acl)
            .await
            .map_err(|e| e.to_string())?;
        run.ledger.record(item.key.clone(), json!({}));
        Ok(Run::created_or_updated(item))
    })
    .await
}

async fn resolve(run: &Run<'_>, object: &AclObject) -> Result<(String, String), String> {
    match object {
        AclObject::Id { request_type, id } => Ok((request_type.clone(), id.clone())),
        AclObject::Path { request_type, path } => {
            if run.st().failed_paths.contains(path) {
                return Err("its object could not be imported".into());
            }
            let info = run
                .client
                .workspace()
                .get_status(path)
                .await
                .map_err(|e| format!("finding {path}: {e}"))?;
            Ok((request_type.clone(), info.object_id.to_string()))
        }
        AclObject::Repo { path } => match run.st().repo_ids.get(path) {
            Some(id) => Ok(("repos".into(), id.to_string())),
            None => Err("its repo could not be created".into()),
        },
        AclObject::Model { name } => run
            .client
            .mlflow()
            .get_model_databricks(name)
            .await
            .map(|m| ("registered-models".to_string(), m.id))
            .map_err(|e| format!("finding model {name}: {e}")),
        AclObject::Job { source_id } => match run.st().job_ids.get(source_id) {
            Some(id) => Ok(("jobs".into(), id.to_string())),
            None => Err("its job could not be created".into()),
        },
    }
}

/// Reads a permissions record: its typed meta (§6.4) and the stored permissions answer.
fn load(
    source: &mut SourceBundle,
    r: &Record,
    payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    use super::format::{ObjectId, PermissionsFile, PermissionsMeta};
    let m: PermissionsMeta = source.typed_meta(r)?;
    let permissions = source.payload::<PermissionsFile>(r, &payload)?;
    source
        .permissions
        .push(crate::import::source::SrcPermissions {
            request_object_type: m.request_object_type,
            object_id: match m.object_id {
                ObjectId::Text(s) => s,
                ObjectId::Number(n) => n.to_string(),
            },
            object_name: m.object_name,
            permissions,
        });
    Ok(())
}
