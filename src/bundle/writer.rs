//! The streaming bundle writer: turns a list of [`Resource`]s straight into a bundle zip in
//! canonical order (spec §3.6, §9), reading each part's content once, in constant memory; and
//! `write_verified`, the one output path every command's bundle takes (§11). Also the planning
//! steps every writer shares: bag settings, stored-path assignment, records and directory
//! entries.

use super::bagit::is_extra_tag_name;
use super::container::deflate::{choose_method, CHUNK};
use super::container::ZipWriter;
use super::digest::{copy, pump, PumpError};
use super::error::{BundleError, ErrorCode, IoContext, Problems, Result};
use super::fsutil::{parent_dir, AtomicFile};
use super::inventory::{format_created, is_bundle_id, Inventory, Record, Sealing, Source};
use super::layout::{assign, LogicalPath};
use super::readback;
use super::resource::{Content, Resource};
use super::seal::{Opener, Sealer};
use super::tags::{digest_tags_beside, fixed_tags, InventoryFile};
use super::verify;
use serde_json::Value;
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
/// stored path, and stored folders — as full entry names.
pub(crate) fn directory_entries<'a>(
    bag: &str,
    stored: impl Iterator<Item = &'a str>,
) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    dirs.insert(format!("{bag}/"));
    dirs.insert(format!("{bag}/data/"));
    for s in stored {
        let body = s.trim_end_matches('/');
        for (i, c) in body.char_indices() {
            if c == '/' {
                dirs.insert(format!("{bag}/{}", &body[..=i]));
            }
        }
        if s.ends_with('/') {
            dirs.insert(format!("{bag}/{s}"));
        }
    }
    dirs
}

/// A record for a resource, before digests are known; takes the resource's names, notes and meta.
pub(crate) fn record_for(r: &mut Resource, stored: Vec<String>, size: u64) -> Record {
    // Moved, not copied: the resource is dropped next, and a copy of every record's meta is
    // what a large export's last step held most of.
    Record {
        kind: r.kind,
        sealed: r.is_sealed(),
        source_id: std::mem::take(&mut r.source_id),
        name: std::mem::take(&mut r.name),
        stored,
        size,
        sha256: None,
        notes: std::mem::take(&mut r.notes),
        meta: std::mem::take(&mut r.meta),
    }
}

/// The size of a part's content.
pub(crate) fn content_len(c: &Content) -> Result<u64> {
    Ok(match c {
        Content::Bytes(b) => b.len() as u64,
        Content::File(p) => std::fs::metadata(p)
            .ctx(format!("file {}", p.display()))?
            .len(),
        Content::Stream { len, .. } => *len,
        Content::Dir => 0,
    })
}

/// Opens content for reading, with its first bytes read ahead to choose the method (§3.3).
pub(crate) fn open_content(c: Content) -> Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut reader: Box<dyn Read + Send> = match c {
        Content::Bytes(b) => Box::new(Cursor::new(b)),
        Content::File(p) => Box::new(std::fs::File::open(&p).ctx(format!("file {}", p.display()))?),
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

/// Writes the inventory entry `name`, rendering `inv` into the zip as it goes; `file` is what
/// [`InventoryFile::measure`] found, and the bytes written must agree with it.
fn write_inventory_entry<W: Write>(
    zip: &mut ZipWriter<W>,
    name: &str,
    inv: &Inventory,
    file: &InventoryFile,
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
        inv.write_to(&mut w).ctx(&subject)?;
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

enum Slot {
    Dir,
    Tag(String),
    Payload(usize, usize),
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
    write_bundle_expecting(out, settings, sealing, resources, extra_tags, &[])
}

/// [`write_bundle`], checking each part's data against a digest known beforehand —
/// `expected[resource][part]`, SHA-256 hex, computed when it was staged — so bytes that changed
/// on disk since are refused (E206) instead of being listed under their new digest.
pub(crate) fn write_bundle_expecting<W: Write>(
    out: W,
    settings: &BagSettings,
    sealing: Option<Sealing>,
    resources: Vec<Resource>,
    extra_tags: BTreeMap<String, Vec<u8>>,
    expected: &[Vec<Option<String>>],
) -> Result<(W, WriteSummary)> {
    let mut zip = ZipWriter::new(out);
    let mut summary = write_entries(&mut zip, settings, sealing, resources, extra_tags, expected)?;
    let (out, bytes) = zip.finish_counted().ctx("bundle output")?;
    summary.bytes = bytes;
    Ok((out, summary))
}

/// Writes every entry of the bundle into `zip` (§3.6 order), leaving the central directory to
/// the caller. A part with an `expected` digest is listed under it without being hashed here.
fn write_entries<W: Write>(
    zip: &mut ZipWriter<W>,
    settings: &BagSettings,
    sealing: Option<Sealing>,
    resources: Vec<Resource>,
    extra_tags: BTreeMap<String, Vec<u8>>,
    expected: &[Vec<Option<String>>],
) -> Result<WriteSummary> {
    settings.check()?;
    for name in extra_tags.keys() {
        if !is_extra_tag_name(name) {
            return Err(staging(format!("tag file name {name:?} is not allowed")));
        }
    }
    if sealing.is_none() && resources.iter().flat_map(|r| &r.parts).any(|p| p.sealed) {
        return Err(staging("sealed parts need the recipients' sealing summary"));
    }
    // Borrowed: a copy of every path was memory per record for the length of this step.
    let paths: Vec<Vec<&LogicalPath>> = resources
        .iter()
        .map(|r| r.parts.iter().map(|p| &p.path).collect())
        .collect();
    let stored = plan_paths(&paths)?;
    drop(paths);
    let mut sizes_of: Vec<Vec<u64>> = Vec::with_capacity(resources.len());
    let mut contents: Vec<Vec<Option<Content>>> = Vec::with_capacity(resources.len());
    let mut records = Vec::with_capacity(resources.len());
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for (ri, mut r) in resources.into_iter().enumerate() {
        let mut sz = Vec::new();
        for (pi, p) in r.parts.iter().enumerate() {
            let n = content_len(&p.content)?;
            if !matches!(p.content, Content::Dir) {
                sizes.insert(stored[ri][pi].clone(), n);
            }
            sz.push(n);
        }
        records.push(record_for(
            &mut r,
            stored[ri].clone(),
            sz.first().copied().unwrap_or(0),
        ));
        contents.push(r.parts.drain(..).map(|p| Some(p.content)).collect());
        sizes_of.push(sz);
    }
    let bag = settings.bag_name.clone();
    // One inventory, its records' digests filled in once the payload is written: a copy of
    // every record per step cost more memory than anything else at the end of a large export.
    let mut inv = settings.inventory(sealing, records);
    let fixed = fixed_tags(&inv, &sizes, &extra_tags);

    let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
    for d in directory_entries(&bag, stored.iter().flatten().map(String::as_str)) {
        slots.insert(d, Slot::Dir);
    }
    let tag_names: Vec<String> = fixed
        .keys()
        .cloned()
        .chain(
            [
                super::inventory::INVENTORY_FILE,
                super::bagit::MANIFEST_FILE,
                super::bagit::TAG_MANIFEST_FILE,
            ]
            .iter()
            .map(|s| s.to_string()),
        )
        .collect();
    for name in tag_names {
        slots.insert(format!("{bag}/{name}"), Slot::Tag(name));
    }
    for (ri, parts) in stored.iter().enumerate() {
        for (pi, s) in parts.iter().enumerate() {
            if !s.ends_with('/') {
                slots.insert(format!("{bag}/{s}"), Slot::Payload(ri, pi));
            }
        }
    }

    // Keyed by the stored paths borrowed from `stored`, not copies of them.
    let mut digests: BTreeMap<&str, String> = BTreeMap::new();
    let mut post: Option<(BTreeMap<String, Vec<u8>>, InventoryFile)> = None;
    let payload_total = sizes.len();
    let entries = slots.len() as u64;
    for (name, slot) in slots {
        match slot {
            Slot::Dir => zip.add_dir(&name).ctx(format!("entry {name}"))?,
            Slot::Tag(tag) => {
                if let Some(b) = fixed.get(&tag) {
                    zip.add_bytes(&name, b).ctx(format!("entry {name}"))?;
                    continue;
                }
                if digests.len() != payload_total {
                    return Err(staging(format!(
                        "tag file {tag} sorts before the payload it describes"
                    )));
                }
                let (post, inventory) = post.get_or_insert_with(|| {
                    for r in &mut inv.records {
                        r.sha256 = r
                            .stored
                            .first()
                            .and_then(|p| digests.get(p.as_str()).cloned());
                    }
                    // Versions whose artifacts were streamed learn their manifest digest only
                    // now (§11, streamed files).
                    crate::kinds::model::format::fill_streamed_digests(&mut inv.records);
                    let file = InventoryFile::measure(&inv, CHUNK);
                    (
                        digest_tags_beside(
                            digests.iter().map(|(p, h)| (*p, h.as_str())),
                            &fixed,
                            &file.sha256,
                        ),
                        file,
                    )
                });
                if tag == super::inventory::INVENTORY_FILE {
                    // Rendered a second time straight into the zip, not held: see
                    // [`InventoryFile`].
                    write_inventory_entry(zip, &name, &inv, inventory)?;
                    continue;
                }
                // Taken, not copied.
                let bytes = post
                    .remove(&tag)
                    .ok_or_else(|| staging(format!("tag file {tag} is listed twice")))?;
                zip.add_bytes(&name, &bytes).ctx(format!("entry {name}"))?;
            }
            Slot::Payload(ri, pi) => {
                let content = contents[ri][pi].take().expect("each part is written once");
                let (sample, rest) = open_content(content)?;
                let known = expected
                    .get(ri)
                    .and_then(|e| e.get(pi))
                    .and_then(Option::as_deref);
                let hex = write_file_entry(zip, &name, sizes_of[ri][pi], sample, rest, known)?;
                digests.insert(stored[ri][pi].as_str(), hex);
            }
        }
    }
    Ok(WriteSummary {
        bag,
        bundle_id: settings.bundle_id.clone(),
        entries,
        records: inv.records.len() as u64,
        payload_files: payload_total as u64,
        payload_bytes: sizes.values().sum(),
        bytes: zip.position(),
    })
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
    write_bundle_file_expecting(
        path,
        settings,
        sealing,
        resources,
        extra_tags,
        &[],
        envelope,
        replace,
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_bundle_file_expecting(
    path: &Path,
    settings: &BagSettings,
    sealing: Option<Sealing>,
    resources: Vec<Resource>,
    extra_tags: BTreeMap<String, Vec<u8>>,
    expected: &[Vec<Option<String>>],
    envelope: Option<&Sealer>,
    replace: bool,
) -> std::result::Result<WriteSummary, Problems> {
    let (mut summary, bytes) = write_verified(path, envelope, replace, |zip| {
        Ok(write_entries(
            zip, settings, sealing, resources, extra_tags, expected,
        )?)
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
