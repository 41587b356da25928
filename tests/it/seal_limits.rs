//! Hostile age headers (spec §10.3): a recipient stanza of 1 MiB and an scrypt work factor of
//! 22, both as an envelope around the whole bundle and as one sealed value inside it, are
//! refused with their code at once — before age parses a megabyte line by line (which took
//! minutes) or scrypt allocates 4 GiB.

use crate::common;

use age::secrecy::SecretString;
use dbxport::bundle::digest::sha256_hex;
use dbxport::bundle::json::to_canonical_bytes;
use dbxport::bundle::resource::Resource;
use dbxport::bundle::seal::{generate_identity, AGE_MAGIC, WORK_FACTOR_HINT};
use dbxport::bundle::{verify_file, write_bundle, BagSettings, ErrorCode, Opener, Sealer, Source};
use dbxport::model::secret::{ScopeBackend, SecretMetadata, SecretScope, ValueEncoding};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An age file whose only recipient stanza has a body of about `body_bytes` base64 bytes.
fn long_stanza(body_bytes: usize) -> Vec<u8> {
    let mut f = AGE_MAGIC.to_vec();
    f.extend_from_slice(b"-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    let line = [b'A'; 64];
    for _ in 0..body_bytes / 65 {
        f.extend_from_slice(&line);
        f.push(b'\n');
    }
    f.extend_from_slice(b"\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    f.extend_from_slice(&[0u8; 16 + 64]);
    f
}

/// A passphrase-sealed age file asking for scrypt work factor `log_n`; its MAC and body are
/// nonsense, which no reader gets to see if it refuses the work factor first.
fn scrypt_with_work_factor(log_n: u8) -> Vec<u8> {
    let mut f = AGE_MAGIC.to_vec();
    f.extend_from_slice(format!("-> scrypt c2FsdHNhbHRzYWx0c2FsdA {log_n}\n").as_bytes());
    f.extend_from_slice(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    f.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    f.extend_from_slice(&[0u8; 16 + 64]);
    f
}

fn settings() -> BagSettings {
    BagSettings {
        bag_name: "dbxport-hostile-seal".into(),
        bundle_id: "5f0c2a9e-7b1d-4c3e-9a8f-2d6b4e1c0a73".into(),
        created: time::macros::datetime!(2026-01-15 09:30:00 UTC),
        source: Source {
            host: "https://adb-1.1.azuredatabricks.net".into(),
            workspace_id: "1".into(),
        },
        options: serde_json::json!({}),
    }
}

/// A bundle with one scope whose value is `sealed` and whose digest index is a good one,
/// sealed by `sealer`, so that a reader gets to the value.
fn bundle_with_sealed_value(sealed: Vec<u8>, sealer: &Sealer, out: &Path) {
    let meta = SecretMetadata {
        key: "token".into(),
        last_updated_timestamp: None,
    };
    let scope = SecretScope {
        name: "s".into(),
        backend_type: ScopeBackend::Databricks,
        keyvault_metadata: None,
    };
    let index = serde_json::json!({
        "format": "dbxport-sealed-digests",
        "scope": "s",
        "values": {"token": {"encoding": "string", "sha256": sha256_hex(b"v"), "size": 1}},
    });
    let index = sealer.seal(&to_canonical_bytes(&index).unwrap()).unwrap();
    let resources = vec![
        Resource::secret("s", &meta, ValueEncoding::String, Some(sealed)),
        Resource::secret_scope(&scope, &[], std::slice::from_ref(&meta), Some(index)),
    ];
    let (bytes, _) = write_bundle(
        Vec::new(),
        &settings(),
        Some(sealer.sealing()),
        resources,
        Default::default(),
    )
    .unwrap();
    std::fs::write(out, bytes).unwrap();
}

/// An identity file and the sealer to its recipient.
fn x25519_key(dir: &Path) -> (PathBuf, Sealer) {
    let (text, recipient) = generate_identity("2026-01-01T00:00:00Z");
    let key = dir.join("key.txt");
    std::fs::write(&key, text.as_bytes()).unwrap();
    (key, Sealer::to_recipients(&[recipient]).unwrap())
}

fn opener_of(key: &Path) -> Opener {
    let mut o = Opener::new();
    o.add_identity_file(key).unwrap();
    o
}

const PASSPHRASE: &str = "pa55 phrase";

fn passphrase_opener() -> Opener {
    let mut o = Opener::new();
    o.add_passphrase(SecretString::from(PASSPHRASE.to_string()));
    o
}

// Without the bound, age re-parsed the header after every few bytes: a 1 MiB stanza did not
// finish in 200 s. With it, the refusal comes after reading 64 KiB. The time bound below is
// generous on purpose; the code is what is asserted.
#[test]
fn an_envelope_with_a_1_mib_stanza_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("b.zip.age");
    std::fs::write(&env, long_stanza(1 << 20)).unwrap();
    let t0 = Instant::now();
    let (key, _) = x25519_key(tmp.path());
    let e = verify_file(&env, Some(&opener_of(&key))).unwrap_err();
    assert_eq!(e.code(), ErrorCode::SealedCorrupt, "{e}");
    assert!(e.detail().contains("header is longer"), "{e}");
    assert!(e.subject().starts_with("envelope"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_sealed_value_with_a_1_mib_stanza_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("b.zip");
    let (key, sealer) = x25519_key(tmp.path());
    bundle_with_sealed_value(long_stanza(1 << 20), &sealer, &bundle);
    let t0 = Instant::now();
    let report = verify_file(&bundle, Some(&opener_of(&key))).unwrap();
    let refused: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.code() == ErrorCode::SealedCorrupt && p.detail().contains("header"))
        .map(|p| p.subject().to_string())
        .collect();
    assert!(
        refused.iter().any(|s| s.contains("values/token")),
        "{:?}",
        report.problems
    );
    assert!(t0.elapsed() < Duration::from_secs(20));

    // The same through the command line, as `verify --identity` runs it.
    let out = Command::new(common::dbxport_bin())
        .arg("verify")
        .arg(&bundle)
        .arg("--identity")
        .arg(&key)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("E402") && text.contains("header"), "{text}");
}

// Work factor 22 asks scrypt for 4 GiB: before the limit was lowered to 18 and checked before
// age, this aborted under a 2 GB memory limit (or took many seconds).
#[test]
fn scrypt_work_factor_above_18_is_refused_before_scrypt_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let sealer = Sealer::with_passphrase(SecretString::from(PASSPHRASE.to_string())).unwrap();
    for log_n in [22u8, 19, 255] {
        let env = tmp.path().join(format!("wf{log_n}.zip.age"));
        std::fs::write(&env, scrypt_with_work_factor(log_n)).unwrap();
        let e = verify_file(&env, Some(&passphrase_opener())).unwrap_err();
        assert_eq!(e.code(), ErrorCode::NoMatchingIdentity, "{e}");
        assert!(
            e.detail()
                .contains(&format!("work factor {log_n} is above the accepted 18")),
            "{e}"
        );
        // Its hint says what helps (re-sealing), not E401's "check the identity".
        assert_eq!(e.hint(), Some(WORK_FACTOR_HINT));

        let bundle = tmp.path().join(format!("wf{log_n}.zip"));
        bundle_with_sealed_value(scrypt_with_work_factor(log_n), &sealer, &bundle);
        let report = verify_file(&bundle, Some(&passphrase_opener())).unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.code() == ErrorCode::NoMatchingIdentity
                    && p.subject().contains("values/token")
                    && p.detail().contains(&format!("work factor {log_n}"))),
            "{:?}",
            report.problems
        );
    }
}

// The command line prints the work-factor hint, and only it: "check that --identity names the
// key" would send the user after a key that cannot help.
#[test]
fn verify_prints_the_work_factor_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("wf22.zip.age");
    std::fs::write(&env, scrypt_with_work_factor(22)).unwrap();
    let pass = tmp.path().join("pass.txt");
    std::fs::write(&pass, PASSPHRASE).unwrap();
    let out = Command::new(common::dbxport_bin())
        .arg("verify")
        .arg(&env)
        .arg("--passphrase-file")
        .arg(&pass)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E401"), "{err}");
    assert!(err.contains(&format!("hint: {WORK_FACTOR_HINT}")), "{err}");
    assert!(!err.contains("check that --identity"), "{err}");
}
