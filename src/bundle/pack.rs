//! `pack`: a bag folder on disk → a bundle zip, deterministically (spec §3.6, §9), refusing a
//! bag whose files differ from its manifests. The zip goes out through
//! `writer::write_verified`, the output path every command shares (§11: verified
//! before it is renamed into place). The inverse of [`super::unpack()`]: unpack then pack
//! gives the same bytes.

use super::bagit::{
    check_bagit_txt, is_bag_name, ManifestLines, BAGIT_FILE, BAG_INFO_FILE, MANIFEST_FILE,
    TAG_MANIFEST_FILE,
};
use super::container::ZipWriter;
use super::error::{BundleError, ErrorCode, IoContext, Problems, Result};
use super::inventory::{Inventory, INVENTORY_FILE};
use super::resource::Content;
use super::seal::Sealer;
use super::writer::{open_content, write_file_entry, write_verified};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use unicode_normalization::UnicodeNormalization;

/// How to pack.
#[derive(Default)]
pub struct PackOptions {
    /// Wrap the zip in an age envelope to these recipients (§8.4).
    pub envelope: Option<Sealer>,
    /// Replace an existing output file.
    pub replace: bool,
}

/// What `pack` produced.
#[derive(Debug, Clone, Serialize)]
pub struct PackSummary {
    /// The bundle written.
    pub output: PathBuf,
    /// The bag folder name.
    pub bag: String,
    /// The bundle id.
    pub bundle_id: String,
    /// Zip entries.
    pub entries: u64,
    /// Payload files.
    pub payload_files: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
    /// Size of the output file.
    pub bytes: u64,
    /// True when wrapped in an age envelope.
    pub envelope: bool,
}

/// Finds the bag in `dir`: `dir` itself when it holds `bagit.txt`, else its one subfolder that
/// does (as `dbxport unpack` leaves it, next to `secrets/`).
pub fn find_bag(dir: &Path) -> Result<PathBuf> {
    let subject = format!("folder {}", dir.display());
    if dir.join(BAGIT_FILE).is_file() {
        return Ok(dir.to_path_buf());
    }
    if dir.join(super::builder::STAGING_DIR).is_dir() {
        return Err(BundleError::new(
            ErrorCode::NotABag,
            subject,
            "holds a staged export that was not finalized (finish or resume the export first)",
        ));
    }
    let mut found = Vec::new();
    for e in fs::read_dir(dir).ctx(&subject)? {
        let p = e.ctx(&subject)?.path();
        if p.is_dir() && p.join(BAGIT_FILE).is_file() {
            found.push(p);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(BundleError::new(
            ErrorCode::NotABag,
            subject,
            "holds no bag (no bagit.txt in it or in a folder inside it)",
        )),
        n => Err(BundleError::new(
            ErrorCode::NotABag,
            subject,
            format!("holds {n} bags; give the one to pack"),
        )),
    }
}

/// A file or folder of the bag folder, kept small (issue #15): its name is in the walk's
/// arena, and its path on disk is the bag folder joined with that name, unless normalization
/// changed the name ([`Walk::raw`]).
#[derive(Clone, Copy)]
struct Item {
    /// The digest its manifest lists, once read (when `listed`).
    want: [u8; 32],
    size: u64,
    /// Where the (NFC, `/`-separated) name starts in [`Walk::names`]; folders end in `/`.
    name_at: usize,
    name_len: u32,
    dir: bool,
    listed: bool,
}

impl Item {
    fn want(&self) -> Option<[u8; 32]> {
        self.listed.then_some(self.want)
    }
}

/// The bag folder as found on disk: every file and folder once, sorted by name — the order of
/// the zip's entries (§3.6), so the same list is written as it is. One vector and one arena of
/// names (a map of every name, and then a second list of every entry, were most of what pack
/// held per file).
struct Walk {
    root: PathBuf,
    names: String,
    items: Vec<Item>,
    /// Names on disk that normalization changed, by their normalized name.
    raw: BTreeMap<String, Box<Path>>,
}

impl Walk {
    fn name(&self, item: &Item) -> &str {
        &self.names[item.name_at..item.name_at + item.name_len as usize]
    }

    /// The file named `rel`.
    fn file(&self, rel: &str) -> Option<usize> {
        self.items
            .binary_search_by(|i| self.name(i).cmp(rel))
            .ok()
            .filter(|i| !self.items[*i].dir)
    }

    /// Where the file `rel` is on disk.
    fn path(&self, rel: &str) -> PathBuf {
        match self.raw.get(rel) {
            Some(raw) => self.root.join(raw),
            None => self.root.join(rel),
        }
    }

    fn add(&mut self, rel: &str, dir: bool, size: u64) {
        let name_at = self.names.len();
        self.names.push_str(rel);
        self.items.push(Item {
            want: [0; 32],
            size,
            name_at,
            name_len: rel.len() as u32,
            dir,
            listed: false,
        });
    }
}

/// Walks the bag folder. Problems with what is found (names, links, special files) are pushed
/// in the order found, then one per folder beside `data/`.
fn walk(bag_dir: &Path, problems: &mut Vec<BundleError>) -> Result<Walk> {
    let mut w = Walk {
        root: bag_dir.to_path_buf(),
        names: String::new(),
        items: Vec::new(),
        raw: BTreeMap::new(),
    };
    // The bag folder itself and data/ are entries whether or not they are on disk.
    w.add("", true, 0);
    w.add("data/", true, 0);
    let mut beside_data = Vec::new();
    for e in walkdir::WalkDir::new(bag_dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let e = e.map_err(|err| {
            BundleError::io(
                format!("folder {}", bag_dir.display()),
                &io::Error::other(err.to_string()),
            )
        })?;
        let rel_os = e.path().strip_prefix(bag_dir).expect("below the bag");
        let Some(rel) = rel_os.to_str() else {
            problems.push(BundleError::new(
                ErrorCode::UnsafeName,
                format!("file {}", e.path().display()),
                "name is not UTF-8",
            ));
            continue;
        };
        let rel: String = rel.replace(std::path::MAIN_SEPARATOR, "/").nfc().collect();
        let ft = e.file_type();
        if ft.is_symlink() {
            problems.push(BundleError::new(
                ErrorCode::NotRegular,
                format!("entry {rel}"),
                "a symbolic link (bags hold only regular files and folders)",
            ));
        } else if ft.is_dir() {
            let d = format!("{rel}/");
            let top = d.split('/').next().unwrap_or("");
            // One report per folder beside data/ (not one per file inside it).
            if top != "data" && d.matches('/').count() == 1 {
                beside_data.push(BundleError::new(
                    ErrorCode::Unlisted,
                    format!("entry {d}"),
                    if top == super::builder::STAGING_DIR {
                        "a staged export that was not finalized (finish the export first)"
                    } else {
                        "a folder outside data/"
                    },
                ));
            }
            w.add(&d, true, 0);
        } else if ft.is_file() {
            let size = e
                .metadata()
                .map_err(|err| {
                    BundleError::io(
                        format!("file {}", e.path().display()),
                        &io::Error::other(err.to_string()),
                    )
                })?
                .len();
            if Path::new(&rel) != rel_os {
                w.raw.insert(rel.clone(), rel_os.into());
            } else {
                w.raw.remove(&rel);
            }
            w.add(&rel, false, size);
        } else {
            problems.push(BundleError::new(
                ErrorCode::NotRegular,
                format!("entry {rel}"),
                "a special file (bags hold only regular files and folders)",
            ));
        }
    }
    problems.extend(beside_data);
    // Sorted by name, each name once; of two files whose names normalize alike, the later
    // found is kept (its size, and its name on disk in `raw`).
    let Walk { names, items, .. } = &mut w;
    let name = |i: &Item| &names[i.name_at..i.name_at + i.name_len as usize];
    items.sort_by(|a, b| name(a).cmp(name(b)));
    items.dedup_by(|later, kept| {
        let same = name(later) == name(kept);
        if same && !later.dir {
            *kept = *later;
        }
        same
    });
    Ok(w)
}

fn read_tag(
    w: &Walk,
    name: &str,
    code: ErrorCode,
    problems: &mut Vec<BundleError>,
) -> Option<Vec<u8>> {
    match w.file(name) {
        None => {
            problems.push(BundleError::new(code, format!("entry {name}"), "missing"));
            None
        }
        Some(_) => {
            let path = w.path(name);
            match fs::read(&path) {
                Ok(b) => Some(b),
                Err(e) => {
                    problems.push(BundleError::io(format!("file {}", path.display()), &e));
                    None
                }
            }
        }
    }
}

/// A reader that keeps its first error (the parser above it only sees that reading failed).
struct KeepError<'a, R> {
    inner: R,
    error: &'a mut Option<io::Error>,
}

impl<R: io::Read> io::Read for KeepError<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.error.is_none() {
                *self.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// Parses the manifest `file` (its bytes `b`) and notes each digest on the file it lists.
/// Returns the listed paths that are not in the folder (sorted), or `None` when the manifest
/// is refused (the problem is pushed; no digest of it stays noted, so its files are unlisted).
fn note_digests(
    w: &mut Walk,
    b: &[u8],
    file: &str,
    problems: &mut Vec<BundleError>,
) -> Option<BTreeSet<String>> {
    let payload = file == MANIFEST_FILE;
    let code = if payload {
        ErrorCode::Manifest
    } else {
        ErrorCode::TagManifest
    };
    let mut missing = BTreeSet::new();
    let mut lines = ManifestLines::new(file, code, payload);
    for raw in b.split(|c| *c == b'\n') {
        lines.line(raw, &mut |path, digest| match w.file(path) {
            Some(i) => {
                let f = &mut w.items[i];
                f.want = digest;
                !std::mem::replace(&mut f.listed, true)
            }
            None => missing.insert(path.to_string()),
        });
    }
    match lines.finish() {
        Ok(()) => Some(missing),
        Err(e) => {
            problems.push(e);
            // The payload manifest lists only `data/…`, the tag manifest only top-level names.
            let Walk { names, items, .. } = w;
            for f in items.iter_mut().filter(|f| !f.dir) {
                let rel = &names[f.name_at..f.name_at + f.name_len as usize];
                let listable = if payload {
                    rel.starts_with("data/")
                } else {
                    !rel.contains('/')
                };
                if listable {
                    f.listed = false;
                }
            }
            None
        }
    }
}

/// Packs the bag in `dir` (see [`find_bag`]) into the bundle `out`. Every difference between
/// the bag's files and its manifests is reported, each with its code; nothing is written then.
pub fn pack(
    dir: &Path,
    out: &Path,
    opts: &PackOptions,
) -> std::result::Result<PackSummary, Problems> {
    let bag_dir = find_bag(dir)?;
    let bag = bag_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    if !is_bag_name(&bag) {
        return Err(BundleError::new(
            ErrorCode::NotABag,
            format!("folder {}", bag_dir.display()),
            "the bag folder's name must be letters, digits, `.`, `_` and `-` (rename it)",
        )
        .into());
    }
    if !opts.replace && out.exists() {
        return Err(BundleError::new(
            ErrorCode::TargetNotEmpty,
            format!("file {}", out.display()),
            "already exists",
        )
        .into());
    }
    let mut problems = Vec::new();
    let mut w = walk(&bag_dir, &mut problems)?;
    if let Some(b) = read_tag(&w, BAGIT_FILE, ErrorCode::BagitDeclaration, &mut problems) {
        if let Err(e) = check_bagit_txt(&b) {
            problems.push(e);
        }
    }
    let manifest = read_tag(&w, MANIFEST_FILE, ErrorCode::Manifest, &mut problems)
        .and_then(|b| note_digests(&mut w, &b, MANIFEST_FILE, &mut problems));
    let tag_manifest = read_tag(&w, TAG_MANIFEST_FILE, ErrorCode::TagManifest, &mut problems)
        .and_then(|b| note_digests(&mut w, &b, TAG_MANIFEST_FILE, &mut problems));
    let _ = read_tag(&w, BAG_INFO_FILE, ErrorCode::BagInfo, &mut problems);
    // Only the bundle id is needed here (the final verification checks every record): the
    // inventory, as large as the workspace, is parsed lean as it streams from the disk, and
    // nothing else of it is kept while the bundle is written (issue #15).
    let inventory = match w.file(INVENTORY_FILE) {
        None => {
            problems.push(BundleError::new(
                ErrorCode::InventorySyntax,
                format!("entry {INVENTORY_FILE}"),
                "missing",
            ));
            None
        }
        Some(_) => {
            let path = w.path(INVENTORY_FILE);
            let mut error = None;
            let parsed = fs::File::open(&path).map(|file| {
                let r = KeepError {
                    inner: io::BufReader::with_capacity(super::digest::BUF, file),
                    error: &mut error,
                };
                Inventory::from_reader_lean(r, &Default::default())
            });
            match (parsed, error) {
                (Err(e), _) | (Ok(_), Some(e)) => {
                    problems.push(BundleError::io(format!("file {}", path.display()), &e));
                    None
                }
                (Ok(Ok(i)), None) => Some(i.bundle_id),
                (Ok(Err(e)), None) => {
                    problems.push(e);
                    None
                }
            }
        }
    };
    if w.file("fetch.txt").is_some() {
        problems.push(BundleError::new(
            ErrorCode::FetchFile,
            "entry fetch.txt",
            "a bundle must carry all its bytes",
        ));
    }
    // Files against manifests: what is on disk must be exactly what they list.
    for (missing, file) in [(manifest, MANIFEST_FILE), (tag_manifest, TAG_MANIFEST_FILE)] {
        for p in missing.iter().flatten() {
            problems.push(BundleError::new(
                ErrorCode::Missing,
                format!("entry {p}"),
                format!("listed in {file} but not in the folder"),
            ));
        }
    }
    for f in w.items.iter().filter(|f| !f.dir) {
        let rel = w.name(f);
        if rel.contains('/') && !rel.starts_with("data/") {
            continue;
        }
        let listed = rel == TAG_MANIFEST_FILE || f.listed;
        if !listed {
            let which = if rel.starts_with("data/") {
                "manifest-sha256.txt"
            } else {
                "tagmanifest-sha256.txt"
            };
            problems.push(BundleError::new(
                ErrorCode::Unlisted,
                format!("entry {rel}"),
                format!("not listed in {which}"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let bundle_id = inventory.expect("parsed when there are no problems");

    let (payload_files, payload_bytes) = w
        .items
        .iter()
        .filter(|f| !f.dir && w.name(f).starts_with("data/"))
        .fold((0u64, 0u64), |(n, b), f| (n + 1, b + f.size));
    let prefix = format!("{bag}/");
    // Every file is listed under the digest its manifest gives and written without hashing it
    // here: the read-back of `write_verified` hashes it where it lands and refuses the bundle
    // (E206, E208) when the folder's bytes differ from its manifests. The walk is moved into
    // the writing step and dropped when it returns, before the final verification reads the
    // bundle back: pack's peak is the larger of the two, not their sum (issue #15).
    let write_zip =
        move |zip: &mut ZipWriter<&mut dyn Write>| -> std::result::Result<u64, Problems> {
            let w = w;
            // The walk is the canonical entry list (§3.6), each name made whole as it is written.
            zip.reserve(w.items.len(), w.items.len() * prefix.len() + w.names.len());
            let mut name = String::new();
            for f in &w.items {
                let rel = w.name(f);
                name.clear();
                name.push_str(&prefix);
                name.push_str(rel);
                if f.dir {
                    zip.add_dir(&name).ctx(format!("entry {name}"))?;
                } else {
                    let (sample, rest) = open_content(Content::File(w.path(rel)))?;
                    let known = f.want().map(hex::encode);
                    write_file_entry(zip, &name, f.size, sample, rest, known.as_deref())?;
                }
            }
            Ok(w.items.len() as u64)
        };

    let (entries, bytes) = write_verified(out, opts.envelope.as_ref(), opts.replace, write_zip)?;
    Ok(PackSummary {
        output: out.to_path_buf(),
        bag,
        bundle_id,
        entries,
        payload_files,
        payload_bytes,
        bytes,
        envelope: opts.envelope.is_some(),
    })
}
