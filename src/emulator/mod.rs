//! A Databricks-compatible emulator: an HTTP server on loopback serving the REST APIs dbxport
//! uses, with real shapes, status codes and error bodies (seed format: `spec/emulator-seed.md`).
//! It stores [`crate::model`] types and must not import `client`, `bundle`, `export` or `import`.
//!
//! Start one with [`Emulator::start`] from async code or [`Emulator::start_in_background`] from
//! a plain `#[test]`; both bind (port 0 picks a free port) and return an [`EmulatorHandle`] with
//! the URL, a token, request [`Stats`], fault control and [`EmulatorHandle::dump_to`]. Several
//! can run at once.
//!
//! ```no_run
//! use dbxport::emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start_in_background(EmulatorConfig::default().with_token("dapi-test"))?;
//! println!("{} {}", emu.url(), emu.admin_token());
//! # Ok::<(), dbxport::emulator::EmulatorError>(())
//! ```
//!
//! Layout: [`server`](self) holds the accept loop, auth, faults and stats wiring; `state` the
//! in-memory workspace; `seed` loading and dumping; one module per API family.

mod access;
mod commands;
mod compute;
mod dbfs;
mod entra;
mod error;
mod extract;
mod faults;
mod files;
mod generate;
mod jobs;
mod legacy;
mod mlflow;
mod notebook;
mod oauth;
mod permissions;
mod repos;
mod scim;
mod secrets;
mod seed;
mod server;
mod signed;
mod sql;
mod state;
mod stats;
mod tracking;
mod uc_models;
mod unity;
mod workspace;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::EmulatorError;
pub use faults::{
    family, is_limit_key, limit_class, FaultConfig, LimitsProfile, CLASSES, FAMILIES,
    PUBLISHED_LIMITS,
};
pub use stats::{ClassStats, RouteStats, Stats};

use state::{Settings, Shared, State};

/// How to start an emulator.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// Seed workspace directory to load (`spec/emulator-seed.md`).
    pub seed: Option<PathBuf>,
    /// Extra bearer tokens, acting as the first admin user. Fake credentials for a fake
    /// workspace.
    pub tokens: Vec<String>,
    /// Faults injected from the start.
    pub faults: FaultConfig,
    /// Every timestamp the emulator assigns, in epoch milliseconds, so dumps are stable.
    pub fixed_clock: Option<i64>,
    /// Rows per result chunk of the SQL statement API. Default 1000.
    pub sql_chunk_rows: usize,
    /// Lifetime of OAuth access tokens in seconds. Default 3600.
    pub oauth_token_ttl_secs: u64,
    /// When true, what expires and refills (tokens, rate-limit buckets) runs on a clock that
    /// stands still until [`EmulatorHandle::advance_clock`] moves it.
    pub manual_clock: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            tokens: Vec::new(),
            faults: FaultConfig::default(),
            fixed_clock: None,
            sql_chunk_rows: 1000,
            oauth_token_ttl_secs: 3600,
            manual_clock: false,
        }
    }
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("addr", &self.addr)
            .field("seed", &self.seed)
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("faults", &self.faults)
            .field("fixed_clock", &self.fixed_clock)
            .field("sql_chunk_rows", &self.sql_chunk_rows)
            .field("oauth_token_ttl_secs", &self.oauth_token_ttl_secs)
            .field("manual_clock", &self.manual_clock)
            .finish()
    }
}

impl EmulatorConfig {
    /// Loads `dir` as the seed workspace.
    pub fn with_seed(mut self, dir: impl Into<PathBuf>) -> Self {
        self.seed = Some(dir.into());
        self
    }

    /// Adds a bearer token acting as the first admin.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }

    /// Listens on `addr`.
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Injects `faults` from the start.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Applies the rate-limit profile `limits` (the same as `dbxport emulator --limits`),
    /// beneath any limit `faults.rate_limits` names.
    pub fn with_limits(mut self, limits: LimitsProfile) -> Self {
        self.faults.limits = limits;
        self
    }

    /// Issues OAuth access tokens (workspace OAuth) that expire after `secs` seconds, so that
    /// refreshing can be tested.
    pub fn with_oauth_token_ttl(mut self, secs: u64) -> Self {
        self.oauth_token_ttl_secs = secs;
        self
    }

    /// Runs expiry and rate limits on a manual clock (see [`EmulatorConfig::manual_clock`]).
    pub fn with_manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// Stamps every assigned timestamp with `epoch_ms`.
    pub fn with_fixed_clock(mut self, epoch_ms: i64) -> Self {
        self.fixed_clock = Some(epoch_ms);
        self
    }
}

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Loads the seed, binds and starts serving on the current Tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        config.faults.validate()?;
        let (shared, admin) = build(&config)?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.addr,
                source,
            })?;
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, shared.clone(), rx));
        Ok(EmulatorHandle {
            url: format!("http://{addr}"),
            addr,
            admin_token: admin,
            shared,
            shutdown: Some(tx),
            task: Some(task),
            runtime: None,
        })
    }

    /// Starts an emulator on its own two-thread runtime, for synchronous code such as `#[test]`
    /// functions. The runtime stops with the handle.
    pub fn start_in_background(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dbxport-emulator")
            .enable_all()
            .build()
            .map_err(EmulatorError::Runtime)?;
        let mut handle = runtime.block_on(Emulator::start(config))?;
        handle.runtime = Some(runtime);
        Ok(handle)
    }
}

/// Builds the shared state from a config: seed, tokens, settings.
fn build(config: &EmulatorConfig) -> Result<(Arc<Shared>, String), EmulatorError> {
    let mut state = State::empty(config.fixed_clock);
    if config.manual_clock {
        state.clock = crate::clock::Clock::manual();
    }
    if let Some(dir) = &config.seed {
        seed::load(dir, &mut state)?;
    }
    seed::ensure_defaults(&mut state);
    state.admin_tokens = config.tokens.clone();
    let admin = match config.tokens.first() {
        Some(t) => t.clone(),
        None => match seed_admin_token(&state) {
            Some(t) => t,
            None => {
                // No credential at all: make one up so that the caller can still get in.
                let mut bytes = [0u8; 16];
                let _ = getrandom::fill(&mut bytes);
                let t = format!("dapi-emulator-{}", hex::encode(bytes));
                state.admin_tokens.push(t.clone());
                t
            }
        },
    };
    let settings = Settings {
        sql_chunk_rows: config.sql_chunk_rows.max(1),
        oauth_token_ttl_secs: config.oauth_token_ttl_secs.max(1),
        workspace_id: state.workspace.workspace_id.clone(),
    };
    let faults = faults::FaultState::new(config.faults.clone());
    Ok((Arc::new(Shared::new(state, faults, settings)), admin))
}

/// The first seed token of an admin, else the first seed token.
fn seed_admin_token(state: &State) -> Option<String> {
    let admin = state.first_admin();
    state
        .tokens
        .iter()
        .find(|t| t.user_name == admin)
        .or_else(|| state.tokens.first())
        .map(|t| t.token.clone())
}

/// A running emulator. Dropping it stops the server.
pub struct EmulatorHandle {
    url: String,
    addr: SocketAddr,
    admin_token: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A token acting as an admin: the first configured token, else the seed's first admin
    /// token, else one made up at start (only when no token exists at all).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The workspace id the emulator reports.
    pub fn workspace_id(&self) -> String {
        self.shared.settings.workspace_id.clone()
    }

    /// Revokes every OAuth access token, refresh token and pending code of `principal` (a user
    /// name or an application id), as an administrator signing it out would. Returns how many
    /// were revoked. Also `POST /emulator/oauth/revoke {"principal": ...}`.
    pub fn revoke_oauth(&self, principal: &str) -> usize {
        self.shared.lock().revoke(principal)
    }

    /// How many requests carried a valid Azure service-management token and a matching
    /// workspace resource id header (zeros when the seed configures no Entra tenant).
    pub fn azure_headers_seen(&self) -> (u64, u64) {
        self.shared
            .lock()
            .entra
            .as_ref()
            .map(|e| (e.seen_management_tokens, e.seen_resource_ids))
            .unwrap_or((0, 0))
    }

    /// Request counts since start or the last reset.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Zeroes the request counts.
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// The current fault configuration.
    pub fn faults(&self) -> FaultConfig {
        self.shared.faults().config().clone()
    }

    /// Moves the manual clock forward by `by`: tokens expire and rate-limit buckets refill as
    /// if that time had passed. Returns false (nothing moves) unless the emulator was started
    /// with [`EmulatorConfig::with_manual_clock`].
    pub fn advance_clock(&self, by: std::time::Duration) -> bool {
        self.shared.clock.advance(by)
    }

    /// Replaces the fault configuration (restarting its random stream).
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), EmulatorError> {
        faults.validate()?;
        self.shared.faults().set(faults);
        Ok(())
    }

    /// Writes the workspace to `dir` in the seed format. `dir` must not exist or be empty; it
    /// appears complete or not at all.
    pub fn dump_to(&self, dir: &Path) -> Result<(), EmulatorError> {
        seed::dump(&self.shared, dir)
    }

    /// Stops serving and closes every connection.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Waits until the server task ends (after [`EmulatorHandle::shutdown`] from elsewhere, or
    /// never); for async callers that serve until interrupted.
    pub async fn stop_and_wait(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                // Outside async code: wait (briefly) until the listener and connections close.
                rt.shutdown_timeout(std::time::Duration::from_secs(2));
            } else {
                // Blocking inside async code would panic; let the runtime wind down alone.
                rt.shutdown_background();
            }
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
