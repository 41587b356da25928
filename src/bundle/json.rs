//! Canonical JSON (spec §9): object keys sorted by their UTF-8 bytes at every level, two-space
//! pretty printing, a trailing LF. Every JSON payload file and the `meta`/`options` objects of
//! the inventory use it, so the same data always gives the same bytes.

use serde::Serialize;
use serde_json::Value;

/// Sorts every object's keys in place (at every level), so the value prints canonically.
/// In place, not copied: a copy of a whole inventory cost more memory than the inventory.
pub fn canonicalize(v: &mut Value) {
    v.sort_all_objects();
}

/// Canonical bytes of `v`: sorted keys, pretty printed, a trailing LF.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let mut value = serde_json::to_value(v)?;
    canonicalize(&mut value);
    let mut out = serde_json::to_vec_pretty(&value)?;
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
