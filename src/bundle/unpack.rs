//! `unpack`: a bundle → a browsable folder (spec §10.2). The bag lands in `DIR/<bag>/`, checked
//! while it is written; with an identity, secret values are opened into `DIR/secrets/` (folder
//! 0700, files 0600), outside the bag so the bag stays valid. Everything is written into a
//! fresh temporary folder inside `DIR` and renamed into place only when complete.

use super::digest::{pump, PumpError};
use super::error::{BundleError, ErrorCode, IoContext, Problems, Result};
use super::fsutil::{
    create_new_file, create_private_dir, create_private_file, is_empty_or_missing, sync_dir,
};
use super::reader::Bundle;
use super::seal::Opener;
use crate::hints::Hint;
use crate::model::Kind;
use serde::Serialize;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The folder, inside the target, that receives opened secret values.
pub const SECRETS_DIR: &str = "secrets";

/// What `unpack` produced.
#[derive(Debug, Clone, Serialize)]
pub struct UnpackSummary {
    /// The bag folder written.
    pub bag_dir: PathBuf,
    /// Where opened secret values went, if any were opened.
    pub secrets_dir: Option<PathBuf>,
    /// Files written into the bag folder.
    pub files: u64,
    /// Bytes written into the bag folder.
    pub bytes: u64,
    /// Secret values opened into the secrets folder.
    pub secrets_opened: u64,
    /// Sealed values left sealed (no identity given).
    pub sealed_left: u64,
}

/// Where a sealed value's plaintext goes, relative to the target:
/// `data/secrets/⟨scope⟩/values/⟨key⟩.age` → `secrets/⟨scope⟩/⟨key⟩`.
pub fn secret_output_path(stored: &str) -> Option<PathBuf> {
    let rest = stored.strip_prefix("data/secrets/")?;
    let (scope, file) = rest.split_once("/values/")?;
    let key = file.strip_suffix(".age")?;
    if scope.contains('/') || key.contains('/') {
        return None;
    }
    Some(Path::new(SECRETS_DIR).join(scope).join(key))
}

/// Unpacks `bundle` into `target`. Refuses a non-empty target unless `force` (which replaces
/// `target/<bag>` and `target/secrets` and leaves anything else there alone).
pub fn unpack(
    bundle: &Path,
    target: &Path,
    opener: Option<&Opener>,
    force: bool,
) -> std::result::Result<UnpackSummary, Problems> {
    unpack_with(bundle, target, opener, force, &mut UnpackOptions::default())
}

/// What an unpack will write, known before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UnpackPlan {
    /// Files and folders the bag holds.
    pub entries: u64,
    /// Bytes they declare (uncompressed).
    pub bytes: u64,
    /// Bytes the target's file system is counted as needing (sizes rounded up to blocks).
    pub needed: u64,
    /// Bytes free for this user on the target's file system, when known.
    pub available: Option<u64>,
}

/// Options of [`unpack_with`].
#[derive(Default)]
pub struct UnpackOptions<'a> {
    /// The free space, in bytes, to count on instead of asking the file system. For tests
    /// only: the free-space refusal cannot otherwise be tested without a small file system.
    pub free_space: Option<u64>,
    /// Told the plan once the bundle is checked and before anything is written (the CLI says
    /// how much a small bundle will expand to).
    pub announce: Option<&'a mut dyn FnMut(&UnpackPlan)>,
}

/// The start of the detail of the free-space refusal (E502), which has its own hint.
pub const NO_SPACE: &str = "not enough free space";

/// The hint of the free-space refusal: unpack checked before writing anything, so the user
/// can pick another folder.
pub(crate) fn specific_hint(e: &BundleError) -> Option<Hint> {
    (e.code() == ErrorCode::Io && e.detail().starts_with(NO_SPACE)).then_some(Hint::UnpackNoSpace)
}

/// Block size assumed when counting the space files take.
const BLOCK: u64 = 4096;

/// [`unpack`] with options. On any failure nothing is left behind: not the temporary tree,
/// not a target folder (or parents) this call created, and a `--force` replacement is undone.
pub fn unpack_with(
    bundle: &Path,
    target: &Path,
    opener: Option<&Opener>,
    force: bool,
    opts: &mut UnpackOptions<'_>,
) -> std::result::Result<UnpackSummary, Problems> {
    let tsubject = format!("folder {}", target.display());
    if !force && !is_empty_or_missing(target)? {
        return Err(BundleError::new(ErrorCode::TargetNotEmpty, &tsubject, "is not empty").into());
    }
    let mut b = Bundle::open_lean(bundle, opener)?;
    if b.bag_name() == SECRETS_DIR && opener.is_some_and(|o| !o.is_empty()) {
        return Err(BundleError::new(
            ErrorCode::TargetNotEmpty,
            format!("folder {}", target.join(SECRETS_DIR).display()),
            "the bag folder itself is named `secrets`, where opened values would go; unpack without --identity",
        )
        .into());
    }
    // Free space, from the declared sizes (§10.3: no entry yields more than it declares).
    // Sizes only: a copy of every entry's path would outlive this into the extraction.
    let entries: Vec<u64> = b
        .entry_order()
        .into_iter()
        .map(|i| b.entry_at(i).2)
        .collect();
    let bytes: u64 = entries.iter().sum();
    let secrets = b
        .inventory()
        .records
        .iter()
        .filter(|r| r.kind == Kind::Secret && r.sealed)
        .count() as u64;
    let needed = entries
        .iter()
        .map(|size| size.div_ceil(BLOCK).max(1) * BLOCK)
        .sum::<u64>()
        + secrets * BLOCK;
    let available = opts.free_space.or_else(|| free_space(target));
    let plan = UnpackPlan {
        entries: entries.len() as u64,
        bytes,
        needed,
        available,
    };
    if let Some(f) = opts.announce.as_mut() {
        f(&plan);
    }
    if let Some(free) = available.filter(|free| *free < needed) {
        return Err(BundleError::new(
            ErrorCode::Io,
            &tsubject,
            format!(
                "{NO_SPACE}: the bundle expands to {bytes} bytes in {} entries (about {needed} bytes on disk) and the file system has {free} bytes free",
                entries.len()
            ),
        )
        .into());
    }
    drop(entries);

    // Folders this call creates (outermost first), removed again if anything fails.
    let mut created = Vec::new();
    let mut p = target.to_path_buf();
    while p.symlink_metadata().is_err() {
        created.push(p.clone());
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent.to_path_buf(),
            _ => break,
        }
    }
    created.reverse();
    let undo_created = |created: &[PathBuf]| {
        for d in created.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    };
    if let Err(e) = fs::create_dir_all(target).ctx(&tsubject) {
        undo_created(&created);
        return Err(e.into());
    }
    let tmp = match tempfile::Builder::new()
        .prefix(".dbxport-unpack.")
        .tempdir_in(target)
        .ctx(&tsubject)
    {
        // Removed by `remove_tree`, not by TempDir's drop: that holds one descriptor per level
        // and gives up on a deep tree.
        Ok(t) => t.keep(),
        Err(e) => {
            undo_created(&created);
            return Err(e.into());
        }
    };
    let result = place(&mut b, target, &tmp, opener, force);
    drop(b);
    let cleaned = remove_tree(&tmp).ctx(format!("folder {}", tmp.display()));
    match result {
        Ok(summary) => {
            cleaned?;
            Ok(summary)
        }
        Err(e) => {
            undo_created(&created);
            Err(e.into())
        }
    }
}

/// Extracts into `tmp` and moves the result into `target`; on failure, undoes the moves.
fn place(
    b: &mut Bundle,
    target: &Path,
    tmp: &Path,
    opener: Option<&Opener>,
    force: bool,
) -> Result<UnpackSummary> {
    let summary = extract(b, tmp, opener)?;
    let bag = b.bag_name().to_string();
    // Move the finished tree into place.
    let mut placed: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let step = |name: &str, placed: &mut Vec<(PathBuf, Option<PathBuf>)>| -> Result<()> {
        let from = tmp.join(name);
        if !from.exists() {
            return Ok(());
        }
        let to = target.join(name);
        let mut old = None;
        if to.symlink_metadata().is_ok() {
            if !force {
                return Err(BundleError::new(
                    ErrorCode::TargetNotEmpty,
                    format!("folder {}", to.display()),
                    "already exists",
                ));
            }
            let o = tmp.join(format!(".old-{name}"));
            fs::rename(&to, &o).ctx(format!("folder {}", to.display()))?;
            old = Some(o);
        }
        if let Err(e) = fs::rename(&from, &to).ctx(format!("folder {}", to.display())) {
            if let Some(o) = old {
                let _ = fs::rename(o, &to);
            }
            return Err(e);
        }
        placed.push((to, old));
        Ok(())
    };
    let moved = step(&bag, &mut placed)
        .and_then(|_| step(SECRETS_DIR, &mut placed))
        .and_then(|_| sync_dir(target));
    if let Err(e) = moved {
        for (to, old) in placed.into_iter().rev() {
            let _ = remove_tree(&to);
            if let Some(o) = old {
                let _ = fs::rename(o, &to);
            }
        }
        return Err(e);
    }
    Ok(UnpackSummary {
        bag_dir: target.join(&bag),
        secrets_dir: (summary.secrets_opened > 0).then(|| target.join(SECRETS_DIR)),
        ..summary
    })
}

/// Free bytes for an unprivileged user on the file system that holds `path` (or would: the
/// nearest existing ancestor is asked).
fn free_space(path: &Path) -> Option<u64> {
    let mut p = path;
    loop {
        if p.exists() {
            break;
        }
        p = p.parent().filter(|q| !q.as_os_str().is_empty())?;
    }
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(p).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Removes the tree at `root` without a path longer than the root's and with at most three
/// descriptors open: it walks down one folder at a time and back up through `..`, so a tree
/// deeper than `PATH_MAX` or than the descriptor limit is removed all the same.
#[cfg(unix)]
pub fn remove_tree(root: &Path) -> std::io::Result<()> {
    use rustix::fs::{openat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, CWD};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match root.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => return fs::remove_file(root),
        Ok(_) => {}
    }
    let mut names: Vec<std::ffi::CString> = Vec::new();
    let mut fd = openat(CWD, root, flags, Mode::empty())?;
    loop {
        let mut sub = None;
        for entry in Dir::read_from(&fd)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                FileType::Unknown => rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)?,
                _ => false,
            };
            if is_dir {
                sub = Some(name.to_owned());
                break;
            }
            unlinkat(&fd, name, AtFlags::empty())?;
        }
        if let Some(name) = sub {
            fd = openat(&fd, name.as_c_str(), flags, Mode::empty())?;
            names.push(name);
            continue;
        }
        let Some(name) = names.pop() else { break };
        fd = openat(&fd, c"..", flags, Mode::empty())?;
        unlinkat(&fd, name.as_c_str(), AtFlags::REMOVEDIR)?;
    }
    drop(fd);
    fs::remove_dir(root)
}

/// Removes the tree at `root`.
#[cfg(not(unix))]
pub fn remove_tree(root: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn extract(b: &mut Bundle, root: &Path, opener: Option<&Opener>) -> Result<UnpackSummary> {
    let bag = b.bag_name().to_string();
    let bag_root = root.join(&bag);
    fs::create_dir(&bag_root).ctx(format!("folder {}", bag_root.display()))?;
    // Entries by index and digests looked up one at a time: a copy of every path and of the
    // manifest was half of what unpack held per object (issue #15).
    let mut files = 0u64;
    let mut bytes = 0u64;
    for i in b.entry_order() {
        let (rel, dir, size) = b.entry_at(i);
        if rel.is_empty() {
            continue;
        }
        // Names passed §3.2 and §7 when the bundle was opened; join component by component.
        let mut dest = bag_root.clone();
        for c in rel.trim_end_matches('/').split('/') {
            dest.push(c);
        }
        let subject = format!("file {}", dest.display());
        if dir {
            fs::create_dir_all(&dest).ctx(&subject)?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).ctx(&subject)?;
        }
        let want = if rel.starts_with("data/") {
            b.manifest_digest(&rel)
        } else {
            b.tag_digests().get(&rel).cloned()
        };
        let Some(want) = want else {
            return Err(BundleError::new(
                ErrorCode::Unlisted,
                format!("entry {rel}"),
                "not listed in any manifest",
            ));
        };
        let f = create_new_file(&dest)?;
        let mut w = BufWriter::with_capacity(super::digest::BUF, f);
        let entry_subject = format!("entry {rel}");
        let mut r = b.open_raw(&rel)?;
        r.defer_crc_check();
        let pumped = pump(&mut r, size, &mut |chunk| w.write_all(chunk)).map_err(|e| match e {
            PumpError::Read(e) => super::container::read::classify_read_error(&entry_subject, &e),
            PumpError::Write(e) => BundleError::io(&subject, &e),
        })?;
        let crc_problem = r.crc_problem().map(str::to_string);
        drop(r);
        w.flush().ctx(&subject)?;
        if pumped.hex() != want {
            let code = if rel.starts_with("data/") {
                ErrorCode::DigestMismatch
            } else {
                ErrorCode::TagDigestMismatch
            };
            return Err(BundleError::new(
                code,
                entry_subject,
                format!("SHA-256 is {}, expected {want}", pumped.hex()),
            ));
        }
        if let Some(crc) = crc_problem {
            return Err(BundleError::new(ErrorCode::CorruptData, entry_subject, crc));
        }
        files += 1;
        bytes += pumped.bytes;
    }
    let mut secrets_opened = 0u64;
    let mut sealed_left = 0u64;
    let records: Vec<_> = b
        .inventory()
        .records
        .iter()
        .filter(|r| r.kind == Kind::Secret && r.sealed)
        .cloned()
        .collect();
    match opener.filter(|o| !o.is_empty()) {
        None => sealed_left = records.len() as u64,
        Some(op) => {
            for r in &records {
                let Some(rel) = secret_output_path(&r.stored[0]) else {
                    return Err(BundleError::new(
                        ErrorCode::RecordMismatch,
                        format!("secret {}", r.name),
                        format!(
                            "stored path {} is not under data/secrets/…/values/",
                            r.stored[0]
                        ),
                    ));
                };
                let plain = b.unseal(r, op)?;
                let dest = root.join(&rel);
                if let Some(parent) = dest.parent() {
                    create_private_dir(&root.join(SECRETS_DIR))?;
                    create_private_dir(parent)?;
                }
                let mut f = create_private_file(&dest)?;
                f.write_all(&plain)
                    .and_then(|_| f.sync_all())
                    .ctx(format!("file {}", dest.display()))?;
                secrets_opened += 1;
            }
        }
    }
    Ok(UnpackSummary {
        bag_dir: bag_root,
        secrets_dir: None,
        files,
        bytes,
        secrets_opened,
        sealed_left,
    })
}
