//! Helpers for the export tests: an emulator seeded with the proof-of-concept workspace, runs of
//! the built `dbxport export` binary against it, and readers for what came out (the bundle's
//! entries and inventory, the emulator's dump, sealed values).
#![allow(dead_code)]

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The running cluster of the poc seed (accepts command execution).
pub const POC_CLUSTER: &str = "0611-083245-krill42a";
/// The SQL warehouse of the poc seed.
pub const POC_WAREHOUSE: &str = "4b9e1f2c7a3d5e60";

/// The poc seed folder.
pub fn poc_seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/workspaces/poc")
}

/// An emulator serving the poc seed with `faults`.
pub fn start_poc(faults: FaultConfig) -> EmulatorHandle {
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(poc_seed())
            .with_faults(faults)
            .with_fixed_clock(1_700_000_000_000),
    )
    .expect("the poc emulator starts")
}

pub use super::ctx::{describe, keypair, summary};

/// `dbxport export` against `emu` with the admin token in the environment (never on the
/// command line), `home` as HOME (no ~/.databrickscfg) and `args`.
pub fn export_cmd(emu: &EmulatorHandle, home: &Path, args: &[&str]) -> Command {
    let mut c = super::ctx::against(emu, home, ["export"]);
    c.args(args);
    c
}

/// Runs a command and returns its output.
pub fn run(mut c: Command) -> Output {
    c.output().expect("dbxport runs")
}

/// Every file entry of a bundle zip: name below the bag folder → bytes.
pub fn entries(zip: &Path) -> BTreeMap<String, Vec<u8>> {
    let f = std::fs::File::open(zip).unwrap_or_else(|e| panic!("{}: {e}", zip.display()));
    let mut a = zip::ZipArchive::new(f).expect("a zip");
    let mut out = BTreeMap::new();
    for i in 0..a.len() {
        let mut e = a.by_index(i).unwrap();
        if e.is_dir() {
            continue;
        }
        let name = e.name().expect("a UTF-8 entry name").to_string();
        let rel = name
            .split_once('/')
            .map(|(_, r)| r.to_string())
            .unwrap_or(name);
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.insert(rel, b);
    }
    out
}

/// The directory entries of a bundle zip below the bag folder (`data/workspace/x/`).
pub fn dir_entries(zip: &Path) -> Vec<String> {
    let f = std::fs::File::open(zip).unwrap();
    let mut a = zip::ZipArchive::new(f).unwrap();
    (0..a.len())
        .filter_map(|i| {
            let e = a.by_index(i).unwrap();
            e.is_dir().then(|| {
                e.name()
                    .expect("a UTF-8 entry name")
                    .split_once('/')
                    .map(|(_, r)| r.to_string())
                    .unwrap_or_default()
            })
        })
        .collect()
}

/// The inventory records of a bundle.
pub fn records(entries: &BTreeMap<String, Vec<u8>>) -> Vec<Value> {
    let inv: Value = serde_json::from_slice(&entries["dbxport.json"]).expect("inventory JSON");
    inv["records"].as_array().expect("records").clone()
}

/// The records of one kind: name → record.
pub fn by_name(records: &[Value], kind: &str) -> BTreeMap<String, Value> {
    records
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| (r["name"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// The bytes of a record's primary stored file.
pub fn primary<'a>(entries: &'a BTreeMap<String, Vec<u8>>, record: &Value) -> &'a [u8] {
    let p = record["stored"][0].as_str().expect("a stored path");
    entries
        .get(p)
        .unwrap_or_else(|| panic!("{p} is not in the bundle"))
}

/// Opens an age file with the identity at `key`.
pub fn open_sealed(key: &Path, sealed: &[u8]) -> Vec<u8> {
    let text = std::fs::read_to_string(key).unwrap();
    let id: age::x25519::Identity = text.trim().parse().expect("an identity");
    age::decrypt(&id, sealed).expect("the value opens")
}

/// The payload of a bundle, sealed files opened: path → plaintext bytes.
pub fn opened_payload(zip: &Path, key: &Path) -> BTreeMap<String, Vec<u8>> {
    entries(zip)
        .into_iter()
        .filter(|(p, _)| p.starts_with("data/"))
        .map(|(p, b)| {
            if p.ends_with(".age") {
                let plain = open_sealed(key, &b);
                (p, plain)
            } else {
                (p, b)
            }
        })
        .collect()
}

/// Undoes the seed's `%XX` escapes.
pub fn unescape(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&name[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("escapes give UTF-8")
}

/// What a seed (or a dump) holds in its workspace tree, outside Git folders.
#[derive(Debug, Default)]
pub struct Tree {
    /// Notebook path → SOURCE bytes.
    pub notebooks: BTreeMap<String, Vec<u8>>,
    /// File path → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Folder paths.
    pub dirs: Vec<String>,
    /// Repo root paths.
    pub repos: Vec<String>,
    /// Repo root path → notebooks in its working tree.
    pub repo_notebooks: BTreeMap<String, u64>,
}

const HEADERS: [(&str, &str); 5] = [
    ("py", "# Databricks notebook source"),
    ("scala", "// Databricks notebook source"),
    ("sql", "-- Databricks notebook source"),
    ("r", "# Databricks notebook source"),
    ("R", "# Databricks notebook source"),
];

/// Reads the workspace tree of a seed or dump folder.
pub fn read_tree(seed: &Path) -> Tree {
    let repos: Vec<String> = serde_json::from_slice::<Vec<Value>>(
        &std::fs::read(seed.join("repos.json")).unwrap_or_else(|_| b"[]".to_vec()),
    )
    .unwrap()
    .iter()
    .filter_map(|r| r["path"].as_str().map(str::to_string))
    .collect();
    let mut t = Tree {
        repos: repos.clone(),
        ..Tree::default()
    };
    let root = seed.join("workspace");
    let in_repo = |p: &str| {
        repos
            .iter()
            .any(|r| p == r || p.starts_with(&format!("{r}/")))
    };
    for e in walkdir::WalkDir::new(&root)
        .min_depth(1)
        .sort_by_file_name()
    {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(&root).unwrap();
        let path = format!(
            "/{}",
            rel.components()
                .map(|c| unescape(&c.as_os_str().to_string_lossy()))
                .collect::<Vec<_>>()
                .join("/")
        );
        if e.file_type().is_dir() {
            if !in_repo(&path) {
                t.dirs.push(path);
            }
            continue;
        }
        let bytes = std::fs::read(e.path()).unwrap();
        let notebook = HEADERS.iter().find_map(|(ext, header)| {
            let stem = path.strip_suffix(&format!(".{ext}"))?;
            bytes
                .starts_with(header.as_bytes())
                .then(|| stem.to_string())
        });
        if let Some(repo) = repos.iter().find(|r| path.starts_with(&format!("{r}/"))) {
            if notebook.is_some() {
                *t.repo_notebooks.entry(repo.clone()).or_default() += 1;
            }
            continue;
        }
        match notebook {
            Some(p) => {
                t.notebooks.insert(p, bytes);
            }
            None => {
                t.files.insert(path, bytes);
            }
        }
    }
    // Folders declared in objects.json (empty ones git cannot hold).
    if let Ok(b) = std::fs::read(seed.join("objects.json")) {
        let o: BTreeMap<String, Value> = serde_json::from_slice(&b).unwrap();
        for (p, v) in o {
            if v["object_type"] == "DIRECTORY" && !t.dirs.contains(&p) && !in_repo(&p) {
                t.dirs.push(p);
            }
        }
    }
    // Every ancestor of a repo root is a folder too.
    for r in &repos {
        let mut p = r.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if !p.is_empty() && !t.dirs.iter().any(|d| d == p) {
                t.dirs.push(p.to_string());
            }
        }
    }
    t.dirs.sort();
    t.dirs.dedup();
    t
}

/// A `FaultConfig` with nothing injected.
pub fn no_faults() -> FaultConfig {
    FaultConfig::default()
}

/// The request count of one emulator route (`GET /api/2.0/workspace/export`).
pub fn route_count(emu: &EmulatorHandle, route: &str) -> u64 {
    emu.stats().count(route)
}
