//! Workspace objects: notebooks, directories, files, repo roots (`/api/2.0/workspace/*`).

use serde::{Deserialize, Serialize};

/// The `object_type` of a workspace entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObjectType {
    /// A notebook.
    Notebook,
    /// A folder.
    Directory,
    /// A library (cannot be exported).
    Library,
    /// A workspace file.
    File,
    /// The root of a Git folder.
    Repo,
    /// A legacy dashboard.
    Dashboard,
}

/// A notebook's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Language {
    /// Python (`.py`).
    Python,
    /// Scala (`.scala`).
    Scala,
    /// SQL (`.sql`).
    Sql,
    /// R (`.r`).
    R,
}

impl Language {
    /// All four languages.
    pub const ALL: [Language; 4] = [
        Language::Python,
        Language::Scala,
        Language::Sql,
        Language::R,
    ];

    /// The file extension a SOURCE export of this language carries (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::Scala => "scala",
            Language::Sql => "sql",
            Language::R => "r",
        }
    }

    /// The first line of a SOURCE export, which marks a file as a notebook on import.
    pub fn source_header(self) -> &'static str {
        match self {
            Language::Python => "# Databricks notebook source",
            Language::Scala => "// Databricks notebook source",
            Language::Sql => "-- Databricks notebook source",
            Language::R => "# Databricks notebook source",
        }
    }

    /// The language whose SOURCE extension is `ext` (case-insensitive, without the dot).
    pub fn from_extension(ext: &str) -> Option<Language> {
        match ext.to_ascii_lowercase().as_str() {
            "py" => Some(Language::Python),
            "scala" => Some(Language::Scala),
            "sql" => Some(Language::Sql),
            "r" => Some(Language::R),
            _ => None,
        }
    }

    /// The wire name (`PYTHON`, `SCALA`, `SQL`, `R`).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "PYTHON",
            Language::Scala => "SCALA",
            Language::Sql => "SQL",
            Language::R => "R",
        }
    }
}

/// Export and import formats of `/api/2.0/workspace/export|import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Format {
    /// Source code with cell markers.
    Source,
    /// Static HTML with outputs.
    Html,
    /// `.ipynb`, outputs included by default.
    Jupyter,
    /// Databricks archive.
    Dbc,
    /// R Markdown (R notebooks only).
    RMarkdown,
    /// Chosen by object type.
    Auto,
    /// The file as is.
    Raw,
}

impl Format {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Source => "SOURCE",
            Format::Html => "HTML",
            Format::Jupyter => "JUPYTER",
            Format::Dbc => "DBC",
            Format::RMarkdown => "R_MARKDOWN",
            Format::Auto => "AUTO",
            Format::Raw => "RAW",
        }
    }

    /// Parses a wire name (case-sensitive, as the real API is).
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "SOURCE" => Format::Source,
            "HTML" => Format::Html,
            "JUPYTER" => Format::Jupyter,
            "DBC" => Format::Dbc,
            "R_MARKDOWN" => Format::RMarkdown,
            "AUTO" => Format::Auto,
            "RAW" => Format::Raw,
            _ => return None,
        })
    }
}

/// `directory_info` of a directory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryInfo {
    /// True for a Git folder created through the Git CLI.
    #[serde(default)]
    pub is_git_folder: bool,
}

/// One entry of `workspace/list` or the body of `workspace/get-status` (`ObjectInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// What the object is.
    pub object_type: ObjectType,
    /// Absolute workspace path.
    pub path: String,
    /// Numeric id; the permissions id for notebooks, directories and files.
    #[serde(default)]
    pub object_id: i64,
    /// Notebook language (notebooks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Creation time, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// Modification time, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<i64>,
    /// Size in bytes (files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Cross-API identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Directory details (directories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_info: Option<DirectoryInfo>,
}

/// Strips an optional `/Workspace` prefix, as the real API accepts both spellings.
pub fn normalize_path(path: &str) -> &str {
    match path.strip_prefix("/Workspace") {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The parent folder of an absolute workspace path (`/` for top-level entries).
pub fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `path` and then each folder above it, nearest first, down to the top-level folder (the root
/// `/` is not included). Checking these against a set answers "is `path` at or inside one of
/// these folders" in a lookup per level, where a scan of the set per path made large imports
/// quadratic.
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once(path).chain(
        path.rmatch_indices('/')
            .map(move |(i, _)| &path[..i])
            .filter(|p| !p.is_empty()),
    )
}

/// True when `path` is one of `dirs` or inside one.
pub fn at_or_below_any(path: &str, dirs: &std::collections::BTreeSet<String>) -> bool {
    self_and_ancestors(path).any(|d| dirs.contains(d))
}

/// The last component of a workspace path.
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_and_ancestors_goes_up_to_the_top_level_folder() {
        let up: Vec<&str> = self_and_ancestors("/Shared/a/b").collect();
        assert_eq!(up, ["/Shared/a/b", "/Shared/a", "/Shared"]);
        assert_eq!(self_and_ancestors("/").collect::<Vec<_>>(), ["/"]);
        assert_eq!(self_and_ancestors("/x").collect::<Vec<_>>(), ["/x"]);
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path("/Workspace/Users/a"), "/Users/a");
        assert_eq!(normalize_path("/Workspace"), "/");
        assert_eq!(normalize_path("/WorkspaceX"), "/WorkspaceX");
        assert_eq!(parent_path("/Users/a/b"), "/Users/a");
        assert_eq!(parent_path("/Users"), "/");
        assert_eq!(base_name("/Users/a/b c"), "b c");
    }

    #[test]
    fn languages_round_trip() {
        for l in Language::ALL {
            assert_eq!(Language::from_extension(l.extension()), Some(l));
        }
    }
}
