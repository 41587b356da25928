//! How Git folders are planned and replayed into a target.
//!
//! A repo is tied to its source by its target path and remote URL: one at the path with the
//! same remote is ours (only its branch may need a checkout); one with another remote, or
//! another kind of object at the path, is a conflict — a repo cannot be re-pointed at another
//! remote, so even `--on-conflict overwrite` refuses it.

use crate::bundle::inventory::Record;
use crate::client::repos::{Checkout, CreateRepo};
use crate::client::ClientError;
use crate::import::apply::{ambiguous, backoff, Run, StepResult, AMBIGUOUS_ATTEMPTS};
use crate::import::ledger::keys;
use crate::import::plan::{same_url, Action, Mode, PlanItem, Planner, Step};
use crate::import::source::SourceBundle;
use crate::import::target::concurrently;
use crate::import::ImportError;
use crate::model::workspace::{parent_path, ObjectType};
use crate::model::Kind;
use serde_json::json;
use std::collections::BTreeMap;

crate::import::unit::unit! {
    /// The import unit of Git folders.
    Repos: [Kind::Repo]
}

async fn plan(p: &mut Planner<'_, '_>) -> Result<(), ImportError> {
    if !p.opts().filter.kind(Kind::Repo) {
        return Ok(());
    }
    let m = &p.opts().mapping;
    let mut existing: Vec<(usize, String, i64)> = Vec::new();
    let mut pending: Vec<(usize, PlanItem)> = Vec::new();
    for (i, r) in p.src().repos.iter().enumerate() {
        let Some(src_path) = r.path.clone() else {
            continue;
        };
        if !p.selected_path(&src_path) {
            continue;
        }
        let tgt = m.path(&src_path);
        let mut item = PlanItem::new(Kind::Repo, &src_path, &tgt);
        item.key = keys::repo(&tgt);
        if src_path != tgt {
            item.notes.push(format!("{src_path} → {tgt}"));
        }
        if r.branch.is_none() {
            if let Some(c) = &r.head_commit_id {
                item.notes.push(format!(
                    "the source was on a detached commit {c}; the target checks out the remote's default branch"
                ));
            }
        }
        match p.tree.get(&tgt) {
            None => {
                item.action = Action::Create;
                if p.input.mode == Mode::Diff {
                    item.reasons.push("missing in target".into());
                }
                item.step = Some(Step::Repo {
                    index: i,
                    path: tgt.as_str().into(),
                    existing: None,
                });
                pending.push((i, item));
            }
            Some(info) if info.object_type == ObjectType::Repo => {
                existing.push((i, tgt.clone(), info.object_id));
                pending.push((i, item));
            }
            Some(info) => {
                let (a, r) = p.conflict(format!(
                    "a {} exists at {tgt}",
                    format!("{:?}", info.object_type).to_lowercase()
                ));
                pending.push((
                    i,
                    item.set(
                        if a == Action::Update {
                            Action::Refuse
                        } else {
                            a
                        },
                        r,
                    ),
                ));
            }
        }
    }
    let client = p.client().clone();
    let got = concurrently(existing, p.limit, |(i, tgt, id)| {
        let client = client.clone();
        async move { (i, tgt, id, client.repos().get(id).await) }
    })
    .await;
    let mut found: BTreeMap<usize, (i64, Result<crate::model::repo::Repo, ClientError>)> =
        BTreeMap::new();
    for (i, _, id, r) in got {
        found.insert(i, (id, r));
    }
    for (i, mut item) in pending {
        if let Some((id, r)) = found.remove(&i) {
            let want = &p.src().repos[i];
            let tgt = item.target.clone();
            match r {
                Ok(have) if same_url(&have.url, &want.url) => {
                    if want.branch.is_some() && have.branch != want.branch {
                        item.action = Action::Update;
                        item.reasons.push(format!(
                            "on branch {}, the bundle has {}",
                            have.branch.as_deref().unwrap_or("(detached)"),
                            want.branch.as_deref().unwrap_or("")
                        ));
                        item.step = Some(Step::Repo {
                            index: i,
                            path: tgt.as_str().into(),
                            existing: Some(id),
                        });
                    }
                }
                Ok(have) => {
                    let (a, r) = p.conflict(format!("a repo of {} exists at {tgt}", have.url));
                    // A repo cannot be re-pointed at another remote.
                    item = item.set(
                        if a == Action::Update {
                            Action::Refuse
                        } else {
                            a
                        },
                        r,
                    );
                }
                Err(e) if e.is_auth_failure() => return Err(p.err(e)),
                Err(e) => item = item.set(Action::Cannot, format!("reading repo {id}: {e}")),
            }
            p.repo_paths
                .insert(want.id.to_string(), (tgt, item.action, Some(id)));
        } else {
            let r = &p.src().repos[i];
            p.repo_paths
                .insert(r.id.to_string(), (item.target.clone(), item.action, None));
        }
        p.push_path_item(item);
    }
    Ok(())
}

async fn apply<'r>(run: &'r Run<'_>) -> Vec<(&'r PlanItem, StepResult)> {
    let items = run.items_of(&[Kind::Repo]);
    run.each(items, |item, step| async move {
        let Step::Repo {
            index,
            path,
            existing,
        } = step
        else {
            return Err("internal: wrong step".into());
        };
        let want = &run.source.repos[*index];
        let id = match existing {
            Some(id) => *id,
            None => create_repo(run, *index, path).await?,
        };
        if let Some(branch) = &want.branch {
            let have = run
                .client
                .repos()
                .get(id)
                .await
                .map_err(|e| e.to_string())?;
            if have.branch.as_deref() != Some(branch.as_str()) {
                run.wrote();
                run.client
                    .repos()
                    .update(id, &Checkout::Branch(branch.clone()))
                    .await
                    .map_err(|e| format!("checking out {branch}: {e}"))?;
            }
        }
        run.st().repo_ids.insert(path.to_string(), id);
        run.ledger.record(item.key.clone(), json!({ "id": id }));
        Ok(Run::created_or_updated(item))
    })
    .await
}

async fn create_repo(run: &Run<'_>, index: usize, path: &str) -> Result<i64, String> {
    let want = &run.source.repos[index];
    if crate::model::workspace::at_or_below_any(parent_path(path), &run.st().failed_dirs) {
        return Err(format!(
            "its folder {} could not be created",
            parent_path(path)
        ));
    }
    let req = CreateRepo {
        url: want.url.clone(),
        provider: want.provider.clone(),
        path: Some(path.to_string()),
        sparse_checkout: want.sparse_checkout.clone(),
        git_credential_id: None,
    };
    let mut last = String::new();
    for attempt in 0..AMBIGUOUS_ATTEMPTS {
        run.wrote();
        match run.client.repos().create(&req).await {
            Ok(r) => return Ok(r.id),
            Err(e) if ambiguous(&e) || (e.is_already_exists() && attempt > 0) => {
                last = e.to_string();
                if let Some(id) = find_repo(run, path, &want.url).await {
                    return Ok(id);
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

async fn find_repo(run: &Run<'_>, path: &str, url: &str) -> Option<i64> {
    let info = run.client.workspace().get_status(path).await.ok()?;
    if info.object_type != ObjectType::Repo {
        return None;
    }
    let r = run.client.repos().get(info.object_id).await.ok()?;
    same_url(&r.url, url).then_some(r.id)
}

/// Reads a repo record: its stored `GET /repos/{id}` answer (§6.2).
fn load(
    source: &mut SourceBundle,
    r: &Record,
    payload: Option<Vec<u8>>,
) -> Result<(), ImportError> {
    let mut repo = source.payload::<super::format::RepoFile>(r, &payload)?;
    if repo.path.is_none() {
        repo.path = Some(r.name.clone());
    }
    source.repos.push(repo);
    Ok(())
}
