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
    // A small part is staged in a pack: its bytes are changed in place.
    let pack = b
        .dir()
        .join(dbxport::bundle::builder::STAGING_DIR)
        .join("packs/0");
    let bytes = std::fs::read(&pack).unwrap();
    assert_eq!(bytes, b"staged bytes");
    std::fs::write(&pack, b"staged bytez").unwrap();
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

/// A staging folder and its record log.
fn staging(bag: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let st = bag.join(dbxport::bundle::builder::STAGING_DIR);
    let log = st.join("records.jsonl");
    (st, log)
}

fn notebook(id: i64, bytes: &[u8]) -> Resource {
    let info: dbxport::model::workspace::ObjectInfo = serde_json::from_value(serde_json::json!({
        "object_type": "FILE", "path": format!("/Shared/f{id}.bin"), "object_id": id
    }))
    .unwrap();
    Resource::workspace_file(&info, Content::Bytes(bytes.to_vec()))
}

/// A kill while a record's line was being written leaves it cut short (or, written but not
/// whole, unparsable): the resumed builder drops that line and the record is staged again.
#[test]
fn a_torn_last_record_line_is_dropped_on_resume() {
    for torn in [
        &b"{\"seq\":2,\"kind\":\"fi"[..],
        &b"{\"seq\":2,\"kind\"\n"[..],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let settings = golden::settings();
        let bag = tmp.path().join(&settings.bag_name);
        let (_, log) = staging(&bag);
        let whole = {
            let b = BagBuilder::create(&bag, settings, None).unwrap();
            b.add(notebook(1, b"one")).unwrap();
            b.add(notebook(2, b"two")).unwrap();
            std::fs::metadata(&log).unwrap().len()
        };
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, torn).unwrap();
        drop(f);
        let b = BagBuilder::resume(&bag, None).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), whole, "cut back");
        b.add(notebook(3, b"three")).unwrap();
        let out = tmp.path().join("x.zip");
        let s = b.write_bundle_file(&out, None, false).unwrap();
        assert_eq!((s.payload_files, s.payload_bytes), (3, 11));
        assert!(verify_file(&out, None).unwrap().ok);
    }
}

/// A damaged line that is not the last is not an interrupted commit: resume refuses it.
#[test]
fn a_damaged_record_line_before_the_last_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let bag = tmp.path().join(&settings.bag_name);
    let (_, log) = staging(&bag);
    {
        let b = BagBuilder::create(&bag, settings, None).unwrap();
        b.add(notebook(1, b"one")).unwrap();
        b.add(notebook(2, b"two")).unwrap();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("{", "[", 1)).unwrap();
    let e = BagBuilder::resume(&bag, None).err().unwrap();
    assert_eq!(e.code(), ErrorCode::Staging);
    assert!(e.to_string().contains("damaged"), "{e}");
}

/// Bytes appended to a pack by a resource whose record was never committed are cut off on
/// resume, and packs no record uses are removed; the bundle holds only committed bytes.
#[test]
fn pack_bytes_past_the_last_committed_record_are_discarded_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let bag = tmp.path().join(&settings.bag_name);
    let (st, log) = staging(&bag);
    {
        let b = BagBuilder::create(&bag, settings, None).unwrap();
        b.add(notebook(1, b"one")).unwrap();
        b.add(notebook(2, b"two")).unwrap();
    }
    let committed = std::fs::read(&log).unwrap();
    let pack = st.join("packs/0");
    assert_eq!(std::fs::read(&pack).unwrap(), b"onetwo");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&pack)
        .unwrap();
    std::io::Write::write_all(&mut f, b"uncommitted").unwrap();
    drop(f);
    std::fs::write(st.join("packs/1"), b"never committed").unwrap();
    let b = BagBuilder::resume(&bag, None).unwrap();
    assert_eq!(std::fs::read(&pack).unwrap(), b"onetwo");
    assert!(!st.join("packs/1").exists());
    assert_eq!(
        std::fs::read(&log).unwrap(),
        committed,
        "the log is untouched"
    );
    b.add(notebook(3, b"three")).unwrap();
    assert_eq!(std::fs::read(&pack).unwrap(), b"onetwothree");
    let out = tmp.path().join("x.zip");
    let s = b.write_bundle_file(&out, None, false).unwrap();
    assert_eq!((s.payload_files, s.payload_bytes), (3, 11));
    assert!(verify_file(&out, None).unwrap().ok);
}

/// A staging folder an older dbxport wrote (a file per record) is refused clearly, not misread.
#[test]
fn an_older_staging_format_is_refused_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let bag = tmp.path().join(&settings.bag_name);
    let (st, _) = staging(&bag);
    drop(BagBuilder::create(&bag, settings, None).unwrap());
    let state = std::fs::read_to_string(st.join("state.json")).unwrap();
    assert!(state.contains("dbxport-staging-2"), "{state}");
    std::fs::write(
        st.join("state.json"),
        state.replace("dbxport-staging-2", "dbxport-staging-1"),
    )
    .unwrap();
    let e = BagBuilder::resume(&bag, None).err().unwrap();
    assert_eq!(e.code(), ErrorCode::Staging);
    let e = e.to_string();
    assert!(
        e.contains("dbxport-staging-1") && e.contains("export again without --resume"),
        "{e}"
    );
}

/// However many resources, the staging area holds a few files: small parts share packs.
#[test]
fn small_parts_share_packs_and_large_ones_have_files() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = golden::settings();
    let bag = tmp.path().join(&settings.bag_name);
    let (st, _) = staging(&bag);
    let b = BagBuilder::create(&bag, settings, None).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let b = &b;
            s.spawn(move || {
                for i in 0..50 {
                    b.add(notebook(t * 100 + i, format!("{t}/{i}").as_bytes()))
                        .unwrap();
                }
            });
        }
    });
    b.add(notebook(1000, &vec![1; (2 << 20) + 1])).unwrap();
    let count = |d: &str| std::fs::read_dir(st.join(d)).unwrap().count();
    assert!((1..=4).contains(&count("packs")), "{}", count("packs"));
    assert_eq!(count("blobs"), 1);
    let out = tmp.path().join("x.zip");
    let s = b.write_bundle_file(&out, None, false).unwrap();
    assert_eq!(s.payload_files, 201);
    assert!(verify_file(&out, None).unwrap().ok);
}
