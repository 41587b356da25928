//! Azure sign-in against the emulator's Entra ID tenant: `azure-client-secret` (client
//! credentials, the tenant read from the workspace's `/aad/auth`, the service-management token
//! and workspace resource id headers), `azure-msi` (the `IDENTITY_ENDPOINT` flavour and the
//! instance metadata service), and `azure-cli` (`az` is a script on PATH printing what
//! `az account get-access-token` prints). Export and import succeed with each; a wrong secret
//! or a signed-out `az` stops with exit 2 and a hint; no token or secret is printed or written.

use crate::support::auth::*;
use dbxport::emulator::{EmulatorHandle, FaultConfig};
use serde_json::{json, Value};
use std::path::Path;

const TENANT: &str = "5f3c1a2b-8e4d-4c6f-9a7b-0d1e2f3a4b5c";
const POC_RESOURCE: &str = "/subscriptions/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/resourceGroups/rg-sciencehub/providers/Microsoft.Databricks/workspaces/poc";
const EMPTY_RESOURCE: &str = "/subscriptions/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/resourceGroups/rg-sciencehub/providers/Microsoft.Databricks/workspaces/prod";
const POC_SECRET: &str = "entra-poc-fake-secret-etl-7a1f9c";
const EMPTY_SECRET: &str = "entra-empty-fake-secret-etl-5e20b7";

fn both() -> (EmulatorHandle, EmulatorHandle) {
    (
        start("poc", 3600, FaultConfig::default()),
        start("empty", 3600, FaultConfig::default()),
    )
}

fn export_then_import(
    h: &Path,
    poc: &EmulatorHandle,
    target: &EmulatorHandle,
    env_src: &[(&str, String)],
    env_dst: &[(&str, String)],
) -> Vec<std::process::Output> {
    let bundle = h.join("nb.zip");
    let mut c = dbx(h, &[]);
    c.args(export_args(&bundle))
        .env("DATABRICKS_HOST", poc.url());
    for (k, v) in env_src {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        summary(&out)["report"]["kinds"]["notebook"]["exported"]
            .as_u64()
            .unwrap()
            > 0
    );
    let map = h.join("map.toml");
    let mut c = dbx(h, &[]);
    c.args(import_args(&bundle, &map))
        .env("DATABRICKS_HOST", target.url());
    for (k, v) in env_dst {
        c.env(k, v);
    }
    let imp = c.output().unwrap();
    assert_eq!(imp.status.code(), Some(0), "{}", describe(&imp));
    assert!(target.stats().count("POST /api/2.0/workspace/import") > 0);
    vec![out, imp]
}

fn no_secret_anywhere(h: &Path, outs: &[std::process::Output], secrets: &[&str]) {
    for o in outs {
        assert_absent(&o.stdout, secrets, "stdout");
        assert_absent(&o.stderr, secrets, "stderr");
    }
    for (path, bytes) in all_files(h) {
        assert_absent(&bytes, secrets, &path.display().to_string());
    }
}

#[test]
fn client_secret_service_principal() {
    let (poc, target) = both();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sp = |emu: &EmulatorHandle, secret: &str, resource: &str| {
        vec![
            ("ARM_CLIENT_ID", SP.to_string()),
            ("ARM_CLIENT_SECRET", secret.to_string()),
            ("AZURE_AUTHORITY_HOST", emu.url().to_string()),
            ("DATABRICKS_AZURE_RESOURCE_ID", resource.to_string()),
        ]
    };
    // The source names its tenant; the target's is read from its /aad/auth redirect.
    let mut src = sp(&poc, POC_SECRET, POC_RESOURCE);
    src.push(("ARM_TENANT_ID", TENANT.to_string()));
    let outs = export_then_import(
        h,
        &poc,
        &target,
        &src,
        &sp(&target, EMPTY_SECRET, EMPTY_RESOURCE),
    );
    let tok = "POST /{tenant}/oauth2/token";
    assert_eq!(
        poc.stats().count(tok),
        2,
        "the workspace token and the management token"
    );
    assert_eq!(poc.stats().count("GET /aad/auth"), 0);
    assert_eq!(target.stats().count("GET /aad/auth"), 1);
    for emu in [&poc, &target] {
        let (mgmt, rid) = emu.azure_headers_seen();
        let calls = emu.stats().read + emu.stats().mutating;
        assert!(mgmt > 0 && rid > 0, "{mgmt} {rid} of {calls}");
        assert_eq!(emu.stats().unauthenticated, 0);
    }
    no_secret_anywhere(h, &outs, &[POC_SECRET, EMPTY_SECRET, "eyJ0eXAiOiJKV1Qi"]);
}

#[test]
fn a_wrong_client_secret_exits_2_with_a_hint() {
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("x.zip")))
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_AUTH_TYPE", "azure-client-secret")
        .env("ARM_CLIENT_ID", SP)
        .env("ARM_CLIENT_SECRET", "entra-wrong-secret-0000")
        .env("ARM_TENANT_ID", TENANT)
        .env("AZURE_AUTHORITY_HOST", poc.url());
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AADSTS7000215"), "{err}");
    assert!(
        err.contains("hint: check ARM_CLIENT_ID, ARM_CLIENT_SECRET"),
        "{err}"
    );
    assert_absent(&out.stderr, &["entra-wrong-secret-0000"], "stderr");
    assert_eq!(
        poc.stats().count("POST /{tenant}/oauth2/token"),
        1,
        "no retry storm"
    );
}

#[test]
fn managed_identity_through_identity_endpoint_and_imds() {
    let (poc, target) = both();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = vec![
        ("ARM_USE_MSI", "true".to_string()),
        ("DATABRICKS_AZURE_RESOURCE_ID", POC_RESOURCE.to_string()),
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", poc.url())),
        (
            "IDENTITY_HEADER",
            "poc-fake-identity-header-4d2e81".to_string(),
        ),
    ];
    let dst = vec![
        ("ARM_USE_MSI", "true".to_string()),
        ("DATABRICKS_AZURE_RESOURCE_ID", EMPTY_RESOURCE.to_string()),
        (
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            target.url().to_string(),
        ),
    ];
    let outs = export_then_import(h, &poc, &target, &src, &dst);
    assert_eq!(poc.stats().count("GET /msi/token"), 2);
    assert_eq!(
        target.stats().count("GET /metadata/identity/oauth2/token"),
        2
    );
    assert!(poc.azure_headers_seen().0 > 0 && target.azure_headers_seen().0 > 0);
    no_secret_anywhere(
        h,
        &outs,
        &["poc-fake-identity-header-4d2e81", "eyJ0eXAiOiJKV1Qi"],
    );
}

/// A user's Entra token, as `az login` would hold it.
fn user_token(emu: &EmulatorHandle) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/emulator/entra/user-token", emu.url()))
            .bearer_auth(emu.admin_token())
            .json(&json!({"user_name": ADMIN}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

/// Writes an `az` stand-in into `bin`: it records its arguments, and prints the next of
/// `tokens` as `az account get-access-token --output json` does, each said to expire one
/// seconds later (so that dbxport asks again during a run).
#[cfg(unix)]
fn fake_az(bin: &Path, tokens: &[String]) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(bin).unwrap();
    for (i, t) in tokens.iter().enumerate() {
        std::fs::write(bin.join(format!("token-{i}")), t).unwrap();
    }
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> '{d}/args.txt'
n=$(cat '{d}/count' 2>/dev/null || echo 0)
echo $((n + 1)) > '{d}/count'
i=$((n % {len}))
exp=$(( $(date +%s) + 1 ))
printf '{{"accessToken": "%s", "expiresOn": "2099-01-01 00:00:00.000000", "expires_on": %s, "subscription": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "tenant": "{TENANT}", "tokenType": "Bearer"}}\n' "$(cat '{d}/token-'$i)" "$exp"
"#,
        d = bin.display(),
        len = tokens.len()
    );
    let az = bin.join("az");
    std::fs::write(&az, script).unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[test]
fn azure_cli_user() {
    let (poc, target) = both();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let tokens: Vec<String> = (0..3)
        .map(|_| {
            user_token(&poc)["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let bin = h.join("bin");
    fake_az(&bin, &tokens);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let bundle = h.join("nb.zip");
    let slow = FaultConfig {
        latency_ms: 80,
        ..FaultConfig::default()
    };
    poc.set_faults(slow).unwrap();
    let mut c = dbx(h, &[]);
    c.args(export_args(&bundle))
        .env("PATH", &path)
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_AZURE_RESOURCE_ID", POC_RESOURCE);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let args = std::fs::read_to_string(bin.join("args.txt")).unwrap();
    let first = args.lines().next().unwrap();
    assert_eq!(
        first,
        "account get-access-token --resource 2ff814a6-3304-4ab8-85cb-cd0e6f879c1d --output json --subscription 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    );
    assert!(
        args.lines().count() >= 2,
        "asked again when the 1-second token neared its end: {args}"
    );
    assert!(
        !args.contains("management"),
        "a user's token needs no management token: {args}"
    );
    assert_eq!(poc.stats().unauthenticated, 0);

    // Import: az now holds a token for the target's user.
    let t2: Vec<String> = vec![user_token(&target)["access_token"]
        .as_str()
        .unwrap()
        .to_string()];
    std::fs::remove_file(bin.join("count")).unwrap();
    fake_az(&bin, &t2);
    let map = h.join("map.toml");
    let mut c = dbx(h, &[]);
    c.args(import_args(&bundle, &map))
        .env("PATH", &path)
        .env("DATABRICKS_HOST", target.url())
        .env("DATABRICKS_AUTH_TYPE", "azure-cli");
    let imp = c.output().unwrap();
    assert_eq!(imp.status.code(), Some(0), "{}", describe(&imp));
    assert!(target.stats().count("POST /api/2.0/workspace/import") > 0);
    let all: Vec<&str> = tokens.iter().chain(t2.iter()).map(String::as_str).collect();
    for o in [&out, &imp] {
        assert_absent(&o.stdout, &all, "stdout");
        assert_absent(&o.stderr, &all, "stderr");
    }
    assert_absent(&std::fs::read(&bundle).unwrap(), &all, "bundle");
    assert_absent(args.as_bytes(), &all, "az's arguments");
}

#[cfg(unix)]
#[test]
fn a_signed_out_az_exits_2_and_says_to_run_az_login() {
    use std::os::unix::fs::PermissionsExt as _;
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let bin = h.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("x.zip")))
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_AUTH_TYPE", "azure-cli")
        .env("DATABRICKS_CLOUD", "azure");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not signed in"), "{err}");
    assert!(err.contains("hint: run `az login`"), "{err}");
}

/// The default chain, as the SDKs run it: on an Azure workspace a signed-out `az` is passed
/// over for the Databricks CLI's sign-in; with neither, the error lists both and what to run.
#[cfg(unix)]
#[test]
fn the_chain_passes_a_signed_out_az_for_the_cli_sign_in() {
    use std::os::unix::fs::PermissionsExt as _;
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let bin = h.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // Neither signed in: one error naming both.
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("x.zip")))
        .env("PATH", &path)
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_AZURE_RESOURCE_ID", POC_RESOURCE);
    let out = c.output().unwrap();
    // No cache entry and no CLI: the chain holds azure-cli alone, whose answer is the error.
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("azure-cli") && err.contains("hint: run `az login`"),
        "{err}"
    );

    // With a CLI sign-in in the cache, the chain reaches it.
    let tokens = sign_in(&poc, ADMIN);
    write_cache(h, &[(poc.url(), cache_entry(&tokens, 3000))]);
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("y.zip")))
        .env("PATH", &path)
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_AZURE_RESOURCE_ID", POC_RESOURCE);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Revoked, with az still signed out: both methods are listed.
    poc.revoke_oauth(ADMIN);
    write_cache(h, &[("other", json!({"access_token": "x"}))]);
    let fake_cli = bin.join("databricks");
    std::fs::write(&fake_cli, "#!/bin/sh\necho 'Error: cache: databricks OAuth is not configured for this host' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake_cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("z.zip")))
        .env("PATH", &path)
        .env("DATABRICKS_HOST", poc.url())
        .env("DATABRICKS_CLI_PATH", &fake_cli)
        .env("DATABRICKS_AZURE_RESOURCE_ID", POC_RESOURCE);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no authentication method applies; tried:"),
        "{err}"
    );
    assert!(
        err.contains("  azure-cli: the Azure CLI is not signed in"),
        "{err}"
    );
    assert!(err.contains("  databricks-cli: "), "{err}");
}

/// Nothing configured at all: the message lists each method of the chain.
#[test]
fn nothing_configured_lists_what_was_tried() {
    let poc = start("poc", 3600, FaultConfig::default());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut c = dbx(h, &[]);
    c.args(export_args(&h.join("x.zip")))
        .env("PATH", "/nonexistent")
        .env("DATABRICKS_HOST", poc.url());
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for m in [
        "pat:",
        "oauth-m2m:",
        "azure-cli:",
        "external-browser:",
        "databricks-cli:",
        "hint:",
    ] {
        assert!(err.contains(m), "{m}: {err}");
    }
    assert_eq!(poc.stats().total, 0, "nothing is sent");
}
