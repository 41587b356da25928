//! Hostile or wrong servers (issue #9): a host that streams JSON without end, a login page or
//! proxy answering HTML with status 200, and lost answers to an idempotent delete. Each is a
//! tiny server on 127.0.0.1 port 0 in the test; the commands must fail with a message naming
//! what happened, without a panic, and write nothing.

use crate::support::client_server as support;

use axum::body::Body;
use axum::response::Response;
use dbxport::bundle::resource::Resource;
use dbxport::bundle::{pack, BagBuilder, BagSettings, PackOptions, Source};
use dbxport::client::Call;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::{client, fast, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server in a thread of its own, for tests that run the binary; returns its base URL.
fn serve_in_background(router: axum::Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tx.send(serve(router).await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// Every request answered 200 with `{"a":[0,0,0,…` that never ends.
fn endless_json_server() -> String {
    async fn handle() -> Response {
        let head = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"a\":["))
        });
        let chunk = bytes::Bytes::from(b"0,".repeat(32 * 1024));
        let tail = futures_util::stream::repeat_with(move || Ok(chunk.clone()));
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from_stream(futures_util::StreamExt::chain(
                head, tail,
            )))
            .unwrap()
    }
    serve_in_background(axum::Router::new().fallback(handle))
}

const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>user</form></body></html>";

/// Every request answered 200 with a login page.
fn html_server() -> String {
    async fn handle() -> Response {
        Response::builder()
            .status(200)
            .header("content-type", "text/html; charset=utf-8")
            .body(Body::from(LOGIN_PAGE))
            .unwrap()
    }
    serve_in_background(axum::Router::new().fallback(handle))
}

/// `dbxport ARGS` against `host`, with a token in the environment and an empty HOME.
fn dbxport(home: &Path, host: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(crate::common::dbxport_bin());
    c.current_dir(home)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DATABRICKS_HOST", host)
        .env("DATABRICKS_TOKEN", "dapi-hostile-test")
        .env("RUST_BACKTRACE", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("dbxport runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn no_panic(o: &Output) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked")
            && !err.contains("backtrace")
            && !err.contains("memory allocation"),
        "{err}"
    );
}

/// A small valid bundle (two folders), for plan and import.
fn small_bundle(dir: &Path) -> PathBuf {
    let settings = BagSettings::new(
        Source {
            host: "https://source.example.invalid".into(),
            workspace_id: "1".into(),
        },
        json!({"test": "hostile"}),
    );
    let bag = dir.join(&settings.bag_name);
    let b = BagBuilder::create(&bag, settings, None).unwrap();
    b.add(Resource::directory("/Shared/a", 1)).unwrap();
    b.add(Resource::directory("/Shared/a/b", 2)).unwrap();
    let bag = b.finalize().unwrap();
    let out = dir.join("small.zip");
    pack(&bag, &out, &PackOptions::default()).unwrap();
    out
}

#[test]
fn an_endless_answer_fails_export_with_a_clear_error_and_writes_nothing() {
    let host = endless_json_server();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.zip");
    let o = dbxport(
        tmp.path(),
        &host,
        &["export", "-o", out.to_str().unwrap()],
        &[],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    no_panic(&o);
    assert!(
        err.contains("GET /api/2.0/preview/scim/v2/Me: the answer is larger than 64 MiB"),
        "{err}"
    );
    assert!(err.contains("--max-response-mb"), "{err}");
    assert!(!out.exists(), "a bundle was written");

    // The cap is configurable (here through the environment).
    let o = dbxport(
        tmp.path(),
        &host,
        &["export", "-o", out.to_str().unwrap()],
        &[("DBXPORT_MAX_RESPONSE_MB", "1")],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("larger than 1 MiB"), "{err}");
    assert!(!out.exists(), "a bundle was written");
}

#[test]
fn an_html_page_with_status_200_is_named_and_nothing_is_written() {
    let host = html_server();
    let tmp = tempfile::tempdir().unwrap();
    let want = format!("{host} answered with an HTML page, not the Databricks API: check the URL");

    let out = tmp.path().join("x.zip");
    let o = dbxport(
        tmp.path(),
        &host,
        &["export", "-o", out.to_str().unwrap()],
        &[],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    no_panic(&o);
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("cannot decode"), "{err}");
    assert!(!out.exists(), "a bundle was written");

    let bundle = small_bundle(tmp.path());
    for cmd in ["plan", "import", "diff"] {
        let o = dbxport(tmp.path(), &host, &[cmd, bundle.to_str().unwrap()], &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        no_panic(&o);
        assert!(err.contains(&want), "{cmd}: {err}");
        assert!(err.contains(&format!("dbxport: {cmd}: ")), "{cmd}: {err}");
    }
    let journals: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("journal"))
        .collect();
    assert!(journals.is_empty(), "written: {journals:?}");
}

#[test]
fn a_bundle_that_fails_verification_names_the_command_that_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("broken.zip");
    std::fs::write(&bundle, b"not a zip at all").unwrap();
    // No request is made: the bundle is checked first.
    for cmd in ["plan", "import", "diff"] {
        let o = dbxport(
            tmp.path(),
            "http://127.0.0.1:9",
            &[cmd, bundle.to_str().unwrap()],
            &[],
        );
        let err = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "{cmd}: {err}");
        no_panic(&o);
        assert!(
            err.contains(&format!("dbxport: {cmd}: bundle")),
            "{cmd}: {err}"
        );
        for other in ["plan", "import", "diff"].iter().filter(|c| **c != cmd) {
            assert!(!err.contains(&format!("dbxport: {other}:")), "{cmd}: {err}");
        }
    }
    let o = dbxport(
        tmp.path(),
        "http://127.0.0.1:9",
        &["models", "import", bundle.to_str().unwrap()],
        &[],
    );
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("dbxport: models import: bundle"), "{err}");
}

#[tokio::test]
async fn an_html_answer_to_a_json_call_is_not_api_but_an_html_export_is_content() {
    async fn handle() -> Response {
        Response::builder()
            .status(200)
            .header("content-type", "text/html")
            .body(Body::from(LOGIN_PAGE))
            .unwrap()
    }
    let url = serve(axum::Router::new().fallback(handle)).await;
    let c = client(&url, fast());
    let err = c
        .transport()
        .send(Call::get("/api/2.0/workspace/list"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{url} answered with an HTML page")),
        "{err}"
    );
    assert!(err.is_auth_failure(), "an HTML host stops the run: {err}");
    // A notebook exported as HTML is asked for with `Accept: */*` and is content.
    let body = c
        .workspace()
        .export("/n", dbxport::model::workspace::Format::Html, None)
        .await
        .unwrap();
    assert_eq!(&body[..], LOGIN_PAGE.as_bytes());
}

/// A raw server answering the i-th request with `script[i]` (the last repeats): `None` closes
/// the connection after reading the request, without an answer (the server may have applied
/// it), `Some((status, body))` answers.
async fn raw_scripted(script: Vec<Option<(u16, &'static str)>>) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = l.accept().await.unwrap();
            let n = n2.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                loop {
                    let head = got.windows(4).position(|w| w == b"\r\n\r\n");
                    if let Some(h) = head {
                        let text = String::from_utf8_lossy(&got[..h]).to_ascii_lowercase();
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if got.len() >= h + 4 + len {
                            break;
                        }
                    }
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                let i = n.fetch_add(1, Ordering::SeqCst);
                let Some((status, body)) = script[i.min(script.len() - 1)] else {
                    drop(sock);
                    return;
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, n)
}

const GONE: &str = r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Failed to delete secret acl for principal bob in scope s: no such ACL"}"#;

#[tokio::test]
async fn a_secret_acl_delete_is_retried_and_gone_after_a_lost_answer_is_done() {
    // The answer to the delete is lost after the server applied it; the retry finds it gone.
    let (url, n) = raw_scripted(vec![None, Some((404, GONE))]).await;
    let c = client(&url, fast());
    c.secrets().delete_acl("s", "bob").await.unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);

    // An injected 500, then success.
    let (url, n) = raw_scripted(vec![
        Some((500, r#"{"error_code":"INTERNAL_ERROR","message":"boom"}"#)),
        Some((200, "{}")),
    ])
    .await;
    let c = client(&url, fast());
    c.secrets().delete_acl("s", "bob").await.unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);

    // A 404 to the first attempt is still an error: nothing was deleted by this call.
    let (url, n) = raw_scripted(vec![Some((404, GONE))]).await;
    let c = client(&url, fast());
    let err = c.secrets().delete_acl("s", "bob").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .starts_with("POST /api/2.0/secrets/acls/delete scope=s principal=bob: 404"),
        "{err}"
    );
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

/// A small valid bundle holding one registered model (no versions).
fn model_bundle(dir: &Path) -> PathBuf {
    let settings = BagSettings::new(
        Source {
            host: "https://source.example.invalid".into(),
            workspace_id: "1".into(),
        },
        json!({"test": "hostile"}),
    );
    let bag = dir.join(&settings.bag_name);
    let b = BagBuilder::create(&bag, settings, None).unwrap();
    let model: dbxport::model::mlflow::RegisteredModel =
        serde_json::from_value(json!({"name": "m"})).unwrap();
    b.add(Resource::registered_model(&model)).unwrap();
    let bag = b.finalize().unwrap();
    let out = dir.join("model.zip");
    pack(&bag, &out, &PackOptions::default()).unwrap();
    out
}

// The models stage of plan/import talks to an MLflow server through a client of its own; it
// used to build that client from the profile alone, so --max-response-mb (and --http-timeout,
// --retry-timeout) did not reach it: an endless answer was read up to 64 MiB.
#[test]
fn the_models_stage_of_plan_takes_the_transport_flags() {
    let target = dbxport::emulator::Emulator::start_in_background(
        dbxport::emulator::EmulatorConfig::default().with_token("dapi-hostile-test"),
    )
    .unwrap();
    let mlflow = endless_json_server();
    let tmp = tempfile::tempdir().unwrap();
    let bundle = model_bundle(tmp.path());
    let o = dbxport(
        tmp.path(),
        target.url(),
        &[
            "plan",
            bundle.to_str().unwrap(),
            "--mlflow-uri",
            &mlflow,
            "--max-response-mb",
            "1",
        ],
        &[],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    no_panic(&o);
    assert!(err.contains("larger than 1 MiB"), "{err}");
}
