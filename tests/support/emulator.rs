//! Helpers for the emulator's integration tests: a raw HTTP client bound to one emulator, and a
//! small seed written into a temporary directory.
#![allow(dead_code)]

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A raw HTTP client for one emulator and one token.
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

/// One answer: status, headers, raw body, and the body as JSON (`Null` when it is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Answer {
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    /// Asserts a 200 and returns the JSON body.
    pub fn ok(self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "expected 200, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.bytes)
        );
        self.json
    }

    /// Asserts an error answer with `status` and `error_code`, returning the message.
    pub fn err(self, status: u16, code: &str) -> String {
        assert_eq!(
            (self.status.as_u16(), self.json["error_code"].as_str()),
            (status, Some(code)),
            "unexpected answer: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        self.json["message"].as_str().unwrap_or("").to_string()
    }
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.to_string(),
            token: Some(token.to_string()),
            http: reqwest::Client::new(),
        }
    }

    pub fn anonymous(base: &str) -> Api {
        Api {
            base: base.to_string(),
            token: None,
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request sent");
        Self::answer(resp).await
    }

    pub async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read").to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            bytes,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// A raw-body request (Files API, multipart and the like).
    pub async fn raw(&self, rb: reqwest::RequestBuilder) -> Answer {
        let rb = match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        Self::answer(rb.send().await.expect("request sent")).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs one SQL statement on `warehouse` and returns the whole response.
    pub async fn sql(&self, warehouse: &str, statement: &str) -> Value {
        self.post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": warehouse, "statement": statement, "wait_timeout": "10s"}),
        )
        .await
        .ok()
    }
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Base64 (standard).
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Base64 decoding (standard).
pub fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

fn write_json(root: &Path, rel: &str, v: Value) {
    write(
        root,
        rel,
        serde_json::to_string_pretty(&v).expect("json").as_bytes(),
    );
}

/// The admin token of [`small_seed`].
pub const ADMIN_TOKEN: &str = "dapi-test-admin";
/// An ordinary user's token of [`small_seed`].
pub const USER_TOKEN: &str = "dapi-test-bob";
/// The running cluster of [`small_seed`].
pub const CLUSTER: &str = "0101-000000-running1";
/// The terminated cluster of [`small_seed`].
pub const STOPPED_CLUSTER: &str = "0101-000000-stopped1";
/// The SQL warehouse of [`small_seed`].
pub const WAREHOUSE: &str = "wh0000000000001";

/// Writes a small seed touching every seed file into `root`.
pub fn small_seed(root: &Path) {
    write_json(
        root,
        "workspace.json",
        json!({"workspace_id": "555000111", "secrets_get_refused": false, "first_object_id": 5000}),
    );
    write_json(
        root,
        "principals.json",
        json!({
            "users": [
                {"id": "11", "userName": "alice@example.org", "displayName": "Alice"},
                {"id": "12", "userName": "bob@example.org", "displayName": "Bob"},
                {"id": "13", "userName": "carol@example.org"}
            ],
            "groups": [
                {"id": "21", "displayName": "admins", "members": [{"value": "11"}]},
                {"id": "22", "displayName": "users", "members": [{"value": "11"}, {"value": "12"}, {"value": "13"}]},
                {"id": "23", "displayName": "analysts", "members": [{"value": "12"}]},
                {"id": "24", "displayName": "interns", "members": [{"value": "13"}]}
            ],
            "service_principals": [
                {"id": "31", "applicationId": "aaaa-bbbb", "displayName": "etl"}
            ]
        }),
    );
    write_json(
        root,
        "tokens.json",
        json!({
            "tokens": [
                {"token": ADMIN_TOKEN, "user_name": "alice@example.org"},
                {"token": USER_TOKEN, "user_name": "bob@example.org"}
            ],
            "oauth_clients": [
                {"client_id": "aaaa-bbbb", "client_secret": "s3cret", "application_id": "aaaa-bbbb"}
            ]
        }),
    );
    write(
        root,
        "workspace/Users/alice@example.org/etl/load.py",
        b"# Databricks notebook source\nprint(\"load\")\n\n# COMMAND ----------\n\nspark.read.load(\"/mnt/raw/x\")\n",
    );
    write(
        root,
        "workspace/Users/alice@example.org/etl/Report.scala",
        b"// Databricks notebook source\nprintln(1)\n",
    );
    write(
        root,
        "workspace/Users/alice@example.org/etl/query.sql",
        b"-- Databricks notebook source\nSELECT 1\n",
    );
    write(
        root,
        "workspace/Users/alice@example.org/etl/plot.r",
        b"# Databricks notebook source\nplot(1)\n",
    );
    write(
        root,
        "workspace/Users/alice@example.org/etl/data.csv",
        b"a,b\n1,2\n",
    );
    write(
        root,
        "workspace/Users/alice@example.org/etl/helpers.py",
        b"def f():\n    return 1\n",
    );
    write(
        root,
        "workspace/Users/alice@example.org/big.py",
        b"# Databricks notebook source\nx = 1\n",
    );
    write(
        root,
        "workspace/Shared/What if%3F.py",
        b"# Databricks notebook source\n1\n",
    );
    write(
        root,
        "workspace/Repos/alice@example.org/proj/README.md",
        b"# proj\n",
    );
    write_json(
        root,
        "objects.json",
        json!({
            "/Users/alice@example.org/etl/load": {"object_id": 777, "created_at": 1600000000000i64, "modified_at": 1600000001000i64},
            "/Users/alice@example.org/big": {"outputs_bytes": 11_000_000},
            "/Shared/archive": {"object_type": "DIRECTORY"}
        }),
    );
    write_json(
        root,
        "repos.json",
        json!([{"id": 900, "path": "/Repos/alice@example.org/proj", "url": "https://github.com/org/proj.git",
                "provider": "github", "branch": "main", "head_commit_id": "0123456789abcdef0123456789abcdef01234567"}]),
    );
    write_json(
        root,
        "git_credentials.json",
        json!([{"credential_id": 41, "git_provider": "gitHub", "git_username": "alice-gh", "user_name": "alice@example.org"}]),
    );
    write_json(
        root,
        "jobs/101.json",
        json!({"job_id": 101, "creator_user_name": "alice@example.org", "created_time": 1600000000000i64,
               "settings": {"name": "nightly", "tasks": [{"task_key": "load", "existing_cluster_id": CLUSTER,
                 "notebook_task": {"notebook_path": "/Users/alice@example.org/etl/load"}}]}}),
    );
    write_json(
        root,
        "secrets.json",
        json!({"scopes": [
            {"name": "etl", "backend_type": "DATABRICKS",
             "acls": [{"principal": "alice@example.org", "permission": "MANAGE"}, {"principal": "analysts", "permission": "READ"}],
             "secrets": [{"key": "db-password", "string_value": "hunter2", "last_updated_timestamp": 1600000000000i64},
                         {"key": "cert", "bytes_value": b64(&[0, 159, 146, 150, 255])}]},
            {"name": "kv", "backend_type": "AZURE_KEYVAULT",
             "keyvault_metadata": {"resource_id": "/subscriptions/x/vaults/kv", "dns_name": "https://kv.vault.azure.net/"},
             "secrets": [{"key": "api-key", "string_value": "from-the-vault"}]}
        ]}),
    );
    write_json(
        root,
        "permissions.json",
        json!([
            {"object": "/Users/alice@example.org/etl", "access_control_list": [{"group_name": "analysts", "permission_level": "CAN_READ"}]},
            {"object": "/Users/alice@example.org/etl/load", "access_control_list": [{"user_name": "bob@example.org", "permission_level": "CAN_RUN"}]},
            {"object": "jobs/101", "access_control_list": [{"group_name": "analysts", "permission_level": "CAN_VIEW"}]},
            {"object": "registered-models/churn", "access_control_list": [{"group_name": "analysts", "permission_level": "CAN_READ"}]}
        ]),
    );
    write_json(
        root,
        "hive.json",
        json!({
            "databases": [
                {"name": "default", "owner": "admins"},
                {"name": "Sales", "owner": "alice@example.org",
                 "tables": [{"name": "orders", "type": "TABLE", "owner": "alice@example.org"},
                            {"name": "big_orders", "type": "VIEW", "owner": "bob@example.org"}],
                 "functions": [{"name": "mask", "owner": "alice@example.org"}]}
            ],
            "grants": [
                {"principal": "analysts", "action_type": "SELECT", "object_type": "TABLE", "object_key": "sales.orders"},
                {"principal": "interns", "action_type": "DENIED_SELECT", "object_type": "TABLE", "object_key": "sales.orders"},
                {"principal": "analysts", "action_type": "USAGE", "object_type": "DATABASE", "object_key": "sales"},
                {"principal": "users", "action_type": "USAGE", "object_type": "CATALOG", "object_key": ""},
                {"principal": "analysts", "action_type": "SELECT", "object_type": "ANY_FILE", "object_key": ""}
            ],
            "catalog_owner": "admins"
        }),
    );
    write_json(
        root,
        "unity_catalog.json",
        json!({"securables": [{"securable_type": "schema", "full_name": "main.sales"}],
               "grants": [{"securable_type": "catalog", "full_name": "main",
                           "privilege_assignments": [{"principal": "analysts", "privileges": ["USE_CATALOG"]}]}]}),
    );
    write_json(
        root,
        "compute.json",
        json!({
            "clusters": [
                {"cluster_id": CLUSTER, "cluster_name": "shared", "state": "RUNNING", "spark_version": "15.4.x-scala2.12"},
                {"cluster_id": STOPPED_CLUSTER, "cluster_name": "old", "state": "TERMINATED"}
            ],
            "instance_pools": [{"instance_pool_id": "pool-1", "instance_pool_name": "small", "node_type_id": "i3.xlarge"}],
            "policies": [{"policy_id": "POL1", "name": "personal", "definition": "{}"}],
            "warehouses": [{"id": WAREHOUSE, "name": "starter", "state": "RUNNING"}]
        }),
    );
    write_json(
        root,
        "mounts.json",
        json!([{"mount_point": "/mnt/raw", "source": "abfss://raw@acct.dfs.core.windows.net/", "encryption_type": ""}]),
    );
    write(root, "dbfs/FileStore/hello.txt", b"hello dbfs");
    write(root, "dbfs/Volumes/main/sales/landing/in.csv", b"x,y\n");
    write_json(
        root,
        "models/churn/model.json",
        json!({"name": "churn", "id": "00000000000000000000000000000abc", "user_id": "alice@example.org",
               "creation_timestamp": 1600000000000i64, "last_updated_timestamp": 1600000000000i64,
               "tags": [{"key": "team", "value": "growth"}],
               "aliases": [{"alias": "champion", "version": "1"}]}),
    );
    write_json(
        root,
        "models/churn/versions/1/version.json",
        json!({"name": "churn", "version": "1", "current_stage": "Production", "status": "READY",
               "creation_timestamp": 1600000000000i64, "user_id": "alice@example.org", "run_id": "r1"}),
    );
    write(
        root,
        "models/churn/versions/1/artifacts/MLmodel",
        b"flavors: {}\n",
    );
    write(
        root,
        "models/churn/versions/1/artifacts/data/model.pkl",
        &[1, 2, 3, 4],
    );
}
