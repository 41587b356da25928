//! How object permissions are planned and replayed into a target.
//!
//! An ACL is tied to its source by the object it belongs to (`{request type}/{source id}`):
//! the object is found in the target by its mapped path, its repo, the job import created or
//! found by its source tag, or the model's name. The bundle's direct ACL is compared with the
//! target's: equal is unchanged, different is an update (no conflict: apply replaces the
//! object's direct ACL with a `PUT`); an ACL naming an unmapped principal is refused, one whose
//! object is not imported is skipped.
//!
//! A write that would change nothing anyone can do is not sent: when the bundle's direct ACL
//! plus what the object inherits gives every principal exactly what the target's direct ACL
//! plus the same inherited entries gives it, the item is unchanged and a note names the
//! inherited entries. Inherited entries count only when the objects they come from keep their
//! ACL in this plan (see `decide`).

use crate::bundle::inventory::Record;
use crate::client::ClientError;
use crate::import::acl::{
    acl_change, current_acl, desired_acl, inherited_acl, passed_down, same_acl, AclChange,
    InheritedEntry,
};
use crate::import::apply::{Run, StepResult};
use crate::import::ledger::keys;
use crate::import::plan::{AclObject, Action, Mode, PlanItem, Planner, Step};
use crate::import::source::{SourceBundle, SrcPermissions};
use crate::import::target::concurrently;
use crate::import::ImportError;
use crate::model::permissions::{AccessControlRequest, ObjectPermissions};
use crate::model::workspace::ObjectType;
use crate::model::Kind;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

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
    // Source object id → its folder or object (by index, `true` for a folder), for the paths
    // of workspace ACL records: indexes, not copies of every path (issue #15).
    let mut by_id: BTreeMap<i64, (bool, usize)> = BTreeMap::new();
    for (i, d) in p.src().directories.iter().enumerate() {
        by_id.insert(d.object_id, (true, i));
    }
    for (i, o) in p.src().objects.iter().enumerate() {
        by_id.insert(o.object_id, (false, i));
    }
    // The ACLs to read for what new objects inherit (see `ancestor_to_read`), each once: the
    // pending items name them by index.
    let mut parents = Parents::default();
    // At most one per record, reserved at once: grown by doubling, up to half of a vector
    // of every object's item would be spare (issue #15).
    let mut pending: Vec<Pending> = Vec::with_capacity(p.src().permissions.len());
    for (record, sp) in p.src().permissions.iter().enumerate() {
        let rt = sp.request_object_type.as_str();
        let mut item = new_item(sp);
        // The object's place in the workspace tree, for what it inherits from folders.
        let mut tree_path: Option<String> = None;
        // Resolve the object in the target.
        let (object, target_label, current_known): (
            Option<AclObject>,
            String,
            Option<Vec<AccessControlRequest>>,
        ) = match rt {
            "notebooks" | "directories" | "files" => {
                let src_path = sp
                    .object_id
                    .parse::<i64>()
                    .ok()
                    // Only the id as the inventory writes it (`7`, not `+7` or `007`).
                    .filter(|n| n.to_string() == sp.object_id)
                    .and_then(|n| by_id.get(&n))
                    .map(|&(dir, i)| match dir {
                        true => p.src().directories[i].path.clone(),
                        false => p.src().objects[i].path.clone(),
                    })
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
                tree_path = Some(tgt.clone());
                match p.path_action(&tgt) {
                    Some(Action::Create) => (
                        Some(AclObject::Path {
                            request_type: static_rt(rt),
                            path: tgt.clone(),
                        }),
                        label,
                        Some(Vec::new()),
                    ),
                    Some(Action::Refuse | Action::Skip | Action::Cannot) => {
                        item.target = label;
                        p.items
                            .push(item.set(Action::Skip, "its object is not imported"));
                        continue;
                    }
                    _ => match p.tree.get(&tgt) {
                        Some(info) => (
                            Some(AclObject::Id {
                                request_type: static_rt(rt),
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
                    tree_path = Some(path.clone());
                    match (action, id) {
                        (Action::Create, _) => {
                            (Some(AclObject::Repo { path }), label, Some(Vec::new()))
                        }
                        (Action::Unchanged | Action::Update, Some(id)) => (
                            Some(AclObject::Id {
                                request_type: "repos",
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
                                request_type: "jobs",
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
                                    request_type: "registered-models",
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
        item.target = target_label;
        let permissions = p.src().permissions_of(sp)?;
        let desired = desired_acl(&permissions, rt, &item.target, p.mapper, me.as_ref());
        item.notes.extend(desired.notes);
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
        debug_assert!(
            current_known.is_some() || matches!(object, AclObject::Id { .. }),
            "existing objects have ids"
        );
        let desired = desired.entries;
        let parent = match (&current_known, &tree_path) {
            // Reading the parent only pays when the ACL would be written otherwise.
            (Some(current), Some(path)) if !same_acl(current, &desired) => {
                ancestor_to_read(p, path).map(|k| parents.index(k))
            }
            _ => None,
        };
        pending.push(Pending {
            record: u32::try_from(record).expect("the inventory's record limit fits"),
            depth: tree_path
                .as_deref()
                .map_or(0, |t| t.matches('/').count() as u32),
            parent,
            target: item.target,
            notes: item.notes,
            desired,
            object,
            current: current_known,
        });
    }
    drop(by_id);
    decide(p, pending, parents.keys).await
}

/// `rt`, one of the workspace object request types matched by the caller, as a `'static` str.
fn static_rt(rt: &str) -> &'static str {
    crate::model::permissions::request_type(rt).expect("a request type of OBJECT_TYPES")
}

/// The plan item of a permissions record, still undecided (`Unchanged`, no step).
fn new_item(sp: &SrcPermissions) -> PlanItem {
    let rt = sp.request_object_type.as_str();
    let mut item = PlanItem::new(
        Kind::Permissions,
        format!("{rt}/{}", sp.object_id),
        format!("{rt}/{}", sp.object_id),
    );
    item.key = keys::permissions(rt, &sp.object_id);
    item
}

/// A permissions item whose object is resolved, waiting for what the target shows. It keeps
/// only what its [`PlanItem`] cannot be made again from: the source name and the journal key
/// come from the record (see [`new_item`]) when it is decided, so that one of these per object
/// holds no copies of them (issue #15).
struct Pending {
    /// Index into [`SourceBundle::permissions`].
    record: u32,
    /// Depth of the object's target path (`/` counted; 0 for objects not in the tree), to
    /// decide parents first.
    depth: u32,
    /// Index into the keys of the ACLs read for what a new object inherits (see [`Parents`]).
    parent: Option<u32>,
    /// The item's target label.
    target: String,
    /// The item's notes so far.
    notes: Vec<String>,
    /// The bundle's direct ACL, mapped.
    desired: Vec<AccessControlRequest>,
    object: AclObject,
    /// The direct ACL of an object this import creates (known without reading it); `None` for
    /// an existing object, whose permissions are read.
    current: Option<Vec<AccessControlRequest>>,
}

/// The ACLs read for what new objects inherit, `(request type, id)`, each kept once: many new
/// objects share a parent (all of them, into an empty workspace).
#[derive(Default)]
struct Parents {
    keys: Vec<(String, String)>,
    index: BTreeMap<(String, String), u32>,
}

impl Parents {
    /// The index of `key`, added if new.
    fn index(&mut self, key: (String, String)) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = u32::try_from(self.keys.len()).expect("fewer parents than records");
        self.keys.push(key.clone());
        self.index.insert(key, i);
        i
    }
}

impl Pending {
    /// `(request type, id)` of an existing object.
    fn existing(&self) -> Option<(&str, &str)> {
        match (&self.current, &self.object) {
            (None, AclObject::Id { request_type, id }) => Some((request_type, id.as_str())),
            _ => None,
        }
    }
}

/// The permissions to read for an object this import creates, to learn what it will inherit:
/// those of its nearest ancestor already in the target (a folder, or a repo). What new folders
/// between them will hold only adds to that, and is not counted.
fn ancestor_to_read(p: &Planner<'_, '_>, path: &str) -> Option<(String, String)> {
    let mut a = path;
    while a != "/" {
        a = crate::model::workspace::parent_path(a);
        if let Some(info) = p.tree.get(a) {
            let rt = match info.object_type {
                ObjectType::Directory => "directories",
                ObjectType::Repo => "repos",
                _ => return None,
            };
            return Some((rt.to_string(), info.object_id.to_string()));
        }
    }
    None
}

/// Reads what the target shows (one permissions read per object, shared by an existing
/// folder's own item and the new objects below it) and decides each item.
///
/// A write is left out when it would change nothing anyone can do ([`acl_change`]): the
/// object's inherited entries count only when every object they come from keeps its ACL in
/// this plan, so items are decided parents first, and an object whose ACL the plan writes
/// stops being a source to rely on. A new workspace object or repo inherits from its nearest
/// ancestor in the target; a new job or model inherits nothing known.
async fn decide(
    p: &mut Planner<'_, '_>,
    mut pending: Vec<Pending>,
    parent_keys: Vec<(String, String)>,
) -> Result<(), ImportError> {
    // Parents first: an object's sources are all above it in the tree. (Sorted by cached
    // keys: a stable sort of the items themselves takes scratch space of half of them.)
    pending.sort_by_cached_key(|x| x.depth);
    // Objects in the target whose ACL this plan may still write (`/directories/123`).
    let mut may_write: BTreeSet<String> = pending
        .iter()
        .filter_map(|x| x.existing().map(|(rt, id)| format!("/{rt}/{id}")))
        .collect();
    // The parents (folders and repos above new objects: few) are read first and kept; the
    // ACL of each existing object is read with the chunk of items it belongs to and dropped
    // once they are decided, in the same order: every existing object's permissions at once
    // were most of what `diff` held per object (issue #15). Every ACL is still read once.
    let parent_set: BTreeSet<(String, String)> = parent_keys.iter().cloned().collect();
    let mut read = read_acls(p, parent_set.iter().cloned().collect()).await?;
    let mut items = pending.into_iter();
    loop {
        let chunk: Vec<Pending> = items.by_ref().take(DECIDE_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let own: BTreeSet<(String, String)> = chunk
            .iter()
            .filter_map(|x| x.existing())
            .map(|(rt, id)| (rt.to_string(), id.to_string()))
            .filter(|k| !read.contains_key(k))
            .collect();
        read.extend(read_acls(p, own.into_iter().collect()).await?);
        decide_chunk(p, chunk, &parent_keys, &read, &mut may_write);
        read.retain(|k, _| parent_set.contains(k));
    }
    Ok(())
}

/// Items decided between two reads of the target's ACLs (see [`decide`]).
const DECIDE_CHUNK: usize = 1024;

/// The ACLs of `keys` (`(request type, id)`), read concurrently; a refused token stops the
/// plan.
async fn read_acls(
    p: &Planner<'_, '_>,
    keys: Vec<(String, String)>,
) -> Result<BTreeMap<(String, String), Result<ObjectPermissions, ClientError>>, ImportError> {
    let client = p.client().clone();
    let got = concurrently(keys, p.limit, |(rt, id)| {
        let client = client.clone();
        async move {
            let r = client.permissions().get(&rt, &id).await;
            ((rt, id), r)
        }
    })
    .await;
    let mut read = BTreeMap::new();
    for (k, r) in got {
        match r {
            Err(e) if e.is_auth_failure() => return Err(p.err(e)),
            r => {
                read.insert(k, r);
            }
        }
    }
    Ok(read)
}

/// Decides the items of one chunk, in order, from what was read of the target.
fn decide_chunk(
    p: &mut Planner<'_, '_>,
    chunk: Vec<Pending>,
    parent_keys: &[(String, String)],
    read: &BTreeMap<(String, String), Result<ObjectPermissions, ClientError>>,
    may_write: &mut BTreeSet<String>,
) {
    let get = |rt: &str, id: &str| read.get(&(rt.to_string(), id.to_string()));
    for x in chunk {
        let existing_key = x.existing().map(|(t, id)| (t.to_string(), id.to_string()));
        let Pending {
            record,
            parent,
            target,
            notes,
            desired,
            object,
            current,
            ..
        } = x;
        let mut item = new_item(&p.src().permissions[record as usize]);
        item.target = target;
        item.notes = notes;
        let parent = parent.map(|i| &parent_keys[i as usize]);
        let rt = object.request_type();
        let (have, inherited) = match &existing_key {
            Some((t, id)) => match get(t, id) {
                Some(Ok(perms)) => (current_acl(perms), inherited_acl(perms)),
                Some(Err(e)) => {
                    may_write.remove(&format!("/{t}/{id}"));
                    p.items
                        .push(item.set(Action::Cannot, format!("reading its ACL: {e}")));
                    continue;
                }
                None => unreachable!("every existing object's ACL is read"),
            },
            None => {
                let inherited = match parent.and_then(|(t, id)| get(t, id)) {
                    Some(Ok(perms)) => passed_down(perms),
                    // Not known: the write goes ahead as if nothing were inherited.
                    _ => Vec::new(),
                };
                (current.unwrap_or_default(), inherited)
            }
        };
        // Only what no write of this plan can take away.
        let lasting: Vec<InheritedEntry> = inherited
            .into_iter()
            .filter(|e| !e.from.is_empty() && e.from.iter().all(|f| !may_write.contains(f)))
            .collect();
        let change = acl_change(rt, &desired, &have, &lasting);
        match change {
            AclChange::Same => item.action = Action::Unchanged,
            AclChange::Inherited(by) => {
                item.action = Action::Unchanged;
                item.notes.push(format!(
                    "permissions write skipped: the bundle's direct ACL ({} entries) differs from the target's ({}), but the target already grants the same by inheritance ({})",
                    desired.len(),
                    have.len(),
                    by.iter().map(InheritedEntry::describe).collect::<Vec<_>>().join("; ")
                ));
            }
            AclChange::Changes => {
                if existing_key.is_some() {
                    item.action = Action::Update;
                    item.reasons.push(format!(
                        "direct ACL differs ({} entries, the bundle has {})",
                        have.len(),
                        desired.len()
                    ));
                } else {
                    item.action = Action::Create;
                    if p.input.mode == Mode::Diff {
                        item.reasons.push("missing in target".into());
                    }
                }
                item.step = Some(Step::Permissions {
                    object: Box::new(object),
                    acl: desired,
                });
            }
        }
        if item.action == Action::Unchanged {
            if let Some((t, id)) = &existing_key {
                may_write.remove(&format!("/{t}/{id}"));
            }
        }
        p.items.push(item);
    }
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
            .set(rt, &id, acl)
            .await
            .map_err(|e| e.to_string())?;
        run.ledger.record(item.key.clone(), json!({}));
        Ok(Run::created_or_updated(item))
    })
    .await
}

/// The request type and target id of the object whose ACL is set.
async fn resolve(run: &Run<'_>, object: &AclObject) -> Result<(&'static str, String), String> {
    let rt = object.request_type();
    match object {
        AclObject::Id { id, .. } => Ok((rt, id.clone())),
        AclObject::Path { path, .. } => {
            if run.st().failed_paths.contains(path) {
                return Err("its object could not be imported".into());
            }
            let info = run
                .client
                .workspace()
                .get_status(path)
                .await
                .map_err(|e| format!("finding {path}: {e}"))?;
            Ok((rt, info.object_id.to_string()))
        }
        AclObject::Repo { path } => match run.st().repo_ids.get(path) {
            Some(id) => Ok((rt, id.to_string())),
            None => Err("its repo could not be created".into()),
        },
        AclObject::Model { name } => run
            .client
            .mlflow()
            .get_model_databricks(name)
            .await
            .map(|m| (rt, m.id))
            .map_err(|e| format!("finding model {name}: {e}")),
        AclObject::Job { source_id } => match run.st().job_ids.get(source_id) {
            Some(id) => Ok((rt, id.to_string())),
            None => Err("its job could not be created".into()),
        },
    }
}

/// Reads a permissions record's typed meta (§6.4); the stored permissions answer is read when
/// the record is planned ([`SourceBundle::permissions_of`]). The permissions of registered
/// models are gathered for the models stage too.
fn load(
    source: &mut SourceBundle,
    r: &Record,
    _payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    use super::format::{ObjectId, PermissionsMeta};
    let m: PermissionsMeta = source.typed_meta(r)?;
    if m.request_object_type == "registered-models" {
        source.gather_model(r)?;
    }
    source
        .permissions
        .push(crate::import::source::SrcPermissions {
            request_object_type: m.request_object_type,
            object_id: match m.object_id {
                ObjectId::Text(s) => s,
                ObjectId::Number(n) => n.to_string(),
            },
            object_name: m.object_name,
            stored: r.stored.first().cloned(),
        });
    Ok(())
}
