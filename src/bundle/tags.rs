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
use super::inventory::{Inventory, INVENTORY_FILE};
use crate::model::Kind;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Tag files that need no payload digest: `INVENTORY.md`, `bag-info.txt`, `bagit.txt` and the
/// extra tag files. `sizes` maps every payload path to its size.
pub fn fixed_tags(
    inv: &Inventory,
    sizes: &BTreeMap<String, u64>,
    extra: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let octets: u64 = sizes.values().sum();
    let mut t = extra.clone();
    t.insert(BAGIT_FILE.into(), BAGIT_TXT.as_bytes().to_vec());
    t.insert(
        BAG_INFO_FILE.into(),
        bag_info(inv, octets, sizes.len() as u64).into_bytes(),
    );
    t.insert(OVERVIEW_FILE.into(), overview(inv, sizes).into_bytes());
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
    let mut t = digest_tags_beside(
        payload_digests
            .iter()
            .map(|(p, h)| (p.as_str(), h.as_str())),
        fixed,
        &sha256_hex(&bytes),
    );
    t.insert(INVENTORY_FILE.to_string(), bytes);
    t
}

/// [`digest_tags`] without `dbxport.json` itself, whose digest is given: for a writer that
/// streams the inventory into the bundle ([`InventoryFile`]) instead of holding its bytes.
pub fn digest_tags_beside<'a>(
    payload_digests: impl IntoIterator<Item = (&'a str, &'a str)>,
    fixed: &BTreeMap<String, Vec<u8>>,
    inventory_sha256: &str,
) -> BTreeMap<String, Vec<u8>> {
    let mut t = BTreeMap::new();
    t.insert(
        MANIFEST_FILE.to_string(),
        format_manifest(payload_digests).into_bytes(),
    );
    let mut digests: Vec<(String, String)> = fixed
        .iter()
        .chain(t.iter())
        .map(|(name, bytes)| (name.clone(), sha256_hex(bytes)))
        .collect();
    digests.push((INVENTORY_FILE.to_string(), inventory_sha256.to_string()));
    t.insert(
        TAG_MANIFEST_FILE.to_string(),
        format_manifest(digests.iter().map(|(p, h)| (p.as_str(), h.as_str()))).into_bytes(),
    );
    t
}

/// What a streaming writer needs to know of `dbxport.json` before writing it: its size, its
/// SHA-256 and its first bytes (to choose the entry's method, §3.3). Taken by rendering the
/// inventory into a sink that keeps only those: at a million records the file is over a GB,
/// and holding it (with the copy a growing buffer makes) was most of an export's last step.
pub struct InventoryFile {
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// The first bytes, up to the sample length asked for.
    pub sample: Vec<u8>,
}

impl InventoryFile {
    /// Renders `inv` once without keeping it, with a sample of `sample_len` bytes.
    pub fn measure(inv: &Inventory, sample_len: usize) -> InventoryFile {
        struct Sink {
            size: u64,
            hasher: sha2::Sha256,
            sample: Vec<u8>,
            keep: usize,
        }
        impl std::io::Write for Sink {
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
        inv.write_to(&mut sink)
            .expect("rendering into memory does not fail");
        InventoryFile {
            size: sink.size,
            sha256: hex::encode(sha2::Digest::finalize(sink.hasher)),
            sample: sink.sample,
        }
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
    let mut s = String::new();
    let _ = writeln!(s, "# dbxport bundle {}\n", inv.bundle_id);
    let _ = writeln!(
        s,
        "This folder is a BagIt bag written by {} {} (format {} {}). It holds resources of\n\
         Databricks workspace `{}` at {}, exported {}.\n",
        inv.tool.name,
        inv.tool.version,
        inv.format,
        inv.format_version,
        cell(&inv.source.workspace_id),
        cell(&inv.source.host),
        inv.created
    );
    let bytes_of = |stored: &[String]| -> u64 {
        stored
            .iter()
            .filter_map(|p| sizes.get(p.as_str()))
            .sum::<u64>()
    };
    let _ = writeln!(s, "## Contents\n");
    let _ = writeln!(s, "| kind | records | files | bytes |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    let (mut tr, mut tf, mut tb) = (0u64, 0u64, 0u64);
    for kind in Kind::ALL {
        let recs: Vec<_> = inv.records.iter().filter(|r| r.kind == kind).collect();
        if recs.is_empty() {
            continue;
        }
        let files: u64 = recs
            .iter()
            .map(|r| r.stored.iter().filter(|p| !p.ends_with('/')).count() as u64)
            .sum();
        let bytes: u64 = recs.iter().map(|r| bytes_of(&r.stored)).sum();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            kind.as_str(),
            recs.len(),
            files,
            grouped(bytes)
        );
        tr += recs.len() as u64;
        tf += files;
        tb += bytes;
    }
    let _ = writeln!(s, "| **total** | {} | {} | {} |\n", tr, tf, grouped(tb));
    if let Some(seal) = &inv.sealing {
        let values = inv
            .records
            .iter()
            .filter(|r| r.kind == Kind::Secret && r.sealed)
            .count();
        let files = inv
            .records
            .iter()
            .flat_map(|r| &r.stored)
            .filter(|p| p.ends_with(".age"))
            .count();
        let _ = writeln!(
            s,
            "{values} secret value(s) are sealed with age ({files} sealed files, with the digest\n\
             indexes) to {} recipient(s) ({}). Secret values and their digests are never stored\n\
             in clear.\n",
            seal.recipients,
            seal.recipient_types.join(", ")
        );
    }
    let _ = writeln!(s, "## Checking and opening this bundle without dbxport\n");
    let _ = writeln!(
        s,
        "- `sha256sum -c manifest-sha256.txt`, run in this folder, checks every payload file;\n  \
         `sha256sum -c tagmanifest-sha256.txt` checks these tag files.\n\
         - `bagit.py --validate .` (PyPI `bagit`) checks the whole bag.\n\
         - Notebooks are source files under `data/workspace/`, with their language's extension.\n\
         - Jobs, repos, permissions, grants and models are pretty-printed JSON.\n\
         - `age -d -i KEYFILE data/secrets/SCOPE/values/KEY.age` prints one secret value.\n\
         - Stored names are made safe for every file system; the original names are in the\n  \
         tables below and in `dbxport.json`. The format is described in the dbxport\n  \
         repository, `spec/bundle-format.md`.\n"
    );
    for kind in Kind::ALL {
        let recs: Vec<_> = inv.records.iter().filter(|r| r.kind == kind).collect();
        if recs.is_empty() {
            continue;
        }
        let _ = writeln!(s, "## {} ({})\n", heading(kind), recs.len());
        let _ = writeln!(s, "| original name | stored as | bytes | notes |");
        let _ = writeln!(s, "|---|---|---:|---|");
        for r in recs {
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
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                cell(&r.name),
                stored,
                grouped(bytes_of(&r.stored)),
                notes.join("; ")
            );
        }
        s.push('\n');
    }
    if !inv.opaque.is_empty() {
        let _ = writeln!(s, "## Other records ({})\n", inv.opaque.len());
        for r in &inv.opaque {
            let _ = writeln!(s, "- {} {}", cell(&r.kind), cell(&r.name));
        }
        s.push('\n');
    }
    while s.ends_with("\n\n") {
        s.pop();
    }
    s
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
