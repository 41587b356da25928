//! The tag files of a bag (spec §4): rendering `INVENTORY.md`, `bag-info.txt`, `bagit.txt`,
//! `dbxport.json` and both manifests from an inventory and its payload. Every writer renders
//! them here, so a streamed bundle and a staged bag get identical bytes.
//!
//! The files are produced in two groups: those that do not depend on payload digests (they sort
//! before `data/` and are written first by a streaming writer) and those that do.

use super::bagit::{
    bag_info, format_manifest, BAGIT_FILE, BAGIT_TXT, BAG_INFO_FILE, MANIFEST_FILE, OVERVIEW_FILE,
    TAG_MANIFEST_FILE,
};
use super::digest::sha256_hex;
use super::inventory::{kind_rank, Inventory, RecordView, INVENTORY_FILE};
use crate::model::Kind;
use std::collections::BTreeMap;
use std::io::Write;

/// Tag files that need no payload digest: `INVENTORY.md`, `bag-info.txt`, `bagit.txt` and the
/// extra tag files. `sizes` maps every payload path to its size.
pub fn fixed_tags(
    inv: &Inventory,
    sizes: &BTreeMap<String, u64>,
    extra: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let mut t = small_fixed_tags(inv, sizes.values().sum(), sizes.len() as u64, extra);
    t.insert(OVERVIEW_FILE.into(), overview(inv, sizes).into_bytes());
    t
}

/// [`fixed_tags`] but `INVENTORY.md`, which a streaming writer renders into the bundle
/// ([`write_overview`]) instead of holding: `bag-info.txt`, `bagit.txt` and the extra tag
/// files, for a payload of `files` files and `octets` bytes.
pub fn small_fixed_tags(
    inv: &Inventory,
    octets: u64,
    files: u64,
    extra: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let mut t = extra.clone();
    t.insert(BAGIT_FILE.into(), BAGIT_TXT.as_bytes().to_vec());
    t.insert(
        BAG_INFO_FILE.into(),
        bag_info(inv, octets, files).into_bytes(),
    );
    t
}

/// Tag files that depend on digests: `dbxport.json`, `manifest-sha256.txt` and finally
/// `tagmanifest-sha256.txt`, which covers `fixed` and the other two.
pub fn digest_tags(
    inv: &Inventory,
    payload_digests: &BTreeMap<String, String>,
    fixed: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let bytes = inv.to_bytes();
    let manifest = format_manifest(
        payload_digests
            .iter()
            .map(|(p, h)| (p.as_str(), h.as_str())),
    )
    .into_bytes();
    let tags = tag_manifest(
        fixed,
        &[
            (INVENTORY_FILE, &sha256_hex(&bytes)),
            (MANIFEST_FILE, &sha256_hex(&manifest)),
        ],
    );
    let mut t = BTreeMap::new();
    t.insert(INVENTORY_FILE.to_string(), bytes);
    t.insert(MANIFEST_FILE.to_string(), manifest);
    t.insert(TAG_MANIFEST_FILE.to_string(), tags);
    t
}

/// `tagmanifest-sha256.txt` (§4.4) for the tag files held in `fixed` and those a writer
/// rendered as it wrote them, given as (name, SHA-256 hex).
pub fn tag_manifest(fixed: &BTreeMap<String, Vec<u8>>, rendered: &[(&str, &str)]) -> Vec<u8> {
    let digests: Vec<(&str, String)> = fixed
        .iter()
        .map(|(name, bytes)| (name.as_str(), sha256_hex(bytes)))
        .collect();
    format_manifest(
        digests
            .iter()
            .map(|(p, h)| (*p, h.as_str()))
            .chain(rendered.iter().copied()),
    )
    .into_bytes()
}

/// What a streaming writer needs to know of a tag file it renders into the bundle instead of
/// holding (`dbxport.json`, `INVENTORY.md`, `manifest-sha256.txt`) before writing it: its
/// size, its SHA-256 and its first bytes (to choose the entry's method, §3.3). Taken by
/// rendering the file into a sink that keeps only those: at a million records the inventory
/// is over a GB, and holding it (with the copy a growing buffer makes) was most of an
/// export's last step.
pub struct MeasuredFile {
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// The first bytes, up to the sample length asked for.
    pub sample: Vec<u8>,
}

impl MeasuredFile {
    /// Runs `render` once into a sink that keeps the size, the digest and a sample of
    /// `sample_len` bytes.
    pub fn of(
        sample_len: usize,
        render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<MeasuredFile> {
        struct Sink {
            size: u64,
            hasher: sha2::Sha256,
            sample: Vec<u8>,
            keep: usize,
        }
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                use sha2::Digest as _;
                self.size += b.len() as u64;
                self.hasher.update(b);
                let room = self.keep.saturating_sub(self.sample.len()).min(b.len());
                self.sample.extend_from_slice(&b[..room]);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = Sink {
            size: 0,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            sample: Vec::new(),
            keep: sample_len,
        };
        {
            // Renderers write in small pieces; the digest is faster fed in large ones.
            let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut sink);
            render(&mut w)?;
            w.flush()?;
        }
        Ok(MeasuredFile {
            size: sink.size,
            sha256: hex::encode(sha2::Digest::finalize(sink.hasher)),
            sample: sink.sample,
        })
    }
}

fn heading(kind: Kind) -> &'static str {
    match kind {
        Kind::Directory => "Folders",
        Kind::Notebook => "Notebooks",
        Kind::File => "Workspace files",
        Kind::Repo => "Git folders (repos)",
        Kind::SecretScope => "Secret scopes",
        Kind::Secret => "Secrets",
        Kind::RegisteredModel => "Registered models",
        Kind::ModelVersion => "Model versions",
        Kind::ModelArtifact => "Model artifacts",
        Kind::Job => "Jobs",
        Kind::Permissions => "Permissions",
        Kind::HiveGrants => "Hive metastore grants",
        Kind::UcGrants => "Unity Catalog grants",
        Kind::Cluster => "Clusters (reference only)",
        Kind::InstancePool => "Instance pools (reference only)",
        Kind::ClusterPolicy => "Cluster policies (reference only)",
        Kind::Warehouse => "SQL warehouses (reference only)",
        Kind::Mount => "DBFS mounts (reference only)",
        Kind::Principal => "Users, groups and service principals (reference only)",
    }
}

fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '`' => out.push('\''),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Groups thousands for people: `1234567` → `1 234 567`.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `INVENTORY.md` (§4.5): an overview for people, generated from the inventory.
pub fn overview(inv: &Inventory, sizes: &BTreeMap<String, u64>) -> String {
    let rows = || {
        inv.records.iter().map(|r| {
            let bytes = r.stored.iter().filter_map(|p| sizes.get(p.as_str())).sum();
            let view = RecordView {
                kind: r.kind,
                name: &r.name,
                stored: r.stored.iter().map(String::as_str).collect(),
                sealed: r.sealed,
                notes: r.notes.iter().map(String::as_str).collect(),
            };
            (view, bytes)
        })
    };
    let mut out = Vec::new();
    write_overview(&mut out, inv, rows).expect("writing into memory does not fail");
    String::from_utf8(out).expect("the overview is UTF-8")
}

/// Writes [`overview`] to `w` as it is rendered, for the records `rows` yields — each time it
/// is called, every record in inventory order (§9), with the bytes of its stored files —
/// instead of `inv.records`, which are not read (its other fields are). It goes through the
/// records twice: once for the totals that come first, once for the tables.
pub fn write_overview<'r, I>(
    w: &mut dyn Write,
    inv: &Inventory,
    rows: impl Fn() -> I,
) -> std::io::Result<()>
where
    I: Iterator<Item = (RecordView<'r>, u64)>,
{
    // (records, files, bytes) per kind, in the order of `Kind::ALL`.
    let mut per_kind = [(0u64, 0u64, 0u64); Kind::ALL.len()];
    let (mut sealed_values, mut sealed_files) = (0u64, 0u64);
    for (r, bytes) in rows() {
        let k = &mut per_kind[kind_rank(r.kind)];
        k.0 += 1;
        k.1 += r.stored.iter().filter(|p| !p.ends_with('/')).count() as u64;
        k.2 += bytes;
        sealed_values += u64::from(r.kind == Kind::Secret && r.sealed);
        sealed_files += r.stored.iter().filter(|p| p.ends_with(".age")).count() as u64;
    }
    let mut w = TrimBlankLines { w, newlines: 0 };
    writeln!(w, "# dbxport bundle {}\n", inv.bundle_id)?;
    writeln!(
        w,
        "This folder is a BagIt bag written by {} {} (format {} {}). It holds resources of\n\
         Databricks workspace `{}` at {}, exported {}.\n",
        inv.tool.name,
        inv.tool.version,
        inv.format,
        inv.format_version,
        cell(&inv.source.workspace_id),
        cell(&inv.source.host),
        inv.created
    )?;
    writeln!(w, "## Contents\n")?;
    writeln!(w, "| kind | records | files | bytes |")?;
    writeln!(w, "|---|---:|---:|---:|")?;
    let (mut tr, mut tf, mut tb) = (0u64, 0u64, 0u64);
    for (kind, &(records, files, bytes)) in Kind::ALL.iter().zip(&per_kind) {
        if records == 0 {
            continue;
        }
        writeln!(
            w,
            "| {} | {} | {} | {} |",
            kind.as_str(),
            records,
            files,
            grouped(bytes)
        )?;
        tr += records;
        tf += files;
        tb += bytes;
    }
    writeln!(w, "| **total** | {} | {} | {} |\n", tr, tf, grouped(tb))?;
    if let Some(seal) = &inv.sealing {
        writeln!(
            w,
            "{sealed_values} secret value(s) are sealed with age ({sealed_files} sealed files, with the digest\n\
             indexes) to {} recipient(s) ({}). Secret values and their digests are never stored\n\
             in clear.\n",
            seal.recipients,
            seal.recipient_types.join(", ")
        )?;
    }
    writeln!(w, "## Checking and opening this bundle without dbxport\n")?;
    writeln!(
        w,
        "- `sha256sum -c manifest-sha256.txt`, run in this folder, checks every payload file;\n  \
         `sha256sum -c tagmanifest-sha256.txt` checks these tag files.\n\
         - `bagit.py --validate .` (PyPI `bagit`) checks the whole bag.\n\
         - Notebooks are source files under `data/workspace/`, with their language's extension.\n\
         - Jobs, repos, permissions, grants and models are pretty-printed JSON.\n\
         - `age -d -i KEYFILE data/secrets/SCOPE/values/KEY.age` prints one secret value.\n\
         - Stored names are made safe for every file system; the original names are in the\n  \
         tables below and in `dbxport.json`. The format is described in the dbxport\n  \
         repository, `spec/bundle-format.md`.\n"
    )?;
    // The records come sorted by kind (§9): each kind's table is one run of them.
    let mut current: Option<Kind> = None;
    for (r, bytes) in rows() {
        if current != Some(r.kind) {
            if current.is_some() {
                writeln!(w)?;
            }
            current = Some(r.kind);
            writeln!(
                w,
                "## {} ({})\n",
                heading(r.kind),
                per_kind[kind_rank(r.kind)].0
            )?;
            writeln!(w, "| original name | stored as | bytes | notes |")?;
            writeln!(w, "|---|---|---:|---|")?;
        }
        let stored = if r.stored.is_empty() {
            "—".to_string()
        } else {
            r.stored
                .iter()
                .map(|p| cell(p))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let mut notes: Vec<String> = r.notes.iter().map(|n| cell(n)).collect();
        if r.sealed {
            notes.insert(0, "sealed".into());
        }
        writeln!(
            w,
            "| {} | {} | {} | {} |",
            cell(r.name),
            stored,
            grouped(bytes),
            notes.join("; ")
        )?;
    }
    if current.is_some() {
        writeln!(w)?;
    }
    if !inv.opaque.is_empty() {
        writeln!(w, "## Other records ({})\n", inv.opaque.len())?;
        for r in &inv.opaque {
            writeln!(w, "- {} {}", cell(&r.kind), cell(&r.name))?;
        }
        writeln!(w)?;
    }
    w.finish()
}

/// Passes writes through, but holds back each run of newlines until more text follows, and
/// ends the file with a single one: the overview is built of blocks that each end in a blank
/// line, and the file ends in one newline, whichever block comes last.
struct TrimBlankLines<'w> {
    w: &'w mut dyn Write,
    newlines: usize,
}

impl TrimBlankLines<'_> {
    fn finish(self) -> std::io::Result<()> {
        if self.newlines > 0 {
            self.w.write_all(b"\n")?;
        }
        Ok(())
    }
}

impl Write for TrimBlankLines<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let text = b.len() - b.iter().rev().take_while(|c| **c == b'\n').count();
        if text > 0 {
            for _ in 0..self.newlines {
                self.w.write_all(b"\n")?;
            }
            self.w.write_all(&b[..text])?;
            self.newlines = 0;
        }
        self.newlines += b.len() - text;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_and_cells() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1234567), "1 234 567");
        assert_eq!(cell("a|b`c\nd"), "a\\|b'c d");
    }
}
