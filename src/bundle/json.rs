//! Canonical JSON (spec §9): object keys sorted by their UTF-8 bytes at every level, two-space
//! pretty printing, a trailing LF. Every JSON payload file and the `meta`/`options` objects of
//! the inventory use it, so the same data always gives the same bytes.

use serde::Serialize;
use serde_json::{Map, Value};

/// Returns `v` with every object's keys sorted.
pub fn canonicalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(m.len());
            for k in keys {
                out.insert(k.clone(), canonicalize(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

/// Canonical JSON bytes of any serializable value.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(v)?;
    let mut out = serde_json::to_vec_pretty(&canonicalize(&value))?;
    out.push(b'\n');
    Ok(out)
}

/// Pretty JSON bytes in the value's own key order, with a trailing LF.
pub fn to_pretty_bytes<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(v)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": null}});
        let s = String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            "{\n  \"a\": {\n    \"c\": null,\n    \"z\": [\n      {\n        \"x\": 2,\n        \"y\": 1\n      }\n    ]\n  },\n  \"b\": 1\n}\n"
        );
    }
}
