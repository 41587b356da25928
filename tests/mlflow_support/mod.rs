//! Support for the model tests: real `mlflow server` processes on loopback (started with the
//! test venv's Python, one worker, no background job runner), the Python helpers next to
//! this file, a forwarding proxy that can slow traffic down and change a file on its way,
//! and running the `dbxport` binary.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// True when `GET /health` on the port answers 200.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200")
}

/// One `mlflow server` with a SQLite backend and a local artifacts destination served
/// through its artifact proxy, run by `serve.py`, which stops it if this process dies.
/// Killed (its whole process group) when dropped.
pub struct MlflowServer {
    /// Folder holding the database, the artifacts and the log.
    pub dir: PathBuf,
    /// Its port.
    pub port: u16,
    python: PathBuf,
    child: Option<Child>,
}

impl MlflowServer {
    /// Starts a server in `dir` without waiting for it (see [`MlflowServer::wait_ready`]).
    pub fn spawn(python: &Path, dir: &Path) -> MlflowServer {
        std::fs::create_dir_all(dir).unwrap();
        let mut s = MlflowServer {
            dir: dir.to_path_buf(),
            port: free_port(),
            python: python.to_path_buf(),
            child: None,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let serve = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow_support/serve.py");
        let child = Command::new(&self.python)
            .arg(serve)
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                self.dir.join("mlflow.db").display()
            ))
            .arg("--artifacts-destination")
            .arg(self.dir.join("artifacts"))
            .args(["--serve-artifacts", "--host", "127.0.0.1", "--workers", "1"])
            .arg("--port")
            .arg(self.port.to_string())
            // One worker and no background job runner: two of these share two cores with
            // the test.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start mlflow server");
        self.child = Some(child);
    }

    /// Waits until the server answers `/health` (at most 180 s; panics with its log after).
    pub fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(180) {
            if healthy(self.port) {
                return;
            }
            if let Some(c) = &mut self.child {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("mlflow server exited ({st}):\n{}", self.log_tail());
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "mlflow server on port {} never became healthy:\n{}",
            self.port,
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server and its workers at once (SIGKILL to the process group).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let killed = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{}", c.id()))
                .status()
                .is_ok_and(|s| s.success());
            if !killed {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, database and artifacts, and waits for it.
    pub fn restart(&mut self) {
        self.kill();
        // The old listener may linger a moment.
        let started = Instant::now();
        while healthy(self.port) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.launch();
        self.wait_ready();
    }

    /// The file of an artifact stored by this server, found by its file name.
    pub fn artifact_file(&self, name: &str) -> Option<PathBuf> {
        walk(&self.dir.join("artifacts"))
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == name))
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Runs a script of `tests/mlflow_support` (an unmodified MLflow client program) with the venv's
/// Python against the emulator `emu`, as a user's shell would: the workspace in
/// `DATABRICKS_HOST` / `DATABRICKS_TOKEN` and nothing else of the caller's configuration. The
/// script's last line of output is its JSON result.
pub fn client_script(
    python: &Path,
    emu: &dbxport::emulator::EmulatorHandle,
    token: &str,
    name: &str,
    args: &[&str],
) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/mlflow_support")
                .join(name),
        )
        .args(args)
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_REGISTRY_URI")
        .env("HOME", home.path())
        .env("DATABRICKS_CONFIG_FILE", home.path().join("none.cfg"))
        .env("DATABRICKS_HOST", emu.url())
        .env("DATABRICKS_TOKEN", token)
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{name} did not print JSON ({e}): {stdout}"))
}

/// Runs a helper script of this folder with the venv's Python; returns its output.
pub fn helper(python: &Path, script: &str, args: &[&str]) -> Output {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mlflow_support")
        .join(script);
    Command::new(python)
        .arg(path)
        .args(args)
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .expect("run python helper")
}

/// Runs a helper that must succeed and print JSON; returns the JSON.
pub fn helper_json(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let out = helper(python, script, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} did not print JSON ({e}): {stdout}"))
}

/// The outcome of one `dbxport` run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "dbxport did not print JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs the `dbxport` binary in `cwd` with `args` and extra environment variables.
pub fn dbxport(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(crate::common::dbxport_bin());
    c.current_dir(cwd)
        .args(args)
        .env_remove("DATABRICKS_HOST")
        .env_remove("DATABRICKS_TOKEN")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env_remove("MLFLOW_TRACKING_TOKEN")
        // No config file of the machine's user may leak into a test.
        .env(
            "DATABRICKS_CONFIG_FILE",
            "/nonexistent/dbxport-test-databrickscfg",
        );
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run dbxport");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `dbxport` without waiting.
pub fn dbxport_spawn(cwd: &Path, args: &[&str]) -> Child {
    Command::new(crate::common::dbxport_bin())
        .current_dir(cwd)
        .args(args)
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dbxport")
}

type Hook = Box<dyn FnOnce() + Send>;

/// Shared state of a [`Proxy`].
#[derive(Default)]
pub struct ProxyState {
    /// Response body bytes passed to the client.
    pub down: AtomicU64,
    /// Request body bytes passed to the server.
    pub up: AtomicU64,
    /// When not 0, the bytes per second a body may pass at.
    pub throttle: AtomicU64,
    hooks: Mutex<Vec<(String, Hook)>>,
}

impl ProxyState {
    /// Runs `f` once, just before the first GET whose path ends with `suffix` is forwarded.
    pub fn before_get(&self, suffix: &str, f: impl FnOnce() + Send + 'static) {
        self.hooks
            .lock()
            .unwrap()
            .push((suffix.to_string(), Box::new(f)));
    }
}

/// An HTTP proxy on loopback forwarding every request to one server, streaming bodies both
/// ways (optionally throttled), and running hooks before chosen downloads.
pub struct Proxy {
    /// The proxy's URL.
    pub url: String,
    /// Its state.
    pub state: Arc<ProxyState>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Starts a proxy for `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(ProxyState::default());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let ctx = Arc::new(Ctx {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().build().unwrap(),
            state: Arc::clone(&state),
        });
        let app = axum::Router::new().fallback(forward).with_state(ctx);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            url,
            state,
            runtime: Some(runtime),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

struct Ctx {
    upstream: String,
    http: reqwest::Client,
    state: Arc<ProxyState>,
}

async fn pace(state: &ProxyState, n: usize) {
    let bps = state.throttle.load(Ordering::Relaxed);
    if bps > 0 {
        tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
    }
}

/// Cuts a chunk into 64 KiB pieces so throttling is smooth.
fn pieces(b: bytes::Bytes) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    let mut b = b;
    while b.len() > 64 * 1024 {
        out.push(b.split_to(64 * 1024));
    }
    out.push(b);
    out
}

async fn forward(
    axum::extract::State(ctx): axum::extract::State<Arc<Ctx>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use futures_util::StreamExt;
    let (parts, body) = req.into_parts();
    if parts.method == axum::http::Method::GET {
        let hook = {
            let mut hooks = ctx.state.hooks.lock().unwrap();
            let i = hooks
                .iter()
                .position(|(s, _)| parts.uri.path().ends_with(s.as_str()));
            i.map(|i| hooks.remove(i).1)
        };
        if let Some(h) = hook {
            h();
        }
    }
    let url = format!(
        "{}{}",
        ctx.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let mut rb = ctx.http.request(method, url);
    for (k, v) in &parts.headers {
        if k != axum::http::header::HOST {
            rb = rb.header(k.as_str(), v.as_bytes());
        }
    }
    let st = Arc::clone(&ctx.state);
    let up = body
        .into_data_stream()
        .map(|c| {
            futures_util::stream::iter(
                c.map(pieces)
                    .map_or_else(|e| vec![Err(e)], |v| v.into_iter().map(Ok).collect()),
            )
        })
        .flatten()
        .then(move |c| {
            let st = Arc::clone(&st);
            async move {
                if let Ok(b) = &c {
                    pace(&st, b.len()).await;
                    st.up.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                c.map_err(std::io::Error::other)
            }
        });
    let resp = match rb.body(reqwest::Body::wrap_stream(up)).send().await {
        Ok(r) => r,
        Err(e) => {
            return axum::response::IntoResponse::into_response((
                axum::http::StatusCode::BAD_GATEWAY,
                format!("proxy: upstream failed: {e}"),
            ))
        }
    };
    let mut out = axum::http::Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        out = out.header(k.as_str(), v.as_bytes());
    }
    let st = Arc::clone(&ctx.state);
    let down = resp
        .bytes_stream()
        .map(|c| {
            futures_util::stream::iter(
                c.map(pieces)
                    .map_or_else(|e| vec![Err(e)], |v| v.into_iter().map(Ok).collect()),
            )
        })
        .flatten()
        .then(move |c| {
            let st = Arc::clone(&st);
            async move {
                if let Ok(b) = &c {
                    pace(&st, b.len()).await;
                    st.down.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                c.map_err(std::io::Error::other)
            }
        });
    out.body(axum::body::Body::from_stream(down)).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `GET url` with an optional bearer token; the body (must be 2xx).
pub fn get_bytes(url: &str, token: Option<&str>) -> Vec<u8> {
    block_on(async {
        let mut rb = reqwest::Client::new().get(url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status();
        let body = r.bytes().await.unwrap().to_vec();
        assert!(
            status.is_success(),
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    })
}

/// `GET url` as JSON.
pub fn get_json(url: &str, token: Option<&str>) -> serde_json::Value {
    serde_json::from_slice(&get_bytes(url, token)).unwrap()
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// SHA-256 of a file, hex.
pub fn file_sha256(p: &Path) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}
