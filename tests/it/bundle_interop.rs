//! Independent tools agree with dbxport about bundles dbxport writes (spec §15): Info-ZIP
//! `unzip -t`, `python3 -m zipfile -t`, `bagit.py --validate` (PyPI bagit, in the test venv),
//! `sha256sum -c`, and Debian's `age` both ways — opening what dbxport sealed, and dbxport
//! opening what `age` sealed with a recipient and with a passphrase (typed through a pty).

use crate::common;
use crate::support::fresh;
use crate::support::golden;
use crate::support::schema;

use dbxport::bundle::container::{Method, ZipWriter};
use dbxport::bundle::inventory::Sealing;
use dbxport::bundle::resource::Resource;
use dbxport::bundle::write_bundle;
use dbxport::model::secret::{ScopeBackend, SecretMetadata, SecretScope, ValueEncoding};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dbxport() -> Command {
    Command::new(common::dbxport_bin())
}

/// A new key made by `dbxport keygen`: (key file, recipient).
fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("key.txt");
    let out = run(dbxport().arg("keygen").arg("-o").arg(&key));
    (
        key,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

/// The `zip` crate, a third reader written by others, reads every entry and checks its CRC.
fn zip_crate_reads(bundle: &Path) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(bundle).unwrap()).unwrap();
    assert!(!z.has_duplicate_names());
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        assert!(!f.is_symlink());
        assert!(f.enclosed_name().is_some(), "{:?}", f.name());
        std::io::copy(&mut f, &mut std::io::sink()).unwrap();
    }
}

fn zip_tools_agree(bundle: &Path) {
    zip_crate_reads(bundle);
    if common::have_tool("unzip") {
        let out = run(Command::new("unzip").arg("-t").arg(bundle));
        assert!(String::from_utf8_lossy(&out.stdout).contains("No errors detected"));
    }
    if common::have_tool("python3") {
        let out = run(Command::new("python3")
            .args(["-m", "zipfile", "-t"])
            .arg(bundle));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("corrupted"), "{text}");
        assert!(text.contains("Done testing"), "{text}");
    }
}

fn bag_tools_agree(bag: &Path) {
    if common::have_tool("sha256sum") {
        for m in ["manifest-sha256.txt", "tagmanifest-sha256.txt"] {
            run(Command::new("sha256sum")
                .args(["-c", "--quiet", "--strict", m])
                .current_dir(bag));
        }
    }
    if let Some(bagit) = common::venv_bin("bagit.py") {
        let py = common::venv_python().unwrap();
        run(Command::new(py).arg(bagit).arg("--validate").arg(bag));
    }
}

#[test]
fn zip_readers_accept_golden_and_fresh_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, recipient) = keygen(tmp.path());
    let fresh = fresh::build(tmp.path(), &recipient);
    zip_tools_agree(&golden::bundle_path());
    zip_tools_agree(&fresh);
    schema::assert_bundle_inventory_valid(&fresh);
}

#[test]
fn bagit_and_sha256sum_accept_unpacked_bags() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(tmp.path());
    let fresh = fresh::build(tmp.path(), &recipient);
    for bundle in [golden::bundle_path(), fresh.clone()] {
        // Unpacked by dbxport, with secrets opened beside the bag.
        let out = tempfile::tempdir().unwrap();
        let key = if bundle == fresh {
            key.clone()
        } else {
            golden::key_path()
        };
        run(dbxport()
            .arg("unpack")
            .arg(&bundle)
            .arg("-d")
            .arg(out.path())
            .arg("-i")
            .arg(&key));
        let bag = dbxport::bundle::pack::find_bag(out.path()).unwrap();
        bag_tools_agree(&bag);
        // Extracted by Info-ZIP, without dbxport.
        if common::have_tool("unzip") {
            let plain = tempfile::tempdir().unwrap();
            run(Command::new("unzip")
                .arg("-q")
                .arg(&bundle)
                .arg("-d")
                .arg(plain.path()));
            bag_tools_agree(&dbxport::bundle::pack::find_bag(plain.path()).unwrap());
        }
    }
}

#[test]
fn age_tool_opens_values_dbxport_sealed() {
    if !common::have_tool("age") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(tmp.path());
    let fresh = fresh::build(tmp.path(), &recipient);
    let out = tmp.path().join("out");
    run(dbxport().arg("unpack").arg(&fresh).arg("-d").arg(&out));
    let bag = dbxport::bundle::pack::find_bag(&out).unwrap();
    let b = dbxport::bundle::Bundle::open(&fresh, None).unwrap();
    for (scope, k) in fresh::SECRETS {
        let rec = b
            .inventory()
            .records
            .iter()
            .find(|r| r.name == format!("{scope}/{k}"))
            .unwrap();
        let sealed = bag.join(&rec.stored[0]);
        let plain = run(Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&key)
            .arg(&sealed))
        .stdout;
        assert_eq!(plain, fresh::value_of(k));
    }
    // The golden bundle's value opens with the fixture key too.
    let gout = tmp.path().join("gout");
    run(dbxport()
        .arg("unpack")
        .arg(golden::bundle_path())
        .arg("-d")
        .arg(&gout));
    let v = gout.join("dbxport-golden-v1/data/secrets/etl/values/db-password.age");
    let plain = run(Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(golden::key_path())
        .arg(&v))
    .stdout;
    assert_eq!(plain, b"hunter2-golden");
}

/// Seals `plain` with the `age` tool to `recipient`.
fn age_seal_to(recipient: &str, plain: &[u8], dir: &Path, name: &str) -> Vec<u8> {
    let input = dir.join(format!("{name}.plain"));
    let output = dir.join(format!("{name}.age"));
    std::fs::write(&input, plain).unwrap();
    run(Command::new("age")
        .arg("-r")
        .arg(recipient)
        .arg("-o")
        .arg(&output)
        .arg(&input));
    std::fs::remove_file(&input).unwrap();
    std::fs::read(output).unwrap()
}

/// Seals `plain` with `age -p`, typing the passphrase (from the environment, never from argv)
/// into age's prompt through a pseudo-terminal.
fn age_seal_passphrase(pass: &str, plain: &[u8], dir: &Path, name: &str) -> Vec<u8> {
    const DRIVER: &str = r#"
import os, pty, sys
pw = os.environ["AGE_TEST_PASSPHRASE"].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
buf, sent = b"", 0
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    buf += data
    while sent < 2 and buf.lower().count(b"passphrase") > sent:
        os.write(fd, pw + b"\n")
        sent += 1
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let input = dir.join(format!("{name}.plain"));
    let output = dir.join(format!("{name}.age"));
    std::fs::write(&input, plain).unwrap();
    run(Command::new("python3")
        .args(["-c", DRIVER, "age", "-p", "-o"])
        .arg(&output)
        .arg(&input)
        .env("AGE_TEST_PASSPHRASE", pass));
    std::fs::remove_file(&input).unwrap();
    std::fs::read(output).unwrap()
}

/// A bundle whose secret value and digest index were sealed by the `age` tool.
fn bundle_sealed_by(seal: &dyn Fn(&[u8], &str) -> Vec<u8>, sealing: Sealing, out: &Path) {
    let value = b"sealed by the age tool".to_vec();
    let meta = SecretMetadata {
        key: "token".into(),
        last_updated_timestamp: None,
    };
    let index = serde_json::json!({
        "format": "dbxport-sealed-digests",
        "scope": "ext",
        "values": {"token": {"encoding": "string", "sha256": dbxport::bundle::digest::sha256_hex(&value), "size": value.len()}},
    });
    let index = dbxport::bundle::json::to_canonical_bytes(&index).unwrap();
    let scope = SecretScope {
        name: "ext".into(),
        backend_type: ScopeBackend::Databricks,
        keyvault_metadata: None,
    };
    let resources = vec![
        Resource::secret(
            "ext",
            &meta,
            ValueEncoding::String,
            Some(seal(&value, "value")),
        ),
        Resource::secret_scope(
            &scope,
            &[],
            std::slice::from_ref(&meta),
            Some(seal(&index, "index")),
        ),
    ];
    let mut settings = golden::settings();
    settings.bag_name = "dbxport-age-interop".into();
    let (bytes, _) = write_bundle(
        Vec::new(),
        &settings,
        Some(sealing),
        resources,
        Default::default(),
    )
    .unwrap();
    std::fs::write(out, bytes).unwrap();
}

#[test]
fn dbxport_opens_values_the_age_tool_sealed_to_a_recipient() {
    if !common::have_tool("age") || !common::have_tool("age-keygen") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("agekey.txt");
    run(Command::new("age-keygen").arg("-o").arg(&key));
    let recipient = run(Command::new("age-keygen").arg("-y").arg(&key)).stdout;
    let recipient = String::from_utf8(recipient).unwrap().trim().to_string();
    let bundle = tmp.path().join("ext.zip");
    let dir = tmp.path().to_path_buf();
    bundle_sealed_by(
        &|plain, name| age_seal_to(&recipient, plain, &dir, name),
        Sealing {
            recipients: 1,
            recipient_types: vec!["X25519".into()],
            passphrase: false,
        },
        &bundle,
    );
    let out = run(dbxport()
        .arg("verify")
        .arg(&bundle)
        .arg("--json")
        .arg("-i")
        .arg(&key));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["sealed_opened"], 2);
    let target = tmp.path().join("t");
    run(dbxport()
        .arg("unpack")
        .arg(&bundle)
        .arg("-d")
        .arg(&target)
        .arg("-i")
        .arg(&key));
    assert_eq!(
        std::fs::read(target.join("secrets/ext/token")).unwrap(),
        b"sealed by the age tool"
    );
}

#[test]
fn dbxport_opens_values_the_age_tool_sealed_with_a_passphrase() {
    if !common::have_tool("age") || !common::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pass = "correct horse battery staple";
    let bundle = tmp.path().join("pass.zip");
    let dir = tmp.path().to_path_buf();
    bundle_sealed_by(
        &|plain, name| age_seal_passphrase(pass, plain, &dir, name),
        Sealing {
            recipients: 1,
            recipient_types: vec!["scrypt".into()],
            passphrase: true,
        },
        &bundle,
    );
    // Passphrase from the environment.
    let out = run(dbxport()
        .arg("verify")
        .arg(&bundle)
        .args(["--json", "--passphrase"])
        .env("DBXPORT_PASSPHRASE", pass));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sealed_opened"], 2, "{v}");
    // Passphrase from a file.
    let pf = tmp.path().join("pass.txt");
    std::fs::write(&pf, format!("{pass}\n")).unwrap();
    let target = tmp.path().join("t");
    run(dbxport()
        .arg("unpack")
        .arg(&bundle)
        .arg("-d")
        .arg(&target)
        .arg("--passphrase-file")
        .arg(&pf)
        .env_remove("DBXPORT_PASSPHRASE"));
    assert_eq!(
        std::fs::read(target.join("secrets/ext/token")).unwrap(),
        b"sealed by the age tool"
    );
    // A wrong passphrase is refused with its code.
    let out = dbxport()
        .arg("verify")
        .arg(&bundle)
        .args(["--json", "--passphrase"])
        .env("DBXPORT_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["problems"][0]["code"], "E401");
}

#[test]
fn envelope_opens_with_the_age_tool_and_holds_the_plain_bundle() {
    if !common::have_tool("age") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(tmp.path());
    let out = tmp.path().join("u");
    run(dbxport()
        .arg("unpack")
        .arg(golden::bundle_path())
        .arg("-d")
        .arg(&out));
    let sealed = tmp.path().join("golden.zip.age");
    run(dbxport()
        .arg("pack")
        .arg(&out)
        .arg("-o")
        .arg(&sealed)
        .arg("-r")
        .arg(&recipient));
    let opened = tmp.path().join("opened.zip");
    run(Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg("-o")
        .arg(&opened)
        .arg(&sealed));
    assert_eq!(
        std::fs::read(&opened).unwrap(),
        std::fs::read(golden::bundle_path()).unwrap()
    );
    zip_tools_agree(&opened);
    // The envelope key opens the envelope; the fixture key the sealed values inside.
    let v = run(dbxport()
        .arg("verify")
        .arg(&sealed)
        .arg("--json")
        .arg("-i")
        .arg(&key)
        .arg("-i")
        .arg(golden::key_path()));
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["envelope"], true);
    assert_eq!(v["sealed_opened"], 3);
    // With only the envelope key, the values inside are reported as not opening.
    let out = dbxport()
        .arg("verify")
        .arg(&sealed)
        .arg("--json")
        .arg("-i")
        .arg(&key)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["problems"][0]["code"], "E401");
    // Without any key the envelope cannot be read at all.
    let out = dbxport()
        .arg("verify")
        .arg(&sealed)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"][0]["code"], "E400");
    // No plaintext scratch file is left next to the output.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn zip64_structures_are_read_by_every_tool() {
    let tmp = tempfile::tempdir().unwrap();
    // Every entry zip64 (the encoding of §3.5 on small data) and more than 65535 entries (the
    // zip64 end records).
    let path = tmp.path().join("z64.zip");
    let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut w = ZipWriter::new(f);
    w.force_zip64_for_tests();
    w.add_dir("bag/").unwrap();
    for i in 0..66_000u32 {
        let name = format!("bag/f{i:06}");
        let data = if i % 1000 == 0 {
            vec![b'x'; 5000]
        } else {
            i.to_le_bytes().to_vec()
        };
        let method = if i % 1000 == 0 {
            Method::Deflated
        } else {
            Method::Stored
        };
        w.start_file(&name, data.len() as u64, method).unwrap();
        w.write_data(&data).unwrap();
        w.finish_file().unwrap();
    }
    w.finish().unwrap();
    zip_tools_agree(&path);
    let mut f = std::fs::File::open(&path).unwrap();
    let idx = dbxport::bundle::container::read_index(&mut f).unwrap();
    assert!(
        idx.problems.is_empty(),
        "{:?}",
        &idx.problems[..idx.problems.len().min(3)]
    );
    assert_eq!(idx.entries.len(), 66_001);
}
