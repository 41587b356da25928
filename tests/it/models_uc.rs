//! Unity Catalog registered models between workspaces, against the emulator: the poc
//! fixture's UC models (versions, aliases, tags, comments, owners, grants) exported with
//! every file read through temporary credentials and presigned URLs, imported into a second
//! emulator with byte-identical files, catalogs and schemas renamed by the mapping file, a
//! second import that writes nothing, workspace-registry models moved into Unity Catalog with
//! their stages as aliases (`--models-to-uc`), UC models into an MLflow server, and the
//! emulator refusing presigned URLs that are expired or altered.

use crate::common;
use crate::mlflow_support;

use dbxport::bundle::Bundle;
use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultConfig};
use dbxport::model::Kind;
use mlflow_support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SRC_TOKEN: &str = "dapi-uc-src";
const DST_TOKEN: &str = "dapi-uc-dst";
const OCEAN: &str = "science_hub.ocean.ocean_heat_forecaster";
const SOIL: &str = "science_hub.soil.soil_carbon_regressor";

fn start(seed: &Path, token: &str) -> EmulatorHandle {
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(seed)
            .with_token(token)
            .with_manual_clock(),
    )
    .expect("start emulator")
}

fn poc() -> EmulatorHandle {
    start(&common::repo_path("fixtures/workspaces/poc"), SRC_TOKEN)
}

/// A target workspace: the empty fixture (which knows the poc's principals) whose metastore
/// has these catalogs and schemas, and no model.
fn target(dir: &Path, schemas: &[&str]) -> EmulatorHandle {
    let seed = dir.join(format!("target-seed-{}", schemas.join("+")));
    std::fs::create_dir_all(&seed).unwrap();
    for e in std::fs::read_dir(common::repo_path("fixtures/workspaces/empty")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), seed.join(e.file_name())).unwrap();
    }
    let mut securables = Vec::new();
    for s in schemas {
        let (c, _) = s.split_once('.').unwrap();
        securables.push(json!({"securable_type": "catalog", "full_name": c}));
        securables.push(json!({"securable_type": "schema", "full_name": s}));
    }
    std::fs::write(
        seed.join("unity_catalog.json"),
        serde_json::to_vec(&json!({"securables": securables, "grants": []})).unwrap(),
    )
    .unwrap();
    start(&seed, DST_TOKEN)
}

fn ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what}: exit {}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
}

fn api(emu: &EmulatorHandle, token: &str, path_and_query: &str) -> Value {
    get_json(&format!("{}{path_and_query}", emu.url()), Some(token))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn post(emu: &EmulatorHandle, token: &str, path: &str, body: Value) -> (u16, Value) {
    block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", emu.url()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

/// The status of a request with no credential.
fn anonymous(method: reqwest::Method, url: &str) -> u16 {
    block_on(async {
        reqwest::Client::new()
            .request(method, url)
            .body("x")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// Created and updated objects of an import report, over every kind.
fn writes(rep: &Value) -> (u64, u64) {
    let counts = rep["report"]["counts"].as_object().unwrap();
    counts.values().fold((0, 0), |(c, u), k| {
        (
            c + k["created"].as_u64().unwrap(),
            u + k["updated"].as_u64().unwrap(),
        )
    })
}

/// Every file of a UC version, read as the MLflow client reads them: directory listings of
/// `/Models/…` and presigned downloads.
fn uc_files(
    emu: &EmulatorHandle,
    token: &str,
    full: &str,
    version: &str,
) -> BTreeMap<String, Vec<u8>> {
    let root = format!("/Models/{}/{version}", full.replace('.', "/"));
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        let l = api(emu, token, &format!("/api/2.0/fs/directories{d}"));
        for e in l["contents"].as_array().unwrap() {
            let p = e["path"].as_str().unwrap().to_string();
            if e["is_directory"] == true {
                dirs.push(p);
                continue;
            }
            let (status, u) = post(
                emu,
                token,
                "/api/2.0/fs/create-download-url",
                json!({"path": p}),
            );
            assert_eq!(status, 200, "{u}");
            let bytes = get_bytes(u["url"].as_str().unwrap(), None);
            out.insert(p[root.len() + 1..].to_string(), bytes);
        }
    }
    out
}

/// The fixture's files of a UC version.
fn fixture_files(full: &str, version: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = common::repo_path(&format!(
        "fixtures/workspaces/poc/uc_models/{full}/versions/{version}/artifacts"
    ));
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn model_info(emu: &EmulatorHandle, token: &str, full: &str) -> Value {
    api(
        emu,
        token,
        &format!("/api/2.1/unity-catalog/models/{full}?include_aliases=true"),
    )
}

fn aliases(info: &Value) -> BTreeMap<String, u64> {
    info["aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["alias_name"].as_str().unwrap().to_string(),
                        x["version_num"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn grants(emu: &EmulatorHandle, token: &str, full: &str) -> Value {
    api(
        emu,
        token,
        &format!("/api/2.1/unity-catalog/permissions/function/{full}"),
    )["privilege_assignments"]
        .clone()
}

fn mlflow_model(emu: &EmulatorHandle, token: &str, full: &str) -> Value {
    api(
        emu,
        token,
        &format!("/api/2.0/mlflow/unity-catalog/registered-models/get?name={full}"),
    )["registered_model"]
        .clone()
}

fn mlflow_version(emu: &EmulatorHandle, token: &str, full: &str, v: &str) -> Value {
    api(
        emu,
        token,
        &format!("/api/2.0/mlflow/unity-catalog/model-versions/get?name={full}&version={v}"),
    )["model_version"]
        .clone()
}

/// Exports the poc's models and UC grants into `work/uc.zip`.
fn export(work: &Path, src: &EmulatorHandle) -> PathBuf {
    export_as(work, src, SRC_TOKEN)
}

/// [`export`] signed in with `token`.
fn export_as(work: &Path, src: &EmulatorHandle, token: &str) -> PathBuf {
    let r = dbxport(
        work,
        &[
            "export",
            "--host",
            src.url(),
            "-o",
            "uc.zip",
            "--include",
            "models,uc_grants",
            "--json",
        ],
        &[("DATABRICKS_TOKEN", token)],
    );
    ok(&r, "export");
    let rep = r.json()["report"].clone();
    assert!(
        rep["issues"].as_array().is_none_or(|a| a.is_empty()),
        "{rep:#}"
    );
    ok(&dbxport(work, &["verify", "uc.zip"], &[]), "verify");
    work.join("uc.zip")
}

fn import(work: &Path, dst: &EmulatorHandle, extra: &[&str]) -> Value {
    let mut args = vec!["import", "uc.zip", "--host", dst.url(), "--json"];
    args.extend_from_slice(extra);
    let r = dbxport(work, &args, &[("DATABRICKS_TOKEN", DST_TOKEN)]);
    ok(&r, "import");
    r.json()
}

/// What the source holds of a UC model, as the target must hold it under `to`.
fn assert_model_moved(src: &EmulatorHandle, dst: &EmulatorHandle, from: &str, to: &str) {
    let (a, b) = (
        model_info(src, SRC_TOKEN, from),
        model_info(dst, DST_TOKEN, to),
    );
    assert_eq!(b["full_name"], to, "{b:#}");
    for k in ["comment", "owner"] {
        assert_eq!(a[k], b[k], "{k} of {to}: {b:#}");
    }
    assert_eq!(aliases(&a), aliases(&b), "aliases of {to}");
    assert_eq!(
        mlflow_model(src, SRC_TOKEN, from)["tags"],
        mlflow_model(dst, DST_TOKEN, to)["tags"],
        "tags of {to}"
    );
    assert_eq!(
        grants(src, SRC_TOKEN, from),
        grants(dst, DST_TOKEN, to),
        "grants on {to}"
    );
    let versions = api(
        src,
        SRC_TOKEN,
        &format!("/api/2.1/unity-catalog/models/{from}/versions"),
    );
    for v in versions["model_versions"].as_array().unwrap() {
        let n = v["version"].as_u64().unwrap().to_string();
        let (sv, tv) = (
            mlflow_version(src, SRC_TOKEN, from, &n),
            mlflow_version(dst, DST_TOKEN, to, &n),
        );
        assert_eq!(tv["status"], "READY", "{tv:#}");
        for k in ["description", "run_id", "run_tracking_server_id", "tags"] {
            assert_eq!(sv[k], tv[k], "{k} of {to}/{n}");
        }
        let files = uc_files(dst, DST_TOKEN, to, &n);
        assert_eq!(files, fixture_files(from, &n), "files of {to}/{n}");
    }
}

#[test]
fn uc_models_round_trip_with_grants_and_a_second_import_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = poc();
    let bundle = export(work, &src);

    // The bundle: UC models marked as such, their grants, and files stored once.
    let inv = Bundle::open(&bundle, None).unwrap().inventory().clone();
    let uc_models: Vec<&str> = inv
        .records
        .iter()
        .filter(|r| r.kind == Kind::RegisteredModel && r.meta_str("registry") == Some("uc"))
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(uc_models, [OCEAN, SOIL]);
    let uc_versions = inv
        .records
        .iter()
        .filter(|r| r.kind == Kind::ModelVersion && r.meta_str("registry") == Some("uc"))
        .count();
    assert_eq!(uc_versions, 3);
    let model_grants: Vec<&str> = inv
        .records
        .iter()
        .filter(|r| r.kind == Kind::UcGrants && r.name.starts_with("function "))
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(model_grants.len(), 2, "{model_grants:?}");
    // UC ocean v1 holds the files of workspace ocean v2: none is stored twice.
    for r in inv
        .records
        .iter()
        .filter(|r| r.kind == Kind::ModelArtifact && r.name.starts_with(&format!("{OCEAN}/1/")))
    {
        assert!(r.stored.is_empty(), "{} stored again", r.name);
        let first = r.meta_str("same_as").unwrap();
        assert!(
            !first.starts_with("science_hub."),
            "{} stored again as {first}",
            r.name
        );
    }

    // The plan writes nothing and says what an alias on the workspace registry would be.
    let dst = target(work, &["science_hub.ocean", "science_hub.soil"]);
    let r = dbxport(
        work,
        &["plan", "uc.zip", "--host", dst.url(), "--json"],
        &[("DATABRICKS_TOKEN", DST_TOKEN)],
    );
    ok(&r, "plan");
    assert_eq!(dst.stats().mutating, 0);

    let rep = import(work, &dst, &[]);
    assert!(writes(&rep).0 > 0, "{rep:#}");
    assert_model_moved(&src, &dst, OCEAN, OCEAN);
    assert_model_moved(&src, &dst, SOIL, SOIL);
    // The workspace-registry models came too, and no alias was sent to that registry.
    let ws = api(&dst, DST_TOKEN, "/api/2.0/mlflow/registered-models/search");
    assert_eq!(
        ws["registered_models"].as_array().unwrap().len(),
        2,
        "{ws:#}"
    );
    let stats = dst.stats();
    assert_eq!(
        stats.count("POST /api/2.0/mlflow/registered-models/alias"),
        0
    );

    // Again: everything unchanged, not one mutating request.
    dst.reset_stats();
    let rep = import(work, &dst, &[]);
    assert_eq!(writes(&rep), (0, 0), "{rep:#}");
    assert_eq!(rep["report"]["mutating_requests"], 0, "{rep:#}");
    let stats = dst.stats();
    assert_eq!(stats.mutating, 0, "the re-run wrote: {:?}", stats.routes);
}

#[test]
fn uc_catalogs_and_schemas_are_renamed_by_the_mapping_file() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = poc();
    export(work, &src);
    std::fs::write(
        work.join("map.toml"),
        "[catalogs]\n\"science_hub\" = \"prod\"\n[schemas]\n\"science_hub.soil\" = \"agri.models\"\n",
    )
    .unwrap();
    let dst = target(work, &["prod.ocean", "agri.models"]);
    // `models import` fills the workspace's Unity Catalog too, as `import` does — under the
    // bundle's names, since it takes no mapping file.
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "uc.zip",
            "--host",
            dst.url(),
            "--plan",
            "--json",
        ],
        &[("DATABRICKS_TOKEN", DST_TOKEN)],
    );
    ok(&r, "models import --plan");
    let actions = r.json()["actions"].clone();
    for full in [OCEAN, SOIL] {
        let a = actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["object"] == format!("model {full}"))
            .unwrap_or_else(|| panic!("no action for {full}: {actions:#}"));
        assert_eq!(a["action"], "create", "{a:#}");
    }
    import(work, &dst, &["--map", "map.toml"]);
    assert_model_moved(&src, &dst, OCEAN, "prod.ocean.ocean_heat_forecaster");
    assert_model_moved(&src, &dst, SOIL, "agri.models.soil_carbon_regressor");
    let listed = api(&dst, DST_TOKEN, "/api/2.1/unity-catalog/models");
    assert_eq!(
        listed["registered_models"].as_array().unwrap().len(),
        2,
        "{listed:#}"
    );
}

#[test]
fn workspace_registry_models_move_into_uc_with_stages_as_aliases() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = poc();
    export(work, &src);
    let dst = target(work, &["science_hub.ocean", "science_hub.soil", "prod.ml"]);
    import(work, &dst, &["--models-to-uc", "prod.ml"]);
    // Nothing went to the workspace registry.
    let ws = api(&dst, DST_TOKEN, "/api/2.0/mlflow/registered-models/search");
    assert!(
        ws["registered_models"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{ws:#}"
    );
    // ocean-heat-forecaster: v1 Archived, v2 Production, v3 Staging (the fixture).
    let m = model_info(&dst, DST_TOKEN, "prod.ml.ocean_heat_forecaster");
    assert_eq!(
        aliases(&m),
        BTreeMap::from([
            ("archived".to_string(), 1),
            ("production".to_string(), 2),
            ("staging".to_string(), 3),
        ]),
        "{m:#}"
    );
    let src_desc = api(
        &src,
        SRC_TOKEN,
        "/api/2.0/mlflow/registered-models/get?name=ocean-heat-forecaster",
    );
    assert_eq!(m["comment"], src_desc["registered_model"]["description"]);
    for n in ["1", "2", "3"] {
        let v = mlflow_version(&dst, DST_TOKEN, "prod.ml.ocean_heat_forecaster", n);
        assert_eq!(v["status"], "READY", "{v:#}");
        let files = uc_files(&dst, DST_TOKEN, "prod.ml.ocean_heat_forecaster", n);
        let want = dir_files(&common::repo_path(&format!(
            "fixtures/workspaces/poc/models/ocean-heat-forecaster/versions/{n}/artifacts"
        )));
        assert_eq!(files, want, "files of version {n}");
    }
    // The UC models of the bundle went to Unity Catalog as they were.
    assert_model_moved(&src, &dst, OCEAN, OCEAN);
    // Again: nothing written.
    dst.reset_stats();
    import(work, &dst, &["--models-to-uc", "prod.ml"]);
    assert_eq!(dst.stats().mutating, 0, "{:?}", dst.stats().routes);
}

fn dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn presigned_urls_are_refused_when_expired_altered_or_the_version_is_final() {
    let src = poc();
    let path = format!("/Models/{}/1/MLmodel", OCEAN.replace('.', "/"));
    let (status, u) = post(
        &src,
        SRC_TOKEN,
        "/api/2.0/fs/create-download-url",
        json!({"path": path}),
    );
    assert_eq!(status, 200, "{u}");
    let url = u["url"].as_str().unwrap().to_string();
    let get = |u: &str| anonymous(reqwest::Method::GET, u);
    assert_eq!(get(&url), 200, "a fresh URL works, with no credential");
    // Another file, another signature, another expiry: all refused.
    assert_eq!(get(&url.replace("MLmodel", "model.pkl")), 403);
    let flipped = {
        let i = url.find("sig=").unwrap() + "sig=".len();
        let mut b = url.clone().into_bytes();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    assert_eq!(get(&flipped), 403);
    let later = url.replacen("se=", "se=9", 1);
    assert_eq!(get(&later), 403);
    // A PUT with a download URL is refused too.
    assert_eq!(anonymous(reqwest::Method::PUT, &url), 403);
    // Past its lifetime (15 minutes on the emulator's clock) it is refused.
    assert!(src.advance_clock(std::time::Duration::from_secs(15 * 60 + 1)));
    assert_eq!(get(&url), 403);
    // A finalized version's files can no longer be written.
    let (status, e) = post(
        &src,
        SRC_TOKEN,
        "/api/2.0/fs/create-upload-url",
        json!({"path": path}),
    );
    assert_eq!(status, 400, "{e}");
    let (status, e) = post(
        &src,
        SRC_TOKEN,
        "/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials",
        json!({"name": OCEAN, "version": "1", "operation": "MODEL_VERSION_OPERATION_READ_WRITE"}),
    );
    assert_eq!(status, 400, "{e}");
}

/// The files of a version on an MLflow server, through its REST API and artifact proxy:
/// `get-download-uri`, then the proxy's listing and downloads.
fn mlflow_files(url: &str, name: &str, version: &str) -> BTreeMap<String, Vec<u8>> {
    let uri = get_json(
        &format!(
            "{url}/api/2.0/mlflow/model-versions/get-download-uri?name={}&version={version}",
            q(name)
        ),
        None,
    )["artifact_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let root = uri
        .strip_prefix("mlflow-artifacts:/")
        .unwrap_or_else(|| panic!("not a proxied URI: {uri}"))
        .trim_start_matches('/')
        .to_string();
    let mut out = BTreeMap::new();
    let mut dirs = vec![String::new()];
    while let Some(d) = dirs.pop() {
        let path = if d.is_empty() {
            root.clone()
        } else {
            format!("{root}/{d}")
        };
        let l = get_json(
            &format!("{url}/api/2.0/mlflow-artifacts/artifacts?path={}", q(&path)),
            None,
        );
        for f in l["files"].as_array().into_iter().flatten() {
            let name = f["path"].as_str().unwrap().rsplit('/').next().unwrap();
            let rel = if d.is_empty() {
                name.to_string()
            } else {
                format!("{d}/{name}")
            };
            if f["is_dir"] == true {
                dirs.push(rel);
            } else {
                let b = get_bytes(
                    &format!("{url}/api/2.0/mlflow-artifacts/artifacts/{root}/{rel}"),
                    None,
                );
                out.insert(rel, b);
            }
        }
    }
    out
}

#[test]
fn uc_models_go_into_an_mlflow_server_under_their_three_level_names() {
    let Some(py) = common::venv_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let mut server = MlflowServer::spawn(&py, &work.join("mlflow"));
    let src = poc();
    export(work, &src);
    server.wait_ready();
    let url = server.url();
    let r = dbxport(
        work,
        &["models", "import", "uc.zip", "--mlflow-uri", &url, "--json"],
        &[],
    );
    ok(&r, "models import into an MLflow server");
    for full in [OCEAN, SOIL] {
        let m = get_json(
            &format!("{url}/api/2.0/mlflow/registered-models/get?name={full}"),
            None,
        )["registered_model"]
            .clone();
        let want = mlflow_model(&src, SRC_TOKEN, full);
        assert_eq!(m["description"], want["description"], "{m:#}");
        let sorted = |v: &Value| {
            let mut a: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x.to_string())
                .collect();
            a.sort();
            a
        };
        assert_eq!(sorted(&m["tags"]), sorted(&want["tags"]), "tags of {full}");
        assert_eq!(
            sorted(&m["aliases"]),
            sorted(&want["aliases"]),
            "aliases of {full}"
        );
        let versions = api(
            &src,
            SRC_TOKEN,
            &format!("/api/2.1/unity-catalog/models/{full}/versions"),
        );
        for v in versions["model_versions"].as_array().unwrap() {
            let n = v["version"].as_u64().unwrap().to_string();
            assert_eq!(
                mlflow_files(&url, full, &n),
                fixture_files(full, &n),
                "files of {full}/{n}"
            );
        }
    }
    // Again: nothing written.
    let r = dbxport(
        work,
        &["models", "import", "uc.zip", "--mlflow-uri", &url, "--json"],
        &[],
    );
    ok(&r, "second import");
    assert_eq!(r.json()["write_requests"], 0, "{:#}", r.json());
}

#[test]
fn a_uc_version_left_pending_by_refused_uploads_is_finished_by_the_next_import() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = poc();
    export(work, &src);
    let dst = target(work, &["science_hub.ocean", "science_hub.soil"]);
    // Cloud storage refuses every presigned upload (as it does an expired URL).
    dst.set_faults(FaultConfig {
        error_rate: 1.0,
        error_statuses: vec![403],
        families: vec!["artifacts".into()],
        ..FaultConfig::default()
    })
    .unwrap();
    let r = dbxport(
        work,
        &["import", "uc.zip", "--host", dst.url(), "--json"],
        &[("DATABRICKS_TOKEN", DST_TOKEN)],
    );
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = mlflow_version(&dst, DST_TOKEN, SOIL, "1");
    assert_eq!(v["status"], "PENDING_REGISTRATION", "{v:#}");
    // Storage is back: the next import finds the version by its marker and finishes it.
    dst.set_faults(FaultConfig::default()).unwrap();
    import(work, &dst, &[]);
    assert_model_moved(&src, &dst, OCEAN, OCEAN);
    assert_model_moved(&src, &dst, SOIL, SOIL);
    let versions = api(
        &dst,
        DST_TOKEN,
        &format!("/api/2.1/unity-catalog/models/{SOIL}/versions"),
    );
    assert_eq!(
        versions["model_versions"].as_array().unwrap().len(),
        1,
        "{versions:#}"
    );
    dst.reset_stats();
    import(work, &dst, &[]);
    assert_eq!(dst.stats().mutating, 0, "{:?}", dst.stats().routes);
}

use crate::mlflow_support::client_script as script;

#[test]
fn a_model_registered_in_uc_by_the_mlflow_client_moves_and_predicts_the_same() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    const NAME: &str = "main.ml.ocean_regressor";
    let src = target(work, &["main.ml"]);
    // `target` starts emulators with the destination's token; both sides use it here.
    let trained = script(
        &python,
        &src,
        DST_TOKEN,
        "train.py",
        &[NAME, "databricks-uc"],
    );
    assert_eq!(trained["version"], "1", "{trained}");
    let v = mlflow_version(&src, DST_TOKEN, NAME, "1");
    assert_eq!(v["status"], "READY", "{v:#}");
    assert_eq!(v["run_id"], trained["run_id"], "{v:#}");
    let on_src = script(
        &python,
        &src,
        DST_TOKEN,
        "predict.py",
        &[&format!("models:/{NAME}@champion"), "databricks-uc"],
    );
    assert_eq!(on_src["predictions"], trained["predictions"]);

    export_as(work, &src, DST_TOKEN);
    let dst = target(&work.join("dst"), &["main.ml"]);
    import(work, &dst, &[]);
    let on_dst = script(
        &python,
        &dst,
        DST_TOKEN,
        "predict.py",
        &[&format!("models:/{NAME}@champion"), "databricks-uc"],
    );
    assert_eq!(on_dst["predictions"], trained["predictions"]);
    let moved = mlflow_version(&dst, DST_TOKEN, NAME, "1");
    assert_eq!(moved["run_id"], trained["run_id"], "{moved:#}");
}

#[test]
fn a_missing_catalog_is_a_failure_that_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = poc();
    export(work, &src);
    // The target has science_hub.ocean but not science_hub.soil.
    let dst = target(work, &["science_hub.ocean"]);
    let r = dbxport(
        work,
        &["import", "uc.zip", "--host", dst.url()],
        &[("DATABRICKS_TOKEN", DST_TOKEN)],
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    let text = format!("{}{}", r.stdout, r.stderr);
    assert!(
        text.contains("Schema 'science_hub.soil' does not exist."),
        "{text}"
    );
    assert!(
        text.contains("[schemas]"),
        "the hint names the mapping: {text}"
    );
    // The rest arrived.
    assert_model_moved(&src, &dst, OCEAN, OCEAN);
}
