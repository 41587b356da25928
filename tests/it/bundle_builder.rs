//! The staging builder an export uses: resources added concurrently, an interruption at any
//! point, a resumed builder that keeps what was committed and drops what was not, and a bag
//! that packs into a bundle that verifies.

use crate::support::golden;
use crate::support::schema;

use dbxport::bundle::resource::{Content, Resource};
use dbxport::bundle::{pack, verify_file, BagBuilder, ErrorCode, PackOptions};
use dbxport::model::secret::{ScopeBackend, SecretMetadata, SecretScope, ValueEncoding};
use dbxport::model::Kind;

fn scope(name: &str) -> SecretScope {
    SecretScope {
        name: name.into(),
        backend_type: ScopeBackend::Databricks,
        keyvault_metadata: None,
    }
}

fn key(k: &str) -> SecretMetadata {
    SecretMetadata {
        key: k.into(),
        last_updated_timestamp: None,
    }
}

#[test]
fn an_interrupted_export_resumes_and_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let bag = tmp.path().join(&settings.bag_name);
    {
        let b = BagBuilder::create(&bag, settings.clone(), Some(golden::sealer())).unwrap();
        b.add(Resource::directory("/Shared", 1)).unwrap();
        b.add(Resource::model_artifact(
            "m",
            "1",
            "big.bin",
            Content::Bytes(golden::noise(5 << 20, 3)),
        ))
        .unwrap();
        let mut done = b.secret_scope(&scope("done"), &[]);
        done.add_value(&key("a"), b"alpha", ValueEncoding::String)
            .unwrap();
        done.finish().unwrap();
        let mut half = b.secret_scope(&scope("half"), &[]);
        half.add_value(&key("b"), b"beta", ValueEncoding::String)
            .unwrap();
        // The process dies here: `half` never finishes, and a blob is half written.
        std::fs::write(
            bag.join(".dbxport-staging/blobs/9999999999-0.tmp"),
            b"partial",
        )
        .unwrap();
        std::mem::forget(half);
    }
    // A second create on the same folder is refused: it holds a staged export.
    let again = BagBuilder::create(&bag, settings, None).err().unwrap();
    assert_eq!(again.code(), ErrorCode::TargetNotEmpty);

    let b = BagBuilder::resume(&bag, None).unwrap();
    assert!(b.contains(Kind::Directory, "1"));
    assert!(b.contains(Kind::ModelArtifact, "m/1/big.bin"));
    assert!(b.contains(Kind::SecretScope, "done"));
    assert!(b.contains(Kind::Secret, "done/a"));
    assert!(
        !b.contains(Kind::Secret, "half/b"),
        "values of an unfinished scope are dropped"
    );
    assert!(!bag.join(".dbxport-staging/blobs/9999999999-0.tmp").exists());
    // Adding a committed resource again is refused; the export skips it instead.
    let dup = b.add(Resource::directory("/Shared", 1)).unwrap_err();
    assert_eq!(dup.code(), ErrorCode::Staging);
    // The resumed builder re-seals to the recipients recorded at creation.
    let mut half = b.secret_scope(&scope("half"), &[]);
    half.add_value(&key("b"), b"beta", ValueEncoding::String)
        .unwrap();
    half.finish().unwrap();
    b.add(Resource::directory("/Shared/later", 2)).unwrap();
    // The artifact's model and version (a reader refuses an artifact without them, E307).
    let model = serde_json::from_value(serde_json::json!({"name": "m"})).unwrap();
    b.add(Resource::registered_model(&model)).unwrap();
    let version = serde_json::from_value(serde_json::json!({"name": "m", "version": "1"})).unwrap();
    let big = golden::noise(5 << 20, 3);
    let big_sha = dbxport::bundle::digest::sha256_hex(&big);
    let artifacts = [("big.bin", big_sha.as_str(), big.len() as u64)];
    b.add(Resource::model_version(&version, artifacts, true))
        .unwrap();
    let bag = b.finalize().unwrap();
    assert!(!bag.join(".dbxport-staging").exists());
    let out = tmp.path().join("out.zip");
    pack(&bag, &out, &PackOptions::default()).unwrap();
    let report = verify_file(&out, Some(&golden::opener())).unwrap();
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.sealed_opened, 4, "two indexes and two values");
    schema::assert_bundle_inventory_valid(&out);
}

#[test]
fn finalize_refuses_an_unfinished_scope_and_secrets_need_recipients() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let b =
        BagBuilder::create(&tmp.path().join(&settings.bag_name), settings.clone(), None).unwrap();
    let mut w = b.secret_scope(&scope("s"), &[]);
    let e = w
        .add_value(&key("k"), b"v", ValueEncoding::String)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Staging);
    assert!(e.to_string().contains("--recipient"), "{e}");

    let tmp2 = tempfile::tempdir().unwrap();
    let b = BagBuilder::create(
        &tmp2.path().join(&settings.bag_name),
        settings,
        Some(golden::sealer()),
    )
    .unwrap();
    let mut w = b.secret_scope(&scope("s"), &[]);
    w.add_value(&key("k"), b"v", ValueEncoding::String).unwrap();
    drop(w);
    let e = b.finalize().unwrap_err();
    assert_eq!(e.code(), ErrorCode::Staging);
    assert!(e.to_string().contains("never finished"), "{e}");
}

#[test]
fn a_bag_with_a_leftover_staging_area_does_not_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let b = BagBuilder::create(&tmp.path().join(&settings.bag_name), settings, None).unwrap();
    b.add(Resource::directory("/Shared", 1)).unwrap();
    let err = pack(b.dir(), &tmp.path().join("x.zip"), &PackOptions::default()).unwrap_err();
    assert!(
        err.0
            .iter()
            .any(|p| p.to_string().contains("not finalized")),
        "{err}"
    );
}

#[test]
fn unreadable_values_are_recorded_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let b = BagBuilder::create(&tmp.path().join(&settings.bag_name), settings, None).unwrap();
    let mut w = b.secret_scope(&scope("kv"), &[]);
    w.add_unreadable(&key("k"), "PERMISSION_DENIED").unwrap();
    w.finish().unwrap();
    let bag = b.finalize().unwrap();
    let out = tmp.path().join("x.zip");
    pack(&bag, &out, &PackOptions::default()).unwrap();
    let r = dbxport::bundle::inspect(&out, None).unwrap();
    assert!(r.sealed.is_none());
    assert!(r.notes.iter().any(|n| n.note.contains("PERMISSION_DENIED")));
}

#[test]
fn a_staged_bag_resumes_only_with_the_recipients_it_started_with() {
    use dbxport::bundle::seal::generate_identity;
    use dbxport::bundle::Sealer;
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let bag = tmp.path().join(&settings.bag_name);
    let (_, a) = generate_identity("2026-01-01T00:00:00Z");
    let (_, b) = generate_identity("2026-01-01T00:00:00Z");
    drop(BagBuilder::create(&bag, settings, Some(Sealer::to_recipients(&[&a]).unwrap())).unwrap());
    // One X25519 key for another: the same count and type, but not the same recipients.
    let e = BagBuilder::resume(&bag, Some(Sealer::to_recipients(&[&b]).unwrap()))
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::Staging);
    assert!(e.to_string().contains("different recipients"), "{e}");
    assert!(BagBuilder::resume(&bag, Some(Sealer::to_recipients(&[&a]).unwrap())).is_ok());
}

/// Export writes the bundle straight from the staged files, trusting the digests taken while
/// staging: a staged file changed since is refused (E206) and nothing reaches the output path.
#[test]
fn a_staged_file_changed_after_staging_is_refused_when_written() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let b = BagBuilder::create(&tmp.path().join(&settings.bag_name), settings, None).unwrap();
    b.add(Resource::model_artifact(
        "m",
        "1",
        "weights.bin",
        Content::Bytes(b"staged bytes".to_vec()),
    ))
    .unwrap();
    let blobs = b
        .dir()
        .join(dbxport::bundle::builder::STAGING_DIR)
        .join("blobs");
    let blob = std::fs::read_dir(&blobs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&blob, b"staged bytez").unwrap();
    let out = tmp.path().join("x.zip");
    let err = b.write_bundle_file(&out, None, false).unwrap_err();
    assert!(
        err.0.iter().any(|p| p.code() == ErrorCode::DigestMismatch),
        "{err}"
    );
    assert!(!out.exists(), "no bundle at the output path");
}

/// The direct write gives a bundle that verifies, with the staged report tag file in it.
#[test]
fn a_staged_bag_is_written_directly_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let b = BagBuilder::create(&tmp.path().join(&settings.bag_name), settings, None).unwrap();
    b.add(Resource::directory("/Shared", 1)).unwrap();
    let info: dbxport::model::workspace::ObjectInfo = serde_json::from_value(serde_json::json!({
        "object_type": "FILE", "path": "/Shared/data.bin", "object_id": 2
    }))
    .unwrap();
    b.add(Resource::workspace_file(
        &info,
        Content::Bytes(vec![7; 100_000]),
    ))
    .unwrap();
    b.add_tag_file("export-report.json", b"{}").unwrap();
    let out = tmp.path().join("x.zip");
    let s = b.write_bundle_file(&out, None, false).unwrap();
    assert_eq!((s.payload_files, s.payload_bytes), (1, 100_000));
    let report = verify_file(&out, None).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    // The output path is never overwritten unless asked.
    let b2 = BagBuilder::resume(&tmp.path().join(&golden::settings().bag_name), None).unwrap();
    let err = b2.write_bundle_file(&out, None, false).unwrap_err();
    assert!(
        err.0.iter().any(|p| p.code() == ErrorCode::TargetNotEmpty),
        "{err}"
    );
}
