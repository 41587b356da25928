//! Folder-level import: a folder the target lacks is created with its notebooks by one
//! directory import and confirmed by one listing; every notebook arrives with its source's
//! bytes, a second run writes nothing, and a run killed with SIGKILL in the middle of the
//! folder imports, then resumed, leaves exactly one of everything.

use crate::export_folders::{export, own_export, seed, start, TOKEN};

use dbxport::emulator::{EmulatorHandle, FaultConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `dbxport <args>` against `emu`, with only the environment it needs.
pub(crate) fn dbxport_cmd(emu: &EmulatorHandle, home: &Path, args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new(crate::common::dbxport_bin());
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DATABRICKS_HOST", emu.url())
        .env("DATABRICKS_TOKEN", TOKEN);
    c
}

/// `dbxport import <bundle> --json <extra>` against `emu`.
pub(crate) fn import_cmd(
    emu: &EmulatorHandle,
    home: &Path,
    bundle: &Path,
    extra: &[&str],
) -> Command {
    let mut c = dbxport_cmd(
        emu,
        home,
        &["import".as_ref(), bundle.as_os_str(), "--json".as_ref()],
    );
    c.args(extra);
    c
}

pub(crate) fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A source with the folder seed, its export, and an empty target (the same principals).
struct Fixture {
    dir: tempfile::TempDir,
    source: EmulatorHandle,
    bundle: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    seed(&seed_dir);
    let source = start(&seed_dir, FaultConfig::default());
    let bundle = dir.path().join("folders.zip");
    export(&source, dir.path(), &bundle);
    Fixture {
        dir,
        source,
        bundle,
    }
}

fn empty_target(f: &Fixture, name: &str, faults: FaultConfig) -> EmulatorHandle {
    let root = f.dir.path().join(name);
    seed(&root);
    std::fs::remove_dir_all(root.join("workspace")).unwrap();
    start(&root, faults)
}

/// Every object below `/Shared`: path → (type, language).
fn tree(emu: &EmulatorHandle) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut queue = vec!["/Shared".to_string()];
    while let Some(dir) = queue.pop() {
        let url = format!(
            "{}/api/2.0/workspace/list?path={}",
            emu.url(),
            dir.replace(' ', "%20")
        );
        let o = Command::new("curl")
            .args(["-sf", "-H", &format!("Authorization: Bearer {TOKEN}"), &url])
            .output()
            .unwrap();
        assert!(o.status.success(), "listing {dir}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for obj in v["objects"].as_array().cloned().unwrap_or_default() {
            let path = obj["path"].as_str().unwrap().to_string();
            let t = obj["object_type"].as_str().unwrap().to_string();
            if t == "DIRECTORY" {
                queue.push(path.clone());
            }
            let lang = obj["language"].as_str().unwrap_or("").to_string();
            out.insert(path, (t, lang));
        }
    }
    out
}

/// The target holds exactly the source's tree below `/Shared`, every notebook and file with
/// the bytes of the source's own export.
fn assert_same_tree(source: &EmulatorHandle, target: &EmulatorHandle, what: &str) {
    let want = tree(source);
    let got = tree(target);
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: the trees differ"
    );
    assert_eq!(want, got, "{what}: types or languages differ");
    for (path, (t, _)) in &want {
        if t == "NOTEBOOK" || t == "FILE" {
            assert!(
                own_export(source, path) == own_export(target, path),
                "{what}: {path} differs"
            );
        }
    }
}

#[test]
fn folders_arrive_in_one_directory_import_each_and_a_rerun_writes_nothing() {
    let f = fixture();
    let target = empty_target(&f, "target", FaultConfig::default());
    let o = import_cmd(&target, f.dir.path(), &f.bundle, &[])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let report = &out["report"];
    assert_same_tree(&f.source, &target, "first import");
    let folders = report["folders"].as_object().expect("report.folders");
    assert_eq!(folders["/Shared/many"], "archive (12 notebooks)");
    assert_eq!(folders["/Shared/big"], "archive (3 notebooks)");
    assert!(
        folders["/Shared/one"]
            .as_str()
            .unwrap()
            .starts_with("per object (1 notebooks)"),
        "{}",
        folders["/Shared/one"]
    );
    assert!(
        folders["/Shared/many/sub"]
            .as_str()
            .unwrap()
            .starts_with("per object (2 notebooks)"),
        "{}",
        folders["/Shared/many/sub"]
    );
    // Per-object reporting as before: every notebook is one created item.
    let created_notebooks = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "notebook" && i["outcome"] == "created")
        .count();
    assert_eq!(created_notebooks, 18);
    let stats = target.stats();
    // Two directory imports carry 15 notebooks; the other three and the two files are one
    // import each; mkdirs for /Shared and /Shared/many/sub's… parents only.
    assert_eq!(
        stats.count("POST /api/2.0/workspace/import"),
        2 + 3 + 2,
        "{:?}",
        stats.routes
    );
    assert!(
        stats.count("POST /api/2.0/workspace/mkdirs") <= 2,
        "{:?}",
        stats.routes.get("POST /api/2.0/workspace/mkdirs")
    );

    // Idempotent: a second run finds everything and writes nothing.
    target.reset_stats();
    let o = import_cmd(&target, f.dir.path(), &f.bundle, &[])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(target.stats().mutating, 0, "the re-run wrote");
    assert_same_tree(&f.source, &target, "re-run");
}

#[test]
fn kill_9_during_the_folder_imports_then_resume_leaves_one_of_everything() {
    let f = fixture();
    // Each point: directory imports the target had received when the import was killed.
    for (i, imports) in [1u64, 2].into_iter().enumerate() {
        let target = empty_target(
            &f,
            &format!("target-{i}"),
            FaultConfig {
                latency_ms: 150,
                ..FaultConfig::default()
            },
        );
        let bundle = f.dir.path().join(format!("copy-{i}.zip"));
        std::fs::copy(&f.bundle, &bundle).unwrap();
        let mut child = import_cmd(&target, f.dir.path(), &bundle, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "point {i}: the import finished before the kill"
            );
            let s = target.stats();
            // Received (in the latency wait or done), not necessarily answered.
            if s.class("workspace.import").requests > imports {
                child.kill().unwrap();
                child.wait().unwrap();
                break;
            }
            assert!(Instant::now() < deadline, "point {i}: never got there");
            std::thread::sleep(Duration::from_millis(2));
        }
        target.set_faults(FaultConfig::default()).unwrap();
        let o = import_cmd(&target, f.dir.path(), &bundle, &["--resume"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "point {i}: {}", describe(&o));
        assert_same_tree(&f.source, &target, &format!("kill point {i}"));
        target.reset_stats();
        let o = import_cmd(&target, f.dir.path(), &bundle, &[])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        assert_eq!(target.stats().mutating, 0, "point {i}: the re-run wrote");
    }
}
