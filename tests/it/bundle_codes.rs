//! Every error code of spec §13 is exercised somewhere: a bundle-level code by a file of the
//! hostile corpus (`fixtures/hostile/EXPECTED.json`, checked by `bundle_hostile.rs`), a code
//! that no bundle file can cause (the target, the folder given to `pack`, the disk, a staged
//! export) by a command situation in [`SITUATIONS`], run here. [`every_spec_code_is_exercised`]
//! fails, naming them, when a code of the spec table has neither.

use crate::common;

use dbxport::emulator::{Emulator, EmulatorConfig};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// A command situation that must fail with `code`: `run` sets it up in an empty folder and
/// runs dbxport there.
struct Situation {
    code: &'static str,
    what: &'static str,
    run: fn(&Path) -> Output,
}

const SITUATIONS: &[Situation] = &[
    Situation {
        code: "E500",
        what: "unpack into a folder that holds a file",
        run: |dir| {
            let target = dir.join("full");
            std::fs::create_dir(&target).unwrap();
            std::fs::write(target.join("keep.txt"), b"mine\n").unwrap();
            dbx(&[
                "unpack".as_ref(),
                base_bundle().as_ref(),
                "-d".as_ref(),
                target.as_os_str(),
            ])
        },
    },
    Situation {
        code: "E501",
        what: "pack a folder that holds no bag",
        run: |dir| {
            let empty = dir.join("empty");
            std::fs::create_dir(&empty).unwrap();
            dbx(&[
                "pack".as_ref(),
                empty.as_os_str(),
                "-o".as_ref(),
                dir.join("out.zip").as_os_str(),
            ])
        },
    },
    Situation {
        code: "E502",
        what: "unpack below a path whose parent is a regular file",
        run: |dir| {
            let file = dir.join("a-file");
            std::fs::write(&file, b"not a folder\n").unwrap();
            dbx(&[
                "unpack".as_ref(),
                base_bundle().as_ref(),
                "-d".as_ref(),
                file.join("sub").as_os_str(),
            ])
        },
    },
    Situation {
        code: "E503",
        what: "resume a staged export without the recipients it sealed to",
        run: |dir| {
            // What an interrupted export sealing to some key leaves first (stage.rs).
            let partial = dir.join("out.zip.partial");
            std::fs::create_dir(&partial).unwrap();
            std::fs::write(
                partial.join("recipients.json"),
                br#"{"fingerprint":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#,
            )
            .unwrap();
            let emu = Emulator::start_in_background(EmulatorConfig::default()).unwrap();
            Command::new(common::dbxport_bin())
                .args(["export", "--resume", "-o"])
                .arg(dir.join("out.zip"))
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", dir)
                .env("DATABRICKS_HOST", emu.url())
                .env("DATABRICKS_TOKEN", emu.admin_token())
                .output()
                .unwrap()
        },
    },
];

/// Codes no fixture or situation can produce, each with the reason. Empty: every code of the
/// table is reachable today.
const UNREACHABLE: &[(&str, &str)] = &[];

fn dbx(args: &[&std::ffi::OsStr]) -> Output {
    crate::support::ctx::offline(args)
}

fn base_bundle() -> std::path::PathBuf {
    common::repo_path("fixtures/hostile/base-valid.zip")
}

#[test]
fn each_command_situation_fails_with_its_code() {
    for s in SITUATIONS {
        let tmp = tempfile::tempdir().unwrap();
        let out = (s.run)(tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        // These are refusals to run, not problems in a bundle: exit 2 (cli::keys::exit_code_for).
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}: {stderr}",
            s.code,
            s.what
        );
        assert!(
            stderr.contains(&format!("[{}]", s.code)),
            "{}: {}: stderr does not name the code: {stderr}",
            s.code,
            s.what
        );
    }
}

/// The codes of the spec's §13 table, in order.
fn spec_codes() -> Vec<String> {
    let spec = std::fs::read_to_string(common::repo_path("spec/bundle-format.md")).unwrap();
    let start = spec.find("\n## 13.").expect("spec has §13");
    let section = &spec[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let codes: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| E"))
        .map(|rest| format!("E{}", rest.split('|').next().unwrap().trim()))
        .collect();
    assert!(
        codes.len() >= 40,
        "§13 table not found or cut short: {codes:?}"
    );
    codes
}

/// Every code `EXPECTED.json` gives a corpus file (as `"E206"` or `{"code": "E403", …}`).
fn corpus_codes() -> BTreeSet<String> {
    let path = common::repo_path("fixtures/hostile/EXPECTED.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v.as_object()
        .unwrap()
        .values()
        .filter_map(|e| e.as_str().or_else(|| e["code"].as_str()))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_spec_code_is_exercised() {
    let table = spec_codes();
    let corpus = corpus_codes();
    let situations: BTreeSet<String> = SITUATIONS.iter().map(|s| s.code.to_string()).collect();
    for code in corpus.iter().chain(&situations) {
        assert!(
            table.contains(code),
            "{code} is exercised but not in the §13 table"
        );
    }
    for (code, why) in UNREACHABLE {
        assert!(
            table.iter().any(|c| c == code),
            "{code} ({why}) is not in §13"
        );
        assert!(
            !corpus.contains(*code) && !situations.contains(*code),
            "{code} is exercised now; remove it from UNREACHABLE"
        );
    }
    let missing: Vec<&str> = table
        .iter()
        .map(String::as_str)
        .filter(|c| !corpus.contains(*c) && !situations.contains(*c))
        .filter(|c| !UNREACHABLE.iter().any(|(u, _)| u == c))
        .collect();
    assert!(
        missing.is_empty(),
        "spec §13 codes with no hostile fixture (fixtures/hostile/generate.py → EXPECTED.json) \
         and no command situation (SITUATIONS in tests/bundle_codes.rs): {}",
        missing.join(", ")
    );
}
