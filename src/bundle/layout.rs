//! The payload layout (spec §6): where each kind of resource lives below `data/`, as a
//! [`LogicalPath`] of original components, and the assignment of safe stored paths to a whole
//! set of logical paths at once (§7.2).

use super::error::{BundleError, ErrorCode, Result};
use super::names::{assign_siblings, Child};
use crate::model::workspace::{normalize_path, Format, Language};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stored file or folder described by original names: components below `data/`, the last of
/// which is the leaf, plus the extension the writer adds to the leaf.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogicalPath {
    /// Original components below `data/`, the area (`workspace`, `jobs`, …) first.
    pub segments: Vec<String>,
    /// Extension added to the leaf (without the dot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<String>,
    /// True when the leaf is a folder.
    #[serde(default)]
    pub dir: bool,
}

impl LogicalPath {
    /// A file at `segments`, with an optional extension.
    pub fn file(segments: Vec<String>, ext: Option<&str>) -> Self {
        LogicalPath {
            segments,
            ext: ext.map(str::to_string),
            dir: false,
        }
    }

    /// A folder at `segments`.
    pub fn dir(segments: Vec<String>) -> Self {
        LogicalPath {
            segments,
            ext: None,
            dir: true,
        }
    }
}

/// The components of a workspace path below `data/workspace/` (`/Workspace` prefix dropped).
pub fn workspace_segments(path: &str) -> Vec<String> {
    let mut v = vec!["workspace".to_string()];
    v.extend(
        normalize_path(path)
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    v
}

/// Builds a segment list from an area and further components.
pub fn segs<I, S>(parts: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    parts.into_iter().map(Into::into).collect()
}

/// The extension of a notebook export in `format` (§6.1).
pub fn notebook_ext(language: Language, format: Format) -> &'static str {
    match format {
        Format::Source | Format::Auto | Format::Raw => language.extension(),
        Format::Jupyter => "ipynb",
        Format::Html => "html",
        Format::RMarkdown => "Rmd",
        Format::Dbc => "dbc",
    }
}

/// Assigns a stored path (`data/…`, folders ending in `/`) to every logical path (§7.2).
/// The result is parallel to `paths` and depends only on the set of paths.
pub fn assign(paths: &[LogicalPath]) -> Result<Vec<String>> {
    // A tree of folders; each node's children are keyed by their original names.
    let mut nodes: Vec<BTreeMap<Child, Option<usize>>> = vec![BTreeMap::new()];
    let mut leaf_of: Vec<Vec<(usize, Child)>> = Vec::with_capacity(paths.len());
    for p in paths {
        if p.segments.is_empty() {
            return Err(BundleError::new(
                ErrorCode::Staging,
                "layout",
                "a stored path needs at least one component",
            ));
        }
        let mut node = 0usize;
        let mut steps = Vec::with_capacity(p.segments.len());
        for (i, seg) in p.segments.iter().enumerate() {
            let last = i + 1 == p.segments.len();
            let child = Child {
                original: seg.clone(),
                ext: if last { p.ext.clone() } else { None },
                dir: !last || p.dir,
            };
            steps.push((node, child.clone()));
            if child.dir {
                let next = match nodes[node].get(&child).copied().flatten() {
                    Some(n) => n,
                    None => {
                        nodes.push(BTreeMap::new());
                        let n = nodes.len() - 1;
                        nodes[node].insert(child, Some(n));
                        n
                    }
                };
                node = next;
            } else {
                nodes[node].entry(child).or_insert(None);
            }
        }
        leaf_of.push(steps);
    }
    let mut names: Vec<BTreeMap<Child, String>> = Vec::with_capacity(nodes.len());
    for n in &nodes {
        let kids: Vec<Child> = n.keys().cloned().collect();
        names.push(
            assign_siblings(&kids)
                .map_err(|e| BundleError::new(ErrorCode::Staging, "layout", e))?,
        );
    }
    Ok(leaf_of
        .iter()
        .zip(paths)
        .map(|(steps, p)| {
            let mut s = String::from("data");
            for (node, child) in steps {
                s.push('/');
                s.push_str(&names[*node][child]);
            }
            if p.dir {
                s.push('/');
            }
            s
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths_map_to_safe_names() {
        let paths = vec![
            LogicalPath::file(workspace_segments("/Users/a@x.org/Load: daily"), Some("py")),
            LogicalPath::file(workspace_segments("/Users/a@x.org/load: daily"), Some("py")),
            LogicalPath::dir(workspace_segments("/Workspace/Users/a@x.org/empty")),
            LogicalPath::file(segs(["jobs", "7-nightly"]), Some("json")),
        ];
        let out = assign(&paths).unwrap();
        assert!(out[0].starts_with("data/workspace/Users/a@x.org/Load_ daily-"));
        assert!(out[0].ends_with(".py"));
        assert_ne!(out[0].to_lowercase(), out[1].to_lowercase());
        assert_eq!(out[2], "data/workspace/Users/a@x.org/empty/");
        assert_eq!(out[3], "data/jobs/7-nightly.json");
    }

    #[test]
    fn file_and_folder_with_one_name_are_kept_apart() {
        let paths = vec![
            LogicalPath::file(segs(["workspace", "x"]), None),
            LogicalPath::file(segs(["workspace", "x", "y"]), None),
        ];
        let out = assign(&paths).unwrap();
        assert_eq!(out[0], "data/workspace/x");
        assert!(out[1].starts_with("data/workspace/x-"), "{out:?}");
        assert!(out[1].ends_with("/y"), "{out:?}");
    }
}
