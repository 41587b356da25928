//! Folder archives of the Workspace API: the zip a directory export in `SOURCE` answers (one
//! source file per notebook, named `<folder>/<notebook>.<ext>`; workspace files left out), split
//! locally, and the same shape built for a directory import.
//!
//! An archive comes from the network, so it is read as hostile input: only the entries the
//! caller expects (by exact name) are decompressed, each through a bounded reader whatever its
//! header declares, with a bound on the whole archive's expansion and on its entry count; no
//! entry name ever becomes a local path. Whatever the archive does not answer cleanly (an entry
//! missing, too large or unreadable) is left out of the result, so the caller fetches
//! that object on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};

use crate::model::workspace::Language;

/// The most one notebook may hold: the workspace API's 10 MB export and import limit.
pub const MAX_ENTRY_BYTES: u64 = 10 * 1024 * 1024;
/// The most a whole archive may expand to. A directory export is itself refused over 10 MB,
/// and source text deflates at most about 10:1 in practice.
pub const MAX_EXPANDED_BYTES: u64 = 128 * 1024 * 1024;
/// The most entries an archive may list.
pub const MAX_ENTRIES: usize = 50_000;

/// The name a notebook has in a `SOURCE` folder archive, relative to the folder: its name and
/// its language's extension.
pub fn entry_name(name: &str, language: Language) -> String {
    format!("{name}.{}", language.extension())
}

/// What splitting an archive gave: the bytes of each expected entry it carried, and why the
/// others were left out.
#[derive(Debug, Default)]
pub struct Split {
    /// Entry name (relative to the folder) → its bytes.
    pub entries: BTreeMap<String, Vec<u8>>,
    /// Expected entries the archive did not carry cleanly, with the reason.
    pub left_out: BTreeMap<String, String>,
    /// Entries the archive held that nobody expected (ignored).
    pub unexpected: usize,
}

/// Splits the archive of a directory export of the folder named `folder_name` (its last path
/// component), keeping the `wanted` entries (names relative to the folder, see
/// [`entry_name`]). Entries may be rooted at `<folder_name>/` (as workspaces answer) or at the
/// archive's top. An `Err` means the archive as a whole cannot be used.
pub fn split(bytes: &[u8], folder_name: &str, wanted: &BTreeSet<String>) -> Result<Split, String> {
    let mut a = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("the folder archive is not a readable zip: {e}"))?;
    if a.len() > MAX_ENTRIES {
        return Err(format!(
            "the folder archive lists {} entries, more than the {MAX_ENTRIES} dbxport reads",
            a.len()
        ));
    }
    // Two entries of one name cannot be told apart by name: which one a notebook would get
    // would depend on the zip reader.
    if a.has_duplicate_names() {
        return Err("the folder archive names an entry more than once".to_string());
    }
    let prefix = format!("{folder_name}/");
    let mut out = Split::default();
    let mut expanded = 0u64;
    for i in 0..a.len() {
        let mut f = match a.by_index(i) {
            Ok(f) => f,
            // An entry the zip reader refuses (encrypted, unknown method) cannot be matched
            // to a name reliably; whatever it was is fetched on its own.
            Err(_) => continue,
        };
        if f.is_dir() {
            continue;
        }
        let raw = String::from_utf8_lossy(f.name_raw()).into_owned();
        let rel = raw.strip_prefix(&prefix).unwrap_or(&raw).to_string();
        if !wanted.contains(&rel) {
            out.unexpected += 1;
            continue;
        }
        let mut data = Vec::new();
        let read = (&mut f)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(|e| e.to_string());
        match read {
            Err(e) => {
                out.left_out
                    .insert(rel, format!("its archive entry is unreadable: {e}"));
                continue;
            }
            Ok(n) if n as u64 > MAX_ENTRY_BYTES => {
                out.left_out.insert(
                    rel,
                    format!("its archive entry expands beyond {MAX_ENTRY_BYTES} bytes"),
                );
                continue;
            }
            Ok(n) => {
                expanded += n as u64;
                if expanded > MAX_EXPANDED_BYTES {
                    return Err(format!(
                        "the folder archive expands beyond {MAX_EXPANDED_BYTES} bytes"
                    ));
                }
            }
        }
        out.entries.insert(rel, data);
    }
    for w in wanted {
        if !out.entries.contains_key(w) && !out.left_out.contains_key(w) {
            out.left_out
                .insert(w.clone(), "the folder archive does not hold it".to_string());
        }
    }
    Ok(out)
}

/// A folder archive for a directory import of a folder named `folder_name`: each entry
/// (relative name, bytes) under `<folder_name>/`, deflated, with fixed timestamps.
pub fn build(folder_name: &str, entries: &[(String, &[u8])]) -> Result<Vec<u8>, String> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for (name, data) in entries {
        w.start_file(format!("{folder_name}/{name}"), opts)
            .map_err(|e| e.to_string())?;
        w.write_all(data).map_err(|e| e.to_string())?;
    }
    Ok(w.finish().map_err(|e| e.to_string())?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (n, d) in entries {
            w.start_file(*n, opts).unwrap();
            w.write_all(d).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn wanted(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_rooted_and_flat_archives() {
        let z = build("area", &[("a.py".into(), b"x"), ("b.sql".into(), b"y")]).unwrap();
        let s = split(&z, "area", &wanted(&["a.py", "b.sql", "c.r"])).unwrap();
        assert_eq!(s.entries.get("a.py").unwrap(), b"x");
        assert_eq!(s.entries.get("b.sql").unwrap(), b"y");
        assert_eq!(
            s.left_out.get("c.r").map(String::as_str),
            Some("the folder archive does not hold it")
        );
        let flat = zip_of(&[("a.py", b"x")]);
        let s = split(&flat, "area", &wanted(&["a.py"])).unwrap();
        assert_eq!(s.entries.get("a.py").unwrap(), b"x");
    }

    #[test]
    fn hostile_names_are_never_matched() {
        let z = zip_of(&[
            ("../a.py", b"evil"),
            ("/area/a.py", b"evil"),
            ("other/a.py", b"evil"),
            ("area/../a.py", b"evil"),
            ("area/sub/a.py", b"evil"),
        ]);
        let s = split(&z, "area", &wanted(&["a.py"])).unwrap();
        assert!(s.entries.is_empty());
        assert_eq!(s.unexpected, 5);
        assert!(s.left_out.contains_key("a.py"));
    }

    #[test]
    fn an_archive_naming_an_entry_twice_is_refused_whole() {
        // The zip writer refuses duplicates, so the second name is patched in afterwards
        // (local header and central directory alike).
        let mut z = zip_of(&[("area/a.py", b"one"), ("area/b.py", b"two")]);
        let (from, to) = (b"area/b.py", b"area/a.py");
        let mut i = 0;
        while i + from.len() <= z.len() {
            if &z[i..i + from.len()] == from {
                z[i..i + from.len()].copy_from_slice(to);
            }
            i += 1;
        }
        let e = split(&z, "area", &wanted(&["a.py"])).unwrap_err();
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn a_bomb_entry_is_cut_at_the_entry_bound() {
        let big = vec![b'a'; (MAX_ENTRY_BYTES + 10) as usize];
        let z = zip_of(&[("area/a.py", &big), ("area/b.py", b"ok")]);
        assert!(z.len() < 100_000, "deflated to {}", z.len());
        let s = split(&z, "area", &wanted(&["a.py", "b.py"])).unwrap();
        assert!(s.left_out.get("a.py").unwrap().contains("expands beyond"));
        assert_eq!(s.entries.get("b.py").unwrap(), b"ok");
    }

    #[test]
    fn an_archive_expanding_past_the_total_bound_is_refused() {
        let chunk = vec![b'a'; MAX_ENTRY_BYTES as usize];
        let names: Vec<String> = (0..14).map(|i| format!("area/n{i}.py")).collect();
        let entries: Vec<(&str, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), chunk.as_slice()))
            .collect();
        let z = zip_of(&entries);
        let want: BTreeSet<String> = (0..14).map(|i| format!("n{i}.py")).collect();
        let e = split(&z, "area", &want).unwrap_err();
        assert!(e.contains("expands beyond"), "{e}");
    }

    #[test]
    fn garbage_is_refused_whole() {
        assert!(split(b"<html>nope</html>", "area", &wanted(&["a.py"])).is_err());
    }

    #[test]
    fn entry_names_use_the_language_extension() {
        assert_eq!(entry_name("nb", Language::Python), "nb.py");
        assert_eq!(entry_name("q.v1", Language::Sql), "q.v1.sql");
    }
}
