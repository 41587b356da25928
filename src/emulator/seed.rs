//! Seed workspaces: loading a seed directory into the state, and dumping the state back into the
//! same format (`spec/emulator-seed.md`). A dump is deterministic (sorted, two-space JSON with a
//! trailing newline) and loads back into the same state, so two workspaces can be compared with a
//! recursive diff.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
use crate::model::grants::{HiveGrant, HiveObjectType, UcGrants};
use crate::model::job::Job;
use crate::model::mlflow::{ModelVersion, RegisteredModel};
use crate::model::permissions::{levels_for, AccessControlRequest, PrincipalRef};
use crate::model::principal::{Group, ScimRef, ServicePrincipal, User};
use crate::model::repo::{canonical_provider, GitCredential, Repo};
use crate::model::secret::{is_valid_name, AclItem, KeyVaultMetadata, ScopeBackend, ValueEncoding};
use crate::model::workspace::{self as ws, Language, ObjectType};

use super::error::EmulatorError;
use super::extract::b64;
use super::jobs::normalize_settings;
use super::mlflow::storage_path;
use super::notebook;
use super::permissions::single_owner;
use super::state::{
    CredentialState, DbfsNode, Entra, EntraClient, HiveDatabase, HiveTable, JobState, ModelState,
    Node, OAuthClient, RepoState, Scope, SecretValue, Shared, State, TokenGrant, DEFAULT_ADMIN,
};

// ---------------------------------------------------------------------------------------------
// File shapes.

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workspace_id: Option<String>,
    #[serde(default)]
    secrets_get_refused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_object_id: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalsFile {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    service_principals: Vec<ServicePrincipal>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    user_name: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    client_id: String,
    client_secret: String,
    application_id: String,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    #[serde(default)]
    oauth_clients: Vec<ClientEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entra: Option<EntraEntry>,
}

/// The Entra ID tenant of an Azure workspace: service principals' client secrets and managed
/// identities (all must be service principals of `principals.json`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntraEntry {
    tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workspace_resource_id: Option<String>,
    #[serde(default)]
    clients: Vec<EntraClientEntry>,
    #[serde(default)]
    managed_identities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity_header: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntraClientEntry {
    client_id: String,
    client_secret: String,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object_type: Option<ObjectType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    modified_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outputs_bytes: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretEntry {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_updated_timestamp: Option<i64>,
}

impl Drop for SecretEntry {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(s) = &mut self.string_value {
            s.zeroize();
        }
        if let Some(s) = &mut self.bytes_value {
            s.zeroize();
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeEntry {
    name: String,
    #[serde(default = "databricks_backend")]
    backend_type: ScopeBackend,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyvault_metadata: Option<KeyVaultMetadata>,
    #[serde(default)]
    acls: Vec<AclItem>,
    #[serde(default)]
    secrets: Vec<SecretEntry>,
}

fn databricks_backend() -> ScopeBackend {
    ScopeBackend::Databricks
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    #[serde(default)]
    scopes: Vec<ScopeEntry>,
}

/// A git credential and its owner (`user_name`; the first admin when absent).
#[derive(Debug, Serialize, Deserialize)]
struct CredentialEntry {
    #[serde(flatten)]
    cred: GitCredential,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionEntry {
    object: String,
    #[serde(default)]
    access_control_list: Vec<AccessControlRequest>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableEntry {
    name: String,
    #[serde(rename = "type", default = "table_type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

fn table_type() -> String {
    "TABLE".to_string()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionEntry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseEntry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(default)]
    tables: Vec<TableEntry>,
    #[serde(default)]
    functions: Vec<FunctionEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HiveFile {
    #[serde(default)]
    databases: Vec<DatabaseEntry>,
    #[serde(default)]
    grants: Vec<HiveGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    catalog_owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurableRef {
    securable_type: String,
    full_name: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnityFile {
    #[serde(default)]
    securables: Vec<SecurableRef>,
    #[serde(default)]
    grants: Vec<UcGrants>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComputeFile {
    #[serde(default)]
    clusters: Vec<Cluster>,
    #[serde(default)]
    instance_pools: Vec<InstancePool>,
    #[serde(default)]
    policies: Vec<ClusterPolicy>,
    #[serde(default)]
    warehouses: Vec<Warehouse>,
}

// ---------------------------------------------------------------------------------------------
// Names on disk.

/// Characters a dump always writes as `%XX`.
const ESCAPED: &str = "<>:\"\\|?*%/";

/// The on-disk form of one name. With `all_letters`, every letter and non-ASCII character is
/// escaped too, to keep a name apart from another that differs only in case.
pub(crate) fn escape_name(name: &str, all_letters: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let escape = ESCAPED.contains(c)
            || c.is_control()
            || (all_letters && (c.is_alphabetic() || !c.is_ascii()));
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The name an on-disk name stands for (`%XX` decoded; a `%` not followed by two hex digits is
/// kept as it is).
pub(crate) fn unescape_name(name: &str) -> Result<String, String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&name[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("name {name} decodes to invalid UTF-8"))
}

/// On-disk names for the entries of one folder, given as `(escaped stem, suffix)` (the suffix
/// is a notebook's `.py` and the like, never escaped). A name equal under case folding to one
/// that sorts before it gets the letters of its stem escaped, one at a time from the start,
/// until it is distinct.
fn fold_apart(wanted: Vec<(String, String)>) -> Vec<String> {
    let full: Vec<String> = wanted.iter().map(|(s, x)| format!("{s}{x}")).collect();
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by(|a, b| full[*a].cmp(&full[*b]));
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = full.clone();
    for i in order {
        let (stem, suffix) = &wanted[i];
        let mut name = full[i].clone();
        if seen.contains(&name.to_lowercase()) {
            // Split the stem into units: existing `%XX` escapes stay whole.
            let mut units: Vec<String> = Vec::new();
            let mut chars = stem.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '%' {
                    let mut u = String::from('%');
                    u.extend(chars.by_ref().take(2));
                    units.push(u);
                } else {
                    units.push(c.to_string());
                }
            }
            for k in 0..units.len() {
                if units[k].starts_with('%') {
                    continue;
                }
                let escaped = escape_name(&units[k], true);
                if escaped == units[k] {
                    continue;
                }
                units[k] = escaped;
                name = format!("{}{suffix}", units.concat());
                if !seen.contains(&name.to_lowercase()) {
                    break;
                }
            }
        }
        seen.insert(name.to_lowercase());
        out[i] = name;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Loading.

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, EmulatorError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EmulatorError::seed(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EmulatorError::seed(path, e)),
    }
}

/// Sorted entries of a directory: `(on-disk name, path, is_dir)`.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, EmulatorError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| EmulatorError::seed(dir, e))? {
        let e = e.map_err(|e| EmulatorError::seed(dir, e))?;
        let name = e
            .file_name()
            .into_string()
            .map_err(|_| EmulatorError::seed(e.path(), "file name is not UTF-8"))?;
        let ft = fs::metadata(e.path()).map_err(|err| EmulatorError::seed(e.path(), err))?;
        out.push((name, e.path(), ft.is_dir()));
    }
    out.sort();
    Ok(out)
}

/// One object read from `workspace/`.
enum Loaded {
    Dir,
    Notebook(Language, Vec<u8>),
    File(Vec<u8>),
}

fn walk_workspace(
    dir: &Path,
    ws_dir: &str,
    out: &mut BTreeMap<String, Loaded>,
) -> Result<(), EmulatorError> {
    for (raw, path, is_dir) in entries(dir)? {
        let join = |name: &str| {
            if ws_dir == "/" {
                format!("/{name}")
            } else {
                format!("{ws_dir}/{name}")
            }
        };
        if is_dir {
            let name = unescape_name(&raw).map_err(|e| EmulatorError::seed(&path, e))?;
            let p = join(&name);
            out.insert(p.clone(), Loaded::Dir);
            walk_workspace(&path, &p, out)?;
            continue;
        }
        let data = fs::read(&path).map_err(|e| EmulatorError::seed(&path, e))?;
        // Classification looks at the name as written, so an escaped dot keeps a file a file.
        let notebook = raw.rsplit_once('.').and_then(|(stem, ext)| {
            let lang = Language::from_extension(ext)?;
            (!stem.is_empty() && notebook::has_header(lang, &data)).then_some((stem, lang))
        });
        let (p, loaded) = match notebook {
            Some((stem, lang)) => {
                let name = unescape_name(stem).map_err(|e| EmulatorError::seed(&path, e))?;
                (join(&name), Loaded::Notebook(lang, data))
            }
            None => {
                let name = unescape_name(&raw).map_err(|e| EmulatorError::seed(&path, e))?;
                (join(&name), Loaded::File(data))
            }
        };
        if out.contains_key(&p) {
            return Err(EmulatorError::seed(
                &path,
                format!("two seed files stand for the workspace path {p}"),
            ));
        }
        out.insert(p, loaded);
    }
    Ok(())
}

fn walk_dbfs(
    dir: &Path,
    dbfs_dir: &str,
    out: &mut Vec<(String, Option<Vec<u8>>)>,
) -> Result<(), EmulatorError> {
    for (raw, path, is_dir) in entries(dir)? {
        let name = unescape_name(&raw).map_err(|e| EmulatorError::seed(&path, e))?;
        let p = if dbfs_dir == "/" {
            format!("/{name}")
        } else {
            format!("{dbfs_dir}/{name}")
        };
        if is_dir {
            out.push((p.clone(), None));
            walk_dbfs(&path, &p, out)?;
        } else {
            let data = fs::read(&path).map_err(|e| EmulatorError::seed(&path, e))?;
            out.push((p, Some(data)));
        }
    }
    Ok(())
}

/// Loads the seed directory `dir` into `st`.
pub(crate) fn load(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    if !dir.is_dir() {
        return Err(EmulatorError::seed(
            dir,
            "not a directory; pass a seed workspace directory with --seed",
        ));
    }
    let now = st.now();

    if let Some(w) = read_json::<WorkspaceFile>(&dir.join("workspace.json"))? {
        if let Some(id) = w.workspace_id {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(EmulatorError::seed(
                    dir.join("workspace.json"),
                    "workspace_id must be a string of digits",
                ));
            }
            st.workspace.workspace_id = id;
        }
        st.workspace.secrets_get_refused = w.secrets_get_refused;
        if let Some(f) = w.first_object_id {
            st.workspace.first_object_id = f;
        }
    }

    if let Some(p) = read_json::<PrincipalsFile>(&dir.join("principals.json"))? {
        st.principals.users = p.users;
        st.principals.groups = p.groups;
        st.principals.service_principals = p.service_principals;
    }
    ensure_principals(st);

    if let Some(t) = read_json::<TokensFile>(&dir.join("tokens.json"))? {
        for e in &t.tokens {
            if !st
                .principals
                .users
                .iter()
                .any(|u| u.user_name == e.user_name)
                && !st
                    .principals
                    .service_principals
                    .iter()
                    .any(|s| s.application_id == e.user_name)
            {
                return Err(EmulatorError::seed(
                    dir.join("tokens.json"),
                    format!(
                        "a token belongs to {}, who is not in principals.json",
                        e.user_name
                    ),
                ));
            }
        }
        st.tokens = t
            .tokens
            .iter()
            .map(|e| TokenGrant::new(e.token.clone(), e.user_name.clone()))
            .collect();
        st.oauth_clients = t
            .oauth_clients
            .iter()
            .map(|c| OAuthClient {
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.clone(),
                application_id: c.application_id.clone(),
            })
            .collect();
        if let Some(e) = &t.entra {
            let ids = e
                .clients
                .iter()
                .map(|c| &c.client_id)
                .chain(e.managed_identities.iter());
            for id in ids {
                if !st
                    .principals
                    .service_principals
                    .iter()
                    .any(|s| &s.application_id == id)
                {
                    return Err(EmulatorError::seed(
                        dir.join("tokens.json"),
                        format!(
                            "entra: {id} is not the application id of a service principal in principals.json"
                        ),
                    ));
                }
            }
            st.entra = Some(Entra {
                tenant_id: e.tenant_id.clone(),
                workspace_resource_id: e.workspace_resource_id.clone(),
                clients: e
                    .clients
                    .iter()
                    .map(|c| EntraClient {
                        client_id: c.client_id.clone(),
                        client_secret: c.client_secret.clone(),
                    })
                    .collect(),
                managed_identities: e.managed_identities.clone(),
                identity_header: e.identity_header.clone(),
                seen_management_tokens: 0,
                seen_resource_ids: 0,
            });
        }
    }

    load_tree(dir, st, now)?;
    load_jobs(dir, st)?;
    super::generate::load(dir, st, now)?;
    load_secrets(dir, st, now)?;
    load_permissions(dir, st)?;
    load_hive(dir, st)?;
    load_unity(dir, st)?;

    if let Some(c) = read_json::<ComputeFile>(&dir.join("compute.json"))? {
        st.compute.clusters = c.clusters;
        st.compute.pools = c.instance_pools;
        st.compute.policies = c.policies;
        st.compute.warehouses = c.warehouses;
    }
    if let Some(m) = read_json::<Vec<Mount>>(&dir.join("mounts.json"))? {
        st.mounts = m;
        st.mounts.sort();
    }
    // A mount point is a folder of the DBFS root, as `dbfs ls /mnt` shows on real workspaces.
    for m in st.mounts.clone() {
        let p = super::dbfs::dbfs_path(&m.mount_point)
            .map_err(|e| EmulatorError::seed(dir.join("mounts.json"), e.message))?;
        super::dbfs::make_dirs(st, &p)
            .map_err(|e| EmulatorError::seed(dir.join("mounts.json"), e.message))?;
    }
    let dbfs_dir = dir.join("dbfs");
    if dbfs_dir.is_dir() {
        let mut items = Vec::new();
        walk_dbfs(&dbfs_dir, "/", &mut items)?;
        for (p, data) in items {
            match data {
                None => super::dbfs::make_dirs(st, &p),
                Some(d) => super::dbfs::write_file(st, &p, d, true),
            }
            .map_err(|e| {
                EmulatorError::seed(dbfs_dir.join(p.trim_start_matches('/')), e.message)
            })?;
        }
    }
    load_models(dir, st)?;
    load_uc_models(dir, st)?;
    load_tracking(dir, st)?;
    Ok(())
}

/// `tracking.json`: experiments and finished runs (params, tags, each metric's latest value),
/// so that model versions' source runs exist.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TrackingFile {
    #[serde(default)]
    experiments: Vec<SeedExperiment>,
    #[serde(default)]
    runs: Vec<SeedRun>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SeedExperiment {
    id: String,
    name: String,
    #[serde(default)]
    creation_time: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<crate::model::KeyValue>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SeedRun {
    id: String,
    experiment_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    start_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    params: Vec<crate::model::KeyValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<crate::model::KeyValue>,
    /// Each metric's value, logged at `end_time` (or `start_time`), step 0.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    metrics: BTreeMap<String, f64>,
}

fn load_tracking(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    use super::tracking::{Experiment, Metric, Run};
    let file = dir.join("tracking.json");
    let Some(t) = read_json::<TrackingFile>(&file)? else {
        return Ok(());
    };
    for e in t.experiments {
        st.tracking.experiments.insert(
            e.id.clone(),
            Experiment {
                artifact_location: format!("dbfs:/databricks/mlflow-tracking/{}", e.id),
                id: e.id,
                name: e.name,
                lifecycle_stage: "active".into(),
                creation_time: e.creation_time,
                last_update_time: e.creation_time,
                tags: e.tags,
            },
        );
    }
    for r in t.runs {
        if !st.tracking.experiments.contains_key(&r.experiment_id) {
            return Err(EmulatorError::seed(
                &file,
                format!(
                    "run {} names experiment {}, which the seed does not have",
                    r.id, r.experiment_id
                ),
            ));
        }
        let at = r.end_time.unwrap_or(r.start_time);
        st.tracking.runs.insert(
            r.id.clone(),
            Run {
                id: r.id,
                experiment_id: r.experiment_id,
                name: r.name,
                user_id: r.user_id,
                status: "FINISHED".into(),
                start_time: r.start_time,
                end_time: r.end_time,
                lifecycle_stage: "active".into(),
                params: r.params,
                tags: r.tags,
                metrics: r
                    .metrics
                    .into_iter()
                    .map(|(key, v)| Metric {
                        key,
                        value: serde_json::json!(v),
                        timestamp: at,
                        step: 0,
                    })
                    .collect(),
                dataset_inputs: Vec::new(),
                model_inputs: Vec::new(),
                model_outputs: Vec::new(),
            },
        );
    }
    Ok(())
}

/// Writes the seeded kind of experiments and runs back (what `tracking.json` can hold: a
/// run's latest value per metric, no inputs, outputs or logged models).
fn dump_tracking(st: &State, out: &mut Out) {
    if st.tracking.experiments.is_empty() && st.tracking.runs.is_empty() {
        return;
    }
    let t = TrackingFile {
        experiments: st
            .tracking
            .experiments
            .values()
            .map(|e| SeedExperiment {
                id: e.id.clone(),
                name: e.name.clone(),
                creation_time: e.creation_time,
                tags: e.tags.clone(),
            })
            .collect(),
        runs: st
            .tracking
            .runs
            .values()
            .map(|r| SeedRun {
                id: r.id.clone(),
                experiment_id: r.experiment_id.clone(),
                name: r.name.clone(),
                user_id: r.user_id.clone(),
                start_time: r.start_time,
                end_time: r.end_time,
                params: r.params.clone(),
                tags: r.tags.clone(),
                metrics: r
                    .metrics
                    .iter()
                    .filter_map(|m| m.value.as_f64().map(|v| (m.key.clone(), v)))
                    .collect(),
            })
            .collect(),
    };
    out.json("tracking.json", &t, false);
}

/// `uc_models/<catalog>.<schema>.<model>/model.json`, `versions/<n>/version.json` and
/// `versions/<n>/artifacts/…` (spec/emulator-seed.md).
fn load_uc_models(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    use super::uc_models::{seed_model, SeedVersion, UcModel};
    let root = dir.join("uc_models");
    if !root.is_dir() {
        return Ok(());
    }
    for (raw, path, is_dir) in entries(&root)? {
        if !is_dir {
            continue;
        }
        let file = path.join("model.json");
        let mut m: UcModel =
            read_json(&file)?.ok_or_else(|| EmulatorError::seed(&file, "missing"))?;
        let folder = unescape_name(&raw).map_err(|e| EmulatorError::seed(&path, e))?;
        if !m.full_name().eq_ignore_ascii_case(&folder) {
            return Err(EmulatorError::seed(
                &file,
                format!(
                    "full name {} does not match its folder {folder}",
                    m.full_name()
                ),
            ));
        }
        let vdir = path.join("versions");
        if vdir.is_dir() {
            for (vraw, vpath, is_dir) in entries(&vdir)? {
                if !is_dir {
                    continue;
                }
                let vfile = vpath.join("version.json");
                let mut v: SeedVersion =
                    read_json(&vfile)?.ok_or_else(|| EmulatorError::seed(&vfile, "missing"))?;
                if v.version.to_string() != vraw {
                    return Err(EmulatorError::seed(
                        &vfile,
                        "version must match the folder holding the file",
                    ));
                }
                let art = vpath.join("artifacts");
                if art.is_dir() {
                    let mut items = Vec::new();
                    walk_dbfs(&art, "/", &mut items)?;
                    for (p, data) in items {
                        if let Some(d) = data {
                            v.files.insert(p.trim_start_matches('/').to_string(), d);
                        }
                    }
                }
                v.tags.sort();
                m.versions.insert(v.version, v);
            }
        }
        seed_model(st, m).map_err(|e| EmulatorError::seed(&file, e))?;
    }
    Ok(())
}

/// Writes the Unity Catalog models as [`load_uc_models`] reads them.
fn dump_uc_models(st: &State, out: &mut Out) {
    if st.uc.models.is_empty() {
        return;
    }
    out.dirs.push("uc_models".into());
    for (full, m) in &st.uc.models {
        let base = PathBuf::from("uc_models").join(escape_name(full, false));
        out.dirs.push(base.clone());
        out.json(base.join("model.json"), m, false);
        for (n, v) in &m.versions {
            let vdir = base.join("versions").join(n.to_string());
            out.dirs.push(vdir.clone());
            out.json(vdir.join("version.json"), v, false);
            let root = super::uc_models::storage_root(&m.id, *n);
            if st.dbfs.nodes.contains_key(&root) {
                dump_dbfs(st, &root, vdir.join("artifacts"), None, out);
            }
        }
    }
}

fn load_tree(dir: &Path, st: &mut State, now: i64) -> Result<(), EmulatorError> {
    let objects_path = dir.join("objects.json");
    let objects: BTreeMap<String, ObjectMeta> = read_json(&objects_path)?.unwrap_or_default();
    let repos_path = dir.join("repos.json");
    let repos: Vec<Repo> = read_json(&repos_path)?.unwrap_or_default();
    let mut loaded = BTreeMap::new();
    let ws_dir = dir.join("workspace");
    if ws_dir.is_dir() {
        walk_workspace(&ws_dir, "/", &mut loaded)?;
    }
    // Repo roots are folders of the tree, even when the seed holds no files for them.
    let mut repo_ids: BTreeMap<String, i64> = BTreeMap::new();
    for r in &repos {
        let path = r
            .path
            .as_deref()
            .map(|p| ws::normalize_path(p).to_string())
            .ok_or_else(|| {
                EmulatorError::seed(&repos_path, format!("repo {} has no path", r.id))
            })?;
        if matches!(
            loaded.get(&path),
            Some(Loaded::Notebook(..) | Loaded::File(_))
        ) {
            return Err(EmulatorError::seed(
                &repos_path,
                format!(
                    "repo {} is at {path}, which the workspace tree holds as a file",
                    r.id
                ),
            ));
        }
        let mut prefix = String::new();
        for part in path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            loaded.entry(prefix.clone()).or_insert(Loaded::Dir);
        }
        repo_ids.insert(path, r.id);
    }
    for (p, m) in &objects {
        let p = ws::normalize_path(p);
        if p == "/" {
            continue;
        }
        let want = m.object_type;
        match (loaded.get(p), want) {
            // Git keeps no empty folders, so objects.json may declare them.
            (None, Some(ObjectType::Directory)) => {
                let mut prefix = String::new();
                for part in p.split('/').filter(|s| !s.is_empty()) {
                    prefix.push('/');
                    prefix.push_str(part);
                    loaded.entry(prefix.clone()).or_insert(Loaded::Dir);
                }
            }
            (None, _) => {
                return Err(EmulatorError::seed(
                    &objects_path,
                    format!("{p} is not in the workspace tree"),
                ))
            }
            (Some(item), Some(t)) => {
                let actual = match item {
                    Loaded::Dir if repo_ids.contains_key(p) => ObjectType::Repo,
                    Loaded::Dir => ObjectType::Directory,
                    Loaded::Notebook(..) => ObjectType::Notebook,
                    Loaded::File(_) => ObjectType::File,
                };
                if actual != t {
                    return Err(EmulatorError::seed(
                        &objects_path,
                        format!("{p} is declared {t:?} but the tree holds a {actual:?}"),
                    ));
                }
            }
            (Some(_), None) => {}
        }
    }
    // Ids: repo ids and explicit ones first; the rest in path order from first_object_id.
    let mut used: HashSet<i64> = HashSet::new();
    let mut explicit: BTreeMap<String, i64> = BTreeMap::new();
    for (p, id) in &repo_ids {
        explicit.insert(p.clone(), *id);
    }
    for (p, m) in &objects {
        if let Some(id) = m.object_id {
            let p = ws::normalize_path(p).to_string();
            explicit.entry(p).or_insert(id);
        }
    }
    for (p, id) in &explicit {
        if !used.insert(*id) {
            return Err(EmulatorError::seed(
                &objects_path,
                format!("object id {id} of {p} is used twice"),
            ));
        }
    }
    let mut next = st.workspace.first_object_id;
    for (path, item) in loaded {
        let id = match explicit.get(&path) {
            Some(id) => *id,
            None => {
                while used.contains(&next) {
                    next += 1;
                }
                used.insert(next);
                next
            }
        };
        let meta = objects.get(&path).cloned().unwrap_or_default();
        let (object_type, language, content) = match item {
            Loaded::Dir if repo_ids.contains_key(&path) => (ObjectType::Repo, None, Vec::new()),
            Loaded::Dir => (ObjectType::Directory, None, Vec::new()),
            Loaded::Notebook(l, d) => (ObjectType::Notebook, Some(l), d),
            Loaded::File(d) => (ObjectType::File, None, d),
        };
        st.tree.insert(
            path,
            Node {
                object_type,
                object_id: id,
                language,
                content,
                created_at: meta.created_at.unwrap_or(now),
                modified_at: meta.modified_at.or(meta.created_at).unwrap_or(now),
                outputs_bytes: meta.outputs_bytes.unwrap_or(0),
                acl: Vec::new(),
            },
        );
    }
    st.ids.next_object_id = used
        .iter()
        .max()
        .map_or(st.workspace.first_object_id, |m| m + 1)
        .max(st.workspace.first_object_id);
    for mut r in repos {
        r.provider = canonical_provider(&r.provider)
            .ok_or_else(|| {
                EmulatorError::seed(
                    &repos_path,
                    format!("repo {}: unknown provider {}", r.id, r.provider),
                )
            })?
            .to_string();
        r.path = r.path.map(|p| ws::normalize_path(&p).to_string());
        if st.repos.contains_key(&r.id) {
            return Err(EmulatorError::seed(
                &repos_path,
                format!("repo id {} is used twice", r.id),
            ));
        }
        st.repos.insert(
            r.id,
            RepoState {
                repo: r,
                acl: Vec::new(),
            },
        );
    }
    if let Some(creds) = read_json::<Vec<CredentialEntry>>(&dir.join("git_credentials.json"))? {
        let admin = st.first_admin();
        for c in creds {
            let id = c.cred.credential_id;
            st.ids.next_credential_id = st.ids.next_credential_id.max(id + 1);
            st.git_credentials.insert(
                id,
                CredentialState {
                    cred: c.cred,
                    owner: c.user_name.unwrap_or_else(|| admin.clone()),
                },
            );
        }
    }
    Ok(())
}

fn load_jobs(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    let jobs_dir = dir.join("jobs");
    if !jobs_dir.is_dir() {
        return Ok(());
    }
    for (name, path, is_dir) in entries(&jobs_dir)? {
        if is_dir || !name.ends_with(".json") {
            continue;
        }
        let mut job: Job = read_json(&path)?.expect("listed file exists");
        normalize_settings(&mut job.settings).map_err(|e| EmulatorError::seed(&path, e.message))?;
        job.run_as_user_name = None;
        if st.jobs.contains_key(&job.job_id) {
            return Err(EmulatorError::seed(
                &path,
                format!("job id {} is used twice", job.job_id),
            ));
        }
        st.ids.next_job_id = st.ids.next_job_id.max(job.job_id + 1);
        st.jobs.insert(
            job.job_id,
            JobState {
                job,
                acl: Vec::new(),
            },
        );
    }
    Ok(())
}

fn load_secrets(dir: &Path, st: &mut State, now: i64) -> Result<(), EmulatorError> {
    let path = dir.join("secrets.json");
    let Some(file) = read_json::<SecretsFile>(&path)? else {
        return Ok(());
    };
    for s in &file.scopes {
        if !is_valid_name(&s.name) {
            return Err(EmulatorError::seed(
                &path,
                format!("invalid scope name {}", s.name),
            ));
        }
        if s.backend_type == ScopeBackend::AzureKeyvault && s.keyvault_metadata.is_none() {
            return Err(EmulatorError::seed(
                &path,
                format!("Key Vault scope {} has no keyvault_metadata", s.name),
            ));
        }
        let mut secrets = BTreeMap::new();
        for e in &s.secrets {
            if !is_valid_name(&e.key) {
                return Err(EmulatorError::seed(
                    &path,
                    format!("invalid key name {}", e.key),
                ));
            }
            let (value, encoding) = match (&e.string_value, &e.bytes_value) {
                (Some(v), None) => (Zeroizing::new(v.as_bytes().to_vec()), ValueEncoding::String),
                (None, Some(b)) => {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(|_| {
                            EmulatorError::seed(
                                &path,
                                format!("{}/{}: bytes_value is not base64", s.name, e.key),
                            )
                        })?;
                    (Zeroizing::new(bytes), ValueEncoding::Bytes)
                }
                _ => {
                    return Err(EmulatorError::seed(
                        &path,
                        format!(
                            "{}/{}: give exactly one of string_value and bytes_value",
                            s.name, e.key
                        ),
                    ))
                }
            };
            secrets.insert(
                e.key.clone(),
                SecretValue {
                    value,
                    encoding,
                    updated: e.last_updated_timestamp.unwrap_or(now),
                },
            );
        }
        st.scopes.insert(
            s.name.clone(),
            Scope {
                backend: s.backend_type,
                keyvault: s.keyvault_metadata.clone(),
                acls: s
                    .acls
                    .iter()
                    .map(|a| (a.principal.clone(), a.permission))
                    .collect(),
                secrets,
            },
        );
    }
    Ok(())
}

fn load_permissions(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    let path = dir.join("permissions.json");
    let entries: Vec<PermissionEntry> = read_json(&path)?.unwrap_or_default();
    for e in entries {
        let err = |m: String| EmulatorError::seed(&path, format!("{}: {m}", e.object));
        let request_type = if e.object.starts_with('/') {
            let p = ws::normalize_path(&e.object);
            match st.tree.get(p).map(|n| n.object_type) {
                Some(ObjectType::Notebook) => "notebooks",
                Some(ObjectType::Directory) => "directories",
                Some(ObjectType::File) => "files",
                Some(ObjectType::Repo) => "repos",
                _ => return Err(err("not in the workspace tree".into())),
            }
        } else {
            let (t, _) = e
                .object
                .split_once('/')
                .ok_or_else(|| err("expected a workspace path or <type>/<id>".into()))?;
            match t {
                "jobs" | "repos" | "registered-models" => t,
                other => return Err(err(format!("unsupported object type {other}"))),
            }
        };
        for a in &e.access_control_list {
            if !levels_for(request_type).contains(&a.permission_level.as_str()) {
                return Err(err(format!(
                    "level {} is not valid for {request_type}",
                    a.permission_level
                )));
            }
            if !st.principals.exists(&a.principal) {
                return Err(err(format!(
                    "principal {} is not in principals.json",
                    a.principal.name()
                )));
            }
        }
        let acl = e.access_control_list.clone();
        if e.object.starts_with('/') {
            let p = ws::normalize_path(&e.object).to_string();
            match st.tree.get(&p).map(|n| (n.object_type, n.object_id)) {
                Some((ObjectType::Repo, id)) => {
                    if let Some(r) = st.repos.get_mut(&id) {
                        r.acl = acl;
                    }
                }
                _ => {
                    if let Some(n) = st.tree.get_mut(&p) {
                        n.acl = acl;
                    }
                }
            }
            continue;
        }
        let (t, id) = e.object.split_once('/').expect("checked above");
        match t {
            "jobs" => {
                let id: i64 = id.parse().map_err(|_| err("bad job id".into()))?;
                st.jobs
                    .get_mut(&id)
                    .ok_or_else(|| err("no such job".into()))?
                    .acl = acl;
            }
            "repos" => {
                let id: i64 = id.parse().map_err(|_| err("bad repo id".into()))?;
                st.repos
                    .get_mut(&id)
                    .ok_or_else(|| err("no such repo".into()))?
                    .acl = acl;
            }
            _ => {
                // Models are loaded later; keep their ACLs until then.
                st.pending_model_acls.insert(id.to_string(), acl);
            }
        }
    }
    // Every job has exactly one owner: its creator unless the seed names another.
    for (id, j) in st.jobs.iter_mut() {
        if !j.acl.iter().any(|a| a.permission_level == "IS_OWNER") {
            if let Some(c) = &j.job.creator_user_name {
                j.acl.insert(
                    0,
                    AccessControlRequest {
                        principal: PrincipalRef::UserName(c.clone()),
                        permission_level: "IS_OWNER".into(),
                    },
                );
            }
        }
        single_owner(&j.acl)
            .map_err(|e| EmulatorError::seed(&path, format!("jobs/{id}: {}", e.message)))?;
    }
    Ok(())
}

fn load_hive(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    let path = dir.join("hive.json");
    let Some(h) = read_json::<HiveFile>(&path)? else {
        return Ok(());
    };
    for d in h.databases {
        let mut db = HiveDatabase {
            owner: d.owner,
            ..Default::default()
        };
        for t in d.tables {
            let is_view = match t.kind.to_ascii_uppercase().as_str() {
                "TABLE" => false,
                "VIEW" => true,
                other => {
                    return Err(EmulatorError::seed(
                        &path,
                        format!(
                            "{}.{}: type {other} is neither TABLE nor VIEW",
                            d.name, t.name
                        ),
                    ))
                }
            };
            db.tables.insert(
                t.name.to_lowercase(),
                HiveTable {
                    is_view,
                    owner: t.owner,
                },
            );
        }
        for f in d.functions {
            db.functions.insert(f.name.to_lowercase(), f.owner);
        }
        st.hive.databases.insert(d.name.to_lowercase(), db);
    }
    st.hive.catalog_owner = h.catalog_owner;
    for mut g in h.grants {
        if g.object_type == HiveObjectType::View {
            // Warehouses report grants on views as grants on tables.
            g.object_type = HiveObjectType::Table;
        }
        g.object_key = g.object_key.to_lowercase();
        let exists = match g.object_type {
            HiveObjectType::Database => st.hive.databases.contains_key(&g.object_key),
            HiveObjectType::Table => g
                .object_key
                .split_once('.')
                .and_then(|(d, t)| st.hive.databases.get(d).map(|d| d.tables.contains_key(t)))
                .unwrap_or(false),
            HiveObjectType::Function => g
                .object_key
                .split_once('.')
                .and_then(|(d, f)| {
                    st.hive
                        .databases
                        .get(d)
                        .map(|d| d.functions.contains_key(f))
                })
                .unwrap_or(false),
            _ => true,
        };
        if !exists {
            return Err(EmulatorError::seed(
                &path,
                format!(
                    "grant on {} {}, which is not in databases",
                    type_name(g.object_type),
                    g.object_key
                ),
            ));
        }
        if g.action_type == "OWN" {
            return Err(EmulatorError::seed(
                &path,
                "owners are set with `owner` on the object, not as OWN grants",
            ));
        }
        if !st.hive.grants.contains(&g) {
            st.hive.grants.push(g);
        }
    }
    st.hive.grants.sort();
    Ok(())
}

fn type_name(t: HiveObjectType) -> &'static str {
    t.sql_keyword()
}

fn load_unity(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    let path = dir.join("unity_catalog.json");
    let Some(u) = read_json::<UnityFile>(&path)? else {
        return Ok(());
    };
    for s in u.securables {
        st.unity
            .securables
            .entry((s.securable_type.to_ascii_lowercase(), s.full_name))
            .or_default();
    }
    for g in u.grants {
        let entry = st
            .unity
            .securables
            .entry((g.securable_type.to_ascii_lowercase(), g.full_name))
            .or_default();
        for mut a in g.privilege_assignments {
            a.privileges.sort();
            entry.push(a);
        }
        entry.sort();
    }
    Ok(())
}

fn load_models(dir: &Path, st: &mut State) -> Result<(), EmulatorError> {
    let models_dir = dir.join("models");
    let mut found: Vec<(RegisteredModel, Option<String>, PathBuf)> = Vec::new();
    if models_dir.is_dir() {
        for (raw, path, is_dir) in entries(&models_dir)? {
            if !is_dir {
                continue;
            }
            let file = path.join("model.json");
            let mut v: Value =
                read_json(&file)?.ok_or_else(|| EmulatorError::seed(&file, "missing"))?;
            let id = v
                .as_object_mut()
                .and_then(|o| o.remove("id"))
                .and_then(|i| i.as_str().map(str::to_string));
            let mut m: RegisteredModel =
                serde_json::from_value(v).map_err(|e| EmulatorError::seed(&file, e))?;
            let dir_name = unescape_name(&raw).map_err(|e| EmulatorError::seed(&path, e))?;
            if m.name != dir_name {
                return Err(EmulatorError::seed(
                    &file,
                    format!("name {} does not match its folder {dir_name}", m.name),
                ));
            }
            m.latest_versions.clear();
            found.push((m, id, path));
        }
    }
    // Models without an id get one in name order, after every explicit one.
    let mut used: BTreeSet<String> = found.iter().filter_map(|(_, id, _)| id.clone()).collect();
    for (m, id, path) in found {
        let id = match id {
            Some(i) => i,
            None => loop {
                let c = format!("{:032x}", st.ids.next_model);
                st.ids.next_model += 1;
                if used.insert(c.clone()) {
                    break c;
                }
            },
        };
        let mut versions = BTreeMap::new();
        let vdir = path.join("versions");
        if vdir.is_dir() {
            for (raw, vpath, is_dir) in entries(&vdir)? {
                if !is_dir {
                    continue;
                }
                let n: u64 = raw.parse().map_err(|_| {
                    EmulatorError::seed(&vpath, "version folders are named by number")
                })?;
                let vfile = vpath.join("version.json");
                let mut mv: ModelVersion =
                    read_json(&vfile)?.ok_or_else(|| EmulatorError::seed(&vfile, "missing"))?;
                if mv.version != n.to_string() || mv.name != m.name {
                    return Err(EmulatorError::seed(
                        &vfile,
                        "name and version must match the folders holding the file",
                    ));
                }
                mv.aliases.clear();
                if mv.source.is_none() {
                    mv.source = Some(format!("dbfs:{}", storage_path(&id, &m.name, n)));
                }
                let art = vpath.join("artifacts");
                if art.is_dir() {
                    let mut items = Vec::new();
                    walk_dbfs(&art, "/", &mut items)?;
                    let root = storage_path(&id, &m.name, n);
                    super::dbfs::make_dirs(st, &root)
                        .map_err(|e| EmulatorError::seed(&art, e.message))?;
                    for (p, data) in items {
                        let target = format!("{root}{p}");
                        match data {
                            None => super::dbfs::make_dirs(st, &target),
                            Some(d) => super::dbfs::write_file(st, &target, d, true),
                        }
                        .map_err(|e| EmulatorError::seed(&art, e.message))?;
                    }
                }
                versions.insert(n, mv);
            }
        }
        let acl = st.pending_model_acls.remove(&m.name).unwrap_or_default();
        let next_version = versions.keys().max().map_or(1, |v| v + 1);
        st.models.insert(
            m.name.clone(),
            ModelState {
                id,
                model: m,
                versions,
                acl,
                next_version,
                pending: Default::default(),
            },
        );
    }
    if let Some(name) = st.pending_model_acls.keys().next() {
        return Err(EmulatorError::seed(
            dir.join("permissions.json"),
            format!("registered-models/{name}: no such model"),
        ));
    }
    Ok(())
}

/// Adds what every workspace has: the `admins` and `users` groups and a user to act as.
fn ensure_principals(st: &mut State) {
    let p = &mut st.principals;
    if p.users.is_empty() {
        p.users.push(User {
            id: "1000000000000001".into(),
            user_name: DEFAULT_ADMIN.into(),
            display_name: Some("Emulator Admin".into()),
            active: true,
            emails: Vec::new(),
            groups: Vec::new(),
            entitlements: Vec::new(),
        });
    }
    let mut next_id = 9_000_000_000_000_001u64;
    let mut fresh_id = |p: &super::state::Principals| loop {
        let id = next_id.to_string();
        next_id += 1;
        if !p.groups.iter().any(|g| g.id == id)
            && !p.users.iter().any(|u| u.id == id)
            && !p.service_principals.iter().any(|s| s.id == id)
        {
            return id;
        }
    };
    if !p.groups.iter().any(|g| g.display_name == "admins") {
        let id = fresh_id(p);
        let first = p.users[0].id.clone();
        p.groups.push(Group {
            id,
            display_name: "admins".into(),
            members: vec![ScimRef {
                value: first,
                display: None,
                primary: None,
            }],
            entitlements: Vec::new(),
        });
    }
    if !p.groups.iter().any(|g| g.display_name == "users") {
        let id = fresh_id(p);
        let members = p
            .users
            .iter()
            .map(|u| ScimRef {
                value: u.id.clone(),
                display: None,
                primary: None,
            })
            .collect();
        p.groups.push(Group {
            id,
            display_name: "users".into(),
            members,
            entitlements: Vec::new(),
        });
    }
}

/// Adds the folders, groups and DBFS root every workspace has.
pub(crate) fn ensure_defaults(st: &mut State) {
    ensure_principals(st);
    let now = st.now();
    if st.tree.get("/").is_none() {
        st.tree.insert(
            "/".into(),
            Node {
                object_type: ObjectType::Directory,
                object_id: 0,
                language: None,
                content: Vec::new(),
                created_at: now,
                modified_at: now,
                outputs_bytes: 0,
                acl: Vec::new(),
            },
        );
    }
    for d in ["/Users", "/Shared", "/Repos"] {
        if st.tree.get(d).is_none() {
            let node = super::workspace::new_node(st, ObjectType::Directory);
            st.tree.insert(d.to_string(), node);
        }
    }
    if !st.dbfs.nodes.contains_key("/") {
        st.dbfs.nodes.insert(
            "/".into(),
            DbfsNode {
                is_dir: true,
                data: Vec::new(),
                mtime: now,
            },
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dumping.

/// What a dump writes: files (relative path, bytes, private) and folders.
#[derive(Default)]
struct Out {
    files: Vec<(PathBuf, Vec<u8>, bool)>,
    dirs: Vec<PathBuf>,
}

impl Out {
    fn json<T: Serialize>(&mut self, rel: impl Into<PathBuf>, v: &T, private: bool) {
        let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
        bytes.push(b'\n');
        self.files.push((rel.into(), bytes, private));
    }
}

fn dump_workspace(st: &State, out: &mut Out) {
    fn rec(st: &State, ws_dir: &str, disk: &Path, out: &mut Out) {
        let children = st.tree.children(ws_dir);
        let mut notebook_names: HashSet<String> = HashSet::new();
        for c in &children {
            if let Some(n) = st.tree.get(c) {
                if n.object_type == ObjectType::Notebook {
                    let lang = n.language.unwrap_or(Language::Python);
                    notebook_names.insert(
                        format!(
                            "{}.{}",
                            escape_name(ws::base_name(c), false),
                            lang.extension()
                        )
                        .to_lowercase(),
                    );
                }
            }
        }
        let mut wanted: Vec<(String, String)> = Vec::new();
        for c in &children {
            let n = &st.tree.nodes[c];
            let name = escape_name(ws::base_name(c), false);
            wanted.push(match n.object_type {
                ObjectType::Notebook => (
                    name,
                    format!(".{}", n.language.unwrap_or(Language::Python).extension()),
                ),
                ObjectType::File => {
                    // A file that would read back as a notebook, or that a notebook's file name
                    // would shadow, gets its last dot escaped.
                    let looks_like_notebook = name.rsplit_once('.').is_some_and(|(stem, ext)| {
                        !stem.is_empty()
                            && Language::from_extension(ext)
                                .is_some_and(|l| notebook::has_header(l, &n.content))
                    });
                    let name =
                        if looks_like_notebook || notebook_names.contains(&name.to_lowercase()) {
                            match name.rsplit_once('.') {
                                Some((stem, ext)) => format!("{stem}%2E{ext}"),
                                None => name,
                            }
                        } else {
                            name
                        };
                    (name, String::new())
                }
                _ => (name, String::new()),
            });
        }
        let names = fold_apart(wanted);
        for (c, disk_name) in children.iter().zip(names) {
            let n = &st.tree.nodes[c];
            let p = disk.join(&disk_name);
            if n.is_container() {
                out.dirs.push(p.clone());
                rec(st, c, &p, out);
            } else {
                out.files.push((p, n.content.clone(), false));
            }
        }
    }
    let root = PathBuf::from("workspace");
    out.dirs.push(root.clone());
    rec(st, "/", &root, out);
}

fn dump_dbfs(st: &State, root: &str, disk: PathBuf, skip: Option<&str>, out: &mut Out) {
    fn rec(st: &State, dir: &str, disk: &Path, skip: Option<&str>, out: &mut Out) {
        let children = super::dbfs::children(st, dir);
        let wanted: Vec<(String, String)> = children
            .iter()
            .map(|c| (escape_name(ws::base_name(c), false), String::new()))
            .collect();
        for (c, name) in children.iter().zip(fold_apart(wanted)) {
            if Some(c.as_str()) == skip {
                continue;
            }
            let n = &st.dbfs.nodes[c];
            let p = disk.join(&name);
            if n.is_dir {
                out.dirs.push(p.clone());
                rec(st, c, &p, skip, out);
            } else {
                out.files.push((p, n.data.clone(), false));
            }
        }
    }
    out.dirs.push(disk.clone());
    rec(st, root, &disk, skip, out);
}

fn collect(st: &State) -> Out {
    let mut out = Out::default();
    out.json(
        "workspace.json",
        &WorkspaceFile {
            workspace_id: Some(st.workspace.workspace_id.clone()),
            secrets_get_refused: st.workspace.secrets_get_refused,
            first_object_id: Some(st.workspace.first_object_id),
        },
        false,
    );
    out.json(
        "principals.json",
        &PrincipalsFile {
            users: st.principals.users.clone(),
            groups: st.principals.groups.clone(),
            service_principals: st.principals.service_principals.clone(),
        },
        false,
    );
    out.json(
        "tokens.json",
        &TokensFile {
            tokens: st
                .tokens
                .iter()
                .map(|t| TokenEntry {
                    token: t.token.clone(),
                    user_name: t.user_name.clone(),
                })
                .collect(),
            oauth_clients: st
                .oauth_clients
                .iter()
                .map(|c| ClientEntry {
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone(),
                    application_id: c.application_id.clone(),
                })
                .collect(),
            entra: st.entra.as_ref().map(|e| EntraEntry {
                tenant_id: e.tenant_id.clone(),
                workspace_resource_id: e.workspace_resource_id.clone(),
                clients: e
                    .clients
                    .iter()
                    .map(|c| EntraClientEntry {
                        client_id: c.client_id.clone(),
                        client_secret: c.client_secret.clone(),
                    })
                    .collect(),
                managed_identities: e.managed_identities.clone(),
                identity_header: e.identity_header.clone(),
            }),
        },
        true,
    );
    dump_workspace(st, &mut out);
    let objects: BTreeMap<&str, ObjectMeta> = st
        .tree
        .nodes
        .iter()
        .filter(|(p, _)| p.as_str() != "/")
        .map(|(p, n)| {
            (
                p.as_str(),
                ObjectMeta {
                    object_type: Some(n.object_type),
                    object_id: Some(n.object_id),
                    created_at: Some(n.created_at),
                    modified_at: Some(n.modified_at),
                    outputs_bytes: (n.outputs_bytes > 0).then_some(n.outputs_bytes),
                },
            )
        })
        .collect();
    out.json("objects.json", &objects, false);
    let repos: Vec<&Repo> = st.repos.values().map(|r| &r.repo).collect();
    out.json("repos.json", &repos, false);
    let creds: Vec<CredentialEntry> = st
        .git_credentials
        .values()
        .map(|c| CredentialEntry {
            cred: c.cred.clone(),
            user_name: Some(c.owner.clone()),
        })
        .collect();
    out.json("git_credentials.json", &creds, false);
    out.dirs.push("jobs".into());
    for (id, j) in &st.jobs {
        out.json(format!("jobs/{id}.json"), &j.job, false);
    }

    let scopes: Vec<ScopeEntry> = st
        .scopes
        .iter()
        .map(|(name, s)| ScopeEntry {
            name: name.clone(),
            backend_type: s.backend,
            keyvault_metadata: s.keyvault.clone(),
            acls: s
                .acls
                .iter()
                .map(|(p, l)| AclItem {
                    principal: p.clone(),
                    permission: *l,
                })
                .collect(),
            secrets: s
                .secrets
                .iter()
                .map(|(k, v)| {
                    let text = match v.encoding {
                        ValueEncoding::String => std::str::from_utf8(&v.value).ok(),
                        ValueEncoding::Bytes => None,
                    };
                    SecretEntry {
                        key: k.clone(),
                        string_value: text.map(str::to_string),
                        bytes_value: text.is_none().then(|| b64(&v.value)),
                        last_updated_timestamp: Some(v.updated),
                    }
                })
                .collect(),
        })
        .collect();
    out.json("secrets.json", &SecretsFile { scopes }, true);

    let mut perms: Vec<PermissionEntry> = Vec::new();
    for (p, n) in &st.tree.nodes {
        if !n.acl.is_empty() && n.object_type != ObjectType::Repo {
            perms.push(PermissionEntry {
                object: p.clone(),
                access_control_list: n.acl.clone(),
            });
        }
    }
    for (id, j) in &st.jobs {
        perms.push(PermissionEntry {
            object: format!("jobs/{id}"),
            access_control_list: j.acl.clone(),
        });
    }
    for (id, r) in &st.repos {
        if !r.acl.is_empty() {
            perms.push(PermissionEntry {
                object: format!("repos/{id}"),
                access_control_list: r.acl.clone(),
            });
        }
    }
    for (name, m) in &st.models {
        if !m.acl.is_empty() {
            perms.push(PermissionEntry {
                object: format!("registered-models/{name}"),
                access_control_list: m.acl.clone(),
            });
        }
    }
    out.json("permissions.json", &perms, false);

    let mut grants = st.hive.grants.clone();
    grants.sort();
    let hive = HiveFile {
        databases: st
            .hive
            .databases
            .iter()
            .map(|(name, d)| DatabaseEntry {
                name: name.clone(),
                owner: d.owner.clone(),
                tables: d
                    .tables
                    .iter()
                    .map(|(t, v)| TableEntry {
                        name: t.clone(),
                        kind: if v.is_view { "VIEW" } else { "TABLE" }.to_string(),
                        owner: v.owner.clone(),
                    })
                    .collect(),
                functions: d
                    .functions
                    .iter()
                    .map(|(f, o)| FunctionEntry {
                        name: f.clone(),
                        owner: o.clone(),
                    })
                    .collect(),
            })
            .collect(),
        grants,
        catalog_owner: st.hive.catalog_owner.clone(),
    };
    out.json("hive.json", &hive, false);

    let unity = UnityFile {
        securables: st
            .unity
            .securables
            .keys()
            .map(|(t, n)| SecurableRef {
                securable_type: t.clone(),
                full_name: n.clone(),
            })
            .collect(),
        grants: st
            .unity
            .securables
            .iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|((t, n), a)| UcGrants {
                securable_type: t.clone(),
                full_name: n.clone(),
                privilege_assignments: a.clone(),
            })
            .collect(),
    };
    out.json("unity_catalog.json", &unity, false);

    out.json(
        "compute.json",
        &ComputeFile {
            clusters: st.compute.clusters.clone(),
            instance_pools: st.compute.pools.clone(),
            policies: st.compute.policies.clone(),
            warehouses: st.compute.warehouses.clone(),
        },
        false,
    );
    out.json("mounts.json", &st.mounts, false);
    dump_dbfs(
        st,
        "/",
        PathBuf::from("dbfs"),
        Some("/databricks/mlflow-registry"),
        &mut out,
    );

    dump_uc_models(st, &mut out);
    dump_tracking(st, &mut out);
    out.dirs.push("models".into());
    let names: Vec<(String, String)> = st
        .models
        .keys()
        .map(|n| (escape_name(n, false), String::new()))
        .collect();
    for ((name, m), disk) in st.models.iter().zip(fold_apart(names)) {
        let base = PathBuf::from("models").join(disk);
        // `name` and `id` first, then the rest of the model as the API shows it.
        let mut v = serde_json::Map::new();
        v.insert("name".into(), Value::String(name.clone()));
        v.insert("id".into(), Value::String(m.id.clone()));
        if let Value::Object(o) = serde_json::to_value(&m.model).unwrap_or_default() {
            for (k, x) in o {
                if k != "latest_versions" && k != "name" {
                    v.insert(k, x);
                }
            }
        }
        let v = Value::Object(v);
        out.dirs.push(base.clone());
        out.json(base.join("model.json"), &v, false);
        for (n, mv) in &m.versions {
            let vdir = base.join("versions").join(n.to_string());
            out.dirs.push(vdir.clone());
            out.json(vdir.join("version.json"), mv, false);
            let root = storage_path(&m.id, name, *n);
            if st.dbfs.nodes.contains_key(&root) {
                dump_dbfs(st, &root, vdir.join("artifacts"), None, &mut out);
            }
        }
    }
    out
}

fn write_all(target: &Path, out: &Out) -> Result<(), EmulatorError> {
    let err = |p: &Path, e: std::io::Error| EmulatorError::dump(p, e);
    for d in &out.dirs {
        let p = target.join(d);
        fs::create_dir_all(&p).map_err(|e| err(&p, e))?;
    }
    for (rel, data, private) in &out.files {
        let p = target.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
        }
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            if *private {
                opts.mode(0o600);
            }
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(&p).map_err(|e| err(&p, e))?;
        use std::io::Write;
        f.write_all(data).map_err(|e| err(&p, e))?;
        f.sync_all().map_err(|e| err(&p, e))?;
    }
    Ok(())
}

/// Writes the state to `dir` in the seed format. `dir` must not exist or be empty; the dump is
/// written beside it and renamed into place only when complete.
pub(crate) fn dump(shared: &Shared, dir: &Path) -> Result<(), EmulatorError> {
    let out = {
        let st = shared.lock();
        collect(&st)
    };
    if dir.exists() {
        let empty = dir
            .read_dir()
            .map_err(|e| EmulatorError::dump(dir, e))?
            .next()
            .is_none();
        if !empty {
            return Err(EmulatorError::dump(
                dir,
                "exists and is not empty; dump into a new directory",
            ));
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| EmulatorError::dump(&parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".dbxport-dump-")
        .tempdir_in(&parent)
        .map_err(|e| EmulatorError::dump(&parent, e))?;
    write_all(tmp.path(), &out)?;
    if dir.exists() {
        fs::remove_dir(dir).map_err(|e| EmulatorError::dump(dir, e))?;
    }
    let tmp_path = tmp.keep();
    if let Err(e) = fs::rename(&tmp_path, dir) {
        let _ = fs::remove_dir_all(&tmp_path);
        return Err(EmulatorError::dump(dir, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in ["plain", "a:b", "50%", "q?*", "tab\tname", "é", "x/y"] {
            let e = escape_name(n, false);
            assert!(
                !e.contains(['<', '>', ':', '"', '\\', '|', '?', '*', '/']),
                "{e}"
            );
            assert_eq!(unescape_name(&e).unwrap(), n);
            assert_eq!(unescape_name(&escape_name(n, true)).unwrap(), n);
        }
        assert_eq!(unescape_name("100%").unwrap(), "100%");
    }

    #[test]
    fn case_folding_kept_apart() {
        let names = fold_apart(
            ["Readme", "README", "ReadMe", "x"]
                .iter()
                .map(|n| (n.to_string(), String::new()))
                .collect(),
        );
        assert_eq!(names[1], "README");
        assert_eq!(names[2], "%52eadMe");
        let nb = fold_apart(vec![
            ("Analysis".into(), ".py".into()),
            ("analysis".into(), ".py".into()),
        ]);
        assert_eq!(nb, vec!["Analysis.py", "%61nalysis.py"]);
        let folded: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(folded.len(), 4);
        for n in &names {
            let back = unescape_name(n).unwrap();
            assert!(["Readme", "README", "ReadMe", "x"].contains(&back.as_str()));
        }
    }
}
