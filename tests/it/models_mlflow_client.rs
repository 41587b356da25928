//! The MLflow client, unmodified, against the emulator: a training script
//! (`tests/mlflow_support/train.py`) logs a run and a scikit-learn model and registers it in
//! the workspace registry of one emulator (`tracking_uri="databricks"`); `dbxport models export`
//! and `import` carry it into a second emulator; `mlflow.pyfunc.load_model("models:/m/1")`
//! (`predict.py`) predicts the same values on both. And a workspace that does not serve
//! `runs/get` is reported as such, never as a run that is gone.

use crate::common;
use crate::mlflow_support;

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultConfig};
use mlflow_support::*;
use serde_json::Value;
use std::path::Path;

const SRC_TOKEN: &str = "dapi-mlflow-client-src";
const DST_TOKEN: &str = "dapi-mlflow-client-dst";
const MODEL: &str = "ocean-regressor";

fn emulator(token: &str) -> EmulatorHandle {
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(common::repo_path("fixtures/workspaces/empty"))
            .with_token(token),
    )
    .expect("start emulator")
}

/// [`client_script`] with one argument.
fn script(python: &Path, emu: &EmulatorHandle, token: &str, name: &str, arg: &str) -> Value {
    client_script(python, emu, token, name, &[arg])
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

#[test]
fn a_training_script_runs_unmodified_and_its_model_moves_and_predicts_the_same() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let src = emulator(SRC_TOKEN);

    // Train, log and register with the MLflow client, as on a workspace.
    let trained = script(&python, &src, SRC_TOKEN, "train.py", MODEL);
    assert_eq!(trained["version"], "1", "{trained}");
    let run_id = trained["run_id"].as_str().unwrap();
    let expected = trained["predictions"].clone();
    assert_eq!(expected.as_array().unwrap().len(), 3);

    // The run holds what the script logged; the version is READY, linked to the run, with
    // the logged model's files copied into the registry.
    let run = api(
        &src,
        SRC_TOKEN,
        &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"),
    )["run"]
        .clone();
    assert_eq!(run["info"]["status"], "FINISHED", "{run:#}");
    let data = run["data"].to_string();
    for want in [
        r#"{"key":"fit_intercept","value":"True"}"#,
        r#""key":"r2""#,
        r#"{"key":"team","value":"ocean"}"#,
    ] {
        assert!(data.contains(want), "{want} in {data}");
    }
    let v = api(
        &src,
        SRC_TOKEN,
        &format!("/api/2.0/mlflow/model-versions/get?name={MODEL}&version=1"),
    )["model_version"]
        .clone();
    assert_eq!(v["status"], "READY", "{v:#}");
    assert_eq!(v["run_id"], run_id, "{v:#}");
    let files = api(
        &src,
        SRC_TOKEN,
        &format!("/api/2.0/mlflow/model-versions/list-artifacts?name={MODEL}&version=1"),
    );
    let names = files["files"].to_string();
    for f in ["MLmodel", "model.pkl", "requirements.txt"] {
        assert!(names.contains(&format!("\"{f}\"")), "{f} in {names}");
    }
    let on_source = script(
        &python,
        &src,
        SRC_TOKEN,
        "predict.py",
        &format!("models:/{MODEL}/1"),
    );
    assert_eq!(on_source["predictions"], expected);

    // Export: the run is read (runs/get is served), so no notice about it.
    let r = dbxport(
        work,
        &[
            "models",
            "export",
            "--host",
            src.url(),
            "--out",
            "m.zip",
            "--json",
        ],
        &[("DATABRICKS_TOKEN", SRC_TOKEN)],
    );
    ok(&r, "export");
    let rep = r.json()["report"].clone();
    assert_eq!(rep["kinds"]["model_version"]["exported"], 1, "{rep:#}");
    assert!(
        !rep.to_string().contains(run_id),
        "no notice about the source run: {rep:#}"
    );
    ok(&dbxport(work, &["verify", "m.zip"], &[]), "verify");

    // Import into a second workspace; the model predicts the same there.
    let dst = emulator(DST_TOKEN);
    let r = dbxport(
        work,
        &["models", "import", "m.zip", "--host", dst.url(), "--json"],
        &[("DATABRICKS_TOKEN", DST_TOKEN)],
    );
    ok(&r, "import");
    let on_target = script(
        &python,
        &dst,
        DST_TOKEN,
        "predict.py",
        &format!("models:/{MODEL}/1"),
    );
    assert_eq!(on_target["predictions"], expected);
}

#[test]
fn a_workspace_without_runs_get_is_a_missing_api_not_a_missing_run() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = emulator(SRC_TOKEN);
    let trained = script(&python, &src, SRC_TOKEN, "train.py", MODEL);
    let run_id = trained["run_id"].as_str().unwrap();
    src.set_faults(FaultConfig {
        unserved: vec!["/api/2.0/mlflow/runs/get".into()],
        ..FaultConfig::default()
    })
    .unwrap();
    let r = dbxport(
        tmp.path(),
        &[
            "models",
            "export",
            "--host",
            src.url(),
            "--out",
            "m.zip",
            "--json",
        ],
        &[("DATABRICKS_TOKEN", SRC_TOKEN)],
    );
    ok(&r, "export");
    let notices = r.json()["report"]["notices"].to_string();
    assert!(
        notices.contains("did not serve runs/get") && notices.contains(run_id),
        "{notices}"
    );
    assert!(!notices.contains("no longer exists"), "{notices}");
    assert_eq!(src.stats().unknown_endpoints, 1, "one refused runs/get");
}
