//! The inventory, `dbxport.json` (spec §5): its types, its byte form, the checks a reader makes
//! on it (the same rules as `spec/inventory.schema.json`), and version compatibility (§14).

use super::error::{BundleError, ErrorCode, Result};
use super::json::canonicalize;
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Read;
use std::sync::Arc;
use time::OffsetDateTime;

mod stream;

/// The inventory's `format` value.
pub const FORMAT_NAME: &str = "dbxport-bundle";
/// The format version this code writes.
pub const FORMAT_VERSION: &str = "1.2.0";
/// The major version this code reads.
pub const FORMAT_MAJOR: u64 = 1;
/// The inventory's file name in the bag folder.
pub const INVENTORY_FILE: &str = "dbxport.json";

/// The tool that wrote a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Program name.
    pub name: String,
    /// Program version.
    pub version: String,
}

impl Tool {
    /// This program.
    pub fn current() -> Self {
        Tool {
            name: "dbxport".into(),
            version: crate::VERSION.into(),
        }
    }
}

/// The workspace a bundle came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Workspace URL, or `""`.
    pub host: String,
    /// Workspace id, or `""`.
    pub workspace_id: String,
}

/// How a bundle's sealed files were sealed (§8.3); recipients themselves are not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealing {
    /// How many recipients each sealed file was encrypted to.
    pub recipients: u32,
    /// The age stanza types, sorted, without repeats (`X25519`, `ssh-ed25519`, `scrypt`, …).
    pub recipient_types: Vec<String>,
    /// True when sealed with a passphrase.
    pub passphrase: bool,
}

/// One resource (§5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What it is.
    pub kind: Kind,
    /// Its id in the source workspace.
    pub source_id: String,
    /// Its original name or path, byte for byte.
    pub name: String,
    /// Stored paths relative to the bag folder, primary first; folders end in `/`.
    pub stored: Vec<String>,
    /// Size of the primary stored file in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the primary stored file as stored.
    pub sha256: Option<String>,
    /// True when the primary stored file is sealed.
    pub sealed: bool,
    /// What the user should know.
    pub notes: Vec<String>,
    /// Kind-specific details (§6).
    pub meta: Value,
}

impl Record {
    /// The sort key of §9: kind in import order, then name, then source id, then stored paths.
    pub fn sort_key(&self) -> (usize, &str, &str, &[String]) {
        (
            kind_rank(self.kind),
            &self.name,
            &self.source_id,
            &self.stored,
        )
    }

    /// A string field of `meta`, if present.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.meta.get(key).and_then(Value::as_str)
    }
}

/// The position of `kind` in the import order of §14.2.
pub fn kind_rank(kind: Kind) -> usize {
    Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}

/// A record of a kind this reader does not know (§14.1): verified, otherwise left alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpaqueRecord {
    /// The unknown kind's name.
    pub kind: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its stored paths.
    pub stored: Vec<String>,
    /// Size of its primary stored file.
    pub size: u64,
    /// Digest of its primary stored file.
    pub sha256: Option<String>,
}

/// A record checked as it streamed and kept without its `meta` (see
/// [`Inventory::from_reader_lean`]): what verifying, inspecting and unpacking need of it, in
/// about a third of a [`Record`]'s memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    /// What it is.
    pub kind: Kind,
    /// True when the primary stored file is sealed.
    pub sealed: bool,
    /// Its original name or path.
    pub name: Box<str>,
    /// Stored paths, primary first, kept in the inventory's [`StoredPaths`]
    /// ([`Inventory::stored_path`]).
    pub stored: Box<[StoredRef]>,
    /// Size of the primary stored file.
    pub size: u64,
    /// SHA-256 of the primary stored file, as bytes.
    pub sha256: Option<[u8; 32]>,
    /// What the user should know.
    pub notes: Box<[Box<str>]>,
}

impl RecordSummary {
    /// The summary of `r` (whose `sha256`, checked by the schema rules, is 64 hex digits),
    /// each stored path kept by `keep` (in the inventory's [`StoredPaths`]).
    pub fn of(r: Record, keep: &mut dyn FnMut(&str) -> StoredRef) -> Self {
        let boxed = |v: Vec<String>| v.into_iter().map(String::into_boxed_str).collect();
        RecordSummary {
            kind: r.kind,
            sealed: r.sealed,
            name: r.name.into_boxed_str(),
            stored: r.stored.iter().map(|p| keep(p)).collect(),
            size: r.size,
            sha256: r.sha256.as_deref().and_then(sha256_bytes),
            notes: boxed(r.notes),
        }
    }

    /// The digest as hex, as a record holds it.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256.map(hex::encode)
    }
}

/// A record's `sha256` (64 hex digits, checked by the schema rules) as bytes, which take a third
/// of the memory of the hex text; `None` when it is not hex.
pub fn sha256_bytes(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok().map(|_| out)
}

/// A stored path of a [`RecordSummary`], as a place in its inventory's [`StoredPaths`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRef {
    /// Where the path starts: in the shared entry names, or (with [`StoredRef::OWN`] set) in
    /// the inventory's own arena.
    at: u64,
    len: u32,
}

impl StoredRef {
    const OWN: u64 = 1 << 63;
}

/// Where a bag-relative path is spelled in shared entry names, when an entry has that name.
pub type FindName<'a> = &'a dyn Fn(&str) -> Option<usize>;

/// The entry names of the zip an inventory is read from, which a lean parse shares
/// ([`Inventory::from_reader_lean_sharing`]).
#[derive(Clone, Copy)]
pub struct SharedNames<'a> {
    /// Every entry's name, as the zip index keeps them.
    pub names: &'a Arc<str>,
    /// Where the bag-relative path `p` is spelled in `names`, when an entry has that name.
    pub find: FindName<'a>,
}

/// Where the stored paths of an inventory's [`RecordSummary`]s are kept (issue #15): a path
/// that names a zip entry is a place in the zip index's names, shared with it, not a string
/// of its own (each path was held twice, as the entry's name and as the record's); any other
/// path (a damaged bundle's, or when nothing is shared) is in one arena of the inventory's own.
#[derive(Debug, Clone, Default)]
pub struct StoredPaths {
    shared: Option<Arc<str>>,
    own: String,
}

impl PartialEq for StoredPaths {
    /// Always equal: what the paths are is compared through the records that hold them.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl StoredPaths {
    fn sharing(shared: Option<Arc<str>>) -> Self {
        StoredPaths {
            shared,
            own: String::new(),
        }
    }

    /// Keeps `p`, found through `find` in the shared names when it is there.
    fn add_with(&mut self, p: &str, find: Option<FindName<'_>>) -> StoredRef {
        // A stored path is a JSON string of at most 1 MiB (§10.3).
        let len = p.len().min(u32::MAX as usize) as u32;
        if let (Some(at), Some(_)) = (find.and_then(|f| f(p)), &self.shared) {
            return StoredRef { at: at as u64, len };
        }
        let at = self.own.len() as u64 | StoredRef::OWN;
        self.own.push_str(p);
        StoredRef { at, len }
    }

    /// The path `r` stands for.
    pub fn get(&self, r: StoredRef) -> &str {
        let (arena, at) = if r.at & StoredRef::OWN != 0 {
            (&*self.own, (r.at & !StoredRef::OWN) as usize)
        } else {
            (self.shared.as_deref().unwrap_or(""), r.at as usize)
        };
        &arena[at..at + r.len as usize]
    }
}

/// One record, whole or summarised, as [`Inventory::views`] yields it.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    /// What it is.
    pub kind: Kind,
    /// Its original name or path.
    pub name: &'a str,
    /// Stored paths, primary first.
    pub stored: Vec<&'a str>,
    /// True when the primary stored file is sealed.
    pub sealed: bool,
    /// Notes.
    pub notes: Vec<&'a str>,
}

/// The inventory (§5.1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Inventory {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Semver of the format.
    pub format_version: String,
    /// The bundle's UUID.
    pub bundle_id: String,
    /// RFC 3339 UTC time, whole seconds.
    pub created: String,
    /// The writing tool.
    pub tool: Tool,
    /// The source workspace.
    pub source: Source,
    /// Export options (free-form).
    pub options: Value,
    /// Sealing summary, or null.
    pub sealing: Option<Sealing>,
    /// One record per resource.
    pub records: Vec<Record>,
    /// Records of kinds this reader does not know.
    #[serde(skip)]
    pub opaque: Vec<OpaqueRecord>,
    /// Records kept as summaries by [`Inventory::from_reader_lean`] (none otherwise); they are
    /// not in `records`.
    #[serde(skip)]
    pub summaries: Vec<RecordSummary>,
    /// Where the summaries' stored paths are kept.
    #[serde(skip)]
    pub stored_paths: StoredPaths,
    /// What the model rules need of the model records a lean reading checked as they
    /// streamed, until [`super::records::check`] runs them (and drops this).
    #[serde(skip)]
    pub(crate) model_facts: crate::kinds::model::format::ModelFacts,
}

/// The inventory's byte form (§5.1), top-level fields in their order, with the records from
/// `records`: the one place that order is written down. [`Inventory`] serializes through it,
/// and a writer renders its records one at a time through it ([`Inventory::write_records_to`]).
#[derive(Serialize)]
struct Doc<'a, R> {
    format: &'a str,
    format_version: &'a str,
    bundle_id: &'a str,
    created: &'a str,
    tool: &'a Tool,
    source: &'a Source,
    options: &'a Value,
    sealing: &'a Option<Sealing>,
    records: R,
}

/// A sequence serialized from an iterator, consumed by the one serialization; the first error
/// the iterator gives is kept for the caller (a serializer's own error only says its text).
struct Streamed<I> {
    items: std::cell::RefCell<Option<I>>,
    len: usize,
    failed: std::cell::RefCell<Option<BundleError>>,
}

impl<I, T> Serialize for Streamed<I>
where
    I: Iterator<Item = Result<T>>,
    T: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq as _};
        let items = self.items.borrow_mut().take();
        let mut seq = s.serialize_seq(Some(self.len))?;
        for item in items.into_iter().flatten() {
            match item {
                Ok(r) => seq.serialize_element(&r)?,
                Err(e) => {
                    let msg = e.to_string();
                    *self.failed.borrow_mut() = Some(e);
                    return Err(S::Error::custom(msg));
                }
            }
        }
        seq.end()
    }
}

impl Serialize for Inventory {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.doc(self.records.iter().map(Ok), self.records.len())
            .serialize(s)
    }
}

/// Formats a time as the inventory's `created` (`2026-11-26T08:00:00Z`).
pub fn format_created(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses the inventory's `created`.
pub fn parse_created(s: &str) -> Option<OffsetDateTime> {
    if !is_created(s) {
        return None;
    }
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn is_created(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// True for a lowercase UUID string (`8-4-4-4-12` hex).
pub fn is_bundle_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// A fresh random (version 4) bundle id.
pub fn new_bundle_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// True for a lowercase 64-digit hex SHA-256.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// True for a bag-relative stored path as the schema allows (`data/…`, no `.`/`..`/empty parts).
pub fn is_stored_path(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("data/") else {
        return false;
    };
    let body = rest.strip_suffix('/').unwrap_or(rest);
    !body.is_empty()
        && body
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && !s.chars().any(|c| {
            c.is_control() || matches!(c, '%' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
        })
}

/// The `meta` keys a `model_version` record must have from format 1.1 on (spec §6.5, §14.3);
/// a 1.0 bundle may lack them.
pub const MODEL_VERSION_META_1_1: [&str; 4] = [
    "artifacts_sha256",
    "artifact_count",
    "artifact_bytes",
    "complete",
];

/// The minor version of a version string whose major version was accepted; a minor too large
/// for `u64` is later than any this code knows.
fn minor_of(v: &str) -> u64 {
    v.split('.')
        .nth(1)
        .map_or(0, |m| m.parse().unwrap_or(u64::MAX))
}

/// The rules a record's `meta` follows from a given minor version on (§14.3), as messages;
/// the schema says the same with its `format_version` condition.
fn versioned_meta_problems(minor: u64, kind: &str, meta: &Map<String, Value>) -> Vec<String> {
    let mut p = Vec::new();
    if minor >= 1 && kind == "model_version" {
        for k in MODEL_VERSION_META_1_1 {
            if !meta.contains_key(k) {
                p.push(format!(
                    "meta.{k} is missing for kind model_version (required from format 1.1)"
                ));
            }
        }
        if meta
            .get("artifacts_sha256")
            .is_some_and(|v| !v.as_str().is_some_and(is_sha256_hex))
        {
            p.push("meta.artifacts_sha256 is not 64 lowercase hex digits".into());
        }
        for k in ["artifact_count", "artifact_bytes"] {
            if meta.get(k).is_some_and(|v| v.as_u64().is_none()) {
                p.push(format!("meta.{k} is not a non-negative integer"));
            }
        }
        if meta.get("complete").is_some_and(|v| !v.is_boolean()) {
            p.push("meta.complete is not a boolean".into());
        }
    }
    p
}

/// The major version of a semver string, if it is one.
fn major_of(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    parts[0].parse().ok()
}

const SUBJECT: &str = "dbxport.json";

fn bad(detail: impl Into<String>) -> BundleError {
    BundleError::new(ErrorCode::InventorySyntax, SUBJECT, detail)
}

impl Inventory {
    /// A new, empty inventory.
    pub fn new(bundle_id: String, created: OffsetDateTime, source: Source, options: Value) -> Self {
        Inventory {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION.into(),
            bundle_id,
            created: format_created(created),
            tool: Tool::current(),
            source,
            options,
            sealing: None,
            records: Vec::new(),
            opaque: Vec::new(),
            summaries: Vec::new(),
            stored_paths: StoredPaths::default(),
            model_facts: Default::default(),
        }
    }

    /// A summary's stored path.
    pub fn stored_path(&self, r: StoredRef) -> &str {
        self.stored_paths.get(r)
    }

    /// Every known record, whole ones and summaries, in the inventory's order (each kind is
    /// either whole or summarised, so the two sorted lists merge by kind).
    pub fn views(&self) -> impl Iterator<Item = RecordView<'_>> {
        let whole = self.records.iter().map(|r| RecordView {
            kind: r.kind,
            name: &r.name,
            stored: r.stored.iter().map(String::as_str).collect(),
            sealed: r.sealed,
            notes: r.notes.iter().map(String::as_str).collect(),
        });
        let lean = self.summaries.iter().map(|r| RecordView {
            kind: r.kind,
            name: &r.name,
            stored: r.stored.iter().map(|s| self.stored_path(*s)).collect(),
            sealed: r.sealed,
            notes: r.notes.iter().map(|s| &**s).collect(),
        });
        let mut whole = whole.peekable();
        let mut lean = lean.peekable();
        std::iter::from_fn(move || match (whole.peek(), lean.peek()) {
            (Some(a), Some(b)) if kind_rank(b.kind) < kind_rank(a.kind) => lean.next(),
            (Some(_), _) => whole.next(),
            (None, _) => lean.next(),
        })
    }

    /// Sorts records (§9) and canonicalizes `meta` and `options`.
    pub fn normalize(&mut self) {
        for r in &mut self.records {
            canonicalize(&mut r.meta);
        }
        canonicalize(&mut self.options);
        self.records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    }

    /// The inventory's bytes (§5): pretty JSON, trailing LF. Call [`Inventory::normalize`] first.
    pub fn to_bytes(&self) -> Vec<u8> {
        super::json::to_pretty_bytes(self).expect("inventory serializes")
    }

    /// Writes the bytes of [`Inventory::to_bytes`] to `w` as they are rendered, without
    /// holding them.
    pub fn write_to<W: std::io::Write>(&self, w: W) -> std::io::Result<()> {
        self.write_records_to(w, self.records.len(), self.records.iter().map(Ok))
    }

    /// Writes the inventory with this one's top-level fields and, instead of its `records`,
    /// the `count` records `records` yields in order (sorted and canonical, as
    /// [`Inventory::normalize`] leaves them), each rendered as it comes: a writer that reads
    /// its records back one at a time holds neither them nor the bytes. The first error the
    /// records give stops the writing and is returned inside the `io::Error` (as its inner
    /// error, which [`IoContext`](super::error) gives back).
    pub fn write_records_to<W, T>(
        &self,
        mut w: W,
        count: usize,
        records: impl Iterator<Item = Result<T>>,
    ) -> std::io::Result<()>
    where
        W: std::io::Write,
        T: Serialize,
    {
        let doc = self.doc(records, count);
        if let Err(e) = serde_json::to_writer_pretty(&mut w, &doc) {
            if let Some(failed) = doc.records.failed.borrow_mut().take() {
                return Err(std::io::Error::other(failed));
            }
            return Err(e.into());
        }
        w.write_all(b"\n")
    }

    fn doc<I>(&self, records: I, len: usize) -> Doc<'_, Streamed<I>> {
        Doc {
            format: &self.format,
            format_version: &self.format_version,
            bundle_id: &self.bundle_id,
            created: &self.created,
            tool: &self.tool,
            source: &self.source,
            options: &self.options,
            sealing: &self.sealing,
            records: Streamed {
                items: std::cell::RefCell::new(Some(records)),
                len,
                failed: std::cell::RefCell::new(None),
            },
        }
    }

    /// Parses and checks inventory bytes: format name (E301), major version (E302), then the
    /// schema rules (E300). Records of unknown kinds are kept in [`Inventory::opaque`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Inventory> {
        Inventory::from_reader(bytes)
    }

    /// Like [`Inventory::from_bytes`], reading the JSON as a stream: no whole-document tree is
    /// built, unknown fields are skipped without being held, and what is held is bounded by
    /// the limits of spec §10.3 ([`InventoryLimits`]), so memory follows the records, not the
    /// bytes. The whole stream is not necessarily read; a caller hashing it drains the rest.
    pub fn from_reader<R: Read>(r: R) -> Result<Inventory> {
        Inventory::parse(r, stream::Keep::Full)
    }

    /// Like [`Inventory::from_reader`], for a command that only verifies or summarises a
    /// bundle: each record of a kind whose rules need no other record (workspace objects,
    /// repos, jobs, permissions, grants, compute, principals, models) is checked as it streams, with
    /// the rules [`super::records::check`] applies, its problems added to `problems`, and it
    /// is then kept as a [`RecordSummary`] in [`Inventory::summaries`] (name, paths, size,
    /// digest and notes), not in `records`; of a model record, what the rules spanning model
    /// records need is kept besides (`ModelFacts`). Secrets and scopes are kept whole: their
    /// rules span records and `verify --identity` and `unpack` read their meta.
    /// [`Inventory::views`] walks both.
    pub fn from_reader_lean<R: Read>(
        r: R,
        problems: &std::cell::RefCell<super::ProblemList>,
    ) -> Result<Inventory> {
        Inventory::parse(r, stream::Keep::Lean(problems, None))
    }

    /// [`Inventory::from_reader_lean`] for the inventory of a zip whose entry names are
    /// `shared`: a summary's stored path that names an entry is kept as a place in those
    /// names, not as a copy ([`StoredPaths`]).
    pub fn from_reader_lean_sharing<R: Read>(
        r: R,
        problems: &std::cell::RefCell<super::ProblemList>,
        shared: SharedNames<'_>,
    ) -> Result<Inventory> {
        Inventory::parse(r, stream::Keep::Lean(problems, Some(shared)))
    }

    /// Streams the records of an inventory that has already passed its checks (a command
    /// opened the bundle lean, [`super::Bundle::open_lean`]), handing each record of a known
    /// kind whole — `meta` included — to `visit` as it is parsed, and keeping none: `import`
    /// reads what it needs of each record this way, in memory that does not grow with the
    /// records (issue #15). The other fields are returned, with no records. The schema rules
    /// are applied as by [`Inventory::from_reader`], but for the rules of records that depend
    /// on the format's minor version, which the lean parse already applied.
    pub fn for_each_record<R: Read>(r: R, visit: &mut dyn FnMut(Record)) -> Result<Inventory> {
        let cell = std::cell::RefCell::new(visit);
        let each = |record: Record| (cell.borrow_mut())(record);
        Inventory::parse(r, stream::Keep::Visit(&each))
    }

    fn parse<R: Read>(r: R, keep: stream::Keep<'_>) -> Result<Inventory> {
        let mut guard = stream::Guard::new(r);
        let budget = stream::Budget::new(InventoryLimits::SPEC);
        let parsed = {
            let mut br = std::io::BufReader::with_capacity(64 * 1024, &mut guard);
            let mut de = serde_json::Deserializer::from_reader(&mut br);
            serde::de::DeserializeSeed::deserialize(stream::TopSeed(&budget, keep), &mut de)
                .and_then(|top| de.end().map(|_| top))
        };
        let top = match parsed {
            Ok(top) => top,
            Err(e) => {
                if let Some(why) = guard.failure() {
                    return Err(bad(why));
                }
                if let Some(why) = budget.exceeded() {
                    return Err(bad(why));
                }
                if let Some(io) = e.io_error_kind() {
                    return Err(bad(format!("could not be read ({io})")));
                }
                return Err(bad(format!("not valid JSON: {e}")));
            }
        };
        let stream::Top::Object {
            fields: obj,
            records,
        } = top
        else {
            return Err(bad("top level is not an object"));
        };
        match obj.get("format").and_then(Value::as_str) {
            Some(FORMAT_NAME) => {}
            Some(other) => {
                return Err(BundleError::new(
                    ErrorCode::FormatName,
                    SUBJECT,
                    format!("format is {other:?}, expected {FORMAT_NAME:?}"),
                ))
            }
            None => return Err(bad("`format` is missing or not a string")),
        }
        let version = obj
            .get("format_version")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`format_version` is missing or not a string"))?;
        match major_of(version) {
            Some(FORMAT_MAJOR) => {}
            Some(m) => {
                return Err(BundleError::new(
                    ErrorCode::UnsupportedVersion,
                    SUBJECT,
                    format!(
                        "format version {version} (major {m}) is not supported; this dbxport reads {FORMAT_MAJOR}.x"
                    ),
                ))
            }
            None => return Err(bad(format!("format_version {version:?} is not semver"))),
        }
        // Same order as `schema_problems`: missing fields, top-level fields, then records.
        let missing = missing_keys(&obj, records.is_some());
        if let Some(first) = missing.into_iter().next() {
            return Err(bad(first));
        }
        if let Some(first) = field_problems(&obj).into_iter().next() {
            return Err(bad(first));
        }
        let records = records.expect("present when no key is missing");
        let stream::Records::Array {
            records,
            opaque,
            summaries,
            stored_paths,
            model_facts,
            first_problem,
        } = records
        else {
            return Err(bad("`records` is not an array"));
        };
        if let Some(first) = first_problem {
            return Err(bad(first));
        }
        // The rules that depend on the minor version, once both version and records are read
        // (a hostile inventory may put `format_version` after `records`).
        let minor = minor_of(version);
        for r in &records {
            let Some(meta) = r.meta.as_object() else {
                continue;
            };
            if let Some(m) = versioned_meta_problems(minor, r.kind.as_str(), meta)
                .into_iter()
                .next()
            {
                return Err(bad(format!("record {} {}: {m}", r.kind, r.name)));
            }
        }
        let field = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
        Ok(Inventory {
            format: FORMAT_NAME.into(),
            format_version: version.into(),
            bundle_id: obj["bundle_id"].as_str().unwrap_or_default().into(),
            created: obj["created"].as_str().unwrap_or_default().into(),
            tool: serde_json::from_value(field("tool")).map_err(|e| bad(e.to_string()))?,
            source: serde_json::from_value(field("source")).map_err(|e| bad(e.to_string()))?,
            options: field("options"),
            sealing: serde_json::from_value(field("sealing"))
                .map_err(|e| bad(format!("sealing: {e}")))?,
            records,
            opaque,
            summaries,
            stored_paths: *stored_paths,
            model_facts: *model_facts,
        })
    }
}

/// What a streamed inventory may hold in memory (spec §10.3). Every JSON value kept (each
/// scalar, array and object, including object keys) counts against `values`, every byte of a
/// kept string or key against `string_bytes`; each record started adds its allowance to both.
/// Unknown top-level fields are skipped and cost nothing. Any single string or number token is
/// at most `token_bytes` long and nesting at most `depth` deep, skipped or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InventoryLimits {
    /// JSON values held, before any record's allowance.
    pub values: u64,
    /// Additional JSON values allowed per record.
    pub values_per_record: u64,
    /// Bytes of strings held, before any record's allowance.
    pub string_bytes: u64,
    /// Additional string bytes allowed per record.
    pub string_bytes_per_record: u64,
    /// Longest single string or number token, in bytes.
    pub token_bytes: u64,
    /// Deepest nesting of arrays and objects (the top-level object is level 1).
    pub depth: u32,
}

impl InventoryLimits {
    /// The limits of spec §10.3.
    pub const SPEC: InventoryLimits = InventoryLimits {
        // A real record holds 10–60 values and a few hundred bytes of strings (the golden
        // bundle's largest: 39 and 431); the pooled allowances cover the few large ones (a job
        // with many tasks, a scope with many keys). They bound what a hostile inventory can make
        // each record cost (issue #9: 256 values per record let 45,000 records hold 900 MB).
        values: 1 << 18,
        values_per_record: 64,
        string_bytes: 16 << 20,
        string_bytes_per_record: 4 << 10,
        token_bytes: 1 << 20,
        depth: 127,
    };
}

/// The rules of `spec/inventory.schema.json`, as messages; empty when the inventory conforms.
pub fn schema_problems(obj: &Map<String, Value>) -> Vec<String> {
    let mut p = missing_keys(obj, obj.contains_key("records"));
    if !p.is_empty() {
        return p;
    }
    p.extend(field_problems(obj));
    match obj["records"].as_array() {
        None => p.push("`records` is not an array".into()),
        Some(recs) => {
            let minor = obj["format_version"].as_str().map_or(0, minor_of);
            for (i, r) in recs.iter().enumerate() {
                let mut problems = record_problems(r);
                if problems.is_empty() {
                    if let (Some(kind), Some(meta)) = (r["kind"].as_str(), r["meta"].as_object()) {
                        problems = versioned_meta_problems(minor, kind, meta);
                    }
                }
                for m in problems {
                    p.push(format!("records[{i}]: {m}"));
                }
            }
        }
    }
    p
}

/// The required top-level fields that are missing; `records` is checked by `has_records`
/// (a streamed inventory does not keep its records in `obj`).
fn missing_keys(obj: &Map<String, Value>, has_records: bool) -> Vec<String> {
    let mut p = Vec::new();
    for k in stream::KEPT.iter().copied().chain(["records"]) {
        let present = if k == "records" {
            has_records
        } else {
            obj.contains_key(k)
        };
        if !present {
            p.push(format!("`{k}` is missing"));
        }
    }
    p
}

/// Problems of the top-level fields other than `records`; all of them must be present.
fn field_problems(obj: &Map<String, Value>) -> Vec<String> {
    let mut p = Vec::new();
    fn str_field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
        o.get(k).and_then(Value::as_str)
    }
    if !str_field(obj, "bundle_id").is_some_and(is_bundle_id) {
        p.push("`bundle_id` is not a lowercase UUID".into());
    }
    if str_field(obj, "created").is_none_or(|s| parse_created(s).is_none()) {
        p.push("`created` is not an RFC 3339 UTC time like 2026-01-31T12:00:00Z".into());
    }
    match obj["tool"].as_object() {
        Some(t)
            if str_field(t, "name").is_some_and(|s| !s.is_empty())
                && str_field(t, "version").is_some_and(|s| !s.is_empty()) => {}
        _ => p.push("`tool` needs non-empty `name` and `version`".into()),
    }
    match obj["source"].as_object() {
        Some(s) if str_field(s, "host").is_some() && str_field(s, "workspace_id").is_some() => {}
        _ => p.push("`source` needs string `host` and `workspace_id`".into()),
    }
    if !obj["options"].is_object() {
        p.push("`options` is not an object".into());
    }
    match &obj["sealing"] {
        Value::Null => {}
        Value::Object(s) => {
            if s.get("recipients")
                .and_then(Value::as_u64)
                .is_none_or(|n| n < 1)
            {
                p.push("`sealing.recipients` must be a positive integer".into());
            }
            match s.get("recipient_types").and_then(Value::as_array) {
                Some(t)
                    if !t.is_empty()
                        && t.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty()))
                        && t.iter().collect::<std::collections::HashSet<_>>().len() == t.len() => {}
                _ => p.push(
                    "`sealing.recipient_types` must be a non-empty list of distinct names".into(),
                ),
            }
            if !s.get("passphrase").is_some_and(Value::is_boolean) {
                p.push("`sealing.passphrase` must be a boolean".into());
            }
        }
        _ => p.push("`sealing` must be null or an object".into()),
    }
    p
}

fn record_problems(r: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(o) = r.as_object() else {
        return vec!["not an object".into()];
    };
    for k in [
        "kind",
        "source_id",
        "name",
        "stored",
        "size",
        "sha256",
        "sealed",
        "notes",
        "meta",
    ] {
        if !o.contains_key(k) {
            p.push(format!("`{k}` is missing"));
        }
    }
    if !p.is_empty() {
        return p;
    }
    let kind = o["kind"].as_str().unwrap_or("");
    if kind.is_empty()
        || !kind.starts_with(|c: char| c.is_ascii_lowercase())
        || !kind
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        p.push("`kind` is not a kind name".into());
    }
    for k in ["source_id", "name"] {
        if !o[k].is_string() {
            p.push(format!("`{k}` is not a string"));
        }
    }
    match o["stored"].as_array() {
        Some(a) => {
            let mut seen = std::collections::HashSet::new();
            for s in a {
                match s.as_str() {
                    Some(s) if is_stored_path(s) => {
                        if !seen.insert(s) {
                            p.push(format!("stored path {s:?} is listed twice"));
                        }
                    }
                    _ => p.push(format!("stored path {s} is not a safe path below data/")),
                }
            }
        }
        None => p.push("`stored` is not an array".into()),
    }
    if o["size"].as_u64().is_none() {
        p.push("`size` is not a non-negative integer".into());
    }
    match &o["sha256"] {
        Value::Null => {}
        Value::String(s) if is_sha256_hex(s) => {}
        _ => p.push("`sha256` is not null or 64 lowercase hex digits".into()),
    }
    if !o["sealed"].is_boolean() {
        p.push("`sealed` is not a boolean".into());
    }
    if !o["notes"]
        .as_array()
        .is_some_and(|a| a.iter().all(Value::is_string))
    {
        p.push("`notes` is not a list of strings".into());
    }
    if !o["meta"].is_object() {
        p.push("`meta` is not an object".into());
        return p;
    }
    // Each kind's meta is checked against its typed meta (spec §6), written once beside the
    // kind; kinds this version does not know are kept as they are.
    if let Some(kind) = Kind::parse(kind) {
        p.extend(crate::kinds::format::meta_problems(kind, &o["meta"]));
    }
    if o["sealed"].as_bool() == Some(true)
        && (o["stored"].as_array().is_none_or(Vec::is_empty) || !o["sha256"].is_string())
    {
        p.push("a sealed record needs a stored file and its digest".into());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Inventory {
        let mut inv = Inventory::new(
            "0b8e6f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b".into(),
            OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
            Source {
                host: "https://example.cloud.databricks.com".into(),
                workspace_id: "123".into(),
            },
            json!({"b": 1, "a": 2}),
        );
        inv.records.push(Record {
            kind: Kind::Job,
            source_id: "7".into(),
            name: "nightly".into(),
            stored: vec!["data/jobs/7-nightly.json".into()],
            size: 10,
            sha256: Some("a".repeat(64)),
            sealed: false,
            notes: vec![],
            meta: json!({"job_id": 7}),
        });
        inv.records.push(Record {
            kind: Kind::Directory,
            source_id: "1".into(),
            name: "/Users".into(),
            stored: vec!["data/workspace/Users/".into()],
            size: 0,
            sha256: None,
            sealed: false,
            notes: vec![],
            meta: json!({"object_id": 1}),
        });
        inv.normalize();
        inv
    }

    #[test]
    fn round_trip_and_order() {
        let inv = sample();
        assert_eq!(inv.records[0].kind, Kind::Directory);
        let bytes = inv.to_bytes();
        let back = Inventory::from_bytes(&bytes).unwrap();
        assert_eq!(back, inv);
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(inv.created, "2026-05-28T20:26:40Z");
    }

    #[test]
    fn version_and_format_checks() {
        let mut v: Value = serde_json::from_slice(&sample().to_bytes()).unwrap();
        v["format_version"] = json!("2.0.0");
        let e = Inventory::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsupportedVersion);
        v["format_version"] = json!("1.7.3");
        v["future_field"] = json!({"x": 1});
        Inventory::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap();
        v["format"] = json!("other");
        let e = Inventory::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::FormatName);
    }

    #[test]
    fn unknown_kinds_are_opaque_and_bad_paths_rejected() {
        let mut v: Value = serde_json::from_slice(&sample().to_bytes()).unwrap();
        v["records"][0]["kind"] = json!("dashboard");
        let inv = Inventory::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(inv.opaque.len(), 1);
        v["records"][1]["stored"] = json!(["data/../etc/passwd"]);
        let e = Inventory::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InventorySyntax);
    }

    /// §6.5/§14.3: from format 1.1 a model version carries its artifact summary; a 1.0 bundle
    /// without it still reads.
    #[test]
    fn model_version_meta_is_required_from_1_1() {
        let mut inv = sample();
        inv.records.push(Record {
            kind: Kind::ModelVersion,
            source_id: "m/1".into(),
            name: "m/1".into(),
            stored: vec!["data/models/m/versions/1/version.json".into()],
            size: 2,
            sha256: Some("b".repeat(64)),
            sealed: false,
            notes: vec![],
            meta: json!({
                "model": "m", "version": "1", "artifacts_sha256": "c".repeat(64),
                "artifact_count": 0, "artifact_bytes": 0, "complete": true,
            }),
        });
        inv.normalize();
        let full: Value = serde_json::from_slice(&inv.to_bytes()).unwrap();
        assert_eq!(full["format_version"], FORMAT_VERSION);
        let i = full["records"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["kind"] == "model_version")
            .unwrap();
        let parse = |v: &Value| Inventory::from_bytes(&serde_json::to_vec(v).unwrap());
        parse(&full).unwrap();
        for key in MODEL_VERSION_META_1_1 {
            let mut v = full.clone();
            v["records"][i]["meta"].as_object_mut().unwrap().remove(key);
            let e = parse(&v).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InventorySyntax, "{key}");
            assert!(e.detail().contains(key), "{key}: {e}");
            assert!(!schema_problems(v.as_object().unwrap()).is_empty(), "{key}");
            // Later minors keep the rule; a 1.0 bundle may lack the key.
            v["format_version"] = json!("1.7.0");
            assert!(parse(&v).is_err(), "{key} in 1.7.0");
            v["format_version"] = json!("1.0.0");
            parse(&v).unwrap();
            assert!(schema_problems(v.as_object().unwrap()).is_empty(), "{key}");
        }
        // Present, a key has its §6.5 type in every version (the typed meta is one for all).
        let mut v = full.clone();
        v["records"][i]["meta"]["complete"] = json!("yes");
        assert_eq!(parse(&v).unwrap_err().code(), ErrorCode::InventorySyntax);
        v["format_version"] = json!("1.0.0");
        assert_eq!(parse(&v).unwrap_err().code(), ErrorCode::InventorySyntax);
    }

    /// Spec §14.2 lists the kinds in import order; so does `Kind::ALL`.
    #[test]
    fn spec_kind_list_matches_the_model() {
        let spec = include_str!("../../spec/bundle-format.md");
        let start = spec.find("### 14.2 Kinds").unwrap();
        let end = start + spec[start..].find("— in this order").unwrap();
        let listed: Vec<&str> = spec[start..end].split('`').skip(1).step_by(2).collect();
        let ours: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(listed, ours);
    }

    #[test]
    fn ids() {
        let id = new_bundle_id();
        assert!(is_bundle_id(&id), "{id}");
        assert_ne!(id, new_bundle_id());
    }
}
