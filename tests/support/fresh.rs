//! A freshly built bundle for the interoperability tests: made through the staging builder
//! with a new key, sealing real secret values, with payloads large enough to take the
//! multi-threaded hashing path and multi-chunk deflate.
#![allow(dead_code)]

use dbxport::bundle::resource::{Content, Resource};
use dbxport::bundle::{pack, BagBuilder, BagSettings, PackOptions, Sealer, Source};
use dbxport::model::secret::{ScopeBackend, SecretMetadata, SecretScope, ValueEncoding};
use dbxport::model::workspace::{Format, Language, ObjectInfo, ObjectType};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The secret values sealed into the fresh bundle.
pub const SECRETS: [(&str, &str); 2] = [("prod", "warehouse-token"), ("prod", "Warehouse-Token")];

/// Their plaintext.
pub fn value_of(key: &str) -> Vec<u8> {
    format!("plaintext of {key} \u{2603}").into_bytes()
}

fn info(path: &str, id: i64, lang: Option<Language>) -> ObjectInfo {
    ObjectInfo {
        object_type: if lang.is_some() {
            ObjectType::Notebook
        } else {
            ObjectType::File
        },
        path: path.into(),
        object_id: id,
        language: lang,
        created_at: None,
        modified_at: None,
        size: None,
        resource_id: None,
        directory_info: None,
    }
}

/// Builds the bundle at `dir/fresh.zip`, sealed to `recipient`; returns its path.
pub fn build(dir: &Path, recipient: &str) -> PathBuf {
    let settings = BagSettings::new(
        Source {
            host: "https://fresh.example.invalid".into(),
            workspace_id: "777".into(),
        },
        json!({"test": "interop"}),
    );
    let bag = dir.join(&settings.bag_name);
    let sealer = Sealer::to_recipients(&[recipient]).unwrap();
    let b = BagBuilder::create(&bag, settings, Some(sealer)).unwrap();
    b.add(Resource::directory(
        "/Users/bob@example.org/Üntitled folder",
        1,
    ))
    .unwrap();
    b.add(Resource::directory("/Users/bob@example.org/empty", 2))
        .unwrap();
    let big_text: Vec<u8> = (0..60_000)
        .flat_map(|i| format!("# MAGIC line {i} of a long notebook\n").into_bytes())
        .collect();
    let mut nb = Language::Python.source_header().as_bytes().to_vec();
    nb.push(b'\n');
    nb.extend_from_slice(&big_text);
    b.add(Resource::notebook(
        &info(
            "/Users/bob@example.org/Üntitled folder/big notebook",
            10,
            Some(Language::Python),
        ),
        vec![(Format::Source, Content::Bytes(nb))],
    ))
    .unwrap();
    let noise_path = dir.join("noise.bin");
    let noise = super::golden::noise(6 << 20, 99);
    let noise_sha = dbxport::bundle::digest::sha256_hex(&noise);
    std::fs::write(&noise_path, &noise).unwrap();
    // An artifact needs its model and version records (E307 otherwise).
    let model = serde_json::from_value(serde_json::json!({"name": "m"})).unwrap();
    b.add(Resource::registered_model(&model)).unwrap();
    let version = serde_json::from_value(serde_json::json!({"name": "m", "version": "3"})).unwrap();
    let artifacts = [("data/weights.bin", noise_sha.as_str(), noise.len() as u64)];
    b.add(Resource::model_version(&version, artifacts, true))
        .unwrap();
    b.add(Resource::model_artifact(
        "m",
        "3",
        "data/weights.bin",
        Content::File(noise_path),
    ))
    .unwrap();
    b.add(Resource::workspace_file(
        &info("/Users/bob@example.org/a|b?.txt", 11, None),
        Content::Bytes(b"odd name\n".to_vec()),
    ))
    .unwrap();
    let scope = SecretScope {
        name: "prod".into(),
        backend_type: ScopeBackend::Databricks,
        keyvault_metadata: None,
    };
    let mut w = b.secret_scope(&scope, &[]);
    for (_, key) in SECRETS {
        w.add_value(
            &SecretMetadata {
                key: key.into(),
                last_updated_timestamp: None,
            },
            &value_of(key),
            ValueEncoding::String,
        )
        .unwrap();
    }
    w.finish().unwrap();
    b.add_tag_file("export-report.json", b"{}\n").unwrap();
    let bag = b.finalize().unwrap();
    let out = dir.join("fresh.zip");
    pack(&bag, &out, &PackOptions::default()).unwrap();
    out
}
