//! The Databricks REST client: configuration and authentication, transport (retries, throttling,
//! concurrency) and one module per API family. It speaks in [`crate::model`] types.
//! It must not import `bundle`, `emulator`, `export` or `import`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dbxport::client::ClientError> {
//! use dbxport::client::{Client, ClientOptions, Config, ConfigArgs};
//! let config = Config::resolve_from_env(&ConfigArgs::default())?;
//! let client = Client::new(&config, ClientOptions::from_config(&config))?;
//! for o in client.workspace().list("/Users").await? {
//!     println!("{}", o.path);
//! }
//! println!("{} requests", client.stats().requests);
//! # Ok(()) }
//! ```

pub mod archive;
pub mod auth;
pub mod commands;
pub mod compute;
pub mod config;
pub mod dbfs;
pub mod error;
pub mod files;
pub mod git_credentials;
pub mod ini;
pub mod jobs;
pub mod limiter;
pub mod mlflow;
pub mod pacer;
pub mod permissions;
pub mod repos;
pub mod scim;
pub mod secrets;
pub mod sql;
pub mod stats;
pub mod stream;
pub mod transport;
pub mod unity;
pub mod workspace;

pub use config::{
    AuthArgs, AzureCloud, AzureMethod, AzureOptions, BrowserOptions, BrowserSettings, CliOptions,
    Config, ConfigArgs, ConfigError, Credentials, LoginPrompt, MsiEndpoint, TokenCacheOptions,
    TransportArgs,
};
pub use error::{ApiError, ClientError, ErrorKind};
pub use stats::Stats;
pub use stream::ByteStream;
pub use transport::{Call, FormPart, Retry, Transport, TransportOptions};

use std::sync::Arc;
use std::time::Duration;

/// Options of a [`Client`] beyond its [`Config`].
pub type ClientOptions = TransportOptions;

impl TransportOptions {
    /// The defaults, with the profile's `retry_timeout_seconds` / `http_timeout_seconds`.
    pub fn from_config(config: &Config) -> TransportOptions {
        let mut o = TransportOptions::default();
        if let Some(t) = config.retry_timeout {
            o.retry_budget = t;
        }
        if let Some(t) = config.http_timeout {
            o.request_timeout = t;
        }
        o
    }

    /// Applies the engine flags (`--concurrency`, `--retry-timeout`, `--http-timeout`,
    /// `--max-response-mb`).
    pub fn with_args(mut self, args: &TransportArgs) -> TransportOptions {
        if let Some(c) = args.concurrency {
            self.concurrency = c as usize;
        }
        if let Some(s) = args.retry_timeout {
            self.retry_budget = Duration::from_secs(s);
        }
        if let Some(s) = args.http_timeout {
            self.request_timeout = Duration::from_secs(s);
        }
        if let Some(m) = args.max_response_mb {
            self.max_response_bytes = m << 20;
        }
        self
    }
}

#[derive(Debug)]
struct ClientInfo {
    config: Config,
}

/// A workspace client. Cheap to clone: clones share the connection pool, the concurrency
/// limiter, the OAuth token cache and the request counters.
#[derive(Debug, Clone)]
pub struct Client {
    transport: Transport,
    info: Arc<ClientInfo>,
}

impl Client {
    /// A client for the workspace and credentials of `config`. Makes no request.
    pub fn new(config: &Config, options: ClientOptions) -> Result<Client, ClientError> {
        let auth = auth::Auth::new(&config.credentials, options.clock.clone())?;
        let transport = Transport::new(&config.host, auth, options)?;
        Ok(Client {
            transport,
            info: Arc::new(ClientInfo {
                config: config.clone(),
            }),
        })
    }

    /// A client from the connection and engine flags, the environment and the config file.
    /// Returns the warnings to print (secrets given as flags) with it. Makes no request.
    pub fn from_args(
        auth: &AuthArgs,
        engine: &TransportArgs,
    ) -> Result<(Client, Vec<String>), ClientError> {
        let warnings = auth.warnings();
        for w in &warnings {
            tracing::warn!(target: "dbxport::client", "{w}");
        }
        let config = Config::resolve_from_env(&auth.to_config_args())?;
        let options = ClientOptions::from_config(&config).with_args(engine);
        Ok((Client::new(&config, options)?, warnings))
    }

    /// The workspace URL.
    pub fn host(&self) -> &str {
        self.transport.host()
    }

    /// The options this client was built with (the profile's and the engine flags'): what a
    /// second client serving the same command, such as an MLflow server's, should use too.
    pub fn options(&self) -> &ClientOptions {
        self.transport.options()
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &Config {
        &self.info.config
    }

    /// The engine, for calls no API module covers.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Request counters so far.
    pub fn stats(&self) -> Stats {
        self.transport.stats()
    }

    /// Workspace objects (`/api/2.0/workspace/*`).
    pub fn workspace(&self) -> workspace::WorkspaceApi<'_> {
        workspace::WorkspaceApi::new(self)
    }

    /// Git folders (`/api/2.0/repos`).
    pub fn repos(&self) -> repos::ReposApi<'_> {
        repos::ReposApi::new(self)
    }

    /// Git credentials (`/api/2.0/git-credentials`).
    pub fn git_credentials(&self) -> git_credentials::GitCredentialsApi<'_> {
        git_credentials::GitCredentialsApi::new(self)
    }

    /// Jobs 2.2 (`/api/2.2/jobs/*`).
    pub fn jobs(&self) -> jobs::JobsApi<'_> {
        jobs::JobsApi::new(self)
    }

    /// Secrets (`/api/2.0/secrets/*`).
    pub fn secrets(&self) -> secrets::SecretsApi<'_> {
        secrets::SecretsApi::new(self)
    }

    /// Object permissions (`/api/2.0/permissions/*`).
    pub fn permissions(&self) -> permissions::PermissionsApi<'_> {
        permissions::PermissionsApi::new(self)
    }

    /// SQL warehouses and statement execution.
    pub fn sql(&self) -> sql::SqlApi<'_> {
        sql::SqlApi::new(self)
    }

    /// Unity Catalog grants.
    pub fn unity(&self) -> unity::UnityApi<'_> {
        unity::UnityApi::new(self)
    }

    /// Clusters, instance pools, policies (reference-only records).
    pub fn compute(&self) -> compute::ComputeApi<'_> {
        compute::ComputeApi::new(self)
    }

    /// Command execution on a cluster (API 1.2).
    pub fn commands(&self) -> commands::CommandsApi<'_> {
        commands::CommandsApi::new(self)
    }

    /// DBFS (`/api/2.0/dbfs/*`).
    pub fn dbfs(&self) -> dbfs::DbfsApi<'_> {
        dbfs::DbfsApi::new(self)
    }

    /// Files API (`/api/2.0/fs/*`).
    pub fn files(&self) -> files::FilesApi<'_> {
        files::FilesApi::new(self)
    }

    /// MLflow model registry and artifacts.
    pub fn mlflow(&self) -> mlflow::MlflowApi<'_> {
        mlflow::MlflowApi::new(self)
    }

    /// Users, groups, service principals (SCIM).
    pub fn scim(&self) -> scim::ScimApi<'_> {
        scim::ScimApi::new(self)
    }
}

/// Percent-encodes one query-less path, keeping `/` (Files API, UC names).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes one path segment (no `/` kept).
pub fn encode_segment(s: &str) -> String {
    encode_path(s).replace('/', "%2F")
}

/// A `limit` on pages followed in one listing; a server whose page tokens never end is a
/// protocol error, not an endless loop.
pub(crate) const MAX_PAGES: usize = 100_000;

/// Fails when a listing has followed [`MAX_PAGES`] pages or the server repeated a token.
pub(crate) fn check_page(
    call: &str,
    pages: usize,
    seen: &mut std::collections::HashSet<String>,
    token: &str,
) -> Result<(), ClientError> {
    if pages >= MAX_PAGES || !seen.insert(token.to_string()) {
        return Err(ClientError::Protocol {
            call: call.to_string(),
            message: format!(
                "the server's page token `{token}` repeats or never ends (after {pages} pages)"
            ),
        });
    }
    Ok(())
}

/// Bytes that are wiped when the last reference to them goes.
struct ZeroOnDrop(zeroize::Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for ZeroOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Serializes a JSON body that carries secrets into a buffer sized up front (so it is never
/// reallocated and copied) and wiped on drop; the secret string fields of `v` are wiped too.
/// This is best effort: the HTTP stack may still copy the bytes into its own buffers.
pub(crate) fn secret_json(mut v: serde_json::Value, secret_fields: &[&str]) -> bytes::Bytes {
    let estimate: usize = 256
        + 2 * v
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, x)| k.len() + x.as_str().map_or(64, str::len) * 6)
                    .sum::<usize>()
            })
            .unwrap_or(0);
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(estimate));
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &v);
    for f in secret_fields {
        if let Some(serde_json::Value::String(s)) = v.get_mut(*f) {
            zeroize::Zeroize::zeroize(s);
        }
    }
    bytes::Bytes::from_owner(ZeroOnDrop(buf))
}
