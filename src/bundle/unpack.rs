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
    let tsubject = format!("folder {}", target.display());
    if !force && !is_empty_or_missing(target)? {
        return Err(BundleError::new(ErrorCode::TargetNotEmpty, &tsubject, "is not empty").into());
    }
    let mut b = Bundle::open(bundle, opener)?;
    if b.bag_name() == SECRETS_DIR && opener.is_some_and(|o| !o.is_empty()) {
        return Err(BundleError::new(
            ErrorCode::TargetNotEmpty,
            format!("folder {}", target.join(SECRETS_DIR).display()),
            "the bag folder itself is named `secrets`, where opened values would go; unpack without --identity",
        )
        .into());
    }
    fs::create_dir_all(target).ctx(&tsubject)?;
    let tmp = tempfile::Builder::new()
        .prefix(".dbxport-unpack.")
        .tempdir_in(target)
        .ctx(&tsubject)?;
    let summary = extract(&mut b, tmp.path(), opener)?;
    let bag = b.bag_name().to_string();
    drop(b);
    // Move the finished tree into place.
    let mut placed = Vec::new();
    for name in [bag.as_str(), SECRETS_DIR] {
        let from = tmp.path().join(name);
        if !from.exists() {
            continue;
        }
        let to = target.join(name);
        if to.symlink_metadata().is_ok() {
            if !force {
                return Err(BundleError::new(
                    ErrorCode::TargetNotEmpty,
                    format!("folder {}", to.display()),
                    "already exists",
                )
                .into());
            }
            let old = tmp.path().join(format!(".old-{name}"));
            fs::rename(&to, &old).ctx(format!("folder {}", to.display()))?;
        }
        fs::rename(&from, &to).ctx(format!("folder {}", to.display()))?;
        placed.push(to);
    }
    sync_dir(target)?;
    drop(tmp);
    Ok(UnpackSummary {
        bag_dir: target.join(&bag),
        secrets_dir: (summary.secrets_opened > 0).then(|| target.join(SECRETS_DIR)),
        ..summary
    })
}

fn extract(b: &mut Bundle, root: &Path, opener: Option<&Opener>) -> Result<UnpackSummary> {
    let bag = b.bag_name().to_string();
    let bag_root = root.join(&bag);
    fs::create_dir(&bag_root).ctx(format!("folder {}", bag_root.display()))?;
    let manifest = b.manifest().clone();
    let tag_digests = b.tag_digests().clone();
    let mut files = 0u64;
    let mut bytes = 0u64;
    for (rel, dir, size) in b.entries() {
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
            manifest.get(&rel).cloned()
        } else {
            tag_digests.get(&rel).cloned()
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
