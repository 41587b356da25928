//! The bundle format of workspace objects (spec §6.1): the `meta` of `directory`, `notebook`
//! and `file` records, and the resources export writes for them.

use crate::bundle::layout::{notebook_ext, workspace_segments, LogicalPath};
use crate::bundle::resource::{Content, Part, Resource};
use crate::kinds::format::meta_value;
use crate::model::workspace::{Format, Language, ObjectInfo};
use crate::model::Kind;
use serde::{Deserialize, Serialize};

/// `meta` of a `directory` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryMeta {
    /// The folder's object id in the source workspace.
    pub object_id: i64,
}

/// A notebook's language, as §6.1 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotebookLanguage {
    /// Python.
    #[serde(rename = "PYTHON")]
    Python,
    /// Scala.
    #[serde(rename = "SCALA")]
    Scala,
    /// SQL.
    #[serde(rename = "SQL")]
    Sql,
    /// R.
    #[serde(rename = "R")]
    R,
}

impl From<Language> for NotebookLanguage {
    fn from(l: Language) -> Self {
        match l {
            Language::Python => NotebookLanguage::Python,
            Language::Scala => NotebookLanguage::Scala,
            Language::Sql => NotebookLanguage::Sql,
            Language::R => NotebookLanguage::R,
        }
    }
}

/// A format a notebook was exported in, as §6.1 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotebookFormat {
    /// Source code with cell markers.
    #[serde(rename = "SOURCE")]
    Source,
    /// An HTML page.
    #[serde(rename = "HTML")]
    Html,
    /// A Jupyter notebook.
    #[serde(rename = "JUPYTER")]
    Jupyter,
    /// A Databricks archive.
    #[serde(rename = "DBC")]
    Dbc,
    /// R Markdown.
    #[serde(rename = "R_MARKDOWN")]
    RMarkdown,
}

impl NotebookFormat {
    /// The bundle's name for an export format of the API; `None` for one a notebook is never
    /// stored in (`AUTO`, `RAW`).
    pub fn from_wire(f: Format) -> Option<Self> {
        Some(match f {
            Format::Source => NotebookFormat::Source,
            Format::Html => NotebookFormat::Html,
            Format::Jupyter => NotebookFormat::Jupyter,
            Format::Dbc => NotebookFormat::Dbc,
            Format::RMarkdown => NotebookFormat::RMarkdown,
            Format::Auto | Format::Raw => return None,
        })
    }
}

/// `meta` of a `notebook` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotebookMeta {
    /// The notebook's object id in the source workspace.
    pub object_id: i64,
    /// Its language.
    pub language: NotebookLanguage,
    /// The formats stored, parallel to the record's `stored`.
    pub formats: Vec<NotebookFormat>,
    /// Creation time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// Last modification time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<i64>,
}

/// `meta` of a `file` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file's object id in the source workspace.
    pub object_id: i64,
    /// Last modification time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<i64>,
}

impl Resource {
    /// A folder (§6.1): a directory entry, so empty folders survive.
    pub fn directory(path: &str, object_id: i64) -> Self {
        let mut r = Resource::new(
            Kind::Directory,
            object_id.to_string(),
            path,
            meta_value(&DirectoryMeta { object_id }),
        );
        r.parts.push(Part {
            path: LogicalPath::dir(workspace_segments(path)),
            content: Content::Dir,
            sealed: false,
        });
        r
    }

    /// A notebook with its exports; `SOURCE` first when present.
    pub fn notebook(info: &ObjectInfo, exports: Vec<(Format, Content)>) -> Self {
        let language = info.language.unwrap_or(Language::Python);
        let mut exports = exports;
        // AUTO and RAW are import modes, never a stored notebook (the CLI refuses them).
        exports.retain(|(f, _)| NotebookFormat::from_wire(*f).is_some());
        exports.sort_by_key(|(f, _)| *f != Format::Source);
        let meta = NotebookMeta {
            object_id: info.object_id,
            language: language.into(),
            formats: exports
                .iter()
                .filter_map(|(f, _)| NotebookFormat::from_wire(*f))
                .collect(),
            created_at: info.created_at,
            modified_at: info.modified_at,
        };
        let mut r = Resource::new(
            Kind::Notebook,
            info.object_id.to_string(),
            &info.path,
            meta_value(&meta),
        );
        for (format, content) in exports {
            r.parts.push(Part {
                path: LogicalPath::file(
                    workspace_segments(&info.path),
                    Some(notebook_ext(language, format)),
                ),
                content,
                sealed: false,
            });
        }
        r
    }

    /// A workspace file, stored as its bytes.
    pub fn workspace_file(info: &ObjectInfo, content: Content) -> Self {
        let mut r = Resource::new(
            Kind::File,
            info.object_id.to_string(),
            &info.path,
            meta_value(&FileMeta {
                object_id: info.object_id,
                modified_at: info.modified_at,
            }),
        );
        r.parts.push(Part {
            path: LogicalPath::file(workspace_segments(&info.path), None),
            content,
            sealed: false,
        });
        r
    }
}
