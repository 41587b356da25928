//! Full verification (spec §10.1, all steps): structure, tag files, inventory, manifests, every
//! payload digest, and — with an identity — every sealed value against its sealed digest.
//! The result is a report that names every failing entry with its code.

use super::container::ZipEntry;
use super::error::{BundleError, ErrorCode, ProblemList, Result};
use super::readback::Checked;
use super::reader::{Bundle, ReadSeek, Scan};
use super::seal::Opener;
use crate::model::Kind;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The bundle's path.
    pub bundle: String,
    /// True when no problem was found.
    pub ok: bool,
    /// True when the bundle was wrapped in an age envelope.
    pub envelope: bool,
    /// The bag folder name.
    pub bag: Option<String>,
    /// The bundle id.
    pub bundle_id: Option<String>,
    /// The format version.
    pub format_version: Option<String>,
    /// Zip entries.
    pub entries: u64,
    /// Payload files checked.
    pub payload_files: u64,
    /// Payload bytes checked.
    pub payload_bytes: u64,
    /// Sealed files in the bundle.
    pub sealed_files: u64,
    /// Sealed files opened and checked (0 without an identity).
    pub sealed_opened: u64,
    /// Every problem found, with its code.
    pub problems: Vec<BundleError>,
}

/// Verifies the bundle at `path`. `Err` only when it cannot be read at all (missing file, an
/// envelope without a matching identity); problems in the bundle are in the report.
pub fn verify_file(path: &Path, opener: Option<&Opener>) -> Result<VerifyReport> {
    verify_file_with_progress(path, opener, &mut |_, _| {})
}

/// Like [`verify_file`], reporting `(bytes done, bytes total)` as payload is checked.
pub fn verify_file_with_progress(
    path: &Path,
    opener: Option<&Opener>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport> {
    // `scan` fails only when the file cannot be read or its envelope cannot be opened.
    let scan = Bundle::scan_lean(path, opener)?;
    Ok(finish(
        path.display().to_string(),
        scan,
        opener,
        progress,
        &mut no_skip,
    )
    .0)
}

/// Every payload entry's data is read.
fn no_skip(_: &ZipEntry, _: &[u8; 32]) -> bool {
    false
}

/// [`verify_file`] for a bundle this process has just written while reading each entry back
/// ([`super::readback`]): all of §10.1 steps 2–6, except that the data of a payload entry
/// already read back at the offset, size and CRC-32 the central directory gives, with the
/// SHA-256 the manifest gives, is not read a second time.
pub(crate) fn verify_written(path: &Path, read_back: &Checked) -> Result<VerifyReport> {
    let scan = Bundle::scan_lean(path, None)?;
    // The read-back is matched by where the entry's data lies: it vouches for those bytes,
    // whatever the entry that points at them is called.
    let mut skip = |e: &ZipEntry, want: &[u8; 32]| {
        e.data_start()
            .and_then(|at| read_back.at(at))
            .is_some_and(|c| {
                c.compressed == e.compressed
                    && c.size == e.size
                    && c.method == e.method
                    && c.crc == e.crc
                    && c.sha256 == *want
            })
    };
    Ok(finish(
        path.display().to_string(),
        scan,
        None,
        &mut |_, _| {},
        &mut skip,
    )
    .0)
}

/// Opens the bundle at `path` for a command that acts on it — `import`, `plan`, `diff`,
/// `models import` — after exactly the checks of `verify` (with `opener`, `verify --identity`):
/// every problem `verify` would report refuses the bundle, before anything reads the target
/// or writes to it. `Err` lists every problem (or the one reason the file could not be read).
pub fn open_verified(
    path: &Path,
    opener: Option<&Opener>,
    progress: &mut dyn FnMut(u64, u64),
) -> std::result::Result<(Bundle, VerifyReport), Vec<BundleError>> {
    open_verified_scan(path, opener, progress, false)
}

/// [`open_verified`], keeping the records lean as `verify` does ([`Bundle::scan_lean`]): for a
/// command that reads what it needs of each record itself as the inventory streams again
/// ([`super::inventory::Inventory::for_each_record`]) — `import`, `plan` and `diff` (issue
/// #15). The checks and problems are the same.
pub fn open_verified_lean(
    path: &Path,
    opener: Option<&Opener>,
    progress: &mut dyn FnMut(u64, u64),
) -> std::result::Result<(Bundle, VerifyReport), Vec<BundleError>> {
    open_verified_scan(path, opener, progress, true)
}

fn open_verified_scan(
    path: &Path,
    opener: Option<&Opener>,
    progress: &mut dyn FnMut(u64, u64),
    lean: bool,
) -> std::result::Result<(Bundle, VerifyReport), Vec<BundleError>> {
    let scan = if lean {
        Bundle::scan_lean(path, opener)
    } else {
        Bundle::scan(path, opener)
    }
    .map_err(|e| vec![e])?;
    match finish(
        path.display().to_string(),
        scan,
        opener,
        progress,
        &mut no_skip,
    ) {
        (report, Some(b)) if report.ok => Ok((b, report)),
        (report, _) if !report.problems.is_empty() => Err(report.problems),
        _ => Err(vec![BundleError::new(
            ErrorCode::NotAZip,
            path.display().to_string(),
            "could not be read",
        )]),
    }
}

/// Verifies an already opened plaintext zip (used to check an envelope's contents).
pub fn verify_source(
    src: Box<dyn ReadSeek>,
    label: String,
    envelope: bool,
    opener: Option<&Opener>,
) -> VerifyReport {
    let scan = Bundle::scan_source_with(src, label.clone(), envelope, true);
    finish(label, scan, opener, &mut |_, _| {}, &mut no_skip).0
}

/// The rest of §10.1 after the scan. `already_read(entry, manifest digest)` names payload
/// entries whose data needs no second reading.
fn finish(
    label: String,
    scan: Scan,
    opener: Option<&Opener>,
    progress: &mut dyn FnMut(u64, u64),
    already_read: &mut dyn FnMut(&ZipEntry, &[u8; 32]) -> bool,
) -> (VerifyReport, Option<Bundle>) {
    let mut problems = scan.problems;
    let mut report = VerifyReport {
        bundle: label,
        ok: false,
        envelope: scan.envelope,
        bag: None,
        bundle_id: None,
        format_version: None,
        entries: 0,
        payload_files: 0,
        payload_bytes: 0,
        sealed_files: 0,
        sealed_opened: 0,
        problems: Vec::new(),
    };
    let mut bundle = scan.bundle;
    if let Some(b) = bundle.as_mut() {
        report.bag = Some(b.bag_name().to_string());
        report.entries = b.entry_count() as u64;
        if b.has_inventory() {
            let inv = b.inventory();
            report.bundle_id = Some(inv.bundle_id.clone());
            report.format_version = Some(inv.format_version.clone());
            report.sealed_files = inv
                .views()
                .map(|r| r.stored.iter().filter(|p| p.ends_with(".age")).count() as u64)
                .sum();
        }
        report.payload_files = b.payload_files();
        report.payload_bytes = b.payload_bytes();
        let total = report.payload_bytes;
        b.verify_payload(
            &mut |done| progress(done, total),
            already_read,
            &mut problems,
        );
        if let Some(op) = opener.filter(|o| !o.is_empty()) {
            if b.has_inventory() {
                let (opened, p) = verify_sealed(b, op);
                report.sealed_opened = opened;
                problems.extend(p);
            }
        }
    }
    // The list drops repeats: a damaged entry is reported once per cause.
    report.ok = problems.is_empty();
    report.problems = problems.into_vec();
    (report, bundle)
}

/// §10.1 step 7, as `verify --identity` runs it: opens every sealed file and checks secret
/// values against their sealed digests and the digest index against the records (§8.2).
/// Returns how many sealed files were opened and every problem. An importer given an identity
/// only after opening the bundle runs this before its first write.
pub fn verify_sealed(b: &mut Bundle, opener: &Opener) -> (u64, Vec<BundleError>) {
    let mut problems = ProblemList::new();
    let mut opened = 0u64;
    // Records are named by index and copied one at a time (the bundle is borrowed mutably to
    // read them): a copy of every sealed record at once doubled what a hostile inventory cost.
    let inv = b.inventory();
    let mut keys_by_scope: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut scopes, mut sealed) = (Vec::new(), Vec::new());
    for (i, r) in inv.records.iter().enumerate() {
        if r.kind == Kind::SecretScope {
            scopes.push(i);
        } else if r.sealed {
            sealed.push(i);
            if let (Kind::Secret, Some(scope), Some(key)) =
                (r.kind, r.meta_str("scope"), r.meta_str("key"))
            {
                keys_by_scope
                    .entry(scope.to_string())
                    .or_default()
                    .insert(key.to_string());
            }
        }
    }
    let none = BTreeSet::new();
    for i in scopes {
        let scope = b.inventory().records[i].clone();
        let sealed_keys = keys_by_scope.get(&scope.name).unwrap_or(&none);
        let has_index = scope.stored.iter().any(|p| p.ends_with(".json.age"));
        if sealed_keys.is_empty() && !has_index {
            continue;
        }
        match b.sealed_index(&scope, opener) {
            Ok(index) => {
                opened += 1;
                for k in index.values.keys() {
                    if !sealed_keys.contains(k) {
                        problems.push(BundleError::new(
                            ErrorCode::SealedIndex,
                            format!("secret scope {}", scope.name),
                            format!("sealed digest index lists {k:?}, which has no sealed value"),
                        ));
                    }
                }
            }
            Err(e) => problems.push(e),
        }
    }
    for i in sealed {
        let r = b.inventory().records[i].clone();
        if r.kind == Kind::Secret {
            match b.unseal(&r, opener) {
                Ok(_) => opened += 1,
                Err(e) => problems.push(e),
            }
            continue;
        }
        // Sealed files of other kinds (none in 1.0) are opened to prove they open.
        let path = r.stored[0].clone();
        match b.read_payload(&path, super::seal::MAX_SEALED_IN_MEMORY) {
            Ok(bytes) => match opener.open(&bytes, &format!("entry {path}")) {
                Ok(_) => opened += 1,
                Err(e) => problems.push(e),
            },
            Err(e) => problems.push(e),
        }
    }
    (opened, problems.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::readback::CheckedEntry;
    use crate::bundle::resource::{Content, Resource};
    use crate::bundle::{write_bundle, BagSettings, Source};

    /// A written bundle whose one payload file is then damaged on disk, with what a read-back
    /// of the undamaged file would have recorded.
    fn damaged() -> (tempfile::TempDir, std::path::PathBuf, CheckedEntry) {
        let settings = BagSettings::new(
            Source {
                host: "https://example.invalid".into(),
                workspace_id: "7".into(),
            },
            serde_json::json!({}),
        );
        let info = serde_json::from_value(serde_json::json!({
            "object_type": "FILE", "path": "/Shared/x.bin", "object_id": 1
        }))
        .unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| ((i * 7919) >> 5) as u8).collect();
        let r = Resource::workspace_file(&info, Content::Bytes(data.clone()));
        let (zip, _) = write_bundle(Vec::new(), &settings, None, vec![r], BTreeMap::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.zip");
        let mut src = std::io::Cursor::new(zip.clone());
        let index = super::super::container::read_index(&mut src).unwrap();
        let e = index
            .entries
            .iter()
            .find(|e| index.name(e).ends_with("x.bin"))
            .unwrap()
            .clone();
        let start = e.data_start().unwrap();
        let checked = CheckedEntry {
            data_start: start,
            compressed: e.compressed,
            size: e.size,
            method: e.method,
            crc: e.crc,
            sha256: super::super::digest::hash_all(&mut &data[..])
                .unwrap()
                .sha256,
        };
        let mut bad = zip;
        bad[start as usize + 50] ^= 1;
        std::fs::write(&path, bad).unwrap();
        (dir, path, checked)
    }

    /// Data the read-back vouches for, at the place and with the digest the bundle gives, is
    /// not read again (the damage made after it was read back goes unseen, which is the point:
    /// it was read once, from the disk); anything else about the entry differing sends it
    /// through the full check, which finds the damage.
    #[test]
    fn only_data_read_back_at_the_same_place_with_the_same_digest_is_skipped() {
        let (_dir, path, c) = damaged();
        let vouched = Checked::from([c]);
        assert!(verify_written(&path, &vouched).unwrap().ok);
        let variants = [
            CheckedEntry {
                data_start: c.data_start + 1,
                ..c
            },
            CheckedEntry {
                crc: c.crc ^ 1,
                ..c
            },
            CheckedEntry {
                sha256: [0; 32],
                ..c
            },
            CheckedEntry {
                compressed: c.compressed - 1,
                ..c
            },
        ];
        for v in variants {
            let report = verify_written(&path, &Checked::from([v])).unwrap();
            assert!(!report.ok, "{v:?}");
        }
        assert!(!verify_written(&path, &Checked::new()).unwrap().ok);
        assert!(!verify_file(&path, None).unwrap().ok);
    }
}
