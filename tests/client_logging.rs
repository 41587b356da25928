//! Logs: the client's structured logs never carry tokens, secret values or secret bodies.

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

#[tokio::test]
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
    for secret in [
        "dapi-logged-token-123",
        "super-secret-value",
        "c3VwZXItc2VjcmV0LXZhbHVl",
    ] {
        assert!(!log.contains(secret), "log contains {secret}: {log}");
    }
}
