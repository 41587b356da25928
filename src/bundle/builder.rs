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
//! .dbxport-staging/records/<seq>.json  one committed resource (original names, digests)
//! .dbxport-staging/blobs/<seq>-<part>  its bytes (sealed bytes for secrets)
//! .dbxport-staging/tags/<name>         extra tag files
//! ```

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
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// The staging folder's name inside the bag folder.
pub const STAGING_DIR: &str = ".dbxport-staging";
const STATE_FORMAT: &str = "dbxport-staging-1";

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
    blob: Option<String>,
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

/// What the builder keeps per committed resource while staging: its key, for
/// [`BagBuilder::contains`], and a count. The records themselves stay on disk (each is in
/// `records/<seq>.json`) and are read back when the bundle is written: held in memory, they
/// were most of what a large export's walk kept.
#[derive(Default)]
struct Inner {
    next_seq: u64,
    committed: usize,
    keys: HashSet<(Kind, String)>,
}

/// A bag folder being filled by an export; see the module docs.
pub struct BagBuilder {
    dir: PathBuf,
    staging: PathBuf,
    settings: BagSettings,
    sealer: Option<Sealer>,
    state: State,
    inner: Mutex<Inner>,
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
        for sub in ["records", "blobs", "tags"] {
            fs::create_dir_all(staging.join(sub)).ctx(&subject)?;
        }
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
            inner: Mutex::new(Inner::default()),
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
            return Err(staging_err(&subject, "staging state has an unknown format"));
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
        let rec_dir = staging.join("records");
        let mut records: BTreeMap<u64, StagedRecord> = read_records(&rec_dir, &subject, true)?
            .into_iter()
            .map(|r| (r.seq, r))
            .collect();
        // Secrets whose scope never finished lack their sealed digest index: drop them.
        let scopes: HashSet<String> = records
            .values()
            .filter(|r| r.kind == Kind::SecretScope)
            .map(|r| r.name.clone())
            .collect();
        let orphans: Vec<u64> = records
            .values()
            .filter(|r| r.kind == Kind::Secret)
            .filter(|r| {
                !r.meta
                    .get("scope")
                    .and_then(Value::as_str)
                    .is_some_and(|s| scopes.contains(s))
            })
            .map(|r| r.seq)
            .collect();
        for seq in orphans {
            records.remove(&seq);
            let _ = fs::remove_file(rec_dir.join(format!("{seq:010}.json")));
        }
        let wanted: HashSet<String> = records
            .values()
            .flat_map(|r| r.parts.iter().filter_map(|p| p.blob.clone()))
            .collect();
        for e in fs::read_dir(staging.join("blobs")).ctx(&subject)? {
            let e = e.ctx(&subject)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !wanted.contains(&name) {
                let _ = fs::remove_file(e.path());
            }
        }
        let inner = Inner {
            next_seq: records.keys().next_back().map_or(0, |s| s + 1),
            committed: records.len(),
            keys: records
                .into_values()
                .map(|r| (r.kind, r.source_id))
                .collect(),
        };
        Ok(BagBuilder {
            dir: dir.to_path_buf(),
            staging,
            settings,
            sealer,
            state,
            inner: Mutex::new(inner),
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

    fn stage(&self, seq: u64, r: Resource) -> Result<()> {
        let blobs = self.staging.join("blobs");
        let mut parts = Vec::with_capacity(r.parts.len());
        let mut written: Vec<PathBuf> = Vec::new();
        let cleanup = |written: &[PathBuf]| {
            for p in written {
                let _ = fs::remove_file(p);
            }
        };
        for (i, p) in r.parts.into_iter().enumerate() {
            if matches!(p.content, Content::Dir) {
                parts.push(StagedPart {
                    path: p.path,
                    blob: None,
                    size: 0,
                    sha256: None,
                    sealed: false,
                });
                continue;
            }
            let name = blob_name(seq, i);
            let dest = blobs.join(&name);
            let tmp = blobs.join(format!("{name}.tmp"));
            let staged = (|| {
                let declared = content_len(&p.content)?;
                let (sample, rest) = open_content(p.content)?;
                let f = fs::File::create(&tmp).ctx(format!("file {}", tmp.display()))?;
                let mut w = BufWriter::with_capacity(super::digest::BUF, f);
                let mut src = std::io::Cursor::new(sample).chain(rest);
                let pumped =
                    pump(&mut src, declared, &mut |b| w.write_all(b)).map_err(|e| match e {
                        PumpError::Read(e) => BundleError::io("resource content", &e),
                        PumpError::Write(e) => {
                            BundleError::io(format!("file {}", tmp.display()), &e)
                        }
                    })?;
                w.flush().ctx(format!("file {}", tmp.display()))?;
                if pumped.bytes != declared {
                    return Err(staging_err(
                        format!("{} {}", r.kind, r.name),
                        format!(
                            "content has {} bytes, {declared} were declared",
                            pumped.bytes
                        ),
                    ));
                }
                fs::rename(&tmp, &dest).ctx(format!("file {}", dest.display()))?;
                Ok(pumped)
            })();
            match staged {
                Ok(pumped) => {
                    written.push(dest);
                    parts.push(StagedPart {
                        path: p.path,
                        blob: Some(name),
                        size: pumped.bytes,
                        sha256: Some(pumped.hex()),
                        sealed: p.sealed,
                    });
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    cleanup(&written);
                    return Err(e);
                }
            }
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
        if let Err(e) = write_json(
            &self.staging.join("records").join(format!("{seq:010}.json")),
            &rec,
        ) {
            cleanup(&written);
            return Err(e);
        }
        Ok(())
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
        let subject = format!("folder {}", self.dir.display());
        let seqs = staged_seqs(&self.staging.join("records"), &subject, false)?;
        let source = StagedSource {
            records: self.staging.join("records"),
            blobs: self.staging.join("blobs"),
            seqs,
            next: 0,
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
        let staged = read_records(
            &self.staging.join("records"),
            &format!("folder {}", self.dir.display()),
            false,
        )?;
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
        let blobs = self.staging.join("blobs");
        let mut records = Vec::with_capacity(staged.len());
        let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
        let mut digests: BTreeMap<String, String> = BTreeMap::new();
        let mut any_sealed = false;
        for (r, paths) in staged.iter().zip(&stored) {
            for (p, s) in r.parts.iter().zip(paths) {
                let dest = self.dir.join(s.trim_end_matches('/'));
                let subject = format!("file {}", dest.display());
                match &p.blob {
                    None => fs::create_dir_all(&dest).ctx(&subject)?,
                    Some(b) => {
                        if let Some(parent) = dest.parent() {
                            fs::create_dir_all(parent).ctx(&subject)?;
                        }
                        let src = blobs.join(b);
                        if src.exists() {
                            fs::rename(&src, &dest).ctx(&subject)?;
                        } else if !dest.is_file() {
                            return Err(staging_err(&subject, "staged bytes are missing"));
                        }
                        sizes.insert(s.clone(), p.size);
                        digests.insert(s.clone(), p.sha256.clone().unwrap_or_default());
                    }
                }
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

/// The committed records in `rec_dir` (`<seq>.json`), in staging order. Other files are
/// leftovers of an interrupted commit: removed when `tidy`, else skipped.
fn read_records(rec_dir: &Path, subject: &str, tidy: bool) -> Result<Vec<StagedRecord>> {
    staged_seqs(rec_dir, subject, tidy)?
        .into_iter()
        .map(|seq| read_record(rec_dir, seq))
        .collect()
}

/// The sequence numbers of the committed records in `rec_dir` (`<seq>.json`), ascending.
/// Other files are leftovers of an interrupted commit: removed when `tidy`, else skipped.
fn staged_seqs(rec_dir: &Path, subject: &str, tidy: bool) -> Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for e in fs::read_dir(rec_dir).ctx(subject)? {
        let p = e.ctx(subject)?.path();
        let seq = (p.extension().and_then(|x| x.to_str()) == Some("json"))
            .then(|| p.file_stem().and_then(|s| s.to_str())?.parse::<u64>().ok())
            .flatten();
        match seq {
            Some(seq) => seqs.push(seq),
            None if tidy => {
                let _ = fs::remove_file(&p);
            }
            None => {}
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// The committed record `seq`.
fn read_record(rec_dir: &Path, seq: u64) -> Result<StagedRecord> {
    let p = rec_dir.join(format!("{seq:010}.json"));
    let subject = || format!("file {}", p.display());
    let r: StagedRecord = serde_json::from_slice(&fs::read(&p).ctx(subject())?)
        .map_err(|e| staging_err(subject(), e.to_string()))?;
    if r.seq != seq {
        return Err(staging_err(subject(), format!("holds record {}", r.seq)));
    }
    Ok(r)
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
/// committed records read from the staging folder one at a time, in staging order, then the
/// streamed resources. A staged record's content is its blob and its `meta` is read again
/// from its file when the inventory is rendered: nothing of it stays in memory but the
/// writer's own summary and its sequence number.
struct StagedSource {
    records: PathBuf,
    blobs: PathBuf,
    seqs: Vec<u64>,
    /// The next staged record to read.
    next: usize,
    /// Until every staged record was read.
    scopes: Option<ScopeCheck>,
    streamed: Held,
}

impl StagedSource {
    fn resource(&self, r: StagedRecord) -> Result<(Resource, Vec<Option<String>>)> {
        let mut expected = Vec::with_capacity(r.parts.len());
        let mut parts = Vec::with_capacity(r.parts.len());
        for (i, p) in r.parts.into_iter().enumerate() {
            let content = match p.blob {
                None => Content::Dir,
                Some(b) if b == blob_name(r.seq, i) => Content::File(self.blobs.join(b)),
                Some(b) => {
                    return Err(staging_err(
                        format!("{} {}", r.kind, r.name),
                        format!(
                            "its part {i} names the blob {b:?}, not {:?}",
                            blob_name(r.seq, i)
                        ),
                    ))
                }
            };
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
        if let Some(&seq) = self.seqs.get(self.next) {
            self.next += 1;
            let read = read_record(&self.records, seq).and_then(|r| {
                if let Some(s) = self.scopes.as_mut() {
                    s.see(&r);
                }
                self.resource(r)
            });
            return Some(read);
        }
        if let Some(scopes) = self.scopes.take() {
            if let Err(e) = scopes.finish() {
                return Some(Err(e));
            }
        }
        self.streamed.next()
    }

    fn keep(&mut self, i: usize, r: Resource) {
        if let Some(i) = i.checked_sub(self.seqs.len()) {
            self.streamed.keep(i, r);
        }
    }

    fn content(&mut self, i: usize, part: usize) -> Result<Content> {
        match self.seqs.get(i) {
            Some(&seq) => Ok(Content::File(self.blobs.join(blob_name(seq, part)))),
            None => self.streamed.content(i - self.seqs.len(), part),
        }
    }

    fn meta(&mut self, i: usize) -> Result<Cow<'_, Value>> {
        match self.seqs.get(i) {
            Some(&seq) => {
                let mut meta = read_record(&self.records, seq)?.meta;
                canonicalize(&mut meta);
                Ok(Cow::Owned(meta))
            }
            None => self.streamed.meta(i - self.seqs.len()),
        }
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
