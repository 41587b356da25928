//! Git folders (repos) and git credentials (`/api/2.0/repos`, `/api/2.0/git-credentials`).

use serde::{Deserialize, Serialize};

/// Sparse checkout patterns of a repo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseCheckout {
    /// Cone patterns.
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// A repo as `GET /api/2.0/repos/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repo {
    /// Repo id (the workspace `object_id` of its root).
    pub id: i64,
    /// Workspace path of the repo root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Remote URL.
    pub url: String,
    /// Provider, canonical spelling (`gitHub`, `gitLab`, …).
    pub provider: String,
    /// Checked-out branch, absent on a detached HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Head commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_commit_id: Option<String>,
    /// Sparse checkout, when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_checkout: Option<SparseCheckout>,
}

/// The canonical providers the server returns.
pub const PROVIDERS: [&str; 8] = [
    "gitHub",
    "bitbucketCloud",
    "gitLab",
    "azureDevOpsServices",
    "gitHubEnterprise",
    "bitbucketServer",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
];

/// The canonical spelling of a provider given in any case, or `None` when unknown.
pub fn canonical_provider(p: &str) -> Option<&'static str> {
    PROVIDERS
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(p))
}

/// A git credential (the token itself is write-only and never returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCredential {
    /// Credential id.
    pub credential_id: i64,
    /// Provider.
    pub git_provider: String,
    /// User name at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_username: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
