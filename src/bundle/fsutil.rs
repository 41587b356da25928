//! File-system helpers for the writing invariants of spec §11: outputs go to a temporary name
//! in the destination's folder, are synced, and are renamed into place only when complete;
//! files holding secrets are created 0600 in folders created 0700.

use super::error::{BundleError, ErrorCode, IoContext, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `<path>.partial`: where an output is built (or a run's unfinished output left) before it
/// is whole, in the output's folder.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// Syncs a folder so that renames inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx(format!("folder {}", dir.display()))
}

/// A file being written under a temporary name next to its final path.
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Starts writing `dest` (which is not touched until [`AtomicFile::commit`]).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(dest);
        let base = dest
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{base}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .ctx(format!("folder {}", dir.display()))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The temporary file, for writing and reading back.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The temporary path.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Sets the file's permission bits.
    #[cfg(unix)]
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.tmp.path(), fs::Permissions::from_mode(mode))
            .ctx(format!("file {}", self.tmp.path().display()))
    }

    /// Syncs and renames into place. Refuses to replace an existing file unless `replace`.
    pub fn commit(mut self, replace: bool) -> Result<()> {
        let subject = format!("file {}", self.dest.display());
        self.tmp.as_file_mut().flush().ctx(&subject)?;
        self.tmp.as_file().sync_all().ctx(&subject)?;
        if replace {
            self.tmp
                .persist(&self.dest)
                .map_err(|e| BundleError::io(&subject, &e.error))?;
        } else {
            self.tmp.persist_noclobber(&self.dest).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    BundleError::new(ErrorCode::TargetNotEmpty, &subject, "already exists")
                } else {
                    BundleError::io(&subject, &e.error)
                }
            })?;
        }
        sync_dir(&parent_dir(&self.dest))
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.file()
        .write_all(bytes)
        .ctx(format!("file {}", dest.display()))?;
    f.commit(replace)
}

/// Creates a folder (and parents) readable only by its owner.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let subject = format!("folder {}", dir.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .ctx(&subject)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ctx(&subject)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir).ctx(&subject)
    }
}

/// Creates a new file readable only by its owner; fails if it exists.
pub fn create_private_file(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).ctx(format!("file {}", path.display()))
}

/// Creates a new file; fails if anything exists at `path` (links are never followed).
pub fn create_new_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .ctx(format!("file {}", path.display()))
}

/// True when `dir` does not exist or is an empty folder.
pub fn is_empty_or_missing(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(BundleError::io(format!("folder {}", dir.display()), &e)),
    }
}
