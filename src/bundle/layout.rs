//! The payload layout (spec §6): where each kind of resource lives below `data/`, as a
//! [`LogicalPath`] of original components, and the assignment of safe stored paths to a whole
//! set of logical paths at once (§7.2).

use super::error::{BundleError, ErrorCode, Result};
use super::names::{assign_sorted_siblings, Child};
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
/// The result is parallel to `paths` and depends only on the set of paths. See [`Assigner`],
/// which this is, for paths that are not all held at once.
pub fn assign<'a>(paths: impl IntoIterator<Item = &'a LogicalPath>) -> Result<Vec<String>> {
    let mut a = Assigner::default();
    for p in paths {
        a.add(p)?;
    }
    let mut out = Vec::new();
    a.finish(|s| out.push(s.to_string()))?;
    Ok(out)
}

/// Stored-path assignment (§7.2) fed one logical path at a time, so that a writer reading its
/// records from disk need not hold them: [`Assigner::add`] each path, then
/// [`Assigner::finish`] spells their stored paths in the order they were added.
///
/// The paths are folded into one tree of distinct entries (a folder's children keyed by
/// their original names), each folder's children are named at once, and each path is then
/// spelled by walking from its leaf entry up to the root. What is held per path is its leaf
/// entry's number; per distinct entry, its name and its folder: a large export's paths share
/// their folders, and a copy of every component of every path is what this step cost before.
/// O(n log n) in the number of path components.
pub struct Assigner {
    /// Folders: children (original names) → entry number. Folder 0 is `data/`.
    folders: Vec<Children>,
    /// For each folder, the entry that names it in its parent (none for `data/`).
    folder_entry: Vec<Option<usize>>,
    /// For each entry, the folder it is in, and the folder it opens when it is one.
    entry_in: Vec<usize>,
    entry_opens: Vec<Option<usize>>,
    /// For each path, its leaf entry and whether it is a folder.
    leaves: Vec<(usize, bool)>,
}

impl Default for Assigner {
    fn default() -> Self {
        Assigner {
            folders: vec![Children::default()],
            folder_entry: vec![None],
            entry_in: Vec::new(),
            entry_opens: Vec::new(),
            leaves: Vec::new(),
        }
    }
}

/// A folder's children → their entry numbers. Most folders of a bundle hold a few children
/// (a model version's folder, its `artifacts/`): a sorted list costs a quarter of a map's
/// smallest node for those (issue #15: 700 bytes a folder, eight folders a model), and a
/// folder past [`Children::FEW`] children becomes a map, so that filling a large one stays
/// O(n log n).
#[derive(Debug)]
enum Children {
    /// Sorted by child.
    Few(Vec<(Child, usize)>),
    Many(BTreeMap<Child, usize>),
}

impl Default for Children {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

impl Children {
    /// The most children kept as a sorted list.
    const FEW: usize = 16;

    fn get(&self, c: &Child) -> Option<&usize> {
        match self {
            Children::Few(v) => v.binary_search_by(|(k, _)| k.cmp(c)).ok().map(|i| &v[i].1),
            Children::Many(m) => m.get(c),
        }
    }

    /// Adds a child that is not there yet.
    fn insert(&mut self, c: Child, entry: usize) {
        match self {
            Children::Few(v) if v.len() < Self::FEW => {
                let at = v.binary_search_by(|(k, _)| k.cmp(&c)).unwrap_or_else(|i| i);
                v.insert(at, (c, entry));
            }
            Children::Few(v) => {
                let mut m: BTreeMap<Child, usize> = std::mem::take(v).into_iter().collect();
                m.insert(c, entry);
                *self = Children::Many(m);
            }
            Children::Many(m) => {
                m.insert(c, entry);
            }
        }
    }

    /// Names the children as siblings (§7.2), each in `names` at its entry number.
    fn name(&self, names: &mut [String]) -> Result<()> {
        let named = match self {
            Children::Few(v) => assign_sorted_siblings(v.iter().map(|(c, _)| c)),
            Children::Many(m) => assign_sorted_siblings(m.keys()),
        }
        .map_err(|e| BundleError::new(ErrorCode::Staging, "layout", e))?;
        let entries: Box<dyn Iterator<Item = usize> + '_> = match self {
            Children::Few(v) => Box::new(v.iter().map(|(_, e)| *e)),
            Children::Many(m) => Box::new(m.values().copied()),
        };
        for (entry, name) in entries.zip(named) {
            names[entry] = name;
        }
        Ok(())
    }
}

impl Assigner {
    /// Adds the next path.
    pub fn add(&mut self, p: &LogicalPath) -> Result<()> {
        if p.segments.is_empty() {
            return Err(BundleError::new(
                ErrorCode::Staging,
                "layout",
                "a stored path needs at least one component",
            ));
        }
        let mut folder = 0usize;
        let mut leaf = 0usize;
        for (i, seg) in p.segments.iter().enumerate() {
            let last = i + 1 == p.segments.len();
            let child = Child {
                original: seg.clone(),
                ext: if last { p.ext.clone() } else { None },
                dir: !last || p.dir,
            };
            let entry = match self.folders[folder].get(&child) {
                Some(&e) => e,
                None => {
                    let e = self.entry_in.len();
                    self.entry_in.push(folder);
                    self.entry_opens.push(None);
                    self.folders[folder].insert(child, e);
                    e
                }
            };
            // A component before the last is a folder the path goes through.
            if !last {
                folder = match self.entry_opens[entry] {
                    Some(f) => f,
                    None => {
                        self.folders.push(Children::default());
                        self.folder_entry.push(Some(entry));
                        let f = self.folders.len() - 1;
                        self.entry_opens[entry] = Some(f);
                        f
                    }
                };
            }
            leaf = entry;
        }
        self.leaves.push((leaf, p.dir));
        Ok(())
    }

    /// Names every entry, then gives each path's stored path to `each`, in the order the paths
    /// were added (the string is only lent: a caller keeps it where it wants).
    pub fn finish(self, mut each: impl FnMut(&str)) -> Result<()> {
        let Assigner {
            folders,
            folder_entry,
            entry_in,
            entry_opens,
            leaves,
        } = self;
        drop(entry_opens);
        let mut names: Vec<String> = vec![String::new(); entry_in.len()];
        for children in folders {
            children.name(&mut names)?;
        }
        let mut chain: Vec<&str> = Vec::new();
        let mut s = String::new();
        for (leaf, dir) in leaves {
            chain.clear();
            let mut entry = Some(leaf);
            while let Some(e) = entry {
                chain.push(&names[e]);
                entry = folder_entry[entry_in[e]];
            }
            s.clear();
            s.push_str("data");
            for name in chain.iter().rev() {
                s.push('/');
                s.push_str(name);
            }
            if dir {
                s.push('/');
            }
            each(&s);
        }
        Ok(())
    }
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
    fn folders_are_named_once_for_every_path_through_them() {
        // A folder listed as a leaf and then gone through, case collisions among folders and
        // among files, many siblings: each path goes through its folders' single names, and
        // the result depends on the set of paths only. (The tree holds one entry per distinct
        // component, so this is O(n log n) in the components, not a copy of each path's.)
        let mut paths = vec![
            LogicalPath::dir(segs(["workspace", "Team"])),
            LogicalPath::file(segs(["workspace", "team", "a"]), Some("py")),
            LogicalPath::file(segs(["workspace", "Team", "a"]), Some("py")),
            LogicalPath::file(segs(["workspace", "Team", "A"]), Some("py")),
            LogicalPath::dir(segs(["workspace", "Team", "empty"])),
        ];
        for i in 0..500 {
            paths.push(LogicalPath::file(
                segs([
                    "permissions".to_string(),
                    "notebooks".into(),
                    format!("{i}"),
                ]),
                Some("json"),
            ));
        }
        let out = assign(&paths).unwrap();
        assert_eq!(out[0], "data/workspace/Team/");
        assert!(out[2].starts_with("data/workspace/Team/"), "{out:?}");
        assert!(out[4].starts_with("data/workspace/Team/empty/"), "{out:?}");
        let team = out[1].rsplit_once('/').unwrap().0;
        assert_ne!(team.to_lowercase(), "data/workspace/team", "{out:?}");
        assert_ne!(out[2].to_lowercase(), out[3].to_lowercase());
        assert_eq!(out[5], "data/permissions/notebooks/0.json");
        let distinct: std::collections::HashSet<&String> = out.iter().collect();
        assert_eq!(distinct.len(), out.len());
        let mut reversed = paths.clone();
        reversed.reverse();
        let mut back = assign(&reversed).unwrap();
        back.reverse();
        assert_eq!(back, out, "the order of the paths must not matter");
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
