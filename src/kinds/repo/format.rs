//! The bundle format of Git folders (spec §6.2): the `meta` of `repo` records, their payload
//! file ([`RepoFile`]), and the resource export writes for one.

use crate::bundle::inventory::Record;
use crate::bundle::layout::{workspace_segments, LogicalPath};
use crate::bundle::records::{check_workspace_path, Out};
use crate::bundle::resource::Resource;
use crate::kinds::format::{meta_value, payload_part};
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

/// `repos/⟨path⟩.json` (§6.2): the Git folder's link to its remote, as `GET
/// /api/2.0/repos/{id}` described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFile {
    /// The repo's id (the workspace `object_id` of its root).
    pub id: i64,
    /// The workspace path of the repo root; a reader takes the record's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The remote's URL.
    pub url: String,
    /// The Git provider, in the API's spelling (`gitHub`, `azureDevOpsServices`, …).
    pub provider: String,
    /// The branch checked out; absent on a detached commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_commit_id: Option<String>,
    /// The sparse checkout, when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_checkout: Option<SparseCheckoutFile>,
}

/// `sparse_checkout` of a [`RepoFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseCheckoutFile {
    /// Cone patterns.
    #[serde(default)]
    pub patterns: Vec<String>,
}

impl Resource {
    /// A repo record from its file: its description only (a repo is a link to its remote;
    /// §6.2).
    fn repo_record(file: RepoFile) -> Self {
        let path = file
            .path
            .clone()
            .unwrap_or_else(|| format!("/Repos/{}", file.id));
        let meta = RepoMeta {
            path: path.clone(),
            url: file.url.clone(),
            provider: file.provider.clone(),
            branch: file.branch.clone(),
            head_commit_id: file.head_commit_id.clone(),
        };
        let mut r = Resource::new(Kind::Repo, file.id.to_string(), &path, meta_value(&meta));
        let mut segments = workspace_segments(&path);
        segments[0] = "repos".into();
        r.parts.push(payload_part(
            LogicalPath::file(segments, Some("json")),
            &file,
        ));
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

/// The API's side: conversions between [`RepoFile`] and the repos API's `Repo`, and the
/// constructor export calls with what the API returned.
mod wire {
    use super::{RepoFile, SparseCheckoutFile};
    use crate::bundle::resource::Resource;
    use crate::kinds::format::PayloadFile;
    use crate::model::repo::{Repo, SparseCheckout};

    impl From<&Repo> for RepoFile {
        fn from(r: &Repo) -> Self {
            RepoFile {
                id: r.id,
                path: r.path.clone(),
                url: r.url.clone(),
                provider: r.provider.clone(),
                branch: r.branch.clone(),
                head_commit_id: r.head_commit_id.clone(),
                sparse_checkout: r.sparse_checkout.as_ref().map(|s| SparseCheckoutFile {
                    patterns: s.patterns.clone(),
                }),
            }
        }
    }

    impl PayloadFile for RepoFile {
        type Wire = Repo;

        fn into_wire(self) -> Repo {
            Repo {
                id: self.id,
                path: self.path,
                url: self.url,
                provider: self.provider,
                branch: self.branch,
                head_commit_id: self.head_commit_id,
                sparse_checkout: self.sparse_checkout.map(|s| SparseCheckout {
                    patterns: s.patterns,
                }),
            }
        }
    }

    impl Resource {
        /// A repo, from its `GET /repos/{id}` answer (§6.2).
        pub fn repo(repo: &Repo) -> Self {
            Resource::repo_record(RepoFile::from(repo))
        }
    }
}
