//! The path filter of a tree walk: `--path` prefixes, `--user` homes and `--exclude` globs,
//! compiled once and asked per workspace path.

use super::error::ExportError;
use super::options::{is_under, Selection};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled [`Selection`].
#[derive(Debug, Clone)]
pub struct PathFilter {
    roots: Vec<String>,
    explicit: Vec<String>,
    exclude: GlobSet,
}

impl PathFilter {
    /// Compiles the selection; a malformed glob is an error naming it.
    pub fn new(sel: &Selection) -> Result<PathFilter, ExportError> {
        let mut b = GlobSetBuilder::new();
        for g in &sel.exclude {
            let glob = GlobBuilder::new(g)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| ExportError::Usage(format!("--exclude {g}: {e}")))?;
            b.add(glob);
        }
        let exclude = b
            .build()
            .map_err(|e| ExportError::Usage(format!("--exclude: {e}")))?;
        Ok(PathFilter {
            roots: sel.roots(),
            explicit: sel
                .paths
                .iter()
                .map(|p| super::options::normalize_prefix(p))
                .collect(),
            exclude,
        })
    }

    /// The folders a walk starts from.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// True when a root comes only from `--user` (a home folder that may not exist, which is
    /// not an error), not from `--path`.
    pub fn is_optional_root(&self, root: &str) -> bool {
        !self.explicit.iter().any(|p| p == root)
    }

    /// True when `path` matches an `--exclude` glob (a folder's whole subtree is then left
    /// out, without listing it).
    pub fn is_excluded(&self, path: &str) -> bool {
        self.exclude.is_match(path)
    }

    /// True when `path` is inside a root and not excluded.
    pub fn includes(&self, path: &str) -> bool {
        self.roots.iter().any(|r| is_under(path, r)) && !self.is_excluded(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_roots() {
        let f = PathFilter::new(&Selection {
            paths: vec!["/Users".into()],
            exclude: vec!["/Users/*/scratch".into(), "**/*.tmp".into()],
            user: None,
        })
        .unwrap();
        assert!(f.includes("/Users/a/nb"));
        assert!(!f.includes("/Shared/nb"));
        assert!(f.is_excluded("/Users/a/scratch"));
        assert!(!f.is_excluded("/Users/a/b/scratch"));
        assert!(f.is_excluded("/Users/a/b/x.tmp"));
        assert!(PathFilter::new(&Selection {
            exclude: vec!["/a/[".into()],
            ..Selection::default()
        })
        .is_err());
    }
}
