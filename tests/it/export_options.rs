//! Export options: secret values without recipients (never in plaintext, said loudly), the
//! refused-get path without a cluster, selection by path, glob, user and kind, the envelope,
//! and options that are refused before any request is sent.

use crate::support::export as support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::*;

fn export(
    emu: &dbxport::emulator::EmulatorHandle,
    dir: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    run({
        let mut c = export_cmd(emu, dir, &[]);
        c.args(args);
        c
    })
}

#[test]
fn without_recipients_secret_values_are_not_exported_and_the_run_says_so() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("s.zip");
    let out = export(
        &emu,
        tmp.path(),
        &[
            "--include",
            "secrets",
            "--secrets-cluster",
            POC_CLUSTER,
            "--json",
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SECRET VALUES ARE NOT EXPORTED"), "{err}");
    // No value was read at all.
    assert_eq!(emu.stats().count("GET /api/2.0/secrets/get"), 0);
    assert_eq!(emu.stats().count("POST /api/1.2/commands/execute"), 0);
    let e = entries(&bundle);
    assert!(
        !e.keys().any(|k| k.ends_with(".age")),
        "a sealed file without recipients"
    );
    let recs = records(&e);
    let secrets = by_name(&recs, "secret");
    assert_eq!(secrets.len(), 10);
    for (name, r) in &secrets {
        assert_eq!(r["stored"], serde_json::json!([]), "{name}");
        assert!(r["notes"][0]
            .as_str()
            .unwrap()
            .contains("never writes secret values in plaintext"));
    }
    assert_eq!(by_name(&recs, "secret_scope").len(), 3);
    let s = summary(&out);
    assert_eq!(s["report"]["kinds"]["secret"]["not_exported"], 10);
    assert!(s["report"]["notices"]
        .to_string()
        .contains("SECRET VALUES ARE NOT EXPORTED"));
}

#[test]
fn refused_get_without_a_cluster_is_reported_with_a_hint() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let (_key, recipient) = keypair(tmp.path());
    let bundle = tmp.path().join("s.zip");
    let out = export(
        &emu,
        tmp.path(),
        &[
            "--include",
            "secrets",
            "-r",
            &recipient,
            "--json",
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let s = summary(&out);
    assert_eq!(s["report"]["kinds"]["secret"]["failed"], 10);
    let issues = s["report"]["issues"].as_array().unwrap();
    assert!(
        issues
            .iter()
            .all(|i| i["reason"].as_str().unwrap().contains("--secrets-cluster")),
        "{issues:?}"
    );
    // Asked once, not once per key.
    assert_eq!(emu.stats().count("GET /api/2.0/secrets/get"), 1);
    // The keys are still in the bundle, with the reason.
    let recs = records(&entries(&bundle));
    assert_eq!(by_name(&recs, "secret").len(), 10);
}

#[test]
fn selection_by_path_glob_and_kind() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("shared.zip");
    let out = export(
        &emu,
        tmp.path(),
        &[
            "--include",
            "workspace",
            "--path",
            "/Shared",
            "--exclude",
            "/Shared/etl",
            "--exclude",
            "**/*.csv",
            "--json",
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let recs = records(&entries(&bundle));
    let kinds: BTreeSet<&str> = recs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["directory", "file", "notebook"].into());
    for r in &recs {
        let name = r["name"].as_str().unwrap();
        assert!(name == "/Shared" || name.starts_with("/Shared/"), "{name}");
        assert!(!name.starts_with("/Shared/etl"), "{name}");
        assert!(!name.ends_with(".csv"), "{name}");
    }
    assert!(by_name(&recs, "notebook").contains_key("/Shared/common/utils"));
    assert!(by_name(&recs, "directory").contains_key("/Shared/archive"));
    // The excluded folder was not even listed.
    let stats = emu.stats();
    assert_eq!(
        stats.count("GET /api/2.0/permissions/{object_type}/{object_id}"),
        0
    );
    let tree = read_tree(&support::poc_seed());
    let shared_dirs = tree
        .dirs
        .iter()
        .filter(|d| d.starts_with("/Shared") && !d.starts_with("/Shared/etl"))
        .count();
    assert_eq!(
        stats.count("GET /api/2.0/workspace/list") as usize,
        shared_dirs
    );
}

#[test]
fn user_selection_takes_the_home_folders_and_owned_jobs() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("priya.zip");
    let user = "priya.raman@sciencehub.example";
    let out = export(
        &emu,
        tmp.path(),
        &[
            "--user",
            user,
            "--include",
            "workspace,job,permissions",
            "--json",
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let e = entries(&bundle);
    let recs = records(&e);
    let jobs: BTreeSet<String> = by_name(&recs, "job").into_keys().collect();
    // One she created, one whose ownership was transferred to her.
    assert_eq!(
        jobs,
        [
            "data-quality-checks".to_string(),
            "legacy-export (paused)".to_string()
        ]
        .into()
    );
    for r in recs
        .iter()
        .filter(|r| r["kind"] == "notebook" || r["kind"] == "directory")
    {
        assert!(
            r["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/Users/{user}")),
            "{}",
            r["name"]
        );
    }
    assert!(!by_name(&recs, "notebook").is_empty());
    for r in recs
        .iter()
        .filter(|r| r["kind"] == "permissions" && r["meta"]["request_object_type"] == "jobs")
    {
        let p: Value = serde_json::from_slice(primary(&e, r)).unwrap();
        assert!(
            p.to_string().contains("IS_OWNER") && p.to_string().contains(user),
            "{p}"
        );
    }
}

#[test]
fn envelope_wraps_the_whole_bundle() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(tmp.path());
    let bundle = tmp.path().join("env.zip.age");
    let out = export(
        &emu,
        tmp.path(),
        &[
            "--include",
            "secrets,job",
            "--secrets-cluster",
            POC_CLUSTER,
            "-r",
            &recipient,
            "--envelope",
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let bytes = std::fs::read(&bundle).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    let verify = std::process::Command::new(crate::common::dbxport_bin())
        .args([
            "verify",
            bundle.to_str().unwrap(),
            "-i",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
}

// An empty recipients file used to count as "no recipient": exit 0, every secret value
// dropped, and a warning saying no file was given.
#[test]
fn a_recipients_file_without_a_recipient_is_refused() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let comments = tmp.path().join("comments.txt");
    std::fs::write(&comments, b"# team keys\n\n   \n# age1... (to be added)\n").unwrap();
    let bundle = tmp.path().join("out.zip");
    for file in [&empty, &comments] {
        let out = export(
            &emu,
            tmp.path(),
            &[
                "--recipients-file",
                file.to_str().unwrap(),
                "-o",
                bundle.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(file.to_str().unwrap()), "{err}");
        assert!(
            err.contains("holds no recipient") && err.contains("hint:"),
            "{err}"
        );
        assert!(!bundle.exists());
        assert!(!tmp.path().join("out.zip.partial").exists());
    }
    assert_eq!(emu.stats().total, 0, "a refused option sent a request");
}

#[test]
fn bad_options_are_refused_before_any_request() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("exists.zip");
    std::fs::write(&existing, b"x").unwrap();
    let fresh = tmp.path().join("fresh.zip");
    let aged = tmp.path().join("e.zip.age");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-o", existing.to_str().unwrap()], "already exists"),
        (
            vec!["-o", fresh.to_str().unwrap(), "--model", "[x"],
            "--model [x",
        ),
        (
            vec!["-o", fresh.to_str().unwrap(), "--include", "nonsense"],
            "not a kind",
        ),
        (
            vec!["-o", fresh.to_str().unwrap(), "--exclude", "relative/glob"],
            "a workspace path glob starts with / or *",
        ),
        (
            vec!["-o", fresh.to_str().unwrap(), "--notebook-format", "pdf"],
            "not a notebook format",
        ),
        (
            vec!["-o", aged.to_str().unwrap(), "--envelope"],
            "needs recipients",
        ),
        (vec!["-o", aged.to_str().unwrap()], "promises an envelope"),
        (
            vec!["-o", fresh.to_str().unwrap(), "--exclude", "/Users/[x"],
            "--exclude /Users/[x",
        ),
    ];
    for (args, says) in cases {
        let out = export(&emu, tmp.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(emu.stats().total, 0, "a refused option sent a request");
    assert!(!fresh.exists());
}

#[test]
fn no_warehouse_leaves_table_acls_out_with_a_reason() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("g.zip");
    let out = export(
        &emu,
        tmp.path(),
        &[
            "--include",
            "grants",
            "--json",
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let s = summary(&out);
    assert_eq!(s["report"]["kinds"]["hive_grants"]["not_exported"], 1);
    assert!(s["report"]["issues"].to_string().contains("--warehouse-id"));
    // The catalog, two schemas and the two registered models (securable type `function`).
    assert_eq!(s["report"]["kinds"]["uc_grants"]["exported"], 5);
    assert_eq!(emu.stats().count("POST /api/2.0/sql/statements"), 0);
}

#[test]
fn a_passphrase_from_the_environment_seals_values() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("p.zip");
    let pass = "correct horse battery staple";
    let out = run({
        let mut c = export_cmd(&emu, tmp.path(), &[]);
        c.env("DBXPORT_PASSPHRASE", pass).args([
            "--include",
            "secrets",
            "--secrets-cluster",
            POC_CLUSTER,
            "--passphrase",
            "-o",
            bundle.to_str().unwrap(),
        ]);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // The passphrase is not in the process arguments, the output or the bundle.
    let bytes = std::fs::read(&bundle).unwrap();
    assert!(!bytes.windows(pass.len()).any(|w| w == pass.as_bytes()));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(pass));
    let inv: Value = serde_json::from_slice(&entries(&bundle)["dbxport.json"]).unwrap();
    assert_eq!(inv["sealing"]["passphrase"], true);
    let verify = std::process::Command::new(crate::common::dbxport_bin())
        .env("DBXPORT_PASSPHRASE", pass)
        .args(["verify", bundle.to_str().unwrap(), "--passphrase"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("sealed files opened"));
    // Without a terminal and without the variable, asking for a passphrase fails clearly.
    let out = run({
        let mut c = export_cmd(&emu, tmp.path(), &[]);
        c.args(["--include", "secrets", "--passphrase", "-o"])
            .arg(tmp.path().join("q.zip"));
        c
    });
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DBXPORT_PASSPHRASE"));
}
