//! Validates inventories against `spec/inventory.schema.json` with an independent JSON Schema
//! implementation (Python's `jsonschema`, from the test venv), so the schema and the writer
//! cannot drift apart. One validator process serves the whole test binary: it is started on
//! first use and answers one document per line (`schema_check.py`). A Rust validator crate
//! would add features to crates the binary ships (`regex`, `idna`), so tests would link a
//! different build of them than users run.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The inventory schema.
pub fn schema() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/inventory.schema.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

struct Validator {
    _child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

fn validator() -> &'static Mutex<Validator> {
    static V: OnceLock<Mutex<Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let py = crate::common::venv_python().expect(
            "the schema checks need the test venv's jsonschema; run scripts/setup-test-deps",
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(py)
            .arg(root.join("tests/support/schema_check.py"))
            .arg(root.join("spec/inventory.schema.json"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the schema validator starts");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Mutex::new(Validator {
            _child: child,
            input,
            output,
        })
    })
}

/// Every way `inventory` violates the schema (empty when it conforms).
pub fn errors(inventory: &Value) -> Vec<String> {
    let mut v = validator().lock().unwrap_or_else(|p| p.into_inner());
    let mut line = serde_json::to_string(inventory).unwrap();
    line.push('\n');
    v.input.write_all(line.as_bytes()).unwrap();
    v.input.flush().unwrap();
    let mut answer = String::new();
    v.output.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("the schema validator answered {answer:?}: {e}"))
}

/// Panics with every schema error if `inventory` does not conform.
pub fn assert_valid(inventory: &Value) {
    let errors = errors(inventory);
    assert!(
        errors.is_empty(),
        "inventory violates the schema:\n{}",
        errors.join("\n")
    );
}

/// True when `inventory` conforms.
pub fn is_valid(inventory: &Value) -> bool {
    errors(inventory).is_empty()
}

/// Reads `dbxport.json` out of a plain bundle file and validates it.
pub fn assert_bundle_inventory_valid(bundle: &Path) {
    let b = dbxport::bundle::Bundle::open(bundle, None).expect("bundle opens");
    let bytes = b.inventory().to_bytes();
    assert_valid(&serde_json::from_slice(&bytes).unwrap());
}
