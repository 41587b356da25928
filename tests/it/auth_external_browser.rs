//! `--auth-type external-browser`: user-to-machine sign-in with the authorization code and
//! PKCE. The test plays the browser over HTTP: it reads the address dbxport prints, approves
//! as a user of the seed, and lets the emulator redirect to dbxport's loopback listener. The
//! sign-in is kept in the Databricks CLI's token cache (0600), so the next run needs no
//! browser; tokens that expire during a run are refreshed; a refused sign-in stops with exit 2.

use crate::support::auth::*;
use dbxport::emulator::FaultConfig;

fn slow() -> FaultConfig {
    FaultConfig {
        latency_ms: 80,
        ..FaultConfig::default()
    }
}

#[test]
fn sign_in_in_a_browser_then_export_and_import() {
    let poc = start("poc", 1, slow());
    let target = start("empty", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let bundle = h.join("nb.zip");
    let browser = [
        "--auth-type",
        "external-browser",
        "--oauth-redirect-port",
        "0",
    ];

    let mut c = dbx(h, &[]);
    c.args(export_args(&bundle))
        .args(browser)
        .env("DATABRICKS_HOST", poc.url());
    let (out, asked) = run_with_browser(c, Some(ADMIN));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(asked, 1, "one sign-in");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("code_challenge_method=S256"), "{err}");
    let st = poc.stats();
    assert!(
        st.count("POST /oidc/v1/token") >= 2,
        "the code, then refreshes: {st:?}"
    );
    // Exit 0 says no request failed (a token held up past its second is renewed once).
    assert!(
        st.unauthenticated < st.count("POST /oidc/v1/token"),
        "{st:?}"
    );

    // Kept in the CLI's cache, under the host, 0600; nothing else written but the bundle.
    let cache = read_cache(h);
    let entry = &cache["tokens"][poc.url()];
    let access = entry["access_token"].as_str().unwrap().to_string();
    let refresh = entry["refresh_token"].as_str().unwrap().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let p = h.join(".databricks/token-cache.json");
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // The next run signs in from the cache: no address shown.
    let bundle2 = h.join("nb2.zip");
    let mut c = dbx(h, &[]);
    c.args(export_args(&bundle2))
        .args(browser)
        .env("DATABRICKS_HOST", poc.url());
    let (again, asked) = run_with_browser(c, Some(ADMIN));
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert_eq!(asked, 0, "{}", describe(&again));

    // Import: a sign-in to the target.
    let map = h.join("map.toml");
    let mut c = dbx(h, &[]);
    c.args(import_args(&bundle, &map))
        .args(browser)
        .env("DATABRICKS_HOST", target.url());
    let (imp, asked) = run_with_browser(c, Some(ADMIN));
    assert_eq!(imp.status.code(), Some(0), "{}", describe(&imp));
    assert_eq!(asked, 1);
    assert!(target.stats().count("POST /api/2.0/workspace/import") > 0);
    let cache = read_cache(h);
    assert!(cache["tokens"][target.url()]["refresh_token"].is_string());
    assert!(
        cache["tokens"][poc.url()].is_object(),
        "the other sign-in is kept"
    );

    let secrets: Vec<String> = [&cache["tokens"][poc.url()], &cache["tokens"][target.url()]]
        .iter()
        .flat_map(|e| {
            [
                e["access_token"].as_str().unwrap().to_string(),
                e["refresh_token"].as_str().unwrap().to_string(),
            ]
        })
        .chain([access, refresh])
        .collect();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for o in [&out, &again, &imp] {
        assert_absent(&o.stdout, &secrets, "stdout");
        assert_absent(&o.stderr, &secrets, "stderr");
    }
    for (path, bytes) in all_files(h) {
        if !path.ends_with(".databricks/token-cache.json") {
            assert_absent(&bytes, &secrets, &path.display().to_string());
        }
    }
}

#[test]
fn a_refused_sign_in_stops_with_exit_2() {
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("x.zip")))
        .args([
            "--auth-type",
            "external-browser",
            "--oauth-redirect-port",
            "0",
        ])
        .env("DATABRICKS_HOST", poc.url());
    let (out, asked) = run_with_browser(c, None);
    assert_eq!(asked, 1);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access_denied"), "{err}");
    assert!(
        err.contains("hint: run the command again and allow the access"),
        "{err}"
    );
    assert!(!h.join(".databricks/token-cache.json").exists());
}

#[test]
fn a_revoked_sign_in_asks_the_user_again() {
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let tokens = sign_in(&poc, ADMIN);
    write_cache(h, &[(poc.url(), cache_entry(&tokens, 3000))]);
    poc.revoke_oauth(ADMIN);
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("x.zip")))
        .args([
            "--auth-type",
            "external-browser",
            "--oauth-redirect-port",
            "0",
        ])
        .env("DATABRICKS_HOST", poc.url());
    let (out, asked) = run_with_browser(c, Some(ADMIN));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        asked, 1,
        "the refused token, then the spent refresh token, then the browser"
    );
    let cache = read_cache(h);
    assert_ne!(
        cache["tokens"][poc.url()]["refresh_token"],
        tokens["refresh_token"]
    );
}
