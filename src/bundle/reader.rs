//! The bundle reader (spec §10): opens a bundle (or its envelope), runs the structural, tag,
//! inventory and manifest checks of §10.1 steps 1–5 before anything is trusted, and then gives
//! verified access to payload files and sealed values.
//!
//! [`Bundle::scan`] collects every problem it finds; [`Bundle::open`] refuses a bundle with any.
//! Payload reads through [`Bundle::open_payload`] check the digest when the data ends.

use super::bagit::{
    check_bagit_txt, parse_manifest, BagInfo, ManifestLines, BAGIT_FILE, BAG_INFO_FILE,
    LABEL_FORMAT_VERSION, MANIFEST_FILE, REQUIRED_TAG_FILES, TAG_MANIFEST_FILE,
};
use super::container::read::{
    classify_read_error, open_entry, read_index, EntryReader, ZipEntry, ZipIndex,
};
use super::digest::sha256_hex;
use super::error::{BundleError, ErrorCode, ProblemList, Result};
use super::inventory::{Inventory, Record, SharedNames, INVENTORY_FILE};
use super::names::check_component;
use super::seal::{Opener, AGE_MAGIC, MAX_SEALED_IN_MEMORY};
use crate::model::Kind;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A readable, seekable source (a file, or an opened envelope).
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Tag files other than the inventory, combined (declared sizes), spec §10.3: this base plus
/// [`TAGS_PER_ENTRY`] for every entry of the zip ([`tags_limit`]). Only `bagit.txt`,
/// `bag-info.txt` and the two manifests are held in memory; the others are only hashed, but
/// the bound also keeps the work (and what `unpack` writes) in proportion.
pub const MAX_TAGS_TOTAL: u64 = 64 << 20;
/// What each zip entry adds to the tag files' bound: a manifest line and an `INVENTORY.md`
/// row per payload file (about 210 bytes each for a 20,000-notebook workspace), so that a
/// workspace of a million objects (two million entries, ~450 MB of tag files) stays valid,
/// while what a reader holds stays proportional to the entries the central directory lists.
pub const TAGS_PER_ENTRY: u64 = 1 << 10;
/// Largest inventory read, before [`INVENTORY_PER_ENTRY`] per zip entry ([`inventory_limit`];
/// streamed: what it may hold is bounded by `InventoryLimits`).
pub const MAX_INVENTORY: u64 = 1 << 30;
/// What each zip entry adds to the inventory's bound (a real record takes 500–600 bytes).
pub const INVENTORY_PER_ENTRY: u64 = 2 << 10;

/// The bound of the tag files other than `dbxport.json`, for a zip of `entries` entries.
pub fn tags_limit(entries: u64) -> u64 {
    MAX_TAGS_TOTAL.saturating_add(TAGS_PER_ENTRY.saturating_mul(entries))
}

/// The bound of `dbxport.json`, for a zip of `entries` entries.
pub fn inventory_limit(entries: u64) -> u64 {
    MAX_INVENTORY.saturating_add(INVENTORY_PER_ENTRY.saturating_mul(entries))
}
/// Tag files read into memory and parsed; every other tag file is only hashed.
const PARSED_TAGS: [&str; 4] = [BAGIT_FILE, BAG_INFO_FILE, MANIFEST_FILE, TAG_MANIFEST_FILE];

/// A bundle whose structure, tag files, inventory and manifests have been checked.
pub struct Bundle {
    label: String,
    src: Box<dyn ReadSeek>,
    index: ZipIndex,
    /// Entry indexes sorted by name (the first of equal names first): lookups by binary
    /// search, without a second copy of every name (issue #15).
    by_name: Vec<u32>,
    bag: String,
    envelope: bool,
    bag_info: Option<BagInfo>,
    inventory: Option<Inventory>,
    manifest: ManifestTable,
    tag_digests: BTreeMap<String, String>,
    digest_indexes: HashMap<String, SealedIndex>,
    /// Records kept lean ([`Inventory::from_reader_lean`]): for commands that only verify,
    /// inspect or unpack.
    lean: bool,
    /// Problems the lean inventory parse found in records as they streamed.
    early: std::cell::RefCell<ProblemList>,
}

/// What [`Bundle::scan`] found: the bundle, when it could be read at all, and every problem.
pub struct Scan {
    /// The bundle, when its structure could be parsed.
    pub bundle: Option<Bundle>,
    /// Problems, in the order of §10.1, within the bound of §10.3.
    pub problems: ProblemList,
    /// True when the file was an envelope.
    pub envelope: bool,
}

/// One scope's sealed digest index (§8.2), once opened.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SealedIndex {
    /// Always `dbxport-sealed-digests`.
    pub format: String,
    /// The scope.
    pub scope: String,
    /// Per key: encoding, plaintext SHA-256 and size.
    pub values: BTreeMap<String, SealedDigest>,
}

/// A value's plaintext digest, as the sealed index records it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct SealedDigest {
    /// `string` or `bytes`.
    pub encoding: String,
    /// SHA-256 of the plaintext.
    pub sha256: String,
    /// Plaintext size.
    pub size: u64,
}

fn tag_code(name: &str) -> ErrorCode {
    match name {
        BAGIT_FILE => ErrorCode::BagitDeclaration,
        BAG_INFO_FILE => ErrorCode::BagInfo,
        MANIFEST_FILE => ErrorCode::Manifest,
        TAG_MANIFEST_FILE => ErrorCode::TagManifest,
        INVENTORY_FILE => ErrorCode::InventorySyntax,
        _ => ErrorCode::Unlisted,
    }
}

impl Bundle {
    /// Opens `path` and refuses it unless every check of §10.1 steps 1–5 passes.
    pub fn open(path: &Path, opener: Option<&Opener>) -> Result<Bundle> {
        let scan = Bundle::scan(path, opener)?;
        match (scan.bundle, scan.problems.into_vec().into_iter().next()) {
            (Some(b), None) => Ok(b),
            (_, Some(first)) => Err(first),
            (None, None) => Err(BundleError::new(
                ErrorCode::NotAZip,
                path.display().to_string(),
                "could not be read",
            )),
        }
    }

    /// Runs §10.1 steps 1–5 on `path`, collecting every problem. `Err` only when the file
    /// cannot be read at all or is an envelope that cannot be opened.
    pub fn scan(path: &Path, opener: Option<&Opener>) -> Result<Scan> {
        Bundle::scan_with(path, opener, false)
    }

    /// [`Bundle::scan`] for a command that only verifies, inspects or unpacks: the same checks
    /// and problems, but records of kinds whose rules need no other record are checked as the
    /// inventory streams and kept without their `meta` ([`Inventory::from_reader_lean`]), so
    /// that memory per record stays small (issue #15). [`Bundle::inventory`] then holds those
    /// records as summaries ([`Inventory::summaries`]; [`Inventory::views`] walks all).
    pub fn scan_lean(path: &Path, opener: Option<&Opener>) -> Result<Scan> {
        Bundle::scan_with(path, opener, true)
    }

    /// [`Bundle::open`], keeping records lean as [`Bundle::scan_lean`] does.
    pub fn open_lean(path: &Path, opener: Option<&Opener>) -> Result<Bundle> {
        let scan = Bundle::scan_lean(path, opener)?;
        match (scan.bundle, scan.problems.into_vec().into_iter().next()) {
            (Some(b), None) => Ok(b),
            (_, Some(first)) => Err(first),
            (None, None) => Err(BundleError::new(
                ErrorCode::NotAZip,
                path.display().to_string(),
                "could not be read",
            )),
        }
    }

    fn scan_with(path: &Path, opener: Option<&Opener>, lean: bool) -> Result<Scan> {
        let label = path.display().to_string();
        let mut f = std::fs::File::open(path).map_err(|e| BundleError::io(&label, &e))?;
        let mut head = [0u8; 22];
        let n = read_up_to(&mut f, &mut head).map_err(|e| BundleError::io(&label, &e))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| BundleError::io(&label, &e))?;
        if head[..n].starts_with(AGE_MAGIC) {
            let subject = format!("envelope {label}");
            let Some(op) = opener.filter(|o| !o.is_empty()) else {
                return Err(BundleError::new(
                    ErrorCode::IdentityRequired,
                    subject,
                    "the bundle is wrapped in an age envelope and no identity was given",
                ));
            };
            let reader = op.decrypt(f, &subject)?;
            return Ok(Bundle::scan_source_with(
                Box::new(reader),
                label,
                true,
                lean,
            ));
        }
        Ok(Bundle::scan_source_with(Box::new(f), label, false, lean))
    }

    /// Runs the checks on an already opened plaintext zip source. `label` names it in messages.
    pub fn scan_source(src: Box<dyn ReadSeek>, label: String, envelope: bool) -> Scan {
        Bundle::scan_source_with(src, label, envelope, false)
    }

    /// [`Bundle::scan_source`], keeping records lean when `lean` ([`Bundle::scan_lean`]).
    pub fn scan_source_with(
        mut src: Box<dyn ReadSeek>,
        label: String,
        envelope: bool,
        lean: bool,
    ) -> Scan {
        let index = match read_index(&mut src) {
            Ok(i) => i,
            Err(e) => {
                let mut problems = ProblemList::new();
                problems.push(e);
                return Scan {
                    bundle: None,
                    problems,
                    envelope,
                };
            }
        };
        let mut problems = ProblemList::new();
        // Name entries inside the bag relative to it, as the rest of the checks do.
        let prefix = index.bag.as_ref().map(|bag| format!("entry {bag}/"));
        for p in &index.problems {
            match prefix.as_deref().and_then(|x| p.subject().strip_prefix(x)) {
                Some(rest) if !rest.is_empty() => problems.push(BundleError::new(
                    p.code(),
                    format!("entry {rest}"),
                    p.detail(),
                )),
                _ => problems.push(p.clone()),
            }
        }
        let Some(bag) = index.bag.clone() else {
            return Scan {
                bundle: None,
                problems,
                envelope,
            };
        };
        // The central directory is bounded (§10.3) far below 2^32 entries.
        let mut by_name: Vec<u32> = (0..index.entries.len() as u32).collect();
        by_name.sort_by(|a, b| {
            index
                .name(&index.entries[*a as usize])
                .cmp(index.name(&index.entries[*b as usize]))
        });
        let mut b = Bundle {
            label,
            src,
            index,
            by_name,
            bag,
            envelope,
            bag_info: None,
            inventory: None,
            manifest: ManifestTable::default(),
            tag_digests: BTreeMap::new(),
            digest_indexes: HashMap::new(),
            lean,
            early: Default::default(),
        };
        b.check_bag(&mut problems);
        Scan {
            bundle: Some(b),
            problems,
            envelope,
        }
    }

    fn entry_index(&self, rel: &str) -> Option<usize> {
        find_entry(&self.index, &self.by_name, &format!("{}/{rel}", self.bag))
    }

    /// The declared entry of a tag file read whole or streamed, refused when missing or
    /// larger than `cap`.
    fn small_entry(&self, rel: &str, cap: u64, code: ErrorCode) -> Result<ZipEntry> {
        let subject = format!("entry {rel}");
        let Some(i) = self.entry_index(rel) else {
            return Err(BundleError::new(code, &subject, "missing"));
        };
        let e = self.index.entries[i].clone();
        if e.size > cap {
            return Err(BundleError::new(
                code,
                &subject,
                format!("{} bytes, more than the {cap} allowed", e.size),
            ));
        }
        Ok(e)
    }

    /// Reads a whole entry (by bag-relative path) into memory, refusing more than `cap` bytes.
    fn read_small(&mut self, rel: &str, cap: u64, code: ErrorCode) -> Result<Vec<u8>> {
        let subject = format!("entry {rel}");
        let e = self.small_entry(rel, cap, code)?;
        let mut out = Vec::with_capacity(e.size as usize);
        open_entry(&mut self.src, &e)
            .and_then(|mut r| r.read_to_end(&mut out))
            .map_err(|err| classify_read_error(&subject, &err))?;
        Ok(out)
    }

    /// Applies the bounds of §10.3 to the declared sizes of the tag files, before any is read:
    /// dbxport.json at most [`inventory_limit`], all others together at most [`tags_limit`]
    /// of the zip's entry count (the required ones counted first, then the rest by name). Returns
    /// the refusals by file name, and the files beyond the bound, which are not read.
    fn over_tag_budget(
        &self,
        tag_files: &BTreeSet<String>,
    ) -> (BTreeMap<String, BundleError>, BTreeSet<String>) {
        let mut out = BTreeMap::new();
        let mut skipped = BTreeSet::new();
        let size = |t: &str| {
            self.entry_index(t)
                .map_or(0, |i| self.index.entries[i].size)
        };
        let entries = self.index.entries.len() as u64;
        let (max_inventory, max_tags) = (inventory_limit(entries), tags_limit(entries));
        if let Some(n) = Some(size(INVENTORY_FILE)).filter(|n| *n > max_inventory) {
            out.insert(
                INVENTORY_FILE.to_string(),
                BundleError::new(
                    ErrorCode::InventorySyntax,
                    format!("entry {INVENTORY_FILE}"),
                    format!("{n} bytes, more than the {max_inventory} allowed for {entries} entries ({MAX_INVENTORY} + {INVENTORY_PER_ENTRY} per entry, spec §10.3)"),
                ),
            );
        }
        let required = REQUIRED_TAG_FILES
            .iter()
            .chain([&TAG_MANIFEST_FILE])
            .filter(|t| **t != INVENTORY_FILE && tag_files.contains(**t))
            .map(|t| t.to_string());
        let extras = tag_files
            .iter()
            .filter(|t| {
                t.as_str() != INVENTORY_FILE
                    && t.as_str() != TAG_MANIFEST_FILE
                    && !REQUIRED_TAG_FILES.contains(&t.as_str())
            })
            .cloned();
        let mut total = 0u64;
        for t in required.chain(extras) {
            total = total.saturating_add(size(&t));
            if total > max_tags {
                if !skipped.is_empty() {
                    skipped.insert(t);
                    continue;
                }
                let declared: u64 = tag_files
                    .iter()
                    .filter(|t| t.as_str() != INVENTORY_FILE)
                    .map(|t| size(t))
                    .sum();
                out.insert(
                    t.clone(),
                    BundleError::new(
                        tag_code(&t),
                        format!("entry {t}"),
                        format!(
                            "tag files other than dbxport.json declare {declared} bytes together, more than the {max_tags} allowed for {entries} entries ({MAX_TAGS_TOTAL} + {TAGS_PER_ENTRY} per entry, spec §10.3); this one crosses the bound"
                        ),
                    ),
                );
                skipped.insert(t);
            }
        }
        (out, skipped)
    }

    /// Streams the payload manifest through SHA-256 and its parser together (within `cap`, as
    /// [`Bundle::read_small`] would hold it): each digest goes beside the entry it names. The
    /// outer `Err` is a failure to read the entry; the inner result is the parse.
    fn read_manifest(&mut self, cap: u64) -> Result<(String, Result<ManifestTable>)> {
        let subject = format!("entry {MANIFEST_FILE}");
        let e = self.small_entry(MANIFEST_FILE, cap, ErrorCode::Manifest)?;
        let (index, by_name) = (&self.index, &self.by_name);
        let mut table = ManifestTable {
            digests: vec![None; index.entries.len()],
            ..Default::default()
        };
        let mut name = String::new();
        let mut add = |path: &str, digest: [u8; 32]| {
            name.clear();
            name.push_str(&self.bag);
            name.push('/');
            name.push_str(path);
            table.files += 1;
            match find_entry(index, by_name, &name) {
                Some(i) => table.digests[i].replace(digest).is_none(),
                None => table.extra.insert(path.to_string(), digest).is_none(),
            }
        };
        let mut lines = ManifestLines::new(MANIFEST_FILE, ErrorCode::Manifest, true);
        let mut r =
            open_entry(&mut self.src, &e).map_err(|err| classify_read_error(&subject, &err))?;
        let mut h = HashingReader::new(&mut r);
        let mut br = io::BufReader::with_capacity(super::digest::BUF, &mut h);
        let mut line = Vec::new();
        let read = loop {
            line.clear();
            match br.read_until(b'\n', &mut line) {
                Ok(0) => break Ok(0),
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    lines.line(&line, &mut add);
                }
                Err(err) => break Err(err),
            }
        };
        drop(br);
        h.check(&subject, read)?;
        Ok((h.hex(), lines.finish().map(|_| table)))
    }

    /// Streams a tag file through SHA-256 without holding it.
    fn hash_entry(&mut self, rel: &str, code: ErrorCode) -> Result<String> {
        let subject = format!("entry {rel}");
        let Some(i) = self.entry_index(rel) else {
            return Err(BundleError::new(code, &subject, "missing"));
        };
        let e = self.index.entries[i].clone();
        let mut r =
            open_entry(&mut self.src, &e).map_err(|err| classify_read_error(&subject, &err))?;
        let mut h = HashingReader::new(&mut r);
        let copied = io::copy(&mut h, &mut io::sink());
        h.check(&subject, copied)?;
        Ok(h.hex())
    }

    /// Streams dbxport.json through SHA-256 and the inventory parser together. The outer
    /// `Err` is a failure to read the entry; the inner result is the parse.
    fn read_inventory(&mut self) -> Result<(String, Result<Inventory>)> {
        let subject = format!("entry {INVENTORY_FILE}");
        let Some(i) = self.entry_index(INVENTORY_FILE) else {
            return Err(BundleError::new(
                ErrorCode::InventorySyntax,
                &subject,
                "missing",
            ));
        };
        let e = self.index.entries[i].clone();
        let mut r =
            open_entry(&mut self.src, &e).map_err(|err| classify_read_error(&subject, &err))?;
        let mut h = HashingReader::new(&mut r);
        let parsed = if self.lean {
            // Records' stored paths that name an entry share the index's names.
            let (index, by_name) = (&self.index, &self.by_name);
            let prefix = self.bag.len() + 1;
            let name = std::cell::RefCell::new(String::new());
            let find = |p: &str| {
                let mut n = name.borrow_mut();
                n.clear();
                n.push_str(&self.bag);
                n.push('/');
                n.push_str(p);
                find_entry(index, by_name, &n).map(|i| index.name_at(&index.entries[i]) + prefix)
            };
            let shared = SharedNames {
                names: index.names(),
                find: &find,
            };
            Inventory::from_reader_lean_sharing(&mut h, &self.early, shared)
        } else {
            Inventory::from_reader(&mut h)
        };
        h.check(&subject, Ok(0))?;
        // The parser may stop early (a refusal); the digest needs every byte.
        let copied = io::copy(&mut h, &mut io::sink());
        h.check(&subject, copied)?;
        Ok((h.hex(), parsed))
    }

    fn check_bag(&mut self, problems: &mut ProblemList) {
        let bag = self.bag.clone();
        let prefix = format!("{bag}/");
        // Classify entries: tag files, payload files, folders.
        let mut tag_files: BTreeSet<String> = BTreeSet::new();
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        for e in &self.index.entries {
            let Some(rel) = self.index.name(e).strip_prefix(&prefix) else {
                continue;
            };
            if rel.is_empty() {
                continue;
            }
            if e.dir {
                if rel == "data/" || rel.starts_with("data/") {
                    dirs.insert(rel.to_string());
                } else {
                    problems.push(BundleError::new(
                        ErrorCode::Unlisted,
                        format!("entry {rel}"),
                        "a folder outside data/ (only tag files may sit beside data/)",
                    ));
                }
            } else if rel.starts_with("data/") {
                // A payload file (collected below, once the tag files are read).
            } else if rel.contains('/') {
                problems.push(BundleError::new(
                    ErrorCode::Unlisted,
                    format!("entry {rel}"),
                    "a file in a folder outside data/",
                ));
            } else {
                tag_files.insert(rel.to_string());
            }
        }

        // Read every tag file once, within the combined bound: the four parsed ones are held
        // until parsed, dbxport.json is parsed as it streams, the rest are only hashed.
        let mut digests: BTreeMap<String, String> = BTreeMap::new();
        let mut held: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        let mut inventory_read: Option<Result<Inventory>> = None;
        let mut manifest_read: Option<Result<ManifestTable>> = None;
        let mut read_problems: Vec<BundleError> = Vec::new();
        let (over, skipped) = self.over_tag_budget(&tag_files);
        for t in &tag_files {
            if let Some(e) = over.get(t) {
                read_problems.push(e.clone());
                continue;
            }
            if skipped.contains(t) {
                continue; // beyond the bound, which is reported once
            }
            let outcome = if t == INVENTORY_FILE {
                self.read_inventory().map(|(digest, inv)| {
                    inventory_read = Some(inv);
                    digest
                })
            } else if t == MANIFEST_FILE {
                let cap = tags_limit(self.index.entries.len() as u64);
                self.read_manifest(cap).map(|(digest, m)| {
                    manifest_read = Some(m);
                    digest
                })
            } else if let Some(name) = PARSED_TAGS.iter().find(|n| **n == t.as_str()) {
                let cap = tags_limit(self.index.entries.len() as u64);
                self.read_small(t, cap, tag_code(t)).map(|b| {
                    let digest = sha256_hex(&b);
                    held.insert(name, b);
                    digest
                })
            } else {
                self.hash_entry(t, tag_code(t))
            };
            match outcome {
                Ok(d) => {
                    digests.insert(t.clone(), d);
                }
                Err(e) => read_problems.push(e),
            }
        }
        // Payload files by bag-relative path, borrowing the index's names (issue #15: a copy
        // of every name was a tenth of what verify held per object).
        let in_data = |e: &&ZipEntry| {
            !e.dir
                && self
                    .index
                    .name(e)
                    .strip_prefix(&prefix)
                    .is_some_and(|rel| rel.len() > "data/".len() && rel.starts_with("data/"))
        };
        let mut files = Vec::with_capacity(self.index.entries.iter().filter(in_data).count());
        files.extend(
            self.index
                .entries
                .iter()
                .filter(in_data)
                .map(|e| (&self.index.name(e)[prefix.len()..], e.size)),
        );
        let payload = Payload::new(files);

        // bagit.txt
        match held.remove(BAGIT_FILE) {
            Some(b) => {
                if let Err(e) = check_bagit_txt(&b) {
                    problems.push(e);
                }
            }
            None if !tag_files.contains(BAGIT_FILE) => problems.push(BundleError::new(
                ErrorCode::BagitDeclaration,
                format!("entry {BAGIT_FILE}"),
                "missing",
            )),
            None => {}
        }
        if tag_files.contains("fetch.txt") {
            problems.push(BundleError::new(
                ErrorCode::FetchFile,
                "entry fetch.txt",
                "a bundle must carry all its bytes",
            ));
        }
        for t in &tag_files {
            let other_manifest = (t.starts_with("manifest-") && t != MANIFEST_FILE)
                || (t.starts_with("tagmanifest-") && t != TAG_MANIFEST_FILE);
            if other_manifest {
                problems.push(BundleError::new(
                    ErrorCode::Manifest,
                    format!("entry {t}"),
                    "only SHA-256 manifests are allowed in format 1",
                ));
            }
        }

        // Tag manifest and every tag file's digest.
        problems.extend(read_problems);
        let tag_manifest = held.remove(TAG_MANIFEST_FILE);
        match tag_manifest {
            None => {
                if !tag_files.contains(TAG_MANIFEST_FILE) {
                    problems.push(BundleError::new(
                        ErrorCode::TagManifest,
                        format!("entry {TAG_MANIFEST_FILE}"),
                        "missing",
                    ));
                }
            }
            Some(tm) => {
                match parse_manifest(&tm, TAG_MANIFEST_FILE, ErrorCode::TagManifest, false) {
                    Err(e) => problems.push(e),
                    Ok(tm) => {
                        for req in REQUIRED_TAG_FILES {
                            if !tm.contains_key(req) {
                                problems.push(BundleError::new(
                                    ErrorCode::TagManifest,
                                    TAG_MANIFEST_FILE,
                                    format!("does not list {req}"),
                                ));
                            }
                        }
                        for t in &tag_files {
                            if t == TAG_MANIFEST_FILE {
                                continue;
                            }
                            match tm.get(t) {
                                None => problems.push(BundleError::new(
                                    ErrorCode::Unlisted,
                                    format!("entry {t}"),
                                    "tag file not listed in tagmanifest-sha256.txt",
                                )),
                                Some(want) => {
                                    if let Some(got) = digests.get(t) {
                                        if got != want {
                                            problems.push(BundleError::new(
                                                ErrorCode::TagDigestMismatch,
                                                format!("entry {t}"),
                                                format!(
                                                    "SHA-256 is {got}, tag manifest says {want}"
                                                ),
                                            ));
                                        }
                                    }
                                }
                            }
                        }
                        for listed in tm.keys() {
                            if !tag_files.contains(listed) {
                                problems.push(BundleError::new(
                                    ErrorCode::Missing,
                                    format!("entry {listed}"),
                                    "listed in tagmanifest-sha256.txt but not in the bundle",
                                ));
                            }
                        }
                    }
                }
            }
        }

        // Inventory: format name and version first.
        let mut inventory = match inventory_read {
            Some(parsed) => match parsed {
                Ok(inv) => Some(inv),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
            None => {
                if !tag_files.contains(INVENTORY_FILE) {
                    problems.push(BundleError::new(
                        ErrorCode::InventorySyntax,
                        format!("entry {INVENTORY_FILE}"),
                        "missing",
                    ));
                }
                None
            }
        };

        // Payload manifest, completeness, Payload-Oxum.
        let manifest = match manifest_read {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                problems.push(e);
                None
            }
            None => {
                if !tag_files.contains(MANIFEST_FILE) {
                    problems.push(BundleError::new(
                        ErrorCode::Manifest,
                        format!("entry {MANIFEST_FILE}"),
                        "missing",
                    ));
                }
                None
            }
        };
        if let Some(m) = &manifest {
            for p in payload.keys() {
                if m.get(self.entry_index(p), p).is_none() {
                    problems.push(BundleError::new(
                        ErrorCode::Unlisted,
                        format!("entry {p}"),
                        "payload file not listed in manifest-sha256.txt",
                    ));
                }
            }
            // Listed paths that name no entry; those that do are payload files.
            for p in m.extra.keys() {
                if !payload.contains_key(p.as_str()) {
                    problems.push(BundleError::new(
                        ErrorCode::Missing,
                        format!("entry {p}"),
                        "listed in manifest-sha256.txt but not in the bundle",
                    ));
                }
            }
        }
        let bag_info = match held.remove(BAG_INFO_FILE) {
            Some(b) => match BagInfo::parse(&b) {
                Ok(i) => Some(i),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
            None => {
                if !tag_files.contains(BAG_INFO_FILE) {
                    problems.push(BundleError::new(
                        ErrorCode::BagInfo,
                        format!("entry {BAG_INFO_FILE}"),
                        "missing",
                    ));
                }
                None
            }
        };
        if let Some(info) = &bag_info {
            if let Ok((octets, files)) = info.oxum() {
                let real = (payload.values().sum::<u64>(), payload.len() as u64);
                if (octets, files) != real {
                    problems.push(BundleError::new(
                        ErrorCode::PayloadOxum,
                        BAG_INFO_FILE,
                        format!(
                            "Payload-Oxum says {octets}.{files}, the payload is {}.{}",
                            real.0, real.1
                        ),
                    ));
                }
            }
        }

        // Stored names.
        for p in payload.keys().chain(dirs.iter().map(String::as_str)) {
            for c in p.trim_end_matches('/').split('/').skip(1) {
                if let Err(why) = check_component(c) {
                    problems.push(BundleError::new(
                        ErrorCode::UnsafeStoredName,
                        format!("entry {p}"),
                        format!("component {c:?}: {why}"),
                    ));
                    break;
                }
            }
        }

        // Inventory against bag-info, manifest and entries.
        if let (Some(inv), Some(info)) = (&inventory, &bag_info) {
            if info.get("External-Identifier") != Some(inv.bundle_id.as_str()) {
                problems.push(BundleError::new(
                    ErrorCode::IdentityMismatch,
                    BAG_INFO_FILE,
                    format!(
                        "External-Identifier {:?} differs from the inventory's bundle id {}",
                        info.get("External-Identifier").unwrap_or(""),
                        inv.bundle_id
                    ),
                ));
            }
            if info.get(LABEL_FORMAT_VERSION) != Some(inv.format_version.as_str()) {
                problems.push(BundleError::new(
                    ErrorCode::IdentityMismatch,
                    BAG_INFO_FILE,
                    format!(
                        "{LABEL_FORMAT_VERSION} {:?} differs from the inventory's {}",
                        info.get(LABEL_FORMAT_VERSION).unwrap_or(""),
                        inv.format_version
                    ),
                ));
            }
        }
        if let (Some(inv), Some(m)) = (&inventory, &manifest) {
            let digest = |p: &str| m.get(self.entry_index(p), p);
            check_records(inv, &digest, &payload, &dirs, problems);
        }
        if let Some(inv) = &mut inventory {
            problems.append(self.early.take());
            super::records::check(inv, problems);
        }
        self.tag_digests = digests;
        self.inventory = inventory;
        self.bag_info = bag_info;
        self.manifest = manifest.unwrap_or_default();
    }

    /// Where the bundle came from (its path).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The bag folder name.
    pub fn bag_name(&self) -> &str {
        &self.bag
    }

    /// True when the bundle was read through an age envelope.
    pub fn is_envelope(&self) -> bool {
        self.envelope
    }

    /// The inventory. Only valid once [`Bundle::open`] succeeded (or a scan found no problem
    /// with it).
    pub fn inventory(&self) -> &Inventory {
        static EMPTY: std::sync::OnceLock<Inventory> = std::sync::OnceLock::new();
        self.inventory.as_ref().unwrap_or_else(|| {
            EMPTY.get_or_init(|| {
                Inventory::new(
                    "00000000-0000-0000-0000-000000000000".into(),
                    time::OffsetDateTime::UNIX_EPOCH,
                    Default::default(),
                    serde_json::json!({}),
                )
            })
        })
    }

    /// Drops the summaries of the records kept lean ([`Inventory::summaries`]) once the bundle
    /// has been verified, for a command that reads what it needs of every record itself
    /// (`import`, issue #15). Payloads are still read by their stored paths; the records kept
    /// whole stay.
    pub fn forget_summaries(&mut self) {
        if let Some(inv) = self.inventory.as_mut() {
            inv.summaries = Vec::new();
        }
    }

    /// True when the inventory could be parsed.
    pub fn has_inventory(&self) -> bool {
        self.inventory.is_some()
    }

    /// `bag-info.txt`, when it could be parsed.
    pub fn bag_info(&self) -> Option<&BagInfo> {
        self.bag_info.as_ref()
    }

    /// The manifest digest (hex) of the payload file at `rel` (`data/…`), if listed.
    pub fn manifest_digest(&self, rel: &str) -> Option<String> {
        self.manifest
            .get(self.entry_index(rel), rel)
            .map(hex::encode)
    }

    /// Number of payload files the manifest lists.
    pub fn payload_files(&self) -> u64 {
        self.manifest.files as u64
    }

    /// SHA-256 of every tag file as read when the bundle was opened (already checked against
    /// the tag manifest, which is itself included).
    pub fn tag_digests(&self) -> &BTreeMap<String, String> {
        &self.tag_digests
    }

    /// The size of the stored file at `rel` (bag-relative), if present.
    pub fn entry_size(&self, rel: &str) -> Option<u64> {
        self.entry_index(rel).map(|i| self.index.entries[i].size)
    }

    /// Every entry as `(bag-relative path, is folder, size)`, in file order.
    pub fn entries(&self) -> Vec<(String, bool, u64)> {
        self.entry_order()
            .into_iter()
            .map(|i| self.entry_at(i))
            .collect()
    }

    /// The indexes of the bag's entries in file order, for [`Bundle::entry_at`]: a walk over
    /// every entry without a copy of every name (4 bytes an entry instead of its path).
    pub fn entry_order(&self) -> Vec<u32> {
        let prefix = format!("{}/", self.bag);
        let entries = &self.index.entries;
        // The central directory is bounded (§10.3) far below 2^32 entries.
        let mut v: Vec<u32> = (0..entries.len() as u32)
            .filter(|i| self.index.name(&entries[*i as usize]).starts_with(&prefix))
            .collect();
        v.sort_by_key(|i| entries[*i as usize].header_offset);
        v
    }

    /// Entry `i` (from [`Bundle::entry_order`]) as `(bag-relative path, is folder, size)`.
    pub fn entry_at(&self, i: u32) -> (String, bool, u64) {
        let e = &self.index.entries[i as usize];
        let name = self.index.name(e);
        let rel = name.strip_prefix(&self.bag).unwrap_or(name);
        (
            rel.strip_prefix('/').unwrap_or(rel).to_string(),
            e.dir,
            e.size,
        )
    }

    /// Number of zip entries.
    pub fn entry_count(&self) -> usize {
        self.index.entries.len()
    }

    /// Opens the entry at a bag-relative path for reading, without digest check (tag files
    /// and folders have none in the payload manifest). Used by extraction.
    pub fn open_raw(&mut self, rel: &str) -> Result<EntryReader<'_, Box<dyn ReadSeek>>> {
        let subject = format!("entry {rel}");
        let Some(i) = self.entry_index(rel) else {
            return Err(BundleError::new(
                ErrorCode::Missing,
                subject,
                "not in the bundle",
            ));
        };
        let e = self.index.entries[i].clone();
        open_entry(&mut self.src, &e).map_err(|err| classify_read_error(&subject, &err))
    }

    /// Opens a payload file for streaming; the reader fails with E206 at the end of the data if
    /// its SHA-256 differs from the manifest, and never yields more than the declared size.
    pub fn open_payload(&mut self, stored: &str) -> Result<VerifiedReader<'_>> {
        let Some(want) = self.manifest_digest(stored) else {
            return Err(BundleError::new(
                ErrorCode::Missing,
                format!("entry {stored}"),
                "not a payload file listed in the manifest",
            ));
        };
        let mut inner = self.open_raw(stored)?;
        inner.defer_crc_check();
        Ok(VerifiedReader {
            inner,
            sha: Sha256::new(),
            want,
            done: false,
        })
    }

    /// Reads a whole payload file (at most `cap` bytes), digest checked.
    pub fn read_payload(&mut self, stored: &str, cap: u64) -> Result<Vec<u8>> {
        let subject = format!("entry {stored}");
        if let Some(size) = self.entry_size(stored) {
            if size > cap {
                return Err(BundleError::new(
                    ErrorCode::SizeExceeded,
                    &subject,
                    format!("{size} bytes, more than the {cap} allowed here"),
                ));
            }
        }
        let mut r = self.open_payload(stored)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .map_err(|e| classify_read_error(&subject, &e))?;
        Ok(out)
    }

    /// Opens one scope's sealed digest index (cached).
    pub fn sealed_index(&mut self, scope_record: &Record, opener: &Opener) -> Result<SealedIndex> {
        let scope = scope_record.name.clone();
        if let Some(i) = self.digest_indexes.get(&scope) {
            return Ok(i.clone());
        }
        let Some(path) = scope_record
            .stored
            .iter()
            .find(|p| p.ends_with(".json.age"))
            .cloned()
        else {
            return Err(BundleError::new(
                ErrorCode::SealedIndex,
                format!("secret scope {scope}"),
                "has sealed values but no sealed digest index",
            ));
        };
        let sealed = self.read_payload(&path, MAX_SEALED_IN_MEMORY)?;
        let plain = opener.open(&sealed, &format!("entry {path}"))?;
        let index: SealedIndex = serde_json::from_slice(&plain).map_err(|e| {
            BundleError::new(
                ErrorCode::SealedIndex,
                format!("entry {path}"),
                format!("not a digest index: {e}"),
            )
        })?;
        if index.format != "dbxport-sealed-digests" || index.scope != scope {
            return Err(BundleError::new(
                ErrorCode::SealedIndex,
                format!("entry {path}"),
                format!(
                    "is the index of {:?} ({}), expected scope {scope:?}",
                    index.scope, index.format
                ),
            ));
        }
        self.digest_indexes.insert(scope, index.clone());
        Ok(index)
    }

    /// Opens a sealed secret value and checks it against its scope's sealed digest index
    /// (§8.2). The plaintext is returned in a buffer that is wiped when dropped.
    pub fn unseal(&mut self, record: &Record, opener: &Opener) -> Result<Zeroizing<Vec<u8>>> {
        let subject = format!("secret {}", record.name);
        if record.kind != Kind::Secret || !record.sealed {
            return Err(BundleError::new(
                ErrorCode::SealedIndex,
                subject,
                "not a sealed secret value",
            ));
        }
        let scope = record.meta_str("scope").unwrap_or_default().to_string();
        let key = record.meta_str("key").unwrap_or_default().to_string();
        let scope_record = self
            .inventory()
            .records
            .iter()
            .find(|r| r.kind == Kind::SecretScope && r.name == scope)
            .cloned()
            .ok_or_else(|| {
                BundleError::new(
                    ErrorCode::SealedIndex,
                    &subject,
                    format!("no record for its scope {scope:?}"),
                )
            })?;
        let index = self.sealed_index(&scope_record, opener)?;
        let path = record.stored[0].clone();
        let sealed = self.read_payload(&path, MAX_SEALED_IN_MEMORY)?;
        let plain = opener.open(&sealed, &format!("entry {path}"))?;
        let Some(want) = index.values.get(&key) else {
            return Err(BundleError::new(
                ErrorCode::SealedIndex,
                &subject,
                "missing from its scope's sealed digest index",
            ));
        };
        let got = sha256_hex(&plain);
        if plain.len() as u64 != want.size || got != want.sha256 {
            return Err(BundleError::new(
                ErrorCode::PlaintextDigest,
                &subject,
                "the opened value differs from the digest sealed at export",
            ));
        }
        Ok(plain)
    }

    /// Reads every payload entry, in file order, and checks size, CRC-32 and SHA-256 (§10.1
    /// step 6), except entries `already_read(entry, manifest digest)` vouches for (a writer's
    /// read-back). `progress` is told the bytes done after each entry.
    pub fn verify_payload(
        &mut self,
        progress: &mut dyn FnMut(u64),
        already_read: &mut dyn FnMut(&ZipEntry, &[u8; 32]) -> bool,
        problems: &mut ProblemList,
    ) {
        let mut done = 0u64;
        // Entries one at a time: a copy of every path at once was a tenth of verify's peak.
        for i in self.entry_order() {
            let (rel, dir, size) = self.entry_at(i);
            if dir || !rel.starts_with("data/") {
                continue;
            }
            let first = self.entry_index(&rel);
            let Some(want) = self.manifest.get(first, &rel) else {
                continue;
            };
            if let Some(i) = first {
                if already_read(&self.index.entries[i], &want) {
                    done += size;
                    progress(done);
                    continue;
                }
            }
            let subject = format!("entry {rel}");
            let result = self.open_raw(&rel).and_then(|mut r| {
                r.defer_crc_check();
                let p = super::digest::hash_all(&mut r)
                    .map_err(|e| classify_read_error(&subject, &e))?;
                Ok((p, r.crc_problem().map(str::to_string)))
            });
            match result {
                Ok((p, _)) if p.sha256 != want => problems.push(BundleError::new(
                    ErrorCode::DigestMismatch,
                    &subject,
                    format!(
                        "SHA-256 is {}, manifest says {}",
                        p.hex(),
                        hex::encode(want)
                    ),
                )),
                Ok((_, Some(crc))) => {
                    problems.push(BundleError::new(ErrorCode::CorruptData, &subject, crc))
                }
                Ok(_) => {}
                Err(e) => problems.push(e),
            }
            done += size;
            progress(done);
        }
    }

    /// Total bytes of payload files.
    pub fn payload_bytes(&self) -> u64 {
        // Digests sit on the first entry of each listed name, the one a lookup finds.
        self.manifest
            .digests
            .iter()
            .zip(&self.index.entries)
            .filter(|(d, _)| d.is_some())
            .map(|(_, e)| e.size)
            .sum()
    }

    /// Consumes the bundle, returning its source (for tests and tools).
    pub fn into_source(self) -> Box<dyn ReadSeek> {
        self.src
    }

    /// The path label given at open.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.label)
    }
}

/// The first entry named `name` (full name) in `entries`, by binary search over `by_name`
/// (indexes sorted by name, the first of equal names first), as a map filled in order keeps.
fn find_entry(index: &ZipIndex, by_name: &[u32], name: &str) -> Option<usize> {
    let entries = &index.entries;
    let at = by_name.partition_point(|i| index.name(&entries[*i as usize]) < name);
    by_name
        .get(at)
        .map(|i| *i as usize)
        .filter(|i| index.name(&entries[*i]) == name)
}

/// Payload files (`data/…`, not folders) by bag-relative path with their sizes, sorted, each
/// name once (the last entry of a name, as a map filled in order keeps): borrowed names in a
/// vector, a fraction of a map's memory (issue #15).
struct Payload<'a>(Vec<(&'a str, u64)>);

impl<'a> Payload<'a> {
    fn new(files: Vec<(&'a str, u64)>) -> Self {
        let mut v = files;
        v.sort_by(|a, b| a.0.cmp(b.0));
        // `dedup_by` keeps the first of a run and hands it as `kept`: give it the later size.
        v.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        Payload(v)
    }

    fn get(&self, rel: &str) -> Option<u64> {
        self.0
            .binary_search_by(|(p, _)| (*p).cmp(rel))
            .ok()
            .map(|i| self.0[i].1)
    }

    fn contains_key(&self, rel: &str) -> bool {
        self.get(rel).is_some()
    }

    fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.0.iter().map(|(p, _)| *p)
    }

    fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|(_, s)| *s)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The payload manifest as read (issue #15): each digest as 32 bytes beside the zip entry it
/// names (by index; set on the first entry of a name), so that no path is held twice; paths
/// that name no entry (a damaged bundle) apart.
#[derive(Default)]
struct ManifestTable {
    /// Per zip entry, its manifest digest.
    digests: Vec<Option<[u8; 32]>>,
    /// Listed paths that name no entry.
    extra: BTreeMap<String, [u8; 32]>,
    /// Number of listed paths.
    files: usize,
}

impl ManifestTable {
    /// The digest of `rel`, whose first entry (if any) is `entry`.
    fn get(&self, entry: Option<usize>, rel: &str) -> Option<[u8; 32]> {
        match entry {
            Some(i) => self.digests.get(i).copied().flatten(),
            None => self.extra.get(rel).copied(),
        }
    }
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Records against the manifest and the entries (E303, E304).
fn check_records(
    inv: &Inventory,
    manifest: &dyn Fn(&str) -> Option<[u8; 32]>,
    payload: &Payload<'_>,
    dirs: &BTreeSet<String>,
    problems: &mut ProblemList,
) {
    // Every stored path of every record, sorted once all are in (repeats counted by equal
    // runs): a vector of borrowed names, a third of a map's memory (issue #15).
    let stored_paths = inv.records.iter().map(|r| r.stored.len());
    let stored_paths = stored_paths
        .chain(inv.opaque.iter().map(|r| r.stored.len()))
        .chain(inv.summaries.iter().map(|r| r.stored.len()))
        .sum();
    let mut claims: Vec<&str> = Vec::with_capacity(stored_paths);
    // Each record's subject is built only while it is checked: a copy of every name at once
    // would double what a hostile inventory costs.
    let all = inv
        .records
        .iter()
        .map(|r| {
            (
                &r.kind as &dyn std::fmt::Display,
                &r.name,
                &r.stored,
                r.size,
                r.sha256.as_deref(),
            )
        })
        .chain(inv.opaque.iter().map(|r| {
            (
                &r.kind as &dyn std::fmt::Display,
                &r.name,
                &r.stored,
                r.size,
                r.sha256.as_deref(),
            )
        }));
    // The first payload path at or after `d` is the only one that can start with it (the map is
    // sorted): a range lookup, not a scan of every path for every directory record.
    let exists_dir = |d: &str| {
        dirs.contains(d)
            || payload
                .0
                .get(payload.0.partition_point(|(p, _)| *p < d))
                .is_some_and(|(p, _)| p.starts_with(d))
    };
    let whole = all.map(|(kind, name, stored, size, sha)| {
        (
            kind,
            name.as_str(),
            stored.iter().map(String::as_str).collect::<Vec<_>>(),
            size,
            sha.map(std::borrow::Cow::Borrowed),
        )
    });
    let lean = inv.summaries.iter().map(|r| {
        (
            &r.kind as &dyn std::fmt::Display,
            &*r.name,
            r.stored
                .iter()
                .map(|s| inv.stored_path(*s))
                .collect::<Vec<_>>(),
            r.size,
            r.sha256_hex().map(std::borrow::Cow::Owned),
        )
    });
    for (kind, name, stored, size, sha) in whole.chain(lean) {
        let sha = sha.as_deref();
        let subject = format!("record {kind} {name}");
        for s in stored.iter().copied() {
            claims.push(s);
            let present = if s.ends_with('/') {
                exists_dir(s)
            } else {
                payload.contains_key(s)
            };
            if !present {
                problems.push(BundleError::new(
                    ErrorCode::RecordMismatch,
                    &subject,
                    format!("stored path {s} is not in the bundle"),
                ));
            }
        }
        match stored.first().copied() {
            Some(p) if !p.ends_with('/') => {
                if let Some(real) = payload.get(p) {
                    if real != size {
                        problems.push(BundleError::new(
                            ErrorCode::RecordMismatch,
                            &subject,
                            format!("says {size} bytes, {p} has {real}"),
                        ));
                    }
                }
                if let Some(m) = manifest(p) {
                    if Some(hex::encode(m).as_str()) != sha {
                        problems.push(BundleError::new(
                            ErrorCode::RecordMismatch,
                            &subject,
                            format!("digest differs from the manifest's for {p}"),
                        ));
                    }
                }
            }
            _ => {
                if size != 0 || sha.is_some() {
                    problems.push(BundleError::new(
                        ErrorCode::RecordMismatch,
                        &subject,
                        "has no stored file but a size or digest",
                    ));
                }
            }
        }
    }
    claims.sort_unstable();
    let count = |p: &str| {
        let from = claims.partition_point(|c| *c < p);
        claims[from..].iter().take_while(|c| **c == p).count()
    };
    for p in payload.keys() {
        match count(p) {
            1 => {}
            0 => problems.push(BundleError::new(
                ErrorCode::Unclaimed,
                format!("entry {p}"),
                "no record claims this file",
            )),
            n => problems.push(BundleError::new(
                ErrorCode::Unclaimed,
                format!("entry {p}"),
                format!("claimed by {n} records"),
            )),
        }
    }
    for d in dirs {
        if d == "data/" {
            continue;
        }
        // A range lookup, as for `exists_dir`: the first claimed path at or after `d`.
        let holds_claimed = claims
            .get(claims.partition_point(|c| *c < d.as_str()))
            .is_some_and(|c| c.starts_with(d.as_str()));
        if !holds_claimed {
            problems.push(BundleError::new(
                ErrorCode::Unclaimed,
                format!("entry {d}"),
                "a folder that no record claims or uses",
            ));
        } else if count(d) > 1 {
            problems.push(BundleError::new(
                ErrorCode::Unclaimed,
                format!("entry {d}"),
                "claimed by more than one record",
            ));
        }
    }
}

/// Hashes what passes through, and keeps the read error (the parser above it only sees that
/// reading failed; the error says why, with its code).
struct HashingReader<R> {
    inner: R,
    sha: Sha256,
    error: Option<io::Error>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            sha: Sha256::new(),
            error: None,
        }
    }

    fn hex(&self) -> String {
        hex::encode(self.sha.clone().finalize())
    }

    /// The read error seen (with its code), else `result`'s.
    fn check(&mut self, subject: &str, result: io::Result<u64>) -> Result<()> {
        if let Some(err) = self.error.take() {
            return Err(classify_read_error(subject, &err));
        }
        result
            .map(|_| ())
            .map_err(|err| classify_read_error(subject, &err))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.sha.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                let kept = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(kept)
            }
        }
    }
}

/// A payload reader that checks the manifest digest when the data ends.
pub struct VerifiedReader<'a> {
    inner: EntryReader<'a, Box<dyn ReadSeek>>,
    sha: Sha256,
    want: String,
    done: bool,
}

impl Read for VerifiedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.sha.update(&buf[..n]);
        } else if !buf.is_empty() && !self.done {
            self.done = true;
            let got = hex::encode(self.sha.clone().finalize());
            let problem = if got != self.want {
                Some((
                    ErrorCode::DigestMismatch,
                    format!("SHA-256 is {got}, manifest says {}", self.want),
                ))
            } else {
                self.inner
                    .crc_problem()
                    .map(|d| (ErrorCode::CorruptData, d.to_string()))
            };
            if let Some((code, detail)) = problem {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    super::container::read::EntryDataError { code, detail },
                ));
            }
        }
        Ok(n)
    }
}
