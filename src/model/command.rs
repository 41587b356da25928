//! The fixed programs dbxport runs on a cluster through command execution (`/api/1.2/*`), and
//! the shapes of what they print.
//!
//! Real workspaces refuse `GET /api/2.0/secrets/get` to ordinary users outside notebooks, and have
//! no REST listing of DBFS mounts; both are only reachable from code running on a cluster. dbxport
//! therefore sends exactly these programs, and the emulator recognises exactly these programs
//! (with their parameters) and evaluates them against its state. Any change to a program text is
//! a change to both sides at once, which is why the text lives here, in the shared model.
//!
//! Both programs print one JSON object on one line, which the caller reads from the command's
//! `results.data` (`resultType` `text`). Secret values are printed base64-encoded: notebooks
//! redact a secret's literal value in cell output, and base64 also carries non-UTF-8 values whole.

use serde::{Deserialize, Serialize};

use super::compute::Mount;

/// The placeholder in [`SECRET_READ_SNIPPET`] that [`secret_read_command`] replaces with the
/// base64 of a JSON array of `[scope, key]` pairs.
pub const SECRET_READ_PLACEHOLDER: &str = "__DBXPORT_KEYS_B64__";

/// The Python program that reads secret values with `dbutils.secrets.getBytes(scope, key)`.
///
/// Its one parameter, the list of `[scope, key]` pairs to read, replaces
/// [`SECRET_READ_PLACEHOLDER`] as the base64 of a JSON array (see [`secret_read_command`]). It
/// prints one JSON object, [`SecretReadOutput`]: `{"values": [{"scope", "key", "value"}],
/// "errors": [{"scope", "key", "error"}]}` where `value` is the base64 of the stored bytes and a
/// key that cannot be read is reported in `errors` instead of failing the whole program.
/// `getBytes` is used rather than `get` so that a value put with `bytes_value` comes back byte
/// for byte.
pub const SECRET_READ_SNIPPET: &str = r#"# dbxport secret read v1: prints the base64 of each requested secret value as one JSON object.
import base64, json
_dbxport_keys = json.loads(base64.b64decode("__DBXPORT_KEYS_B64__").decode("utf-8"))
_dbxport_out = {"values": [], "errors": []}
for _dbxport_scope, _dbxport_key in _dbxport_keys:
    try:
        _dbxport_value = dbutils.secrets.getBytes(_dbxport_scope, _dbxport_key)
        _dbxport_out["values"].append({"scope": _dbxport_scope, "key": _dbxport_key, "value": base64.b64encode(_dbxport_value).decode("ascii")})
    except Exception as _dbxport_err:
        _dbxport_out["errors"].append({"scope": _dbxport_scope, "key": _dbxport_key, "error": str(_dbxport_err)})
print(json.dumps(_dbxport_out))
"#;

/// The Python program that lists DBFS mounts with `dbutils.fs.mounts()`. It takes no
/// parameters and prints one JSON object, [`MountsOutput`]: `{"mounts": [{"mount_point",
/// "source", "encryption_type"}]}`. Real clusters include built-in mounts
/// ([`BUILTIN_MOUNT_POINTS`]), which a caller filters out.
pub const MOUNTS_SNIPPET: &str = r#"# dbxport mounts v1: prints every DBFS mount as one JSON object.
import json
print(json.dumps({"mounts": [{"mount_point": m.mountPoint, "source": m.source, "encryption_type": m.encryptionType} for m in dbutils.fs.mounts()]}))
"#;

/// Mount points every workspace has; they are not user mounts and are never reported as such.
pub const BUILTIN_MOUNT_POINTS: [&str; 9] = [
    "/",
    "/Volume",
    "/Volumes",
    "/databricks-datasets",
    "/databricks-results",
    "/databricks/mlflow-registry",
    "/databricks/mlflow-tracking",
    "/volume",
    "/volumes",
];

/// True when `mount_point` is one of [`BUILTIN_MOUNT_POINTS`].
pub fn is_builtin_mount(mount_point: &str) -> bool {
    BUILTIN_MOUNT_POINTS.contains(&mount_point)
}

/// The command text that reads `keys` (`(scope, key)` pairs) with [`SECRET_READ_SNIPPET`].
pub fn secret_read_command(keys: &[(String, String)]) -> String {
    use base64::Engine as _;
    let pairs: Vec<[&str; 2]> = keys.iter().map(|(s, k)| [s.as_str(), k.as_str()]).collect();
    let json = serde_json::to_vec(&pairs).unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    SECRET_READ_SNIPPET.replacen(SECRET_READ_PLACEHOLDER, &b64, 1)
}

/// The `(scope, key)` pairs of a command built by [`secret_read_command`], or `None` when
/// `command` is not exactly that program.
pub fn parse_secret_read_command(command: &str) -> Option<Vec<(String, String)>> {
    use base64::Engine as _;
    let (prefix, suffix) = SECRET_READ_SNIPPET.split_once(SECRET_READ_PLACEHOLDER)?;
    let middle = command.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if middle.contains('"') || middle.contains('\n') {
        return None;
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(middle)
        .ok()?;
    let pairs: Vec<(String, String)> = serde_json::from_slice::<Vec<[String; 2]>>(&json)
        .ok()?
        .into_iter()
        .map(|[s, k]| (s, k))
        .collect();
    Some(pairs)
}

/// True when `command` is exactly [`MOUNTS_SNIPPET`].
pub fn is_mounts_command(command: &str) -> bool {
    command == MOUNTS_SNIPPET
}

/// One value read by [`SECRET_READ_SNIPPET`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretReadValue {
    /// Scope name.
    pub scope: String,
    /// Key name.
    pub key: String,
    /// Base64 of the stored bytes.
    pub value: String,
}

impl std::fmt::Debug for SecretReadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretReadValue")
            .field("scope", &self.scope)
            .field("key", &self.key)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// One key [`SECRET_READ_SNIPPET`] could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretReadError {
    /// Scope name.
    pub scope: String,
    /// Key name.
    pub key: String,
    /// The exception text the cluster raised.
    pub error: String,
}

/// What [`SECRET_READ_SNIPPET`] prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretReadOutput {
    /// Values read, in request order.
    #[serde(default)]
    pub values: Vec<SecretReadValue>,
    /// Keys that failed, in request order.
    #[serde(default)]
    pub errors: Vec<SecretReadError>,
}

/// What [`MOUNTS_SNIPPET`] prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountsOutput {
    /// Every mount, built-in ones included.
    #[serde(default)]
    pub mounts: Vec<Mount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_command_round_trips() {
        let keys = vec![
            ("etl".to_string(), "db-password".to_string()),
            ("kv".to_string(), "cert".to_string()),
        ];
        let cmd = secret_read_command(&keys);
        assert!(cmd.contains("dbutils.secrets.getBytes"));
        assert!(!cmd.contains(SECRET_READ_PLACEHOLDER));
        assert_eq!(parse_secret_read_command(&cmd), Some(keys));
        assert_eq!(parse_secret_read_command(SECRET_READ_SNIPPET), None);
        assert_eq!(parse_secret_read_command("print(1)"), None);
        let tampered = cmd.replace("print(json.dumps", "print(json.dumps(1) or json.dumps");
        assert_eq!(parse_secret_read_command(&tampered), None);
    }

    #[test]
    fn mounts_command_is_exact() {
        assert!(is_mounts_command(MOUNTS_SNIPPET));
        assert!(!is_mounts_command(
            &MOUNTS_SNIPPET.replace("mounts()", "ls('/')")
        ));
        assert!(is_builtin_mount("/databricks-datasets"));
        assert!(!is_builtin_mount("/mnt/raw"));
    }

    #[test]
    fn debug_hides_values() {
        let v = SecretReadValue {
            scope: "s".into(),
            key: "k".into(),
            value: "c2VjcmV0".into(),
        };
        assert!(!format!("{v:?}").contains("c2VjcmV0"));
    }
}
