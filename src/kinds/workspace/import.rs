//! How folders, notebooks and workspace files are planned and replayed into a target.
//!
//! An object is tied to its source by its target path (the source path, mapped). A folder
//! there is ours; a notebook or file of the same type is exported and compared with the
//! bundle's content (and a notebook's language). Other content or language, or another type of
//! object at the path, is a conflict; another type is never overwritten in place. Apply sends
//! `mkdirs` for the deepest folders needed, then one workspace import per notebook or file.
//!
//! A folder the target does not have yet, holding at least two notebooks to create, is created
//! with its notebooks by one directory import (a `SOURCE` zip of their source, see
//! [`crate::client::archive`]), then confirmed by one listing of it; a notebook the listing does
//! not show is imported on its own, as are files and notebooks the archive cannot carry
//! (another format, no source header, no known language). A directory import that is refused
//! leaves the folder to `mkdirs` and its notebooks to one import each. The report says which
//! way each folder went.

use crate::bundle::inventory::Record;
use crate::client::archive;
use crate::client::workspace::Import;
use crate::import::apply::{ambiguous, backoff, Run, StepResult, AMBIGUOUS_ATTEMPTS, INTERRUPTED};
use crate::import::compare::same_content;
use crate::import::ledger::keys;
use crate::import::plan::{Action, Mode, PlanItem, Planner, Step};
use crate::import::report::Outcome;
use crate::import::source::MAX_IMPORT_BYTES;
use crate::import::source::{SourceBundle, SrcObject};
use crate::import::target::{concurrently, list_tree};
use crate::import::ImportError;
use crate::model::workspace::{
    at_or_below_any, base_name, parent_path, self_and_ancestors, Format, ObjectType,
};
use crate::model::Kind;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

crate::import::unit::unit! {
    /// The import unit of folders, notebooks and workspace files.
    Workspace: [Kind::Directory, Kind::Notebook, Kind::File]
}

async fn plan(p: &mut Planner<'_, '_>) -> Result<(), ImportError> {
    let f = &p.opts().filter;
    let m = &p.opts().mapping;
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let dirs: Vec<(String, String)> = if f.kind(Kind::Directory) {
        p.src()
            .directories
            .iter()
            .filter(|d| p.selected_path(&d.path))
            .map(|d| (d.path.clone(), m.path(&d.path)))
            .collect()
    } else {
        Vec::new()
    };
    let objects: Vec<(usize, String)> = p
        .src()
        .objects
        .iter()
        .enumerate()
        .filter(|(_, o)| f.kind(o.kind) && p.selected_path(&o.path))
        .map(|(i, o)| (i, m.path(&o.path)))
        .collect();
    for (_, t) in &dirs {
        wanted.insert(t.clone());
    }
    for (_, t) in &objects {
        wanted.insert(t.clone());
    }
    if f.kind(Kind::Repo) {
        for r in &p.src().repos {
            if let Some(path) = &r.path {
                if p.selected_path(path) {
                    wanted.insert(m.path(path));
                }
            }
        }
    }
    p.tree = list_tree(p.client(), &wanted, p.limit)
        .await
        .map_err(|e| p.err(e))?;

    for (src, tgt) in dirs {
        let mut item = PlanItem::new(Kind::Directory, &src, &tgt);
        item.key = keys::object("dir", &tgt);
        if src != tgt {
            item.notes.push(format!("{src} → {tgt}"));
        }
        if let Some(repo) = inside_repo(p, &src) {
            item = item.set(
                Action::Skip,
                format!("inside the Git folder {repo}; its content comes from the remote"),
            );
        } else if p
            .src()
            .repos
            .iter()
            .any(|r| r.path.as_deref() == Some(src.as_str()))
        {
            item = item.set(Action::Skip, "it is a Git folder, replayed as a repo");
        } else {
            match p.tree.get(&tgt).map(|o| o.object_type) {
                Some(ObjectType::Directory) => item.action = Action::Unchanged,
                Some(other) => {
                    let (a, r) = p.conflict(format!("a {other:?} exists at {tgt}").to_lowercase());
                    item = item.set(
                        if a == Action::Update {
                            Action::Refuse
                        } else {
                            a
                        },
                        r,
                    );
                }
                None if tgt == "/" => item.action = Action::Unchanged,
                None => {
                    item.action = Action::Create;
                    if p.input.mode == Mode::Diff {
                        item.reasons.push("missing in target".into());
                    }
                    item.step = Some(Step::Dir { path: tgt.clone() });
                }
            }
        }
        p.push_path_item(item);
    }

    // Objects: each item goes into the plan at once (no second list of items, issue #15);
    // those that exist are compared below and their item decided in its place.
    let mut to_compare: Vec<Compare> = Vec::new();
    for (idx, tgt) in objects {
        let o = &p.src().objects[idx];
        let kname = if o.kind == Kind::Notebook {
            "notebook"
        } else {
            "file"
        };
        let mut item = PlanItem::new(o.kind, &o.path, &tgt);
        item.key = keys::object(kname, &tgt);
        if o.path != tgt {
            item.notes.push(format!("{} → {tgt}", o.path));
        }
        let want_type = if o.kind == Kind::Notebook {
            ObjectType::Notebook
        } else {
            ObjectType::File
        };
        if let Some(repo) = inside_repo(p, &o.path) {
            p.push_path_item(item.set(
                Action::Skip,
                format!("inside the Git folder {repo}; its content comes from the remote"),
            ));
            continue;
        }
        if o.stored.is_none() {
            let why = if o.notes.is_empty() {
                "the bundle holds no content for it".to_string()
            } else {
                format!("the bundle holds no content for it: {}", o.notes.join("; "))
            };
            p.push_path_item(item.set(Action::Cannot, why));
            continue;
        }
        if o.size > MAX_IMPORT_BYTES {
            p.push_path_item(item.set(
                Action::Cannot,
                format!(
                    "{} bytes, over the 10 MB the workspace import API accepts",
                    o.size
                ),
            ));
            continue;
        }
        match p.tree.get(&tgt) {
            None => {
                item.action = Action::Create;
                if p.input.mode == Mode::Diff {
                    item.reasons.push("missing in target".into());
                }
                item.step = Some(Step::Import {
                    index: idx,
                    overwrite: false,
                });
                p.push_path_item(item);
            }
            Some(info) if info.object_type != want_type => {
                let (a, r) = p.conflict(format!(
                    "a {} exists at {tgt}",
                    format!("{:?}", info.object_type).to_lowercase()
                ));
                // An object of another type cannot be overwritten in place.
                let action = if a == Action::Update {
                    Action::Refuse
                } else {
                    a
                };
                p.push_path_item(item.set(action, r));
            }
            Some(info) => {
                // Always compared with what the target holds: a journal line says only
                // what an earlier run put, not that nobody changed it since.
                let lang_differs = o.kind == Kind::Notebook
                    && o.language.is_some()
                    && info.language.is_some()
                    && o.language != info.language;
                if lang_differs {
                    let (a, r) = p.conflict(format!(
                        "a {} notebook exists at {tgt}",
                        info.language.map(|l| l.as_str()).unwrap_or("")
                    ));
                    set_import_step(&mut item, a, r, idx);
                    p.push_path_item(item);
                } else {
                    to_compare.push(Compare {
                        item: p.items.len(),
                        index: idx,
                    });
                    // Unchanged until the comparison below says otherwise.
                    p.push_path_item(item);
                }
            }
        }
    }
    // Export the existing ones and compare, each as its answer comes: only a verdict that
    // changes the item is kept — not what the target sent, nor a result per object (issue
    // #15: a re-import or a diff compares every object).
    let client = p.client().clone();
    let src = p.input.source;
    let items = &p.items;
    let mut differing: Vec<(Compare, Result<Verdict, ImportError>)> =
        futures_util::stream::iter(to_compare)
            .map(|c| {
                let client = client.clone();
                let target = items[c.item].target.as_str();
                async move {
                    let o = &src.objects[c.index];
                    let v = compare(&client, src, o, target).await;
                    (c, v)
                }
            })
            .buffer_unordered(p.limit.max(1))
            .filter(|(_, v)| std::future::ready(!matches!(v, Ok(Verdict::Same))))
            .collect()
            .await;
    // In plan order, whatever order the answers came in.
    differing.sort_by_key(|(c, _)| c.item);
    for (c, v) in differing {
        let target = &p.items[c.item].target;
        let (a, r) = match v? {
            Verdict::Same => continue,
            Verdict::Differs => p.conflict(format!("{target} exists with other content")),
            Verdict::Unknown(e) => {
                p.conflict(format!("{target} exists and could not be compared: {e}"))
            }
        };
        set_import_step(&mut p.items[c.item], a, r, c.index);
    }
    Ok(())
}

/// An object that exists in the target, to compare with the bundle's.
struct Compare {
    /// Its item's place in the plan (the item holds its target path).
    item: usize,
    /// Its index in the source's objects.
    index: usize,
}

/// What a comparison of an existing object with the bundle's found.
enum Verdict {
    /// The same content.
    Same,
    /// Other content.
    Differs,
    /// It could not be compared, and why.
    Unknown(String),
}

/// Exports the target's object at `target` and compares it with the bundle's `o`.
async fn compare(
    client: &crate::client::Client,
    src: &SourceBundle,
    o: &SrcObject,
    target: &str,
) -> Result<Verdict, ImportError> {
    let format = if o.kind == Kind::Notebook && o.format != Format::Source {
        o.format
    } else {
        Format::Source
    };
    match client.workspace().export(target, format, None).await {
        Ok(bytes) => {
            if o.sha256.is_some_and(|h| h == sha256(&bytes)) {
                Ok(Verdict::Same)
            } else if o.kind == Kind::Notebook && o.format != Format::Source {
                // Rich formats are not byte-stable across exports.
                Ok(Verdict::Differs)
            } else {
                let stored = o.stored.clone().unwrap_or_default();
                let mine = src.read(&stored, MAX_IMPORT_BYTES)?;
                Ok(if same_content(&mine, &bytes) {
                    Verdict::Same
                } else {
                    Verdict::Differs
                })
            }
        }
        Err(e) if e.is_auth_failure() => Err(crate::import::plan::target_err(client, e)),
        Err(e) => Ok(Verdict::Unknown(e.to_string())),
    }
}

/// True when `path` is inside a repo of the bundle (repo content comes from its remote).
fn inside_repo(p: &Planner<'_, '_>, path: &str) -> Option<String> {
    p.src().repos.iter().find_map(|r| {
        let rp = r.path.as_deref()?;
        path.starts_with(&format!("{rp}/")).then(|| rp.to_string())
    })
}

/// Decides `item` by a conflict's answer: an update overwrites the object in place.
fn set_import_step(item: &mut PlanItem, a: Action, r: String, idx: usize) {
    item.decide(a, r);
    if a == Action::Update {
        item.step = Some(Step::Import {
            index: idx,
            overwrite: true,
        });
    }
}

/// Folders first: notebooks, files and repos go into them. Folders created by a directory
/// import come between the folders above them and those below them.
async fn apply<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let groups = archive_groups(run);
    let archived: BTreeSet<String> = groups.iter().map(|g| g.path.clone()).collect();
    let mut done = directories(run, &archived, false).await;
    // The notebooks' own targets, not copies (issue #15).
    let mut carried: BTreeSet<&'r str> = BTreeSet::new();
    if !groups.is_empty() {
        let results = concurrently(groups, run.options.concurrency(), |g| async move {
            import_folder(run, g).await
        })
        .await;
        for (items, paths) in results {
            done.extend(items);
            carried.extend(paths);
        }
        done.extend(directories(run, &archived, true).await);
    }
    done.extend(objects(run, &carried).await);
    done
}

/// A folder to create with one directory import, and the notebooks it may carry.
struct Group<'r> {
    path: String,
    dir: &'r PlanItem,
    notebooks: Vec<(&'r PlanItem, usize)>,
}

/// A folder is created with one directory import when it holds at least this many notebooks
/// to create (one would cost the same request either way).
const MIN_ARCHIVE_NOTEBOOKS: usize = 2;

/// True when `path` is `dir` or inside it.
fn at_or_below(path: &str, dir: &str) -> bool {
    path == dir || path.starts_with(&format!("{dir}/"))
}

/// True when `path` is strictly inside one of `dirs`.
fn below_any(path: &str, dirs: &BTreeSet<String>) -> bool {
    self_and_ancestors(path).skip(1).any(|d| dirs.contains(d))
}

/// The folders to create with a directory import: folders this import creates (the target has
/// nothing at their path) holding at least [`MIN_ARCHIVE_NOTEBOOKS`] new `SOURCE` notebooks of a
/// known language; of nested ones, the outermost.
fn archive_groups<'r>(run: &'r Run<'_>) -> Vec<Group<'r>> {
    let mut dirs: BTreeMap<&str, &PlanItem> = BTreeMap::new();
    for item in run.items_of(&[Kind::Directory]) {
        if let Some(Step::Dir { path }) = &item.step {
            if path != "/" && run.plan.tree.get(path).is_none() {
                dirs.insert(path.as_str(), item);
            }
        }
    }
    let mut notebooks: BTreeMap<&str, Vec<(&PlanItem, usize)>> = BTreeMap::new();
    for item in run.items_of(&[Kind::Notebook]) {
        let Some(Step::Import {
            index,
            overwrite: false,
        }) = &item.step
        else {
            continue;
        };
        let path = &item.target;
        let o = &run.source.objects[*index];
        if o.format == Format::Source && o.language.is_some() && o.stored.is_some() {
            notebooks
                .entry(parent_path(path))
                .or_default()
                .push((item, *index));
        }
    }
    let candidates: Vec<&str> = dirs
        .keys()
        .copied()
        .filter(|d| {
            notebooks
                .get(d)
                .is_some_and(|n| n.len() >= MIN_ARCHIVE_NOTEBOOKS)
        })
        .collect();
    let candidate_set: BTreeSet<&str> = candidates.iter().copied().collect();
    let outermost: BTreeSet<&str> = candidates
        .iter()
        .copied()
        .filter(|d| {
            !self_and_ancestors(d)
                .skip(1)
                .any(|a| candidate_set.contains(a))
        })
        .collect();
    // Why the other folders with notebooks to create go object by object.
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for item in run.items_of(&[Kind::Notebook]) {
        if let Some(Step::Import {
            overwrite: false, ..
        }) = &item.step
        {
            *count.entry(parent_path(&item.target)).or_default() += 1;
        }
    }
    {
        let mut st = run.st();
        for (folder, n) in &count {
            if outermost.contains(folder) {
                continue;
            }
            let eligible = notebooks.get(folder).map_or(0, Vec::len);
            let why = if !dirs.contains_key(folder) {
                "the folder exists in the target already (or is the root)".to_string()
            } else if let Some(a) = self_and_ancestors(folder).find(|a| outermost.contains(a)) {
                format!("inside {a}, which is created by a directory import of its own")
            } else if eligible < MIN_ARCHIVE_NOTEBOOKS {
                format!(
                    "{eligible} of them can travel in a folder archive (SOURCE format, language known); too few to save a request"
                )
            } else {
                "not eligible for a directory import".to_string()
            };
            st.folders.insert(
                folder.to_string(),
                format!("per object ({n} notebooks): {why}"),
            );
        }
    }
    outermost
        .iter()
        .map(|d| Group {
            path: d.to_string(),
            dir: dirs[d],
            notebooks: notebooks.remove(d).unwrap_or_default(),
        })
        .collect()
}

/// Creates one folder and its notebooks with a directory import, then lists it to see what was
/// created. Returns the results of the folder and of the notebooks it carried, and the target
/// paths of those notebooks; the others are left to their own imports.
async fn import_folder<'r>(
    run: &'r Run<'_>,
    g: Group<'r>,
) -> (Vec<(&'r PlanItem, StepResult)>, Vec<&'r str>) {
    if run.interrupt.is_set() {
        return (Vec::new(), Vec::new());
    }
    let n = g.notebooks.len();
    let parent = parent_path(&g.path).to_string();
    let parent_failed = at_or_below_any(&parent, &run.st().failed_dirs);
    if parent_failed {
        run.st().failed_dirs.insert(g.path.clone());
        run.st().folders.insert(
            g.path.clone(),
            format!("per object ({n} notebooks): its parent folder could not be created"),
        );
        run.tick(g.dir.kind);
        return (
            vec![(
                g.dir,
                Err(format!("its parent folder {parent} could not be created")),
            )],
            Vec::new(),
        );
    }
    let (included, skipped) = archive_entries(run, &g);
    let zip = if included.len() < MIN_ARCHIVE_NOTEBOOKS {
        Err(format!(
            "only {} of its notebooks can travel in a folder archive: {}",
            included.len(),
            skipped.join("; ")
        ))
    } else {
        let entries: Vec<(String, &[u8])> = included
            .iter()
            .map(|(name, _, _, bytes)| (name.clone(), bytes.as_slice()))
            .collect();
        archive::build(base_name(&g.path), &entries).and_then(|z| {
            if z.len() as u64 > MAX_IMPORT_BYTES {
                Err(format!(
                    "its archive of {} bytes is over the 10 MB the import API accepts",
                    z.len()
                ))
            } else {
                Ok(z)
            }
        })
    };
    let imported = match zip {
        Ok(z) => send_archive(run, &g.path, bytes::Bytes::from(z)).await,
        Err(why) => Err(why),
    };
    if let Err(why) = imported {
        // Refused: the folder by mkdirs, its notebooks one by one.
        if why == INTERRUPTED {
            return (Vec::new(), Vec::new());
        }
        run.st()
            .folders
            .insert(g.path.clone(), format!("per object ({n} notebooks): {why}"));
        run.wrote();
        let r = match run.client.workspace().mkdirs(&g.path).await {
            Ok(()) => {
                run.ledger
                    .record(g.dir.key.clone(), json!({ "sha256": Value::Null }));
                Ok(Outcome::Created)
            }
            Err(e) => {
                run.st().failed_dirs.insert(g.path.clone());
                Err(format!("mkdirs {}: {e}", g.path))
            }
        };
        run.tick(g.dir.kind);
        return (vec![(g.dir, r)], Vec::new());
    }
    // What the directory import created: one listing.
    let listed: Result<BTreeMap<String, crate::model::workspace::ObjectInfo>, String> = run
        .client
        .workspace()
        .list(&g.path)
        .await
        .map(|objs| {
            objs.into_iter()
                .map(|o| {
                    (
                        crate::model::workspace::normalize_path(&o.path).to_string(),
                        o,
                    )
                })
                .collect()
        })
        .map_err(|e| e.to_string());
    run.ledger
        .record(g.dir.key.clone(), json!({ "sha256": Value::Null }));
    run.tick(g.dir.kind);
    let mut out = vec![(g.dir, Ok(Outcome::Created))];
    let mut carried = Vec::new();
    let mut missing = Vec::new();
    for (_, item, index, _) in &included {
        let Some(Step::Import { .. }) = &item.step else {
            continue;
        };
        let path = &item.target;
        let o = &run.source.objects[*index];
        let present = match &listed {
            Ok(objs) => objs.get(path).is_some_and(|i| {
                i.object_type == ObjectType::Notebook
                    && (i.language.is_none() || i.language == o.language)
            }),
            // No listing: each one is checked against its own export instead.
            Err(_) => check_object(run, *index, path).await.is_ok(),
        };
        if present {
            run.ledger.record(
                item.key.clone(),
                json!({ "sha256": o.sha256.map(hex::encode) }),
            );
            run.tick(item.kind);
            out.push((*item, Ok(Outcome::Created)));
            carried.push(path.as_str());
        } else {
            missing.push(base_name(path).to_string());
        }
    }
    let mut left: Vec<String> = skipped;
    if !missing.is_empty() {
        left.push(format!(
            "not created by the directory import: {}",
            missing.join(", ")
        ));
    }
    let how = if left.is_empty() {
        format!("archive ({} notebooks)", carried.len())
    } else {
        format!(
            "archive ({} notebooks), {} per object: {}",
            carried.len(),
            n - carried.len(),
            left.join("; ")
        )
    };
    run.st().folders.insert(g.path.clone(), how);
    (out, carried)
}

/// The notebooks of `g` that can travel in a folder archive — (entry name, item, source index,
/// `SOURCE` bytes) — and why the others cannot. A notebook whose source lacks its language's
/// header would not be recognised as one inside an archive.
#[allow(clippy::type_complexity)]
fn archive_entries<'r>(
    run: &'r Run<'_>,
    g: &Group<'r>,
) -> (Vec<(String, &'r PlanItem, usize, Vec<u8>)>, Vec<String>) {
    let mut included = Vec::new();
    let mut skipped = Vec::new();
    for (item, index) in &g.notebooks {
        let o = &run.source.objects[*index];
        let (Some(language), Some(stored)) = (o.language, o.stored.as_deref()) else {
            continue;
        };
        let name = archive::entry_name(base_name(&item.target), language);
        match run.source.read(stored, MAX_IMPORT_BYTES) {
            Ok(bytes) => {
                let header = language.source_header().as_bytes();
                let headed = bytes.starts_with(header)
                    && matches!(bytes.get(header.len()), Some(b'\n' | b'\r'));
                if headed {
                    included.push((name, *item, *index, bytes));
                } else {
                    skipped.push(format!("{name}: its source has no notebook header"));
                }
            }
            Err(e) => skipped.push(format!("{name}: {e}")),
        }
    }
    (included, skipped)
}

/// Sends one directory import of `zip` as the new folder `path`. An answer that leaves it
/// unknown whether the folder was made is settled by looking for the folder.
async fn send_archive(run: &Run<'_>, path: &str, zip: bytes::Bytes) -> Result<(), String> {
    let req = Import {
        path,
        content: zip,
        format: Format::Source,
        language: None,
        overwrite: false,
    };
    let mut last = String::new();
    for attempt in 0..AMBIGUOUS_ATTEMPTS {
        if run.interrupt.is_set() {
            return Err(INTERRUPTED.to_string());
        }
        run.wrote();
        match run.client.workspace().upload(&req).await {
            Ok(()) => return Ok(()),
            // An earlier attempt whose answer was lost made it; the listing says what.
            Err(e) if e.is_already_exists() && attempt > 0 => return Ok(()),
            Err(e) if ambiguous(&e) => {
                last = e.to_string();
                if run.client.workspace().get_status(path).await.is_ok() {
                    return Ok(());
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => {
                return Err(format!(
                    "the directory import was refused: {}",
                    first_line(&e.to_string())
                ))
            }
        }
    }
    Err(format!(
        "the directory import did not go through: {}",
        first_line(&last)
    ))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

// ----------------------------------------------------------------------------------------
// Folders.

/// `mkdirs` for the folders this import needs. Folders created by a directory import
/// (`archived`) are left out, and so, unless `below` is set, are the folders inside them;
/// with `below` set, only those are made (their parents exist by then).
async fn directories<'r>(
    run: &'r Run<'_>,
    archived: &BTreeSet<String>,
    below: bool,
) -> Vec<(&'r PlanItem, StepResult)> {
    if run.interrupt.is_set() {
        return Vec::new();
    }
    let in_phase = |p: &str| {
        if below {
            below_any(p, archived)
        } else {
            !at_or_below_any(p, archived)
        }
    };
    // Every folder this import needs: folder records, and the parents of what it creates.
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for i in &run.plan.items {
        match &i.step {
            Some(Step::Dir { path }) => {
                needed.insert(path.clone());
            }
            Some(Step::Import { .. }) | Some(Step::Repo { existing: None, .. }) => {
                let path = match &i.step {
                    Some(Step::Repo { path, .. }) => &**path,
                    _ => i.target.as_str(),
                };
                let p = parent_path(path);
                if !run.plan.tree.is_dir(p) {
                    needed.insert(p.to_string());
                }
            }
            _ => {}
        }
    }
    if !below {
        // The parents of the folders a directory import makes (it does not make parents).
        for a in archived {
            let p = parent_path(a);
            if !run.plan.tree.is_dir(p) {
                needed.insert(p.to_string());
            }
        }
    }
    needed.retain(|p| in_phase(p));
    // mkdirs makes parents, so only the deepest folders need a call.
    let leaves: Vec<String> = needed
        .iter()
        .filter(|p| {
            !needed
                .range::<String, _>((std::ops::Bound::Excluded(*p), std::ops::Bound::Unbounded))
                .take_while(|q| q.starts_with(p.as_str()))
                .any(|q| q.starts_with(&format!("{p}/")))
        })
        .cloned()
        .collect();
    let results = concurrently(leaves, run.options.concurrency(), |leaf| async move {
        if run.interrupt.is_set() {
            return (leaf, Err(INTERRUPTED.to_string()));
        }
        run.wrote();
        let r = run.client.workspace().mkdirs(&leaf).await;
        (leaf, r.map_err(|e| e.to_string()))
    })
    .await;
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    for (leaf, r) in results {
        if let Err(e) = r {
            failed.insert(leaf, e);
        }
    }
    // A folder is done when every leaf at or below it was made.
    let mut out = Vec::new();
    for item in run.items_of(&[Kind::Directory]) {
        let Some(Step::Dir { path }) = &item.step else {
            continue;
        };
        if !in_phase(path) || archived.contains(path) {
            continue;
        }
        let bad = failed
            .range::<String, _>(path..)
            .take_while(|(leaf, _)| leaf.starts_with(path.as_str()))
            .find(|(leaf, _)| at_or_below(leaf, path));
        let r = match bad {
            Some((_, e)) if e == INTERRUPTED => continue,
            Some((leaf, e)) => Err(format!("mkdirs {leaf}: {e}")),
            None => {
                run.ledger
                    .record(item.key.clone(), json!({ "sha256": Value::Null }));
                run.tick(item.kind);
                Ok(Outcome::Created)
            }
        };
        out.push((item, r));
    }
    run.st().failed_dirs.extend(failed.into_keys());
    out
}

// ----------------------------------------------------------------------------------------
// Notebooks and files.

/// One import per notebook or file, but for those a directory import created (`carried`).
async fn objects<'r>(
    run: &'r Run<'_>,
    carried: &BTreeSet<&str>,
) -> Vec<(&'r PlanItem, StepResult)> {
    let items: Vec<&PlanItem> = run
        .items_of(&[Kind::Notebook, Kind::File])
        .into_iter()
        .filter(|i| !matches!(&i.step, Some(Step::Import { .. }) if carried.contains(i.target.as_str())))
        .collect();
    let r = run
        .each(items, |item, step| async move {
            let Step::Import { index, overwrite } = step else {
                return Err("internal: wrong step".into());
            };
            let path = &item.target;
            let r = import_object(run, *index, path, *overwrite).await;
            if r.is_err() {
                run.st().failed_paths.insert(path.clone());
            } else {
                let o = &run.source.objects[*index];
                run.ledger.record(
                    item.key.clone(),
                    json!({ "sha256": o.sha256.map(hex::encode) }),
                );
            }
            r.map(|_| Run::created_or_updated(item))
        })
        .await;
    r
}

async fn import_object(
    run: &Run<'_>,
    index: usize,
    path: &str,
    overwrite: bool,
) -> Result<(), String> {
    let o = &run.source.objects[index];
    if at_or_below_any(parent_path(path), &run.st().failed_dirs) {
        return Err(format!(
            "its folder {} could not be created",
            parent_path(path)
        ));
    }
    let stored = o.stored.as_deref().ok_or("no content in the bundle")?;
    let content = run
        .source
        .read(stored, MAX_IMPORT_BYTES)
        .map_err(|e| e.to_string())?;
    let content = bytes::Bytes::from(content);
    let (format, language) = if o.kind == Kind::Notebook {
        (o.format, o.language)
    } else {
        (Format::Raw, None)
    };
    let req = Import {
        path,
        content: content.clone(),
        format,
        language,
        overwrite,
    };
    let mut last = String::new();
    for attempt in 0..AMBIGUOUS_ATTEMPTS {
        run.wrote();
        match run.client.workspace().upload(&req).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_already_exists() && attempt > 0 => {
                // An earlier attempt whose answer was lost may have made it.
                return check_object(run, index, path).await;
            }
            Err(e) if ambiguous(&e) => {
                last = e.to_string();
                if !overwrite && check_object(run, index, path).await.is_ok() {
                    return Ok(());
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

/// Succeeds when the target holds the bundle's object at `path`.
async fn check_object(run: &Run<'_>, index: usize, path: &str) -> Result<(), String> {
    let o = &run.source.objects[index];
    let format = if o.kind == Kind::Notebook {
        o.format
    } else {
        Format::Source
    };
    let bytes = run
        .client
        .workspace()
        .export(path, format, None)
        .await
        .map_err(|e| format!("checking {path}: {e}"))?;
    let stored = o.stored.as_deref().unwrap_or_default();
    let mine = run
        .source
        .read(stored, MAX_IMPORT_BYTES)
        .map_err(|e| e.to_string())?;
    if same_content(&mine, &bytes) {
        Ok(())
    } else {
        Err(format!("{path} appeared in the target with other content"))
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

/// Reads a folder, notebook or file record: its typed meta (§6.1), turned into the API's terms.
fn load(
    source: &mut SourceBundle,
    r: &Record,
    _payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    use super::format::{DirectoryMeta, FileMeta, NotebookMeta};
    use crate::import::source::{SrcDirectory, SrcObject};
    let (object_id, format, language, code_references) = match r.kind {
        Kind::Directory => {
            let m: DirectoryMeta = source.typed_meta(r)?;
            source.directories.push(SrcDirectory {
                path: r.name.clone(),
                object_id: m.object_id,
            });
            return Ok(());
        }
        Kind::File => {
            let m: FileMeta = source.typed_meta(r)?;
            (m.object_id, Format::Raw, None, m.code_references)
        }
        _ => {
            let m: NotebookMeta = source.typed_meta(r)?;
            let format = m.formats.first().map_or(Format::Source, |f| f.to_wire());
            (
                m.object_id,
                format,
                Some(m.language.to_wire()),
                m.code_references,
            )
        }
    };
    source.objects.push(SrcObject {
        kind: r.kind,
        path: r.name.clone(),
        object_id,
        language,
        format,
        stored: r.stored.first().cloned(),
        size: r.size,
        sha256: r
            .sha256
            .as_deref()
            .and_then(crate::bundle::inventory::sha256_bytes),
        notes: r.notes.clone(),
        code_references,
    });
    Ok(())
}
