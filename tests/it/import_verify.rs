//! Import checks exactly what `verify --identity` checks, before any write: two bundles altered
//! after export with every manifest recomputed — a secret no longer marked sealed (E404), a
//! Key Vault scope's sealed value damaged (E402) — fail `verify --identity`, and `import`,
//! `plan`, `diff` and `models import` refuse them with the same code and send no write; so is
//! a bundle whose record names a workspace path with `..` (E307).

use crate::support::import as support;

use dbxport::bundle::bagit::format_manifest;
use dbxport::bundle::container::{open_entry, read_index, ZipWriter};
use dbxport::bundle::digest::sha256_hex;
use dbxport::bundle::verify_file;
use dbxport::emulator::EmulatorHandle;
use dbxport::import::{ImportError, SourceBundle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

/// Every entry of a bundle, in file order: (name, None for a folder or Some(bytes)).
fn entries(path: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut f = std::fs::File::open(path).unwrap();
    let index = read_index(&mut f).unwrap();
    assert!(index.problems.is_empty(), "{:?}", index.problems);
    index
        .entries
        .iter()
        .map(|e| {
            let data = (!e.dir).then(|| {
                let mut out = Vec::new();
                open_entry(&mut f, e)
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
                out
            });
            (index.name(e).to_string(), data)
        })
        .collect()
}

/// Rewrites `src` into `dst` after `edit` changed the inventory and payload files (bag-relative
/// paths), recomputing what a forger would: record sizes and digests, both manifests and
/// Payload-Oxum — so only checks beyond the digests can find the change.
fn tamper(src: &Path, dst: &Path, edit: impl FnOnce(&mut Value, &mut BTreeMap<String, Vec<u8>>)) {
    let all = entries(src);
    let bag = all[0].0.trim_end_matches('/').to_string();
    let mut files: BTreeMap<String, Vec<u8>> = all
        .iter()
        .filter_map(|(n, d)| {
            let rel = n.strip_prefix(&format!("{bag}/"))?;
            Some((rel.to_string(), d.clone()?))
        })
        .collect();
    let mut inv: Value = serde_json::from_slice(&files["dbxport.json"]).unwrap();
    edit(&mut inv, &mut files);
    for r in inv["records"].as_array_mut().unwrap() {
        if let Some(p) = r["stored"][0].as_str() {
            if let Some(b) = files.get(p) {
                r["size"] = b.len().into();
                r["sha256"] = sha256_hex(b).into();
            }
        }
    }
    let mut inv_bytes = serde_json::to_vec_pretty(&inv).unwrap();
    inv_bytes.push(b'\n');
    files.insert("dbxport.json".into(), inv_bytes);
    let payload: Vec<(String, String)> = files
        .iter()
        .filter(|(p, _)| p.starts_with("data/"))
        .map(|(p, b)| (p.clone(), sha256_hex(b)))
        .collect();
    let octets: usize = files
        .iter()
        .filter(|(p, _)| p.starts_with("data/"))
        .map(|(_, b)| b.len())
        .sum();
    let manifest = format_manifest(payload.iter().map(|(p, h)| (p.as_str(), h.as_str())));
    files.insert("manifest-sha256.txt".into(), manifest.into_bytes());
    let info = String::from_utf8(files["bag-info.txt"].clone()).unwrap();
    let info: String = info
        .lines()
        .map(|l| {
            if l.starts_with("Payload-Oxum:") {
                format!("Payload-Oxum: {octets}.{}\n", payload.len())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    files.insert("bag-info.txt".into(), info.into_bytes());
    let tags: Vec<(String, String)> = files
        .iter()
        .filter(|(p, _)| !p.contains('/') && p.as_str() != "tagmanifest-sha256.txt")
        .map(|(p, b)| (p.clone(), sha256_hex(b)))
        .collect();
    let tm = format_manifest(tags.iter().map(|(p, h)| (p.as_str(), h.as_str())));
    files.insert("tagmanifest-sha256.txt".into(), tm.into_bytes());
    let mut w = ZipWriter::new(std::fs::File::create(dst).unwrap());
    for (name, data) in &all {
        match data {
            None => w.add_dir(name).unwrap(),
            Some(_) => {
                let rel = name.strip_prefix(&format!("{bag}/")).unwrap();
                w.add_bytes(name, &files[rel]).unwrap();
            }
        }
    }
    w.finish().unwrap();
}

/// The PoC bundle with one sealed secret record marked `"sealed": false`.
fn unsealed_flag(src: &Path, dst: &Path) {
    tamper(src, dst, |inv, _| {
        let r = inv["records"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["kind"] == "secret" && r["sealed"] == true)
            .expect("the PoC has a sealed secret");
        r["sealed"] = false.into();
    });
}

/// The PoC bundle with the sealed value of a Key Vault-backed scope damaged.
fn keyvault_value_damaged(src: &Path, dst: &Path) {
    tamper(src, dst, |inv, files| {
        let records = inv["records"].as_array().unwrap();
        let kv: Vec<&str> = records
            .iter()
            .filter(|r| {
                r["kind"] == "secret_scope" && r["meta"]["backend_type"] == "AZURE_KEYVAULT"
            })
            .filter_map(|r| r["name"].as_str())
            .collect();
        let value = records
            .iter()
            .find(|r| {
                r["kind"] == "secret"
                    && r["sealed"] == true
                    && kv.contains(&r["meta"]["scope"].as_str().unwrap_or(""))
            })
            .expect("the PoC has a sealed value in a Key Vault scope");
        let path = value["stored"][0].as_str().unwrap().to_string();
        let b = files.get_mut(&path).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x01;
    });
}

struct Setup {
    dir: tempfile::TempDir,
    key: PathBuf,
    map: PathBuf,
    bundles: Vec<(PathBuf, &'static str)>,
    original: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let poc = start_poc();
    let (key, recipient) = keypair(dir.path());
    let original = export_poc(&poc, dir.path(), &recipient);
    let map = dir.path().join("mapping.toml");
    std::fs::write(&map, MAPPING).unwrap();
    let a = dir.path().join("unsealed-flag.zip");
    unsealed_flag(&original, &a);
    let b = dir.path().join("keyvault-damaged.zip");
    keyvault_value_damaged(&original, &b);
    // A notebook renamed to climb out of its folder: used to pass verify and plan, and fail
    // the import after partial writes.
    let c = dir.path().join("dotdot-name.zip");
    tamper(&original, &c, |inv, _| {
        let r = inv["records"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["kind"] == "notebook")
            .unwrap();
        r["name"] = format!("/Shared/..{}", r["name"].as_str().unwrap()).into();
    });
    Setup {
        dir,
        key,
        map,
        bundles: vec![(a, "E404"), (b, "E402"), (c, "E307")],
        original,
    }
}

fn codes(problems: &[dbxport::bundle::BundleError]) -> Vec<&'static str> {
    problems.iter().map(|p| p.code().code()).collect()
}

fn cli(emu: &EmulatorHandle, home: &Path, args: &[&str]) -> Output {
    Command::new(crate::common::dbxport_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DATABRICKS_HOST", emu.url())
        .env("DATABRICKS_TOKEN", emu.admin_token())
        .output()
        .unwrap()
}

#[test]
fn tampered_bundles_are_refused_by_every_command_before_any_write() {
    let s = setup();
    let op = opener(&s.key);
    // The unaltered bundle passes, so the refusals below are the alterations'.
    assert!(verify_file(&s.original, Some(&op)).unwrap().ok);
    let home = s.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let prod = start_prod(s.dir.path(), Default::default());
    let (key, map) = (s.key.to_str().unwrap(), s.map.to_str().unwrap());
    for (bundle, code) in &s.bundles {
        let name = bundle.display().to_string();
        // What verify --identity says.
        let report = verify_file(bundle, Some(&op)).unwrap();
        assert!(
            codes(&report.problems).contains(code),
            "{name}: {:?}",
            report.problems
        );
        // The library: opened with the identity, or given it only at import.
        match SourceBundle::open(bundle, Some(&op)) {
            Err(ImportError::Bundle { problems, .. }) => {
                assert!(codes(&problems).contains(code), "{name}: {problems:?}")
            }
            Err(e) => panic!("{name}: expected {code}, got {e}"),
            Ok(_) => panic!("{name}: opened"),
        }
        prod.reset_stats();
        let late = SourceBundle::open(bundle, None);
        if let Ok(src) = late {
            let c = client(&prod);
            let r = rt().block_on(dbxport::import::import(
                &src,
                &c,
                &options(),
                Some(&op),
                &Default::default(),
                &dbxport::import::Interrupt::new(),
                &|_| {},
            ));
            match r {
                Err(ImportError::Bundle { problems, .. }) => {
                    assert!(codes(&problems).contains(code), "{name}: {problems:?}")
                }
                Err(e) => panic!("{name}: expected {code}, got {e}"),
                Ok(_) => panic!("{name}: imported"),
            }
        }
        assert_eq!(
            prod.stats().mutating,
            0,
            "{name}: {:?}",
            prod.stats().routes
        );
        // Every command line that reads a bundle to change or compare a workspace.
        let b = bundle.to_str().unwrap();
        for args in [
            vec!["import", b, "--map", map, "--identity", key],
            vec!["plan", b, "--map", map, "--identity", key],
            vec!["diff", b, "--map", map, "--identity", key],
            vec!["models", "import", b, "--identity", key],
        ] {
            prod.reset_stats();
            let out = cli(&prod, &home, &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains(&format!("[{code}]")), "{args:?}: {stderr}");
            assert!(stderr.contains("failed verification"), "{args:?}: {stderr}");
            assert_eq!(
                prod.stats().mutating,
                0,
                "{args:?} wrote: {:?}",
                prod.stats().routes
            );
        }
    }
}

/// Issue #9 (the campaign's memory case): a bundle with thousands of records naming files it
/// does not hold is refused with a bounded list — the first `ProblemList::MAX_KEPT` problems
/// named, the rest counted in one line per code — not one message (repeating each path) per
/// record, which held more memory than the records themselves.
#[test]
fn a_flood_of_broken_records_is_reported_within_a_bound() {
    use dbxport::bundle::ProblemList;
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundles/golden-v1.1.zip");
    let dst = tmp.path().join("flood.zip");
    let extra = ProblemList::MAX_KEPT + 500;
    tamper(&src, &dst, |inv, _| {
        let records = inv["records"].as_array_mut().unwrap();
        for i in 0..extra {
            records.push(serde_json::json!({
                "kind": "notebook",
                "source_id": format!("9{i}"),
                "name": format!("/Users/flood/n{i}"),
                "stored": [format!("data/workspace/flood/{}/n{i}.py", "a".repeat(200))],
                "size": 0,
                "sha256": null,
                "sealed": false,
                "notes": [],
                "meta": {"created_at": 1767000000000u64, "formats": ["SOURCE"], "language": "PYTHON",
                         "modified_at": 1767100000000u64, "object_id": 90000 + i}
            }));
        }
    });
    let report = verify_file(&dst, None).unwrap();
    assert!(!report.ok);
    assert!(
        report.problems.len() <= ProblemList::MAX_KEPT + 10,
        "{} problems listed",
        report.problems.len()
    );
    let summary = report
        .problems
        .iter()
        .find(|p| {
            p.detail()
                .contains("more problem(s) with this code not listed")
        })
        .unwrap_or_else(|| panic!("no summary line: {:#?}", &report.problems));
    assert_eq!(summary.code().code(), "E303");
}

/// The must-recreate code lines of a plan of `bundle` into a fresh prod.
fn planned_code(dir: &Path, bundle: &Path) -> Vec<dbxport::model::scan::Finding> {
    use dbxport::import::ledger::Knowledge;
    use dbxport::import::plan::{plan, Mode, PlanInput};
    let prod = start_prod(dir, Default::default());
    let src = SourceBundle::open(bundle, None).expect("the bundle opens");
    let c = client(&prod);
    let p = rt()
        .block_on(plan(PlanInput {
            source: &src,
            options: &options(),
            client: &c,
            knowledge: &Knowledge::default(),
            secrets: None,
            mode: Mode::Import,
        }))
        .expect("the plan runs");
    p.must_recreate.code
}

/// Issue #10, item 6: what export's scanner found is stored in the records
/// (`meta.code_references`, format 1.2) and import lists it from there instead of reading and
/// scanning every notebook again; a bundle without it (before 1.2) is still scanned.
#[test]
fn import_reads_code_references_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let poc = start_poc();
    let (_key, recipient) = keypair(dir.path());
    let original = export_poc(&poc, dir.path(), &recipient);
    let scanned = planned_code(dir.path(), &original);
    assert!(
        scanned.iter().any(|f| f.matched.contains("/mnt/")),
        "the PoC's mount lines: {scanned:?}"
    );

    // A reference only the record holds (not in the code) is listed: the record is read.
    let planted = dir.path().join("planted.zip");
    tamper(&original, &planted, |inv, _| {
        let r = inv["records"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["kind"] == "notebook")
            .unwrap();
        r["meta"]["code_references"] = serde_json::json!([
            {"line": 1, "dependency": "mount_path", "matched": "/mnt/only-in-the-record"}
        ]);
    });
    let code = planned_code(dir.path(), &planted);
    assert!(
        code.iter().any(|f| f.matched == "/mnt/only-in-the-record"),
        "{code:?}"
    );

    // Without `code_references` anywhere, the same lines are found by scanning.
    let stripped = dir.path().join("stripped.zip");
    tamper(&original, &stripped, |inv, _| {
        for r in inv["records"].as_array_mut().unwrap() {
            if let Some(m) = r["meta"].as_object_mut() {
                m.remove("code_references");
            }
        }
    });
    assert_eq!(planned_code(dir.path(), &stripped), scanned);
}
