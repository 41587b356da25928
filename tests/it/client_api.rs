//! API modules against in-test servers: paging (jobs get arrays, jobs list, repos, SCIM, UC),
//! workspace import/export shapes, secrets, SQL statements, commands, DBFS chunking, Files API
//! paths and MLflow signed downloads. Each test also checks the number of requests made.

use crate::support::client_server as support;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Json;
use base64::Engine as _;
use bytes::Bytes;
use dbxport::client::workspace::Import;
use dbxport::model::secret::ValueEncoding;
use dbxport::model::workspace::{Format, Language};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::{client, fast, serve};

type Q = Query<HashMap<String, String>>;

fn ok(v: Value) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn err(status: u16, code: &str, msg: &str) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(
            json!({"error_code": code, "message": msg}).to_string(),
        ))
        .unwrap()
}

#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn tasks(range: std::ops::Range<usize>) -> Vec<Value> {
    range
        .map(|i| json!({"task_key": format!("t{i}")}))
        .collect()
}

#[tokio::test]
async fn jobs_get_concatenates_array_pages() {
    async fn h(State(log): State<Arc<Log>>, Query(q): Q) -> Response {
        log.push(q.get("page_token").cloned().unwrap_or_default());
        assert_eq!(q["job_id"], "42");
        match q.get("page_token").map(String::as_str) {
            None => ok(
                json!({"job_id": 42, "created_time": 1, "has_more": true, "next_page_token": "p2",
                "settings": {"name": "big", "tasks": tasks(0..100), "job_clusters": [{"job_cluster_key": "c0"}],
                             "parameters": [{"name": "a", "default": "1"}]}}),
            ),
            Some("p2") => ok(json!({"job_id": 42, "next_page_token": "p3",
                "settings": {"tasks": tasks(100..200), "job_clusters": [], "environments": [{"environment_key": "e"}]}})),
            Some("p3") => ok(json!({"job_id": 42, "settings": {"tasks": tasks(200..230)}})),
            Some(other) => panic!("unexpected token {other}"),
        }
    }
    let log = Arc::new(Log::default());
    let url = serve(
        axum::Router::new()
            .route("/api/2.2/jobs/get", get(h))
            .with_state(log.clone()),
    )
    .await;
    let c = client(&url, fast());
    let job = c.jobs().get(42).await.unwrap();
    let t = dbxport::model::job::tasks(&job.settings);
    assert_eq!(t.len(), 230);
    assert_eq!(t[229]["task_key"], "t229");
    assert_eq!(job.settings["job_clusters"].as_array().unwrap().len(), 1);
    assert_eq!(job.settings["environments"].as_array().unwrap().len(), 1);
    assert_eq!(job.settings["parameters"].as_array().unwrap().len(), 1);
    assert_eq!(job.settings["name"], "big");
    assert_eq!(log.all(), vec!["", "p2", "p3"]);
    assert_eq!(c.stats().requests, 3);
}

#[tokio::test]
async fn jobs_list_pages_and_fetches_only_truncated_jobs() {
    async fn list(State(log): State<Arc<Log>>, Query(q): Q) -> Response {
        log.push(format!(
            "list {}",
            q.get("page_token").cloned().unwrap_or_default()
        ));
        assert_eq!(q["limit"], "100");
        assert_eq!(q["expand_tasks"], "true");
        match q.get("page_token").map(String::as_str) {
            None => ok(
                json!({"jobs": [{"job_id": 1, "settings": {"name": "a", "tasks": tasks(0..1)}},
                                       {"job_id": 2, "has_more": true, "settings": {"name": "b", "tasks": tasks(0..100)}}],
                              "has_more": true, "next_page_token": "n2"}),
            ),
            _ => ok(json!({"jobs": [{"job_id": 3, "settings": {"name": "c"}}], "has_more": false})),
        }
    }
    async fn getj(State(log): State<Arc<Log>>, Query(q): Q) -> Response {
        log.push(format!("get {}", q["job_id"]));
        ok(json!({"job_id": 2, "settings": {"name": "b", "tasks": tasks(0..150)}}))
    }
    let log = Arc::new(Log::default());
    let url = serve(
        axum::Router::new()
            .route("/api/2.2/jobs/list", get(list))
            .route("/api/2.2/jobs/get", get(getj))
            .with_state(log.clone()),
    )
    .await;
    let c = client(&url, fast());
    let jobs = c.jobs().list(true).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(dbxport::model::job::tasks(&jobs[1].settings).len(), 150);
    assert_eq!(log.all(), vec!["list ", "get 2", "list n2"]);
}

#[tokio::test]
async fn repos_list_follows_next_page_token_and_stops_on_a_loop() {
    async fn h(State(log): State<Arc<Log>>, Query(q): Q) -> Response {
        log.push(q.get("next_page_token").cloned().unwrap_or_default());
        assert_eq!(q["path_prefix"], "/Repos/a");
        let repo = |id: i64| json!({"id": id, "url": "https://g/x.git", "provider": "gitHub", "path": format!("/Repos/a/{id}")});
        match q.get("next_page_token").map(String::as_str) {
            None => ok(json!({"repos": [repo(1), repo(2)], "next_page_token": "t2"})),
            Some("t2") => ok(json!({"repos": [repo(3)], "next_page_token": ""})),
            _ => panic!(),
        }
    }
    let log = Arc::new(Log::default());
    let url = serve(
        axum::Router::new()
            .route("/api/2.0/repos", get(h))
            .with_state(log.clone()),
    )
    .await;
    let c = client(&url, fast());
    let repos = c.repos().list(Some("/Repos/a")).await.unwrap();
    assert_eq!(
        repos.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(log.all(), vec!["", "t2"]);

    // A server that hands back the same token forever is an error, not an endless loop.
    async fn looping() -> Response {
        ok(json!({"repos": [], "next_page_token": "same"}))
    }
    let url = serve(axum::Router::new().route("/api/2.0/repos", get(looping))).await;
    let c = client(&url, fast());
    let e = c.repos().list(None).await.unwrap_err();
    assert!(e.to_string().contains("page token `same` repeats"), "{e}");
    assert_eq!(c.stats().requests, 2);
}

#[tokio::test]
async fn workspace_shapes() {
    async fn h(State(log): State<Arc<Log>>, req: Request) -> Response {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let ct = req
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        log.push(format!("{path}?{query} {ct}"));
        match path.as_str() {
            "/api/2.0/workspace/list" => ok(json!({"objects": [
                {"object_type": "NOTEBOOK", "path": "/a/nb", "object_id": 7, "language": "PYTHON"},
                {"object_type": "DIRECTORY", "path": "/a/d", "object_id": 8}]})),
            "/api/2.0/workspace/export" if query.contains("big") => err(
                400,
                "MAX_NOTEBOOK_SIZE_EXCEEDED",
                "File size exceeds the maximum allowed size",
            ),
            "/api/2.0/workspace/export" => Response::builder()
                .status(200)
                .body(Body::from("# Databricks notebook source\nprint(1)\n"))
                .unwrap(),
            "/api/2.0/workspace/import" if ct.starts_with("application/json") => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["path"], "/a/nb2");
                assert_eq!(v["format"], "SOURCE");
                assert_eq!(v["language"], "PYTHON");
                assert_eq!(v["overwrite"], true);
                let content = base64::engine::general_purpose::STANDARD
                    .decode(v["content"].as_str().unwrap())
                    .unwrap();
                assert_eq!(content, b"print(2)");
                ok(json!({}))
            }
            "/api/2.0/workspace/import" => {
                assert!(ct.starts_with("multipart/form-data"), "{ct}");
                let text = String::from_utf8_lossy(&body);
                assert!(text.contains("name=\"path\"\r\n\r\n/a/f.bin"), "{text}");
                assert!(text.contains("name=\"format\"\r\n\r\nAUTO"), "{text}");
                assert!(!text.contains("name=\"overwrite\""), "{text}");
                assert!(
                    text.contains("name=\"content\"; filename=\"f.bin\"\r\n\r\nraw\x00bytes"),
                    "{text}"
                );
                ok(json!({}))
            }
            "/api/2.0/workspace/mkdirs" => ok(json!({})),
            _ => err(404, "ENDPOINT_NOT_FOUND", "no"),
        }
    }
    let log = Arc::new(Log::default());
    let url = serve(axum::Router::new().fallback(h).with_state(log.clone())).await;
    let c = client(&url, fast());
    let w = c.workspace();
    let objs = w.list("/a").await.unwrap();
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].language, Some(Language::Python));
    let src = w.export("/a/nb", Format::Source, None).await.unwrap();
    assert!(src.starts_with(b"# Databricks notebook source"));
    let e = w
        .export("/a/big", Format::Jupyter, Some(true))
        .await
        .unwrap_err();
    assert!(e.is_too_large(), "{e}");
    assert!(matches!(e, dbxport::client::ClientError::TooLarge(_)));
    assert!(e.to_string().contains("path=/a/big format=JUPYTER"), "{e}");
    w.import(&Import {
        path: "/a/nb2",
        content: Bytes::from_static(b"print(2)"),
        format: Format::Source,
        language: Some(Language::Python),
        overwrite: true,
    })
    .await
    .unwrap();
    w.upload(&Import {
        path: "/a/f.bin",
        content: Bytes::from_static(b"raw\x00bytes"),
        format: Format::Auto,
        language: None,
        overwrite: false,
    })
    .await
    .unwrap();
    w.mkdirs("/a/x").await.unwrap();
    let l = log.all();
    assert!(
        l[1].contains("path=%2Fa%2Fnb&format=SOURCE&direct_download=true"),
        "{}",
        l[1]
    );
    assert!(l[2].contains("outputs=ALL"), "{}", l[2]);
    assert_eq!(c.stats().requests, 6);
}

#[tokio::test]
async fn secrets_put_get_and_acls() {
    async fn h(State(log): State<Arc<Log>>, req: Request) -> Response {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        log.push(format!("{path} {}", String::from_utf8_lossy(&body)));
        match path.as_str() {
            "/api/2.0/secrets/put" => ok(json!({})),
            "/api/2.0/secrets/get" => {
                assert_eq!(query, "scope=s&key=bin");
                ok(
                    json!({"key": "bin", "value": base64::engine::general_purpose::STANDARD.encode([0u8, 159, 146, 150])}),
                )
            }
            "/api/2.0/secrets/acls/list" => {
                ok(json!({"items": [{"principal": "users", "permission": "READ"}]}))
            }
            "/api/2.0/secrets/scopes/list" => ok(
                json!({"scopes": [{"name": "s", "backend_type": "DATABRICKS"},
                {"name": "kv", "backend_type": "AZURE_KEYVAULT", "keyvault_metadata": {"resource_id": "r", "dns_name": "d"}}]}),
            ),
            "/api/2.0/secrets/list" => {
                ok(json!({"secrets": [{"key": "bin", "last_updated_timestamp": 5}]}))
            }
            _ => err(404, "ENDPOINT_NOT_FOUND", "no"),
        }
    }
    let log = Arc::new(Log::default());
    let url = serve(axum::Router::new().fallback(h).with_state(log.clone())).await;
    let c = client(&url, fast());
    let s = c.secrets();
    s.put("s", "str", "héllo".as_bytes(), ValueEncoding::String)
        .await
        .unwrap();
    s.put("s", "bin", &[0, 159, 146, 150], ValueEncoding::Bytes)
        .await
        .unwrap();
    let e = s
        .put("s", "bad", &[0xff], ValueEncoding::String)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must be UTF-8"), "{e}");
    assert_eq!(&s.get("s", "bin").await.unwrap()[..], &[0, 159, 146, 150]);
    assert_eq!(s.list_acls("s").await.unwrap()[0].principal, "users");
    assert_eq!(s.list_scopes().await.unwrap().len(), 2);
    assert_eq!(s.list_secrets("s").await.unwrap()[0].key, "bin");
    let l = log.all();
    let put1: Value =
        serde_json::from_str(l[0].strip_prefix("/api/2.0/secrets/put ").unwrap()).unwrap();
    assert_eq!(
        put1,
        json!({"scope": "s", "key": "str", "string_value": "héllo"})
    );
    let put2: Value =
        serde_json::from_str(l[1].strip_prefix("/api/2.0/secrets/put ").unwrap()).unwrap();
    assert_eq!(put2["bytes_value"], "AJ+Slg==");
    assert_eq!(c.stats().requests, 6);
}

#[tokio::test]
async fn sql_statement_polls_and_fetches_every_chunk() {
    #[derive(Default)]
    struct S {
        polls: Mutex<usize>,
        log: Log,
    }
    async fn submit(State(s): State<Arc<S>>, Json(b): Json<Value>) -> Response {
        s.log.push("submit");
        if b["statement"].as_str().unwrap().starts_with("GRANT") {
            return ok(json!({"statement_id": "bad", "status": {"state": "FAILED",
                "error": {"error_code": "PRINCIPAL_DOES_NOT_EXIST", "message": "no such principal"}}}));
        }
        assert_eq!(b["warehouse_id"], "wh");
        assert_eq!(b["disposition"], "INLINE");
        ok(json!({"statement_id": "st1", "status": {"state": "PENDING"}}))
    }
    async fn poll(State(s): State<Arc<S>>, Path(id): Path<String>) -> Response {
        s.log.push(format!("poll {id}"));
        let mut n = s.polls.lock().unwrap();
        *n += 1;
        if *n < 2 {
            return ok(json!({"statement_id": id, "status": {"state": "RUNNING"}}));
        }
        ok(json!({"statement_id": id, "status": {"state": "SUCCEEDED"},
            "manifest": {"schema": {"columns": [{"name": "objectKey", "position": 3}, {"name": "Principal", "position": 0},
                                                  {"name": "ActionType", "position": 1}, {"name": "ObjectType", "position": 2}]},
                          "total_chunk_count": 2},
            "result": {"chunk_index": 0, "data_array": [["a", "SELECT", "TABLE", "db.t"]], "next_chunk_index": 1}}))
    }
    async fn chunk(State(s): State<Arc<S>>, Path((id, i)): Path<(String, String)>) -> Response {
        s.log.push(format!("chunk {id} {i}"));
        ok(json!({"chunk_index": 1, "data_array": [["b", "OWN", "TABLE", null]]}))
    }
    let s = Arc::new(S::default());
    let url = serve(
        axum::Router::new()
            .route("/api/2.0/sql/statements", post(submit))
            .route("/api/2.0/sql/statements/{id}", get(poll))
            .route("/api/2.0/sql/statements/{id}/result/chunks/{i}", get(chunk))
            .with_state(s.clone()),
    )
    .await;
    let c = client(&url, fast());
    let st = dbxport::client::sql::Statement {
        statement: "SHOW GRANTS ON TABLE db.t",
        warehouse_id: "wh",
        catalog: None,
        schema: None,
        read_only: true,
        timeout: std::time::Duration::from_secs(30),
    };
    let r = c.sql().execute(&st).await.unwrap();
    assert_eq!(
        r.columns,
        vec!["Principal", "ActionType", "ObjectType", "objectKey"]
    );
    assert_eq!(r.column("principal"), Some(0));
    assert_eq!(r.rows.len(), 2);
    assert_eq!(
        r.rows[1],
        vec![
            Some("b".into()),
            Some("OWN".into()),
            Some("TABLE".into()),
            None
        ]
    );
    assert_eq!(
        s.log.all(),
        vec!["submit", "poll st1", "poll st1", "chunk st1 1"]
    );
    let e = c
        .sql()
        .execute(&dbxport::client::sql::Statement {
            statement: "GRANT SELECT ON TABLE t TO `nobody`",
            read_only: false,
            ..st
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "sql statement `GRANT SELECT ON TABLE t TO `nobody``: FAILED PRINCIPAL_DOES_NOT_EXIST: no such principal"
    );
}

#[tokio::test]
async fn commands_always_destroy_their_context() {
    async fn h(State(log): State<Arc<Log>>, req: Request) -> Response {
        let path = req.uri().path().to_string();
        log.push(path.clone());
        match path.as_str() {
            "/api/1.2/contexts/create" => ok(json!({"id": "ctx1"})),
            "/api/1.2/commands/execute" => ok(json!({"id": "cmd1"})),
            "/api/1.2/commands/status" => ok(json!({"id": "cmd1", "status": "Finished",
                "results": {"resultType": "error", "summary": "NameError: name 'x' is not defined", "cause": "Traceback..."}})),
            "/api/1.2/contexts/destroy" => ok(json!({})),
            _ => err(404, "ENDPOINT_NOT_FOUND", "no"),
        }
    }
    let log = Arc::new(Log::default());
    let url = serve(axum::Router::new().fallback(h).with_state(log.clone())).await;
    let c = client(&url, fast());
    let e = c
        .commands()
        .run(
            "cl-1",
            "python",
            "print(x)",
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("NameError: name 'x' is not defined"),
        "{e}"
    );
    assert!(e.to_string().contains("cluster_id=cl-1"), "{e}");
    assert_eq!(
        log.all(),
        vec![
            "/api/1.2/contexts/create",
            "/api/1.2/commands/execute",
            "/api/1.2/commands/status",
            "/api/1.2/contexts/destroy"
        ]
    );
}

#[tokio::test]
async fn dbfs_reads_and_writes_in_one_megabyte_blocks() {
    #[derive(Default)]
    struct Fs {
        file: Mutex<Vec<u8>>,
        log: Log,
    }
    async fn h(State(fs): State<Arc<Fs>>, req: Request) -> Response {
        let path = req.uri().path().to_string();
        let q: HashMap<String, String> = serde_urlencoded_parse(req.uri().query().unwrap_or(""));
        let body = axum::body::to_bytes(req.into_body(), 4 << 20)
            .await
            .unwrap();
        let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        fs.log.push(path.clone());
        let b64 = base64::engine::general_purpose::STANDARD;
        match path.as_str() {
            "/api/2.0/dbfs/get-status" => ok(
                json!({"path": q["path"], "is_dir": false, "file_size": fs.file.lock().unwrap().len()}),
            ),
            "/api/2.0/dbfs/read" => {
                let off: usize = q["offset"].parse().unwrap();
                let len: usize = q["length"].parse().unwrap();
                assert!(len <= 1 << 20);
                let f = fs.file.lock().unwrap();
                let end = (off + len).min(f.len());
                ok(json!({"bytes_read": end - off, "data": b64.encode(&f[off..end])}))
            }
            "/api/2.0/dbfs/create" => {
                fs.file.lock().unwrap().clear();
                ok(json!({"handle": 9}))
            }
            "/api/2.0/dbfs/add-block" => {
                let data = b64.decode(b["data"].as_str().unwrap()).unwrap();
                assert!(data.len() <= 1 << 20);
                fs.file.lock().unwrap().extend_from_slice(&data);
                ok(json!({}))
            }
            "/api/2.0/dbfs/close" => ok(json!({})),
            _ => err(404, "ENDPOINT_NOT_FOUND", "no"),
        }
    }
    fn serde_urlencoded_parse(q: &str) -> HashMap<String, String> {
        reqwest::Url::parse(&format!("http://x/?{q}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
    let fs = Arc::new(Fs::default());
    let url = serve(axum::Router::new().fallback(h).with_state(fs.clone())).await;
    let c = client(&url, fast());
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
    let n = c
        .dbfs()
        .upload("dbfs:/models/m.bin", &data[..], true)
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(*fs.file.lock().unwrap(), data);
    let back = c
        .dbfs()
        .read("dbfs:/models/m.bin")
        .await
        .unwrap()
        .collect_bytes()
        .await
        .unwrap();
    assert_eq!(&back[..], &data[..]);
    let l = fs.log.all();
    let count = |p: &str| l.iter().filter(|x| x.as_str() == p).count();
    assert_eq!(count("/api/2.0/dbfs/add-block"), 3);
    assert_eq!(count("/api/2.0/dbfs/read"), 3);
    assert_eq!(count("/api/2.0/dbfs/get-status"), 1);
    assert_eq!(l.len(), 9);
}

#[tokio::test]
async fn scim_paging_stops_at_total_results() {
    async fn h(State(log): State<Arc<Log>>, Query(q): Q) -> Response {
        let start: usize = q["startIndex"].parse().unwrap();
        let count: usize = q["count"].parse().unwrap();
        log.push(start.to_string());
        let total = 2500;
        let users: Vec<Value> = (start..(start + count).min(total + 1))
            .map(|i| json!({"id": i.to_string(), "userName": format!("u{i}@x")}))
            .collect();
        ok(
            json!({"totalResults": total, "startIndex": start, "itemsPerPage": users.len(), "Resources": users}),
        )
    }
    let log = Arc::new(Log::default());
    let url = serve(
        axum::Router::new()
            .route("/api/2.0/preview/scim/v2/Users", get(h))
            .with_state(log.clone()),
    )
    .await;
    let c = client(&url, fast());
    let users = c.scim().list_users(None).await.unwrap();
    assert_eq!(users.len(), 2500);
    assert_eq!(users[2499].user_name, "u2500@x");
    assert_eq!(log.all(), vec!["1", "1001", "2001"]);
}

#[tokio::test]
async fn permissions_unity_and_files_paths() {
    async fn h(State(log): State<Arc<Log>>, req: Request) -> Response {
        let line = format!("{} {}", req.method(), req.uri());
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        log.push(format!("{line} {}", String::from_utf8_lossy(&body)));
        if line.starts_with("GET /api/2.1/unity-catalog/permissions/table/main.sales.orders%20x") {
            if line.contains("page_token=pg2") {
                return ok(
                    json!({"privilege_assignments": [{"principal": "b", "privileges": ["MODIFY"]}]}),
                );
            }
            return ok(
                json!({"privilege_assignments": [{"principal": "a", "privileges": ["SELECT"]}], "next_page_token": "pg2"}),
            );
        }
        if line.starts_with("PUT /api/2.0/permissions/jobs/7") {
            return ok(
                json!({"object_id": "/jobs/7", "object_type": "job", "access_control_list": []}),
            );
        }
        if line.starts_with("PUT /api/2.0/fs/files/Volumes/c/s/v/a%20b%23.txt?overwrite=true") {
            return Response::builder().status(204).body(Body::empty()).unwrap();
        }
        err(404, "ENDPOINT_NOT_FOUND", &line)
    }
    let log = Arc::new(Log::default());
    let url = serve(axum::Router::new().fallback(h).with_state(log.clone())).await;
    let c = client(&url, fast());
    let g = c
        .unity()
        .get_grants("TABLE", "main.sales.orders x")
        .await
        .unwrap();
    assert_eq!(g.securable_type, "table");
    assert_eq!(g.privilege_assignments.len(), 2);
    use dbxport::model::permissions::{AccessControlRequest, PrincipalRef};
    c.permissions()
        .set(
            "jobs",
            "7",
            &[AccessControlRequest {
                principal: PrincipalRef::UserName("a@x".into()),
                permission_level: "IS_OWNER".into(),
            }],
        )
        .await
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let local = d.path().join("up.txt");
    std::fs::write(&local, b"file body").unwrap();
    c.files()
        .upload_file("/Volumes/c/s/v/a b#.txt", local, true)
        .await
        .unwrap();
    let l = log.all();
    assert!(
        l[2].ends_with(
            r#"{"access_control_list":[{"user_name":"a@x","permission_level":"IS_OWNER"}]}"#
        ),
        "{}",
        l[2]
    );
    assert!(l[3].ends_with(" file body"), "{}", l[3]);
    assert_eq!(c.stats().requests, 4);
}

#[tokio::test]
async fn mlflow_signed_downloads_go_without_workspace_credentials() {
    #[derive(Default)]
    struct S {
        base: Mutex<String>,
        log: Log,
    }
    async fn h(State(s): State<Arc<S>>, req: Request) -> Response {
        let auth = req.headers().get("authorization").is_some();
        let extra = req
            .headers()
            .get("x-sig-extra")
            .map(|v| v.to_str().unwrap().to_string());
        let path = req.uri().path().to_string();
        s.log.push(format!(
            "{path} auth={auth} extra={}",
            extra.unwrap_or_default()
        ));
        match path.as_str() {
            "/api/2.0/mlflow/model-versions/get-signed-download-uri" => {
                let base = s.base.lock().unwrap().clone();
                ok(
                    json!({"signed_uri": format!("{base}/signed/model.pkl?sig=SECRETSIG"), "headers": [{"name": "x-sig-extra", "value": "v"}]}),
                )
            }
            "/signed/model.pkl" => Response::builder()
                .status(200)
                .body(Body::from("pickle-bytes"))
                .unwrap(),
            "/api/2.0/mlflow/registered-models/search" => {
                ok(json!({"registered_models": [{"name": "m"}]}))
            }
            "/api/2.0/mlflow/databricks/registered-models/get" => ok(
                json!({"registered_model_databricks": {"id": "abc123", "name": "m", "permission_level": "CAN_MANAGE"}}),
            ),
            "/api/2.0/mlflow/model-versions/list-artifacts" => ok(
                json!({"root_uri": "dbfs:/x", "files": [{"path": "model.pkl", "is_dir": false, "file_size": 12}]}),
            ),
            _ => err(404, "ENDPOINT_NOT_FOUND", "no"),
        }
    }
    let s = Arc::new(S::default());
    let url = serve(axum::Router::new().fallback(h).with_state(s.clone())).await;
    *s.base.lock().unwrap() = url.clone();
    let c = client(&url, fast());
    let m = c.mlflow();
    assert_eq!(m.search_models(None).await.unwrap()[0].name, "m");
    let d = m.get_model_databricks("m").await.unwrap();
    assert_eq!((d.id.as_str(), d.model.name.as_str()), ("abc123", "m"));
    let l = m.list_version_artifacts("m", "1", None).await.unwrap();
    assert_eq!(l.root_uri.as_deref(), Some("dbfs:/x"));
    assert_eq!(l.files[0].file_size, Some(12));
    let body = m
        .download_version_artifact("m", "1", "model.pkl")
        .await
        .unwrap()
        .collect_bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"pickle-bytes");
    let log = s.log.all();
    assert_eq!(
        log[3],
        "/api/2.0/mlflow/model-versions/get-signed-download-uri auth=true extra="
    );
    assert_eq!(log[4], "/signed/model.pkl auth=false extra=v");
    assert_eq!(c.stats().by_call["GET <external>"], 1);
}
