//! Terminal escapes (issue #9, item 16): names and lines of code from a workspace or a bundle
//! reach people through `export`, `plan` and `diff`; none may carry a raw control character
//! (an ESC/OSC sequence retitling the terminal, a CR rewriting the line) to the terminal or
//! into the Markdown report stored in the bundle. `--json` escapes them itself.

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An OSC sequence that retitles the terminal, then a CR and a fake verdict.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\rOK";
/// How `printable` shows [`HOSTILE`].
const SHOWN: &str = "\\x1b]0;pwned\\x07\\rOK";
/// The mount path the scanner finds in the notebook's line (it ends at the `;`), as shown.
const MOUNT_SHOWN: &str = "/mnt/raw/x\\x1b]0";

fn empty_seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/workspaces/empty")
}

/// The empty workspace plus a notebook reading a mount path with [`HOSTILE`] in it, and a job
/// named with it.
fn hostile_seed(root: &Path) {
    std::fs::create_dir_all(root.join("workspace/Shared")).unwrap();
    std::fs::create_dir_all(root.join("jobs")).unwrap();
    for f in ["principals.json", "tokens.json", "workspace.json"] {
        std::fs::copy(empty_seed().join(f), root.join(f)).unwrap();
    }
    std::fs::write(
        root.join("workspace/Shared/etl.py"),
        format!(
            "# Databricks notebook source\ndf = spark.read.load(\"/dbfs/mnt/raw/x{HOSTILE}\")\n"
        ),
    )
    .unwrap();
    let job = serde_json::json!({
        "job_id": 41, "creator_user_name": "ada.okafor@sciencehub.example",
        "created_time": 1_600_000_000_000i64,
        "settings": {"name": format!("nightly{HOSTILE}"), "tasks": [{"task_key": "t",
            "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 1},
            "notebook_task": {"notebook_path": "/Shared/etl"}}]}
    });
    std::fs::write(root.join("jobs/41.json"), job.to_string()).unwrap();
}

fn start(seed: &Path) -> EmulatorHandle {
    Emulator::start_in_background(EmulatorConfig::default().with_seed(seed)).unwrap()
}

fn dbxport(home: &Path, emu: &EmulatorHandle, args: &[&str]) -> Output {
    Command::new(crate::common::dbxport_bin())
        .current_dir(home)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DATABRICKS_HOST", emu.url())
        .env("DATABRICKS_TOKEN", emu.admin_token())
        .output()
        .expect("dbxport runs")
}

/// Fails when `bytes` hold a control character other than LF (or a bidi control).
fn no_raw_controls(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && dbxport::bundle::printable::is_unsafe_for_terminal(c))
        .collect();
    assert!(bad.is_empty(), "{what} carries {bad:?}:\n{text}");
}

fn both(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn report_md(zip: &Path) -> String {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let name = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
        .find(|n| n.ends_with("/export-report.md"))
        .expect("export-report.md");
    let mut s = String::new();
    z.by_name(&name).unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn export_plan_and_diff_print_workspace_text_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = tmp.path().join("seed");
    hostile_seed(&seed);
    let source = start(&seed);
    let target = start(&empty_seed());
    let bundle = tmp.path().join("b.zip");

    let o = dbxport(
        tmp.path(),
        &source,
        &[
            "export",
            "-o",
            bundle.to_str().unwrap(),
            "--include",
            "workspace,job",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    no_raw_controls("export's output", &[o.stdout, o.stderr].concat());
    let md = report_md(&bundle);
    no_raw_controls("export-report.md", md.as_bytes());
    assert!(md.contains(&format!("`{MOUNT_SHOWN}`")), "{md}");

    // plan: the job's name, and the must-recreate line of code that uses the mount.
    let o = dbxport(
        tmp.path(),
        &target,
        &["plan", bundle.to_str().unwrap(), "--all"],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.code().is_some_and(|c| c < 2), "{}", both(&o));
    no_raw_controls(
        "plan's output",
        &[o.stdout.clone(), o.stderr.clone()].concat(),
    );
    assert!(out.contains(&format!("nightly{SHOWN}")), "{}", both(&o));
    assert!(
        out.contains(&format!(
            "/Shared/etl:2: reads or writes a DBFS mount path ({MOUNT_SHOWN})"
        )),
        "{}",
        both(&o)
    );

    // diff, before any import: every object differs, the job by its hostile name.
    let o = dbxport(tmp.path(), &target, &["diff", bundle.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    no_raw_controls(
        "diff's output",
        &[o.stdout.clone(), o.stderr.clone()].concat(),
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("nightly{SHOWN}")),
        "{}",
        both(&o)
    );
}
