//! The bundle format of workspace objects (spec §6.1): the `meta` of `directory`, `notebook`
//! and `file` records, and the resources export writes for them.

use crate::bundle::inventory::Record;
use crate::bundle::layout::{workspace_segments, LogicalPath};
use crate::bundle::records::{check_workspace_path, Out};
use crate::bundle::resource::{Content, Part, Resource};
use crate::kinds::format::meta_value;
use crate::model::scan::{Dependency, Finding};
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

/// One line of a notebook's or file's code that depends on something a migration cannot
/// carry (§6.1): what export's scanner found, so import lists it under "must recreate"
/// without reading and scanning the code again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeReference {
    /// 1-based line number.
    pub line: u64,
    /// What the line depends on: `mount_path`, `mount_call`, `cluster_id`, `job_id`,
    /// `warehouse_id` or `secret_read` (a newer writer may add others).
    pub dependency: String,
    /// The matched text (a mount path, an id, `scope/key`), never a secret value.
    pub matched: String,
}

impl CodeReference {
    /// The reference of a scanner finding.
    pub fn from_finding(f: &Finding) -> Self {
        CodeReference {
            line: f.line as u64,
            dependency: serde_json::to_value(f.dependency)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            matched: f.matched.clone(),
        }
    }

    /// The finding it records for the object at `path`; `None` for a dependency this version
    /// does not know.
    pub fn to_finding(&self, path: &str) -> Option<Finding> {
        let dependency: Dependency =
            serde_json::from_value(serde_json::Value::String(self.dependency.clone())).ok()?;
        Some(Finding {
            path: path.to_string(),
            line: usize::try_from(self.line).ok()?,
            dependency,
            matched: self.matched.clone(),
        })
    }
}

fn references(findings: Option<&[Finding]>) -> Option<Vec<CodeReference>> {
    findings.map(|f| f.iter().map(CodeReference::from_finding).collect())
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
    /// What export's scanner found in its source (from format 1.2; absent when it was not
    /// scanned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_references: Option<Vec<CodeReference>>,
}

/// `meta` of a `file` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file's object id in the source workspace.
    pub object_id: i64,
    /// Last modification time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<i64>,
    /// What export's scanner found in it (from format 1.2; absent when it was not scanned,
    /// such as a file over the scan limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_references: Option<Vec<CodeReference>>,
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
}

/// The rules of §6.1 for a `directory`, `notebook` or `file` record (E307).
pub(crate) fn check_record(r: &Record, out: &mut Out) {
    out.result(
        r,
        check_workspace_path(&r.name).map_err(|e| format!("name {e}")),
    );
}

/// The API's side: conversions between the workspace API's languages and formats and the
/// format's, and the constructors export calls with what the API returned.
mod wire {
    use super::{references, FileMeta, NotebookFormat, NotebookLanguage, NotebookMeta};
    use crate::bundle::layout::{notebook_ext, workspace_segments, LogicalPath};
    use crate::bundle::resource::{Content, Part, Resource};
    use crate::kinds::format::meta_value;
    use crate::model::scan::Finding;
    use crate::model::workspace::{Format, Language, ObjectInfo};
    use crate::model::Kind;

    impl NotebookLanguage {
        /// The API's language.
        pub fn to_wire(self) -> Language {
            match self {
                NotebookLanguage::Python => Language::Python,
                NotebookLanguage::Scala => Language::Scala,
                NotebookLanguage::Sql => Language::Sql,
                NotebookLanguage::R => Language::R,
            }
        }
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

    impl NotebookFormat {
        /// The API's export format.
        pub fn to_wire(self) -> Format {
            match self {
                NotebookFormat::Source => Format::Source,
                NotebookFormat::Html => Format::Html,
                NotebookFormat::Jupyter => Format::Jupyter,
                NotebookFormat::Dbc => Format::Dbc,
                NotebookFormat::RMarkdown => Format::RMarkdown,
            }
        }

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

    impl Resource {
        /// A notebook with its exports; `SOURCE` first when present. Not scanned.
        pub fn notebook(info: &ObjectInfo, exports: Vec<(Format, Content)>) -> Self {
            Self::notebook_scanned(info, exports, None)
        }

        /// A notebook with its exports and what the scanner found in its source (`None`: not
        /// scanned).
        pub fn notebook_scanned(
            info: &ObjectInfo,
            exports: Vec<(Format, Content)>,
            findings: Option<&[Finding]>,
        ) -> Self {
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
                code_references: references(findings),
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

        /// A workspace file, stored as its bytes. Not scanned.
        pub fn workspace_file(info: &ObjectInfo, content: Content) -> Self {
            Self::workspace_file_scanned(info, content, None)
        }

        /// A workspace file and what the scanner found in it (`None`: not scanned).
        pub fn workspace_file_scanned(
            info: &ObjectInfo,
            content: Content,
            findings: Option<&[Finding]>,
        ) -> Self {
            let mut r = Resource::new(
                Kind::File,
                info.object_id.to_string(),
                &info.path,
                meta_value(&FileMeta {
                    object_id: info.object_id,
                    modified_at: info.modified_at,
                    code_references: references(findings),
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
}
