//! The offline commands end to end: keygen, verify, inspect, unpack, pack — their exit codes,
//! refusals (with the code and a hint), `--json` output and help.

use crate::common;
use crate::support::golden;

use std::path::Path;
use std::process::{Command, Output};

fn dbx(args: &[&str]) -> Output {
    crate::support::ctx::offline(args)
}

fn dbx_p(args: &[&std::ffi::OsStr]) -> Output {
    crate::support::ctx::offline(args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}

#[test]
fn keygen_writes_a_private_identity_and_prints_its_recipient() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k.txt");
    let o = dbx_p(&["keygen".as_ref(), "-o".as_ref(), p(&key)]);
    assert!(o.status.success(), "{}", text(&o));
    let recipient = String::from_utf8(o.stdout).unwrap();
    assert!(recipient.trim().starts_with("age1"), "{recipient}");
    let body = std::fs::read_to_string(&key).unwrap();
    assert!(body.contains("AGE-SECRET-KEY-1"));
    assert!(body.contains(recipient.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // It never overwrites a key by accident.
    let again = dbx_p(&["keygen".as_ref(), "-o".as_ref(), p(&key)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("--force"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), body);
    let forced = dbx_p(&[
        "keygen".as_ref(),
        "-o".as_ref(),
        p(&key),
        "--force".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(forced.status.success());
    let v: serde_json::Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert!(v["recipient"].as_str().unwrap().starts_with("age1"));
}

#[test]
fn verify_exit_codes_and_json() {
    let ok = dbx_p(&["verify".as_ref(), p(&golden::bundle_path())]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("OK"));
    let j = dbx_p(&[
        "verify".as_ref(),
        p(&golden::bundle_path()),
        "--json".as_ref(),
        "-i".as_ref(),
        p(&golden::key_path()),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["sealed_opened"], 3);
    let missing = dbx(&["verify", "/nonexistent/bundle.zip"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("E502"));
    let bad = dbx_p(&[
        "verify".as_ref(),
        p(&common::repo_path("fixtures/hostile/flipped-byte.zip")),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("data/workspace/Users/a/notes.txt"));
    assert!(text(&bad).contains("[E206]"));
}

#[test]
fn inspect_prints_a_summary() {
    let o = dbx_p(&["inspect".as_ref(), p(&golden::bundle_path())]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for needle in [
        "1.0.0",
        "5f0c2a9e-7b1d-4c3e-9a8f-2d6b4e1c0a73",
        "notebook",
        "2 secret values",
        "outputs dropped",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
    let bad = dbx_p(&[
        "inspect".as_ref(),
        p(&common::repo_path("fixtures/hostile/unknown-major.zip")),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("E302"));
    assert!(text(&bad).contains("hint:"));
}

#[test]
fn unpack_refuses_a_non_empty_target_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep.txt"), b"mine").unwrap();
    let o = dbx_p(&[
        "unpack".as_ref(),
        p(&golden::bundle_path()),
        "-d".as_ref(),
        p(tmp.path()),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("E500") && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    let o = dbx_p(&[
        "unpack".as_ref(),
        p(&golden::bundle_path()),
        "-d".as_ref(),
        p(tmp.path()),
        "--force".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sealed_left"], 2);
    assert_eq!(std::fs::read(tmp.path().join("keep.txt")).unwrap(), b"mine");
    assert!(tmp.path().join("dbxport-golden-v1/bagit.txt").is_file());
    assert!(
        !tmp.path().join("secrets").exists(),
        "no identity, no plaintext"
    );
    // Forcing again replaces the bag and adds the secrets.
    let o = dbx_p(&[
        "unpack".as_ref(),
        p(&golden::bundle_path()),
        "-d".as_ref(),
        p(tmp.path()),
        "--force".as_ref(),
        "-i".as_ref(),
        p(&golden::key_path()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(tmp.path().join("secrets/etl/TLS.cert")).unwrap(),
        vec![0, 1, 2, 254, 255, b'\n']
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dbxport"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn pack_names_every_difference_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("u");
    assert!(dbx_p(&[
        "unpack".as_ref(),
        p(&golden::bundle_path()),
        "-d".as_ref(),
        p(&dir)
    ])
    .status
    .success());
    let bag = dir.join("dbxport-golden-v1");
    std::fs::write(
        bag.join("data/workspace/Users/alice@example.org/Report.py"),
        b"changed\n",
    )
    .unwrap();
    std::fs::remove_file(bag.join("data/jobs/42-nightly etl.json")).unwrap();
    std::fs::write(bag.join("data/workspace/Shared/new.py"), b"new\n").unwrap();
    let out = tmp.path().join("x.zip");
    let o = dbx_p(&[
        "pack".as_ref(),
        p(&dir),
        "-o".as_ref(),
        p(&out),
        "--json".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found: Vec<(String, String)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().into(),
                p["subject"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("E205", "entry data/jobs/42-nightly etl.json"),
        ("E204", "entry data/workspace/Shared/new.py"),
    ] {
        assert!(
            found.iter().any(|(c, s)| c == want.0 && s == want.1),
            "{want:?} not in {found:?}"
        );
    }
    assert!(!out.exists());
    // With only the content change left, pack finds it while hashing.
    std::fs::remove_file(bag.join("data/workspace/Shared/new.py")).unwrap();
    let o = dbx_p(&[
        "unpack".as_ref(),
        p(&golden::bundle_path()),
        "-d".as_ref(),
        p(&tmp.path().join("fresh")),
    ]);
    assert!(o.status.success());
    std::fs::copy(
        tmp.path()
            .join("fresh/dbxport-golden-v1/data/jobs/42-nightly etl.json"),
        bag.join("data/jobs/42-nightly etl.json"),
    )
    .unwrap();
    let o = dbx_p(&["pack".as_ref(), p(&dir), "-o".as_ref(), p(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("Report.py") && text(&o).contains("E206"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());
    let tmp_left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(tmp_left.is_empty(), "{tmp_left:?}");
}

#[test]
fn pack_reads_files_whose_names_on_disk_are_not_nfc() {
    // Names are packed in NFC; the files are read where they are, under their names on disk
    // (pack keeps those only when they differ from the packed name).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("u");
    assert!(dbx_p(&[
        "unpack".as_ref(),
        p(&golden::bundle_path()),
        "-d".as_ref(),
        p(&dir)
    ])
    .status
    .success());
    let shared = dir.join("dbxport-golden-v1/data/workspace/Shared");
    let nfd = "Donne\u{301}es";
    std::fs::rename(shared.join("Données"), shared.join(nfd)).unwrap();
    assert!(shared.join(nfd).join("analyse.r").is_file());
    let out = tmp.path().join("x.zip");
    let o = dbx_p(&["pack".as_ref(), p(&dir), "-o".as_ref(), p(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(golden::bundle_path()).unwrap()
    );
}

#[test]
fn pack_refuses_existing_output_and_mismatched_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("u");
    assert!(dbx_p(&[
        "unpack".as_ref(),
        p(&golden::bundle_path()),
        "-d".as_ref(),
        p(&dir)
    ])
    .status
    .success());
    let out = tmp.path().join("x.zip");
    std::fs::write(&out, b"precious").unwrap();
    let o = dbx_p(&["pack".as_ref(), p(&dir), "-o".as_ref(), p(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("E500"));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let o = dbx_p(&[
        "pack".as_ref(),
        p(&dir),
        "-o".as_ref(),
        p(&out),
        "--force".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(golden::bundle_path()).unwrap()
    );
    let o = dbx_p(&[
        "pack".as_ref(),
        p(&dir),
        "-o".as_ref(),
        p(&tmp.path().join("y.zip.age")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--recipient"));
    let o = dbx_p(&[
        "pack".as_ref(),
        p(tmp.path()),
        "-o".as_ref(),
        p(&tmp.path().join("z.zip")),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a folder with no bag: {}",
        text(&o)
    );
    assert!(text(&o).contains("E501"));
}

#[test]
fn passphrase_sealed_bundles_open_from_env_or_file_never_argv() {
    use dbxport::bundle::resource::Resource;
    use dbxport::bundle::{pack, BagBuilder, PackOptions, Sealer};
    use dbxport::model::secret::{ScopeBackend, SecretMetadata, SecretScope, ValueEncoding};
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = golden::settings();
    settings.bag_name = "dbxport-pass".into();
    let bag = tmp.path().join("dbxport-pass");
    let sealer =
        Sealer::with_passphrase(age::secrecy::SecretString::from("pa55 phrase".to_string()))
            .unwrap();
    let b = BagBuilder::create(&bag, settings, Some(sealer)).unwrap();
    b.add(Resource::directory("/Shared", 1)).unwrap();
    let scope = SecretScope {
        name: "s".into(),
        backend_type: ScopeBackend::Databricks,
        keyvault_metadata: None,
    };
    let mut w = b.secret_scope(&scope, &[]);
    w.add_value(
        &SecretMetadata {
            key: "k".into(),
            last_updated_timestamp: None,
        },
        b"v4lue",
        ValueEncoding::String,
    )
    .unwrap();
    w.finish().unwrap();
    let bag = b.finalize().unwrap();
    let bundle = tmp.path().join("p.zip");
    pack(&bag, &bundle, &PackOptions::default()).unwrap();
    let run = |extra: &[&std::ffi::OsStr], env: Option<&str>| {
        let mut c = Command::new(common::dbxport_bin());
        c.arg("verify")
            .arg(&bundle)
            .arg("--json")
            .args(extra)
            .env_remove("DBXPORT_PASSPHRASE");
        if let Some(e) = env {
            c.env("DBXPORT_PASSPHRASE", e);
        }
        c.stdin(std::process::Stdio::null()).output().unwrap()
    };
    let o = run(&["--passphrase".as_ref()], Some("pa55 phrase"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sealed_opened"], 2, "{v}");
    let pf = tmp.path().join("pf");
    std::fs::write(&pf, "pa55 phrase\n").unwrap();
    let o = run(&["--passphrase-file".as_ref(), pf.as_os_str()], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sealed_opened"], 2, "{v}");
    // No terminal, no env, no file: a clear refusal with a hint, not a hang.
    let o = run(&["--passphrase".as_ref()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("DBXPORT_PASSPHRASE"), "{}", text(&o));
    // There is no flag that takes the passphrase itself.
    let o = run(&["--passphrase=pa55".as_ref()], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_command_explains_itself() {
    for (cmd, needle) in [
        ("verify", "Exit status"),
        ("inspect", "sealed"),
        ("unpack", "0600"),
        ("pack", "byte"),
        ("keygen", "recipient"),
    ] {
        let o = dbx(&[cmd, "--help"]);
        assert!(o.status.success());
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(t.contains(needle), "{cmd} --help lacks {needle:?}:\n{t}");
        assert!(
            t.contains("Examples") || t.contains("Example"),
            "{cmd} --help has no example"
        );
    }
}

#[test]
fn a_reader_that_stops_early_gets_no_panic() {
    // `dbxport inspect … | head -1`: the reader is gone before dbxport prints.
    let mut child = Command::new(common::dbxport_bin())
        .args(["inspect"])
        .arg(common::repo_path("fixtures/bundles/golden-v1.zip"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(out.status.code(), Some(0) | Some(141)), "{out:?}");
}
