//! Helpers for the sign-in tests: emulators with short-lived OAuth tokens, a test user's
//! browser sign-in driven over HTTP, the Databricks CLI's token cache, and `dbxport` commands
//! with a clean environment.

use base64::Engine as _;
use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The poc seed's admin, who exists in both seeds.
pub const ADMIN: &str = "ada.okafor@sciencehub.example";
/// The poc seed's service principal.
pub const SP: &str = "9c7d2e14-5b3a-4f68-a1d0-3e8b6c2f9a71";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/workspaces")
        .join(name)
}

/// An emulator of `seed` whose OAuth access tokens live `ttl` seconds.
pub fn start(seed: &str, ttl: u64, faults: FaultConfig) -> EmulatorHandle {
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(fixture(seed))
            .with_oauth_token_ttl(ttl)
            .with_faults(faults),
    )
    .expect("the emulator starts")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Plays the browser for an authorization URL: opens it, approves as `user`, and (`follow`)
/// follows the redirect to the client's loopback listener. Returns the redirect URL.
pub fn approve(authorize_url: &str, user: &str, follow: bool) -> String {
    rt().block_on(async {
        let page = http().get(authorize_url).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200, "{authorize_url}");
        let base = {
            let u = reqwest::Url::parse(authorize_url).unwrap();
            format!("{}://{}", u.scheme(), u.host_str().unwrap())
                + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
        };
        let html = page.text().await.unwrap();
        let re = regex::Regex::new(r#"name="request_id" value="([^"]+)""#).unwrap();
        let id = re.captures(&html).expect("a request id")[1].to_string();
        let r = http()
            .post(format!("{base}/oidc/v1/authorize/consent"))
            .form(&[
                ("request_id", id.as_str()),
                ("user_name", user),
                ("decision", "approve"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 302);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        if !follow {
            return loc;
        }
        let done = http().get(&loc).send().await.unwrap();
        assert_eq!(
            done.status().as_u16(),
            200,
            "the client's listener answers the redirect"
        );
        loc
    })
}

/// A user's sign-in made the way `databricks auth login` makes it: the public client, PKCE,
/// `offline_access`. Returns the token endpoint's answer.
pub fn sign_in(emu: &EmulatorHandle, user: &str) -> Value {
    let verifier = "test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let url = reqwest::Url::parse_with_params(
        &format!("{}/oidc/v1/authorize", emu.url()),
        &[
            ("client_id", "databricks-cli"),
            ("redirect_uri", "http://localhost:8020"),
            ("response_type", "code"),
            ("state", "s"),
            ("scope", "all-apis offline_access"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let loc = approve(url.as_str(), user, false);
    let code = reqwest::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    rt().block_on(async {
        let r = http()
            .post(format!("{}/oidc/v1/token", emu.url()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "databricks-cli"),
                ("code", code.as_str()),
                ("redirect_uri", "http://localhost:8020"),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    })
}

/// An RFC 3339 time `secs` seconds from now (negative: in the past).
pub fn rfc3339_in(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The Databricks CLI's token cache entry for a sign-in.
pub fn cache_entry(tokens: &Value, expires_in_secs: i64) -> Value {
    json!({
        "access_token": tokens["access_token"],
        "token_type": "Bearer",
        "refresh_token": tokens["refresh_token"],
        "expiry": rfc3339_in(expires_in_secs),
    })
}

/// Writes `~/.databricks/token-cache.json` (0600) with `entries` (key → entry).
pub fn write_cache(home: &Path, entries: &[(&str, Value)]) -> PathBuf {
    let dir = home.join(".databricks");
    std::fs::create_dir_all(&dir).unwrap();
    let tokens: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let path = dir.join("token-cache.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({"version": 1, "tokens": tokens})).unwrap(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

pub fn read_cache(home: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(home.join(".databricks/token-cache.json")).unwrap())
        .unwrap()
}

/// `dbxport ARGS` with only PATH and HOME from the environment.
pub fn dbx(home: &Path, args: &[&str]) -> Command {
    super::ctx::bare(home, args)
}

/// `dbxport export` of the poc's notebooks under /Shared to `bundle`.
pub fn export_args(bundle: &Path) -> Vec<String> {
    [
        "export",
        "--include",
        "notebook",
        "--path",
        "/Shared",
        "--json",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([bundle.display().to_string()])
    .collect()
}

/// `dbxport import` of `bundle`, principals the target lacks dropped.
pub fn import_args(bundle: &Path, map: &Path) -> Vec<String> {
    std::fs::write(map, "unmapped_principals = \"drop\"\n").unwrap();
    vec![
        "import".into(),
        bundle.display().to_string(),
        "--map".into(),
        map.display().to_string(),
        "--json".into(),
    ]
}

pub use super::ctx::{describe, summary};

/// Fails when any of `secrets` appears in `haystack`.
pub fn assert_absent(haystack: &[u8], secrets: &[&str], what: &str) {
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !haystack.windows(s.len()).any(|w| w == s.as_bytes()),
            "{what} contains a token ({}…)",
            &s[..s.len().min(12)]
        );
    }
}

/// Every file under `dir`, read.
pub fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().to_path_buf(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

/// Runs `c`, playing the browser for every sign-in address it prints (approving as `user`,
/// or denying when `user` is `None`). Returns the output and how many sign-ins were asked.
pub fn run_with_browser(mut c: Command, user: Option<&str>) -> (Output, usize) {
    use std::io::BufRead as _;
    use std::process::Stdio;
    c.env("DBXPORT_NO_BROWSER", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let user = user.map(str::to_string);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut asked = 0;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(i) = line.find("http://") {
                let url = line[i..].trim().to_string();
                if url.contains("/oidc/v1/authorize?") {
                    asked += 1;
                    match &user {
                        Some(u) => {
                            approve(&url, u, true);
                        }
                        None => deny(&url),
                    }
                }
            }
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
        }
        (all, asked)
    });
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let (stderr, asked) = reader.join().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        asked,
    )
}

/// Plays a browser whose user refuses: the client's listener gets `error=access_denied`.
pub fn deny(authorize_url: &str) {
    rt().block_on(async {
        let html = http()
            .get(authorize_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let u = reqwest::Url::parse(authorize_url).unwrap();
        let base = format!("http://{}:{}", u.host_str().unwrap(), u.port().unwrap());
        let re = regex::Regex::new(r#"name="request_id" value="([^"]+)""#).unwrap();
        let id = re.captures(&html).expect("a request id")[1].to_string();
        let r = http()
            .post(format!("{base}/oidc/v1/authorize/consent"))
            .form(&[
                ("request_id", id.as_str()),
                ("user_name", ADMIN),
                ("decision", "deny"),
            ])
            .send()
            .await
            .unwrap();
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        http().get(&loc).send().await.unwrap();
    })
}
