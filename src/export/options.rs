//! What an export takes: which kinds, which part of the workspace, which notebook formats,
//! where secret values come from and whom they are sealed to, and where the bundle goes.
//! Selection rules live here (kind names are [`crate::model::kinds`], shared with import);
//! nothing here talks to a workspace.

use crate::bundle::Sealer;
use crate::model::workspace::Format;
use crate::model::Kind;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The kinds an export produces by default: every kind.
pub const DEFAULT_KINDS: [Kind; 19] = crate::model::kinds::LISTED;

/// Which part of the workspace tree to export.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Path prefixes (`--path`); empty means the whole tree.
    pub paths: Vec<String>,
    /// Globs of workspace paths to leave out (`--exclude /Users/*/scratch/**`).
    pub exclude: Vec<String>,
    /// One user's home folders and the jobs they own (`--user`).
    pub user: Option<String>,
}

impl Selection {
    /// The folders the tree walk starts from.
    pub fn roots(&self) -> Vec<String> {
        let mut roots: Vec<String> = self.paths.iter().map(|p| normalize_prefix(p)).collect();
        if let Some(u) = &self.user {
            roots.push(format!("/Users/{u}"));
            roots.push(format!("/Repos/{u}"));
        }
        if roots.is_empty() {
            roots.push("/".to_string());
        }
        roots.sort();
        roots.dedup();
        // A root below another root would be walked twice.
        let all = roots.clone();
        roots.retain(|r| !all.iter().any(|o| o != r && is_under(r, o)));
        roots
    }
}

/// `/Workspace/x/` → `/x`.
pub fn normalize_prefix(p: &str) -> String {
    let p = crate::model::workspace::normalize_path(p.trim());
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else if t.starts_with('/') {
        t.to_string()
    } else {
        format!("/{t}")
    }
}

/// True when `path` is `root` or lies below it.
pub fn is_under(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

/// Where secret values come from and whom they are sealed to.
pub struct SecretsOptions {
    /// Seals values; `None` means values are not exported at all (and the run says so).
    pub sealer: Option<Sealer>,
    /// A running cluster to read values through command execution when the workspace
    /// refuses `secrets/get` (`--secrets-cluster`).
    pub cluster_id: Option<String>,
}

impl std::fmt::Debug for SecretsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsOptions")
            .field("sealer", &self.sealer)
            .field("cluster_id", &self.cluster_id)
            .finish()
    }
}

/// Everything an export needs besides the client.
#[derive(Debug)]
pub struct ExportOptions {
    /// The bundle to write (`.zip`, or `.zip.age` with an envelope).
    pub output: PathBuf,
    /// Kinds to export.
    pub kinds: BTreeSet<Kind>,
    /// Part of the workspace tree.
    pub selection: Selection,
    /// A notebook format exported besides `SOURCE` (`--notebook-format jupyter`).
    pub notebook_format: Option<Format>,
    /// Secret values.
    pub secrets: SecretsOptions,
    /// SQL warehouse for legacy table ACLs (`--warehouse-id` or the profile's).
    pub warehouse_id: Option<String>,
    /// A running cluster for mount sources (`--cluster`, else `--secrets-cluster`).
    pub cluster_id: Option<String>,
    /// Wrap the whole bundle in age to the same recipients (`--envelope`).
    pub envelope: Option<Sealer>,
    /// Continue an interrupted export (`--resume`).
    pub resume: bool,
    /// Objects fetched at once; the client's limiter bounds requests in flight.
    pub concurrency: usize,
    /// ML models: the registry (`--mlflow-uri`), the models and versions taken.
    pub models: crate::models::ModelArgs,
}

impl ExportOptions {
    /// True when `kind` is exported.
    pub fn wants(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The options recorded in the inventory and in the journal header: everything that
    /// shapes the bundle's content, nothing secret, nothing host-dependent.
    pub fn recorded(&self) -> Value {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        let mut paths: Vec<String> = self
            .selection
            .paths
            .iter()
            .map(|p| normalize_prefix(p))
            .collect();
        paths.sort();
        let mut exclude = self.selection.exclude.clone();
        exclude.sort();
        json!({
            "kinds": kinds,
            "paths": paths,
            "exclude": exclude,
            "user": self.selection.user,
            "notebook_formats": match self.notebook_format {
                Some(f) => vec!["SOURCE", f.as_str()],
                None => vec!["SOURCE"],
            },
            "secret_values": self.secrets.sealer.is_some(),
            "secrets_cluster": self.secrets.cluster_id.is_some(),
            "envelope": self.envelope.is_some(),
            "models": self.models.recorded(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_drop_nested_prefixes() {
        let s = Selection {
            paths: vec![
                "/Shared/".into(),
                "/Shared/etl".into(),
                "/Workspace/Users/a".into(),
            ],
            ..Selection::default()
        };
        assert_eq!(
            s.roots(),
            vec!["/Shared".to_string(), "/Users/a".to_string()]
        );
        assert_eq!(Selection::default().roots(), vec!["/".to_string()]);
        let u = Selection {
            user: Some("a@x".into()),
            ..Selection::default()
        };
        assert_eq!(
            u.roots(),
            vec!["/Repos/a@x".to_string(), "/Users/a@x".to_string()]
        );
        assert!(is_under("/a/b", "/a"));
        assert!(!is_under("/ab", "/a"));
        assert!(is_under("/anything", "/"));
    }
}
