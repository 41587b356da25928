//! ML models against real MLflow tracking servers: two `mlflow server` processes on loopback
//! (SQLite, artifacts served through their proxy), populated with the MLflow Python client
//! (scikit-learn models from logged runs, a generated multi-MB binary, tags, aliases,
//! stages), exported with `dbxport models export`, imported into the second server, and
//! checked with the MLflow client. The same two servers then serve the failure cases: a
//! second import, conflicts, a source and a target that die mid-artifact (resume finishes),
//! and an artifact whose bytes change between listing and download.
//!
//! The steps share the servers (starting one takes seconds on two cores), so they run in
//! order inside one test, as a table (`support::scenario`): a failing step does not hide the
//! ones after it, only those that need it.

use crate::common;
use crate::mlflow_support;
use crate::support::scenario::{self, Step};

use dbxport::bundle::Bundle;
use dbxport::emulator::{Emulator, EmulatorConfig};
use dbxport::model::Kind;
use mlflow_support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const IRIS: &str = "iris-classifier";
const SEA: &str = "Sea-Level Forecast (ünïcode %)";
/// Size of the generated binary artifact, MiB.
const BIG_MB: u64 = 12;

fn inventory(bundle: &Path) -> dbxport::bundle::Inventory {
    Bundle::open(bundle, None)
        .unwrap_or_else(|e| panic!("bundle {}: {e}", bundle.display()))
        .inventory()
        .clone()
}

fn artifact<'a>(inv: &'a dbxport::bundle::Inventory, id: &str) -> &'a dbxport::bundle::Record {
    inv.records
        .iter()
        .find(|r| r.kind == Kind::ModelArtifact && r.source_id == id)
        .unwrap_or_else(|| panic!("no artifact record {id}"))
}

fn ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what}: exit {}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
}

fn model_json(url: &str, name: &str) -> Value {
    get_json(
        &format!(
            "{url}/api/2.0/mlflow/registered-models/get?name={}",
            q(name)
        ),
        None,
    )["registered_model"]
        .clone()
}

fn versions_of(url: &str, name: &str) -> Vec<Value> {
    let v = get_json(
        &format!(
            "{url}/api/2.0/mlflow/model-versions/search?filter={}",
            q(&format!("name='{name}'"))
        ),
        None,
    );
    v["model_versions"].as_array().cloned().unwrap_or_default()
}

fn action<'a>(report: &'a Value, object: &str) -> &'a str {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["object"] == object)
        .and_then(|a| a["action"].as_str())
        .unwrap_or_else(|| panic!("no action for {object} in {report:#}"))
}

/// Waits for a child, at most `secs`.
fn wait_child(c: &mut std::process::Child, secs: u64) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "dbxport did not finish in {secs} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn child_output(mut c: std::process::Child) -> (i32, String) {
    let code = wait_child(&mut c, 300);
    let mut err = String::new();
    use std::io::Read;
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (code, err)
}

/// What the steps share: the two servers, and what the population gave.
struct World {
    py: std::path::PathBuf,
    tmp: tempfile::TempDir,
    src: MlflowServer,
    dst: MlflowServer,
    /// The generated binary artifact's digest.
    big_sha: String,
    /// The target's version numbers where they differ from the source's.
    mapping: String,
}

#[test]
fn mlflow_servers_round_trip_and_failure_cases() {
    let Some(py) = common::venv_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let t = Instant::now();
    let mut src = MlflowServer::spawn(&py, &work.join("src"));
    let mut dst = MlflowServer::spawn(&py, &work.join("dst"));
    src.wait_ready();
    // The target finishes starting while the source is populated.
    let pop = helper_json(
        &py,
        "populate.py",
        &[
            &src.url(),
            work.join("pop").to_str().unwrap(),
            &BIG_MB.to_string(),
        ],
    );
    dst.wait_ready();
    eprintln!(
        "[models_mlflow] servers started and populated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut world = World {
        big_sha: pop["big_sha256"].as_str().unwrap().to_string(),
        mapping: json!({ format!("{SEA}/2"): "1" }).to_string(),
        py,
        tmp,
        src,
        dst,
    };
    scenario::run(
        "models_mlflow",
        &mut world,
        &[
            Step {
                name: "export",
                needs: &[],
                run: export,
            },
            Step {
                name: "import_and_compare",
                needs: &["export"],
                run: import_and_compare,
            },
            Step {
                name: "second_import_writes_nothing",
                needs: &["import_and_compare"],
                run: second_import_writes_nothing,
            },
            Step {
                name: "conflicts",
                needs: &["import_and_compare"],
                run: conflicts,
            },
            Step {
                name: "source_dies_export_resumes",
                needs: &[],
                run: source_dies_export_resumes,
            },
            Step {
                name: "target_dies_import_resumes",
                needs: &["export"],
                run: target_dies_import_resumes,
            },
            Step {
                name: "bytes_change_between_listing_and_download",
                needs: &[],
                run: bytes_change_between_listing_and_download,
            },
            Step {
                name: "across_registries",
                needs: &["export"],
                run: across_registries,
            },
        ],
    );
}

/// Export.
fn export(w: &mut World) {
    let World {
        tmp, src, big_sha, ..
    } = w;
    let work = tmp.path();
    let r = dbxport(
        work,
        &[
            "models",
            "export",
            "--mlflow-uri",
            &src.url(),
            "--out",
            "models.zip",
            "--json",
        ],
        &[],
    );
    ok(&r, "export");
    // weights.bin, the one large file, went from the server into the bundle unstaged (§11.3).
    assert_eq!(r.json()["run"]["streamed_artifacts"], 1, "{:#}", r.json());
    // `export`'s report: counts per kind, and every object not exported listed.
    let rep = r.json()["report"].clone();
    assert_eq!(rep["kinds"]["registered_model"]["exported"], 2, "{rep:#}");
    assert_eq!(rep["kinds"]["model_version"]["exported"], 4, "{rep:#}");
    assert!(rep["issues"].as_array().unwrap().is_empty(), "{rep:#}");
    assert!(
        !work.join("models.zip.partial").exists(),
        "staging left behind"
    );

    let inv = inventory(&work.join("models.zip"));
    // v3 of the iris model is v1 registered again: all its files are duplicates.
    let dups = inv
        .records
        .iter()
        .filter(|r| r.kind == Kind::ModelArtifact && r.stored.is_empty())
        .count();
    assert!(dups >= 5, "{dups} duplicates");
    let big = artifact(&inv, &format!("{SEA}/2/weights.bin"));
    assert_eq!(big.size, BIG_MB << 20);
    assert_eq!(
        big.sha256.as_deref(),
        Some(big_sha.as_str()),
        "bundle digest differs from the generator's"
    );
    let empty = artifact(&inv, &format!("{SEA}/2/empty.txt"));
    assert_eq!(empty.size, 0);
    artifact(&inv, &format!("{SEA}/2/nested/deeper/config.json"));
    for r in inv
        .records
        .iter()
        .filter(|r| r.kind == Kind::ModelArtifact && r.source_id.starts_with(&format!("{IRIS}/3/")))
    {
        assert!(
            r.stored.is_empty(),
            "duplicate {} stored again",
            r.source_id
        );
        let first = r.meta_str("same_as").expect("same_as");
        assert!(first.starts_with(&format!("{IRIS}/1/")), "{first}");
        let copy = artifact(&inv, first);
        assert_eq!(r.meta_str("sha256"), copy.sha256.as_deref());
    }
    let v2 = inv
        .records
        .iter()
        .find(|r| r.kind == Kind::ModelVersion && r.source_id == format!("{IRIS}/2"))
        .unwrap();
    assert_eq!(v2.stored.len(), 2, "version.json and run.json");
    let verify = dbxport(work, &["verify", "models.zip"], &[]);
    ok(&verify, "verify");
}

/// Import, then check everything with the MLflow client.
fn import_and_compare(w: &mut World) {
    let World {
        py,
        tmp,
        src,
        dst,
        mapping,
        ..
    } = w;
    let work = tmp.path();
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--mlflow-uri",
            &dst.url(),
            "--json",
        ],
        &[],
    );
    ok(&r, "import");
    let rep = r.json();
    assert_eq!(
        rep["version_mappings"],
        json!([{ "model": SEA, "source_version": "2", "target_version": "1" }]),
        "{rep:#}"
    );
    assert!(
        rep["uploaded_bytes"].as_u64().unwrap() >= BIG_MB << 20,
        "{rep:#}"
    );
    let cmp = helper_json(
        py,
        "compare.py",
        &[
            &src.url(),
            &dst.url(),
            work.join("cmp1").to_str().unwrap(),
            mapping,
        ],
    );
    assert_eq!(cmp["ok"], true, "{cmp:#}");
    assert_eq!(cmp["versions"], 4);
}

/// A second import changes nothing.
fn second_import_writes_nothing(w: &mut World) {
    let World { tmp, dst, .. } = w;
    let work = tmp.path();
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--mlflow-uri",
            &dst.url(),
            "--json",
        ],
        &[],
    );
    ok(&r, "second import");
    let rep = r.json();
    assert_eq!(rep["write_requests"], 0, "{rep:#}");
    assert_eq!(rep["uploaded_files"], 0);
    assert!(
        rep["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] == "unchanged"),
        "{rep:#}"
    );
}

/// Conflicts: the name exists in the target with other content.
fn conflicts(w: &mut World) {
    let World { py, tmp, dst, .. } = w;
    let work = tmp.path();
    helper_json_or_ok(
        py,
        "conflict.py",
        &[&dst.url(), SEA, work.join("conflict").to_str().unwrap()],
    );
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--mlflow-uri",
            &dst.url(),
            "--json",
        ],
        &[],
    );
    assert_eq!(
        r.code, 1,
        "a conflict is a problem\n{}\n{}",
        r.stdout, r.stderr
    );
    let rep = r.json();
    assert_eq!(action(&rep, &format!("model {SEA}")), "conflict");
    assert_eq!(action(&rep, &format!("model {IRIS}")), "unchanged");
    assert_eq!(
        model_json(&dst.url(), SEA)["description"],
        "not from the bundle"
    );
    assert_eq!(versions_of(&dst.url(), SEA).len(), 1);
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--mlflow-uri",
            &dst.url(),
            "--json",
            "--resume",
            "--on-conflict",
            "skip",
        ],
        &[],
    );
    ok(&r, "import --on-conflict skip");
    assert_eq!(action(&r.json(), &format!("model {SEA}")), "skip");
    assert_eq!(versions_of(&dst.url(), SEA).len(), 1);
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--mlflow-uri",
            &dst.url(),
            "--json",
            "--resume",
            "--on-conflict",
            "overwrite",
        ],
        &[],
    );
    ok(&r, "import --on-conflict overwrite");
    let rep = r.json();
    assert_eq!(action(&rep, &format!("model {SEA}")), "update");
    let m = model_json(&dst.url(), SEA);
    assert_eq!(m["description"], "Monthly sea level, tide-gauge ensemble.");
    assert_eq!(
        versions_of(&dst.url(), SEA).len(),
        2,
        "the foreign version stays"
    );
    assert_eq!(
        m["aliases"],
        json!([{ "alias": "latest-good", "version": "2" }])
    );
}

/// The source dies mid-artifact; --resume finishes the export.
fn source_dies_export_resumes(w: &mut World) {
    let World {
        tmp, src, big_sha, ..
    } = w;
    let work = tmp.path();
    let proxy = Proxy::start(&src.url());
    proxy.state.throttle.store(3 << 20, Ordering::Relaxed);
    let child = dbxport_spawn(
        work,
        &[
            "models",
            "export",
            "--mlflow-uri",
            &proxy.url,
            "--out",
            "again.zip",
            "--retry-timeout",
            "3",
            "--model",
            "Sea-Level*",
        ],
    );
    let t = Instant::now();
    while proxy.state.down.load(Ordering::Relaxed) < 2 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the export never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    src.kill();
    let (code, err) = child_output(child);
    assert_eq!(code, 2, "an unreachable source stops the export\n{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(work.join("again.zip.partial").is_dir());
    assert!(
        !work.join("again.zip").exists(),
        "no bundle from a failed export"
    );
    src.restart();
    proxy.state.throttle.store(0, Ordering::Relaxed);
    let r = dbxport(
        work,
        &[
            "models",
            "export",
            "--mlflow-uri",
            &proxy.url,
            "--out",
            "again.zip",
            "--resume",
            "--model",
            "Sea-Level*",
            "--json",
        ],
        &[],
    );
    ok(&r, "export --resume");
    assert_eq!(r.json()["run"]["resumed"], true);
    assert!(r.json()["run"]["reused"].as_u64().unwrap() >= 1);
    let inv2 = inventory(&work.join("again.zip"));
    assert_eq!(
        artifact(&inv2, &format!("{SEA}/2/weights.bin"))
            .sha256
            .as_deref(),
        Some(big_sha.as_str())
    );
    ok(
        &dbxport(work, &["verify", "again.zip"], &[]),
        "verify resumed bundle",
    );
    drop(proxy);
}

/// The target dies mid-artifact; --resume finishes the import.
fn target_dies_import_resumes(w: &mut World) {
    let World {
        py,
        tmp,
        src,
        dst,
        mapping,
        ..
    } = w;
    let work = tmp.path();
    let _ = helper(py, "reset.py", &[&dst.url()]);
    let proxy = Proxy::start(&dst.url());
    proxy.state.throttle.store(3 << 20, Ordering::Relaxed);
    let child = dbxport_spawn(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--mlflow-uri",
            &proxy.url,
            "--retry-timeout",
            "3",
            "--journal",
            "resume.journal",
        ],
    );
    let t = Instant::now();
    while proxy.state.up.load(Ordering::Relaxed) < 2 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the import never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    dst.kill();
    let (code, err) = child_output(child);
    assert_eq!(code, 2, "an unreachable target stops the import\n{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(work.join("resume.journal").exists());
    dst.restart();
    proxy.state.throttle.store(0, Ordering::Relaxed);
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--mlflow-uri",
            &proxy.url,
            "--resume",
            "--journal",
            "resume.journal",
            "--json",
        ],
        &[],
    );
    ok(&r, "import --resume");
    assert!(
        !work.join("resume.journal").exists(),
        "journal removed after a complete import"
    );
    let cmp = helper_json(
        py,
        "compare.py",
        &[
            &src.url(),
            &dst.url(),
            work.join("cmp2").to_str().unwrap(),
            mapping,
        ],
    );
    assert_eq!(cmp["ok"], true, "{cmp:#}");
    drop(proxy);
}

/// Bytes change between listing and download.
fn bytes_change_between_listing_and_download(w: &mut World) {
    let World { tmp, src, .. } = w;
    let work = tmp.path();
    let file = src
        .artifact_file("weights.bin")
        .expect("weights.bin on the source's disk");
    let proxy = Proxy::start(&src.url());
    let f2 = file.clone();
    proxy.state.before_get("/weights.bin", move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&f2).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
    });
    let r = dbxport(
        work,
        &[
            "models",
            "export",
            "--mlflow-uri",
            &proxy.url,
            "--out",
            "changed.zip",
            "--model",
            "Sea-Level*",
            "--json",
        ],
        &[],
    );
    ok(&r, "export of a changing artifact");
    let rep = r.json()["report"].clone();
    let warnings = rep["notices"].to_string();
    assert!(
        warnings.contains("weights.bin") && warnings.contains("changed while it was exported"),
        "{rep:#}"
    );
    // It was to be streamed into the bundle; the stream came longer than listed, so its
    // version was staged instead and the bundle written again.
    assert!(warnings.contains("did not arrive as listed"), "{rep:#}");
    assert_eq!(r.json()["run"]["streamed_artifacts"], 0, "{:#}", r.json());
    let inv3 = inventory(&work.join("changed.zip"));
    let rec = artifact(&inv3, &format!("{SEA}/2/weights.bin"));
    assert_eq!(rec.size, (BIG_MB << 20) + (1 << 20));
    assert_eq!(rec.sha256.as_deref(), Some(file_sha256(&file).as_str()));
}

/// Across registries: MLflow server -> workspace, workspace -> MLflow server.
fn across_registries(w: &mut World) {
    let World {
        py,
        tmp,
        dst,
        big_sha,
        ..
    } = w;
    let work = tmp.path();
    let emu = Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(common::repo_path("fixtures/workspaces/empty"))
            .with_token(TOKEN),
    )
    .unwrap();
    let env = [("DATABRICKS_TOKEN", TOKEN)];
    let r = dbxport(
        work,
        &[
            "models",
            "import",
            "models.zip",
            "--host",
            emu.url(),
            "--json",
        ],
        &env,
    );
    ok(&r, "import of an MLflow server's models into a workspace");
    let ws = |p: &str| get_json(&format!("{}{p}", emu.url()), Some(TOKEN));
    let iris = ws(&format!(
        "/api/2.0/mlflow/registered-models/get?name={IRIS}"
    ))["registered_model"]
        .clone();
    assert_eq!(
        iris["description"],
        "Iris species from sepal and petal sizes."
    );
    // A workspace's registry has no aliases: the server's are reported, never sent.
    assert_eq!(iris.get("aliases"), None, "{iris:#}");
    let rep = r.json();
    for alias in ["champion", "challenger"] {
        let object = format!("alias {IRIS}@{alias}");
        assert_eq!(action(&rep, &object), "skip", "{rep:#}");
    }
    assert!(
        rep.to_string()
            .contains("no home in the workspace registry"),
        "{rep:#}"
    );
    for (n, stage) in [("1", "Archived"), ("2", "Production"), ("3", "Staging")] {
        let v = ws(&format!(
            "/api/2.0/mlflow/model-versions/get?name={IRIS}&version={n}"
        ))["model_version"]
            .clone();
        assert_eq!(v["current_stage"], stage, "{v}");
    }
    let signed = ws(&format!(
        "/api/2.0/mlflow/model-versions/get-signed-download-uri?name={}&version=1&path=weights.bin",
        q(SEA)
    ));
    let weights = get_bytes(signed["signed_uri"].as_str().unwrap(), None);
    assert_eq!(
        sha256_hex(&weights),
        *big_sha,
        "weights.bin in the workspace"
    );

    let poc = Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(common::repo_path("fixtures/workspaces/poc"))
            .with_token(TOKEN),
    )
    .unwrap();
    ok(
        &dbxport(
            work,
            &["models", "export", "--host", poc.url(), "--out", "poc.zip"],
            &env,
        ),
        "export from a workspace",
    );
    let _ = helper(py, "reset.py", &[&dst.url()]);
    ok(
        &dbxport(
            work,
            &["models", "import", "poc.zip", "--mlflow-uri", &dst.url()],
            &[],
        ),
        "import of a workspace's models into an MLflow server",
    );
    let check = helper_json(
        py,
        "check_fixture.py",
        &[
            &dst.url(),
            common::repo_path("fixtures/workspaces/poc/models")
                .to_str()
                .unwrap(),
            work.join("fixture").to_str().unwrap(),
        ],
    );
    assert_eq!(check["ok"], true, "{check:#}");
    assert_eq!(check["versions"], 5);
}

const TOKEN: &str = "dapi-models-cross";

/// Runs a helper that prints nothing but must succeed.
fn helper_json_or_ok(py: &Path, script: &str, args: &[&str]) {
    let out = helper(py, script, args);
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
