//! ML models between Databricks workspaces, against the emulator: the poc fixture's models
//! exported from one emulator (registry listing and signed downloads) and imported into an
//! empty one (through DBFS, and through the Files API), checked against the fixture files
//! themselves; identical files stored once; a plan that writes nothing; a second import that
//! sends no mutating request.

use crate::common;
use crate::mlflow_support;

use dbxport::bundle::Bundle;
use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use dbxport::model::Kind;
use mlflow_support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const SRC_TOKEN: &str = "dapi-models-src";
const DST_TOKEN: &str = "dapi-models-dst";

fn emulator(seed: &str, token: &str) -> EmulatorHandle {
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(common::repo_path(&format!("fixtures/workspaces/{seed}")))
            .with_token(token),
    )
    .expect("start emulator")
}

/// An empty workspace whose Unity Catalog has the poc's model schemas (`science_hub.ocean`,
/// `science_hub.soil`), so that the poc's UC models have somewhere to go.
fn uc_ready_target(dir: &Path, token: &str) -> EmulatorHandle {
    let seed = dir.join(format!("target-seed-{}", rand_suffix()));
    std::fs::create_dir_all(&seed).unwrap();
    for f in std::fs::read_dir(common::repo_path("fixtures/workspaces/empty")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), seed.join(f.file_name())).unwrap();
    }
    std::fs::write(
        seed.join("unity_catalog.json"),
        r#"{ "securables": [
            { "securable_type": "catalog", "full_name": "science_hub" },
            { "securable_type": "schema", "full_name": "science_hub.ocean" },
            { "securable_type": "schema", "full_name": "science_hub.soil" } ] }"#,
    )
    .unwrap();
    Emulator::start_in_background(EmulatorConfig::default().with_seed(seed).with_token(token))
        .expect("start emulator")
}

/// A name part no two calls of one process share.
fn rand_suffix() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
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

/// Every artifact file of a version in a workspace: path → bytes, through the registry's
/// listing and signed downloads.
fn artifacts(
    emu: &EmulatorHandle,
    token: &str,
    name: &str,
    version: &str,
) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![String::new()];
    while let Some(d) = dirs.pop() {
        let l = api(
            emu,
            token,
            &format!(
                "/api/2.0/mlflow/model-versions/list-artifacts?name={}&version={version}&path={}",
                q(name),
                q(&d)
            ),
        );
        for f in l["files"].as_array().cloned().unwrap_or_default() {
            let p = f["path"].as_str().unwrap().to_string();
            if f["is_dir"].as_bool().unwrap_or(false) {
                dirs.push(p);
            } else {
                let s = api(
                    emu,
                    token,
                    &format!(
                        "/api/2.0/mlflow/model-versions/get-signed-download-uri?name={}&version={version}&path={}",
                        q(name),
                        q(&p)
                    ),
                );
                out.insert(p, get_bytes(s["signed_uri"].as_str().unwrap(), None));
            }
        }
    }
    out
}

/// Files below `dir`, relative paths → bytes.
fn fixture_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
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

fn tags(v: &Value) -> BTreeMap<String, String> {
    v["tags"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_string(),
                t["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn aliases(v: &Value) -> BTreeMap<String, String> {
    v["aliases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t["alias"].as_str().unwrap().to_string(),
                t["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Checks a workspace's models against the poc fixture: every model's description, tags and
/// aliases, every version's number, description, tags, stage and status, and the bytes of
/// every artifact file.
fn check_against_fixture(emu: &EmulatorHandle, token: &str) {
    let root = common::repo_path("fixtures/workspaces/poc/models");
    let mut models = 0;
    for m in std::fs::read_dir(&root).unwrap().flatten() {
        let want: Value =
            serde_json::from_slice(&std::fs::read(m.path().join("model.json")).unwrap()).unwrap();
        let name = want["name"].as_str().unwrap();
        let got = api(
            emu,
            token,
            &format!("/api/2.0/mlflow/registered-models/get?name={}", q(name)),
        )["registered_model"]
            .clone();
        assert_eq!(got["description"], want["description"], "model {name}");
        assert_eq!(tags(&got), tags(&want), "model {name} tags");
        assert_eq!(aliases(&got), aliases(&want), "model {name} aliases");
        for v in std::fs::read_dir(m.path().join("versions"))
            .unwrap()
            .flatten()
        {
            let wv: Value =
                serde_json::from_slice(&std::fs::read(v.path().join("version.json")).unwrap())
                    .unwrap();
            let n = wv["version"].as_str().unwrap();
            let gv = api(
                emu,
                token,
                &format!(
                    "/api/2.0/mlflow/model-versions/get?name={}&version={n}",
                    q(name)
                ),
            )["model_version"]
                .clone();
            let who = format!("{name}/{n}");
            assert_eq!(
                gv["description"].as_str().unwrap_or(""),
                wv["description"].as_str().unwrap_or(""),
                "{who}"
            );
            assert_eq!(tags(&gv), tags(&wv), "{who} tags");
            assert_eq!(gv["current_stage"], wv["current_stage"], "{who} stage");
            assert_eq!(gv["status"], "READY", "{who}");
            assert_eq!(
                artifacts(emu, token, name, n),
                fixture_files(&v.path().join("artifacts")),
                "{who} artifacts"
            );
        }
        models += 1;
    }
    assert_eq!(models, 2);
}

#[test]
fn workspace_models_round_trip_through_dbfs_and_files_api() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = emulator("poc", SRC_TOKEN);
    let src_env = [("DATABRICKS_TOKEN", SRC_TOKEN)];

    // Export: registry listings and signed downloads; identical files stored once.
    let r = dbxport(
        work,
        &[
            "models",
            "export",
            "--host",
            src.url(),
            "--out",
            "poc.zip",
            "--json",
        ],
        &src_env,
    );
    ok(&r, "export");
    // `export`'s report: counts per kind, and every object not exported listed.
    let rep = r.json()["report"].clone();
    // The workspace registry's two models and Unity Catalog's two, as `export` takes them.
    assert_eq!(rep["kinds"]["registered_model"]["exported"], 4, "{rep:#}");
    assert_eq!(rep["kinds"]["model_version"]["exported"], 8, "{rep:#}");
    assert!(rep["issues"].as_array().unwrap().is_empty(), "{rep:#}");
    ok(&dbxport(work, &["verify", "poc.zip"], &[]), "verify");
    let inv = Bundle::open(&work.join("poc.zip"), None)
        .unwrap()
        .inventory()
        .clone();
    // requirements.txt is the same in all versions of each model: 2 + 1 duplicates at least.
    let dups = inv
        .records
        .iter()
        .filter(|r| r.kind == Kind::ModelArtifact && r.stored.is_empty())
        .count();
    assert!(dups >= 3, "{dups} duplicates");
    let perms: Vec<_> = inv
        .records
        .iter()
        .filter(|r| {
            r.kind == Kind::Permissions
                && r.meta_str("request_object_type") == Some("registered-models")
        })
        .collect();
    assert_eq!(perms.len(), 2, "both models' permissions exported");
    let dup = inv
        .records
        .iter()
        .find(|r| r.kind == Kind::ModelArtifact && r.stored.is_empty())
        .expect("a duplicate record");
    assert!(dup.meta_str("same_as").is_some() && dup.sha256.is_none());
    // Every version records its artifacts' manifest digest and where they came from.
    for v in inv.records.iter().filter(|r| r.kind == Kind::ModelVersion) {
        assert!(v.meta_str("artifacts_sha256").is_some(), "{}", v.name);
        assert_eq!(v.meta["complete"], true, "{}", v.name);
    }

    // Plan: everything would be created, nothing is written.
    let dst = uc_ready_target(work, DST_TOKEN);
    let dst_env = [("DATABRICKS_TOKEN", DST_TOKEN)];
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "poc.zip",
            "--host",
            dst.url(),
            "--plan",
            "--json",
        ],
        &dst_env,
    );
    ok(&r, "plan");
    let rep = r.json();
    assert_eq!(rep["write_requests"], 0, "{rep:#}");
    assert!(
        rep["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] == "create"),
        "{rep:#}"
    );
    let listed = api(&dst, DST_TOKEN, "/api/2.0/mlflow/registered-models/search");
    assert!(
        listed["registered_models"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{listed}"
    );

    // Import through DBFS staging; numbers, tags, stages, aliases and bytes as in the fixture.
    let r = dbxport(
        work,
        &["models", "import", "poc.zip", "--host", dst.url(), "--json"],
        &dst_env,
    );
    ok(&r, "import");
    let rep = r.json();
    assert_eq!(rep["version_mappings"], serde_json::json!([]), "{rep:#}");
    assert_eq!(
        rep["permission_ids"].as_object().unwrap().len(),
        2,
        "{rep:#}"
    );
    check_against_fixture(&dst, DST_TOKEN);
    // `models import` fills the workspace's Unity Catalog too, as `import` does.
    let uc = api(
        &dst,
        DST_TOKEN,
        "/api/2.1/unity-catalog/models?catalog_name=science_hub&schema_name=ocean",
    );
    assert_eq!(
        uc["registered_models"].as_array().map(Vec::len),
        Some(1),
        "{uc}"
    );
    let staged = get_json(
        &format!(
            "{}/api/2.0/dbfs/list?path=/dbxport/model-artifacts",
            dst.url()
        ),
        Some(DST_TOKEN),
    );
    assert!(
        staged["files"].as_array().is_none_or(|a| a.is_empty()),
        "staging copies are removed once registered: {staged}"
    );

    // A second import finds everything in place and sends no mutating request.
    let r = dbxport(
        work,
        &["models", "import", "poc.zip", "--host", dst.url(), "--json"],
        &dst_env,
    );
    ok(&r, "second import");
    let rep = r.json();
    assert_eq!(rep["write_requests"], 0, "{rep:#}");
    assert!(
        rep["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] == "unchanged"),
        "{rep:#}"
    );

    // Through the Files API (a Unity Catalog volume as staging).
    let vol = uc_ready_target(work, DST_TOKEN);
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "poc.zip",
            "--host",
            vol.url(),
            "--model-artifact-path",
            "/Volumes/main/default/staging",
            "--json",
        ],
        &dst_env,
    );
    ok(&r, "import via the Files API");
    check_against_fixture(&vol, DST_TOKEN);
}

/// Issue #9: an import that exits 0 under faults left its staged artifacts below
/// dbfs:/dbxport/model-artifacts/ (the DBFS delete was neither retried nor reported). Faults
/// on DBFS only — server errors and connections dropped after the change was applied — must
/// leave nothing staged, and the models must be there.
#[test]
fn faults_on_dbfs_leave_no_staged_artifacts_behind() {
    use dbxport::emulator::FaultConfig;
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = emulator("poc", SRC_TOKEN);
    let r = dbxport(
        work,
        &["models", "export", "--host", src.url(), "--out", "poc.zip"],
        &[("DATABRICKS_TOKEN", SRC_TOKEN)],
    );
    ok(&r, "export");
    let dst = uc_ready_target(work, DST_TOKEN);
    dst.set_faults(FaultConfig {
        error_rate: 0.25,
        error_statuses: vec![500],
        drop_rate: 0.25,
        drop_after_apply: true,
        families: vec!["dbfs".into()],
        seed: 9,
        ..FaultConfig::default()
    })
    .expect("faults set");
    let r = dbxport(
        work,
        &["models", "import", "poc.zip", "--host", dst.url(), "--json"],
        &[("DATABRICKS_TOKEN", DST_TOKEN)],
    );
    ok(&r, "import under faults");
    let rep = r.json();
    let s = dst.stats();
    assert!(s.injected_errors + s.dropped > 0, "no fault was injected");
    dst.set_faults(FaultConfig::default()).unwrap();
    check_against_fixture(&dst, DST_TOKEN);
    let staged = api(
        &dst,
        DST_TOKEN,
        "/api/2.0/dbfs/list?path=/dbxport/model-artifacts",
    );
    assert!(
        staged["files"].as_array().is_none_or(|a| a.is_empty()),
        "staged artifacts left in the target: {staged}\nreport: {rep:#}"
    );
    assert!(rep.get("staged_left").is_none(), "{rep:#}");
    assert!(rep["warnings"].as_array().unwrap().is_empty(), "{rep:#}");
}

/// Journal entries (lines after the header) in an export's staging folder.
fn journal_entries(partial: &Path) -> usize {
    std::fs::read_to_string(partial.join("journal.jsonl"))
        .map(|s| s.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// The records of a bundle, keyed by kind and source id.
fn records_of(bundle: &Path) -> BTreeMap<(String, String), Value> {
    let b = Bundle::open(bundle, None).unwrap();
    b.inventory()
        .records
        .iter()
        .map(|r| {
            (
                (r.kind.to_string(), r.source_id.clone()),
                serde_json::to_value(r).unwrap(),
            )
        })
        .collect()
}

/// A tag file of a bundle.
fn tag_file(bundle: &Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut b = Bundle::open(bundle, None).unwrap();
    let mut out = Vec::new();
    b.open_raw(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The export report stored in a bundle, without its bundle id (each bundle has its own).
fn stored_report(bundle: &Path) -> Value {
    let mut rep: Value = serde_json::from_slice(&tag_file(bundle, "export-report.json"))
        .expect("export-report.json");
    rep.as_object_mut().unwrap().remove("bundle_id");
    rep
}

// `models export` used to keep its own staging folder (`.OUT.staging/`), journal and resume;
// it is now the export engine with the registry as its source.
#[test]
fn models_export_killed_and_resumed_is_an_uninterrupted_export() {
    use dbxport::emulator::FaultConfig;
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    // Slow responses, so that the kill lands in the middle of the artifacts.
    let src = Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(common::repo_path("fixtures/workspaces/poc"))
            .with_token(SRC_TOKEN)
            .with_faults(FaultConfig {
                latency_ms: 60,
                ..FaultConfig::default()
            }),
    )
    .expect("start emulator");
    let env = [("DATABRICKS_TOKEN", SRC_TOKEN)];
    let args = |out: &'static str| {
        vec![
            "models",
            "export",
            "--host",
            src.url(),
            "--out",
            out,
            "--json",
        ]
    };
    let partial = work.join("poc.zip.partial");
    let mut child = std::process::Command::new(crate::common::dbxport_bin())
        .current_dir(work)
        .args(args("poc.zip"))
        .env_remove("DATABRICKS_HOST")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env("DATABRICKS_TOKEN", SRC_TOKEN)
        .env(
            "DATABRICKS_CONFIG_FILE",
            "/nonexistent/dbxport-test-databrickscfg",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while journal_entries(&partial) < 3 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("models export ended ({status}) before it could be interrupted");
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(120),
            "models export made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !work.join("poc.zip").exists(),
        "no bundle from a killed run"
    );
    // Export's staging layout: OUT.partial/ with its journal, recipients record and bag.
    assert!(partial.join("journal.jsonl").is_file());
    assert!(partial.join("recipients.json").is_file());
    assert!(partial.join("poc").is_dir(), "the bag is named after OUT");
    assert!(!work.join(".poc.zip.staging").exists());
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(partial.join("journal.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(
        header.to_string().contains("dbxport-export-journal"),
        "{header}"
    );

    // As for `export`: without --resume the staging folder is refused.
    let r = dbxport(work, &args("poc.zip"), &env);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--resume"), "{}", r.stderr);

    let mut resume = args("poc.zip");
    resume.push("--resume");
    let r = dbxport(work, &resume, &env);
    ok(&r, "models export --resume");
    let s = r.json();
    assert_eq!(s["run"]["resumed"], true, "{s:#}");
    assert!(s["run"]["reused"].as_u64().unwrap() >= 1, "{s:#}");
    assert!(!partial.exists(), "staging folder removed");

    let r = dbxport(work, &args("clean.zip"), &env);
    ok(&r, "uninterrupted models export");
    let (resumed, clean) = (work.join("poc.zip"), work.join("clean.zip"));
    assert_eq!(records_of(&resumed), records_of(&clean));
    assert_eq!(stored_report(&resumed), stored_report(&clean));
    assert!(!tag_file(&resumed, "export-report.md").is_empty());
    ok(
        &dbxport(work, &["verify", "poc.zip"], &[]),
        "verify resumed",
    );
}

/// A seed with one registered model whose versions hold large artifacts: `files[v]` lists
/// (path, bytes) of version `v + 1`.
fn big_model_seed(dir: &Path, files: &[Vec<(&str, Vec<u8>)>]) -> std::path::PathBuf {
    let seed = dir.join("big-seed");
    std::fs::create_dir_all(&seed).unwrap();
    for f in std::fs::read_dir(common::repo_path("fixtures/workspaces/empty")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), seed.join(f.file_name())).unwrap();
    }
    let model = seed.join("models/big");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(
        model.join("model.json"),
        r#"{ "name": "big", "creation_timestamp": 1700000000000, "last_updated_timestamp": 1700000000000 }"#,
    )
    .unwrap();
    for (i, version) in files.iter().enumerate() {
        let n = i + 1;
        let vdir = model.join(format!("versions/{n}"));
        std::fs::create_dir_all(vdir.join("artifacts")).unwrap();
        std::fs::write(
            vdir.join("version.json"),
            format!(
                r#"{{ "name": "big", "version": "{n}", "status": "READY", "current_stage": "None", "creation_timestamp": 1700000000000, "last_updated_timestamp": 1700000000000 }}"#
            ),
        )
        .unwrap();
        for (path, bytes) in version {
            std::fs::write(vdir.join("artifacts").join(path), bytes).unwrap();
        }
    }
    seed
}

/// Large artifacts go from the registry straight into the bundle as it is written (spec
/// §11.3), never staged — yet a file that shares its size with a later one is staged first, so
/// identical files are still stored once, exactly as an export that stages everything stores
/// them.
#[test]
fn large_artifacts_stream_into_the_bundle_and_duplicates_stay_deduplicated() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let two_mib = |b: u8| -> Vec<u8> { (0..2u32 << 20).map(|i| (i % 251) as u8 ^ b).collect() };
    let other: Vec<u8> = (0..3u32 << 20).map(|i| (i % 241) as u8).collect();
    let seed = big_model_seed(
        work,
        &[
            vec![
                ("weights.bin", two_mib(0)),
                ("MLmodel", b"flavors: {}\n".to_vec()),
            ],
            // Version 2 registers version 1's weights again.
            vec![("weights.bin", two_mib(0))],
            // Version 3: new weights of the same size, and a file no other has the size of.
            vec![("weights.bin", two_mib(7)), ("other.bin", other.clone())],
        ],
    );
    let src = Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(seed)
            .with_token(SRC_TOKEN),
    )
    .expect("start emulator");
    let r = dbxport(
        work,
        &[
            "models",
            "export",
            "--host",
            src.url(),
            "--out",
            "big.zip",
            "--model",
            "big",
            "--json",
        ],
        &[("DATABRICKS_TOKEN", SRC_TOKEN)],
    );
    ok(&r, "export");
    let out = r.json();
    assert_eq!(out["run"]["streamed_artifacts"], 1, "{out:#}");
    let rep = &out["report"];
    assert_eq!(rep["kinds"]["model_version"]["exported"], 3, "{rep:#}");
    assert_eq!(rep["kinds"]["model_artifact"]["exported"], 5, "{rep:#}");
    assert!(
        !work.join("big.zip.partial").exists(),
        "staging left behind"
    );
    ok(&dbxport(work, &["verify", "big.zip"], &[]), "verify");

    let bundle = Bundle::open(&work.join("big.zip"), None).unwrap();
    let inv = bundle.inventory().clone();
    let rec = |id: &str| {
        inv.records
            .iter()
            .find(|r| r.kind == Kind::ModelArtifact && r.source_id == id)
            .unwrap_or_else(|| panic!("no record {id}"))
    };
    let sha = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    assert_eq!(rec("big/1/weights.bin").sha256, Some(sha(&two_mib(0))));
    let dup = rec("big/2/weights.bin");
    assert!(dup.stored.is_empty(), "version 2's weights stored again");
    assert_eq!(dup.meta_str("same_as"), Some("big/1/weights.bin"));
    assert_eq!(rec("big/3/weights.bin").sha256, Some(sha(&two_mib(7))));
    let streamed = rec("big/3/other.bin");
    assert_eq!(streamed.sha256, Some(sha(&other)));
    assert_eq!(streamed.size, 3 << 20);
    // The streamed version's manifest digest was filled in by the writer; verify checked it.
    let v3 = inv
        .records
        .iter()
        .find(|r| r.kind == Kind::ModelVersion && r.source_id == "big/3")
        .unwrap();
    assert!(v3.meta_str("artifacts_sha256").is_some(), "{:?}", v3.meta);
    assert_eq!(v3.meta["artifact_count"], 2);
}
