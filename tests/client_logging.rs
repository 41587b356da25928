//! Logs: the client's structured logs never carry tokens, secret values or secret bodies —
//! for every way of signing in (personal access token, OAuth M2M, the Databricks CLI's token
//! cache with a refresh, Azure client secret, managed identity, and `az`), each driven at
//! TRACE level against the emulator, with its access tokens expiring during the calls.

#[path = "support/client_server.rs"]
mod support;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use std::sync::{Arc, Mutex};
use support::{fast, serve};

#[derive(Default)]
struct Seen(Mutex<Vec<Option<String>>>);

async fn scripted(replies: Vec<(u16, &'static str)>) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let replies = Arc::new(Mutex::new(replies));
    let s2 = seen.clone();
    let handle = move |req: Request| {
        let seen = s2.clone();
        let replies = replies.clone();
        async move {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            seen.0.lock().unwrap().push(auth);
            let (status, body) = {
                let mut q = replies.lock().unwrap();
                if q.len() > 1 {
                    q.remove(0)
                } else {
                    q[0]
                }
            };
            Response::builder()
                .status(status)
                .body(Body::from(body))
                .unwrap()
        }
    };
    (serve(axum::Router::new().fallback(handle)).await, seen)
}

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_carry_tokens_or_secret_bodies() {
    let sink = Sink::default();
    let w = sink.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || w.clone())
        .finish();
    // The only test in this binary, so a global subscriber sees every callsite.
    tracing::subscriber::set_global_default(sub).unwrap();
    let (url, s) = scripted(vec![
        (500, "{}"),
        (200, "{}"),
        (200, r#"{"key":"k","value":"c3VwZXItc2VjcmV0LXZhbHVl"}"#),
    ])
    .await;
    let cfg = support::pat_config(&url, "dapi-logged-token-123");
    let c = dbxport::client::Client::new(&cfg, fast()).unwrap();
    c.secrets()
        .put(
            "sc",
            "k",
            b"super-secret-value",
            dbxport::model::secret::ValueEncoding::String,
        )
        .await
        .unwrap();
    let v = c.secrets().get("sc", "k").await.unwrap();
    assert_eq!(&v[..], b"super-secret-value");
    let seen = s.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].as_deref(), Some("Bearer dapi-logged-token-123"));
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("retrying"),
        "the retry should be logged: {log}"
    );
    let secrets = sign_in_every_way().await;
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("token obtained"),
        "token refreshes are logged: {log}"
    );
    let fixed = [
        "dapi-logged-token-123",
        "super-secret-value",
        "c3VwZXItc2VjcmV0LXZhbHVl",
        // Every access and refresh token the emulator issues begins so.
        "dbxemu-oauth-",
        "dbxemu-refresh-",
        // Every Entra token the emulator issues begins so.
        "eyJ0eXAiOiJKV1Qi",
    ];
    for secret in fixed.iter().map(|s| s.to_string()).chain(secrets) {
        assert!(!log.contains(&secret), "log contains {secret}: {log}");
    }
}

const SP: &str = "9c7d2e14-5b3a-4f68-a1d0-3e8b6c2f9a71";
const ADMIN: &str = "ada.okafor@sciencehub.example";

/// Signs in with every method against a poc emulator whose OAuth tokens live one second, and
/// makes calls across an expiry. Returns the secrets each method was given.
async fn sign_in_every_way() -> Vec<String> {
    use dbxport::client::{Client, Config, ConfigArgs};
    use dbxport::emulator::{Emulator, EmulatorConfig};
    let seed = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/workspaces/poc");
    let emu = Emulator::start(
        EmulatorConfig::default()
            .with_seed(seed)
            .with_oauth_token_ttl(1)
            .with_manual_clock(),
    )
    .await
    .unwrap();
    let url = emu.url().to_string();
    let home = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A CLI sign-in, already expired, for the token cache.
    let verifier = "log-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
    };
    let page = http
        .get(format!("{url}/oidc/v1/authorize"))
        .query(&[
            ("client_id", "databricks-cli"),
            ("redirect_uri", "http://localhost:8020"),
            ("response_type", "code"),
            ("state", "s"),
            ("scope", "all-apis offline_access"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = regex::Regex::new(r#"name="request_id" value="([^"]+)""#)
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_string();
    let loc = http
        .post(format!("{url}/oidc/v1/authorize/consent"))
        .form(&[
            ("request_id", id.as_str()),
            ("user_name", ADMIN),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let code = reqwest::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t: serde_json::Value = http
        .post(format!("{url}/oidc/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "databricks-cli"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:8020"),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    std::fs::create_dir_all(home.path().join(".databricks")).unwrap();
    std::fs::write(
        home.path().join(".databricks/token-cache.json"),
        serde_json::json!({"version": 1, "tokens": {url.clone(): {
            "access_token": t["access_token"], "token_type": "Bearer",
            "refresh_token": t["refresh_token"], "expiry": "2001-01-01T00:00:00Z"}}})
        .to_string(),
    )
    .unwrap();

    // `az`, holding a user's Entra token.
    let user: serde_json::Value = http
        .post(format!("{url}/emulator/entra/user-token"))
        .bearer_auth(emu.admin_token())
        .json(&serde_json::json!({"user_name": ADMIN}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("az"),
        format!(
            "#!/bin/sh\necho '{{\"accessToken\": \"{}\", \"expires_on\": {}, \"tokenType\": \"Bearer\"}}'\n",
            user["access_token"].as_str().unwrap(),
            user["expires_on"]
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(bin.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let base = [("DATABRICKS_HOST", url.clone())];
    let mut methods: Vec<Vec<(&str, String)>> = vec![
        vec![
            ("DATABRICKS_CLIENT_ID", SP.into()),
            (
                "DATABRICKS_CLIENT_SECRET",
                "dose-poc-fake-secret-etl-pipeline-3b8e".into(),
            ),
        ],
        vec![
            ("DATABRICKS_AUTH_TYPE", "databricks-cli".into()),
            ("PATH", "/nonexistent".into()),
        ],
        vec![
            ("ARM_CLIENT_ID", SP.into()),
            (
                "ARM_CLIENT_SECRET",
                "entra-poc-fake-secret-etl-7a1f9c".into(),
            ),
            ("AZURE_AUTHORITY_HOST", url.clone()),
        ],
        vec![
            ("ARM_USE_MSI", "true".into()),
            ("DATABRICKS_CLOUD", "azure".into()),
            ("IDENTITY_ENDPOINT", format!("{url}/msi/token")),
            ("IDENTITY_HEADER", "poc-fake-identity-header-4d2e81".into()),
        ],
    ];
    if cfg!(unix) {
        methods.push(vec![
            ("DATABRICKS_AUTH_TYPE", "azure-cli".into()),
            ("DATABRICKS_CLOUD", "azure".into()),
            ("PATH", bin.display().to_string()),
        ]);
    }
    for m in &methods {
        let env = |k: &str| {
            base.iter()
                .chain(m.iter())
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
        };
        let cfg = Config::resolve(&ConfigArgs::default(), &env, Some(home.path())).unwrap();
        let c = Client::new(&cfg, support::fast()).unwrap();
        c.scim().me().await.unwrap();
        // Past the one-second lifetime of the workspace's OAuth tokens: the next request is
        // refused and the token renewed.
        assert!(emu.advance_clock(std::time::Duration::from_millis(1100)));
        c.scim().me().await.unwrap();
    }
    let cache = std::fs::read_to_string(home.path().join(".databricks/token-cache.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&cache).unwrap();
    let entry = &v["tokens"][url.as_str()];
    vec![
        "dose-poc-fake-secret-etl-pipeline-3b8e".into(),
        "entra-poc-fake-secret-etl-7a1f9c".into(),
        "poc-fake-identity-header-4d2e81".into(),
        entry["access_token"].as_str().unwrap().into(),
        entry["refresh_token"].as_str().unwrap().into(),
        t["refresh_token"].as_str().unwrap().into(),
    ]
}
