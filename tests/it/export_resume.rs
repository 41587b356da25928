//! Interrupted exports: `kill -9` in the middle, then `--resume`, gives the same payload as an
//! uninterrupted run, and the emulator's request counts show that objects the first run had
//! finished were not fetched again; Ctrl-C exits 130 with a hint; the output path never holds
//! anything but a complete bundle.

use crate::support::export as support;

use dbxport::emulator::FaultConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

fn args<'a>(bundle: &'a str, recipient: &'a str) -> Vec<&'a str> {
    vec![
        "-o",
        bundle,
        "-r",
        recipient,
        "--secrets-cluster",
        POC_CLUSTER,
        "--warehouse-id",
        POC_WAREHOUSE,
        "--json",
    ]
}

/// Kinds of the records the interrupted run had staged.
fn staged_kinds(partial: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (kind, _) in staged(partial) {
        *out.entry(kind).or_default() += 1;
    }
    out
}

/// Kind and name of every record the interrupted run had staged.
fn staged(partial: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(bags) = std::fs::read_dir(partial) else {
        return out;
    };
    for bag in bags {
        let log = bag.unwrap().path().join(".dbxport-staging/records.jsonl");
        let Ok(bytes) = std::fs::read(&log) else {
            continue;
        };
        // A record is committed by writing its line whole: a line cut short (being written)
        // is not one yet.
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if line.last() != Some(&b'\n') {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            out.push((
                v["kind"].as_str().unwrap().to_string(),
                v["name"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Waits until the running export has staged `n` objects.
fn wait_for_staged(partial: &Path, n: u64, child: &mut std::process::Child) {
    let t0 = Instant::now();
    while staged_kinds(partial).values().sum::<u64>() < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the export ended ({status}) before it could be interrupted");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the export made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_then_resume_fetches_only_what_is_missing() {
    let emu = start_poc(FaultConfig {
        latency_ms: 30,
        ..FaultConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(tmp.path());
    let bundle = tmp.path().join("poc.zip");
    let partial = tmp.path().join("poc.zip.partial");
    let b = bundle.to_str().unwrap().to_string();

    let mut child = export_cmd(&emu, tmp.path(), &args(&b, &recipient))
        .args(["--concurrency", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_staged(&partial, 80, &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !bundle.exists(),
        "an interrupted export left a file at the output path"
    );
    let held = staged_kinds(&partial);
    let held_content =
        held.get("notebook").copied().unwrap_or(0) + held.get("file").copied().unwrap_or(0);
    let held_perms = held.get("permissions").copied().unwrap_or(0);
    // A repo's export scans its notebooks (one SOURCE export each, nothing stored), so every
    // repo not held costs as many export requests as it has notebooks.
    let held_repos: Vec<String> = staged(&partial)
        .into_iter()
        .filter(|(k, _)| k == "repo")
        .map(|(_, n)| n)
        .collect();
    let repo_scans: u64 = read_tree(&poc_seed())
        .repo_notebooks
        .iter()
        .filter(|(repo, _)| !held_repos.contains(repo))
        .map(|(_, n)| n)
        .sum();
    assert!(
        held_content + held_perms > 0,
        "nothing was staged before the kill: {held:?}"
    );

    // Without --resume the staging folder is refused, before any request.
    emu.reset_stats();
    let refused = run(export_cmd(&emu, tmp.path(), &args(&b, &recipient)));
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    assert_eq!(emu.stats().total, 0);

    let resumed = run({
        let mut c = export_cmd(&emu, tmp.path(), &args(&b, &recipient));
        c.arg("--resume");
        c
    });
    assert_eq!(resumed.status.code(), Some(0), "{}", describe(&resumed));
    assert!(bundle.exists() && !partial.exists());
    let s = summary(&resumed);
    assert_eq!(s["run"]["resumed"], true);
    let found = |k: &str| s["report"]["kinds"][k]["found"].as_u64().unwrap_or(0);
    let stats = emu.stats();
    // Finished objects were not fetched again: each missing notebook or file costs at most one
    // export, and a folder archive (fetched only for two or more missing notebooks) fewer.
    let missing = found("notebook") + found("file") - held_content;
    let folders = s["run"]["folders"].as_object().expect("run.folders");
    let archives = folders
        .values()
        .filter(|h| h.as_str().unwrap().starts_with("archive"))
        .count() as u64;
    // A directory export the workspace refused cost its request too.
    let refused = folders
        .values()
        .filter(|h| {
            let h = h.as_str().unwrap();
            h.contains("the directory export failed") || h.contains("over the export size limit")
        })
        .count() as u64;
    let exports = stats.count("GET /api/2.0/workspace/export");
    assert!(
        exports <= missing + repo_scans + refused - archives && exports >= archives + repo_scans,
        "{exports} exports for {missing} missing, {archives} archives, held {held:?} (repos {held_repos:?}), folders {folders:?}, report {}",
        s["report"]["kinds"]
    );
    assert_eq!(
        stats.count("GET /api/2.0/permissions/{object_type}/{object_id}"),
        found("permissions") - held_perms,
        "held {held:?}"
    );
    assert!(s["run"]["reused"].as_u64().unwrap() >= held_content + held_perms);
    for (k, c) in s["report"]["kinds"].as_object().unwrap() {
        assert_eq!(c["failed"], 0, "{k}");
    }

    // The same payload as an uninterrupted export.
    emu.set_faults(FaultConfig::default()).unwrap();
    let clean = tmp.path().join("clean.zip");
    let c = clean.to_str().unwrap().to_string();
    let out = run(export_cmd(&emu, tmp.path(), &args(&c, &recipient)));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let a = opened_payload(&bundle, &key);
    let b2 = opened_payload(&clean, &key);
    assert_eq!(a.keys().collect::<Vec<_>>(), b2.keys().collect::<Vec<_>>());
    for (p, bytes) in &a {
        assert!(b2[p] == *bytes, "{p} differs after resume");
    }
    // The resumed report counts every object once.
    let ra: serde_json::Value =
        serde_json::from_slice(&entries(&bundle)["export-report.json"]).unwrap();
    let rc: serde_json::Value =
        serde_json::from_slice(&entries(&clean)["export-report.json"]).unwrap();
    assert_eq!(ra["kinds"], rc["kinds"]);
    assert_eq!(ra["must_recreate"], rc["must_recreate"]);
}

#[cfg(unix)]
#[test]
fn ctrl_c_exits_130_and_resume_finishes() {
    let emu = start_poc(FaultConfig {
        latency_ms: 30,
        ..FaultConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let (_key, recipient) = keypair(tmp.path());
    let bundle = tmp.path().join("poc.zip");
    let partial = tmp.path().join("poc.zip.partial");
    let b = bundle.to_str().unwrap().to_string();
    let mut child = export_cmd(&emu, tmp.path(), &args(&b, &recipient))
        .args(["--concurrency", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_staged(&partial, 40, &mut child);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--resume"), "{err}");
    assert!(!bundle.exists());
    let resumed = run({
        let mut c = export_cmd(&emu, tmp.path(), &args(&b, &recipient));
        c.arg("--resume");
        c
    });
    assert_eq!(resumed.status.code(), Some(0), "{}", describe(&resumed));
    assert!(bundle.exists() && !partial.exists());
}

// Resuming with another key used to exit 0 with a bundle whose values opened only with the
// first key (and, with --envelope, a bundle that opened with neither key alone).
#[test]
fn resume_with_other_recipients_is_refused() {
    let emu = start_poc(FaultConfig {
        latency_ms: 30,
        ..FaultConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let (key_a, a) = keypair(tmp.path());
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_key_b, b) = keypair(&other);
    let bundle = tmp.path().join("poc.zip");
    let partial = tmp.path().join("poc.zip.partial");
    let out = bundle.to_str().unwrap().to_string();

    let mut child = export_cmd(&emu, tmp.path(), &args(&out, &a))
        .args(["--concurrency", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_staged(&partial, 20, &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    emu.reset_stats();
    let refused = run({
        let mut c = export_cmd(&emu, tmp.path(), &args(&out, &b));
        c.arg("--resume");
        c
    });
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("E503") && err.contains("sealed secret values to"),
        "{err}"
    );
    assert!(err.contains("hint: resume with the same"), "{err}");
    assert!(!bundle.exists() && partial.exists());

    // The staging folder is untouched: resuming with the first key finishes it.
    let resumed = run({
        let mut c = export_cmd(&emu, tmp.path(), &args(&out, &a));
        c.arg("--resume");
        c
    });
    assert_eq!(resumed.status.code(), Some(0), "{}", describe(&resumed));
    assert!(!opened_payload(&bundle, &key_a).is_empty());
}

/// The export report of a bundle (the tag file, which holds no timings).
fn bundle_report(zip: &Path) -> serde_json::Value {
    serde_json::from_slice(&entries(zip)["export-report.json"]).unwrap()
}

#[test]
fn the_report_after_resume_equals_an_uninterrupted_runs() {
    // Models are slow and everything else is not, so the kill lands in the models stage
    // after a chosen number of versions are staged.
    let emu = start_poc(FaultConfig {
        latency_ms: 40,
        families: vec!["mlflow".into(), "artifacts".into()],
        ..FaultConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let (_key, recipient) = keypair(tmp.path());
    let clean = tmp.path().join("clean.zip");
    let c = clean.to_str().unwrap().to_string();
    let out = run(export_cmd(&emu, tmp.path(), &args(&c, &recipient)));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let want = bundle_report(&clean);
    // 16 of the workspace registry's versions, 10 of Unity Catalog's.
    assert_eq!(want["kinds"]["model_artifact"]["found"], 26, "{want}");
    assert!(
        want["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("model version ")),
        "the fixture gives model notices (soil-carbon-regressor v2's run is deleted): {want}"
    );

    // Killed once one version is staged, and once all but one are.
    for versions in [1u64, 4] {
        let bundle = tmp.path().join(format!("poc{versions}.zip"));
        let partial = tmp.path().join(format!("poc{versions}.zip.partial"));
        let b = bundle.to_str().unwrap().to_string();
        let mut child = export_cmd(&emu, tmp.path(), &args(&b, &recipient))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while staged_kinds(&partial)
            .get("model_version")
            .copied()
            .unwrap_or(0)
            < versions
        {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the export ended ({status}) before it could be interrupted");
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let held = staged_kinds(&partial);
        assert!(
            held.get("model_version").copied().unwrap_or(0) < 5,
            "the kill came after the last version: {held:?}"
        );
        let resumed = run({
            let mut c = export_cmd(&emu, tmp.path(), &args(&b, &recipient));
            c.arg("--resume");
            c
        });
        assert_eq!(resumed.status.code(), Some(0), "{}", describe(&resumed));
        let got = bundle_report(&bundle);
        for field in [
            "format",
            "version",
            "host",
            "workspace_id",
            "kinds",
            "issues",
            "notices",
            "must_recreate",
        ] {
            assert_eq!(
                got[field], want[field],
                "{field} after a kill with {versions} version(s) staged (held {held:?})"
            );
        }
        // The summary printed by the resumed run is the same report.
        let s = summary(&resumed);
        assert_eq!(s["report"]["kinds"], want["kinds"]);
        assert_eq!(s["report"]["notices"], want["notices"]);
    }
}
