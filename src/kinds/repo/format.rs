//! The bundle format of Git folders (spec §6.2): the `meta` of `repo` records, and the
//! resource export writes for one.

use crate::bundle::inventory::Record;
use crate::bundle::layout::{workspace_segments, LogicalPath};
use crate::bundle::records::{check_workspace_path, Out};
use crate::bundle::resource::{json_part, Resource};
use crate::kinds::format::meta_value;
use crate::model::repo::Repo;
use crate::model::Kind;
use serde::{Deserialize, Serialize};

/// `meta` of a `repo` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoMeta {
    /// The workspace path of the repo root.
    pub path: String,
    /// The remote's URL.
    pub url: String,
    /// The Git provider (`gitHub`, `azureDevOpsServices`, …).
    pub provider: String,
    /// The branch checked out; absent on a detached commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_commit_id: Option<String>,
}

impl Resource {
    /// A repo: its description only (a repo is a link to its remote; §6.2).
    pub fn repo(repo: &Repo) -> Self {
        let path = repo
            .path
            .clone()
            .unwrap_or_else(|| format!("/Repos/{}", repo.id));
        let meta = RepoMeta {
            path: path.clone(),
            url: repo.url.clone(),
            provider: repo.provider.clone(),
            branch: repo.branch.clone(),
            head_commit_id: repo.head_commit_id.clone(),
        };
        let mut r = Resource::new(Kind::Repo, repo.id.to_string(), &path, meta_value(&meta));
        let mut segments = workspace_segments(&path);
        segments[0] = "repos".into();
        r.parts
            .push(json_part(LogicalPath::file(segments, Some("json")), repo));
        r
    }
}

/// The rules of §6.2 for a `repo` record: its name is a workspace path (E307).
pub(crate) fn check_record(r: &Record, out: &mut Out) {
    out.result(
        r,
        check_workspace_path(&r.name).map_err(|e| format!("name {e}")),
    );
}
