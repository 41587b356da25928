//! `auth_type = databricks-cli`: a user signed in with `databricks auth login` is signed in to
//! dbxport. Without the CLI installed, its token cache (`~/.databricks/token-cache.json`) is
//! read and refreshed in place (the refresh token rotates; the file stays 0600); with it, the
//! CLI is asked (`databricks auth token`). Export and import both work, access tokens that
//! expire during the run are replaced without a failed request, and a revoked sign-in stops
//! with exit 2 and says how to sign in again. No token appears in output or in the bundle.

use crate::support::auth::*;
use dbxport::emulator::FaultConfig;

/// Each request takes a little while, so that an export outlives several 1-second tokens.
fn slow() -> FaultConfig {
    FaultConfig {
        latency_ms: 80,
        ..FaultConfig::default()
    }
}

#[test]
fn token_cache_export_and_import_with_refresh() {
    let poc = start("poc", 1, slow());
    let target = start("empty", 1, slow());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = sign_in(&poc, ADMIN);
    let dst = sign_in(&target, ADMIN);
    poc.reset_stats();
    // The poc sign-in has expired already (the first call refreshes it); the CLI keeps it under
    // the profile and the host.
    let cache = write_cache(
        h,
        &[
            ("poc-cli", cache_entry(&src, -60)),
            (poc.url(), cache_entry(&src, -60)),
            (target.url(), cache_entry(&dst, 1)),
        ],
    );
    std::fs::write(
        h.join(".databrickscfg"),
        format!(
            "[poc-cli]\nhost = {}\nauth_type = databricks-cli\n",
            poc.url()
        ),
    )
    .unwrap();
    let bundle = h.join("nb.zip");
    let mut c = dbx(h, &[]);
    c.args(export_args(&bundle)).args(["--profile", "poc-cli"]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let s = summary(&out);
    assert!(
        s["report"]["kinds"]["notebook"]["exported"]
            .as_u64()
            .unwrap()
            > 0,
        "{s}"
    );
    let st = poc.stats();
    let refreshes = st.count("POST /oidc/v1/token");
    eprintln!("token requests during the export: {refreshes}");
    assert!(
        refreshes >= 2,
        "the expired token and at least one mid-run expiry: {st:?}"
    );
    // Exit 0 says no request failed. Tokens are renewed before they expire; one held up
    // past its second (a loaded machine) is refused once and renewed, never more often.
    assert!(
        st.unauthenticated <= refreshes,
        "every refusal was followed by a renewal: {st:?}"
    );

    // The rotated refresh token replaced the spent one under both keys; still 0600.
    let after = read_cache(h);
    let by_profile = &after["tokens"]["poc-cli"];
    assert_ne!(by_profile["refresh_token"], src["refresh_token"]);
    assert_eq!(
        by_profile["refresh_token"],
        after["tokens"][poc.url()]["refresh_token"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Import with the host alone: the cache's host entry.
    let map = h.join("map.toml");
    let mut c = dbx(h, &[]);
    c.args(import_args(&bundle, &map))
        .env("DATABRICKS_HOST", target.url())
        .env("DATABRICKS_AUTH_TYPE", "databricks-cli");
    let imp = c.output().unwrap();
    assert_eq!(imp.status.code(), Some(0), "{}", describe(&imp));
    assert!(target.stats().count("POST /api/2.0/workspace/import") > 0);

    let secrets: Vec<String> = [&src, &dst]
        .iter()
        .flat_map(|t| {
            [
                t["access_token"].as_str().unwrap().to_string(),
                t["refresh_token"].as_str().unwrap().to_string(),
            ]
        })
        .chain([
            by_profile["access_token"].as_str().unwrap().to_string(),
            by_profile["refresh_token"].as_str().unwrap().to_string(),
        ])
        .collect();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for o in [&out, &imp] {
        assert_absent(&o.stdout, &secrets, "stdout");
        assert_absent(&o.stderr, &secrets, "stderr");
    }
    for (path, bytes) in all_files(h) {
        if path != cache {
            assert_absent(&bytes, &secrets, &path.display().to_string());
        }
    }
}

#[test]
fn a_revoked_sign_in_stops_with_exit_2_and_says_how_to_sign_in_again() {
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let tokens = sign_in(&poc, ADMIN);
    write_cache(h, &[(poc.url(), cache_entry(&tokens, 3000))]);
    assert!(poc.revoke_oauth(ADMIN) >= 2);
    poc.reset_stats();
    let bundle = h.join("x.zip");
    let mut c = dbx(h, &[]);
    c.args(export_args(&bundle))
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_AUTH_TYPE", "databricks-cli");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(
        err.contains(&format!(
            "hint: sign in again with `databricks auth login --host {}`",
            poc.url()
        )),
        "{err}"
    );
    assert_absent(
        &out.stderr,
        &[
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
        ],
        "stderr",
    );
    assert!(!bundle.exists());
    // One refused API call, one refused refresh: no retry storm.
    let st = poc.stats();
    assert_eq!(st.count("POST /oidc/v1/token"), 1, "{st:?}");
    assert!(st.unauthenticated <= 2, "{st:?}");
}

#[test]
fn no_sign_in_for_the_host_says_what_to_run() {
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_cache(
        h,
        &[(
            "https://other.example",
            serde_json::json!({"access_token": "x"}),
        )],
    );
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("x.zip")))
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_AUTH_TYPE", "databricks-cli");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no sign-in for"), "{err}");
    assert!(
        err.contains(&format!("databricks auth login --host {}", poc.url())),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn the_installed_cli_is_asked_for_the_token() {
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let tokens = sign_in(&poc, ADMIN);
    poc.reset_stats();
    // A stand-in for the `databricks` binary: records its arguments, prints what
    // `databricks auth token` prints.
    let answer = serde_json::json!({
        "access_token": tokens["access_token"],
        "token_type": "Bearer",
        "expiry": rfc3339_in(3000),
    });
    std::fs::write(h.join("answer.json"), answer.to_string()).unwrap();
    let cli = h.join("databricks");
    std::fs::write(
        &cli,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{0}/args.txt'\ncat '{0}/answer.json'\n",
            h.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        h.join(".databrickscfg"),
        format!(
            "[DEFAULT]\nhost = {}\nauth_type = databricks-cli\ndatabricks_cli_path = {}\n",
            poc.url(),
            cli.display()
        ),
    )
    .unwrap();
    let bundle = h.join("nb.zip");
    let out = dbx(h, &[]).args(export_args(&bundle)).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let args = std::fs::read_to_string(h.join("args.txt")).unwrap();
    assert_eq!(
        args.lines().next(),
        Some(format!("auth token --host {}", poc.url()).as_str())
    );
    assert!(
        !h.join(".databricks/token-cache.json").exists(),
        "nothing written beside the CLI"
    );
    assert_eq!(poc.stats().count("POST /oidc/v1/token"), 0);
}
