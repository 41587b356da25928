//! The official Python SDK (`databricks-sdk`) judges the emulator: the suite in
//! `tests/sdk_conformance/` drives an emulator seeded with `fixtures/workspaces/poc` through every
//! API family and must pass. A second test checks over raw HTTP that the seed's planted objects
//! are all served, so the fixture cannot rot without a failing test.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::{json, Value};

/// The suite's budget; a hung SDK call must fail the test, not the CI run.
const SUITE_TIMEOUT: Duration = Duration::from_secs(900);

pub(crate) fn fixture(name: &str) -> PathBuf {
    common::repo_path(&format!("fixtures/workspaces/{name}"))
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The seed's token for `user_name` (fake credentials, committed with the fixture).
pub(crate) fn seed_token(seed: &str, user_name: &str) -> String {
    read_json(fixture(seed).join("tokens.json"))["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["user_name"] == user_name)
        .and_then(|t| t["token"].as_str())
        .unwrap_or_else(|| panic!("{seed}: no token for {user_name}"))
        .to_string()
}

pub(crate) fn start(seed: &str) -> EmulatorHandle {
    Emulator::start_in_background(EmulatorConfig::default().with_seed(fixture(seed)))
        .unwrap_or_else(|e| panic!("emulator with seed {seed}: {e}"))
}

pub(crate) const ADMIN: &str = "ada.okafor@sciencehub.example";

#[test]
fn python_sdk_conformance_suite_passes() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let source = start("poc");
    let target = start("empty");
    let oauth = &read_json(fixture("poc").join("tokens.json"))["oauth_clients"][0];
    let mut cmd = Command::new(python);
    cmd.arg(common::repo_path("tests/sdk_conformance/run.py"))
        .args(["--host", source.url()])
        .args([
            "--client-id",
            oauth["client_id"].as_str().expect("client_id"),
        ])
        .args(["--target-host", target.url()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A developer's own Databricks settings must not reach the SDK.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DATABRICKS_") {
            cmd.env_remove(&k);
        }
    }
    // Credentials by environment, never on the command line.
    cmd.env("CONFORMANCE_TOKEN", seed_token("poc", ADMIN))
        .env(
            "CONFORMANCE_CLIENT_SECRET",
            oauth["client_secret"].as_str().expect("client_secret"),
        )
        .env("CONFORMANCE_TARGET_TOKEN", seed_token("empty", ADMIN));
    let last = run_suite(cmd, "the SDK conformance suite");
    assert!(
        !last.contains("skipped"),
        "cases were skipped although every input was given: {last:?}"
    );
}

/// Waits for `child`, killing it after `limit`; returns its exit code (None when killed) and
/// its output.
pub(crate) fn wait_with_timeout(
    mut child: std::process::Child,
    limit: Duration,
) -> (Option<i32>, String, String) {
    use std::io::Read;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for the suite") {
            Some(st) => break st.code(),
            None if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    (
        status,
        reader.join().unwrap_or_default(),
        err_reader.join().unwrap_or_default(),
    )
}

/// A raw HTTP client for the emulator, as an independent check of the seed.
struct Raw {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Raw {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            json!({})
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:.200}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 200, "POST {path}: {v}");
        v
    }
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The numbers planted in `fixtures/workspaces/poc` (see its README). Change them together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poc_fixture_serves_every_planted_object() {
    let emu = Emulator::start(EmulatorConfig::default().with_seed(fixture("poc")))
        .await
        .expect("start the emulator with the poc seed");
    let raw = Raw {
        http: reqwest::Client::new(),
        url: emu.url().to_string(),
        token: seed_token("poc", ADMIN),
    };

    // Workspace tree, walked like the SDK's recursive list (repo roots are not descended).
    let (mut notebooks, mut files, mut repos_roots, mut languages) = (0, 0, 0, Vec::new());
    let mut queue = vec!["/".to_string()];
    let mut empty_dirs = Vec::new();
    while let Some(dir) = queue.pop() {
        let listing = raw
            .get(&format!("/api/2.0/workspace/list?path={}", enc(&dir)))
            .await;
        if arr(&listing, "objects").is_empty() {
            empty_dirs.push(dir.clone());
        }
        for o in arr(&listing, "objects") {
            match o["object_type"].as_str() {
                Some("DIRECTORY") => queue.push(o["path"].as_str().unwrap().to_string()),
                Some("NOTEBOOK") => {
                    notebooks += 1;
                    languages.push(o["language"].as_str().unwrap_or("").to_string());
                }
                Some("FILE") => files += 1,
                Some("REPO") => repos_roots += 1,
                other => panic!("unexpected object type {other:?} in {dir}"),
            }
        }
    }
    assert_eq!(notebooks, 43, "notebooks outside repos");
    for (lang, n) in [("PYTHON", 24), ("SQL", 7), ("SCALA", 6), ("R", 6)] {
        assert_eq!(
            languages.iter().filter(|l| *l == lang).count(),
            n,
            "{lang} notebooks"
        );
    }
    assert_eq!(files, 9, "workspace files outside repos");
    assert_eq!(repos_roots, 3, "repo roots");
    assert!(
        empty_dirs.contains(&"/Shared/archive".to_string()),
        "empty folder /Shared/archive: {empty_dirs:?}"
    );
    for path in [
        "/Users/lena.fischer@sciencehub.example/What if?",
        "/Users/lena.fischer@sciencehub.example/Analysis",
        "/Users/lena.fischer@sciencehub.example/analysis",
        "/Users/tomas.nguyen@sciencehub.example/ratio C:N by depth",
        "/Users/zoe.muller@sciencehub.example/Données glaciaires/雪线高度",
        "/Shared/Pipeline | staging",
    ] {
        let st = raw
            .get(&format!("/api/2.0/workspace/get-status?path={}", enc(path)))
            .await;
        assert_eq!(st["object_type"], "NOTEBOOK", "{path}");
    }
    let empty = raw
        .get("/api/2.0/workspace/get-status?path=/Shared/reference/placeholder.txt")
        .await;
    assert_eq!(
        (empty["object_type"].as_str(), empty["size"].as_i64()),
        (Some("FILE"), Some(0))
    );
    let big = "/Users/lena.fischer@sciencehub.example/ocean_temperature/full_run_with_outputs";
    let (status, err) = raw
        .call(
            reqwest::Method::GET,
            &format!("/api/2.0/workspace/export?format=JUPYTER&path={}", enc(big)),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("MAX_NOTEBOOK_SIZE_EXCEEDED")),
        "{err}"
    );

    // Repos, jobs (with the 120-task one paged at 100), secrets.
    assert_eq!(
        arr(&raw.get("/api/2.0/repos?path_prefix=/Repos").await, "repos").len(),
        3,
        "repos"
    );
    assert_eq!(
        arr(&raw.get("/api/2.0/git-credentials").await, "credentials").len(),
        1,
        "the admin's git credentials"
    );
    let jobs = raw.get("/api/2.2/jobs/list?limit=100").await;
    assert_eq!(arr(&jobs, "jobs").len(), 10, "jobs");
    let fanout = raw.get("/api/2.2/jobs/get?job_id=1022384759102648").await;
    assert_eq!(
        arr(&fanout["settings"], "tasks").len(),
        100,
        "first page of the 120-task job"
    );
    assert!(
        fanout["next_page_token"].is_string(),
        "120-task job has no next page"
    );
    let whole = raw.get("/api/2.1/jobs/get?job_id=1022384759102648").await;
    assert_eq!(
        arr(&whole["settings"], "tasks").len(),
        120,
        "120-task job via 2.1"
    );
    let scopes = raw.get("/api/2.0/secrets/scopes/list").await;
    assert_eq!(arr(&scopes, "scopes").len(), 3, "secret scopes");
    let mut keys = 0;
    for s in arr(&scopes, "scopes") {
        let name = s["name"].as_str().unwrap();
        keys += arr(
            &raw.get(&format!("/api/2.0/secrets/list?scope={name}"))
                .await,
            "secrets",
        )
        .len();
    }
    assert_eq!(keys, 10, "secret keys");
    assert!(
        arr(&scopes, "scopes")
            .iter()
            .any(|s| s["backend_type"] == "AZURE_KEYVAULT"),
        "no Key Vault scope"
    );

    // Principals.
    let users = raw.get("/api/2.0/preview/scim/v2/Users").await;
    assert_eq!(arr(&users, "Resources").len(), 6, "users");
    let groups = raw.get("/api/2.0/preview/scim/v2/Groups").await;
    assert_eq!(arr(&groups, "Resources").len(), 6, "groups");
    let sps = raw.get("/api/2.0/preview/scim/v2/ServicePrincipals").await;
    assert_eq!(arr(&sps, "Resources").len(), 1, "service principals");

    // Compute, mounts, DBFS.
    assert_eq!(
        arr(&raw.get("/api/2.1/clusters/list").await, "clusters").len(),
        2,
        "clusters"
    );
    assert_eq!(
        arr(
            &raw.get("/api/2.0/instance-pools/list").await,
            "instance_pools"
        )
        .len(),
        1,
        "pools"
    );
    assert_eq!(
        arr(
            &raw.get("/api/2.0/policies/clusters/list").await,
            "policies"
        )
        .len(),
        1,
        "policies"
    );
    assert_eq!(
        arr(&raw.get("/api/2.0/sql/warehouses").await, "warehouses").len(),
        1,
        "warehouses"
    );
    let mnt = raw.get("/api/2.0/dbfs/list?path=/mnt").await;
    let mounts: Vec<&str> = arr(&mnt, "files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        mounts.contains(&"/mnt/ocean-raw") && mounts.contains(&"/mnt/soil-archive"),
        "mounts: {mounts:?}"
    );

    // Models: 2 registered models, 5 versions.
    let models = raw.get("/api/2.0/mlflow/registered-models/list").await;
    assert_eq!(
        arr(&models, "registered_models").len(),
        2,
        "registered models"
    );
    let mut versions = 0;
    for m in arr(&models, "registered_models") {
        let name = m["name"].as_str().unwrap();
        let q = enc(&format!("name='{name}'"));
        versions += arr(
            &raw.get(&format!("/api/2.0/mlflow/model-versions/search?filter={q}"))
                .await,
            "model_versions",
        )
        .len();
    }
    assert_eq!(versions, 5, "model versions");

    // Grants: Hive (a table with two denies and a group owner) and Unity Catalog.
    let r = raw
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": "4b9e1f2c7a3d5e60", "statement": "SHOW GRANTS ON TABLE reference.station_pii",
                   "wait_timeout": "30s"}),
        )
        .await;
    assert_eq!(r["status"]["state"], "SUCCEEDED", "{r}");
    // SHOW GRANTS also shows the rows of the database and catalog holding the table.
    let rows: Vec<&Value> = arr(&r["result"], "data_array")
        .iter()
        .filter(|row| row[2] == "TABLE")
        .collect();
    assert_eq!(rows.len(), 3, "grants on reference.station_pii: {rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r[1] == "DENIED_SELECT").count(),
        2,
        "denies on reference.station_pii"
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "data-stewards" && r[1] == "OWN"),
        "owner of reference.station_pii: {rows:?}"
    );
    let uc = raw
        .get("/api/2.1/unity-catalog/permissions/catalog/science_hub")
        .await;
    assert_eq!(
        arr(&uc, "privilege_assignments").len(),
        3,
        "UC catalog grants"
    );
    let uc = raw
        .get("/api/2.1/unity-catalog/permissions/schema/science_hub.ocean")
        .await;
    assert_eq!(
        arr(&uc, "privilege_assignments").len(),
        3,
        "UC schema grants"
    );

    // Object permissions: a transferred job owner.
    let p = raw.get("/api/2.0/permissions/jobs/1022384759102791").await;
    let owners: Vec<&str> = arr(&p, "access_control_list")
        .iter()
        .filter(|a| {
            arr(a, "all_permissions")
                .iter()
                .any(|x| x["permission_level"] == "IS_OWNER")
        })
        .filter_map(|a| a["user_name"].as_str())
        .collect();
    assert_eq!(
        owners,
        ["priya.raman@sciencehub.example"],
        "owner of the transferred job"
    );
    emu.stop_and_wait().await;
}

/// The replay target has the principals and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_fixture_has_principals_and_no_objects() {
    let emu = Emulator::start(EmulatorConfig::default().with_seed(fixture("empty")))
        .await
        .expect("start the emulator with the empty seed");
    let raw = Raw {
        http: reqwest::Client::new(),
        url: emu.url().to_string(),
        token: seed_token("empty", ADMIN),
    };
    let users = raw.get("/api/2.0/preview/scim/v2/Users").await;
    assert_eq!(arr(&users, "Resources").len(), 6, "users");
    assert!(
        arr(&raw.get("/api/2.2/jobs/list").await, "jobs").is_empty(),
        "jobs"
    );
    assert!(
        arr(&raw.get("/api/2.0/secrets/scopes/list").await, "scopes").is_empty(),
        "scopes"
    );
    assert!(
        arr(&raw.get("/api/2.0/repos").await, "repos").is_empty(),
        "repos"
    );
    let shared = raw.get("/api/2.0/workspace/list?path=/Shared").await;
    assert!(arr(&shared, "objects").is_empty(), "/Shared: {shared}");
    emu.stop_and_wait().await;
}

/// Runs a Python conformance suite to its end (within [`SUITE_TIMEOUT`]), shows its output, and
/// fails unless it exits 0 with a summary line of some passed and none failed; returns that line.
pub(crate) fn run_suite(mut cmd: Command, what: &str) -> String {
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    let (status, stdout, stderr) = wait_with_timeout(child, SUITE_TIMEOUT);
    println!("{stdout}");
    eprintln!("{stderr}");
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    assert!(status == Some(0), "{what} failed (exit {status:?}): {last}");
    assert!(
        last.ends_with(" 0 failed") && !last.starts_with("0 passed"),
        "unexpected summary line of {what}: {last:?}"
    );
    last
}
