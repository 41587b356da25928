//! The staging writer for exports (spec §11): a [`BagBuilder`] collects resources into a bag
//! folder on disk as they arrive — concurrently, from any thread — and survives a crash: each
//! resource's bytes are staged first and its record committed after, so a resumed builder keeps
//! every committed resource and discards the rest. [`BagBuilder::finalize`] places the files at
//! their stored paths (assigned over the whole set, §7.2) and writes the tag files; the bag is
//! then ready for [`super::pack::pack`].
//!
//! Staging layout, inside the bag folder:
//!
//! ```text
//! .dbxport-staging/state.json          settings and public recipients
//! .dbxport-staging/records.jsonl       the committed resources, one line each (original
//!                                      names, digests, where each part's bytes are)
//! .dbxport-staging/packs/<n>           small parts' bytes, end to end (sealed bytes for secrets)
//! .dbxport-staging/blobs/<seq>-<part>  a large or streamed part's bytes, one file each
//! .dbxport-staging/tags/<name>         extra tag files
//! ```
//!
//! A handful of files however many resources: a file per resource cost a disk round trip to
//! create and another to remove (a million-object export spent minutes in unlinks alone).
//! A part whose bytes are in memory and at most [`PACK_MAX`] long (notebooks, permission
//! sets, secret values) is appended to a pack; each thread staging a resource takes a pack of
//! its own from a pool, so no lock is held while bytes are written, and packs number as many
//! as resources were ever staged at once. Other parts (a stream must not be read under a lock,
//! and a large file gains nothing by being copied into a pack) stay a file each. The record's
//! line is appended to `records.jsonl` in one write, under the builder's lock, after its
//! bytes are written: that line is the commit. A resumed builder drops a torn or unparsable
//! last line, cuts each pack back to the end of its last committed part and removes blobs no
//! record names.

use super::bagit::is_extra_tag_name;
use super::digest::{pump, sha256_hex, PumpError};
use super::error::{BundleError, ErrorCode, IoContext, Problems, Result};
use super::fsutil::{is_empty_or_missing, write_atomic};
use super::inventory::{format_created, parse_created, Record, Sealing, Source};
use super::json::{canonicalize, to_canonical_bytes};
use super::layout::LogicalPath;
use super::reader::SealedDigest;
use super::resource::{Content, Part, Resource};
use super::seal::Sealer;
use super::tags::{digest_tags, fixed_tags};
use super::writer::{
    content_len, open_content, plan_paths, write_bundle_file_from, BagSettings, Held, Resources,
    SealingSummary, WriteSummary,
};
use crate::model::secret::{AclItem, SecretMetadata, SecretScope, ValueEncoding};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// The staging folder's name inside the bag folder.
pub const STAGING_DIR: &str = ".dbxport-staging";
const STATE_FORMAT: &str = "dbxport-staging-2";
/// The committed records, one JSON line each.
const LOG_FILE: &str = "records.jsonl";
/// The packs of small parts.
const PACKS_DIR: &str = "packs";
/// The largest part whose bytes are appended to a pack; a larger one is a blob of its own.
pub const PACK_MAX: u64 = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    format: String,
    bag_name: String,
    bundle_id: String,
    created: String,
    source: Source,
    options: Value,
    recipients: Vec<String>,
    sealing: Option<Sealing>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StagedPart {
    path: LogicalPath,
    /// The file holding its bytes, in `blobs/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
    /// The pack holding its bytes and where in it they start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pack: Option<(u32, u64)>,
    size: u64,
    sha256: Option<String>,
    sealed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StagedRecord {
    seq: u64,
    kind: Kind,
    source_id: String,
    name: String,
    meta: Value,
    notes: Vec<String>,
    parts: Vec<StagedPart>,
}

/// What the writer's source parses of a record's line to find its parts' bytes: not `meta`.
#[derive(Deserialize)]
struct LineParts {
    seq: u64,
    parts: Vec<StagedPart>,
}

/// What the builder keeps per committed resource while staging: its key, for
/// [`BagBuilder::contains`], and a count. The records themselves stay on disk (each is a line
/// of `records.jsonl`) and are read back when the bundle is written: held in memory, they
/// were most of what a large export's walk kept.
struct Inner {
    next_seq: u64,
    committed: usize,
    keys: HashSet<(Kind, String)>,
    log: Appender,
}

/// A file written only at its end by one writer at a time: `records.jsonl`, or a pack. A
/// failed write is cut off again, so that the next one starts where the file's last whole
/// line (or part) ends; when even that fails the file takes no more writes.
struct Appender {
    file: fs::File,
    path: PathBuf,
    len: u64,
    broken: bool,
}

impl Appender {
    /// Opens `path` (created if missing) to append after its first `len` bytes, dropping any
    /// beyond.
    fn open(path: PathBuf, len: u64) -> Result<Appender> {
        use std::io::{Seek, SeekFrom};
        let subject = || format!("file {}", path.display());
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(subject())?;
        if file.metadata().ctx(subject())?.len() != len {
            file.set_len(len).ctx(subject())?;
        }
        file.seek(SeekFrom::Start(len)).ctx(subject())?;
        Ok(Appender {
            file,
            path,
            len,
            broken: false,
        })
    }

    /// Writes `bytes` at the end in one call; returns where they start.
    fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        let subject = format!("file {}", self.path.display());
        if self.broken {
            return Err(staging_err(subject, "an earlier write could not be undone"));
        }
        let at = self.len;
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(at)
            }
            Err(e) => {
                self.cut(at);
                Err(BundleError::io(subject, &e))
            }
        }
    }

    /// Drops every byte from `at` on.
    fn cut(&mut self, at: u64) {
        use std::io::{Seek, SeekFrom};
        let undone = self.file.set_len(at).is_ok() && self.file.seek(SeekFrom::Start(at)).is_ok();
        self.len = at;
        self.broken |= !undone;
    }
}

/// The packs no thread is writing, and the next pack's number.
#[derive(Default)]
struct Packs {
    idle: Vec<(u32, Appender)>,
    next: u32,
}

/// A bag folder being filled by an export; see the module docs.
pub struct BagBuilder {
    dir: PathBuf,
    staging: PathBuf,
    settings: BagSettings,
    sealer: Option<Sealer>,
    state: State,
    inner: Mutex<Inner>,
    packs: Mutex<Packs>,
}

fn staging_err(subject: impl Into<String>, detail: impl Into<String>) -> BundleError {
    BundleError::new(ErrorCode::Staging, subject, detail)
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let bytes = super::json::to_pretty_bytes(v).expect("staging state serializes");
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, bytes).ctx(format!("file {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(format!("file {}", path.display()))
}

impl BagBuilder {
    /// Starts a new staged bag in `dir`, whose name must be `settings.bag_name`. `dir` must
    /// not exist or be empty. `sealer` is needed to add secret values.
    pub fn create(dir: &Path, settings: BagSettings, sealer: Option<Sealer>) -> Result<Self> {
        settings.check()?;
        let subject = format!("folder {}", dir.display());
        if dir.file_name().and_then(|n| n.to_str()) != Some(settings.bag_name.as_str()) {
            return Err(staging_err(
                &subject,
                format!("the bag folder must be named {:?}", settings.bag_name),
            ));
        }
        if !is_empty_or_missing(dir)? {
            return Err(BundleError::new(
                ErrorCode::TargetNotEmpty,
                &subject,
                "is not empty (resume a staged export with BagBuilder::resume)",
            ));
        }
        let staging = dir.join(STAGING_DIR);
        for sub in [PACKS_DIR, "blobs", "tags"] {
            fs::create_dir_all(staging.join(sub)).ctx(&subject)?;
        }
        let log = Appender::open(staging.join(LOG_FILE), 0)?;
        let state = State {
            format: STATE_FORMAT.into(),
            bag_name: settings.bag_name.clone(),
            bundle_id: settings.bundle_id.clone(),
            created: format_created(settings.created),
            source: settings.source.clone(),
            options: settings.options.clone(),
            recipients: sealer
                .as_ref()
                .map(Sealer::recipient_strings)
                .unwrap_or_default(),
            sealing: sealer.as_ref().map(Sealer::sealing),
        };
        write_json(&staging.join("state.json"), &state)?;
        Ok(BagBuilder {
            dir: dir.to_path_buf(),
            staging,
            settings,
            sealer,
            state,
            inner: Mutex::new(Inner {
                next_seq: 0,
                committed: 0,
                keys: HashSet::new(),
                log,
            }),
            packs: Mutex::new(Packs::default()),
        })
    }

    /// Reopens a staged bag after an interruption. Committed resources are kept; bytes of
    /// uncommitted ones and secrets of unfinished scopes are discarded. Without `sealer`, the
    /// recipients recorded at creation are used (a passphrase must be given again).
    pub fn resume(dir: &Path, sealer: Option<Sealer>) -> Result<Self> {
        let staging = dir.join(STAGING_DIR);
        let subject = format!("folder {}", dir.display());
        let state_path = staging.join("state.json");
        let bytes = fs::read(&state_path).map_err(|_| {
            staging_err(
                &subject,
                "is not a staged export (no .dbxport-staging/state.json)",
            )
        })?;
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|e| staging_err(&subject, format!("staging state is damaged: {e}")))?;
        if state.format != STATE_FORMAT {
            return Err(staging_err(
                &subject,
                if state.format.starts_with("dbxport-staging-") {
                    format!(
                        "was staged by another version of dbxport (format {}, this one \
                         resumes {STATE_FORMAT}) and cannot be resumed: remove the staging \
                         folder and export again without --resume",
                        state.format
                    )
                } else {
                    "staging state has an unknown format".to_string()
                },
            ));
        }
        let sealer = match sealer {
            Some(s) => {
                // The same count and types is not enough: key A and key B are both one X25519.
                let sorted = |v: &[String]| {
                    let mut v: Vec<&str> = v.iter().map(|r| r.trim()).collect();
                    v.sort_unstable();
                    v.dedup();
                    v.join("\n")
                };
                let other_keys = !state.recipients.is_empty()
                    && sorted(&state.recipients) != sorted(&s.recipient_strings());
                if other_keys || (state.sealing.is_some() && Some(s.sealing()) != state.sealing) {
                    return Err(staging_err(
                        &subject,
                        "resumed with different recipients than the export started with",
                    ));
                }
                Some(s)
            }
            None if !state.recipients.is_empty() => Some(
                Sealer::to_recipients(&state.recipients)
                    .map_err(|e| staging_err(&subject, e.to_string()))?,
            ),
            None => None,
        };
        let settings = BagSettings {
            bag_name: state.bag_name.clone(),
            bundle_id: state.bundle_id.clone(),
            created: parse_created(&state.created)
                .ok_or_else(|| staging_err(&subject, "staging state has a bad time"))?,
            source: state.source.clone(),
            options: state.options.clone(),
        };
        let scan = scan_log(&staging, &subject)?;
        let packs = tidy_packs(&staging.join(PACKS_DIR), &scan.pack_ends, &subject)?;
        for e in fs::read_dir(staging.join("blobs")).ctx(&subject)? {
            let e = e.ctx(&subject)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !scan.blobs.contains(&name) {
                let _ = fs::remove_file(e.path());
            }
        }
        let inner = Inner {
            next_seq: scan.next_seq,
            committed: scan.keys.len(),
            keys: scan.keys,
            log: Appender::open(staging.join(LOG_FILE), scan.end)?,
        };
        Ok(BagBuilder {
            dir: dir.to_path_buf(),
            staging,
            settings,
            sealer,
            state,
            inner: Mutex::new(inner),
            packs: Mutex::new(packs),
        })
    }

    /// The bag folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings the bag was created with.
    pub fn settings(&self) -> &BagSettings {
        &self.settings
    }

    /// The sealer, when recipients were given.
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_ref()
    }

    /// True when a resource of `kind` with `source_id` is already committed (a resumed export
    /// skips it).
    pub fn contains(&self, kind: Kind, source_id: &str) -> bool {
        self.inner
            .lock()
            .expect("builder lock")
            .keys
            .contains(&(kind, source_id.to_string()))
    }

    /// Committed resources so far.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("builder lock").committed
    }

    /// True when nothing is committed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stages and commits one resource. Safe to call from several threads at once. A second
    /// resource of the same kind and source id is refused (E503).
    pub fn add(&self, resource: Resource) -> Result<()> {
        let key = (resource.kind, resource.source_id.clone());
        let subject = format!("{} {}", resource.kind, resource.name);
        if resource.is_sealed() && self.state.sealing.is_none() {
            return Err(staging_err(
                &subject,
                "sealed content needs recipients; create the builder with a sealer",
            ));
        }
        let seq = {
            let mut inner = self.inner.lock().expect("builder lock");
            if !inner.keys.insert(key.clone()) {
                return Err(staging_err(&subject, "was already added"));
            }
            inner.next_seq += 1;
            inner.next_seq - 1
        };
        let result = self.stage(seq, resource);
        let mut inner = self.inner.lock().expect("builder lock");
        match result {
            Ok(()) => {
                inner.committed += 1;
                Ok(())
            }
            Err(e) => {
                inner.keys.remove(&key);
                Err(e)
            }
        }
    }

    /// Writes the bytes of `r`'s parts, then commits its record (one line of the log).
    fn stage(&self, seq: u64, r: Resource) -> Result<()> {
        // The pack this thread appends to, checked out of the pool for the whole resource,
        // and where its parts start in it.
        let mut pack: Option<(u32, Appender, u64)> = None;
        let mut written: Vec<PathBuf> = Vec::new();
        let result = self.stage_parts(seq, r, &mut pack, &mut written);
        if result.is_err() {
            for p in &written {
                let _ = fs::remove_file(p);
            }
        }
        if let Some((n, mut file, start)) = pack {
            if result.is_err() {
                file.cut(start);
            }
            if !file.broken {
                self.packs.lock().expect("packs lock").idle.push((n, file));
            }
        }
        result
    }

    fn stage_parts(
        &self,
        seq: u64,
        r: Resource,
        pack: &mut Option<(u32, Appender, u64)>,
        written: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let mut parts = Vec::with_capacity(r.parts.len());
        for (i, p) in r.parts.into_iter().enumerate() {
            let mut staged = StagedPart {
                path: p.path,
                blob: None,
                pack: None,
                size: 0,
                sha256: None,
                sealed: false,
            };
            match p.content {
                Content::Dir => {}
                Content::Bytes(b) if b.len() as u64 <= PACK_MAX => {
                    let (n, file, _) = match pack {
                        Some(open) => open,
                        None => {
                            let (n, file) = self.take_pack()?;
                            let start = file.len;
                            pack.insert((n, file, start))
                        }
                    };
                    let at = file.append(&b)?;
                    staged.pack = Some((*n, at));
                    staged.size = b.len() as u64;
                    staged.sha256 = Some(sha256_hex(&b));
                    staged.sealed = p.sealed;
                }
                content => {
                    let name = blob_name(seq, i);
                    let dest = self.staging.join("blobs").join(&name);
                    let pumped = stage_blob(content, &dest, &r.kind, &r.name)?;
                    written.push(dest);
                    staged.blob = Some(name);
                    staged.size = pumped.bytes;
                    staged.sha256 = Some(pumped.hex());
                    staged.sealed = p.sealed;
                }
            }
            parts.push(staged);
        }
        let rec = StagedRecord {
            seq,
            kind: r.kind,
            source_id: r.source_id,
            name: r.name,
            meta: r.meta,
            notes: r.notes,
            parts,
        };
        let mut line = serde_json::to_vec(&rec).expect("a staged record serializes");
        line.push(b'\n');
        self.inner
            .lock()
            .expect("builder lock")
            .log
            .append(&line)
            .map(|_| ())
    }

    /// A pack no other thread is writing: an idle one, or a new one.
    fn take_pack(&self) -> Result<(u32, Appender)> {
        let n = {
            let mut packs = self.packs.lock().expect("packs lock");
            if let Some(idle) = packs.idle.pop() {
                return Ok(idle);
            }
            packs.next += 1;
            packs.next - 1
        };
        let path = self.staging.join(PACKS_DIR).join(n.to_string());
        Ok((n, Appender::open(path, 0)?))
    }

    /// Starts adding one secret scope's values; see [`ScopeWriter`].
    pub fn secret_scope(&self, scope: &SecretScope, acls: &[AclItem]) -> ScopeWriter<'_> {
        ScopeWriter {
            builder: self,
            scope: scope.clone(),
            acls: acls.to_vec(),
            keys: Vec::new(),
            index: BTreeMap::new(),
        }
    }

    /// Adds an extra tag file (§4.5), such as an export report; a later call replaces it.
    pub fn add_tag_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        if !is_extra_tag_name(name) {
            return Err(staging_err(
                format!("tag file {name}"),
                "name is not allowed (letters, digits, `.`, `_`, `-`; not a BagIt name)",
            ));
        }
        write_atomic(&self.staging.join("tags").join(name), bytes, true)
    }

    /// Writes the bundle `out` straight from the staged files — no bag folder is built — through
    /// the writer every command shares ([`super::write_bundle_file`]): each staged file
    /// is read once, and must still have the digest it was staged with (E206). The staging area
    /// is left in place; the caller removes it once `out` exists. Safe to repeat after an
    /// interruption (via [`BagBuilder::resume`]).
    pub fn write_bundle_file(
        self,
        out: &Path,
        envelope: Option<&Sealer>,
        replace: bool,
    ) -> std::result::Result<WriteSummary, Problems> {
        self.write_bundle_file_with(out, envelope, replace, Vec::new())
    }

    /// [`BagBuilder::write_bundle_file`] with `streamed` resources besides the staged ones:
    /// resources never staged, whose bytes are read (and hashed) as the writer reaches them
    /// (spec §11, streamed files). Their records are written like the others; nothing of them is kept.
    pub fn write_bundle_file_with(
        self,
        out: &Path,
        envelope: Option<&Sealer>,
        replace: bool,
        streamed: Vec<Resource>,
    ) -> std::result::Result<WriteSummary, Problems> {
        let log_path = self.staging.join(LOG_FILE);
        let open = || fs::File::open(&log_path).ctx(format!("file {}", log_path.display()));
        let source = StagedSource {
            log: std::io::BufReader::with_capacity(super::digest::BUF, open()?),
            at: open()?,
            log_path: log_path.clone(),
            lines: vec![0],
            reading: true,
            staging: self.staging.clone(),
            scopes: Some(ScopeCheck::default()),
            streamed: Held::new(streamed),
        };
        let extra = self.staged_tags()?;
        write_bundle_file_from(
            out,
            &self.settings,
            SealingSummary::IfSealed(self.state.sealing.clone()),
            source,
            extra,
            envelope,
            replace,
        )
        .map_err(|Problems(problems)| {
            // The manifest lists the digests taken when staging; a payload file that differs
            // was changed on disk since.
            Problems(
                problems
                    .into_iter()
                    .map(|e| match e.code() {
                        ErrorCode::DigestMismatch => BundleError::new(
                            e.code(),
                            e.subject(),
                            format!(
                                "{} (the staged file changed after it was staged; export again)",
                                e.detail()
                            ),
                        ),
                        _ => e,
                    })
                    .collect(),
            )
        })
    }

    /// The committed records in staging order, read back from the staging folder, refusing
    /// secrets whose scope never finished.
    fn committed(&self) -> Result<Vec<StagedRecord>> {
        let log_path = self.staging.join(LOG_FILE);
        let subject = format!("file {}", log_path.display());
        let mut staged = Vec::new();
        let mut log = std::io::BufReader::new(fs::File::open(&log_path).ctx(&subject)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            if log.read_until(b'\n', &mut line).ctx(&subject)? == 0 {
                break;
            }
            staged.push(parse_line(&line, &subject)?);
        }
        let mut scopes = ScopeCheck::default();
        staged.iter().for_each(|r| scopes.see(r));
        scopes.finish()?;
        Ok(staged)
    }

    /// The staged extra tag files (§4.5).
    fn staged_tags(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut extra = BTreeMap::new();
        let tags_dir = self.staging.join("tags");
        for e in fs::read_dir(&tags_dir).ctx(format!("folder {}", tags_dir.display()))? {
            let e = e.ctx("staged tag files")?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_extra_tag_name(&name) {
                extra.insert(name, fs::read(e.path()).ctx("staged tag file")?);
            }
        }
        Ok(extra)
    }

    /// Places every staged file at its stored path, writes the tag files and removes the
    /// staging area, leaving a bag folder for [`super::pack::pack`]. Safe to repeat after an
    /// interruption (via [`BagBuilder::resume`]). Exports write their bundle with
    /// [`BagBuilder::write_bundle_file`] instead; this is for callers that want the folder.
    pub fn finalize(self) -> Result<PathBuf> {
        let staged = self.committed()?;
        let paths: Vec<Vec<&LogicalPath>> = staged
            .iter()
            .map(|r| r.parts.iter().map(|p| &p.path).collect())
            .collect();
        let stored = plan_paths(&paths)?;
        let mut records = Vec::with_capacity(staged.len());
        let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
        let mut digests: BTreeMap<String, String> = BTreeMap::new();
        let mut any_sealed = false;
        for (r, paths) in staged.iter().zip(&stored) {
            for (pi, (p, s)) in r.parts.iter().zip(paths).enumerate() {
                let dest = self.dir.join(s.trim_end_matches('/'));
                let subject = format!("file {}", dest.display());
                if p.blob.is_none() && p.pack.is_none() {
                    fs::create_dir_all(&dest).ctx(&subject)?;
                    continue;
                }
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).ctx(&subject)?;
                }
                // A blob is moved into place, a packed part copied (the pack stays whole
                // until the staging area is removed, so this can be done again).
                match part_content(&self.staging, r.seq, pi, p)? {
                    Content::File(src) => {
                        if src.exists() {
                            fs::rename(&src, &dest).ctx(&subject)?;
                        } else if !dest.is_file() {
                            return Err(staging_err(&subject, "staged bytes are missing"));
                        }
                    }
                    content => {
                        let (sample, mut rest) = open_content(content)?;
                        let mut f = fs::File::create(&dest).ctx(&subject)?;
                        f.write_all(&sample).ctx(&subject)?;
                        std::io::copy(&mut rest, &mut f).ctx(&subject)?;
                    }
                }
                sizes.insert(s.clone(), p.size);
                digests.insert(s.clone(), p.sha256.clone().unwrap_or_default());
            }
            let primary = r.parts.first();
            any_sealed |= primary.is_some_and(|p| p.sealed);
            records.push(Record {
                kind: r.kind,
                source_id: r.source_id.clone(),
                name: r.name.clone(),
                stored: paths.clone(),
                size: primary.map_or(0, |p| p.size),
                sha256: primary.and_then(|p| p.sha256.clone()),
                sealed: primary.is_some_and(|p| p.sealed),
                notes: r.notes.clone(),
                meta: r.meta.clone(),
            });
        }
        let sealing = if any_sealed {
            self.state.sealing.clone()
        } else {
            None
        };
        let inv = self.settings.inventory(sealing, records);
        let extra = self.staged_tags()?;
        let fixed = fixed_tags(&inv, &sizes, &extra);
        let post = digest_tags(&inv, &digests, &fixed);
        fs::create_dir_all(self.dir.join("data")).ctx("bag data folder")?;
        for (name, bytes) in fixed.iter().chain(post.iter()) {
            write_atomic(&self.dir.join(name), bytes, true)?;
        }
        fs::remove_dir_all(&self.staging).ctx(format!("folder {}", self.staging.display()))?;
        Ok(self.dir)
    }
}

/// A committed record: one line of `records.jsonl`.
fn parse_line(line: &[u8], subject: &str) -> Result<StagedRecord> {
    if line.last() != Some(&b'\n') {
        return Err(staging_err(subject, "its last record is cut short"));
    }
    serde_json::from_slice(line).map_err(|e| staging_err(subject, format!("is damaged: {e}")))
}

/// What a resumed builder needs of `records.jsonl`, read as a stream (the records are not
/// kept): the committed keys, where each pack's committed parts end, the blobs still wanted.
struct Scan {
    keys: HashSet<(Kind, String)>,
    next_seq: u64,
    /// The end of the last whole record.
    end: u64,
    pack_ends: BTreeMap<u32, u64>,
    blobs: HashSet<String>,
}

/// Reads `records.jsonl` of `staging` on resume. A torn or unparsable last line is the commit
/// an interruption cut short: the log is cut back to the line before (a damaged line before
/// the last is refused). Secrets whose scope never finished lack their sealed digest index:
/// their lines are dropped (the log is written again without them), so they are staged again.
fn scan_log(staging: &Path, subject: &str) -> Result<Scan> {
    let log_path = staging.join(LOG_FILE);
    let log_subject = format!("file {}", log_path.display());
    let file = match fs::File::open(&log_path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(BundleError::io(&log_subject, &e)),
    };
    let mut scan = Scan {
        keys: HashSet::new(),
        next_seq: 0,
        end: 0,
        pack_ends: BTreeMap::new(),
        blobs: HashSet::new(),
    };
    let Some(file) = file else { return Ok(scan) };
    let mut log = std::io::BufReader::with_capacity(super::digest::BUF, file);
    let mut scopes: HashSet<String> = HashSet::new();
    // Each secret's scope and line.
    let mut secrets: Vec<(String, String, std::ops::Range<u64>)> = Vec::new();
    let mut line = Vec::new();
    let mut bad: Option<BundleError> = None;
    let mut at = 0u64;
    loop {
        line.clear();
        let n = log.read_until(b'\n', &mut line).ctx(&log_subject)?;
        if n == 0 {
            break;
        }
        if let Some(e) = bad.take() {
            // Only the last line can be cut short.
            return Err(e);
        }
        let r = match parse_line(&line, &log_subject) {
            Ok(r) => r,
            Err(e) => {
                bad = Some(e);
                at += n as u64;
                continue;
            }
        };
        let range = at..at + n as u64;
        at = range.end;
        scan.end = at;
        scan.next_seq = scan.next_seq.max(r.seq + 1);
        for p in &r.parts {
            if let Some((pack, offset)) = p.pack {
                let end = scan.pack_ends.entry(pack).or_default();
                *end = (*end).max(offset + p.size);
            }
            if let Some(b) = &p.blob {
                scan.blobs.insert(b.clone());
            }
        }
        match r.kind {
            Kind::SecretScope => {
                scopes.insert(r.name.clone());
            }
            Kind::Secret => {
                let scope = r.meta.get("scope").and_then(Value::as_str).unwrap_or("");
                secrets.push((scope.to_string(), r.source_id.clone(), range));
            }
            _ => {}
        }
        scan.keys.insert((r.kind, r.source_id));
    }
    drop(log);
    let orphans: Vec<std::ops::Range<u64>> = secrets
        .into_iter()
        .filter(|(scope, _, _)| !scopes.contains(scope))
        .map(|(_, id, range)| {
            scan.keys.remove(&(Kind::Secret, id));
            range
        })
        .collect();
    if !orphans.is_empty() {
        drop_lines(&log_path, scan.end, &orphans).map_err(|e| {
            BundleError::new(
                ErrorCode::Io,
                subject,
                format!("{}: {e}", log_path.display()),
            )
        })?;
        scan.end -= orphans.iter().map(|r| r.end - r.start).sum::<u64>();
    }
    Ok(scan)
}

/// Writes `log` again up to `end` without the lines at `drop` (ascending), through a
/// temporary file renamed over it.
fn drop_lines(log: &Path, end: u64, drop: &[std::ops::Range<u64>]) -> std::io::Result<()> {
    let tmp = log.with_extension("jsonl.tmp");
    let mut from = std::io::BufReader::new(fs::File::open(log)?).take(end);
    let mut to = BufWriter::new(fs::File::create(&tmp)?);
    let mut at = 0u64;
    for r in drop {
        std::io::copy(&mut (&mut from).take(r.start - at), &mut to)?;
        std::io::copy(&mut (&mut from).take(r.end - r.start), &mut std::io::sink())?;
        at = r.end;
    }
    std::io::copy(&mut from, &mut to)?;
    to.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, log)
}

/// Cuts each pack in `dir` back to the end of its last committed part (`ends`), removes
/// packs no committed record uses, and returns the pool of packs to append to.
fn tidy_packs(dir: &Path, ends: &BTreeMap<u32, u64>, subject: &str) -> Result<Packs> {
    let mut packs = Packs::default();
    for e in fs::read_dir(dir).ctx(subject)? {
        let e = e.ctx(subject)?;
        let n = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        match n.and_then(|n| Some((n, *ends.get(&n)?))) {
            Some((n, end)) => {
                let len = e.metadata().ctx(subject)?.len();
                if len < end {
                    return Err(staging_err(
                        format!("file {}", e.path().display()),
                        format!("holds {len} bytes, the staged records need {end}"),
                    ));
                }
                packs.idle.push((n, Appender::open(e.path(), end)?));
                packs.next = packs.next.max(n + 1);
            }
            None => {
                let _ = fs::remove_file(e.path());
                if let Some(n) = n {
                    packs.next = packs.next.max(n + 1);
                }
            }
        }
    }
    for n in ends.keys() {
        if packs.idle.iter().all(|(m, _)| m != n) {
            return Err(staging_err(
                format!("folder {}", dir.display()),
                format!("pack {n}, which staged records need, is missing"),
            ));
        }
    }
    Ok(packs)
}

/// The content of part `i` of the staged record `seq`: a range of a pack, a blob or a folder.
fn part_content(staging: &Path, seq: u64, i: usize, p: &StagedPart) -> Result<Content> {
    let subject = || format!("part {i} of staged record {seq}");
    match (&p.pack, &p.blob) {
        (Some((n, offset)), None) if p.size <= PACK_MAX => Ok(Content::Range {
            path: staging.join(PACKS_DIR).join(n.to_string()),
            offset: *offset,
            len: p.size,
        }),
        (None, Some(b)) if *b == blob_name(seq, i) => {
            Ok(Content::File(staging.join("blobs").join(b)))
        }
        (None, None) => Ok(Content::Dir),
        _ => Err(staging_err(
            subject(),
            format!("names its bytes wrongly ({:?}, {:?})", p.pack, p.blob),
        )),
    }
}

/// Copies `content` to the blob `dest` (through a temporary name: a blob exists whole or not at
/// all), checking it has the length it declares.
fn stage_blob(
    content: Content,
    dest: &Path,
    kind: &Kind,
    name: &str,
) -> Result<super::digest::Pumped> {
    let tmp = dest.with_extension("tmp");
    let staged = (|| {
        let declared = content_len(&content)?;
        let (sample, rest) = open_content(content)?;
        let f = fs::File::create(&tmp).ctx(format!("file {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(super::digest::BUF, f);
        let mut src = std::io::Cursor::new(sample).chain(rest);
        let pumped = pump(&mut src, declared, &mut |b| w.write_all(b)).map_err(|e| match e {
            PumpError::Read(e) => BundleError::io("resource content", &e),
            PumpError::Write(e) => BundleError::io(format!("file {}", tmp.display()), &e),
        })?;
        w.flush().ctx(format!("file {}", tmp.display()))?;
        if pumped.bytes != declared {
            return Err(staging_err(
                format!("{kind} {name}"),
                format!(
                    "content has {} bytes, {declared} were declared",
                    pumped.bytes
                ),
            ));
        }
        fs::rename(&tmp, dest).ctx(format!("file {}", dest.display()))?;
        Ok(pumped)
    })();
    if staged.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    staged
}

/// The name of the blob of part `part` of staged record `seq`.
fn blob_name(seq: u64, part: usize) -> String {
    format!("{seq:010}-{part}")
}

/// Refuses secrets whose scope never finished ([`ScopeWriter::finish`]): a scope is committed
/// after its values, so this is known only once every record was seen.
#[derive(Default)]
struct ScopeCheck {
    scopes: HashSet<String>,
    /// For each scope a secret names, the first such secret.
    secrets: BTreeMap<String, String>,
}

impl ScopeCheck {
    fn see(&mut self, r: &StagedRecord) {
        match r.kind {
            Kind::SecretScope => {
                self.scopes.insert(r.name.clone());
            }
            Kind::Secret => {
                let scope = r.meta.get("scope").and_then(Value::as_str).unwrap_or("");
                if !self.secrets.contains_key(scope) {
                    self.secrets.insert(scope.to_string(), r.name.clone());
                }
            }
            _ => {}
        }
    }

    fn finish(self) -> Result<()> {
        match self
            .secrets
            .iter()
            .find(|(scope, _)| !self.scopes.contains(*scope))
        {
            Some((scope, secret)) => Err(staging_err(
                format!("secret {secret}"),
                format!("its scope {scope:?} was never finished (call ScopeWriter::finish)"),
            )),
            None => Ok(()),
        }
    }
}

/// The writer's source for a staged export ([`BagBuilder::write_bundle_file_with`]): the
/// committed records read from `records.jsonl` one line at a time, in the order they were
/// committed, then the streamed resources. A staged record's `meta` (and where its parts'
/// bytes are) is read again from its line when the inventory is rendered (and its parts
/// written): nothing of it stays in memory but the writer's own summary and where its line
/// starts.
struct StagedSource {
    /// `records.jsonl`, read through once.
    log: std::io::BufReader<fs::File>,
    /// `records.jsonl` again, for reading lines back.
    at: fs::File,
    log_path: PathBuf,
    /// Where each line read so far starts, and after them where the last one ends.
    lines: Vec<u64>,
    /// Until the last staged record was read.
    reading: bool,
    staging: PathBuf,
    /// Until every staged record was read.
    scopes: Option<ScopeCheck>,
    streamed: Held,
}

impl StagedSource {
    /// Staged records read so far.
    fn staged(&self) -> usize {
        self.lines.len() - 1
    }

    fn subject(&self) -> String {
        format!("file {}", self.log_path.display())
    }

    /// The next line of the log, `None` at its end.
    fn read_next(&mut self) -> Result<Option<StagedRecord>> {
        let mut line = Vec::new();
        let n = self.log.read_until(b'\n', &mut line).ctx(self.subject())?;
        if n == 0 {
            return Ok(None);
        }
        let r = parse_line(&line, &self.subject())?;
        let end = self.lines[self.staged()] + n as u64;
        self.lines.push(end);
        Ok(Some(r))
    }

    /// Line `i` of the log again.
    fn line(&mut self, i: usize) -> Result<Vec<u8>> {
        use std::io::{Seek, SeekFrom};
        let (start, end) = (self.lines[i], self.lines[i + 1]);
        let mut line = vec![0; (end - start) as usize];
        self.at.seek(SeekFrom::Start(start)).ctx(self.subject())?;
        self.at.read_exact(&mut line).ctx(self.subject())?;
        Ok(line)
    }

    fn resource(&self, r: StagedRecord) -> Result<(Resource, Vec<Option<String>>)> {
        let mut expected = Vec::with_capacity(r.parts.len());
        let mut parts = Vec::with_capacity(r.parts.len());
        for (i, p) in r.parts.into_iter().enumerate() {
            let content = part_content(&self.staging, r.seq, i, &p)
                .map_err(|e| staging_err(format!("{} {}", r.kind, r.name), e.detail()))?;
            expected.push(p.sha256);
            parts.push(Part {
                path: p.path,
                content,
                sealed: p.sealed,
            });
        }
        let resource = Resource {
            kind: r.kind,
            source_id: r.source_id,
            name: r.name,
            meta: r.meta,
            notes: r.notes,
            parts,
        };
        Ok((resource, expected))
    }
}

impl Resources for StagedSource {
    fn next(&mut self) -> Option<Result<(Resource, Vec<Option<String>>)>> {
        if self.reading {
            match self.read_next() {
                Ok(Some(r)) => {
                    if let Some(s) = self.scopes.as_mut() {
                        s.see(&r);
                    }
                    return Some(self.resource(r));
                }
                Ok(None) => self.reading = false,
                Err(e) => return Some(Err(e)),
            }
        }
        if let Some(scopes) = self.scopes.take() {
            if let Err(e) = scopes.finish() {
                return Some(Err(e));
            }
        }
        self.streamed.next()
    }

    fn keep(&mut self, i: usize, r: Resource) {
        if let Some(i) = i.checked_sub(self.staged()) {
            self.streamed.keep(i, r);
        }
    }

    fn content(&mut self, i: usize, part: usize) -> Result<Content> {
        if i >= self.staged() {
            return self.streamed.content(i - self.staged(), part);
        }
        let line = self.line(i)?;
        let r: LineParts = serde_json::from_slice(&line)
            .map_err(|e| staging_err(self.subject(), format!("is damaged: {e}")))?;
        let p = r.parts.get(part).ok_or_else(|| {
            staging_err(
                self.subject(),
                format!("staged record {} has no part {part}", r.seq),
            )
        })?;
        part_content(&self.staging, r.seq, part, p)
    }

    fn meta(&mut self, i: usize) -> Result<Cow<'_, Value>> {
        if i >= self.staged() {
            return self.streamed.meta(i - self.staged());
        }
        let line = self.line(i)?;
        let mut meta = parse_line(&line, &self.subject())?.meta;
        canonicalize(&mut meta);
        Ok(Cow::Owned(meta))
    }
}

/// Adds the values of one secret scope. Each value is sealed and committed as it is added;
/// [`ScopeWriter::finish`] seals the scope's digest index (§8.2) and commits the scope. If the
/// process stops before `finish`, a resumed builder drops the scope's values.
pub struct ScopeWriter<'a> {
    builder: &'a BagBuilder,
    scope: SecretScope,
    acls: Vec<AclItem>,
    keys: Vec<SecretMetadata>,
    index: BTreeMap<String, SealedDigest>,
}

impl ScopeWriter<'_> {
    fn sealer(&self) -> Result<&Sealer> {
        self.builder.sealer.as_ref().ok_or_else(|| {
            staging_err(
                format!("secret scope {}", self.scope.name),
                "secret values need recipients to be sealed to (--recipient or --passphrase)",
            )
        })
    }

    /// Seals and commits one value.
    pub fn add_value(
        &mut self,
        key: &SecretMetadata,
        value: &[u8],
        encoding: ValueEncoding,
    ) -> Result<()> {
        let sealed = self.sealer()?.seal(value).map_err(|e| {
            staging_err(
                format!("secret {}/{}", self.scope.name, key.key),
                e.to_string(),
            )
        })?;
        self.builder.add(Resource::secret(
            &self.scope.name,
            key,
            encoding,
            Some(sealed),
        ))?;
        self.index.insert(
            key.key.clone(),
            SealedDigest {
                encoding: match encoding {
                    ValueEncoding::String => "string".into(),
                    ValueEncoding::Bytes => "bytes".into(),
                },
                sha256: sha256_hex(value),
                size: value.len() as u64,
            },
        );
        self.keys.push(key.clone());
        Ok(())
    }

    /// Records a key whose value could not be read, with the reason.
    pub fn add_unreadable(&mut self, key: &SecretMetadata, reason: &str) -> Result<()> {
        self.builder.add(
            Resource::secret(&self.scope.name, key, ValueEncoding::String, None)
                .with_notes([format!("value not exported: {reason}")]),
        )?;
        self.keys.push(key.clone());
        Ok(())
    }

    /// Seals the digest index and commits the scope.
    pub fn finish(self) -> Result<()> {
        let index = if self.index.is_empty() {
            None
        } else {
            let doc = serde_json::json!({
                "format": "dbxport-sealed-digests",
                "scope": self.scope.name,
                "values": self.index,
            });
            let plain = Zeroizing::new(to_canonical_bytes(&doc).expect("index serializes"));
            Some(self.sealer()?.seal(&plain).map_err(|e| {
                staging_err(format!("secret scope {}", self.scope.name), e.to_string())
            })?)
        };
        self.builder.add(Resource::secret_scope(
            &self.scope,
            &self.acls,
            &self.keys,
            index,
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builder_is_shareable_across_threads() {
        fn is<T: Send + Sync>() {}
        is::<super::BagBuilder>();
    }
}
