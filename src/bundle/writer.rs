//! The streaming bundle writer: turns a list of [`Resource`]s straight into a bundle zip in
//! canonical order (spec §3.6, §9), reading each part's content once, in constant memory; and
//! `write_verified`, the one output path every command's bundle takes (§11). Also the planning
//! steps every writer shares: bag settings, stored-path assignment, records and directory
//! entries.

use super::bagit::{
    is_extra_tag_name, write_manifest, MANIFEST_FILE, OVERVIEW_FILE, TAG_MANIFEST_FILE,
};
use super::container::deflate::{choose_method, CHUNK};
use super::container::ZipWriter;
use super::digest::{copy, pump, PumpError};
use super::error::{BundleError, ErrorCode, IoContext, Problems, Result};
use super::fsutil::{parent_dir, AtomicFile};
use super::inventory::{
    format_created, is_bundle_id, kind_rank, Inventory, Record, RecordView, Sealing, Source,
    INVENTORY_FILE,
};
use super::json::canonicalize;
use super::layout::{assign, Assigner, LogicalPath};
use super::readback;
use super::resource::{Content, Resource};
use super::seal::{Opener, Sealer};
use super::tags::{small_fixed_tags, tag_manifest, write_overview, MeasuredFile};
use super::verify;
use crate::kinds::model::format::StreamedVersions;
use crate::model::Kind;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::Path;
use time::OffsetDateTime;

/// What identifies a bundle, chosen at export: the inputs of §9 besides the resources.
#[derive(Debug, Clone, PartialEq)]
pub struct BagSettings {
    /// The bag folder name (§3.2).
    pub bag_name: String,
    /// The bundle id (a UUID).
    pub bundle_id: String,
    /// When the export started (stored with whole seconds).
    pub created: OffsetDateTime,
    /// The source workspace.
    pub source: Source,
    /// Export options, recorded in the inventory.
    pub options: Value,
}

impl BagSettings {
    /// Settings for a new export now: a fresh bundle id and the default bag name.
    pub fn new(source: Source, options: Value) -> Self {
        let created = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("zero nanoseconds is valid");
        BagSettings {
            bag_name: Self::default_bag_name(&source, created),
            bundle_id: super::inventory::new_bundle_id(),
            created,
            source,
            options,
        }
    }

    /// `dbxport-<workspace id or host>-<YYYYMMDDTHHMMSSZ>`.
    pub fn default_bag_name(source: &Source, created: OffsetDateTime) -> String {
        let raw = if !source.workspace_id.is_empty() {
            source.workspace_id.clone()
        } else {
            source
                .host
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_string()
        };
        let mut slug: String = raw
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        slug = slug.trim_matches('-').chars().take(60).collect();
        if slug.is_empty() {
            slug = "bundle".into();
        }
        let stamp: String = format_created(created)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        format!("dbxport-{slug}-{stamp}")
    }

    pub(crate) fn check(&self) -> Result<()> {
        if !super::bagit::is_bag_name(&self.bag_name) {
            return Err(staging(format!(
                "bag name {:?} is not allowed (letters, digits, `.`, `_`, `-`)",
                self.bag_name
            )));
        }
        if !is_bundle_id(&self.bundle_id) {
            return Err(staging(format!(
                "bundle id {:?} is not a lowercase UUID",
                self.bundle_id
            )));
        }
        if !self.options.is_object() {
            return Err(staging("options must be a JSON object"));
        }
        Ok(())
    }

    pub(crate) fn inventory(&self, sealing: Option<Sealing>, records: Vec<Record>) -> Inventory {
        let mut inv = Inventory::new(
            self.bundle_id.clone(),
            self.created,
            self.source.clone(),
            self.options.clone(),
        );
        inv.sealing = sealing;
        inv.records = records;
        inv.normalize();
        inv
    }
}

fn staging(detail: impl Into<String>) -> BundleError {
    BundleError::new(ErrorCode::Staging, "bundle", detail)
}

/// Assigns stored paths to every part of every resource (§7.2) and checks they are distinct.
pub(crate) fn plan_paths(parts: &[Vec<&LogicalPath>]) -> Result<Vec<Vec<String>>> {
    let assigned = assign(parts.iter().flatten().copied())?;
    {
        let mut seen: HashSet<&str> = HashSet::with_capacity(assigned.len());
        for (p, s) in parts.iter().flatten().zip(&assigned) {
            if !seen.insert(s) {
                return Err(staging(format!(
                    "two parts share the stored path {s} (original {:?})",
                    p.segments.join("/")
                )));
            }
        }
    }
    let mut it = assigned.into_iter();
    Ok(parts
        .iter()
        .map(|v| v.iter().map(|_| it.next().expect("one per part")).collect())
        .collect())
}

/// The directory entries of a bag (§3.6): the bag folder, `data/`, every folder holding a
/// stored path, and stored folders — as names relative to the bag folder (`""` is the bag
/// folder itself).
pub(crate) fn directory_entries<'a>(stored: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    dirs.insert(String::new());
    dirs.insert("data/".to_string());
    for s in stored {
        let body = s.trim_end_matches('/');
        for (i, c) in body.char_indices() {
            if c == '/' && !dirs.contains(&body[..=i]) {
                dirs.insert(body[..=i].to_string());
            }
        }
        if s.ends_with('/') && !dirs.contains(s) {
            dirs.insert(s.to_string());
        }
    }
    dirs
}

/// The size of a part's content.
pub(crate) fn content_len(c: &Content) -> Result<u64> {
    Ok(match c {
        Content::Bytes(b) => b.len() as u64,
        Content::File(p) => std::fs::metadata(p)
            .ctx(format!("file {}", p.display()))?
            .len(),
        Content::Stream { len, .. } | Content::Range { len, .. } => *len,
        Content::Dir => 0,
    })
}

/// Opens content for reading, with its first bytes read ahead to choose the method (§3.3).
pub(crate) fn open_content(c: Content) -> Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut reader: Box<dyn Read + Send> = match c {
        Content::Bytes(b) => Box::new(Cursor::new(b)),
        Content::File(p) => Box::new(std::fs::File::open(&p).ctx(format!("file {}", p.display()))?),
        Content::Range { path, offset, len } => {
            use std::io::{Seek, SeekFrom};
            let subject = || format!("file {}", path.display());
            let mut f = std::fs::File::open(&path).ctx(subject())?;
            f.seek(SeekFrom::Start(offset)).ctx(subject())?;
            Box::new(f.take(len))
        }
        Content::Stream { reader, .. } => reader,
        Content::Dir => Box::new(std::io::empty()),
    };
    let mut sample = Vec::with_capacity(CHUNK);
    (&mut reader)
        .take(CHUNK as u64)
        .read_to_end(&mut sample)
        .ctx("resource content")?;
    Ok((sample, reader))
}

/// Streams one file entry into `zip`: method from the sample. Returns the SHA-256 hex of the
/// data: `known` when the caller already has it (a staged file, a file a bag's manifest lists),
/// which is then not computed here — the read-back of [`write_verified`] hashes the bytes as
/// they reach the disk and refuses them if they differ (E206) — else computed on the way.
pub(crate) fn write_file_entry<W: Write>(
    zip: &mut ZipWriter<W>,
    name: &str,
    size: u64,
    sample: Vec<u8>,
    rest: Box<dyn Read + Send>,
    known: Option<&str>,
) -> Result<String> {
    let method = choose_method(&sample);
    let subject = format!("entry {name}");
    zip.start_file(name, size, method).ctx(&subject)?;
    let mut src = Cursor::new(sample).chain(rest);
    let mut sink = |b: &[u8]| zip.write_data(b);
    let copied = match known {
        Some(hex) => copy(&mut src, &mut sink).map(|n| (n, hex.to_string())),
        None => pump(&mut src, size, &mut sink).map(|p| (p.bytes, p.hex())),
    };
    let (bytes, hex) = copied.map_err(|e| match e {
        PumpError::Read(e) => BundleError::io(format!("{subject} (reading its content)"), &e),
        PumpError::Write(e) => BundleError::io(format!("{subject} (writing)"), &e),
    })?;
    if bytes != size {
        return Err(staging(format!(
            "{name}: content has {bytes} bytes, {size} were declared (did it change while being read?)"
        )));
    }
    zip.finish_file().ctx(&subject)?;
    Ok(hex)
}

/// Writes a tag file the writer renders instead of holding (`INVENTORY.md`, `dbxport.json`,
/// `manifest-sha256.txt`) into the entry `name`: `file` is what [`MeasuredFile::of`] found
/// rendering it once, and `render` must write the same bytes again.
fn write_rendered_entry<W: Write>(
    zip: &mut ZipWriter<W>,
    name: &str,
    file: &MeasuredFile,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    /// The open entry's data, as a `Write`.
    struct EntryData<'z, W: Write>(&'z mut ZipWriter<W>);
    impl<W: Write> Write for EntryData<'_, W> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.write_data(b)?;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let subject = format!("entry {name}");
    zip.start_file(name, file.size, choose_method(&file.sample))
        .ctx(&subject)?;
    {
        let mut w = BufWriter::with_capacity(CHUNK, EntryData(zip));
        render(&mut w).ctx(&subject)?;
        w.flush().ctx(&subject)?;
    }
    // The zip writer refuses an entry whose length differs from the declared one; the digest
    // of what was written is checked by the read-back against the tag manifest.
    zip.finish_file().ctx(&subject)?;
    Ok(())
}

/// What a writer produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WriteSummary {
    /// The bag folder name.
    pub bag: String,
    /// The bundle id.
    pub bundle_id: String,
    /// Zip entries written.
    pub entries: u64,
    /// Records in the inventory.
    pub records: u64,
    /// Payload files.
    pub payload_files: u64,
    /// Payload bytes (uncompressed).
    pub payload_bytes: u64,
    /// Bytes of the zip.
    pub bytes: u64,
}

/// Where a writer gets its resources, and finds again what it does not keep of them. The
/// writer plans the whole bundle before its first entry (stored names, §7.2, depend on every
/// path; `bag-info.txt` on every size), then writes each part's data and renders the inventory
/// record by record in its order (§9); between, it keeps per record only names, paths, sizes
/// and digests ([`Plan`]), and asks the source again for the rest: a staged export's source
/// reads it back from the staging folder, so that a large export does not hold every record's
/// `meta`.
pub(crate) trait Resources {
    /// The next resource (in any order), with the SHA-256 (hex) of each part's data when it is
    /// known beforehand (a staged file), else `None` for that part.
    fn next(&mut self) -> Option<Result<(Resource, Vec<Option<String>>)>>;
    /// Takes back the `i`-th resource [`Resources::next`] gave once the writer has noted what it
    /// keeps of it: the source keeps what [`Resources::content`] and [`Resources::meta`] need.
    fn keep(&mut self, i: usize, r: Resource);
    /// The content of part `part` of the `i`-th resource (a file, not a folder), asked for once,
    /// when its entry is written.
    fn content(&mut self, i: usize, part: usize) -> Result<Content>;
    /// The `i`-th resource's `meta`, canonical (§9). Asked for twice: the inventory is rendered
    /// once to measure it and once into the bundle.
    fn meta(&mut self, i: usize) -> Result<Cow<'_, Value>>;
}

/// Resources held in memory: a [`write_bundle`] caller's list, or an export's streamed files.
pub(crate) struct Held {
    incoming: std::vec::IntoIter<Resource>,
    meta: Vec<Value>,
    contents: Vec<Vec<Option<Content>>>,
}

impl Held {
    /// The resources of `resources`, in that order.
    pub(crate) fn new(resources: Vec<Resource>) -> Self {
        Held {
            incoming: resources.into_iter(),
            meta: Vec::new(),
            contents: Vec::new(),
        }
    }
}

impl Resources for Held {
    fn next(&mut self) -> Option<Result<(Resource, Vec<Option<String>>)>> {
        self.incoming.next().map(|r| {
            let none = vec![None; r.parts.len()];
            Ok((r, none))
        })
    }

    fn keep(&mut self, i: usize, mut r: Resource) {
        debug_assert_eq!(i, self.meta.len(), "resources are kept in order");
        canonicalize(&mut r.meta);
        self.meta.push(std::mem::take(&mut r.meta));
        self.contents
            .push(r.parts.into_iter().map(|p| Some(p.content)).collect());
    }

    fn content(&mut self, i: usize, part: usize) -> Result<Content> {
        self.contents
            .get_mut(i)
            .and_then(|c| c.get_mut(part))
            .and_then(Option::take)
            .ok_or_else(|| staging(format!("part {part} of resource {i} was asked for twice")))
    }

    fn meta(&mut self, i: usize) -> Result<Cow<'_, Value>> {
        Ok(Cow::Borrowed(&self.meta[i]))
    }
}

/// What the inventory's `sealing` (§8.3) says.
pub(crate) enum SealingSummary {
    /// This, whatever the parts.
    Given(Option<Sealing>),
    /// This when a part is sealed, else `null` (a staged export made with recipients that
    /// sealed nothing records no sealing).
    IfSealed(Option<Sealing>),
}

/// A range of [`Plan::text`].
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// One record as the writer keeps it: a few numbers; its strings are in [`Plan::text`].
struct Row {
    name: Span,
    source_id: Span,
    /// Its first part in [`Plan::parts`]; its parts run to the next row's first.
    first_part: u32,
    kind: Kind,
    /// The primary part is sealed.
    sealed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartState {
    /// A folder: no data, no digest.
    Dir,
    /// A file whose digest is taken as it is written.
    Pending,
    /// A file whose digest was known beforehand (it is listed under it, §11).
    Known,
    /// A file written, its digest taken.
    Written,
}

/// One stored file or folder.
struct PartRow {
    stored: Span,
    size: u64,
    sha256: [u8; 32],
    state: PartState,
}

/// What a writer keeps of every resource between planning the bundle and rendering its
/// inventory: per record its kind, name, source id, notes and each part's stored path, size
/// and digest, the strings end to end in one buffer — a few hundred bytes, where a record
/// with its `meta` as a JSON tree was a few KB.
#[derive(Default)]
struct Plan {
    text: String,
    rows: Vec<Row>,
    parts: Vec<PartRow>,
    /// Notes of the records that have any, by row number, in row order.
    notes: Vec<(u32, Span)>,
    /// Model versions waiting for their artifacts' digests.
    streamed: StreamedVersions,
    /// Some part is sealed.
    any_sealed: bool,
}

impl Plan {
    /// Takes every resource from `src` once, noting what the writer keeps of it, and assigns
    /// the stored paths (§7.2).
    fn read(src: &mut dyn Resources) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut assigner = Assigner::default();
        let mut i = 0usize;
        while let Some(next) = src.next() {
            let (r, expected) = next?;
            let first_part = u32::try_from(plan.parts.len()).map_err(|_| too_many())?;
            for (pi, p) in r.parts.iter().enumerate() {
                assigner.add(&p.path)?;
                plan.any_sealed |= p.sealed;
                let size = content_len(&p.content)?;
                let (sha256, state) =
                    match (&p.content, expected.get(pi).and_then(Option::as_deref)) {
                        (Content::Dir, _) => ([0; 32], PartState::Dir),
                        (_, None) => ([0; 32], PartState::Pending),
                        (_, Some(hex)) => {
                            let mut out = [0u8; 32];
                            hex::decode_to_slice(hex, &mut out).map_err(|_| {
                                staging(format!(
                                    "{} {}: the digest given for part {pi} is not SHA-256 hex",
                                    r.kind, r.name
                                ))
                            })?;
                            (out, PartState::Known)
                        }
                    };
                plan.parts.push(PartRow {
                    stored: Span::default(),
                    size,
                    sha256,
                    state,
                });
            }
            let primary_file = r
                .parts
                .first()
                .is_some_and(|p| !matches!(p.content, Content::Dir));
            plan.streamed.see(i, r.kind, &r.meta, primary_file);
            let row = Row {
                name: plan.push(&r.name)?,
                source_id: plan.push(&r.source_id)?,
                first_part,
                kind: r.kind,
                sealed: r.is_sealed(),
            };
            plan.rows.push(row);
            for n in &r.notes {
                let span = plan.push(n)?;
                plan.notes.push((i as u32, span));
            }
            src.keep(i, r);
            i += 1;
        }
        u32::try_from(plan.rows.len()).map_err(|_| too_many())?;
        plan.streamed.shrink();
        let mut k = 0usize;
        let mut failed = None;
        let Plan { text, parts, .. } = &mut plan;
        assigner.finish(|s| match push(text, s) {
            Ok(span) => {
                parts[k].stored = span;
                k += 1;
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        plan.text.shrink_to_fit();
        plan.parts.shrink_to_fit();
        plan.rows.shrink_to_fit();
        plan.notes.shrink_to_fit();
        Ok(plan)
    }

    fn push(&mut self, s: &str) -> Result<Span> {
        push(&mut self.text, s)
    }

    fn str(&self, s: Span) -> &str {
        &self.text[s.start as usize..s.start as usize + s.len as usize]
    }

    /// The parts of row `r`, as indexes into [`Plan::parts`].
    fn part_range(&self, r: usize) -> std::ops::Range<usize> {
        let start = self.rows[r].first_part as usize;
        let end = self
            .rows
            .get(r + 1)
            .map_or(self.parts.len(), |n| n.first_part as usize);
        start..end
    }

    /// The row a part belongs to.
    fn row_of(&self, part: usize) -> usize {
        self.rows.partition_point(|r| r.first_part as usize <= part) - 1
    }

    fn stored(&self, r: usize) -> impl Iterator<Item = &str> + '_ {
        self.part_range(r).map(|p| self.str(self.parts[p].stored))
    }

    fn notes(&self, r: usize) -> impl Iterator<Item = &str> + '_ {
        let start = self.notes.partition_point(|(row, _)| (*row as usize) < r);
        self.notes[start..]
            .iter()
            .take_while(move |(row, _)| *row as usize == r)
            .map(|(_, s)| self.str(*s))
    }

    /// The rows in inventory order (§9): kind, name, source id, stored paths.
    fn order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            let (ra, rb) = (&self.rows[a], &self.rows[b]);
            kind_rank(ra.kind)
                .cmp(&kind_rank(rb.kind))
                .then_with(|| self.str(ra.name).cmp(self.str(rb.name)))
                .then_with(|| self.str(ra.source_id).cmp(self.str(rb.source_id)))
                .then_with(|| self.stored(a).cmp(self.stored(b)))
        });
        order
    }

    /// Every part, folders too, sorted by stored path; refuses two parts with one path.
    fn by_path(&self) -> Result<Vec<u32>> {
        let mut by: Vec<u32> = (0..self.parts.len() as u32).collect();
        by.sort_unstable_by(|&a, &b| {
            self.str(self.parts[a as usize].stored)
                .cmp(self.str(self.parts[b as usize].stored))
        });
        for w in by.windows(2) {
            let (a, b) = (
                self.str(self.parts[w[0] as usize].stored),
                self.str(self.parts[w[1] as usize].stored),
            );
            if a == b {
                let r = &self.rows[self.row_of(w[1] as usize)];
                return Err(staging(format!(
                    "two parts share the stored path {a} (one of {} {})",
                    r.kind,
                    self.str(r.name)
                )));
            }
        }
        Ok(by)
    }

    /// The SHA-256 (hex) of a written or known file part.
    fn hex(&self, part: usize) -> Option<String> {
        let p = &self.parts[part];
        matches!(p.state, PartState::Known | PartState::Written).then(|| hex::encode(p.sha256))
    }

    /// Row `r` as `INVENTORY.md` shows it, with the bytes of its stored files.
    fn view(&self, r: usize) -> (RecordView<'_>, u64) {
        let row = &self.rows[r];
        let view = RecordView {
            kind: row.kind,
            name: self.str(row.name),
            stored: self.stored(r).collect(),
            sealed: row.sealed,
            notes: self.notes(r).collect(),
        };
        (view, self.part_range(r).map(|p| self.parts[p].size).sum())
    }

    /// Row `r`'s record, with `meta` as given.
    fn record(&self, r: usize, meta: Value) -> Record {
        let row = &self.rows[r];
        let parts = self.part_range(r);
        let primary = parts.clone().next();
        Record {
            kind: row.kind,
            source_id: self.str(row.source_id).to_string(),
            name: self.str(row.name).to_string(),
            stored: self.stored(r).map(str::to_string).collect(),
            size: primary.map_or(0, |p| self.parts[p].size),
            sha256: primary.and_then(|p| self.hex(p)),
            sealed: row.sealed,
            notes: self.notes(r).map(str::to_string).collect(),
            meta,
        }
    }
}

fn push(text: &mut String, s: &str) -> Result<Span> {
    let start = u32::try_from(text.len()).map_err(|_| too_many())?;
    let len = u32::try_from(s.len()).map_err(|_| too_many())?;
    start.checked_add(len).ok_or_else(too_many)?;
    text.push_str(s);
    Ok(Span { start, len })
}

fn too_many() -> BundleError {
    staging("the bundle's names and paths pass 4 GiB, more than one bundle holds")
}

/// One entry of the bag other than a payload file: a folder or a tag file.
enum Slot {
    Dir,
    Tag(String),
}

/// Writes a bundle of `resources` to `out` in one streaming pass (§3.6 order). `sealing` must
/// describe the recipients when any part is sealed; `extra_tags` are added as tag files (§4.5).
pub fn write_bundle<W: Write>(
    out: W,
    settings: &BagSettings,
    sealing: Option<Sealing>,
    resources: Vec<Resource>,
    extra_tags: BTreeMap<String, Vec<u8>>,
) -> Result<(W, WriteSummary)> {
    let mut zip = ZipWriter::new(out);
    let mut summary = write_entries(
        &mut zip,
        settings,
        SealingSummary::Given(sealing),
        &mut Held::new(resources),
        extra_tags,
    )?;
    let (out, bytes) = zip.finish_counted().ctx("bundle output")?;
    summary.bytes = bytes;
    Ok((out, summary))
}

/// Writes every entry of the bundle into `zip` (§3.6 order), leaving the central directory to
/// the caller. A part whose digest `src` knows is listed under it without being hashed here.
/// What it keeps of the resources ([`Plan`]) is dropped when it returns, before the caller's
/// final verification reads the bundle.
fn write_entries<W: Write>(
    zip: &mut ZipWriter<W>,
    settings: &BagSettings,
    sealing: SealingSummary,
    src: &mut dyn Resources,
    extra_tags: BTreeMap<String, Vec<u8>>,
) -> Result<WriteSummary> {
    settings.check()?;
    for name in extra_tags.keys() {
        if !is_extra_tag_name(name) {
            return Err(staging(format!("tag file name {name:?} is not allowed")));
        }
    }
    let mut plan = Plan::read(src)?;
    let sealing = match sealing {
        SealingSummary::Given(s) => s,
        SealingSummary::IfSealed(s) => s.filter(|_| plan.any_sealed),
    };
    if sealing.is_none() && plan.any_sealed {
        return Err(staging("sealed parts need the recipients' sealing summary"));
    }
    let order = plan.order();
    let by_path = plan.by_path()?;
    let files: Vec<u32> = by_path
        .iter()
        .copied()
        .filter(|&p| plan.parts[p as usize].state != PartState::Dir)
        .collect();
    let mut others: BTreeMap<String, Slot> = directory_entries(
        by_path
            .iter()
            .map(|&p| plan.str(plan.parts[p as usize].stored)),
    )
    .into_iter()
    .map(|d| (d, Slot::Dir))
    .collect();
    drop(by_path);
    let mut streamed = Some(std::mem::take(&mut plan.streamed));
    let payload_bytes: u64 = files.iter().map(|&p| plan.parts[p as usize].size).sum();
    let bag = settings.bag_name.clone();
    // The inventory's top-level fields; its records are rendered from the plan.
    let head = settings.inventory(sealing, Vec::new());
    let fixed = small_fixed_tags(&head, payload_bytes, files.len() as u64, &extra_tags);
    drop(extra_tags);
    let overview = MeasuredFile::of(CHUNK, |w| {
        write_overview(w, &head, || order.iter().map(|&r| plan.view(r as usize)))
    })
    .ctx(OVERVIEW_FILE)?;
    for name in fixed.keys().map(String::as_str).chain([
        OVERVIEW_FILE,
        INVENTORY_FILE,
        MANIFEST_FILE,
        TAG_MANIFEST_FILE,
    ]) {
        others.insert(name.to_string(), Slot::Tag(name.to_string()));
    }
    let entries = (others.len() + files.len()) as u64;

    // Tag files written after the payload, once its digests are known: the inventory's and
    // the manifest's measures, and the tag manifest.
    struct Post {
        inventory: MeasuredFile,
        manifest: MeasuredFile,
        tag_manifest: Option<Vec<u8>>,
        filled: BTreeMap<(String, String), String>,
    }
    let mut post: Option<Post> = None;
    let mut written = 0usize;
    let mut others = others.into_iter().peekable();
    loop {
        // The next entry in name order (§3.6): a folder or tag file, or a payload file.
        let payload_first = match (others.peek(), files.get(written)) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((rel, _)), Some(&p)) => plan.str(plan.parts[p as usize].stored) < rel.as_str(),
        };
        if payload_first {
            let part = files[written] as usize;
            let stored = plan.str(plan.parts[part].stored);
            let name = format!("{bag}/{stored}");
            let row = plan.row_of(part);
            let content = src.content(row, part - plan.rows[row].first_part as usize)?;
            let (sample, rest) = open_content(content)?;
            let known = plan.hex(part);
            let hex = write_file_entry(
                zip,
                &name,
                plan.parts[part].size,
                sample,
                rest,
                known.as_deref(),
            )?;
            let p = &mut plan.parts[part];
            if p.state == PartState::Pending {
                hex::decode_to_slice(&hex, &mut p.sha256)
                    .map_err(|_| staging(format!("{name}: digest {hex:?} is not hex")))?;
                p.state = PartState::Written;
            }
            written += 1;
            continue;
        }
        let (rel, slot) = others.next().expect("peeked");
        let name = format!("{bag}/{rel}");
        let tag = match slot {
            Slot::Dir => {
                zip.add_dir(&name).ctx(format!("entry {name}"))?;
                continue;
            }
            Slot::Tag(tag) => tag,
        };
        if let Some(b) = fixed.get(&tag) {
            zip.add_bytes(&name, b).ctx(format!("entry {name}"))?;
            continue;
        }
        if tag == OVERVIEW_FILE {
            write_rendered_entry(zip, &name, &overview, |w| {
                write_overview(w, &head, || order.iter().map(|&r| plan.view(r as usize)))
            })?;
            continue;
        }
        if written != files.len() {
            return Err(staging(format!(
                "tag file {tag} sorts before the payload it describes"
            )));
        }
        if post.is_none() {
            // Versions whose artifacts were streamed learn their manifest digest only now
            // (§11, streamed files).
            let streamed = streamed.take().unwrap_or_default();
            let filled = if streamed.is_empty() {
                BTreeMap::new()
            } else {
                let mut position = vec![0u32; plan.rows.len()];
                for (i, &r) in order.iter().enumerate() {
                    position[r as usize] = i as u32;
                }
                let primary = |row: usize| {
                    let p = plan.part_range(row).next();
                    p.and_then(|p| plan.hex(p)).unwrap_or_default()
                };
                streamed.digests(primary, |row| position[row] as usize)
            };
            let inventory = MeasuredFile::of(CHUNK, |w| {
                render_inventory(w, &head, &plan, &order, &mut *src, &filled)
            })
            .ctx(INVENTORY_FILE)?;
            let manifest = MeasuredFile::of(CHUNK, |w| render_manifest(w, &plan, &files))
                .ctx(MANIFEST_FILE)?;
            post = Some(Post {
                tag_manifest: Some(tag_manifest(
                    &fixed,
                    &[
                        (OVERVIEW_FILE, &overview.sha256),
                        (INVENTORY_FILE, &inventory.sha256),
                        (MANIFEST_FILE, &manifest.sha256),
                    ],
                )),
                inventory,
                manifest,
                filled,
            });
        }
        let post = post.as_mut().expect("filled above");
        match tag.as_str() {
            INVENTORY_FILE => write_rendered_entry(zip, &name, &post.inventory, |w| {
                render_inventory(w, &head, &plan, &order, &mut *src, &post.filled)
            })?,
            MANIFEST_FILE => write_rendered_entry(zip, &name, &post.manifest, |w| {
                render_manifest(w, &plan, &files)
            })?,
            _ => {
                let bytes = post
                    .tag_manifest
                    .take()
                    .ok_or_else(|| staging(format!("tag file {tag} is listed twice")))?;
                zip.add_bytes(&name, &bytes).ctx(format!("entry {name}"))?;
            }
        }
    }
    Ok(WriteSummary {
        bag,
        bundle_id: settings.bundle_id.clone(),
        entries,
        records: plan.rows.len() as u64,
        payload_files: written as u64,
        payload_bytes,
        bytes: zip.position(),
    })
}

/// Renders `dbxport.json` (§5): `head`'s top-level fields, then each record in `order`, its
/// `meta` asked of `src` as it comes (and a streamed version's artifact digest filled in).
fn render_inventory(
    w: &mut dyn Write,
    head: &Inventory,
    plan: &Plan,
    order: &[u32],
    src: &mut dyn Resources,
    filled: &BTreeMap<(String, String), String>,
) -> std::io::Result<()> {
    let records = order.iter().map(|&r| {
        let r = r as usize;
        let mut meta = src.meta(r)?.into_owned();
        StreamedVersions::fill(plan.rows[r].kind, &mut meta, filled);
        Ok(plan.record(r, meta))
    });
    head.write_records_to(w, order.len(), records)
}

/// Renders `manifest-sha256.txt` (§4.3) for the payload files `files`, sorted by stored path.
fn render_manifest(w: &mut dyn Write, plan: &Plan, files: &[u32]) -> std::io::Result<()> {
    let mut hex = [0u8; 64];
    for &p in files {
        let part = &plan.parts[p as usize];
        hex::encode_to_slice(part.sha256, &mut hex).expect("64 digits for 32 bytes");
        let hex = std::str::from_utf8(&hex).expect("hex is ASCII");
        write_manifest(&mut *w, [(plan.str(part.stored), hex)])?;
    }
    Ok(())
}

/// Writes a bundle file the way every command does (§11): [`write_bundle`] streamed to a
/// temporary file, verified read back from disk, then renamed to `path` (replacing a file only
/// when `replace`). With `envelope` the zip is sealed as it is written (§8.4).
pub fn write_bundle_file(
    path: &Path,
    settings: &BagSettings,
    sealing: Option<Sealing>,
    resources: Vec<Resource>,
    extra_tags: BTreeMap<String, Vec<u8>>,
    envelope: Option<&Sealer>,
    replace: bool,
) -> std::result::Result<WriteSummary, Problems> {
    write_bundle_file_from(
        path,
        settings,
        SealingSummary::Given(sealing),
        Held::new(resources),
        extra_tags,
        envelope,
        replace,
    )
}

/// [`write_bundle_file`] with the resources from `src`, which is dropped (with the writer's
/// plan) once the bundle is written, before it is verified.
pub(crate) fn write_bundle_file_from(
    path: &Path,
    settings: &BagSettings,
    sealing: SealingSummary,
    src: impl Resources,
    extra_tags: BTreeMap<String, Vec<u8>>,
    envelope: Option<&Sealer>,
    replace: bool,
) -> std::result::Result<WriteSummary, Problems> {
    let (mut summary, bytes) = write_verified(path, envelope, replace, move |zip| {
        let mut src = src;
        Ok(write_entries(zip, settings, sealing, &mut src, extra_tags)?)
    })?;
    summary.bytes = bytes;
    Ok(summary)
}

/// The one output path of every bundle a command writes (§11): `write` fills a zip writer
/// streaming into a temporary file beside `out` (through an age envelope when `envelope` is
/// given); the file is verified by §10.1 steps 2–6 read back from disk, synced, and only then
/// renamed to `out` (replacing a file only when `replace`). Returns what `write` returned and
/// the file's size.
///
/// Without an envelope, each entry is read back from the file by a second thread while the
/// next is written ([`super::readback`]), and the final verification does not read again the
/// data that thread already checked: every byte is hashed once, from the disk.
///
/// With an envelope the plaintext zip never touches the disk: the same stream is also sealed
/// to a one-time key held in memory, and that scratch copy is opened and verified, then deleted.
pub(crate) fn write_verified<T>(
    out: &Path,
    envelope: Option<&Sealer>,
    replace: bool,
    write: impl FnOnce(&mut ZipWriter<&mut dyn Write>) -> std::result::Result<T, Problems>,
) -> std::result::Result<(T, u64), Problems> {
    if !replace && out.exists() {
        return Err(BundleError::new(
            ErrorCode::TargetNotEmpty,
            format!("file {}", out.display()),
            "already exists",
        )
        .into());
    }
    let mut out_file = AtomicFile::create(out)?;
    // The zip writer names the entry it was writing when a write fails; a full disk is about
    // the output file, whichever entry was under way.
    let about_out = |p: Problems| match p.0.iter().find(|e| e.is_no_room()) {
        Some(e) => Problems::from(BundleError::new(
            ErrorCode::Io,
            format!("file {}", out.display()),
            e.detail(),
        )),
        None => p,
    };
    let value = match envelope {
        None => {
            let temp = out_file.temp_path().to_path_buf();
            let subject = format!("file {}", out.display());
            let (follower, tracked) =
                readback::Follower::start(&temp, &*out_file.file()).ctx(&subject)?;
            let value = {
                let mut buf = BufWriter::with_capacity(super::digest::BUF, tracked);
                let mut zip = ZipWriter::new(&mut buf as &mut dyn Write);
                zip.set_observer(follower.observer());
                let value = write(&mut zip).map_err(about_out)?;
                zip.finish().ctx(&subject)?;
                buf.flush().ctx(&subject)?;
                value
            };
            let checked = follower
                .finish()
                .ctx(format!("file {} (reading it back)", temp.display()))?;
            // What the command held to write (staged records, the plan) is freed; the
            // verification's own memory should not come on top of it.
            crate::memory::give_back_freed();
            let report = verify::verify_written(&temp, &checked)?;
            if !report.ok {
                return Err(Problems(report.problems));
            }
            value
        }
        Some(sealer) => {
            let scratch_key = age::x25519::Identity::generate();
            let scratch_sealer = Sealer::to_recipients(&[scratch_key.to_public().to_string()])
                .map_err(|e| BundleError::new(ErrorCode::Io, "scratch key", e.to_string()))?;
            let mut scratch = tempfile::Builder::new()
                .prefix(".dbxport-pack-check.")
                .tempfile_in(parent_dir(out))
                .ctx(format!("folder {}", parent_dir(out).display()))?;
            let value = {
                let seal_err = |e: super::seal::KeyError| {
                    BundleError::new(ErrorCode::Io, "envelope", e.to_string())
                };
                let a = sealer
                    .wrap(BufWriter::with_capacity(
                        super::digest::BUF,
                        out_file.file(),
                    ))
                    .map_err(seal_err)?;
                let b = scratch_sealer
                    .wrap(BufWriter::with_capacity(
                        super::digest::BUF,
                        scratch.as_file_mut(),
                    ))
                    .map_err(seal_err)?;
                let mut tee = Tee { a, b };
                let value = {
                    let mut zip = ZipWriter::new(&mut tee as &mut dyn Write);
                    let value = write(&mut zip).map_err(about_out)?;
                    zip.finish().ctx(format!("file {}", out.display()))?;
                    value
                };
                let Tee { a, b } = tee;
                a.finish()
                    .and_then(|mut w| w.flush())
                    .ctx(format!("file {}", out.display()))?;
                b.finish().and_then(|mut w| w.flush()).ctx("scratch copy")?;
                value
            };
            crate::memory::give_back_freed();
            let mut opener = Opener::new();
            opener.add_x25519(scratch_key);
            let f = std::fs::File::open(scratch.path()).ctx("scratch copy")?;
            let reader = opener.decrypt(f, "scratch copy")?;
            let report =
                verify::verify_source(Box::new(reader), out.display().to_string(), true, None);
            if !report.ok {
                return Err(Problems(report.problems));
            }
            value
        }
    };
    let bytes = out_file
        .file()
        .metadata()
        .ctx(format!("file {}", out.display()))?
        .len();
    out_file.commit(replace)?;
    Ok((value, bytes))
}

/// Writes every byte to both sinks: the envelope and its scratch copy.
struct Tee<A: Write, B: Write> {
    a: A,
    b: B,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::verify::verify_source;
    use crate::model::workspace::{Format, Language, ObjectInfo, ObjectType};
    use serde_json::json;

    fn settings() -> BagSettings {
        BagSettings {
            bag_name: "dbxport-test".into(),
            bundle_id: "0b8e6f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b".into(),
            created: OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
            source: Source {
                host: "https://example.invalid".into(),
                workspace_id: "42".into(),
            },
            options: json!({}),
        }
    }

    fn nb(path: &str, id: i64) -> Resource {
        let info = ObjectInfo {
            object_type: ObjectType::Notebook,
            path: path.into(),
            object_id: id,
            language: Some(Language::Python),
            created_at: None,
            modified_at: None,
            size: None,
            resource_id: None,
            directory_info: None,
        };
        Resource::notebook(
            &info,
            vec![(
                Format::Source,
                Content::Bytes(format!("# Databricks notebook source\nprint({id})\n").into_bytes()),
            )],
        )
    }

    fn write(resources: Vec<Resource>) -> Vec<u8> {
        write_bundle(Vec::new(), &settings(), None, resources, BTreeMap::new())
            .unwrap()
            .0
    }

    #[test]
    fn written_bundles_verify_and_are_deterministic() {
        let make = || {
            vec![
                nb("/Users/a/Report", 1),
                nb("/Users/a/report", 2),
                Resource::directory("/Users/a/empty", 3),
                Resource::directory("/Users/a", 4),
            ]
        };
        let a = write(make());
        let mut rev = make();
        rev.reverse();
        let b = write(rev);
        assert_eq!(a, b, "resource order must not matter");
        let report = verify_source(Box::new(std::io::Cursor::new(a)), "mem".into(), false, None);
        assert!(report.ok, "{:#?}", report.problems);
        assert_eq!(report.payload_files, 2);
    }

    #[test]
    fn duplicate_stored_paths_are_refused() {
        let err = write_bundle(
            Vec::new(),
            &settings(),
            None,
            vec![nb("/x", 1), nb("/x", 2)],
            BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Staging);
    }
}
