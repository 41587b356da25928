//! The hostile corpus (`fixtures/hostile/`, written by its committed `generate.py`): every bad
//! bundle is rejected with its documented code (spec §13), by the library and by the CLI, and
//! unpacking one writes nothing anywhere — not outside the target, not inside it.
//!
//! `EXPECTED.json` maps each file to `null` (valid), its code (`"E206"`), or
//! `{"code": "E403", "identity": "KEYFILE"}` for a case that shows only with an identity (the
//! key file's path is relative to the corpus folder); every check then passes that identity.

mod common;

use dbxport::bundle::seal::Opener;
use dbxport::bundle::{unpack, verify_file};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus_dir() -> PathBuf {
    common::repo_path("fixtures/hostile")
}

/// One `EXPECTED.json` value, in either form.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expected {
    Code(Option<String>),
    WithIdentity { code: String, identity: String },
}

/// What a corpus file must give: its first problem's code (`None`: valid), and the identity
/// file to open it with, if any.
struct Case {
    code: Option<String>,
    identity: Option<PathBuf>,
}

impl Case {
    fn opener(&self) -> Option<Opener> {
        self.identity.as_ref().map(|k| {
            let mut o = Opener::new();
            o.add_identity_file(k).unwrap();
            o
        })
    }

    fn identity_args(&self) -> Vec<std::ffi::OsString> {
        match &self.identity {
            Some(k) => vec!["--identity".into(), k.clone().into()],
            None => vec![],
        }
    }
}

fn expected() -> BTreeMap<String, Case> {
    let raw: BTreeMap<String, Expected> =
        serde_json::from_slice(&std::fs::read(corpus_dir().join("EXPECTED.json")).unwrap())
            .unwrap();
    raw.into_iter()
        .map(|(name, e)| {
            let case = match e {
                Expected::Code(code) => Case {
                    code,
                    identity: None,
                },
                Expected::WithIdentity { code, identity } => Case {
                    code: Some(code),
                    identity: Some(corpus_dir().join(identity)),
                },
            };
            (name, case)
        })
        .collect()
}

#[test]
fn corpus_is_what_the_generator_writes() {
    if !common::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new("python3")
        .arg(corpus_dir().join("generate.py"))
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    for name in expected()
        .keys()
        .map(String::as_str)
        .chain(["EXPECTED.json"])
    {
        let fresh = std::fs::read(tmp.path().join(name)).unwrap();
        let committed = std::fs::read(corpus_dir().join(name)).unwrap();
        let same = if name == "zip-bomb.zip" {
            // Its one deflated entry may compress differently with another zlib; compare what
            // the archives hold instead.
            contents(&fresh) == contents(&committed)
        } else {
            fresh == committed
        };
        assert!(
            same,
            "{name} differs from what generate.py writes; run `python3 fixtures/hostile/generate.py`"
        );
    }
}

/// Names and content digests of a zip's entries, read with the `zip` crate.
fn contents(zip_bytes: &[u8]) -> Vec<(String, String)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).unwrap();
            (
                f.name().unwrap().to_string(),
                dbxport::bundle::digest::sha256_hex(&data),
            )
        })
        .collect()
}

#[test]
fn every_hostile_bundle_is_rejected_with_its_code() {
    let cases = expected();
    assert!(cases.len() >= 12);
    for (name, case) in cases {
        let path = corpus_dir().join(&name);
        let report = match verify_file(&path, case.opener().as_ref()) {
            Ok(r) => r,
            // Not readable at all (an envelope without an identity): the error is the problem.
            Err(e) => {
                assert_eq!(Some(e.code().code()), case.code.as_deref(), "{name}: {e}");
                continue;
            }
        };
        match case.code {
            None => assert!(report.ok, "{name}: {:#?}", report.problems),
            Some(code) => {
                assert!(!report.ok, "{name} was accepted");
                assert_eq!(
                    report.problems[0].code().code(),
                    code,
                    "{name}: first problem {:?}",
                    report.problems[0]
                );
            }
        }
    }
}

#[test]
fn cli_verify_reports_each_code_as_json() {
    for (name, case) in expected() {
        let path = corpus_dir().join(&name);
        let out = Command::new(common::dbxport_bin())
            .args(["verify", "--json"])
            .arg(&path)
            .args(case.identity_args())
            .output()
            .unwrap();
        // Exit 2 when the bundle cannot be read at all, 1 when it has problems.
        let unreadable = verify_file(&path, case.opener().as_ref()).is_err();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("{name}: not JSON: {}", String::from_utf8_lossy(&out.stdout))
        });
        match case.code {
            None => {
                assert_eq!(out.status.code(), Some(0), "{name}");
                assert_eq!(v["ok"], true);
            }
            Some(code) => {
                let want = if unreadable { 2 } else { 1 };
                assert_eq!(out.status.code(), Some(want), "{name}");
                assert_eq!(v["problems"][0]["code"], code.as_str(), "{name}");
            }
        }
    }
}

fn listing(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn unpacking_a_hostile_bundle_writes_nothing() {
    for (name, case) in expected() {
        let Some(code) = &case.code else { continue };
        let sandbox = tempfile::tempdir().unwrap();
        let target = sandbox.path().join("target");
        let opener = case.opener();
        let err = unpack(&corpus_dir().join(&name), &target, opener.as_ref(), false)
            .expect_err(&format!("{name} was unpacked"));
        assert_eq!(
            err.first_code().unwrap().code(),
            code.as_str(),
            "{name}: {err}"
        );
        let inside = if target.exists() {
            listing(&target)
        } else {
            vec![]
        };
        assert!(inside.is_empty(), "{name} left {inside:?} in the target");
        let around: Vec<String> = listing(sandbox.path())
            .into_iter()
            .filter(|p| p != "target")
            .collect();
        assert!(
            around.is_empty(),
            "{name} wrote {around:?} next to the target"
        );
    }
    assert!(!Path::new("/tmp/dbxport-hostile-absolute.txt").exists());
}

#[test]
fn the_valid_base_unpacks() {
    let sandbox = tempfile::tempdir().unwrap();
    let s = unpack(
        &corpus_dir().join("base-valid.zip"),
        sandbox.path(),
        None,
        false,
    )
    .unwrap();
    assert_eq!(s.files, 8);
    assert!(s.bag_dir.join("data/workspace/Users/a/nb.py").is_file());
}
