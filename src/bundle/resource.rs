//! Resources as the writers take them: one [`Resource`] per inventory record, with its parts
//! (stored files described by original names) and their content, shared by every writer (the
//! streaming [`super::writer`], the staging [`super::builder`]). The per-kind constructors —
//! spec §6's name, source id, logical path and typed `meta` of each kind — live with their
//! kind, in `kinds::<kind>::format` (`Resource::notebook`, `Resource::job`, …).

use super::json::to_canonical_bytes;
use super::layout::LogicalPath;
use crate::model::Kind;
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;

/// Where a part's bytes come from. Files are opened only when written, so a resource list can
/// describe any number of files without holding them open.
pub enum Content {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A file on disk, read when written.
    File(PathBuf),
    /// `len` bytes of a file on disk from `offset`, read when written (a part staged in a
    /// pack, spec §11).
    Range {
        /// The file.
        path: PathBuf,
        /// Where the bytes start.
        offset: u64,
        /// How many there are.
        len: u64,
    },
    /// A stream of exactly `len` bytes.
    Stream {
        /// The exact length.
        len: u64,
        /// The bytes.
        reader: Box<dyn Read + Send>,
    },
    /// A folder (no bytes).
    Dir,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Content::File(p) => write!(f, "File({})", p.display()),
            Content::Range { path, offset, len } => {
                write!(f, "Range({}, {len} bytes at {offset})", path.display())
            }
            Content::Stream { len, .. } => write!(f, "Stream({len} bytes)"),
            Content::Dir => f.write_str("Dir"),
        }
    }
}

/// One stored file or folder of a resource.
#[derive(Debug)]
pub struct Part {
    /// Where it goes, in original names.
    pub path: LogicalPath,
    /// Its bytes.
    pub content: Content,
    /// True when the bytes are sealed (§8).
    pub sealed: bool,
}

/// One resource: what becomes one inventory record plus its stored files.
#[derive(Debug)]
pub struct Resource {
    /// Its kind.
    pub kind: Kind,
    /// Its id in the source workspace.
    pub source_id: String,
    /// Its original name or path.
    pub name: String,
    /// Kind-specific details.
    pub meta: Value,
    /// Notes for the user.
    pub notes: Vec<String>,
    /// Stored files and folders, primary first.
    pub parts: Vec<Part>,
}

/// A part holding `value` as canonical JSON (§9).
pub(crate) fn json_part(path: LogicalPath, value: &impl Serialize) -> Part {
    Part {
        path,
        content: Content::Bytes(to_canonical_bytes(value).expect("model types serialize")),
        sealed: false,
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

impl Resource {
    /// A resource with no parts yet.
    pub fn new(
        kind: Kind,
        source_id: impl Into<String>,
        name: impl Into<String>,
        meta: Value,
    ) -> Self {
        Resource {
            kind,
            source_id: source_id.into(),
            name: name.into(),
            meta: strip_nulls(meta),
            notes: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Adds notes.
    pub fn with_notes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, notes: I) -> Self {
        self.notes.extend(notes.into_iter().map(Into::into));
        self
    }

    /// True when the primary part is sealed.
    pub fn is_sealed(&self) -> bool {
        self.parts.first().is_some_and(|p| p.sealed)
    }
}
