//! The transport against small in-test servers: Retry-After honoured, 503 and 5xx retries by
//! call safety, dropped connections, fail-fast on refused credentials, the retry budget, AIMD
//! concurrency reduction, error bodies naming the call, streaming, and logs without secrets.

use crate::support::client_server as support;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use dbxport::client::{Call, ClientError, ErrorKind};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{client, fast, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

fn with(mut r: Reply, k: &'static str, v: &str) -> Reply {
    r.headers.push((k, v.to_string()));
    r
}

#[derive(Default)]
struct Script {
    replies: Mutex<Vec<Reply>>,
    seen: Mutex<Vec<(String, String, Option<String>)>>,
}

/// A server answering each request with the next scripted reply (the last one repeats).
async fn scripted(replies: Vec<Reply>) -> (String, Arc<Script>) {
    let s = Arc::new(Script {
        replies: Mutex::new(replies),
        seen: Mutex::new(Vec::new()),
    });
    async fn handle(State(s): State<Arc<Script>>, req: Request) -> Response {
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        s.seen
            .lock()
            .unwrap()
            .push((req.method().to_string(), req.uri().to_string(), auth));
        let r = {
            let mut q = s.replies.lock().unwrap();
            if q.len() > 1 {
                q.remove(0)
            } else {
                q[0].clone()
            }
        };
        let mut b = Response::builder().status(r.status);
        for (k, v) in &r.headers {
            b = b.header(*k, v);
        }
        b.body(Body::from(r.body)).unwrap()
    }
    let router = axum::Router::new().fallback(handle).with_state(s.clone());
    (serve(router).await, s)
}

fn count(s: &Script) -> usize {
    s.seen.lock().unwrap().len()
}

fn get() -> Call {
    Call::get("/api/2.0/workspace/list")
        .query("path", "/x")
        .object("path=/x")
}

fn post() -> Call {
    Call::post("/api/2.0/jobs/create")
        .json(&serde_json::json!({"name": "n"}))
        .object("name=n")
}

#[tokio::test]
async fn retry_after_is_honoured_for_429() {
    let (url, s) = scripted(vec![
        with(
            reply(
                429,
                r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow"}"#,
            ),
            "Retry-After",
            "1",
        ),
        reply(200, r#"{"objects":[]}"#),
    ])
    .await;
    let c = client(&url, fast());
    let t0 = Instant::now();
    let v: serde_json::Value = c.transport().json(get()).await.unwrap();
    assert_eq!(v, serde_json::json!({"objects": []}));
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(count(&s), 2);
    let st = c.stats();
    assert_eq!(
        (st.requests, st.retries, st.throttled, st.failures),
        (2, 1, 1, 0)
    );
    assert_eq!(st.by_call["GET /api/2.0/workspace/list"], 2);
}

#[tokio::test]
async fn unsafe_post_is_retried_on_503_with_default_wait() {
    // No Retry-After: the default 1 s applies; a 503 means nothing was done, so even a
    // creation may go again.
    let (url, s) = scripted(vec![reply(503, ""), reply(200, r#"{"job_id": 5}"#)]).await;
    let c = client(&url, fast());
    let t0 = Instant::now();
    let id = c
        .jobs()
        .create(serde_json::json!({"name": "n"}).as_object().unwrap())
        .await
        .unwrap();
    assert_eq!(id, 5);
    assert!(t0.elapsed() >= Duration::from_secs(1));
    assert_eq!(count(&s), 2);
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_only() {
    let (url, s) = scripted(vec![
        reply(500, r#"{"error_code":"INTERNAL_ERROR","message":"boom"}"#),
        reply(502, "<html><title>Bad Gateway</title></html>"),
        reply(200, "{}"),
    ])
    .await;
    let c = client(&url, fast());
    c.transport().send(get()).await.unwrap();
    assert_eq!(count(&s), 3);
    assert_eq!(c.stats().retries, 2);

    let (url, s) = scripted(vec![
        reply(500, r#"{"error_code":"INTERNAL_ERROR","message":"boom"}"#),
        reply(200, "{}"),
    ])
    .await;
    let c = client(&url, fast());
    let err = c.transport().send(post()).await.unwrap_err();
    assert_eq!(
        count(&s),
        1,
        "an unsafe POST must not be replayed after a 500"
    );
    assert_eq!(err.kind(), Some(ErrorKind::Internal));
    assert_eq!(
        err.to_string(),
        "POST /api/2.0/jobs/create name=n: 500 INTERNAL_ERROR: boom"
    );
    assert_eq!(c.stats().failures, 1);

    // The same POST marked safe by its caller is retried.
    let (url, s) = scripted(vec![reply(500, "{}"), reply(200, "{}")]).await;
    let c = client(&url, fast());
    c.transport().send(post().safe_to_retry()).await.unwrap();
    assert_eq!(count(&s), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_name_the_call() {
    let (url, s) = scripted(vec![reply(
        404,
        r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Path (/x) doesn't exist."}"#,
    )])
    .await;
    let c = client(&url, fast());
    let err = c.workspace().get_status("/x").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "GET /api/2.0/workspace/get-status path=/x: 404 RESOURCE_DOES_NOT_EXIST: Path (/x) doesn't exist."
    );
    assert_eq!(count(&s), 1);
}

#[tokio::test]
async fn refused_credentials_fail_fast_after_one_request() {
    for (status, body) in [
        (401, ""),
        (
            403,
            r#"{"error_code":403,"message":"Invalid access token."}"#,
        ),
    ] {
        let (url, s) = scripted(vec![reply(status, body)]).await;
        let c = client(&url, fast());
        let t0 = Instant::now();
        let err = c.workspace().list("/").await.unwrap_err();
        assert_eq!(count(&s), 1, "status {status}");
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(err.is_auth_failure(), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("GET /api/2.0/workspace/list path=/:"),
            "{msg}"
        );
        assert!(msg.contains("check the token"), "{msg}");
        assert!(!msg.contains("dapi-test-token"), "{msg}");
        // Once refused, later calls fail at once without another request.
        let again = c.workspace().get_status("/y").await.unwrap_err();
        assert_eq!(count(&s), 1);
        assert!(again.is_auth_failure());
        assert!(
            again
                .to_string()
                .starts_with("GET /api/2.0/workspace/get-status path=/y: "),
            "{again}"
        );
        assert!(again.to_string().contains("already refused"), "{again}");
    }
    // An object-level 403 is not a credential problem, and is not retried either.
    let (url, s) = scripted(vec![reply(
        403,
        r#"{"error_code":"PERMISSION_DENIED","message":"no access"}"#,
    )])
    .await;
    let c = client(&url, fast());
    let err = c.workspace().list("/a").await.unwrap_err();
    assert!(
        err.is_permission_denied() && !err.is_auth_failure(),
        "{err}"
    );
    assert_eq!(count(&s), 1);
}

#[tokio::test]
async fn the_retry_budget_ends_retries_and_names_the_call() {
    let (url, s) = scripted(vec![reply(503, "")]).await;
    let mut o = fast();
    o.retry_budget = Duration::from_millis(2500);
    let c = client(&url, o);
    let t0 = Instant::now();
    let err = c.transport().send(get()).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(4));
    let msg = err.to_string();
    assert!(matches!(err, ClientError::RetriesExhausted { .. }), "{msg}");
    assert!(
        msg.starts_with("GET /api/2.0/workspace/list path=/x: gave up after"),
        "{msg}"
    );
    assert!(msg.contains("503"), "{msg}");
    assert!(count(&s) >= 2);

    // Nothing listening from the start: a wrong host, given up after three attempts with a
    // hint, long before the budget is spent.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = fast();
    o.retry_budget = Duration::from_secs(60);
    let c = client(&format!("http://127.0.0.1:{port}"), o);
    let t0 = Instant::now();
    let err = c.transport().send(post()).await.unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5));
    let msg = err.to_string();
    assert!(
        matches!(err, ClientError::Unreachable { attempts: 3, .. }),
        "{msg}"
    );
    assert!(
        msg.starts_with("POST /api/2.0/jobs/create name=n: cannot connect"),
        "{msg}"
    );
    assert!(
        msg.contains("hint: nothing answered at http://127.0.0.1:"),
        "{msg}"
    );
    assert_eq!(
        c.stats().requests,
        3,
        "a refused connect is retried even for a POST"
    );
}

#[tokio::test]
async fn a_workspace_that_answered_once_is_waited_for_until_the_budget() {
    // One answer, then the listener is gone: connections are refused from then on.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
        }
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
            .await;
        // `l` is dropped here: nothing listens any more.
    });
    let mut o = fast();
    o.retry_budget = Duration::from_millis(400);
    let c = client(&url, o);
    c.transport().send(get()).await.unwrap();
    let err = c.transport().send(get()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ClientError::RetriesExhausted { .. }), "{msg}");
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(c.stats().requests > 4, "{}", c.stats().requests);
}

/// A raw server: the first `drops` connections are closed after reading the request, without
/// an answer; later ones get `{}`.
async fn dropping_server(drops: usize) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = l.accept().await.unwrap();
            let i = n2.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                if i < drops {
                    drop(sock);
                    return;
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                    .await;
            });
        }
    });
    (url, n)
}

#[tokio::test]
async fn dropped_connections_are_retried_for_reads_not_for_unsafe_posts() {
    let (url, n) = dropping_server(2).await;
    let c = client(&url, fast());
    c.transport().send(get()).await.unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 3);

    let (url, n) = dropping_server(1).await;
    let c = client(&url, fast());
    let err = c.transport().send(post()).await.unwrap_err();
    assert_eq!(n.load(Ordering::SeqCst), 1, "{err}");
    assert!(
        err.to_string()
            .starts_with("POST /api/2.0/jobs/create name=n: "),
        "{err}"
    );
}

#[tokio::test]
async fn throttling_halves_concurrency_for_the_whole_client() {
    #[derive(Default)]
    struct S {
        arrived: AtomicUsize,
        in_flight: AtomicUsize,
        max_after: AtomicUsize,
        throttled_all: std::sync::atomic::AtomicBool,
    }
    async fn handle(State(s): State<Arc<S>>) -> Response {
        let i = s.arrived.fetch_add(1, Ordering::SeqCst);
        if i < 8 {
            if i == 7 {
                s.throttled_all.store(true, Ordering::SeqCst);
            }
            return Response::builder()
                .status(429)
                .header("Retry-After", "0")
                .body(Body::from(
                    r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow"}"#,
                ))
                .unwrap();
        }
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_after.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        Response::builder()
            .status(200)
            .body(Body::from("{}"))
            .unwrap()
    }
    let state = Arc::new(S::default());
    let url = serve(
        axum::Router::new()
            .fallback(handle)
            .with_state(state.clone()),
    )
    .await;
    let c = client(&url, fast());
    // 8 requests go out together; all 8 are throttled; then 8 more join.
    let first: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.transport().send(get()).await })
        })
        .collect();
    while !state.throttled_all.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.transport().send(get()).await })
        })
        .collect();
    for h in first.into_iter().chain(second) {
        h.await.unwrap().unwrap();
    }
    let st = c.stats();
    assert_eq!(st.throttled, 8);
    // One cut for the burst (the 8 losses share an epoch), not eight.
    assert_eq!(st.min_concurrency_limit, 4);
    let max = state.max_after.load(Ordering::SeqCst);
    assert!(
        max <= 6,
        "after throttling at most 6 requests may be in flight, saw {max}"
    );
    assert!(
        st.concurrency_limit > 4,
        "the limit recovers with successes"
    );
}

#[tokio::test]
async fn streams_deliver_large_bodies_in_chunks() {
    const SIZE: usize = 8 << 20;
    async fn handle() -> Response {
        let chunks =
            futures_util::stream::iter((0..(SIZE / 65536)).map(|i| {
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![(i % 251) as u8; 65536]))
            }));
        Response::builder()
            .status(200)
            .header("content-length", SIZE.to_string())
            .body(Body::from_stream(chunks))
            .unwrap()
    }
    let url = serve(axum::Router::new().fallback(handle)).await;
    let c = client(&url, fast());
    let mut s = c
        .files()
        .download("/Volumes/c/s/v/big file.bin")
        .await
        .unwrap();
    assert_eq!(s.content_length, Some(SIZE as u64));
    let (mut total, mut chunks, mut biggest) = (0usize, 0usize, 0usize);
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        biggest = biggest.max(chunk.len());
        chunks += 1;
    }
    assert_eq!(total, SIZE);
    assert!(
        chunks > 1 && biggest < SIZE,
        "the body must arrive in pieces"
    );
    assert_eq!(c.stats().bytes_received, SIZE as u64);
    assert_eq!(c.stats().by_call["GET /api/2.0/fs/files{path}"], 1);
}

/// A raw server whose first answer breaks off after `first` bytes of `body`; later requests
/// must ask for the rest with `Range` and get 206 (when `ranges`) or are refused.
async fn breaking_server(
    body: Vec<u8>,
    first: usize,
    ranges: bool,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (mut sock, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            let k = sock.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..k]).to_ascii_lowercase();
            let range = req
                .lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .map(|r| r.trim_end_matches('-').parse::<usize>().unwrap());
            seen2.lock().unwrap().push(format!("range={range:?}"));
            n += 1;
            let head = match (n, range) {
                (1, None) => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\naccept-ranges: bytes\r\n\r\n", body.len()),
                (_, Some(off)) if ranges => format!(
                    "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {off}-{}/{}\r\n\r\n",
                    body.len() - off, body.len() - 1, body.len()
                ),
                _ => "HTTP/1.1 416 Range Not Satisfiable\r\ncontent-length: 0\r\n\r\n".to_string(),
            };
            let _ = sock.write_all(head.as_bytes()).await;
            let payload = match (n, range) {
                (1, _) => &body[..first],
                (_, Some(off)) if ranges => &body[off..],
                _ => &body[..0],
            };
            let _ = sock.write_all(payload).await;
            // Closing the socket cuts the first answer short.
        }
    });
    (url, seen)
}

#[tokio::test]
async fn a_dropped_download_resumes_with_a_range_request() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    let (url, seen) = breaking_server(body.clone(), 30_000, true).await;
    let c = client(&url, fast());
    let got = c
        .files()
        .download("/Volumes/a")
        .await
        .unwrap()
        .collect_bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got[..] == body[..], "resumed body differs");
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["range=None", "range=Some(30000)"]
    );
}

#[tokio::test]
async fn a_download_that_cannot_resume_is_an_error_naming_the_call() {
    let (url, seen) = breaking_server(vec![7u8; 1000], 11, false).await;
    let c = client(&url, fast());
    let s = c.files().download("/Volumes/a").await.unwrap();
    let err = s.collect_bytes().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("GET /api/2.0/fs/files{path} path=/Volumes/a: "),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "one resume attempt, refused");
    assert_eq!(c.stats().failures, 1);
}

#[tokio::test]
async fn a_private_link_login_redirect_is_an_error_not_a_success() {
    async fn handle(req: Request) -> Response {
        if req.uri().path() == "/login.html" {
            return Response::builder()
                .status(200)
                .header("content-type", "text/html")
                .body(Body::from("<html>login</html>"))
                .unwrap();
        }
        Response::builder()
            .status(303)
            .header(
                "location",
                "/login.html?error=private-link-validation-error",
            )
            .body(Body::empty())
            .unwrap()
    }
    let url = serve(axum::Router::new().fallback(handle)).await;
    let c = client(&url, fast());
    let err = c.workspace().list("/").await.unwrap_err();
    assert_eq!(err.error_code(), Some("PRIVATE_LINK_VALIDATION_ERROR"));
    assert!(err.to_string().contains("private link"), "{err}");
    assert_eq!(c.stats().requests, 1);
}
