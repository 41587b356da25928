//! Helpers for the import tests: a PoC emulator and a prod emulator (the empty fixture plus the
//! PoC's table definitions, as if the data had been migrated, and one SQL warehouse), a bundle
//! exported from the PoC with a fresh age key, the import library driven directly, and dump
//! normalization for comparing two workspaces.
#![allow(dead_code)]

use dbxport::bundle::Opener;
use dbxport::client::config::SecretString;
use dbxport::client::{Client, ClientOptions, Config};
use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultConfig};
use dbxport::export::{ExportOptions, Quiet, SecretsOptions, Selection, DEFAULT_KINDS};
use dbxport::import::{self, ApplyOptions, Interrupt, Mapping, Options, SourceBundle};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The running cluster of the PoC seed (command execution reads secret values through it).
pub const POC_CLUSTER: &str = "0611-083245-krill42a";
/// The SQL warehouse of the PoC seed.
pub const POC_WAREHOUSE: &str = "4b9e1f2c7a3d5e60";
/// The SQL warehouse of the prod seed.
pub const PROD_WAREHOUSE: &str = "7f00aa11bb22cc33";
/// A fixed clock, so dumps are stable.
pub const CLOCK: i64 = 1_700_000_000_000;

/// The mapping the PoC needs in prod: its two clusters and its pool, warehouse and policy.
pub const MAPPING: &str = r#"
unmapped_principals = "fail"

[clusters]
"0611-083245-krill42a" = "1201-090000-prodshr1"
"0702-154510-glacier7" = { new_cluster = { spark_version = "15.4.x-gpu-ml-scala2.12", node_type_id = "Standard_NC6s_v3", num_workers = 1 } }

[instance_pools]
"0611-090012-ponds3-pool-k3j9x2m1" = "1201-090000-prodpool"

[warehouses]
"4b9e1f2c7a3d5e60" = "7f00aa11bb22cc33"
"#;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A runtime shared by the tests of one binary.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// An emulator of the PoC seed.
pub fn start_poc() -> EmulatorHandle {
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(repo_path("fixtures/workspaces/poc"))
            .with_fixed_clock(CLOCK),
    )
    .expect("the poc emulator starts")
}

/// Writes the prod seed into `dir`: the empty fixture, the PoC's databases, tables and Unity
/// Catalog securables without any grant (owned by `admins`), and one running SQL warehouse.
pub fn write_prod_seed(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let empty = repo_path("fixtures/workspaces/empty");
    for e in std::fs::read_dir(&empty).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let poc = repo_path("fixtures/workspaces/poc");
    let mut hive: Value =
        serde_json::from_slice(&std::fs::read(poc.join("hive.json")).unwrap()).unwrap();
    hive["grants"] = json!([]);
    hive["catalog_owner"] = json!("admins");
    for db in hive["databases"].as_array_mut().unwrap() {
        db["owner"] = json!("admins");
        for t in db["tables"].as_array_mut().unwrap() {
            t["owner"] = json!("admins");
        }
        for f in db["functions"].as_array_mut().unwrap() {
            f["owner"] = json!("admins");
        }
    }
    std::fs::write(
        dir.join("hive.json"),
        serde_json::to_vec_pretty(&hive).unwrap(),
    )
    .unwrap();
    let uc: Value =
        serde_json::from_slice(&std::fs::read(poc.join("unity_catalog.json")).unwrap()).unwrap();
    let mut securables: Vec<Value> = uc
        .get("securables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Registered models (securable type `function`) are created by the import itself.
    for g in uc["grants"].as_array().unwrap() {
        if g["securable_type"] != "function" {
            securables
                .push(json!({"securable_type": g["securable_type"], "full_name": g["full_name"]}));
        }
    }
    std::fs::write(
        dir.join("unity_catalog.json"),
        serde_json::to_vec_pretty(&json!({"securables": securables, "grants": []})).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("compute.json"),
        serde_json::to_vec_pretty(&json!({"warehouses": [{
            "id": PROD_WAREHOUSE, "name": "prod-sql", "cluster_size": "Small",
            "state": "RUNNING", "warehouse_type": "PRO",
            "creator_name": "ada.okafor@sciencehub.example"
        }]}))
        .unwrap(),
    )
    .unwrap();
}

/// An emulator of the prod seed (written below `dir`) with `faults`.
pub fn start_prod(dir: &Path, faults: FaultConfig) -> EmulatorHandle {
    let seed = dir.join("prod-seed");
    if !seed.exists() {
        write_prod_seed(&seed);
    }
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(seed)
            .with_faults(faults)
            .with_fixed_clock(CLOCK),
    )
    .expect("the prod emulator starts")
}

/// A client for an emulator, with quick retries for fault tests.
pub fn client(emu: &EmulatorHandle) -> Client {
    let config = Config::pat(emu.url(), SecretString::from(emu.admin_token().to_string())).unwrap();
    let mut o = ClientOptions::from_config(&config);
    o.backoff_base = Duration::from_millis(20);
    o.backoff_cap = Duration::from_millis(200);
    o.retry_budget = Duration::from_secs(120);
    o.request_timeout = Duration::from_secs(20);
    Client::new(&config, o).unwrap()
}

pub use super::ctx::keypair;

/// An opener for an identity file.
pub fn opener(identity: &Path) -> Opener {
    let mut o = Opener::new();
    o.add_identity_file(identity).unwrap();
    o
}

/// Exports the whole PoC into `dir/poc.zip`, secret values sealed to `recipient`.
pub fn export_poc(poc: &EmulatorHandle, dir: &Path, recipient: &str) -> PathBuf {
    let out = dir.join("poc.zip");
    let opts = ExportOptions {
        output: out.clone(),
        kinds: DEFAULT_KINDS.into_iter().collect(),
        selection: Selection::default(),
        notebook_format: None,
        secrets: SecretsOptions {
            sealer: Some(dbxport::bundle::Sealer::to_recipients(&[recipient]).unwrap()),
            cluster_id: Some(POC_CLUSTER.into()),
        },
        warehouse_id: Some(POC_WAREHOUSE.into()),
        cluster_id: Some(POC_CLUSTER.into()),
        envelope: None,
        resume: false,
        concurrency: 8,
        models: Default::default(),
    };
    let summary = rt()
        .block_on(dbxport::export::export(client(poc), opts, Arc::new(Quiet)))
        .expect("the poc exports");
    assert!(
        !summary.has_failures(),
        "the poc export had failures: {:?}",
        summary.report
    );
    out
}

/// The import options of the tests: the PoC mapping.
pub fn options() -> Options {
    Options {
        mapping: Mapping::parse(MAPPING, "test mapping").unwrap(),
        concurrency: 8,
        ..Options::default()
    }
}

/// Runs an import of `bundle` into `emu`.
pub fn import(
    emu: &EmulatorHandle,
    bundle: &Path,
    identity: Option<&Path>,
    options: &Options,
    resume: bool,
) -> (import::Plan, import::ImportReport) {
    let src = SourceBundle::open(bundle, None).expect("the bundle opens");
    let op = identity.map(opener);
    let c = client(emu);
    let report = rt()
        .block_on(import::import(
            &src,
            &c,
            options,
            op.as_ref(),
            &ApplyOptions {
                journal: None,
                resume,
                ..Default::default()
            },
            &Interrupt::new(),
            &|_| {},
        ))
        .expect("the import runs");
    (report.plan().clone(), report)
}

/// A workspace dump as a map: relative path → parsed JSON (or text for other files).
pub fn dump(emu: &EmulatorHandle, dir: &Path) -> BTreeMap<String, Value> {
    let d = dir.join(format!("dump-{}", rand_suffix()));
    emu.dump_to(&d).unwrap();
    let mut out = BTreeMap::new();
    for e in walk(&d) {
        let rel = e
            .strip_prefix(&d)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&e).unwrap();
        let v = if rel.ends_with(".json") {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        } else {
            Value::String(format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
            ))
        };
        out.insert(rel, v);
    }
    out
}

fn rand_suffix() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Which side of a migration a dump comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source: the documented remaps are applied to it, as import applies them.
    Source,
    /// The target.
    Target,
}

/// The documented remaps of a PoC job's settings under [`MAPPING`], written out independently
/// of the import code: schedules paused, clusters, pool and warehouse mapped.
fn expected_job_settings(s: &mut serde_json::Map<String, Value>) {
    for key in ["schedule", "trigger", "continuous"] {
        if let Some(Value::Object(o)) = s.get_mut(key) {
            o.insert("pause_status".into(), json!("PAUSED"));
        }
    }
    let mut added = false;
    let pool = |v: &mut Value| {
        for k in ["instance_pool_id", "driver_instance_pool_id"] {
            if v.get(k) == Some(&json!("0611-090012-ponds3-pool-k3j9x2m1")) {
                v[k] = json!("1201-090000-prodpool");
            }
        }
    };
    if let Some(Value::Array(jcs)) = s.get_mut("job_clusters") {
        for jc in jcs.iter_mut() {
            pool(&mut jc["new_cluster"]);
        }
    }
    if let Some(Value::Array(tasks)) = s.get_mut("tasks") {
        for t in tasks.iter_mut() {
            match t.get("existing_cluster_id").and_then(Value::as_str) {
                Some("0611-083245-krill42a") => {
                    t["existing_cluster_id"] = json!("1201-090000-prodshr1");
                }
                Some("0702-154510-glacier7") => {
                    t.as_object_mut().unwrap().remove("existing_cluster_id");
                    t["job_cluster_key"] = json!("dbxport_0702_154510_glacier7");
                    added = true;
                }
                _ => {}
            }
            if let Some(nc) = t.get_mut("new_cluster") {
                pool(nc);
            }
            for k in ["sql_task", "notebook_task", "dbt_task"] {
                if t.pointer(&format!("/{k}/warehouse_id")) == Some(&json!("4b9e1f2c7a3d5e60")) {
                    t[k]["warehouse_id"] = json!("7f00aa11bb22cc33");
                }
            }
        }
    }
    if added {
        let jcs = s.entry("job_clusters").or_insert_with(|| json!([]));
        jcs.as_array_mut().unwrap().push(json!({
            "job_cluster_key": "dbxport_0702_154510_glacier7",
            "new_cluster": {"spark_version": "15.4.x-gpu-ml-scala2.12", "node_type_id": "Standard_NC6s_v3", "num_workers": 1}
        }));
    }
}

fn sort_array(v: &mut Value) {
    if let Value::Array(a) = v {
        a.sort_by_key(|x| x.to_string());
    }
}

/// A dump reduced to what a migration must carry, with server-assigned ids replaced by names
/// and the documented remaps applied to the source side:
///
/// - compute, mounts, DBFS, git credentials, tokens and the workspace identity are not carried
///   (they are on the must-recreate list, or belong to the workspace);
/// - ML models are not replayed by this version;
/// - repos are links: their content comes from the remote, their head commit too;
/// - object ids, times and notebook cell outputs are not carried;
/// - Key Vault-backed scopes must be recreated by hand; value timestamps are the put time;
///   a value is compared as bytes (the API does not say whether it was put as a string);
/// - jobs are keyed by name; ids, creators and times are the target's; the source tag is
///   added; schedules are paused; clusters, pools and warehouses are mapped; run_job_task
///   references name the job.
pub fn normalize(d: &BTreeMap<String, Value>, side: Side) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let repos: Vec<Value> = d
        .get("repos.json")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let repo_paths: Vec<String> = repos
        .iter()
        .filter_map(|r| r["path"].as_str().map(str::to_string))
        .collect();
    let repo_by_id: BTreeMap<String, String> = repos
        .iter()
        .map(|r| {
            (
                r["id"].to_string(),
                r["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let in_repo = |p: &str| repo_paths.iter().any(|r| p.starts_with(&format!("{r}/")));
    let mut job_names: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in d {
        if let Some(id) = k
            .strip_prefix("jobs/")
            .and_then(|r| r.strip_suffix(".json"))
        {
            job_names.insert(
                id.to_string(),
                v.pointer("/settings/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    for (k, v) in d {
        let skip = [
            "compute.json",
            "mounts.json",
            "git_credentials.json",
            "tokens.json",
            "workspace.json",
            // Source runs stay in the source workspace; model versions keep their ids.
            "tracking.json",
        ];
        // Models are compared by the models tests (ids, times and sources differ by design).
        if skip.contains(&k.as_str())
            || k.starts_with("dbfs/")
            || k.starts_with("models/")
            || k.starts_with("uc_models/")
        {
            continue;
        }
        if let Some(p) = k.strip_prefix("workspace") {
            if in_repo(p) {
                continue;
            }
            out.insert(k.clone(), v.clone());
            continue;
        }
        let mut v = v.clone();
        match k.as_str() {
            "objects.json" => {
                let mut o = serde_json::Map::new();
                for (path, info) in v.as_object().unwrap() {
                    if in_repo(path) {
                        continue;
                    }
                    o.insert(path.clone(), json!({"object_type": info["object_type"]}));
                }
                v = Value::Object(o);
            }
            "repos.json" => {
                for r in v.as_array_mut().unwrap() {
                    let o = r.as_object_mut().unwrap();
                    o.remove("id");
                    o.remove("head_commit_id");
                }
                sort_array(&mut v);
            }
            "secrets.json" => {
                let scopes = v["scopes"].as_array_mut().unwrap();
                scopes.retain(|s| s["backend_type"] != "AZURE_KEYVAULT");
                for s in scopes.iter_mut() {
                    sort_array(&mut s["acls"]);
                    for sec in s["secrets"].as_array_mut().unwrap() {
                        let o = sec.as_object_mut().unwrap();
                        o.remove("last_updated_timestamp");
                        // The API does not say how a value was put; compare the bytes.
                        use base64::Engine as _;
                        let b64 = base64::engine::general_purpose::STANDARD;
                        let bytes = match (o.remove("string_value"), o.remove("bytes_value")) {
                            (Some(Value::String(t)), _) => t.into_bytes(),
                            (_, Some(Value::String(b))) => b64.decode(b).unwrap(),
                            _ => Vec::new(),
                        };
                        o.insert("bytes".into(), json!(b64.encode(bytes)));
                    }
                    sort_array(&mut s["secrets"]);
                }
            }
            "permissions.json" => {
                let mut list: Vec<Value> = Vec::new();
                for mut e in v.as_array().unwrap().clone() {
                    let obj = e["object"].as_str().unwrap().to_string();
                    if obj.starts_with("registered-models/") {
                        continue;
                    }
                    let named = if let Some(id) = obj.strip_prefix("jobs/") {
                        format!("jobs/{}", job_names.get(id).cloned().unwrap_or(id.into()))
                    } else if let Some(id) = obj.strip_prefix("repos/") {
                        format!("repos/{}", repo_by_id.get(id).cloned().unwrap_or(id.into()))
                    } else {
                        obj
                    };
                    e["object"] = json!(named);
                    sort_array(&mut e["access_control_list"]);
                    list.push(e);
                }
                v = Value::Array(list);
                sort_array(&mut v);
            }
            _ if k.starts_with("jobs/") => {
                let name = v
                    .pointer("/settings/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let mut s = v["settings"].as_object().unwrap().clone();
                match side {
                    Side::Source => expected_job_settings(&mut s),
                    Side::Target => {
                        if let Some(Value::Object(t)) = s.get_mut("tags") {
                            t.remove("dbxport_source");
                            if t.is_empty() {
                                s.remove("tags");
                            }
                        }
                    }
                }
                if let Some(Value::Array(tasks)) = s.get_mut("tasks") {
                    for t in tasks.iter_mut() {
                        if let Some(id) = t.pointer("/run_job_task/job_id").map(|i| i.to_string()) {
                            t["run_job_task"]["job_id"] =
                                json!(job_names.get(&id).cloned().unwrap_or(id));
                        }
                    }
                }
                out.insert(format!("jobs/{name}"), Value::Object(s));
                continue;
            }
            _ => {}
        }
        out.insert(k.clone(), v);
    }
    out
}

/// Asserts two normalized dumps are equal, naming the first differences.
pub fn assert_same(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>, what: &str) {
    let mut problems = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => problems.push(format!("only in the first: {k}")),
            Some(w) if w != v => problems.push(format!(
                "{k} differs:\n  first:  {}\n  second: {}",
                short(v),
                short(w)
            )),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        problems.push(format!("only in the second: {k}"));
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 1500 {
        format!("{}…", &s[..1500])
    } else {
        s
    }
}
