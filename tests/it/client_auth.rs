//! OAuth M2M against an in-test authorization server: discovery through host metadata (and the
//! older fixed path), the client-credentials request, one shared refresh for concurrent
//! callers, refresh before expiry, and a refused client failing fast with a clear message.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use dbxport::client::{Client, Config, ConfigArgs, TransportOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Idp {
    base: String,
    metadata: bool,
    expires_in: serde_json::Value,
    secret: &'static str,
    tokens: AtomicUsize,
    metadata_calls: AtomicUsize,
    discovery_calls: AtomicUsize,
    api_auth: Mutex<Vec<String>>,
    token_forms: Mutex<Vec<String>>,
}

fn json(status: u16, v: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

async fn metadata(State(s): State<Arc<Idp>>) -> Response {
    s.metadata_calls.fetch_add(1, Ordering::SeqCst);
    if !s.metadata {
        return json(
            404,
            serde_json::json!({"error_code": "NOT_FOUND", "message": "no"}),
        );
    }
    json(
        200,
        serde_json::json!({"oidc_endpoint": format!("{}/oidc", s.base), "workspace_id": "123"}),
    )
}

async fn discovery(State(s): State<Arc<Idp>>) -> Response {
    s.discovery_calls.fetch_add(1, Ordering::SeqCst);
    json(
        200,
        serde_json::json!({
            "token_endpoint": format!("{}/oidc/v1/token", s.base),
            "authorization_endpoint": format!("{}/oidc/v1/authorize", s.base),
        }),
    )
}

async fn token(State(s): State<Arc<Idp>>, req: Request) -> Response {
    use base64::Engine as _;
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let ct = req
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(req.into_body(), 1 << 16)
        .await
        .unwrap();
    s.token_forms
        .lock()
        .unwrap()
        .push(format!("{ct} {}", String::from_utf8_lossy(&body)));
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("sp-app:{}", s.secret))
    );
    // Slow enough that concurrent callers overlap with the refresh.
    tokio::time::sleep(Duration::from_millis(50)).await;
    if auth != expected {
        return json(
            401,
            serde_json::json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    let n = s.tokens.fetch_add(1, Ordering::SeqCst) + 1;
    json(
        200,
        serde_json::json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": s.expires_in, "scope": "all-apis"}),
    )
}

async fn me(State(s): State<Arc<Idp>>, req: Request) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    s.api_auth.lock().unwrap().push(auth.clone());
    if !auth.starts_with("Bearer tok-") {
        return json(
            401,
            serde_json::json!({"error_code": "UNAUTHENTICATED", "message": "no"}),
        );
    }
    json(
        200,
        serde_json::json!({"id": "1", "userName": "sp-app", "active": true}),
    )
}

async fn start(metadata_on: bool, expires_in: serde_json::Value, secret: &'static str) -> Arc<Idp> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let idp = Arc::new(Idp {
        base,
        metadata: metadata_on,
        expires_in,
        secret,
        tokens: AtomicUsize::new(0),
        metadata_calls: AtomicUsize::new(0),
        discovery_calls: AtomicUsize::new(0),
        api_auth: Mutex::new(Vec::new()),
        token_forms: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new()
        .route("/.well-known/databricks-config", get(metadata))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(discovery),
        )
        .route("/oidc/v1/token", post(token))
        .route("/api/2.0/preview/scim/v2/Me", get(me))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    idp
}

fn m2m_client(idp: &Idp, secret: &str) -> Client {
    m2m_client_on(idp, secret, dbxport::clock::Clock::real())
}

/// A client whose cached tokens expire by `clock`.
fn m2m_client_on(idp: &Idp, secret: &str, clock: dbxport::clock::Clock) -> Client {
    let env = |k: &str| match k {
        "DATABRICKS_HOST" => Some(idp.base.clone()),
        "DATABRICKS_CLIENT_ID" => Some("sp-app".to_string()),
        "DATABRICKS_CLIENT_SECRET" => Some(secret.to_string()),
        _ => None,
    };
    let cfg = Config::resolve(&ConfigArgs::default(), &env, None).unwrap();
    let opts = TransportOptions {
        backoff_base: Duration::from_millis(10),
        retry_budget: Duration::from_secs(10),
        clock,
        ..TransportOptions::default()
    };
    Client::new(&cfg, opts).unwrap()
}

#[tokio::test]
async fn discovery_and_one_shared_token_for_concurrent_callers() {
    let idp = start(true, serde_json::json!(3600), "s3cret").await;
    let c = m2m_client(&idp, "s3cret");
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.scim().me().await })
        })
        .collect();
    for h in calls {
        assert_eq!(h.await.unwrap().unwrap().user_name, "sp-app");
    }
    assert_eq!(
        idp.tokens.load(Ordering::SeqCst),
        1,
        "one refresh shared by all"
    );
    assert_eq!(idp.metadata_calls.load(Ordering::SeqCst), 1);
    assert_eq!(idp.discovery_calls.load(Ordering::SeqCst), 1);
    assert!(idp
        .api_auth
        .lock()
        .unwrap()
        .iter()
        .all(|a| a == "Bearer tok-1"));
    let form = idp.token_forms.lock().unwrap()[0].clone();
    assert!(
        form.starts_with("application/x-www-form-urlencoded"),
        "{form}"
    );
    assert!(
        form.contains("grant_type=client_credentials") && form.contains("scope=all-apis"),
        "{form}"
    );
    // 10 API calls + metadata + discovery + token.
    let st = c.stats();
    assert_eq!(st.requests, 13);
    assert_eq!(st.by_call["POST <external>"], 1);
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    // expires_in as a string, 4 s: refreshed after 2 s (half its life, since < 80 s).
    let idp = start(true, serde_json::json!("4"), "s3cret").await;
    let clock = dbxport::clock::Clock::manual();
    let c = m2m_client_on(&idp, "s3cret", clock.clone());
    c.scim().me().await.unwrap();
    c.scim().me().await.unwrap();
    assert_eq!(idp.tokens.load(Ordering::SeqCst), 1);
    // Just short of the refresh point the cached token still serves.
    clock.advance(Duration::from_millis(1900));
    c.scim().me().await.unwrap();
    assert_eq!(idp.tokens.load(Ordering::SeqCst), 1);
    // The client's clock moves past it without waiting; the servers keep real time.
    clock.advance(Duration::from_millis(200));
    c.scim().me().await.unwrap();
    assert_eq!(idp.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(idp.api_auth.lock().unwrap().last().unwrap(), "Bearer tok-2");
    // Discovery is cached across refreshes.
    assert_eq!(idp.discovery_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn hosts_without_metadata_use_the_fixed_discovery_path() {
    let idp = start(false, serde_json::json!(3600), "s3cret").await;
    let c = m2m_client(&idp, "s3cret");
    c.scim().me().await.unwrap();
    assert_eq!(idp.metadata_calls.load(Ordering::SeqCst), 1);
    assert_eq!(idp.discovery_calls.load(Ordering::SeqCst), 1);
    assert_eq!(idp.tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_client_fails_fast_with_a_clear_message() {
    let idp = start(true, serde_json::json!(3600), "s3cret").await;
    let c = m2m_client(&idp, "wrong-secret");
    let err = c.scim().me().await.unwrap_err();
    let msg = err.to_string();
    assert!(err.is_auth_failure(), "{msg}");
    assert!(msg.contains("refused client sp-app"), "{msg}");
    assert!(
        msg.contains("invalid_client: Client authentication failed"),
        "{msg}"
    );
    assert!(msg.contains("DATABRICKS_CLIENT_SECRET"), "{msg}");
    assert!(
        !msg.contains("wrong-secret") && !msg.contains("s3cret"),
        "{msg}"
    );
    assert_eq!(idp.token_forms.lock().unwrap().len(), 1, "no retry storm");
    // Concurrent and later callers get the same refusal without asking again.
    let again: Vec<_> = (0..5)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.scim().me().await })
        })
        .collect();
    for h in again {
        assert!(h.await.unwrap().unwrap_err().is_auth_failure());
    }
    assert_eq!(idp.token_forms.lock().unwrap().len(), 1);
    assert!(
        idp.api_auth.lock().unwrap().is_empty(),
        "no API call without a token"
    );
}
