//! Seeds and dumps: a dump loads back into the same workspace and dumps to the same bytes; names
//! a file system cannot hold survive; bad seeds are refused with the file named; and the
//! `dbxport emulator` command serves until stopped.

use crate::support::emulator as support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorError, EmulatorHandle};
use serde_json::{json, Value};
use support::*;

const CLOCK: i64 = 1_700_000_000_000;

async fn start_seeded(dir: &Path) -> (EmulatorHandle, Api) {
    let emu = Emulator::start(
        EmulatorConfig::default()
            .with_seed(dir)
            .with_fixed_clock(CLOCK),
    )
    .await
    .unwrap_or_else(|e| panic!("seed {}: {e}", dir.display()));
    let api = Api::new(emu.url(), ADMIN_TOKEN);
    (emu, api)
}

/// Every file under `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if e.file_type().is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
        } else {
            out.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// Changes made through the API that a dump must carry: awkward names, every kind of object.
async fn make_changes(api: &Api) {
    api.post(
        "/api/2.0/workspace/mkdirs",
        json!({"path": "/Shared/odd: names?"}),
    )
    .await
    .ok();
    let imports = [
        (
            "/Shared/odd: names?/Readme",
            "AUTO",
            b"plain readme\n".as_slice(),
        ),
        ("/Shared/odd: names?/README", "AUTO", b"shouting readme\n"),
        (
            "/Shared/odd: names?/tricky.py",
            "RAW",
            b"# Databricks notebook source\nnot a notebook\n",
        ),
        (
            "/Shared/odd: names?/50% done|v2",
            "AUTO",
            b"pipes and percents\n",
        ),
        (
            "/Shared/odd: names?/Résumé.py",
            "AUTO",
            "# Databricks notebook source\nprint('é')\n".as_bytes(),
        ),
    ];
    for (path, format, content) in imports {
        api.post(
            "/api/2.0/workspace/import",
            json!({"path": path, "format": format, "content": b64(content)}),
        )
        .await
        .ok();
    }
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/odd: names?/tricky", "format": "SOURCE", "language": "PYTHON",
               "content": b64(b"print('the notebook beside tricky.py')\n")}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/odd: names?/readme", "format": "SOURCE", "language": "R",
               "content": b64(b"x <- 1\n")}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/repos",
        json!({"url": "https://gitlab.com/g/lib.git", "provider": "gitlab"}),
    )
    .await
    .ok();
    api.post(
        "/api/2.2/jobs/create",
        json!({"name": "made", "tasks": [{"task_key": "x"}]}),
    )
    .await
    .ok();
    api.post("/api/2.0/secrets/scopes/create", json!({"scope": "made"}))
        .await
        .ok();
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": "made", "key": "bin", "bytes_value": b64(&[0xff, 0, 1])}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": "made", "key": "txt", "string_value": "plain"}),
    )
    .await
    .ok();
    api.sql(
        WAREHOUSE,
        "GRANT MODIFY ON TABLE sales.orders TO `bob@example.org`",
    )
    .await;
    api.sql(WAREHOUSE, "ALTER SCHEMA sales OWNER TO analysts")
        .await;
    api.patch(
        "/api/2.1/unity-catalog/permissions/schema/main.sales",
        json!({"changes": [{"principal": "analysts", "add": ["USE_SCHEMA"]}]}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/dbfs/put",
        json!({"path": "/FileStore/a:b/c.bin", "contents": b64(b"dbfs")}),
    )
    .await
    .ok();
    api.post("/api/2.0/dbfs/mkdirs", json!({"path": "/FileStore/empty"}))
        .await
        .ok();
    api.post(
        "/api/2.0/dbfs/put",
        json!({"path": "/FileStore/m/MLmodel", "contents": b64(b"m")}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "made: model"}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/mlflow/model-versions/create",
        json!({"name": "made: model", "source": "dbfs:/FileStore/m"}),
    )
    .await
    .ok();
}

/// What an API client sees of a workspace, for comparing two emulators.
async fn view(api: &Api) -> Vec<Value> {
    let mut out = Vec::new();
    for p in [
        "/Shared",
        "/Shared/odd: names?",
        "/Users/alice@example.org/etl",
        "/Repos/alice@example.org",
    ] {
        out.push(
            api.get(&format!("/api/2.0/workspace/list?path={}", q(p)))
                .await
                .ok(),
        );
    }
    for p in [
        "/Shared/odd: names?/tricky.py",
        "/Shared/odd: names?/tricky",
        "/Shared/odd: names?/Résumé",
    ] {
        out.push(
            api.get(&format!(
                "/api/2.0/workspace/export?path={}&format=AUTO",
                q(p)
            ))
            .await
            .ok(),
        );
    }
    out.push(api.get("/api/2.2/jobs/list?expand_tasks=true").await.ok());
    out.push(api.get("/api/2.0/repos").await.ok());
    out.push(
        api.get("/api/2.0/secrets/get?scope=made&key=bin")
            .await
            .ok(),
    );
    out.push(api.get("/api/2.0/secrets/list?scope=made").await.ok());
    out.push(
        api.sql(WAREHOUSE, "SHOW GRANTS ON TABLE sales.orders")
            .await["result"]
            .clone(),
    );
    out.push(
        api.get("/api/2.1/unity-catalog/permissions/schema/main.sales")
            .await
            .ok(),
    );
    out.push(api.get("/api/2.0/permissions/jobs/101").await.ok());
    out.push(
        api.get("/api/2.0/mlflow/registered-models/search")
            .await
            .ok(),
    );
    out.push(api.get("/api/2.0/dbfs/list?path=/FileStore").await.ok());
    out.push(api.get("/api/2.0/git-credentials").await.ok());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_reseed_dump_is_stable() {
    let seed = tempfile::tempdir().unwrap();
    small_seed(seed.path());
    let (emu, api) = start_seeded(seed.path()).await;
    make_changes(&api).await;
    let out = tempfile::tempdir().unwrap();
    let d1 = out.path().join("d1");
    emu.dump_to(&d1).expect("dump");
    let (emu2, api2) = start_seeded(&d1).await;
    assert_eq!(
        view(&api).await,
        view(&api2).await,
        "a reseeded dump serves the same workspace"
    );
    let d2 = out.path().join("d2");
    // The HTTP control endpoint writes the same dump.
    api2.post("/emulator/dump", json!({"dir": d2})).await.ok();
    let (s1, s2) = (snapshot(&d1), snapshot(&d2));
    assert_eq!(s1.keys().collect::<Vec<_>>(), s2.keys().collect::<Vec<_>>());
    for (k, v) in &s1 {
        assert!(
            v == &s2[k],
            "{k} differs between the dump and the dump of its reseed"
        );
    }
    // Names on disk: escaped characters, case twins kept apart, the look-alike file's dot escaped.
    let odd = "workspace/Shared/odd%3A names%3F";
    for name in [
        "README",
        "%52eadme",
        "readme.r",
        "tricky%2Epy",
        "tricky.py",
        "50%25 done%7Cv2",
        "Résumé.py",
    ] {
        assert!(
            s1.contains_key(&format!("{odd}/{name}")),
            "{name} missing: {:?}",
            s1.keys().filter(|k| k.starts_with(odd)).collect::<Vec<_>>()
        );
    }
    assert!(s1.contains_key("dbfs/FileStore/a%3Ab/c.bin"));
    assert!(s1.contains_key("dbfs/FileStore/empty/"));
    assert!(
        s1.contains_key("workspace/Shared/archive/"),
        "empty folders are dumped"
    );
    assert!(!s1
        .keys()
        .any(|k| k.starts_with("dbfs/databricks/mlflow-registry")));
    assert!(s1.contains_key("models/made%3A model/versions/1/artifacts/MLmodel"));
    // Secrets: a string stays a string and bytes stay bytes; the file is private.
    let secrets: Value = serde_json::from_slice(&s1["secrets.json"]).unwrap();
    let made = secrets["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "made")
        .unwrap();
    assert_eq!(
        made["secrets"][0],
        json!({"key": "bin", "bytes_value": b64(&[0xff, 0, 1]), "last_updated_timestamp": CLOCK})
    );
    assert_eq!(made["secrets"][1]["string_value"], "plain");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["secrets.json", "tokens.json"] {
            let mode = std::fs::metadata(d1.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
    // A dump never overwrites: a non-empty directory is refused.
    let err = emu.dump_to(&d1).expect_err("non-empty target");
    assert!(matches!(err, EmulatorError::Dump { .. }), "{err}");
    api.post("/emulator/dump", json!({"dir": d1}))
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    drop(emu2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_calls_same_dump() {
    let seed = tempfile::tempdir().unwrap();
    small_seed(seed.path());
    let out = tempfile::tempdir().unwrap();
    let mut snaps = Vec::new();
    for i in 0..2 {
        let (emu, api) = start_seeded(seed.path()).await;
        make_changes(&api).await;
        let d = out.path().join(format!("run{i}"));
        emu.dump_to(&d).unwrap();
        let mut s = snapshot(&d);
        // tokens.json holds no emulator-made values, and ids, times and names are deterministic.
        s.remove("tokens.json");
        snaps.push(s);
    }
    assert_eq!(snaps[0], snaps[1]);
    let objects: Value = serde_json::from_slice(&snaps[0]["objects.json"]).unwrap();
    assert_eq!(
        objects["/Shared/odd: names?/Readme"]["created_at"], CLOCK,
        "the fixed clock stamps new objects"
    );
}

fn expect_seed_error(mutate: impl FnOnce(&Path), file: &str, words: &str) {
    let dir = tempfile::tempdir().unwrap();
    small_seed(dir.path());
    mutate(dir.path());
    let err = Emulator::start_in_background(EmulatorConfig::default().with_seed(dir.path()))
        .expect_err("the seed is refused");
    let msg = err.to_string();
    assert!(matches!(err, EmulatorError::Seed { .. }), "{msg}");
    assert!(msg.contains(file), "{msg} does not name {file}");
    assert!(msg.contains(words), "{msg} does not say {words}");
}

#[test]
fn bad_seeds_are_refused_naming_the_file() {
    expect_seed_error(
        |d| std::fs::write(d.join("objects.json"), r#"{"/Shared": {"objectid": 1}}"#).unwrap(),
        "objects.json",
        "unknown field",
    );
    expect_seed_error(
        |d| {
            std::fs::write(
                d.join("objects.json"),
                r#"{"/Shared": {"object_id": 9}, "/Users": {"object_id": 9}}"#,
            )
            .unwrap()
        },
        "objects.json",
        "used twice",
    );
    expect_seed_error(
        |d| {
            std::fs::write(
                d.join("objects.json"),
                r#"{"/Shared/ghost": {"object_id": 1}}"#,
            )
            .unwrap()
        },
        "objects.json",
        "not in the workspace tree",
    );
    expect_seed_error(
        |d| {
            std::fs::write(
                d.join("permissions.json"),
                r#"[{"object": "/Shared", "access_control_list": [{"user_name": "ghost@x", "permission_level": "CAN_READ"}]}]"#,
            )
            .unwrap()
        },
        "permissions.json",
        "ghost@x",
    );
    expect_seed_error(
        |d| {
            std::fs::write(
                d.join("hive.json"),
                r#"{"grants": [{"principal": "users", "action_type": "SELECT", "object_type": "TABLE", "object_key": "no.table"}]}"#,
            )
            .unwrap()
        },
        "hive.json",
        "not in databases",
    );
    expect_seed_error(
        |d| {
            std::fs::write(
                d.join("jobs/102.json"),
                r#"{"job_id": 102, "settings": {"tasks": [{}]}}"#,
            )
            .unwrap()
        },
        "102.json",
        "task_key",
    );
    expect_seed_error(
        |d| {
            std::fs::write(
                d.join("workspace/Shared/x.py"),
                b"# Databricks notebook source\n",
            )
            .unwrap();
            std::fs::write(d.join("workspace/Shared/x%2Epy"), b"file").unwrap();
            std::fs::write(d.join("workspace/Shared/x"), b"file").unwrap();
        },
        "Shared",
        "stand for the workspace path",
    );
    expect_seed_error(
        |d| {
            std::fs::write(
                d.join("tokens.json"),
                r#"{"tokens": [{"token": "t", "user_name": "ghost@x"}]}"#,
            )
            .unwrap()
        },
        "tokens.json",
        "ghost@x",
    );
}

#[test]
fn the_command_serves_until_stopped() {
    let bin = crate::common::dbxport_bin();
    let mut child = Command::new(&bin)
        .args([
            "emulator",
            "--addr",
            "127.0.0.1:0",
            "--json",
            "--fault-seed",
            "5",
        ])
        .env("DBXPORT_EMULATOR_TOKEN", "dapi-from-env")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dbxport starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: Value = serde_json::from_str(&line).expect("one JSON line");
    let url = started["url"].as_str().unwrap().to_string();
    assert!(
        !line.contains("dapi-from-env"),
        "the token is never printed"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let me = rt.block_on(async {
        Api::new(&url, "dapi-from-env")
            .get("/api/2.0/preview/scim/v2/Me")
            .await
            .ok()
    });
    assert_eq!(me["userName"], "admin@emulator.invalid");
    // Calls whose parsing fold case, through the binary users run (built without the features
    // test-only dependencies switch on).
    let (users, models) = rt.block_on(async {
        let api = Api::new(&url, "dapi-from-env");
        (
            api.get(&format!(
                "/api/2.0/preview/scim/v2/Users?filter={}",
                q("userName EQ \"ADMIN@emulator.invalid\"")
            ))
            .await
            .ok(),
            api.get(&format!(
                "/api/2.0/mlflow/registered-models/search?filter={}",
                q("name ilike '%X%'")
            ))
            .await
            .ok(),
        )
    });
    assert_eq!(users["totalResults"], 1);
    assert_eq!(models, json!({}));
    child.kill().unwrap();
    child.wait().unwrap();

    // Without any credential the command refuses to start and says how to give one.
    let out = Command::new(&bin)
        .args(["emulator", "--addr", "127.0.0.1:0"])
        .env_remove("DBXPORT_EMULATOR_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token"), "{err}");
    // A bad fault flag is refused with the families named.
    let out = Command::new(&bin)
        .args([
            "emulator",
            "--addr",
            "127.0.0.1:0",
            "--token",
            "x",
            "--rate-limit",
            "nope=1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workspace, repos"));
}

/// `generate.json` (the scale benchmark's workspaces): a few numbers expand into folders,
/// notebooks, jobs and grants, the same ones every time, and a dump writes them out as files.
#[tokio::test]
async fn generated_workspaces_expand_from_a_compact_description() {
    let dir = tempfile::tempdir().unwrap();
    small_seed(dir.path());
    std::fs::write(
        dir.path().join("generate.json"),
        r#"{"root": "/Shared/gen", "notebooks": 103, "folders": 5, "jobs": 7, "grant_every": 10, "seed": 3}"#,
    )
    .unwrap();
    let (emu, api) = start_seeded(dir.path()).await;
    let folders = api
        .get("/api/2.0/workspace/list?path=/Shared/gen")
        .await
        .ok();
    let folders = folders["objects"].as_array().unwrap();
    assert_eq!(folders.len(), 5);
    let mut notebooks = 0;
    for f in folders {
        let path = f["path"].as_str().unwrap();
        let list = api
            .get(&format!("/api/2.0/workspace/list?path={path}"))
            .await
            .ok();
        let objects = list["objects"].as_array().unwrap();
        assert!(objects.iter().all(|o| o["object_type"] == "NOTEBOOK"));
        // 103 over 5 folders: the first three hold one more.
        assert!(objects.len() == 20 || objects.len() == 21, "{path}");
        notebooks += objects.len();
    }
    assert_eq!(notebooks, 103);
    let jobs = api.get("/api/2.2/jobs/list").await.ok();
    let generated = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            j["settings"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("generated-job-"))
        })
        .count();
    assert_eq!(generated, 7, "small_seed's own job is not counted");
    // The grant on every tenth notebook: the first one of the first folder has it.
    let id = api
        .get("/api/2.0/workspace/get-status?path=/Shared/gen/area-000000/notebook_0000")
        .await
        .ok()["object_id"]
        .as_i64()
        .unwrap();
    let perms = api
        .get(&format!("/api/2.0/permissions/notebooks/{id}"))
        .await
        .ok();
    assert!(
        perms["access_control_list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["group_name"] == "users" && a["all_permissions"][0]["inherited"] == false),
        "{perms}"
    );
    // The same description gives the same workspace.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    emu.dump_to(&a.path().join("d")).unwrap();
    let (emu2, _) = start_seeded(dir.path()).await;
    emu2.dump_to(&b.path().join("d")).unwrap();
    assert_eq!(snapshot(&a.path().join("d")), snapshot(&b.path().join("d")));
    assert!(!a.path().join("d/generate.json").exists());
}
