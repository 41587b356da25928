//! `spec/inventory.schema.json` and the reader's own inventory checks agree: every inventory the
//! writers produce conforms, and each mutation is accepted or refused by both alike.

use crate::support::golden;
use crate::support::schema;

use dbxport::bundle::inventory::Inventory;
use serde_json::{json, Value};

/// The current (format 1.1) golden bundle's inventory.
fn golden_inventory() -> Value {
    let b = dbxport::bundle::Bundle::open(&golden::current_path(), None).unwrap();
    serde_json::from_slice(&b.inventory().to_bytes()).unwrap()
}

fn ours(v: &Value) -> bool {
    Inventory::from_bytes(&serde_json::to_vec(v).unwrap()).is_ok()
}

#[test]
fn schema_and_reader_agree_on_mutations() {
    let base = golden_inventory();
    schema::assert_valid(&base);
    assert!(ours(&base));
    type Mutation = (&'static str, bool, fn(&mut Value));
    let cases: Vec<Mutation> = vec![
        ("unknown top-level field", true, |v| {
            v["future"] = json!({"a": 1})
        }),
        ("unknown record field", true, |v| {
            v["records"][0]["future"] = json!(1)
        }),
        ("minor version bump", true, |v| {
            v["format_version"] = json!("1.4.0")
        }),
        ("unknown kind", true, |v| {
            v["records"][0]["kind"] = json!("dashboard")
        }),
        ("missing bundle_id", false, |v| {
            v.as_object_mut().unwrap().remove("bundle_id");
        }),
        ("bundle_id not a uuid", false, |v| {
            v["bundle_id"] = json!("nope")
        }),
        ("created with offset", false, |v| {
            v["created"] = json!("2026-01-15T09:30:00+01:00")
        }),
        ("sha256 uppercase", false, |v| {
            v["records"][1]["sha256"] = json!("A".repeat(64))
        }),
        ("stored path escapes", false, |v| {
            v["records"][1]["stored"] = json!(["data/../x"])
        }),
        ("stored path outside data", false, |v| {
            v["records"][1]["stored"] = json!(["bagit.txt"])
        }),
        ("stored path with percent", false, |v| {
            v["records"][1]["stored"] = json!(["data/a%20b"])
        }),
        ("negative size", false, |v| {
            v["records"][1]["size"] = json!(-1)
        }),
        ("notes not strings", false, |v| {
            v["records"][1]["notes"] = json!([1])
        }),
        ("meta not an object", false, |v| {
            v["records"][1]["meta"] = json!([])
        }),
        ("sealing with zero recipients", false, |v| {
            v["sealing"]["recipients"] = json!(0)
        }),
        ("sealing types repeated", false, |v| {
            v["sealing"]["recipient_types"] = json!(["X25519", "X25519"])
        }),
        ("records not an array", false, |v| v["records"] = json!({})),
        // §6.5/§14.3: from 1.1 a model version carries its artifact summary.
        ("1.1 version without artifacts_sha256", false, |v| {
            drop_version_meta(v, "artifacts_sha256")
        }),
        ("1.1 version without artifact_count", false, |v| {
            drop_version_meta(v, "artifact_count")
        }),
        ("1.1 version without artifact_bytes", false, |v| {
            drop_version_meta(v, "artifact_bytes")
        }),
        ("1.1 version without complete", false, |v| {
            drop_version_meta(v, "complete")
        }),
        ("1.4 version without complete", false, |v| {
            drop_version_meta(v, "complete");
            v["format_version"] = json!("1.4.0");
        }),
        ("1.0 version without the summary", true, |v| {
            for k in [
                "artifacts_sha256",
                "artifact_count",
                "artifact_bytes",
                "complete",
            ] {
                drop_version_meta(v, k);
            }
            v["format_version"] = json!("1.0.0");
        }),
        ("1.1 complete not a boolean", false, |v| {
            version_meta(v)["complete"] = json!("yes")
        }),
        ("1.1 artifact_count negative", false, |v| {
            version_meta(v)["artifact_count"] = json!(-1)
        }),
        ("1.1 artifacts_sha256 not hex", false, |v| {
            version_meta(v)["artifacts_sha256"] = json!("x")
        }),
    ];
    for (what, valid, mutate) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        assert_eq!(schema::is_valid(&v), valid, "schema on {what}");
        assert_eq!(ours(&v), valid, "reader on {what}");
    }
}

fn version_meta(v: &mut Value) -> &mut Value {
    let recs = v["records"].as_array_mut().unwrap();
    let r = recs
        .iter_mut()
        .find(|r| r["kind"] == "model_version")
        .unwrap();
    &mut r["meta"]
}

fn drop_version_meta(v: &mut Value, key: &str) {
    version_meta(v).as_object_mut().unwrap().remove(key);
}

/// The frozen 1.0 golden bundle passes both, without the 1.1 keys.
#[test]
fn the_1_0_golden_satisfies_both() {
    let b = dbxport::bundle::Bundle::open(&golden::bundle_path(), None).unwrap();
    let v: Value = serde_json::from_slice(&b.inventory().to_bytes()).unwrap();
    assert_eq!(v["format_version"], "1.0.0");
    schema::assert_valid(&v);
    assert!(ours(&v));
}

#[test]
fn kind_specific_meta_rules_agree() {
    let base = golden_inventory();
    let recs = base["records"].as_array().unwrap();
    let index_of = |kind: &str| recs.iter().position(|r| r["kind"] == kind).unwrap();
    for (kind, key, bad) in [
        ("notebook", "language", json!("COBOL")),
        ("notebook", "formats", json!(["PDF"])),
        ("secret", "encoding", json!("hex")),
        ("secret_scope", "backend_type", json!("VAULT")),
    ] {
        let i = index_of(kind);
        let mut v = base.clone();
        v["records"][i]["meta"][key] = bad;
        assert!(!schema::is_valid(&v), "schema accepts bad {kind}.{key}");
        assert!(!ours(&v), "reader accepts bad {kind}.{key}");
        let mut v = base.clone();
        v["records"][i]["meta"].as_object_mut().unwrap().remove(key);
        assert!(!schema::is_valid(&v), "schema accepts {kind} without {key}");
        assert!(!ours(&v), "reader accepts {kind} without {key}");
    }
}

/// Issue #10: a kind's meta is typed once (`kinds::<kind>::format`) and the schema says the
/// same. For every record of the golden bundle and every key of its `meta`, dropping the key
/// or giving it a value of another JSON type is accepted or refused by the schema and the
/// reader alike.
#[test]
fn typed_meta_and_schema_agree_on_every_meta_key() {
    let base = golden_inventory();
    let recs = base["records"].as_array().unwrap().clone();
    let mut checked = 0;
    let mut disagree = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let kind = r["kind"].as_str().unwrap();
        for key in r["meta"].as_object().unwrap().keys() {
            let other_type = match &r["meta"][key] {
                Value::Object(_) => json!("x"),
                _ => json!({"x": 1}),
            };
            let cases: [(&str, Option<Value>); 2] =
                [("without", None), ("with a wrong-typed", Some(other_type))];
            for (what, value) in cases {
                let mut v = base.clone();
                let meta = v["records"][i]["meta"].as_object_mut().unwrap();
                match value {
                    None => drop(meta.remove(key)),
                    Some(x) => drop(meta.insert(key.clone(), x)),
                }
                let (schema_ok, reader_ok) = (schema::is_valid(&v), ours(&v));
                if schema_ok != reader_ok {
                    disagree.push(format!(
                        "{kind} {what} meta.{key}: schema {}, reader {}",
                        if schema_ok { "accepts" } else { "refuses" },
                        if reader_ok { "accepts" } else { "refuses" }
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} cases");
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
