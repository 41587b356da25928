//! The emulator's REST APIs over raw HTTP, family by family: shapes, status codes, error bodies
//! and paging, against a small seed written by the test.

use crate::support::emulator as support;

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

async fn start() -> (EmulatorHandle, Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    small_seed(dir.path());
    let config = EmulatorConfig {
        sql_chunk_rows: 2,
        ..EmulatorConfig::default()
    }
    .with_seed(dir.path())
    .with_fixed_clock(1_700_000_000_000);
    let emu = Emulator::start(config).await.expect("emulator starts");
    let api = Api::new(emu.url(), ADMIN_TOKEN);
    (emu, api, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_unknown_endpoints() {
    let (emu, api, _d) = start().await;
    let anon = Api::anonymous(emu.url());
    let r = anon.get("/api/2.0/workspace/list?path=/").await;
    assert_eq!(r.code(), 401);
    assert_eq!(
        r.json,
        json!({"error_code": 401, "message": "Credential was not sent or was of an unsupported type for this API."})
    );
    let wrong = Api::new(emu.url(), "dapi-wrong");
    let r = wrong.get("/api/2.0/workspace/list?path=/").await;
    assert_eq!(r.code(), 403);
    assert_eq!(
        r.json,
        json!({"error_code": 403, "message": "Invalid access token."})
    );
    assert_eq!(
        r.headers["x-databricks-reason-phrase"],
        "Invalid access token."
    );
    // Host metadata is public and advertises the OIDC endpoint and the workspace id.
    let meta = anon.get("/.well-known/databricks-config").await.ok();
    assert_eq!(meta["workspace_id"], "555000111");
    assert_eq!(meta["oidc_endpoint"], format!("{}/oidc", emu.url()));
    let r = api.get("/api/2.0/no/such/thing").await;
    assert_eq!(r.headers["x-databricks-org-id"], "555000111");
    let msg = r.err(404, "ENDPOINT_NOT_FOUND");
    assert!(msg.contains("GET /api/2.0/no/such/thing"), "{msg}");
    // A known path with the wrong method is just as loud.
    api.call(Method::DELETE, "/api/2.0/workspace/list", None)
        .await
        .err(404, "ENDPOINT_NOT_FOUND");
    let me = Api::new(emu.url(), USER_TOKEN)
        .get("/api/2.0/preview/scim/v2/Me")
        .await
        .ok();
    assert_eq!(me["userName"], "bob@example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_list_status_and_languages() {
    let (_emu, api, _d) = start().await;
    let base = "/Users/alice@example.org/etl";
    let list = api
        .get(&format!("/api/2.0/workspace/list?path={}", q(base)))
        .await
        .ok();
    let objs = list["objects"].as_array().expect("objects");
    let by = |name: &str| {
        objs.iter()
            .find(|o| o["path"] == format!("{base}/{name}"))
            .unwrap_or_else(|| panic!("{name} missing from {objs:?}"))
            .clone()
    };
    assert_eq!(by("load")["language"], "PYTHON");
    assert_eq!(by("load")["object_id"], 777);
    assert_eq!(by("load")["created_at"], 1_600_000_000_000i64);
    assert_eq!(by("Report")["language"], "SCALA");
    assert_eq!(by("query")["language"], "SQL");
    assert_eq!(by("plot")["language"], "R");
    assert_eq!(by("data.csv")["object_type"], "FILE");
    assert_eq!(by("data.csv")["size"], 8);
    // A .py file without the header is a workspace file, not a notebook.
    assert_eq!(by("helpers.py")["object_type"], "FILE");
    assert_eq!(objs.len(), 6);
    // get-status: bare ObjectInfo; /Workspace prefix accepted; repo root is REPO with the repo id.
    let st = api
        .get(&format!(
            "/api/2.0/workspace/get-status?path={}",
            q(&format!("/Workspace{base}/load"))
        ))
        .await
        .ok();
    assert_eq!(st["path"], format!("{base}/load"));
    let repo = api
        .get("/api/2.0/workspace/get-status?path=/Repos/alice@example.org/proj")
        .await
        .ok();
    assert_eq!(
        (repo["object_type"].as_str(), repo["object_id"].as_i64()),
        (Some("REPO"), Some(900))
    );
    let esc = api
        .get(&format!(
            "/api/2.0/workspace/get-status?path={}",
            q("/Shared/What if?")
        ))
        .await
        .ok();
    assert_eq!(esc["object_type"], "NOTEBOOK");
    let archive = api
        .get("/api/2.0/workspace/get-status?path=/Shared/archive")
        .await
        .ok();
    assert_eq!(archive["object_type"], "DIRECTORY");
    // Empty folders list as {}.
    assert_eq!(
        api.get("/api/2.0/workspace/list?path=/Shared/archive")
            .await
            .ok(),
        json!({})
    );
    let msg = api
        .get("/api/2.0/workspace/get-status?path=/nope")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(msg, "Path (/nope) doesn't exist.");
    // notebooks_modified_after keeps folders and files, drops older notebooks.
    let recent = api
        .get(&format!(
            "/api/2.0/workspace/list?path={}&notebooks_modified_after=1650000000000",
            q(base)
        ))
        .await
        .ok();
    let paths: Vec<&str> = recent["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert!(
        !paths.contains(&format!("{base}/load").as_str()),
        "{paths:?}"
    );
    assert!(paths.contains(&format!("{base}/data.csv").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_import_rules() {
    let (emu, api, _d) = start().await;
    let src = b"# Databricks notebook source\nprint(42)\n";
    // No implicit parent creation.
    let msg = api
        .post(
            "/api/2.0/workspace/import",
            json!({"path": "/Shared/new/nb", "content": b64(src), "format": "SOURCE", "language": "PYTHON"}),
        )
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    assert!(msg.contains("/Shared/new"), "{msg}");
    api.post(
        "/api/2.0/workspace/mkdirs",
        json!({"path": "/Shared/new/deeper"}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/nb", "content": b64(src), "format": "SOURCE", "language": "PYTHON"}),
    )
    .await
    .ok();
    // Existing path: overwrite=false refuses, overwrite=true replaces and keeps the id.
    let id = api
        .get("/api/2.0/workspace/get-status?path=/Shared/new/nb")
        .await
        .ok()["object_id"]
        .clone();
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/nb", "content": b64(src), "format": "SOURCE", "language": "PYTHON"}),
    )
    .await
    .err(400, "RESOURCE_ALREADY_EXISTS");
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/nb", "content": b64(b"print(7)\n"), "format": "SOURCE",
               "language": "PYTHON", "overwrite": true}),
    )
    .await
    .ok();
    let st = api
        .get("/api/2.0/workspace/get-status?path=/Shared/new/nb")
        .await
        .ok();
    assert_eq!(st["object_id"], id);
    let exp = api
        .get("/api/2.0/workspace/export?path=/Shared/new/nb&format=SOURCE")
        .await
        .ok();
    assert_eq!(exp["file_type"], "py");
    // The header is put in front of source that lacks it.
    assert_eq!(
        unb64(exp["content"].as_str().unwrap()),
        b"# Databricks notebook source\nprint(7)\n"
    );
    // SOURCE of a single file needs a language; bad formats and languages are refused.
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/x", "content": b64(src), "format": "SOURCE"}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/x", "content": b64(src), "format": "source", "language": "PYTHON"}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // AUTO: a .sql file with the header becomes a notebook without the extension; others stay files.
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/q.sql", "content": b64(b"-- Databricks notebook source\nSELECT 2\n"), "format": "AUTO"}),
    )
    .await
    .ok();
    let q1 = api
        .get("/api/2.0/workspace/get-status?path=/Shared/new/q")
        .await
        .ok();
    assert_eq!(
        (q1["object_type"].as_str(), q1["language"].as_str()),
        (Some("NOTEBOOK"), Some("SQL"))
    );
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/conf.yaml", "content": b64(b"a: 1\n"), "format": "AUTO"}),
    )
    .await
    .ok();
    assert_eq!(
        api.get("/api/2.0/workspace/get-status?path=/Shared/new/conf.yaml")
            .await
            .ok()["object_type"],
        "FILE"
    );
    // Multipart upload, as the SDK's workspace.upload sends it (raw bytes in part `content`).
    let form = reqwest::multipart::Form::new()
        .text("path", "/Shared/new/uploaded")
        .text("format", "SOURCE")
        .text("language", "SCALA")
        .part(
            "content",
            reqwest::multipart::Part::bytes(b"println(3)\n".to_vec()),
        );
    let r = api
        .raw(
            api.http
                .post(api.url("/api/2.0/workspace/import"))
                .multipart(form),
        )
        .await;
    assert_eq!(r.json, json!({}), "{:?}", String::from_utf8_lossy(&r.bytes));
    let up = api
        .get("/api/2.0/workspace/get-status?path=/Shared/new/uploaded")
        .await
        .ok();
    assert_eq!(up["language"], "SCALA");
    // The 10 MB limit.
    let big = vec![b'#'; 10 * 1024 * 1024 + 1];
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/new/big", "content": b64(&big), "format": "AUTO"}),
    )
    .await
    .err(400, "MAX_NOTEBOOK_SIZE_EXCEEDED");
    // mkdirs through a file, delete rules.
    api.post(
        "/api/2.0/workspace/mkdirs",
        json!({"path": "/Shared/new/conf.yaml/sub"}),
    )
    .await
    .err(400, "RESOURCE_ALREADY_EXISTS");
    api.post("/api/2.0/workspace/delete", json!({"path": "/Shared/new"}))
        .await
        .err(400, "DIRECTORY_NOT_EMPTY");
    api.post(
        "/api/2.0/workspace/delete",
        json!({"path": "/Shared/new/deeper"}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/workspace/delete",
        json!({"path": "/Shared/new", "recursive": true}),
    )
    .await
    .ok();
    api.get("/api/2.0/workspace/get-status?path=/Shared/new/nb")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.post("/api/2.0/workspace/delete", json!({"path": "/Users"}))
        .await
        .err(403, "PERMISSION_DENIED");
    // Deleting a repo root through the workspace API drops the repo.
    api.post(
        "/api/2.0/workspace/delete",
        json!({"path": "/Repos/alice@example.org/proj", "recursive": true}),
    )
    .await
    .ok();
    api.get("/api/2.0/repos/900")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    drop(emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_export_formats() {
    let (_emu, api, _d) = start().await;
    let nb = "/Users/alice@example.org/etl/load";
    let exp = |fmt: &str| {
        let api = &api;
        let url = format!("/api/2.0/workspace/export?path={}&format={fmt}", q(nb));
        async move { api.get(&url).await }
    };
    let jup = exp("JUPYTER").await.ok();
    assert_eq!(jup["file_type"], "ipynb");
    let ipynb: Value = serde_json::from_slice(&unb64(jup["content"].as_str().unwrap())).unwrap();
    assert_eq!(ipynb["nbformat"], 4);
    assert_eq!(ipynb["cells"].as_array().unwrap().len(), 2);
    let html = exp("HTML").await.ok();
    assert!(String::from_utf8(unb64(html["content"].as_str().unwrap()))
        .unwrap()
        .contains("<html>"));
    let dbc = exp("DBC").await.ok();
    let bytes = unb64(dbc["content"].as_str().unwrap());
    assert!(bytes.starts_with(b"PK"));
    let auto = exp("AUTO").await.ok();
    assert_eq!(auto["file_type"], "py");
    exp("R_MARKDOWN").await.err(400, "INVALID_PARAMETER_VALUE");
    let rmd = api
        .get(&format!(
            "/api/2.0/workspace/export?path={}&format=R_MARKDOWN",
            q("/Users/alice@example.org/etl/plot")
        ))
        .await
        .ok();
    assert!(String::from_utf8(unb64(rmd["content"].as_str().unwrap()))
        .unwrap()
        .contains("```{r}\nplot(1)\n```"));
    // direct_download answers the raw bytes.
    let raw = api
        .get(&format!(
            "/api/2.0/workspace/export?path={}&direct_download=true",
            q(nb)
        ))
        .await;
    assert_eq!(raw.code(), 200);
    assert!(raw
        .bytes
        .starts_with(b"# Databricks notebook source\nprint(\"load\")"));
    // Files export as they are; a folder as a zip (SOURCE: notebooks only; AUTO: files too).
    let csv = api
        .get(&format!(
            "/api/2.0/workspace/export?path={}&direct_download=true",
            q("/Users/alice@example.org/etl/data.csv")
        ))
        .await;
    assert_eq!(csv.bytes, b"a,b\n1,2\n");
    let names = |b64s: &Value| {
        let data = unb64(b64s["content"].as_str().unwrap());
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(data)).unwrap();
        (0..a.len())
            .map(|i| a.by_index(i).unwrap().name().unwrap().to_string())
            .filter(|n| !n.ends_with('/'))
            .collect::<Vec<_>>()
    };
    let src_zip = api
        .get(&format!(
            "/api/2.0/workspace/export?path={}&format=SOURCE",
            q("/Users/alice@example.org/etl")
        ))
        .await
        .ok();
    let mut n = names(&src_zip);
    n.sort();
    assert_eq!(
        n,
        vec![
            "etl/Report.scala",
            "etl/load.py",
            "etl/plot.r",
            "etl/query.sql"
        ]
    );
    let auto_zip = api
        .get(&format!(
            "/api/2.0/workspace/export?path={}&format=AUTO",
            q("/Users/alice@example.org/etl")
        ))
        .await
        .ok();
    assert_eq!(names(&auto_zip).len(), 6);
    api.get(&format!(
        "/api/2.0/workspace/export?path={}&format=HTML",
        q("/Users/alice@example.org/etl")
    ))
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // A notebook whose outputs pass 10 MB: rich exports fail, SOURCE works.
    let big = "/Users/alice@example.org/big";
    for fmt in ["JUPYTER", "HTML", "DBC"] {
        api.get(&format!(
            "/api/2.0/workspace/export?path={}&format={fmt}",
            q(big)
        ))
        .await
        .err(400, "MAX_NOTEBOOK_SIZE_EXCEEDED");
    }
    api.get(&format!(
        "/api/2.0/workspace/export?path={}&format=JUPYTER&outputs=NONE",
        q(big)
    ))
    .await
    .ok();
    api.get(&format!(
        "/api/2.0/workspace/export?path={}&format=SOURCE",
        q(big)
    ))
    .await
    .ok();
    // A DBC archive imports back as the same notebook.
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/from_dbc", "content": dbc["content"], "format": "DBC"}),
    )
    .await
    .ok();
    let back = api
        .get("/api/2.0/workspace/export?path=/Shared/from_dbc&direct_download=true")
        .await;
    assert_eq!(back.bytes, raw.bytes);
    // And so does Jupyter.
    api.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Shared/from_ipynb", "content": jup["content"], "format": "JUPYTER"}),
    )
    .await
    .ok();
    let back = api
        .get("/api/2.0/workspace/export?path=/Shared/from_ipynb&direct_download=true")
        .await;
    assert_eq!(back.bytes, raw.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repos_and_git_credentials() {
    let (emu, api, _d) = start().await;
    let r = api.get("/api/2.0/repos/900").await.ok();
    assert_eq!(r["provider"], "gitHub");
    assert_eq!(r["path"], "/Repos/alice@example.org/proj");
    api.get("/api/2.0/repos/12345")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.post(
        "/api/2.0/repos",
        json!({"url": "https://x/y.git", "provider": "svn"}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.post("/api/2.0/repos", json!({"provider": "gitHub"}))
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    let mut made = Vec::new();
    for i in 0..24 {
        let r = api
            .post(
                "/api/2.0/repos",
                json!({"url": format!("https://github.com/org/r{i:02}.git"), "provider": "GITHUB",
                       "path": format!("/Repos/team/r{i:02}")}),
            )
            .await
            .ok();
        assert_eq!(r["branch"], "main");
        assert_eq!(r["head_commit_id"].as_str().unwrap().len(), 40);
        made.push(r["id"].as_i64().unwrap());
    }
    api.post(
        "/api/2.0/repos",
        json!({"url": "https://github.com/org/r00.git", "provider": "gitHub", "path": "/Repos/team/r00"}),
    )
    .await
    .err(400, "RESOURCE_ALREADY_EXISTS");
    api.post(
        "/api/2.0/repos",
        json!({"url": "https://github.com/org/deep.git", "provider": "gitHub", "path": "/Repos/team/a/b"}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // Paging: 20 per page, the token is a query parameter named next_page_token.
    let first = api.get("/api/2.0/repos?path_prefix=/Repos/team").await.ok();
    assert_eq!(first["repos"].as_array().unwrap().len(), 20);
    let token = first["next_page_token"]
        .as_str()
        .expect("token")
        .to_string();
    let second = api
        .get(&format!(
            "/api/2.0/repos?path_prefix=/Repos/team&next_page_token={token}"
        ))
        .await
        .ok();
    assert_eq!(second["repos"].as_array().unwrap().len(), 4);
    assert!(second.get("next_page_token").is_none());
    // Without a prefix only /Repos is listed: the seed repo plus the 24.
    let all = api.get("/api/2.0/repos").await.ok();
    assert_eq!(all["repos"].as_array().unwrap().len(), 20);
    // Update to a tag detaches HEAD; to a branch sets it.
    api.patch(
        &format!("/api/2.0/repos/{}", made[0]),
        json!({"tag": "v1.0"}),
    )
    .await
    .ok();
    let r = api.get(&format!("/api/2.0/repos/{}", made[0])).await.ok();
    assert!(r.get("branch").is_none(), "{r}");
    api.patch(
        &format!("/api/2.0/repos/{}", made[0]),
        json!({"branch": "dev"}),
    )
    .await
    .ok();
    assert_eq!(
        api.get(&format!("/api/2.0/repos/{}", made[0])).await.ok()["branch"],
        "dev"
    );
    api.patch(
        &format!("/api/2.0/repos/{}", made[0]),
        json!({"sparse_checkout": {"patterns": ["a"]}}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.delete(&format!("/api/2.0/repos/{}", made[0]))
        .await
        .ok();
    api.get("/api/2.0/workspace/get-status?path=/Repos/team/r00")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    // Git credentials: each user sees only their own.
    let mine = api.get("/api/2.0/git-credentials").await.ok();
    assert_eq!(mine["credentials"][0]["credential_id"], 41);
    let bob = Api::new(emu.url(), USER_TOKEN);
    assert_eq!(
        bob.get("/api/2.0/git-credentials").await.ok()["credentials"],
        json!([])
    );
    bob.get("/api/2.0/git-credentials/41")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    let c = bob
        .post(
            "/api/2.0/git-credentials",
            json!({"git_provider": "gitlab", "git_username": "bob", "personal_access_token": "glpat-fake"}),
        )
        .await
        .ok();
    assert_eq!(c["git_provider"], "gitLab");
    assert!(c.get("personal_access_token").is_none());
    let id = c["credential_id"].as_i64().unwrap();
    bob.patch(
        &format!("/api/2.0/git-credentials/{id}"),
        json!({"git_username": "bobby"}),
    )
    .await
    .ok();
    assert_eq!(
        bob.get(&format!("/api/2.0/git-credentials/{id}"))
            .await
            .ok()["git_username"],
        "bobby"
    );
    bob.delete(&format!("/api/2.0/git-credentials/{id}"))
        .await
        .ok();
    bob.delete(&format!("/api/2.0/git-credentials/{id}"))
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_create_get_list_update() {
    let (_emu, api, _d) = start().await;
    // Seeded job: server defaults are filled on read, in both versions.
    for v in ["2.1", "2.2"] {
        let j = api.get(&format!("/api/{v}/jobs/get?job_id=101")).await.ok();
        assert_eq!(j["settings"]["format"], "MULTI_TASK");
        assert_eq!(j["settings"]["email_notifications"], json!({}));
        assert_eq!(j["settings"]["timeout_seconds"], 0);
        assert_eq!(j["settings"]["tasks"][0]["run_if"], "ALL_SUCCESS");
        assert_eq!(
            j["settings"]["tasks"][0]["notebook_task"]["source"],
            "WORKSPACE"
        );
        assert_eq!(j["run_as_user_name"], "alice@example.org");
        assert!(j.get("next_page_token").is_none());
    }
    let msg = api
        .get("/api/2.2/jobs/get?job_id=424242")
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    assert_eq!(msg, "Job 424242 does not exist.");
    // A job of 120 tasks: 2.2 pages arrays at 100, the last page carries no token.
    let tasks: Vec<Value> = (0..120)
        .map(|i| {
            json!({"task_key": format!("t{i:03}"), "existing_cluster_id": CLUSTER,
                        "notebook_task": {"notebook_path": "/Shared/x"}})
        })
        .collect();
    let id = api
        .post(
            "/api/2.2/jobs/create",
            json!({"name": "fan-out", "tasks": tasks, "git_source": {"git_url": "https://github.com/o/r", "git_provider": "GitHub", "git_branch": "main"},
                   "access_control_list": [{"group_name": "analysts", "permission_level": "CAN_MANAGE_RUN"}]}),
        )
        .await
        .ok()["job_id"]
        .as_i64()
        .unwrap();
    let p1 = api
        .get(&format!("/api/2.2/jobs/get?job_id={id}"))
        .await
        .ok();
    assert_eq!(p1["settings"]["tasks"].as_array().unwrap().len(), 100);
    assert_eq!(p1["settings"]["git_source"]["git_provider"], "gitHub");
    assert_eq!(p1["settings"]["tasks"][0]["notebook_task"]["source"], "GIT");
    let tok = p1["next_page_token"]
        .as_str()
        .expect("token on page 1")
        .to_string();
    let p2 = api
        .get(&format!("/api/2.2/jobs/get?job_id={id}&page_token={tok}"))
        .await
        .ok();
    assert_eq!(p2["settings"]["tasks"].as_array().unwrap().len(), 20);
    assert!(
        p2.get("next_page_token").is_none(),
        "last page has no token: {}",
        p2["next_page_token"]
    );
    let whole = api
        .get(&format!("/api/2.1/jobs/get?job_id={id}"))
        .await
        .ok();
    assert_eq!(whole["settings"]["tasks"].as_array().unwrap().len(), 120);
    // Invalid settings.
    api.post(
        "/api/2.2/jobs/create",
        json!({"tasks": [{"task_key": "a"}, {"task_key": "a"}]}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.post(
        "/api/2.2/jobs/create",
        json!({"git_source": {"git_url": "https://x"}}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // List: token paging, offset paging, expand_tasks truncation in 2.2, name filter.
    for i in 0..5 {
        api.post("/api/2.1/jobs/create", json!({"name": format!("j{i}")}))
            .await
            .ok();
    }
    let page1 = api.get("/api/2.2/jobs/list?limit=3").await.ok();
    assert_eq!(page1["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(page1["has_more"], true);
    assert!(page1["jobs"][0]["settings"].get("tasks").is_none());
    let mut seen: Vec<i64> = page1["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_i64().unwrap())
        .collect();
    let mut token = page1["next_page_token"].as_str().map(str::to_string);
    while let Some(t) = token {
        let p = api
            .get(&format!("/api/2.2/jobs/list?limit=3&page_token={t}"))
            .await
            .ok();
        assert!(p.get("prev_page_token").is_some());
        seen.extend(
            p["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["job_id"].as_i64().unwrap()),
        );
        token = p["next_page_token"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 7);
    let off = api.get("/api/2.1/jobs/list?limit=5&offset=5").await.ok();
    assert_eq!(off["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(off["has_more"], false);
    api.get("/api/2.2/jobs/list?limit=101")
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    let exp = api
        .get("/api/2.2/jobs/list?expand_tasks=true&name=FAN-OUT")
        .await
        .ok();
    assert_eq!(exp["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(
        exp["jobs"][0]["settings"]["tasks"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    assert_eq!(exp["jobs"][0]["has_more"], true);
    // Reset replaces all settings, keeping run_as; update merges by key and removes fields.
    api.post(
        "/api/2.2/jobs/reset",
        json!({"job_id": 101, "new_settings": {"name": "renamed", "max_concurrent_runs": 3,
               "tasks": [{"task_key": "a"}, {"task_key": "b", "depends_on": [{"task_key": "a"}]}]}}),
    )
    .await
    .ok();
    let j = api.get("/api/2.2/jobs/get?job_id=101").await.ok();
    assert_eq!(
        (
            j["settings"]["name"].as_str(),
            j["settings"]["max_concurrent_runs"].as_i64()
        ),
        (Some("renamed"), Some(3))
    );
    api.post(
        "/api/2.2/jobs/update",
        json!({"job_id": 101, "new_settings": {"tasks": [{"task_key": "c"}], "tags": {"x": "1"}},
               "fields_to_remove": ["tasks/a", "max_concurrent_runs"]}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE"); // b depends on the removed a
    api.post(
        "/api/2.2/jobs/update",
        json!({"job_id": 101, "new_settings": {"tasks": [{"task_key": "c"}], "tags": {"x": "1"}},
               "fields_to_remove": ["tasks/b", "max_concurrent_runs"]}),
    )
    .await
    .ok();
    let j = api.get("/api/2.2/jobs/get?job_id=101").await.ok();
    let keys: Vec<&str> = j["settings"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["a", "c"]);
    assert_eq!(
        j["settings"]["max_concurrent_runs"], 1,
        "default again once removed"
    );
    assert_eq!(j["settings"]["tags"], json!({"x": "1"}));
    api.post("/api/2.2/jobs/delete", json!({"job_id": 101}))
        .await
        .ok();
    api.post("/api/2.2/jobs/delete", json!({"job_id": 101}))
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    // Job permissions: the creator owns the new job; one owner only.
    let p = api
        .get(&format!("/api/2.0/permissions/jobs/{id}"))
        .await
        .ok();
    assert_eq!(p["object_id"], format!("/jobs/{id}"));
    assert_eq!(p["object_type"], "job");
    let acl = p["access_control_list"].as_array().unwrap();
    assert!(acl.iter().any(|a| a["user_name"] == "alice@example.org"
        && a["all_permissions"][0] == json!({"permission_level": "IS_OWNER", "inherited": false})));
    assert!(acl.iter().any(|a| a["group_name"] == "admins"
        && a["all_permissions"][0] == json!({"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": ["/jobs/"]})));
    let msg = api
        .put(
            &format!("/api/2.0/permissions/jobs/{id}"),
            json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_VIEW"}]}),
        )
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    assert_eq!(msg, "The job must have exactly one owner.");
    api.put(
        &format!("/api/2.0/permissions/jobs/{id}"),
        json!({"access_control_list": [{"group_name": "analysts", "permission_level": "IS_OWNER"}]}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // PATCH hands ownership over.
    let p = api
        .patch(
            &format!("/api/2.0/permissions/jobs/{id}"),
            json!({"access_control_list": [{"user_name": "bob@example.org", "permission_level": "IS_OWNER"}]}),
        )
        .await
        .ok();
    let owners: Vec<&Value> = p["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["all_permissions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["permission_level"] == "IS_OWNER")
        })
        .collect();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["user_name"], "bob@example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_command_execution() {
    let (emu, api, _d) = start().await;
    let scopes = api.get("/api/2.0/secrets/scopes/list").await.ok();
    assert_eq!(
        scopes["scopes"],
        json!([{"name": "etl", "backend_type": "DATABRICKS"},
               {"name": "kv", "backend_type": "AZURE_KEYVAULT",
                "keyvault_metadata": {"resource_id": "/subscriptions/x/vaults/kv", "dns_name": "https://kv.vault.azure.net/"}}])
    );
    let list = api.get("/api/2.0/secrets/list?scope=etl").await.ok();
    assert_eq!(
        list["secrets"][0],
        json!({"key": "cert", "last_updated_timestamp": 1_700_000_000_000i64})
    );
    assert!(
        list.to_string().find("hunter2").is_none(),
        "values are never listed"
    );
    let v = api
        .get("/api/2.0/secrets/get?scope=etl&key=db-password")
        .await
        .ok();
    assert_eq!(v, json!({"key": "db-password", "value": b64(b"hunter2")}));
    let cert = api
        .get("/api/2.0/secrets/get?scope=etl&key=cert")
        .await
        .ok();
    assert_eq!(
        unb64(cert["value"].as_str().unwrap()),
        vec![0, 159, 146, 150, 255]
    );
    api.get("/api/2.0/secrets/get?scope=etl&key=nope")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.get("/api/2.0/secrets/list?scope=nope")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    // Scope rules.
    api.post("/api/2.0/secrets/scopes/create", json!({"scope": "etl"}))
        .await
        .err(400, "RESOURCE_ALREADY_EXISTS");
    api.post(
        "/api/2.0/secrets/scopes/create",
        json!({"scope": "bad name"}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.post(
        "/api/2.0/secrets/scopes/create",
        json!({"scope": "kv2", "scope_backend_type": "AZURE_KEYVAULT",
               "backend_azure_keyvault": {"resource_id": "r", "dns_name": "d"}}),
    )
    .await
    .err(400, "BAD_REQUEST");
    api.post(
        "/api/2.0/secrets/scopes/create",
        json!({"scope": "new", "initial_manage_principal": "users"}),
    )
    .await
    .ok();
    assert_eq!(
        api.get("/api/2.0/secrets/acls/list?scope=new").await.ok(),
        json!({"items": [{"principal": "users", "permission": "MANAGE"}]})
    );
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": "new", "key": "s", "string_value": "v1"}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": "new", "key": "b", "bytes_value": b64(&[255, 0])}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": "new", "key": "x", "string_value": "a", "bytes_value": "YQ=="}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": "kv", "key": "k", "string_value": "v"}),
    )
    .await
    .err(400, "BAD_REQUEST");
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": "new", "key": "big", "string_value": "x".repeat(128 * 1024 + 1)}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // ACLs: put, get, list (key `items`), delete.
    api.post(
        "/api/2.0/secrets/acls/put",
        json!({"scope": "new", "principal": "analysts", "permission": "WRITE"}),
    )
    .await
    .ok();
    assert_eq!(
        api.get("/api/2.0/secrets/acls/get?scope=new&principal=analysts")
            .await
            .ok(),
        json!({"principal": "analysts", "permission": "WRITE"})
    );
    api.post(
        "/api/2.0/secrets/acls/put",
        json!({"scope": "new", "principal": "analysts", "permission": "OWN"}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.post(
        "/api/2.0/secrets/acls/delete",
        json!({"scope": "new", "principal": "analysts"}),
    )
    .await
    .ok();
    api.get("/api/2.0/secrets/acls/get?scope=new&principal=analysts")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.post(
        "/api/2.0/secrets/delete",
        json!({"scope": "new", "key": "s"}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/secrets/delete",
        json!({"scope": "new", "key": "s"}),
    )
    .await
    .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.post("/api/2.0/secrets/scopes/delete", json!({"scope": "new"}))
        .await
        .ok();

    // Command execution on the running cluster: the fixed snippets and nothing else.
    let ctx = api
        .post(
            "/api/1.2/contexts/create",
            json!({"clusterId": CLUSTER, "language": "python"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.get(&format!(
            "/api/1.2/contexts/status?clusterId={CLUSTER}&contextId={ctx}"
        ))
        .await
        .ok()["status"],
        "Running"
    );
    let run = |command: String| {
        let api = &api;
        let ctx = ctx.clone();
        async move {
            let id = api
                .post("/api/1.2/commands/execute",
                      json!({"clusterId": CLUSTER, "contextId": ctx, "language": "python", "command": command}))
                .await
                .ok()["id"]
                .as_str()
                .unwrap()
                .to_string();
            api.get(&format!(
                "/api/1.2/commands/status?clusterId={CLUSTER}&contextId={ctx}&commandId={id}"
            ))
            .await
            .ok()
        }
    };
    let keys = vec![
        ("etl".to_string(), "cert".to_string()),
        ("kv".to_string(), "api-key".to_string()),
        ("etl".to_string(), "missing".to_string()),
    ];
    let r = run(dbxport::model::command::secret_read_command(&keys)).await;
    assert_eq!(r["status"], "Finished");
    assert_eq!(r["results"]["resultType"], "text");
    let out: dbxport::model::command::SecretReadOutput =
        serde_json::from_str(r["results"]["data"].as_str().unwrap()).unwrap();
    assert_eq!(out.values.len(), 2);
    assert_eq!(unb64(&out.values[0].value), vec![0, 159, 146, 150, 255]);
    assert_eq!(unb64(&out.values[1].value), b"from-the-vault");
    assert_eq!(
        (out.errors[0].scope.as_str(), out.errors[0].key.as_str()),
        ("etl", "missing")
    );
    let r = run(dbxport::model::command::MOUNTS_SNIPPET.to_string()).await;
    let mounts: dbxport::model::command::MountsOutput =
        serde_json::from_str(r["results"]["data"].as_str().unwrap()).unwrap();
    let user: Vec<&str> = mounts
        .mounts
        .iter()
        .filter(|m| !dbxport::model::command::is_builtin_mount(&m.mount_point))
        .map(|m| m.mount_point.as_str())
        .collect();
    assert_eq!(user, vec!["/mnt/raw"]);
    assert!(mounts
        .mounts
        .iter()
        .any(|m| m.mount_point == "/databricks-datasets"));
    let r = run("print(dbutils.secrets.get('etl', 'db-password'))".to_string()).await;
    assert_eq!(
        (r["status"].as_str(), r["results"]["resultType"].as_str()),
        (Some("Finished"), Some("error"))
    );
    api.post(
        "/api/1.2/contexts/destroy",
        json!({"clusterId": CLUSTER, "contextId": ctx}),
    )
    .await
    .ok();
    api.get(&format!(
        "/api/1.2/contexts/status?clusterId={CLUSTER}&contextId={ctx}"
    ))
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    api.post(
        "/api/1.2/contexts/create",
        json!({"clusterId": STOPPED_CLUSTER, "language": "python"}),
    )
    .await
    .err(400, "INVALID_STATE");
    // Command execution never counts as a mutation.
    assert!(emu
        .stats()
        .mutating_routes()
        .iter()
        .all(|r| !r.contains("/api/1.2/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_get_refused_by_switch() {
    let dir = tempfile::tempdir().unwrap();
    small_seed(dir.path());
    std::fs::write(
        dir.path().join("workspace.json"),
        r#"{"workspace_id": "555000111", "secrets_get_refused": true}"#,
    )
    .unwrap();
    let emu = Emulator::start(EmulatorConfig::default().with_seed(dir.path()))
        .await
        .unwrap();
    let api = Api::new(emu.url(), USER_TOKEN);
    api.get("/api/2.0/secrets/get?scope=etl&key=db-password")
        .await
        .err(403, "PERMISSION_DENIED");
    // Listing still works; values stay reachable by command execution.
    api.get("/api/2.0/secrets/list?scope=etl").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_and_repo_permissions() {
    let (_emu, api, _d) = start().await;
    let load = api
        .get("/api/2.0/workspace/get-status?path=/Users/alice@example.org/etl/load")
        .await
        .ok()["object_id"]
        .as_i64()
        .unwrap();
    let etl = api
        .get("/api/2.0/workspace/get-status?path=/Users/alice@example.org/etl")
        .await
        .ok()["object_id"]
        .as_i64()
        .unwrap();
    let home = api
        .get("/api/2.0/workspace/get-status?path=/Users/alice@example.org")
        .await
        .ok()["object_id"]
        .as_i64()
        .unwrap();
    let p = api
        .get(&format!("/api/2.0/permissions/notebooks/{load}"))
        .await
        .ok();
    assert_eq!(p["object_id"], format!("/notebooks/{load}"));
    assert_eq!(p["object_type"], "notebook");
    let acl = p["access_control_list"].as_array().unwrap();
    let find = |key: &str, name: &str| {
        acl.iter()
            .find(|a| a[key] == name)
            .unwrap_or_else(|| panic!("{name} missing: {acl:?}"))["all_permissions"]
            .clone()
    };
    assert_eq!(
        find("user_name", "bob@example.org"),
        json!([{"permission_level": "CAN_RUN", "inherited": false}])
    );
    assert_eq!(
        find("group_name", "analysts"),
        json!([{"permission_level": "CAN_READ", "inherited": true, "inherited_from_object": [format!("/directories/{etl}")]}])
    );
    assert_eq!(
        find("user_name", "alice@example.org"),
        json!([{"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": [format!("/directories/{home}")]}])
    );
    assert_eq!(
        find("group_name", "admins"),
        json!([{"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": ["/directories/"]}])
    );
    // The wrong type for an id, an unknown type, a bad level, an unknown principal.
    api.get(&format!("/api/2.0/permissions/directories/{load}"))
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.get("/api/2.0/permissions/sandwiches/x")
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    // Clusters are a supported type (issue #12); an unknown one is missing, not unsupported.
    api.get("/api/2.0/permissions/clusters/x")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.put(
        &format!("/api/2.0/permissions/notebooks/{load}"),
        json!({"access_control_list": [{"user_name": "bob@example.org", "permission_level": "IS_OWNER"}]}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    let msg = api
        .put(
            &format!("/api/2.0/permissions/notebooks/{load}"),
            json!({"access_control_list": [{"user_name": "nobody@example.org", "permission_level": "CAN_RUN"}]}),
        )
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    assert!(msg.contains("nobody@example.org"), "{msg}");
    // PUT replaces the direct entries; PATCH merges.
    let p = api
        .put(
            &format!("/api/2.0/permissions/notebooks/{load}"),
            json!({"access_control_list": [{"group_name": "interns", "permission_level": "CAN_READ"}]}),
        )
        .await
        .ok();
    let direct: Vec<&Value> = p["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["all_permissions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["inherited"] == false)
        })
        .collect();
    assert_eq!(direct.len(), 1);
    assert_eq!(direct[0]["group_name"], "interns");
    let p = api
        .patch(
            &format!("/api/2.0/permissions/notebooks/{load}"),
            json!({"access_control_list": [{"service_principal_name": "aaaa-bbbb", "permission_level": "CAN_EDIT"}]}),
        )
        .await
        .ok();
    assert!(p["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["service_principal_name"] == "aaaa-bbbb"));
    let levels = api
        .get(&format!(
            "/api/2.0/permissions/notebooks/{load}/permissionLevels"
        ))
        .await
        .ok();
    let names: Vec<&str> = levels["permission_levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["permission_level"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"]);
    // Repos and registered models.
    api.put("/api/2.0/permissions/repos/900", json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_EDIT"}]}))
        .await
        .ok();
    let m = api
        .get("/api/2.0/permissions/registered-models/00000000000000000000000000000abc")
        .await
        .ok();
    assert_eq!(m["object_type"], "registered-model");
    assert!(m["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["group_name"] == "analysts"));
}

/// Every row of a SUCCEEDED statement, following result chunks.
async fn all_rows(api: &Api, r: &Value) -> Vec<Vec<String>> {
    assert_eq!(r["status"]["state"], "SUCCEEDED", "{r}");
    let mut out = Vec::new();
    let mut chunk = r["result"].clone();
    loop {
        for row in chunk["data_array"].as_array().cloned().unwrap_or_default() {
            out.push(
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap_or("").to_string())
                    .collect(),
            );
        }
        if chunk["next_chunk_internal_link"].is_null() {
            break;
        }
        let id = r["statement_id"].as_str().unwrap();
        let next = chunk["next_chunk_index"].as_i64().unwrap();
        chunk = api
            .get(&format!(
                "/api/2.0/sql/statements/{id}/result/chunks/{next}"
            ))
            .await
            .ok();
        assert_eq!(chunk["chunk_index"], next);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_statements_and_table_acls() {
    let (emu, api, _d) = start().await;
    let wh = api.get("/api/2.0/sql/warehouses").await.ok();
    assert_eq!(wh["warehouses"][0]["id"], WAREHOUSE);
    let dbs = api.sql(WAREHOUSE, "SHOW DATABASES").await;
    assert_eq!(
        dbs["manifest"]["schema"]["columns"][0]["name"],
        "databaseName"
    );
    assert_eq!(
        all_rows(&api, &dbs).await,
        vec![vec!["default"], vec!["sales"]]
    );
    let t = api
        .sql(WAREHOUSE, "SHOW TABLES IN hive_metastore.sales")
        .await;
    assert_eq!(
        all_rows(&api, &t).await,
        vec![
            vec!["sales", "big_orders", "false"],
            vec!["sales", "orders", "false"]
        ]
    );
    assert_eq!(
        all_rows(&api, &api.sql(WAREHOUSE, "SHOW VIEWS IN sales").await).await,
        vec![vec!["sales", "big_orders", "false"]]
    );
    assert_eq!(
        all_rows(
            &api,
            &api.sql(WAREHOUSE, "SHOW USER FUNCTIONS FROM sales LIKE 'ma*'")
                .await
        )
        .await,
        vec![vec!["hive_metastore.sales.mask"]]
    );
    // SHOW GRANTS: the object's rows (owner as OWN), then its database's and the catalog's.
    let g = api
        .sql(WAREHOUSE, "SHOW GRANTS ON TABLE `sales`.`orders`")
        .await;
    let cols: Vec<&str> = g["manifest"]["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec!["principal", "actionType", "objectType", "objectKey"]
    );
    assert_eq!(g["manifest"]["total_row_count"], 7);
    assert_eq!(g["manifest"]["total_chunk_count"], 4, "chunks of two rows");
    assert_eq!(
        all_rows(&api, &g).await,
        vec![
            vec!["alice@example.org", "OWN", "TABLE", "`sales`.`orders`"],
            vec!["analysts", "SELECT", "TABLE", "`sales`.`orders`"],
            vec!["interns", "DENIED_SELECT", "TABLE", "`sales`.`orders`"],
            vec!["alice@example.org", "OWN", "DATABASE", "`sales`"],
            vec!["analysts", "USAGE", "DATABASE", "`sales`"],
            vec!["admins", "OWN", "CATALOG$", ""],
            vec!["users", "USAGE", "CATALOG$", ""],
        ]
    );
    assert_eq!(
        all_rows(
            &api,
            &api.sql(WAREHOUSE, "SHOW GRANTS `analysts` ON ANY FILE")
                .await
        )
        .await,
        vec![vec!["analysts", "SELECT", "ANY_FILE", ""]]
    );
    assert_eq!(
        all_rows(
            &api,
            &api.sql(WAREHOUSE, "SHOW GRANTS ON VIEW sales.big_orders")
                .await
        )
        .await[0],
        vec!["bob@example.org", "OWN", "TABLE", "`sales`.`big_orders`"]
    );
    // GRANT, DENY, REVOKE, ALTER OWNER.
    emu.reset_stats();
    for s in [
        "GRANT SELECT, READ_METADATA ON TABLE sales.orders TO `bob@example.org`",
        "DENY MODIFY ON SCHEMA sales TO interns",
        "REVOKE SELECT ON TABLE sales.orders FROM `interns`",
        "ALTER TABLE hive_metastore.sales.orders OWNER TO `analysts`",
        "GRANT ALL PRIVILEGES ON ANONYMOUS FUNCTION TO analysts",
    ] {
        assert_eq!(
            api.sql(WAREHOUSE, s).await["status"]["state"],
            "SUCCEEDED",
            "{s}"
        );
    }
    let g = all_rows(
        &api,
        &api.sql(WAREHOUSE, "SHOW GRANTS ON TABLE sales.orders")
            .await,
    )
    .await;
    assert!(g.contains(&vec![
        "analysts".into(),
        "OWN".into(),
        "TABLE".into(),
        "`sales`.`orders`".into()
    ]));
    assert!(g.contains(&vec![
        "bob@example.org".into(),
        "READ_METADATA".into(),
        "TABLE".into(),
        "`sales`.`orders`".into()
    ]));
    assert!(
        !g.iter().any(|r| r[0] == "interns" && r[2] == "TABLE"),
        "{g:?}"
    );
    assert!(g.contains(&vec![
        "interns".into(),
        "DENIED_MODIFY".into(),
        "DATABASE".into(),
        "`sales`".into()
    ]));
    let stats = emu.stats();
    assert_eq!(stats.mutating, 5, "GRANT-like statements are mutations");
    let submits = &stats.routes["POST /api/2.0/sql/statements"];
    assert_eq!((submits.count, submits.mutating), (6, 5), "SHOW is a read");
    // Failures: HTTP 200 with state FAILED.
    for (s, class) in [
        ("SHOW GRANTS ON TABLE sales.nope", "TABLE_OR_VIEW_NOT_FOUND"),
        ("GRANT SELECT ON TABLE sales.orders", "PARSE_SYNTAX_ERROR"),
        (
            "GRANT USAGE ON TABLE sales.orders TO analysts",
            "INVALID_PRIVILEGE",
        ),
        (
            "GRANT SELECT ON TABLE sales.orders TO `ghost`",
            "PRINCIPAL_DOES_NOT_EXIST",
        ),
        ("SELECT * FROM sales.orders", "UNSUPPORTED_STATEMENT"),
        ("SHOW TABLES IN main.sales", "NO_SUCH_CATALOG_EXCEPTION"),
    ] {
        let r = api
            .post(
                "/api/2.0/sql/statements",
                json!({"warehouse_id": WAREHOUSE, "statement": s}),
            )
            .await
            .ok();
        assert_eq!(r["status"]["state"], "FAILED", "{s}: {r}");
        let msg = r["status"]["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("[{class}]")), "{s}: {msg}");
    }
    // Rejected requests are HTTP errors.
    api.post(
        "/api/2.0/sql/statements",
        json!({"warehouse_id": "nope", "statement": "SHOW DATABASES"}),
    )
    .await
    .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.post(
        "/api/2.0/sql/statements",
        json!({"warehouse_id": WAREHOUSE, "statement": "SHOW DATABASES", "wait_timeout": "3s"}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // wait_timeout=0s: PENDING, then RUNNING, then the result.
    let r = api
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": WAREHOUSE, "statement": "SHOW DATABASES", "wait_timeout": "0s"}),
        )
        .await
        .ok();
    assert_eq!(r["status"]["state"], "PENDING");
    let id = r["statement_id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/api/2.0/sql/statements/{id}")).await.ok()["status"]["state"],
        "RUNNING"
    );
    let done = api.get(&format!("/api/2.0/sql/statements/{id}")).await.ok();
    assert_eq!(all_rows(&api, &done).await.len(), 2);
    api.get("/api/2.0/sql/statements/nope")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");

    // Unity Catalog grants.
    let uc = api
        .get("/api/2.1/unity-catalog/permissions/CATALOG/main")
        .await
        .ok();
    assert_eq!(
        uc,
        json!({"privilege_assignments": [{"principal": "analysts", "privileges": ["USE_CATALOG"]}]})
    );
    assert_eq!(
        api.get("/api/2.1/unity-catalog/permissions/schema/main.sales")
            .await
            .ok(),
        json!({"privilege_assignments": []})
    );
    api.get("/api/2.1/unity-catalog/permissions/schema/main.nope")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.get("/api/2.1/unity-catalog/permissions/planet/x")
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    let r = api
        .patch(
            "/api/2.1/unity-catalog/permissions/schema/main.sales",
            json!({"changes": [{"principal": "bob@example.org", "add": ["USE_SCHEMA", "SELECT"]}]}),
        )
        .await
        .ok();
    assert_eq!(
        r,
        json!({"privilege_assignments": [{"principal": "bob@example.org", "privileges": ["SELECT", "USE_SCHEMA"]}]})
    );
    api.patch(
        "/api/2.1/unity-catalog/permissions/schema/main.sales",
        json!({"changes": [{"principal": "bob@example.org", "add": ["SELECT"], "remove": ["SELECT"]}]}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    let r = api
        .patch(
            "/api/2.1/unity-catalog/permissions/schema/main.sales",
            json!({"changes": [{"principal": "bob@example.org", "remove": ["SELECT", "USE_SCHEMA"]}]}),
        )
        .await
        .ok();
    assert_eq!(r, json!({"privilege_assignments": []}));
    let filtered = api
        .get("/api/2.1/unity-catalog/permissions/catalog/main?principal=bob@example.org")
        .await
        .ok();
    assert_eq!(filtered, json!({"privilege_assignments": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_scim_and_oauth() {
    let (emu, api, _d) = start().await;
    for path in ["/api/2.0/clusters/list", "/api/2.1/clusters/list"] {
        assert_eq!(
            api.get(path).await.ok()["clusters"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
    let c = api
        .get(&format!("/api/2.1/clusters/get?cluster_id={CLUSTER}"))
        .await
        .ok();
    assert_eq!(
        (c["cluster_name"].as_str(), c["state"].as_str()),
        (Some("shared"), Some("RUNNING"))
    );
    api.get("/api/2.1/clusters/get?cluster_id=nope")
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    assert_eq!(
        api.get("/api/2.0/instance-pools/list").await.ok()["instance_pools"][0]["node_type_id"],
        "i3.xlarge"
    );
    assert_eq!(
        api.get("/api/2.0/instance-pools/get?instance_pool_id=pool-1")
            .await
            .ok()["instance_pool_name"],
        "small"
    );
    assert_eq!(
        api.get("/api/2.0/policies/clusters/list").await.ok()["policies"][0]["policy_id"],
        "POL1"
    );
    assert_eq!(
        api.get("/api/2.0/policies/clusters/get?policy_id=POL1")
            .await
            .ok()["definition"],
        "{}"
    );

    // SCIM.
    let users = api
        .get("/api/2.0/preview/scim/v2/Users?startIndex=2&count=1")
        .await
        .ok();
    assert_eq!(users["totalResults"], 3);
    assert_eq!(users["Resources"][0]["userName"], "bob@example.org");
    assert_eq!(
        users["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    let end = api
        .get("/api/2.0/preview/scim/v2/Users?startIndex=4")
        .await
        .ok();
    assert_eq!(end["Resources"], json!([]));
    let f = api
        .get(&format!(
            "/api/2.0/preview/scim/v2/Users?filter={}",
            q("userName eq \"carol@example.org\"")
        ))
        .await
        .ok();
    assert_eq!(f["Resources"][0]["id"], "13");
    let bob = api.get("/api/2.0/preview/scim/v2/Users/12").await.ok();
    let groups: Vec<&str> = bob["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["display"].as_str().unwrap())
        .collect();
    assert_eq!(groups, vec!["users", "analysts"]);
    let missing = api.get("/api/2.0/preview/scim/v2/Users/99").await;
    assert_eq!(missing.code(), 404);
    assert_eq!(
        missing.json["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(
        api.get("/api/2.0/preview/scim/v2/Groups").await.ok()["totalResults"],
        4
    );
    assert_eq!(
        api.get("/api/2.0/preview/scim/v2/ServicePrincipals/31")
            .await
            .ok()["applicationId"],
        "aaaa-bbbb"
    );

    // OAuth M2M: discovery, client credentials with HTTP Basic, an expiring token.
    let anon = Api::anonymous(emu.url());
    let disc = anon
        .get("/oidc/.well-known/oauth-authorization-server")
        .await
        .ok();
    assert_eq!(
        disc["token_endpoint"],
        format!("{}/oidc/v1/token", emu.url())
    );
    let tok = anon
        .raw(
            anon.http
                .post(anon.url("/oidc/v1/token"))
                .basic_auth("aaaa-bbbb", Some("s3cret"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=all-apis"),
        )
        .await
        .ok();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    let sp = Api::new(emu.url(), tok["access_token"].as_str().unwrap());
    assert_eq!(
        sp.get("/api/2.0/preview/scim/v2/Me").await.ok()["userName"],
        "aaaa-bbbb"
    );
    let job = sp
        .post("/api/2.2/jobs/create", json!({"name": "by-sp"}))
        .await
        .ok();
    let j = sp
        .get(&format!("/api/2.2/jobs/get?job_id={}", job["job_id"]))
        .await
        .ok();
    assert_eq!(j["creator_user_name"], "aaaa-bbbb");
    let bad = anon
        .raw(
            anon.http
                .post(anon.url("/oidc/v1/token"))
                .basic_auth("aaaa-bbbb", Some("wrong"))
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(
        (bad.code(), bad.json["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let grant = anon
        .raw(
            anon.http
                .post(anon.url("/oidc/v1/token"))
                .basic_auth("aaaa-bbbb", Some("s3cret"))
                .body("grant_type=password"),
        )
        .await;
    assert_eq!(
        (grant.code(), grant.json["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    small_seed(dir.path());
    let emu = Emulator::start(EmulatorConfig {
        oauth_token_ttl_secs: 1,
        manual_clock: true,
        ..EmulatorConfig::default().with_seed(dir.path())
    })
    .await
    .unwrap();
    let anon = Api::anonymous(emu.url());
    let tok = anon
        .raw(
            anon.http
                .post(anon.url("/oidc/v1/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&client_id=aaaa-bbbb&client_secret=s3cret"),
        )
        .await
        .ok();
    let sp = Api::new(emu.url(), tok["access_token"].as_str().unwrap());
    sp.get("/api/2.0/preview/scim/v2/Me").await.ok();
    assert!(emu.advance_clock(std::time::Duration::from_millis(1100)));
    sp.get("/api/2.0/preview/scim/v2/Me").await;
    let r = sp.get("/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(
        (r.code(), r.json["message"].as_str()),
        (403, Some("Invalid access token."))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbfs_and_files_api() {
    let (_emu, api, _d) = start().await;
    let st = api
        .get("/api/2.0/dbfs/get-status?path=dbfs:/FileStore/hello.txt")
        .await
        .ok();
    assert_eq!(
        (st["is_dir"].as_bool(), st["file_size"].as_i64()),
        (Some(false), Some(10))
    );
    let mnt = api.get("/api/2.0/dbfs/list?path=/mnt").await.ok();
    assert_eq!(mnt["files"][0]["path"], "/mnt/raw");
    let r = api
        .get("/api/2.0/dbfs/read?path=/FileStore/hello.txt&offset=6&length=100")
        .await
        .ok();
    assert_eq!(
        (r["bytes_read"].as_i64(), unb64(r["data"].as_str().unwrap())),
        (Some(4), b"dbfs".to_vec())
    );
    api.get("/api/2.0/dbfs/read?path=/FileStore/hello.txt&length=1048577")
        .await
        .err(400, "MAX_READ_SIZE_EXCEEDED");
    api.get("/api/2.0/dbfs/read?path=/FileStore")
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    api.get("/api/2.0/dbfs/get-status?path=/nope")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    // put: JSON (≤1 MB) and multipart; overwrite rules.
    api.post(
        "/api/2.0/dbfs/put",
        json!({"path": "/tmp/a/b.bin", "contents": b64(b"one")}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/dbfs/put",
        json!({"path": "/tmp/a/b.bin", "contents": b64(b"two")}),
    )
    .await
    .err(400, "RESOURCE_ALREADY_EXISTS");
    api.post(
        "/api/2.0/dbfs/put",
        json!({"path": "/tmp/a/big", "contents": b64(&vec![0u8; 1024 * 1024 + 1])}),
    )
    .await
    .err(400, "MAX_BLOCK_SIZE_EXCEEDED");
    let form = reqwest::multipart::Form::new()
        .text("path", "/tmp/a/b.bin")
        .text("overwrite", "true")
        .part(
            "contents",
            reqwest::multipart::Part::bytes(vec![7u8; 2 * 1024 * 1024]),
        );
    assert_eq!(
        api.raw(api.http.post(api.url("/api/2.0/dbfs/put")).multipart(form))
            .await
            .ok(),
        json!({})
    );
    assert_eq!(
        api.get("/api/2.0/dbfs/get-status?path=/tmp/a/b.bin")
            .await
            .ok()["file_size"],
        2 * 1024 * 1024
    );
    // Streaming upload.
    let h = api
        .post("/api/2.0/dbfs/create", json!({"path": "/tmp/stream.bin"}))
        .await
        .ok()["handle"]
        .clone();
    for part in [b"abc".as_slice(), b"def"] {
        api.post(
            "/api/2.0/dbfs/add-block",
            json!({"handle": h, "data": b64(part)}),
        )
        .await
        .ok();
    }
    api.post(
        "/api/2.0/dbfs/add-block",
        json!({"handle": h, "data": b64(&vec![0u8; 1024 * 1024 + 1])}),
    )
    .await
    .err(400, "MAX_BLOCK_SIZE_EXCEEDED");
    api.post("/api/2.0/dbfs/close", json!({"handle": h}))
        .await
        .ok();
    api.post("/api/2.0/dbfs/close", json!({"handle": h}))
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    let r = api
        .get("/api/2.0/dbfs/read?path=/tmp/stream.bin")
        .await
        .ok();
    assert_eq!(unb64(r["data"].as_str().unwrap()), b"abcdef");
    api.post("/api/2.0/dbfs/create", json!({"path": "/tmp/stream.bin"}))
        .await
        .err(400, "RESOURCE_ALREADY_EXISTS");
    // move, delete.
    api.post(
        "/api/2.0/dbfs/move",
        json!({"source_path": "/tmp/a", "destination_path": "/tmp/z"}),
    )
    .await
    .ok();
    api.get("/api/2.0/dbfs/get-status?path=/tmp/z/b.bin")
        .await
        .ok();
    api.post("/api/2.0/dbfs/delete", json!({"path": "/tmp"}))
        .await
        .err(400, "IO_ERROR");
    api.post(
        "/api/2.0/dbfs/delete",
        json!({"path": "/tmp", "recursive": true}),
    )
    .await
    .ok();
    api.post("/api/2.0/dbfs/delete", json!({"path": "/tmp"}))
        .await
        .ok();
    api.post(
        "/api/2.0/dbfs/mkdirs",
        json!({"path": "/FileStore/hello.txt/x"}),
    )
    .await
    .err(400, "RESOURCE_ALREADY_EXISTS");

    // Files API over /Volumes.
    let seeded = api
        .raw(
            api.http
                .get(api.url("/api/2.0/fs/files/Volumes/main/sales/landing/in.csv")),
        )
        .await;
    assert_eq!(seeded.bytes, b"x,y\n");
    assert_eq!(seeded.headers["content-type"], "application/octet-stream");
    assert!(seeded.headers["last-modified"]
        .to_str()
        .unwrap()
        .ends_with(" GMT"));
    let put = api
        .raw(
            api.http
                .put(api.url(
                    "/api/2.0/fs/files/Volumes/main/sales/landing/new%20dir/f.bin?overwrite=false",
                ))
                .body(vec![1u8, 2, 3, 4, 5]),
        )
        .await;
    assert_eq!(put.code(), 204);
    let again = api
        .raw(
            api.http
                .put(api.url("/api/2.0/fs/files/Volumes/main/sales/landing/new%20dir/f.bin"))
                .body(vec![9u8]),
        )
        .await;
    again.err(409, "ALREADY_EXISTS");
    let head = api
        .raw(
            api.http
                .head(api.url("/api/2.0/fs/files/Volumes/main/sales/landing/new%20dir/f.bin")),
        )
        .await;
    assert_eq!(
        (
            head.code(),
            head.headers["content-length"].to_str().unwrap()
        ),
        (200, "5")
    );
    let range = api
        .raw(
            api.http
                .get(api.url("/api/2.0/fs/files/Volumes/main/sales/landing/new%20dir/f.bin"))
                .header("range", "bytes=1-2"),
        )
        .await;
    assert_eq!((range.code(), range.bytes.clone()), (206, vec![2u8, 3]));
    let listing = api
        .get("/api/2.0/fs/directories/Volumes/main/sales/landing?page_size=1")
        .await
        .ok();
    assert_eq!(listing["contents"][0]["name"], "in.csv");
    assert_eq!(listing["contents"][0]["file_size"], 4);
    let tok = listing["next_page_token"].as_str().unwrap();
    let rest = api
        .get(&format!(
            "/api/2.0/fs/directories/Volumes/main/sales/landing?page_size=1&page_token={tok}"
        ))
        .await
        .ok();
    assert_eq!(
        (
            rest["contents"][0]["name"].as_str(),
            rest["contents"][0]["is_directory"].as_bool()
        ),
        (Some("new dir"), Some(true))
    );
    assert!(rest.get("next_page_token").is_none());
    api.raw(
        api.http
            .get(api.url("/api/2.0/fs/files/Volumes/main/sales/landing/none")),
    )
    .await
    .err(404, "NOT_FOUND");
    api.raw(api.http.get(api.url("/api/2.0/fs/files/tmp/x")))
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    api.raw(
        api.http
            .delete(api.url("/api/2.0/fs/directories/Volumes/main/sales/landing/new%20dir")),
    )
    .await
    .err(409, "DIRECTORY_NOT_EMPTY");
    assert_eq!(
        api.raw(
            api.http
                .delete(api.url("/api/2.0/fs/files/Volumes/main/sales/landing/new%20dir/f.bin"))
        )
        .await
        .code(),
        204
    );
    assert_eq!(
        api.raw(
            api.http
                .delete(api.url("/api/2.0/fs/directories/Volumes/main/sales/landing/new%20dir"))
        )
        .await
        .code(),
        204
    );
    assert_eq!(
        api.raw(
            api.http
                .put(api.url("/api/2.0/fs/directories/Volumes/main/sales/landing/d2"))
        )
        .await
        .code(),
        204
    );
    assert_eq!(
        api.raw(
            api.http
                .head(api.url("/api/2.0/fs/directories/Volumes/main/sales/landing/d2"))
        )
        .await
        .code(),
        200
    );
    // The SDK first asks for a presigned URL and falls back when refused.
    api.post("/api/2.0/fs/create-download-url", json!({}))
        .await
        .err(404, "ENDPOINT_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_registry() {
    let (emu, api, _d) = start().await;
    let m = api
        .get("/api/2.0/mlflow/registered-models/get?name=churn")
        .await
        .ok();
    assert_eq!(
        m["registered_model"]["aliases"],
        json!([{"alias": "champion", "version": "1"}])
    );
    assert_eq!(
        m["registered_model"]["latest_versions"][0]["current_stage"],
        "Production"
    );
    let d = api
        .get("/api/2.0/mlflow/databricks/registered-models/get?name=churn")
        .await
        .ok();
    assert_eq!(
        d["registered_model_databricks"]["id"],
        "00000000000000000000000000000abc"
    );
    let v1 = api
        .get("/api/2.0/mlflow/model-versions/get?name=churn&version=1")
        .await
        .ok();
    assert_eq!(v1["model_version"]["aliases"], json!(["champion"]));
    let uri = api
        .get("/api/2.0/mlflow/model-versions/get-download-uri?name=churn&version=1")
        .await
        .ok();
    let storage =
        "dbfs:/databricks/mlflow-registry/00000000000000000000000000000abc/models/churn/1";
    assert_eq!(uri["artifact_uri"], storage);
    assert_eq!(
        v1["model_version"]["source"], storage,
        "default source is the storage location"
    );
    // Artifacts: listing, then a signed download that needs no credential.
    let files = api
        .get("/api/2.0/mlflow/model-versions/list-artifacts?name=churn&version=1&path=")
        .await
        .ok();
    assert_eq!(
        files["files"],
        json!([{"path": "MLmodel", "is_dir": false, "file_size": 12}, {"path": "data", "is_dir": true}])
    );
    let sub = api
        .get("/api/2.0/mlflow/model-versions/list-artifacts?name=churn&version=1&path=data")
        .await
        .ok();
    assert_eq!(
        sub["files"],
        json!([{"path": "data/model.pkl", "is_dir": false, "file_size": 4}])
    );
    let signed = api
        .get("/api/2.0/mlflow/model-versions/get-signed-download-uri?name=churn&version=1&path=data/model.pkl")
        .await
        .ok();
    let got = reqwest::get(signed["signed_uri"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), vec![1u8, 2, 3, 4]);
    let forged = reqwest::get(format!("{}/signed-artifacts/forged", emu.url()))
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // The same files are in DBFS at the storage location.
    let r = api
        .get(&format!(
            "/api/2.0/dbfs/read?path={}",
            q(&format!("{}/data/model.pkl", &storage[5..]))
        ))
        .await
        .ok();
    assert_eq!(unb64(r["data"].as_str().unwrap()), vec![1u8, 2, 3, 4]);

    // Create a model and versions from a DBFS source (copied) and from a missing one (failed).
    api.post(
        "/api/2.0/dbfs/put",
        json!({"path": "/FileStore/m/MLmodel", "contents": b64(b"x")}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "fraud", "tags": [{"key": "a", "value": "1"}]}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "fraud"}),
    )
    .await
    .err(400, "RESOURCE_ALREADY_EXISTS");
    api.post(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": ""}),
    )
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    let v = api
        .post(
            "/api/2.0/mlflow/model-versions/create",
            json!({"name": "fraud", "source": "dbfs:/FileStore/m", "run_id": "r9"}),
        )
        .await
        .ok();
    assert_eq!(
        (
            v["model_version"]["version"].as_str(),
            v["model_version"]["status"].as_str()
        ),
        (Some("1"), Some("PENDING_REGISTRATION"))
    );
    // The first get ends the registration; every later read sees the same.
    for _ in 0..2 {
        let got = api
            .get("/api/2.0/mlflow/model-versions/get?name=fraud&version=1")
            .await
            .ok();
        assert_eq!(got["model_version"]["status"], "READY");
    }
    let listed = api
        .get("/api/2.0/mlflow/model-versions/list-artifacts?name=fraud&version=1")
        .await
        .ok();
    assert_eq!(listed["files"][0]["path"], "MLmodel");
    let v2 = api
        .post(
            "/api/2.0/mlflow/model-versions/create",
            json!({"name": "fraud", "source": "dbfs:/FileStore/none"}),
        )
        .await
        .ok();
    assert_eq!(v2["model_version"]["status"], "PENDING_REGISTRATION");
    let got = api
        .get("/api/2.0/mlflow/model-versions/get?name=fraud&version=2")
        .await
        .ok();
    assert_eq!(got["model_version"]["status"], "FAILED_REGISTRATION");
    assert!(got["model_version"]["status_message"]
        .as_str()
        .is_some_and(|m| m.contains("dbfs:/FileStore/none")));
    api.post(
        "/api/2.0/mlflow/model-versions/create",
        json!({"name": "nope", "source": "dbfs:/x"}),
    )
    .await
    .err(404, "RESOURCE_DOES_NOT_EXIST");
    // Stages: archive_existing_versions moves the other Production version to Archived.
    let t = api
        .post("/api/2.0/mlflow/databricks/model-versions/transition-stage",
              json!({"name": "fraud", "version": "1", "stage": "production", "archive_existing_versions": false}))
        .await
        .ok();
    assert_eq!(t["model_version_databricks"]["current_stage"], "Production");
    api.post("/api/2.0/mlflow/model-versions/transition-stage",
             json!({"name": "fraud", "version": "2", "stage": "Production", "archive_existing_versions": true}))
        .await
        .ok();
    let v1 = api
        .get("/api/2.0/mlflow/model-versions/get?name=fraud&version=1")
        .await
        .ok();
    assert_eq!(v1["model_version"]["current_stage"], "Archived");
    api.post("/api/2.0/mlflow/model-versions/transition-stage",
             json!({"name": "fraud", "version": "2", "stage": "Shipping", "archive_existing_versions": true}))
        .await
        .err(400, "INVALID_PARAMETER_VALUE");
    let latest = api
        .post(
            "/api/2.0/mlflow/registered-models/get-latest-versions",
            json!({"name": "fraud", "stages": ["Production"]}),
        )
        .await
        .ok();
    assert_eq!(latest["model_versions"][0]["version"], "2");
    // Tags, search and paging. No aliases: the workspace registry refuses every alias call
    // as a route it does not serve, as real workspaces do (CONFORMANCE-NOTES.md).
    api.post(
        "/api/2.0/mlflow/model-versions/set-tag",
        json!({"name": "fraud", "version": "2", "key": "k", "value": "v"}),
    )
    .await
    .ok();
    api.post(
        "/api/2.0/mlflow/registered-models/alias",
        json!({"name": "fraud", "alias": "prod", "version": "2"}),
    )
    .await
    .err(404, "ENDPOINT_NOT_FOUND");
    api.get("/api/2.0/mlflow/registered-models/alias?name=fraud&alias=prod")
        .await
        .err(404, "ENDPOINT_NOT_FOUND");
    api.delete("/api/2.0/mlflow/registered-models/alias?name=fraud&alias=prod")
        .await
        .err(404, "ENDPOINT_NOT_FOUND");
    let found = api
        .get(&format!(
            "/api/2.0/mlflow/registered-models/search?filter={}",
            q("name LIKE 'fr%'")
        ))
        .await
        .ok();
    assert_eq!(found["registered_models"].as_array().unwrap().len(), 1);
    let p1 = api
        .get("/api/2.0/mlflow/registered-models/search?max_results=1")
        .await
        .ok();
    assert_eq!(p1["registered_models"][0]["name"], "churn");
    let tok = p1["next_page_token"].as_str().unwrap();
    let p2 = api
        .get(&format!(
            "/api/2.0/mlflow/registered-models/search?max_results=1&page_token={tok}"
        ))
        .await
        .ok();
    assert_eq!(p2["registered_models"][0]["name"], "fraud");
    assert!(p2.get("next_page_token").is_none());
    let vs = api
        .get(&format!(
            "/api/2.0/mlflow/model-versions/search?filter={}",
            q("name='fraud'")
        ))
        .await
        .ok();
    let nums: Vec<&str> = vs["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(nums, vec!["2", "1"]);
    api.get(&format!(
        "/api/2.0/mlflow/registered-models/search?filter={}",
        q("name ~ 'x'")
    ))
    .await
    .err(400, "INVALID_PARAMETER_VALUE");
    // Rename carries the artifacts; delete removes versions and models.
    api.post(
        "/api/2.0/mlflow/registered-models/rename",
        json!({"name": "fraud", "new_name": "fraud2"}),
    )
    .await
    .ok();
    let listed = api
        .get("/api/2.0/mlflow/model-versions/list-artifacts?name=fraud2&version=1")
        .await
        .ok();
    assert_eq!(listed["files"][0]["path"], "MLmodel");
    api.call(
        Method::DELETE,
        "/api/2.0/mlflow/model-versions/delete",
        Some(json!({"name": "fraud2", "version": "1"})),
    )
    .await
    .ok();
    api.get("/api/2.0/mlflow/model-versions/get?name=fraud2&version=1")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.delete("/api/2.0/mlflow/registered-models/delete?name=fraud2")
        .await
        .ok();
    api.get("/api/2.0/mlflow/registered-models/get?name=fraud2")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_users_are_held_to_acls() {
    let (emu, admin, _d) = start().await;
    let bob = Api::new(emu.url(), USER_TOKEN);
    // Workspace: only what bob may read is listed; a private home is refused.
    let users = bob.get("/api/2.0/workspace/list?path=/Users").await.ok();
    assert_eq!(users, json!({}), "alice's home is private");
    let etl = bob
        .get(&format!(
            "/api/2.0/workspace/list?path={}",
            q("/Users/alice@example.org/etl")
        ))
        .await
        .ok();
    assert_eq!(
        etl["objects"].as_array().unwrap().len(),
        6,
        "the etl folder is shared with analysts"
    );
    let msg = bob
        .get(&format!(
            "/api/2.0/workspace/get-status?path={}",
            q("/Users/alice@example.org/big")
        ))
        .await
        .err(403, "PERMISSION_DENIED");
    assert!(
        msg.contains("bob@example.org") && msg.contains("Read"),
        "{msg}"
    );
    bob.get(&format!(
        "/api/2.0/workspace/export?path={}",
        q("/Users/alice@example.org/big")
    ))
    .await
    .err(403, "PERMISSION_DENIED");
    bob.get("/api/2.0/workspace/get-status?path=/Users/alice@example.org/nothing")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    // A folder export holds only what the caller can read.
    let zip = admin
        .get(&format!(
            "/api/2.0/workspace/export?path={}&format=AUTO",
            q("/Users/alice@example.org")
        ))
        .await
        .ok();
    assert!(!unb64(zip["content"].as_str().unwrap()).is_empty());
    bob.get(&format!(
        "/api/2.0/workspace/export?path={}&format=AUTO",
        q("/Users/alice@example.org")
    ))
    .await
    .err(403, "PERMISSION_DENIED");
    // Writes: CAN_READ is not enough; one's own home and /Shared are one's own.
    bob.post(
        "/api/2.0/workspace/import",
        json!({"path": "/Users/alice@example.org/etl/mine", "content": b64(b"x"), "format": "RAW"}),
    )
    .await
    .err(403, "PERMISSION_DENIED");
    bob.post(
        "/api/2.0/workspace/mkdirs",
        json!({"path": "/Users/bob@example.org/work"}),
    )
    .await
    .ok();
    bob.post("/api/2.0/workspace/mkdirs", json!({"path": "/Shared/bobs"}))
        .await
        .ok();
    bob.post(
        "/api/2.0/workspace/delete",
        json!({"path": "/Users/alice@example.org/etl/data.csv"}),
    )
    .await
    .err(403, "PERMISSION_DENIED");
    let listed = bob.get("/api/2.0/workspace/list?path=/Users").await.ok();
    assert_eq!(listed["objects"][0]["path"], "/Users/bob@example.org");
    // Permissions: readable where bob can read; changes need CAN_MANAGE.
    let load = admin
        .get("/api/2.0/workspace/get-status?path=/Users/alice@example.org/etl/load")
        .await
        .ok()["object_id"]
        .clone();
    bob.get(&format!("/api/2.0/permissions/notebooks/{load}"))
        .await
        .ok();
    bob.patch(
        &format!("/api/2.0/permissions/notebooks/{load}"),
        json!({"access_control_list": [{"user_name": "bob@example.org", "permission_level": "CAN_MANAGE"}]}),
    )
    .await
    .err(403, "PERMISSION_DENIED");
    // Jobs: bob sees the job shared with analysts, not alice's private one, and changes neither.
    let private = admin
        .post("/api/2.2/jobs/create", json!({"name": "alice only"}))
        .await
        .ok()["job_id"]
        .clone();
    let jobs = bob.get("/api/2.2/jobs/list").await.ok();
    let ids: Vec<i64> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![101]);
    bob.get(&format!("/api/2.2/jobs/get?job_id={private}"))
        .await
        .err(403, "PERMISSION_DENIED");
    bob.post(
        "/api/2.2/jobs/reset",
        json!({"job_id": 101, "new_settings": {"name": "x"}}),
    )
    .await
    .err(403, "PERMISSION_DENIED");
    // Repos: listed only when bob can manage them.
    assert_eq!(bob.get("/api/2.0/repos").await.ok(), json!({}));
    bob.get("/api/2.0/repos/900")
        .await
        .err(403, "PERMISSION_DENIED");
    // Secrets: READ through analysts on etl; nothing on kv.
    bob.get("/api/2.0/secrets/list?scope=etl").await.ok();
    bob.get("/api/2.0/secrets/get?scope=etl&key=db-password")
        .await
        .ok();
    bob.post(
        "/api/2.0/secrets/put",
        json!({"scope": "etl", "key": "k", "string_value": "v"}),
    )
    .await
    .err(403, "PERMISSION_DENIED");
    bob.get("/api/2.0/secrets/acls/list?scope=etl")
        .await
        .err(403, "PERMISSION_DENIED");
    bob.get("/api/2.0/secrets/list?scope=kv")
        .await
        .err(403, "PERMISSION_DENIED");
    bob.get("/api/2.0/secrets/list?scope=nope")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    let ctx = bob
        .post(
            "/api/1.2/contexts/create",
            json!({"clusterId": CLUSTER, "language": "python"}),
        )
        .await
        .ok()["id"]
        .clone();
    let keys = vec![
        ("kv".to_string(), "api-key".to_string()),
        ("etl".to_string(), "cert".to_string()),
    ];
    let cmd = bob
        .post(
            "/api/1.2/commands/execute",
            json!({"clusterId": CLUSTER, "contextId": ctx, "command": dbxport::model::command::secret_read_command(&keys)}),
        )
        .await
        .ok()["id"]
        .clone();
    let st = bob
        .get(&format!(
            "/api/1.2/commands/status?clusterId={CLUSTER}&contextId={}&commandId={}",
            ctx.as_str().unwrap(),
            cmd.as_str().unwrap()
        ))
        .await
        .ok();
    let out: dbxport::model::command::SecretReadOutput =
        serde_json::from_str(st["results"]["data"].as_str().unwrap()).unwrap();
    assert_eq!(out.values.len(), 1, "etl/cert is readable");
    assert!(
        out.errors[0].error.contains("PermissionDenied"),
        "{:?}",
        out.errors
    );
}
