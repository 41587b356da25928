//! Comparisons that decide "unchanged": job settings as a workspace echoes them back, and
//! notebook or file content as an export returns it.
//!
//! A workspace fills defaults into what it stores (`timeout_seconds: 0`, an empty
//! `email_notifications`, `run_if: ALL_SUCCESS`, …) and may return arrays of keyed items in
//! another order, so settings are compared modulo those; anything else that differs is a
//! difference, reported with the first path where it shows.

use serde_json::{Map, Value};

/// Settings keys whose absence equals a known default value.
const DEFAULTS: [(&str, &str); 6] = [
    ("run_if", "\"ALL_SUCCESS\""),
    ("max_concurrent_runs", "1"),
    ("source", "\"WORKSPACE\""),
    ("pause_status", "\"UNPAUSED\""),
    ("name", "\"Untitled\""),
    ("format", "\"MULTI_TASK\""),
];

/// Keys that identify the items of keyed arrays, so their order does not matter.
const ITEM_KEYS: [&str; 5] = [
    "task_key",
    "job_cluster_key",
    "environment_key",
    "name",
    "key",
];

fn is_emptyish(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_emptyish),
    }
}

fn is_default(key: &str, v: &Value) -> bool {
    is_emptyish(v)
        || DEFAULTS
            .iter()
            .any(|(k, d)| *k == key && serde_json::from_str::<Value>(d).ok().as_ref() == Some(v))
}

fn item_key(v: &Value) -> Option<(&'static str, String)> {
    let o = v.as_object()?;
    ITEM_KEYS.iter().find_map(|k| {
        o.get(*k)
            .and_then(Value::as_str)
            .map(|s| (*k, s.to_string()))
    })
}

/// The first path at which `want` and `have` differ, modulo server defaults and the order of
/// keyed array items; `None` when they are the same.
pub fn first_difference(want: &Value, have: &Value) -> Option<String> {
    diff_at("", want, have)
}

fn diff_at(path: &str, want: &Value, have: &Value) -> Option<String> {
    match (want, have) {
        (Value::Object(a), Value::Object(b)) => diff_objects(path, a, b),
        (Value::Array(a), Value::Array(b)) => {
            let keyed = !a.is_empty()
                && a.iter().chain(b.iter()).all(|v| item_key(v).is_some())
                && a.iter()
                    .chain(b.iter())
                    .map(|v| item_key(v).map(|k| k.0))
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    == 1;
            if keyed {
                let index = |arr: &Vec<Value>| -> std::collections::BTreeMap<String, Value> {
                    arr.iter()
                        .filter_map(|v| item_key(v).map(|(_, k)| (k, v.clone())))
                        .collect()
                };
                let (ia, ib) = (index(a), index(b));
                if ia.len() != a.len() || ib.len() != b.len() {
                    // Repeated keys: fall back to order.
                    return diff_ordered(path, a, b);
                }
                for (k, va) in &ia {
                    let p = format!("{path}[{k}]");
                    match ib.get(k) {
                        Some(vb) => {
                            if let Some(d) = diff_at(&p, va, vb) {
                                return Some(d);
                            }
                        }
                        None => return Some(format!("{p} (missing in target)")),
                    }
                }
                ib.keys()
                    .find(|k| !ia.contains_key(*k))
                    .map(|k| format!("{path}[{k}] (only in target)"))
            } else {
                diff_ordered(path, a, b)
            }
        }
        (a, b) if a == b => None,
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => None,
        _ => Some(if path.is_empty() {
            "(root)".into()
        } else {
            path.to_string()
        }),
    }
}

fn diff_ordered(path: &str, a: &[Value], b: &[Value]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!(
            "{path} ({} items, target has {})",
            a.len(),
            b.len()
        ));
    }
    a.iter()
        .zip(b)
        .enumerate()
        .find_map(|(i, (x, y))| diff_at(&format!("{path}[{i}]"), x, y))
}

fn diff_objects(path: &str, a: &Map<String, Value>, b: &Map<String, Value>) -> Option<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => {
                if let Some(d) = diff_at(&p, x, y) {
                    if !(is_default(k, x) && is_default(k, y)) {
                        return Some(d);
                    }
                }
            }
            (Some(x), None) | (None, Some(x)) => {
                if !is_default(k, x) {
                    return Some(p);
                }
            }
            (None, None) => {}
        }
    }
    None
}

/// True when an exported notebook or file has the same content as the bundle's: the same
/// bytes, or the same text modulo line endings and trailing white space at the end.
pub fn same_content(bundle: &[u8], target: &[u8]) -> bool {
    if bundle == target {
        return true;
    }
    fn norm(b: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            v.push(b[i]);
            i += 1;
        }
        while v.last().is_some_and(|c| c.is_ascii_whitespace()) {
            v.pop();
        }
        v
    }
    norm(bundle) == norm(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_keyed_order_do_not_count() {
        let want = json!({"name": "j", "tasks": [
            {"task_key": "b", "notebook_task": {"notebook_path": "/x"}},
            {"task_key": "a", "sql_task": {"warehouse_id": "w"}}
        ], "tags": {"t": "1"}});
        let have = json!({"name": "j", "format": "MULTI_TASK", "timeout_seconds": 0,
            "email_notifications": {}, "max_concurrent_runs": 1,
            "tasks": [
                {"task_key": "a", "run_if": "ALL_SUCCESS", "sql_task": {"warehouse_id": "w"}, "email_notifications": {}},
                {"task_key": "b", "notebook_task": {"notebook_path": "/x", "source": "WORKSPACE"}, "timeout_seconds": 0}
            ], "tags": {"t": "1"}});
        assert_eq!(first_difference(&want, &have), None);
    }

    #[test]
    fn real_differences_name_their_path() {
        let want = json!({"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]});
        let have = json!({"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/y"}}]});
        assert_eq!(
            first_difference(&want, &have).as_deref(),
            Some("tasks[a].notebook_task.notebook_path")
        );
        let have = json!({"tasks": [{"task_key": "b"}]});
        assert_eq!(
            first_difference(&want, &have).as_deref(),
            Some("tasks[a] (missing in target)")
        );
        assert!(first_difference(&json!({"max_concurrent_runs": 3}), &json!({})).is_some());
        assert!(
            first_difference(&json!({"schedule": {"pause_status": "PAUSED"}}), &json!({}))
                .is_some()
        );
    }

    #[test]
    fn content_compares_modulo_line_endings() {
        assert!(same_content(b"a\r\nb\n", b"a\nb"));
        assert!(!same_content(b"a\nb", b"a\nc"));
    }
}
