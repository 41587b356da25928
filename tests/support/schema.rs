//! Validates inventories against `spec/inventory.schema.json` with an independent JSON Schema
//! implementation (the `jsonschema` crate), so the schema and the writer cannot drift apart.
#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;

/// The inventory schema.
pub fn schema() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/inventory.schema.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Panics with every schema error if `inventory` does not conform.
pub fn assert_valid(inventory: &Value) {
    let v = jsonschema::validator_for(&schema()).expect("the schema itself is valid");
    let errors: Vec<String> = v
        .iter_errors(inventory)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "inventory violates the schema:\n{}",
        errors.join("\n")
    );
}

/// True when `inventory` conforms.
pub fn is_valid(inventory: &Value) -> bool {
    jsonschema::validator_for(&schema())
        .unwrap()
        .is_valid(inventory)
}

/// Reads `dbxport.json` out of a plain bundle file and validates it.
pub fn assert_bundle_inventory_valid(bundle: &Path) {
    let b = dbxport::bundle::Bundle::open(bundle, None).expect("bundle opens");
    let bytes = b.inventory().to_bytes();
    assert_valid(&serde_json::from_slice(&bytes).unwrap());
}
