//! Reading the target workspace with as few calls as the plan allows: principals once, only the
//! folders on the way to the bundle's paths, jobs in one paged listing indexed by their source
//! tag, and per-object reads (content, ACLs, grants) only for objects that already exist.

use super::principals::Directory;
use crate::client::{Client, ClientError};
use crate::model::job::Job;
use crate::model::workspace::{normalize_path, parent_path, Language, ObjectInfo, ObjectType};
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// Runs `f` over `items` with at most `limit` in flight; results come back in input order.
pub async fn concurrently<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    let mut out: Vec<(usize, R)> = futures_util::stream::iter(items.into_iter().enumerate())
        .map(|(i, t)| {
            let fut = f(t);
            async move { (i, fut.await) }
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Reads the target's users, groups and service principals, and the caller.
pub async fn read_directory(client: &Client) -> Result<Directory, ClientError> {
    let scim = client.scim();
    let (me, users, groups, sps) = tokio::join!(
        scim.me(),
        scim.list_users(None),
        scim.list_groups(None),
        scim.list_service_principals(None)
    );
    let me = me?;
    Ok(Directory::new(
        &users?,
        &groups?,
        &sps?,
        Some(me.user_name.as_str()),
    ))
}

/// What is known about the workspace tree along the bundle's paths.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    objects: BTreeMap<Box<str>, TreeObject>,
    listed: BTreeSet<String>,
}

/// What a plan reads of an object in the target: not the whole listing entry, nor a second
/// copy of its path (the tree holds one per object of a target that has the bundle's objects,
/// as `diff`'s does: issue #15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeObject {
    /// Its type.
    pub object_type: ObjectType,
    /// Its id.
    pub object_id: i64,
    /// A notebook's language.
    pub language: Option<Language>,
}

impl Tree {
    /// The object at `path`, if it exists (and its folder was listed).
    pub fn get(&self, path: &str) -> Option<&TreeObject> {
        self.objects.get(path)
    }

    /// True when a folder at `path` exists.
    pub fn is_dir(&self, path: &str) -> bool {
        path == "/"
            || self
                .objects
                .get(path)
                .is_some_and(|o| o.object_type == ObjectType::Directory)
    }

    /// Records an object (after creating it).
    pub fn insert(&mut self, info: ObjectInfo) {
        let object = TreeObject {
            object_type: info.object_type,
            object_id: info.object_id,
            language: info.language,
        };
        self.objects.insert(info.path.into_boxed_str(), object);
    }

    /// Folders that were listed.
    pub fn listed(&self) -> &BTreeSet<String> {
        &self.listed
    }
}

/// Lists every existing folder that is `wanted` or an ancestor of a wanted path, level by level
/// from `/`, so that whether each wanted path exists is known without one call per object.
/// Repos (Git folders) are not descended into.
pub async fn list_tree(
    client: &Client,
    wanted: &BTreeSet<String>,
    limit: usize,
) -> Result<Tree, ClientError> {
    let mut relevant: BTreeSet<String> = BTreeSet::new();
    for p in wanted {
        let mut q = p.as_str();
        relevant.insert(q.to_string());
        while q != "/" {
            q = parent_path(q);
            if !relevant.insert(q.to_string()) {
                break;
            }
        }
    }
    let mut tree = Tree::default();
    let mut level = vec!["/".to_string()];
    while !level.is_empty() {
        let results = concurrently(level.clone(), limit, |dir| async move {
            let r = client.workspace().list(&dir).await;
            (dir, r)
        })
        .await;
        let mut next = Vec::new();
        for (dir, r) in results {
            let objects = match r {
                Ok(o) => o,
                // Gone between the parent's listing and this one: nothing below it.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            tree.listed.insert(dir.clone());
            for mut o in objects {
                o.path = normalize_path(&o.path).to_string();
                if o.path == dir {
                    // A non-folder lists as itself.
                    continue;
                }
                if o.object_type == ObjectType::Directory && relevant.contains(&o.path) {
                    next.push(o.path.clone());
                }
                tree.insert(o);
            }
        }
        level = next;
    }
    Ok(tree)
}

/// The target's jobs, indexed by the value of their source tag.
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    /// Tag value → jobs carrying it, lowest id first.
    pub by_tag: BTreeMap<String, Vec<Job>>,
    /// How many jobs the target has.
    pub total: usize,
}

impl Jobs {
    /// Indexes a job listing.
    pub fn index(all: Vec<Job>) -> Jobs {
        let total = all.len();
        let mut by_tag: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        for j in all {
            let tag = j
                .settings
                .get("tags")
                .and_then(|t| t.get(crate::model::job::SOURCE_TAG))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            if let Some(t) = tag {
                by_tag.entry(t).or_default().push(j);
            }
        }
        for v in by_tag.values_mut() {
            v.sort_by_key(|j| j.job_id);
        }
        Jobs { by_tag, total }
    }

    /// The job tied to a tag value (the lowest id when several carry it).
    pub fn find(&self, tag: &str) -> Option<&Job> {
        self.by_tag.get(tag).and_then(|v| v.first())
    }
}

/// Every job of the target with its tasks, in one paged listing.
pub async fn read_jobs(client: &Client) -> Result<Jobs, ClientError> {
    Ok(Jobs::index(client.jobs().list(true).await?))
}

/// Finds the jobs carrying `tag` among jobs named `name`, for the check after an ambiguous
/// create (the listing filtered by name is short).
pub async fn find_job_by_tag(
    client: &Client,
    name: &str,
    tag: &str,
) -> Result<Option<i64>, ClientError> {
    let call = crate::client::Call::get("/api/2.2/jobs/list")
        .query("limit", 100)
        .query("name", name);
    let v: serde_json::Value = client.transport().json(call).await?;
    let mut ids: Vec<i64> = v
        .get("jobs")
        .and_then(|j| j.as_array())
        .map(|a| {
            a.iter()
                .filter(|j| {
                    j.pointer(&format!("/settings/tags/{}", crate::model::job::SOURCE_TAG))
                        .and_then(|t| t.as_str())
                        == Some(tag)
                })
                .filter_map(|j| j.get("job_id").and_then(|i| i.as_i64()))
                .collect()
        })
        .unwrap_or_default();
    let more = v.get("has_more").and_then(|h| h.as_bool()) == Some(true);
    if ids.is_empty() && more {
        // Very many jobs of that name: fall back to the full listing.
        return Ok(read_jobs(client).await?.find(tag).map(|j| j.job_id));
    }
    ids.sort();
    Ok(ids.first().copied())
}
