//! Connecting the export to a workspace: a profile of the config file, environment variables
//! (every other export test), OAuth M2M with a service principal; a wrong token fails at once
//! with a clear message, exit 2, one request and nothing left on disk.

use crate::support::export as support;

use support::*;

const SP_ID: &str = "9c7d2e14-5b3a-4f68-a1d0-3e8b6c2f9a71";
const SP_SECRET: &str = "dose-poc-fake-secret-etl-pipeline-3b8e";

#[test]
fn profile_of_the_config_file() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join(".databrickscfg"),
        format!(
            "[DEFAULT]\nhost = https://wrong.example\ntoken = nope\n\n[poc]\nhost = {}\ntoken = {}\n",
            emu.url(),
            emu.admin_token()
        ),
    )
    .unwrap();
    let bundle = tmp.path().join("jobs.zip");
    let mut c = export_cmd(&emu, tmp.path(), &[]);
    c.env_remove("DATABRICKS_HOST")
        .env_remove("DATABRICKS_TOKEN")
        .args(["--profile", "poc", "--include", "job", "--json", "-o"])
        .arg(&bundle);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let s = summary(&out);
    assert_eq!(s["report"]["kinds"]["job"]["exported"], 10);
    assert_eq!(s["report"]["host"].as_str(), Some(emu.url()));
}

#[test]
fn oauth_m2m_service_principal() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("sp.zip");
    let mut c = export_cmd(&emu, tmp.path(), &[]);
    c.env_remove("DATABRICKS_TOKEN")
        .env("DATABRICKS_CLIENT_ID", SP_ID)
        .env("DATABRICKS_CLIENT_SECRET", SP_SECRET)
        .args([
            "--include",
            "job,notebook",
            "--path",
            "/Shared",
            "--json",
            "-o",
        ])
        .arg(&bundle);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stats = emu.stats();
    assert!(stats.count("POST /oidc/v1/token") >= 1, "{stats:?}");
    assert_eq!(stats.unauthenticated, 0);
    let s = summary(&out);
    assert!(
        s["report"]["kinds"]["notebook"]["exported"]
            .as_u64()
            .unwrap()
            > 0,
        "{s}"
    );
    // The client secret is nowhere in what was written or printed.
    let all = [
        out.stdout.clone(),
        out.stderr.clone(),
        std::fs::read(&bundle).unwrap(),
    ]
    .concat();
    assert!(!all
        .windows(SP_SECRET.len())
        .any(|w| w == SP_SECRET.as_bytes()));
}

#[test]
fn wrong_token_fails_fast_with_a_clear_message() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("x.zip");
    let mut c = export_cmd(&emu, tmp.path(), &[]);
    c.env("DATABRICKS_TOKEN", "dapi-not-a-real-token")
        .arg("-o")
        .arg(&bundle);
    let t0 = std::time::Instant::now();
    let out = run(c);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        !err.contains("dapi-not-a-real-token"),
        "the token is printed: {err}"
    );
    let stats = emu.stats();
    assert_eq!(
        stats.total, 1,
        "a refused token must not cause a retry storm: {stats:?}"
    );
    assert!(!bundle.exists());
    assert!(
        !tmp.path().join("x.zip.partial").exists(),
        "nothing is staged before the workspace answers"
    );
}
