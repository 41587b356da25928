//! The two model registries dbxport reads and writes, behind one [`Registry`]:
//!
//! * a Databricks workspace's registry (`Registry::databricks`): models and versions through
//!   `/api/2.0/mlflow/*`, artifacts read through the registry's artifact listing and signed
//!   downloads (falling back to DBFS reads in 1 MB chunks when the listing is refused), and
//!   written to DBFS (`dbfs:/…`, 1 MB blocks) or the Files API (`/Volumes/…`) before a version
//!   is created from them;
//! * an open-source MLflow tracking server (`Registry::oss`, `--mlflow-uri`): the same
//!   registry calls, artifacts through the server's `mlflow-artifacts` proxy, and for each
//!   imported version a run (in one experiment) whose artifact root receives the files.
//!
//! Both speak through [`crate::client`]'s transport (retries, throttling, resumed downloads).
//! An MLflow server without a token gets no `Authorization` header at all.

use super::error::ModelsError;
use super::uri::{self, ArtifactUri};
use crate::client::stream::ByteStream;
use crate::client::transport::Call;
use crate::client::{encode_path, Client, ClientError, ClientOptions, Config, Stats};
use crate::hints::Hint;
use crate::model::mlflow::{FileInfo, ModelVersion, RegisteredModel};
use crate::model::permissions::ObjectPermissions;
use crate::model::KeyValue;
use age::secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Which kind of registry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    /// A Databricks workspace; imported artifacts are staged under this path (`dbfs:/…` or
    /// `/Volumes/…`).
    Databricks { staging: String },
    /// An MLflow tracking server; imported versions' runs live in this experiment.
    Oss { experiment: String },
    /// Unity Catalog's model registry of a Databricks workspace: models and versions through
    /// `/api/2.0/mlflow/unity-catalog/*`, owners through `/api/2.1/unity-catalog/models`,
    /// version files through temporary credentials and presigned URLs.
    Uc,
}

/// A model registry: a Databricks workspace's or an MLflow tracking server's.
#[derive(Debug, Clone)]
pub struct Registry {
    client: Client,
    auth: bool,
    backend: Backend,
}

/// Where a version's artifact files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// Through the Databricks registry: `model-versions/list-artifacts` and signed downloads.
    Registry {
        /// Model name.
        name: String,
        /// Version.
        version: String,
    },
    /// Through an MLflow server's artifact proxy, below this path.
    Proxy(String),
    /// DBFS, below this absolute path.
    Dbfs(String),
    /// Unity Catalog storage of a version, `/Models/<catalog>/<schema>/<model>/<version>`,
    /// read through presigned URLs.
    Uc(String),
}

impl ArtifactLocation {
    /// A URI naming the location, for records and messages.
    pub fn uri(&self) -> String {
        match self {
            ArtifactLocation::Registry { name, version } => format!("models:/{name}/{version}"),
            ArtifactLocation::Proxy(p) => format!("mlflow-artifacts:/{p}"),
            ArtifactLocation::Dbfs(p) => format!("dbfs:{p}"),
            ArtifactLocation::Uc(p) => format!("uc:{p}"),
        }
    }
}

/// One artifact file found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Path relative to the artifact root.
    pub path: String,
    /// Size in bytes, when the listing gave one.
    pub size: Option<u64>,
}

/// Where an import writes a version's artifacts before creating the version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct UploadTarget {
    /// `proxy` (MLflow server), `dbfs` or `files` (workspace).
    pub via: String,
    /// The folder the files go below (proxy path, DBFS path or Files API path).
    pub base: String,
    /// The version's `source` URI.
    pub source: String,
    /// The run that carries the artifacts (MLflow servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// A source run's provenance as `runs/get` returns it (info and data), kept as JSON.
pub type RunProvenance = Value;

#[derive(Deserialize)]
struct ModelsPage {
    #[serde(default)]
    registered_models: Vec<RegisteredModel>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct VersionsPage {
    #[serde(default)]
    model_versions: Vec<ModelVersion>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// `POST /api/2.0/fs/create-download-url` and `create-upload-url`.
#[derive(Deserialize)]
struct PresignedUrl {
    url: String,
    #[serde(default)]
    headers: Vec<UrlHeader>,
}

/// A header a presigned URL must be sent with.
#[derive(Deserialize)]
struct UrlHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct DirectoryPage {
    #[serde(default)]
    contents: Vec<DirectoryEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct DirectoryEntry {
    path: String,
    #[serde(default)]
    is_directory: bool,
    #[serde(default)]
    file_size: Option<i64>,
}

#[derive(Deserialize)]
struct FilesPage {
    #[serde(default)]
    files: Vec<FileInfo>,
}

#[derive(Deserialize)]
struct ModelEnvelope {
    registered_model: RegisteredModel,
}

#[derive(Deserialize)]
struct VersionEnvelope {
    model_version: ModelVersion,
}

/// Pages followed in one listing at most, so a server whose tokens never end cannot loop us.
const MAX_PAGES: usize = 100_000;
/// How long a new version may stay `PENDING_REGISTRATION`.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// Files up to this size are uploaded from memory, so the client can send them again.
pub const SMALL_UPLOAD: u64 = 1 << 20;
/// How often a write whose outcome is unknown is checked and sent again.
pub const AMBIGUOUS_ATTEMPTS: u32 = 4;
/// Runs `log-batch` accepts at most this many params, tags and metrics per request.
const BATCH_PARAMS: usize = 100;
const BATCH_TAGS: usize = 100;
const BATCH_METRICS: usize = 1000;

fn protocol(call: &str, message: impl Into<String>) -> ClientError {
    ClientError::Protocol {
        call: call.to_string(),
        message: message.into(),
    }
}

/// A filter clause matching one model name exactly, when the name can be quoted.
fn name_filter(name: &str) -> Option<String> {
    (!name.contains('\'') && !name.contains('\\')).then(|| format!("name='{name}'"))
}

impl Registry {
    /// The registry of a Databricks workspace. Imported artifacts are staged under
    /// `staging` (`dbfs:/…` through DBFS, `/Volumes/…` through the Files API).
    pub fn databricks(client: Client, staging: &str) -> Result<Registry, ModelsError> {
        let staging = staging.trim().trim_end_matches('/').to_string();
        let ok = staging.starts_with("dbfs:/") || staging.starts_with("/Volumes/");
        if !ok || staging.split('/').any(|c| c == "..") {
            return Err(ModelsError::usage(
                format!("--model-artifact-path {staging}"),
                "is neither a dbfs:/ path nor a /Volumes/ path",
                Hint::ModelArtifactPath,
            ));
        }
        Ok(Registry {
            client,
            auth: true,
            backend: Backend::Databricks { staging },
        })
    }

    /// The registry of the MLflow tracking server at `uri`. `token`, when given, is sent as a
    /// bearer token (as `MLFLOW_TRACKING_TOKEN` is by the MLflow client); without one no
    /// credential is sent. Imported versions' runs go into `experiment`.
    pub fn oss(
        uri: &str,
        token: Option<SecretString>,
        experiment: &str,
        options: ClientOptions,
    ) -> Result<Registry, ModelsError> {
        let auth = token.is_some();
        // The transport needs credentials to exist; without a token every call is marked
        // unauthenticated, so this placeholder is never sent.
        let token = token.unwrap_or_else(|| SecretString::from("unused".to_string()));
        let config = Config::pat(uri, token).map_err(|e| {
            ModelsError::usage(
                format!("--mlflow-uri {uri}"),
                e.to_string(),
                Hint::MlflowUri,
            )
        })?;
        let client = Client::new(&config, options)?;
        if experiment.trim().is_empty() {
            return Err(ModelsError::usage(
                "--mlflow-experiment",
                "is empty",
                Hint::MlflowExperiment,
            ));
        }
        Ok(Registry {
            client,
            auth,
            backend: Backend::Oss {
                experiment: experiment.to_string(),
            },
        })
    }

    /// The Unity Catalog model registry of the workspace `client` talks to.
    pub fn uc(client: Client) -> Registry {
        Registry {
            client,
            auth: true,
            backend: Backend::Uc,
        }
    }

    /// True for an MLflow tracking server, false for a Databricks workspace.
    pub fn is_oss(&self) -> bool {
        matches!(self.backend, Backend::Oss { .. })
    }

    /// True for Unity Catalog's model registry.
    pub fn is_uc(&self) -> bool {
        matches!(self.backend, Backend::Uc)
    }

    /// True for a workspace's own (non-UC) model registry, which has no aliases.
    pub fn is_workspace_registry(&self) -> bool {
        matches!(self.backend, Backend::Databricks { .. })
    }

    /// `ws` for the workspace registry and MLflow servers, `uc` for Unity Catalog.
    fn route(&self, ws: &'static str, uc: &'static str) -> &'static str {
        if self.is_uc() {
            uc
        } else {
            ws
        }
    }

    /// The client that reads and writes this registry.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The server's URL.
    pub fn host(&self) -> &str {
        self.client.host()
    }

    /// `MLflow server <url>` or `workspace <url>`, for messages.
    pub fn describe(&self) -> String {
        match self.backend {
            Backend::Oss { .. } => format!("MLflow server {}", self.host()),
            Backend::Databricks { .. } => format!("workspace {}", self.host()),
            Backend::Uc => format!("Unity Catalog of workspace {}", self.host()),
        }
    }

    /// Request counters of this registry's client.
    pub fn stats(&self) -> Stats {
        self.client.stats()
    }

    fn call(&self, c: Call) -> Call {
        if self.auth {
            c
        } else {
            c.unauthenticated()
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, c: Call) -> Result<T, ClientError> {
        self.client.transport().json(self.call(c)).await
    }

    async fn send(&self, c: Call) -> Result<(), ClientError> {
        self.client.transport().send(self.call(c)).await
    }

    // ---- reading -------------------------------------------------------------------------

    /// Every registered model, with its tags and aliases (one `get` per model after the
    /// search, because searches may leave them out). Sorted by name.
    pub async fn list_models(&self) -> Result<Vec<RegisteredModel>, ClientError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        for page in 0.. {
            let call = Call::get(self.route(
                "/api/2.0/mlflow/registered-models/search",
                "/api/2.0/mlflow/unity-catalog/registered-models/search",
            ))
            .query("max_results", 1000)
            .query_opt("page_token", token.as_deref());
            let describe = call.describe();
            let p: ModelsPage = self.json(call).await?;
            names.extend(p.registered_models.into_iter().map(|m| m.name));
            match p.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if page < MAX_PAGES && seen.insert(t.clone()) => token = Some(t),
                Some(_) => return Err(protocol(&describe, "the page tokens never end")),
                None => break,
            }
        }
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            match self.get_model(&n).await? {
                Some(m) => out.push(m),
                // Deleted between the search and the get: nothing to export.
                None => continue,
            }
        }
        Ok(out)
    }

    /// One model, or `None` when there is none of that name.
    pub async fn get_model(&self, name: &str) -> Result<Option<RegisteredModel>, ClientError> {
        let r: Result<ModelEnvelope, ClientError> = self
            .json(
                Call::get(self.route(
                    "/api/2.0/mlflow/registered-models/get",
                    "/api/2.0/mlflow/unity-catalog/registered-models/get",
                ))
                .query("name", name)
                .object(format!("model={name}")),
            )
            .await;
        match r {
            Ok(mut m) if self.is_uc() => {
                m.registered_model.owner = self.uc_owner(name).await?;
                Ok(Some(m.registered_model))
            }
            Ok(m) => Ok(Some(m.registered_model)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A UC model's owner, from the catalog API.
    async fn uc_owner(&self, name: &str) -> Result<Option<String>, ClientError> {
        let v: Value = self
            .json(
                Call::get("/api/2.1/unity-catalog/models/{full_name}")
                    .path(format!(
                        "/api/2.1/unity-catalog/models/{}",
                        crate::client::encode_segment(name)
                    ))
                    .object(format!("model={name}")),
            )
            .await?;
        Ok(v["owner"]
            .as_str()
            .filter(|o| !o.is_empty())
            .map(str::to_string))
    }

    /// Makes `owner` the owner of a UC model.
    pub async fn set_owner(&self, name: &str, owner: &str) -> Result<(), ClientError> {
        self.send(
            Call::patch("/api/2.1/unity-catalog/models/{full_name}")
                .path(format!(
                    "/api/2.1/unity-catalog/models/{}",
                    crate::client::encode_segment(name)
                ))
                .json(&json!({ "owner": owner }))
                .safe_to_retry()
                .object(format!("model={name} owner={owner}")),
        )
        .await
    }

    /// Marks a UC version whose files are all uploaded `READY`.
    pub async fn finalize(&self, name: &str, version: &str) -> Result<(), ClientError> {
        self.send(
            Call::post("/api/2.0/mlflow/unity-catalog/model-versions/finalize")
                .json(&json!({ "name": name, "version": version }))
                .safe_to_retry()
                .object(format!("model={name} version={version}")),
        )
        .await
    }

    /// Asks for temporary credentials on a UC version's files (`MODEL_VERSION_OPERATION_READ`
    /// or `…_READ_WRITE`) and checks they are of the kind read through presigned URLs.
    async fn uc_credentials(
        &self,
        name: &str,
        version: &str,
        operation: &str,
    ) -> Result<(), ModelsError> {
        let call = Call::post(
            "/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials",
        )
        .json(&json!({ "name": name, "version": version, "operation": operation }))
        .safe_to_retry()
        .object(format!("model={name} version={version}"));
        let v: Value = self.json(call).await?;
        let mode = v["credentials"]["storage_mode"].as_str().unwrap_or("");
        if mode != "DEFAULT_STORAGE" {
            return Err(ModelsError::usage(
                format!("model {name} version {version}"),
                format!(
                    "its files are in customer-hosted cloud storage (storage mode {}), which dbxport reads only through Databricks presigned URLs",
                    if mode.is_empty() { "unspecified" } else { mode }
                ),
                Hint::UcCustomerStorage,
            ));
        }
        Ok(())
    }

    /// A presigned URL for `path` (`create-download-url` or `create-upload-url`).
    async fn presigned(&self, route: &'static str, path: &str) -> Result<Call, ClientError> {
        let u: PresignedUrl = self
            .json(
                Call::post(route)
                    .json(&json!({ "path": path }))
                    .safe_to_retry()
                    .object(format!("path={path}")),
            )
            .await?;
        let method = if route.ends_with("upload-url") {
            Call::put("(presigned url)")
        } else {
            Call::get("(presigned url)")
        };
        let mut call = method
            .url(u.url)
            .unauthenticated()
            .object(format!("path={path}"));
        for h in u.headers {
            match reqwest::header::HeaderName::from_bytes(h.name.as_bytes()) {
                Ok(n) => call = call.header(n, h.value),
                Err(_) => return Err(protocol(route, format!("invalid header name `{}`", h.name))),
            }
        }
        Ok(call)
    }

    /// The permissions id of a model (Databricks only; `None` for an MLflow server).
    pub async fn permissions_id(&self, name: &str) -> Result<Option<String>, ClientError> {
        if self.is_oss() || self.is_uc() {
            return Ok(None);
        }
        Ok(Some(
            self.client.mlflow().get_model_databricks(name).await?.id,
        ))
    }

    /// A model's access control list (Databricks only).
    pub async fn model_permissions(&self, id: &str) -> Result<ObjectPermissions, ClientError> {
        self.client.permissions().get("registered-models", id).await
    }

    /// Every version of a model, each as `model-versions/get` returns it (with tags and
    /// aliases), in ascending version order.
    pub async fn list_versions(&self, name: &str) -> Result<Vec<ModelVersion>, ClientError> {
        let filter = name_filter(name);
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        for page in 0.. {
            let call = Call::get(self.route(
                "/api/2.0/mlflow/model-versions/search",
                "/api/2.0/mlflow/unity-catalog/model-versions/search",
            ))
            .query("max_results", 1000)
            .query_opt("filter", filter.as_deref())
            .query_opt("page_token", token.as_deref())
            .object(format!("model={name}"));
            let describe = call.describe();
            let p: VersionsPage = self.json(call).await?;
            found.extend(p.model_versions.into_iter().filter(|v| v.name == name));
            match p.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if page < MAX_PAGES && seen.insert(t.clone()) => token = Some(t),
                Some(_) => return Err(protocol(&describe, "the page tokens never end")),
                None => break,
            }
        }
        found.sort_by_key(|v| super::select::version_number(&v.version));
        found.dedup_by(|a, b| a.version == b.version);
        let mut out = Vec::with_capacity(found.len());
        for v in found {
            match self.get_version(name, &v.version).await {
                Ok(full) => out.push(full),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The numbers and sources of a model's versions, from the search alone (one request per
    /// page; no per-version reads).
    pub async fn version_sources(
        &self,
        name: &str,
    ) -> Result<Vec<(String, Option<String>)>, ClientError> {
        let filter = name_filter(name);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        for page in 0.. {
            let call = Call::get(self.route(
                "/api/2.0/mlflow/model-versions/search",
                "/api/2.0/mlflow/unity-catalog/model-versions/search",
            ))
            .query("max_results", 1000)
            .query_opt("filter", filter.as_deref())
            .query_opt("page_token", token.as_deref())
            .object(format!("model={name}"));
            let describe = call.describe();
            let p: VersionsPage = self.json(call).await?;
            out.extend(
                p.model_versions
                    .into_iter()
                    .filter(|v| v.name == name)
                    .map(|v| (v.version, v.source)),
            );
            match p.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if page < MAX_PAGES && seen.insert(t.clone()) => token = Some(t),
                Some(_) => return Err(protocol(&describe, "the page tokens never end")),
                None => break,
            }
        }
        Ok(out)
    }

    /// One version.
    pub async fn get_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<ModelVersion, ClientError> {
        let r: VersionEnvelope = self
            .json(
                Call::get(self.route(
                    "/api/2.0/mlflow/model-versions/get",
                    "/api/2.0/mlflow/unity-catalog/model-versions/get",
                ))
                .query("name", name)
                .query("version", version)
                .object(format!("model={name} version={version}")),
            )
            .await?;
        Ok(r.model_version)
    }

    /// A run's info and data (params, latest metrics, tags), or `None` when the run is gone.
    /// A registry that does not serve `runs/get` at all fails with `ENDPOINT_NOT_FOUND`
    /// ([`ClientError::is_endpoint_not_found`]), which is not a missing run.
    pub async fn get_run(&self, run_id: &str) -> Result<Option<RunProvenance>, ClientError> {
        let r: Result<Value, ClientError> = self
            .json(
                Call::get("/api/2.0/mlflow/runs/get")
                    .query("run_id", run_id)
                    .object(format!("run_id={run_id}")),
            )
            .await;
        match r {
            Ok(v) => Ok(v.get("run").cloned()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn download_uri(&self, name: &str, version: &str) -> Result<String, ClientError> {
        let call = Call::get("/api/2.0/mlflow/model-versions/get-download-uri")
            .query("name", name)
            .query("version", version)
            .object(format!("model={name} version={version}"));
        let describe = call.describe();
        let v: Value = self.json(call).await?;
        v.get("artifact_uri")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| protocol(&describe, "the answer has no artifact_uri"))
    }

    /// Where a version's artifacts are read from. A Databricks registry is read through its
    /// artifact listing; an MLflow server through its proxy, after following `runs:/`,
    /// `models:/` and `mlflow-artifacts:` URIs to the proxy path.
    pub async fn locate(&self, v: &ModelVersion) -> Result<ArtifactLocation, ModelsError> {
        if self.is_uc() {
            self.uc_credentials(&v.name, &v.version, "MODEL_VERSION_OPERATION_READ")
                .await?;
            return Ok(ArtifactLocation::Uc(uc_storage(&v.name, &v.version)?));
        }
        if !self.is_oss() {
            return Ok(ArtifactLocation::Registry {
                name: v.name.clone(),
                version: v.version.clone(),
            });
        }
        let mut uri_text = self.download_uri(&v.name, &v.version).await?;
        for _ in 0..8 {
            match uri::parse(&uri_text) {
                ArtifactUri::Proxy(p) => return Ok(ArtifactLocation::Proxy(p)),
                ArtifactUri::Run { run_id, path } => {
                    let run = self.get_run(&run_id).await?.ok_or_else(|| {
                        ModelsError::usage(
                            format!("model {} version {}", v.name, v.version),
                            format!("its source run {run_id} does not exist"),
                            Hint::SourceRunMissing,
                        )
                    })?;
                    let root = run["info"]["artifact_uri"].as_str().unwrap_or("");
                    uri_text = uri::join(root, &path);
                }
                ArtifactUri::LoggedModel { model_id, path } => {
                    let call = Call::get("/api/2.0/mlflow/logged-models/{id}")
                        .path(format!(
                            "/api/2.0/mlflow/logged-models/{}",
                            crate::client::encode_segment(&model_id)
                        ))
                        .object(format!("model_id={model_id}"));
                    let m: Value = self.json(call).await?;
                    let root = m["model"]["info"]["artifact_uri"].as_str().unwrap_or("");
                    uri_text = uri::join(root, &path);
                }
                ArtifactUri::Registered { name, version } => {
                    uri_text = self.download_uri(&name, &version).await?;
                }
                ArtifactUri::Dbfs(_) | ArtifactUri::Other(_) => {
                    return Err(ModelsError::usage(
                        format!("model {} version {}", v.name, v.version),
                        format!(
                            "its artifacts are at {uri_text}, which the MLflow server does not serve through its artifact proxy"
                        ),
                        Hint::ArtifactsNotProxied,
                    ));
                }
            }
        }
        Err(ModelsError::usage(
            format!("model {} version {}", v.name, v.version),
            "its artifact URI refers to itself in a loop",
            Hint::ArtifactUriLoop,
        ))
    }

    /// The DBFS location a Databricks version's artifacts are stored at (`get-download-uri`),
    /// for reading them when the registry's own listing is refused.
    pub async fn locate_dbfs(
        &self,
        v: &ModelVersion,
    ) -> Result<Option<ArtifactLocation>, ClientError> {
        let u = self.download_uri(&v.name, &v.version).await?;
        Ok(match uri::parse(&u) {
            ArtifactUri::Dbfs(p) => Some(ArtifactLocation::Dbfs(p)),
            _ => None,
        })
    }

    /// Every file below a location, recursively, sorted by path. Paths that would leave the
    /// root are refused.
    pub async fn list_files(&self, loc: &ArtifactLocation) -> Result<Vec<ListedFile>, ModelsError> {
        let mut out = Vec::new();
        let mut dirs = vec![String::new()];
        let mut visited = HashSet::new();
        while let Some(dir) = dirs.pop() {
            if !visited.insert(dir.clone()) {
                continue;
            }
            for (rel, is_dir, size) in self.list_dir(loc, &dir).await? {
                if !uri::is_safe_relative(&rel)
                    || (!dir.is_empty() && !rel.starts_with(&format!("{dir}/")))
                {
                    return Err(ModelsError::Client(protocol(
                        &format!("artifact listing of {}", loc.uri()),
                        format!("the listing names {rel:?}, which is not below {dir:?}"),
                    )));
                }
                if is_dir {
                    dirs.push(rel);
                } else {
                    out.push(ListedFile { path: rel, size });
                }
            }
        }
        out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(out)
    }

    /// One directory level: `(path relative to the root, is_dir, size)`.
    async fn list_dir(
        &self,
        loc: &ArtifactLocation,
        dir: &str,
    ) -> Result<Vec<(String, bool, Option<u64>)>, ClientError> {
        let size = |s: Option<i64>| s.and_then(|x| u64::try_from(x).ok());
        match loc {
            ArtifactLocation::Registry { name, version } => {
                let l = self
                    .client
                    .mlflow()
                    .list_version_artifacts(name, version, (!dir.is_empty()).then_some(dir))
                    .await?;
                // Databricks lists paths relative to the version's root; tolerate servers
                // that answer with names relative to the listed folder.
                Ok(l.files
                    .into_iter()
                    .map(|f| {
                        let p = f.path.trim_matches('/').to_string();
                        let rel = if dir.is_empty() || p.starts_with(&format!("{dir}/")) {
                            p
                        } else {
                            uri::join(dir, &p)
                        };
                        (rel, f.is_dir, size(f.file_size))
                    })
                    .collect())
            }
            ArtifactLocation::Uc(base) => {
                let folder = uri::join(base, dir);
                let mut out = Vec::new();
                let mut token: Option<String> = None;
                let mut seen = HashSet::new();
                for page in 0.. {
                    let call = Call::get("/api/2.0/fs/directories/Models/{path}")
                        .path(format!("/api/2.0/fs/directories{}", encode_path(&folder)))
                        .query_opt("page_token", token.as_deref())
                        .object(format!("path={folder}"));
                    let describe = call.describe();
                    let p: DirectoryPage = self.json(call).await?;
                    let prefix = format!("{}/", base.trim_end_matches('/'));
                    for e in p.contents {
                        let rel = e
                            .path
                            .strip_prefix(&prefix)
                            .unwrap_or(&e.path)
                            .trim_matches('/')
                            .to_string();
                        out.push((rel, e.is_directory, size(e.file_size)));
                    }
                    match p.next_page_token.filter(|t| !t.is_empty()) {
                        Some(t) if page < MAX_PAGES && seen.insert(t.clone()) => token = Some(t),
                        Some(_) => return Err(protocol(&describe, "the page tokens never end")),
                        None => break,
                    }
                }
                Ok(out)
            }
            ArtifactLocation::Proxy(base) => {
                let path = uri::join(base, dir);
                let p: FilesPage = self
                    .json(
                        Call::get("/api/2.0/mlflow-artifacts/artifacts")
                            .query("path", &path)
                            .object(format!("path={path}")),
                    )
                    .await?;
                // The proxy names entries relative to the listed folder.
                Ok(p.files
                    .into_iter()
                    .map(|f| {
                        let name = f.path.trim_matches('/');
                        let name = name.rsplit('/').next().unwrap_or(name);
                        (uri::join(dir, name), f.is_dir, size(f.file_size))
                    })
                    .collect())
            }
            ArtifactLocation::Dbfs(base) => {
                let path = if dir.is_empty() {
                    base.clone()
                } else {
                    format!("{}/{dir}", base.trim_end_matches('/'))
                };
                let entries = self.client.dbfs().list(&path).await?;
                let prefix = format!("{}/", base.trim_end_matches('/'));
                Ok(entries
                    .into_iter()
                    .map(|e| {
                        let rel = e
                            .path
                            .strip_prefix(&prefix)
                            .unwrap_or(&e.path)
                            .trim_matches('/')
                            .to_string();
                        (rel, e.is_dir, u64::try_from(e.file_size).ok())
                    })
                    .collect())
            }
        }
    }

    /// The size a listing gives one file now, or `None` when it is gone.
    pub async fn stat(
        &self,
        loc: &ArtifactLocation,
        rel: &str,
    ) -> Result<Option<u64>, ClientError> {
        let parent = rel.rsplit_once('/').map_or("", |(d, _)| d);
        Ok(self
            .list_dir(loc, parent)
            .await?
            .into_iter()
            .find(|(p, is_dir, _)| p == rel && !is_dir)
            .and_then(|(_, _, s)| s))
    }

    /// Opens one artifact file as a stream.
    pub async fn open(&self, loc: &ArtifactLocation, rel: &str) -> Result<ByteStream, ClientError> {
        match loc {
            ArtifactLocation::Registry { name, version } => {
                self.client
                    .mlflow()
                    .download_version_artifact(name, version, rel)
                    .await
            }
            ArtifactLocation::Proxy(base) => {
                let path = uri::join(base, rel);
                self.client
                    .transport()
                    .stream(
                        self.call(
                            Call::get("/api/2.0/mlflow-artifacts/artifacts/{path}")
                                .path(format!(
                                    "/api/2.0/mlflow-artifacts/artifacts/{}",
                                    encode_path(&path)
                                ))
                                .object(format!("path={path}")),
                        ),
                    )
                    .await
            }
            ArtifactLocation::Dbfs(base) => {
                self.client
                    .dbfs()
                    .read(&format!("{}/{rel}", base.trim_end_matches('/')))
                    .await
            }
            ArtifactLocation::Uc(base) => {
                let path = uri::join(base, rel);
                let call = self
                    .presigned("/api/2.0/fs/create-download-url", &path)
                    .await?;
                self.client.transport().stream(call).await
            }
        }
    }

    // ---- writing -------------------------------------------------------------------------

    /// Creates a registered model (not safe to replay: a second create fails).
    pub async fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<(), ClientError> {
        let mut body = json!({ "name": name });
        if let Some(d) = description.filter(|d| !d.is_empty()) {
            body["description"] = json!(d);
        }
        if !tags.is_empty() {
            body["tags"] = json!(tags);
        }
        self.send(
            Call::post(self.route(
                "/api/2.0/mlflow/registered-models/create",
                "/api/2.0/mlflow/unity-catalog/registered-models/create",
            ))
            .json(&body)
            .object(format!("model={name}")),
        )
        .await
    }

    /// Sets a model's description.
    pub async fn update_model(&self, name: &str, description: &str) -> Result<(), ClientError> {
        self.send(
            Call::patch(self.route(
                "/api/2.0/mlflow/registered-models/update",
                "/api/2.0/mlflow/unity-catalog/registered-models/update",
            ))
            .json(&json!({ "name": name, "description": description }))
            .safe_to_retry()
            .object(format!("model={name}")),
        )
        .await
    }

    /// Sets a model tag.
    pub async fn set_model_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        self.send(
            Call::post(self.route(
                "/api/2.0/mlflow/registered-models/set-tag",
                "/api/2.0/mlflow/unity-catalog/registered-models/set-tag",
            ))
            .json(&json!({ "name": name, "key": key, "value": value }))
            .safe_to_retry()
            .object(format!("model={name} tag={key}")),
        )
        .await
    }

    /// Points an alias at a version (Unity Catalog and MLflow servers; a workspace's own
    /// registry has no aliases, and import never calls this for one).
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<(), ClientError> {
        if self.is_workspace_registry() {
            return Err(protocol(
                "POST /api/2.0/mlflow/registered-models/alias",
                "the workspace model registry has no aliases; not sent",
            ));
        }
        self.send(
            Call::post(self.route(
                "/api/2.0/mlflow/registered-models/alias",
                "/api/2.0/mlflow/unity-catalog/registered-models/alias",
            ))
            .json(&json!({ "name": name, "alias": alias, "version": version }))
            .safe_to_retry()
            .object(format!("model={name} alias={alias}")),
        )
        .await
    }

    /// Creates a version from artifacts at `source`.
    pub async fn create_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        description: Option<&str>,
        tags: &[KeyValue],
        run_workspace: Option<&str>,
    ) -> Result<ModelVersion, ClientError> {
        let mut body = json!({ "name": name, "source": source });
        if let Some(r) = run_id {
            body["run_id"] = json!(r);
        }
        if let Some(d) = description.filter(|d| !d.is_empty()) {
            body["description"] = json!(d);
        }
        if !tags.is_empty() {
            body["tags"] = json!(tags);
        }
        if let Some(w) = run_workspace.filter(|_| self.is_uc()) {
            body["run_tracking_server_id"] = json!(w);
        }
        let r: VersionEnvelope = self
            .json(
                Call::post(self.route(
                    "/api/2.0/mlflow/model-versions/create",
                    "/api/2.0/mlflow/unity-catalog/model-versions/create",
                ))
                .json(&body)
                .object(format!("model={name} source={source}")),
            )
            .await?;
        Ok(r.model_version)
    }

    /// Waits until a new version leaves `PENDING_REGISTRATION`; returns it.
    pub async fn wait_ready(&self, name: &str, version: &str) -> Result<ModelVersion, ClientError> {
        let started = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let v = self.get_version(name, version).await?;
            if v.status.as_deref() != Some("PENDING_REGISTRATION") {
                return Ok(v);
            }
            // A UC version stays pending until its files are uploaded and it is finalized.
            if self.is_uc() || started.elapsed() > READY_TIMEOUT {
                return Err(protocol(
                    &format!(
                        "GET /api/2.0/mlflow/model-versions/get model={name} version={version}"
                    ),
                    format!(
                        "still PENDING_REGISTRATION after {} s",
                        READY_TIMEOUT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }

    /// Sets a version's description.
    pub async fn update_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<(), ClientError> {
        self.send(
            Call::patch(self.route(
                "/api/2.0/mlflow/model-versions/update",
                "/api/2.0/mlflow/unity-catalog/model-versions/update",
            ))
            .json(&json!({ "name": name, "version": version, "description": description }))
            .safe_to_retry()
            .object(format!("model={name} version={version}")),
        )
        .await
    }

    /// Sets a version tag.
    pub async fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        self.send(
            Call::post(self.route(
                "/api/2.0/mlflow/model-versions/set-tag",
                "/api/2.0/mlflow/unity-catalog/model-versions/set-tag",
            ))
            .json(&json!({ "name": name, "version": version, "key": key, "value": value }))
            .safe_to_retry()
            .object(format!("model={name} version={version} tag={key}")),
        )
        .await
    }

    /// Moves a version to a stage, leaving other versions where they are.
    pub async fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
    ) -> Result<(), ClientError> {
        self.send(
            Call::post("/api/2.0/mlflow/model-versions/transition-stage")
                .json(&json!({
                    "name": name,
                    "version": version,
                    "stage": stage,
                    "archive_existing_versions": false,
                }))
                .safe_to_retry()
                .object(format!("model={name} version={version} stage={stage}")),
        )
        .await
    }

    /// Prepares the place a version's artifacts are uploaded to. On an MLflow server this
    /// creates a run (in the import experiment, created when missing) named after the source
    /// version, records the source run's params, metrics and tags on it, and returns a folder
    /// below the run's artifact root; on a workspace it is a folder below the staging path.
    /// `marker` names the folder (see [`super::manifest::marker`]).
    pub async fn prepare_upload(
        &self,
        model: &str,
        version: &str,
        marker: &str,
        provenance: Option<&RunProvenance>,
        extra_tags: &[KeyValue],
    ) -> Result<UploadTarget, ModelsError> {
        match &self.backend {
            Backend::Uc => Err(ModelsError::Client(protocol(
                "artifact upload",
                "Unity Catalog versions are created before their files are uploaded; see uc_upload_target",
            ))),
            Backend::Databricks { staging } => {
                if let Some(p) = staging.strip_prefix("dbfs:") {
                    let base = format!("{}/{marker}", p.trim_end_matches('/'));
                    Ok(UploadTarget {
                        via: "dbfs".into(),
                        source: format!("dbfs:{base}"),
                        base,
                        run_id: None,
                    })
                } else {
                    let base = format!("{staging}/{marker}");
                    Ok(UploadTarget {
                        via: "files".into(),
                        source: format!("dbfs:{base}"),
                        base,
                        run_id: None,
                    })
                }
            }
            Backend::Oss { experiment } => {
                let exp_id = self.ensure_experiment(experiment).await?;
                let run = self
                    .create_run(&exp_id, &format!("{model} v{version}"))
                    .await?;
                let run_id = run["run_id"]
                    .as_str()
                    .or_else(|| run["run_uuid"].as_str())
                    .unwrap_or("")
                    .to_string();
                let root = run["artifact_uri"].as_str().unwrap_or("").to_string();
                let ArtifactUri::Proxy(root_path) = uri::parse(&root) else {
                    return Err(ModelsError::usage(
                        format!("experiment {experiment}"),
                        format!("new runs store artifacts at {root}, which the server's artifact proxy does not serve"),
                        Hint::ExperimentNotProxied,
                    ));
                };
                self.log_provenance(&run_id, provenance, extra_tags).await?;
                let base = uri::join(&root_path, marker);
                Ok(UploadTarget {
                    via: "proxy".into(),
                    source: format!("mlflow-artifacts:/{base}"),
                    base,
                    run_id: Some(run_id),
                })
            }
        }
    }

    async fn ensure_experiment(&self, name: &str) -> Result<String, ClientError> {
        #[derive(Deserialize)]
        struct Got {
            experiment: crate::client::mlflow::Experiment,
        }
        let got: Result<Got, ClientError> = self
            .json(
                Call::get("/api/2.0/mlflow/experiments/get-by-name")
                    .query("experiment_name", name)
                    .object(format!("experiment={name}")),
            )
            .await;
        match got {
            Ok(g) if g.experiment.lifecycle_stage.as_deref() != Some("deleted") => {
                return Ok(g.experiment.experiment_id)
            }
            Ok(_) => {
                return Err(protocol(
                    &format!("experiment {name}"),
                    "the experiment is deleted; restore it or pick another --mlflow-experiment",
                ))
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let call = Call::post("/api/2.0/mlflow/experiments/create")
            .json(&json!({ "name": name }))
            .object(format!("experiment={name}"));
        let describe = call.describe();
        let created = self.json::<Value>(call).await;
        // An answer lost after the server created it: the experiment is there by name.
        let created = match created {
            Err(e) if super::error::ambiguous(&e) => {
                Err(ClientError::Api(Box::new(crate::client::ApiError {
                    call: describe.clone(),
                    status: 409,
                    error_code: Some("RESOURCE_ALREADY_EXISTS".into()),
                    message: format!("the answer was lost ({e}); looking the experiment up"),
                    request_id: None,
                    retry_after: None,
                })))
            }
            other => other,
        };
        match created {
            Ok(v) => v["experiment_id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["experiment_id"].as_i64().map(|i| i.to_string()))
                .ok_or_else(|| protocol(&describe, "the answer has no experiment_id")),
            // Created meanwhile by another run: use it.
            Err(e) if e.is_already_exists() => {
                let g: Got = self
                    .json(
                        Call::get("/api/2.0/mlflow/experiments/get-by-name")
                            .query("experiment_name", name)
                            .object(format!("experiment={name}")),
                    )
                    .await?;
                Ok(g.experiment.experiment_id)
            }
            Err(e) => Err(e),
        }
    }

    async fn create_run(&self, experiment_id: &str, run_name: &str) -> Result<Value, ClientError> {
        // A run whose creation answer was lost is an empty run left behind; trying again is
        // the only way to get one whose id we know.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.create_run_once(experiment_id, run_name).await {
                Err(e) if attempt < AMBIGUOUS_ATTEMPTS && super::error::ambiguous(&e) => {
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn create_run_once(
        &self,
        experiment_id: &str,
        run_name: &str,
    ) -> Result<Value, ClientError> {
        let v: Value = self
            .json(
                Call::post("/api/2.0/mlflow/runs/create")
                    .json(&json!({
                        "experiment_id": experiment_id,
                        "run_name": run_name,
                        "start_time": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
                    }))
                    .object(format!("experiment_id={experiment_id}")),
            )
            .await?;
        Ok(v["run"]["info"].clone())
    }

    /// Records a source run's params, latest metrics and tags (except MLflow's own `mlflow.*`
    /// tags, which describe the original run) and `extra_tags` on a new run.
    async fn log_provenance(
        &self,
        run_id: &str,
        provenance: Option<&RunProvenance>,
        extra_tags: &[KeyValue],
    ) -> Result<(), ClientError> {
        let data = provenance.map(|p| &p["data"]);
        let list = |key: &str| -> Vec<Value> {
            data.and_then(|d| d[key].as_array())
                .cloned()
                .unwrap_or_default()
        };
        let params = list("params");
        let metrics = list("metrics");
        let mut tags: Vec<Value> = list("tags")
            .into_iter()
            .filter(|t| {
                t["key"]
                    .as_str()
                    .is_some_and(|k| !k.starts_with("mlflow.") && !k.starts_with("dbxport."))
            })
            .collect();
        tags.extend(
            extra_tags
                .iter()
                .map(|t| json!({ "key": t.key, "value": t.value })),
        );
        let mut batches: Vec<Value> = Vec::new();
        for c in params.chunks(BATCH_PARAMS) {
            batches.push(json!({ "run_id": run_id, "params": c }));
        }
        for c in tags.chunks(BATCH_TAGS) {
            batches.push(json!({ "run_id": run_id, "tags": c }));
        }
        for c in metrics.chunks(BATCH_METRICS) {
            batches.push(json!({ "run_id": run_id, "metrics": c }));
        }
        for b in batches {
            self.send(
                Call::post("/api/2.0/mlflow/runs/log-batch")
                    .json(&b)
                    .safe_to_retry()
                    .object(format!("run_id={run_id}")),
            )
            .await?;
        }
        Ok(())
    }

    /// Where the files of a just-created, still pending UC version go: its storage, after
    /// write credentials are granted (which also proves it is presigned-URL storage).
    pub async fn uc_upload_target(
        &self,
        name: &str,
        version: &ModelVersion,
    ) -> Result<UploadTarget, ModelsError> {
        self.uc_credentials(name, &version.version, "MODEL_VERSION_OPERATION_READ_WRITE")
            .await?;
        Ok(UploadTarget {
            via: "uc".into(),
            base: uc_storage(name, &version.version)?,
            source: version.source.clone().unwrap_or_default(),
            run_id: None,
        })
    }

    /// Uploads one file below an upload target from a stream of chunks of exactly `len`
    /// bytes. Files up to [`SMALL_UPLOAD`] are collected in memory and sent as a body the
    /// client may send again after a failure (every upload here overwrites, so a repeat has
    /// the same effect); larger ones stream once, and the caller retries by opening the bytes
    /// again.
    pub async fn upload(
        &self,
        target: &UploadTarget,
        rel: &str,
        len: u64,
        body: super::pipe::ChunkReceiver,
    ) -> Result<(), ClientError> {
        let small = len <= SMALL_UPLOAD;
        match target.via.as_str() {
            "proxy" => {
                let path = uri::join(&target.base, rel);
                let call = Call::put("/api/2.0/mlflow-artifacts/artifacts/{path}")
                    .path(format!(
                        "/api/2.0/mlflow-artifacts/artifacts/{}",
                        encode_path(&path)
                    ))
                    .object(format!("path={path}"));
                let call = if small {
                    call.bytes(body.collect(&path).await?, "application/octet-stream")
                        .safe_to_retry()
                } else {
                    let stream = reqwest::Body::wrap_stream(body.into_stream());
                    call.stream(stream, Some(len), "application/octet-stream")
                };
                self.send(call).await
            }
            "uc" => {
                let path = uri::join(&target.base, rel);
                let call = self
                    .presigned("/api/2.0/fs/create-upload-url", &path)
                    .await?;
                let call = if small {
                    call.bytes(body.collect(&path).await?, "application/octet-stream")
                        .safe_to_retry()
                } else {
                    let stream = reqwest::Body::wrap_stream(body.into_stream());
                    call.stream(stream, Some(len), "application/octet-stream")
                };
                self.send(call).await
            }
            "dbfs" => {
                let path = format!("{}/{rel}", target.base);
                if small {
                    let b = body.collect(&path).await?;
                    self.client.dbfs().put(&path, &b, true).await
                } else {
                    self.client
                        .dbfs()
                        .upload(&path, body.into_async_read(), true)
                        .await
                        .map(|_| ())
                }
            }
            "files" => {
                let path = format!("{}/{rel}", target.base);
                if small {
                    let b = body.collect(&path).await?;
                    self.client.files().upload_bytes(&path, b, true).await
                } else {
                    self.client
                        .files()
                        .upload_reader(&path, body.into_async_read(), Some(len), true)
                        .await
                }
            }
            other => Err(protocol(
                "artifact upload",
                format!("unknown upload target `{other}`"),
            )),
        }
    }

    /// Marks the run of an upload target finished (MLflow servers; nothing on a workspace).
    pub async fn finish_upload(&self, target: &UploadTarget) -> Result<(), ClientError> {
        let Some(run_id) = &target.run_id else {
            return Ok(());
        };
        self.send(
            Call::post("/api/2.0/mlflow/runs/update")
                .json(&json!({
                    "run_id": run_id,
                    "status": "FINISHED",
                    "end_time": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
                }))
                .safe_to_retry()
                .object(format!("run_id={run_id}")),
        )
        .await
    }

    /// Removes a workspace staging folder once the registry has copied its files into the
    /// version (nothing on an MLflow server, whose version reads the run's artifacts).
    pub async fn cleanup_upload(&self, target: &UploadTarget) -> Result<(), ClientError> {
        let r = match target.via.as_str() {
            "dbfs" => self.client.dbfs().delete(&target.base, true).await,
            "files" => self.delete_files_tree(&target.base).await,
            _ => return Ok(()),
        };
        match r {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    async fn delete_files_tree(&self, base: &str) -> Result<(), ClientError> {
        let files = self.client.files();
        let mut stack = vec![(base.to_string(), false)];
        while let Some((dir, listed)) = stack.pop() {
            if listed {
                files.delete_directory(&dir).await?;
                continue;
            }
            stack.push((dir.clone(), true));
            for e in files.list_directory(&dir).await? {
                if e.is_directory {
                    stack.push((e.path, false));
                } else {
                    files.delete(&e.path).await?;
                }
            }
        }
        Ok(())
    }
}

/// The storage path of a UC version: `/Models/<catalog>/<schema>/<model>/<version>`.
fn uc_storage(name: &str, version: &str) -> Result<String, ClientError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.contains('/')) {
        return Err(protocol(
            "Unity Catalog model",
            format!("{name:?} is not a <catalog>.<schema>.<model> name"),
        ));
    }
    Ok(format!(
        "/Models/{}/{}/{}/{version}",
        parts[0], parts[1], parts[2]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uc_storage_paths_follow_the_three_level_name() {
        assert_eq!(uc_storage("c.s.m", "3").unwrap(), "/Models/c/s/m/3");
        assert!(uc_storage("c.m", "1").is_err());
        assert!(uc_storage("c.s/x.m", "1").is_err());
    }

    #[test]
    fn name_filters_quote_or_decline() {
        assert_eq!(name_filter("churn").as_deref(), Some("name='churn'"));
        assert_eq!(name_filter("o'brien"), None);
    }

    #[test]
    fn staging_paths_are_checked() {
        let c = Client::new(
            &Config::pat("http://127.0.0.1:1", SecretString::from("t".to_string())).unwrap(),
            ClientOptions::default(),
        )
        .unwrap();
        assert!(Registry::databricks(c.clone(), "dbfs:/dbxport/x").is_ok());
        assert!(Registry::databricks(c.clone(), "/Volumes/main/default/v").is_ok());
        assert!(Registry::databricks(c.clone(), "/tmp/x").is_err());
        assert!(Registry::databricks(c, "dbfs:/a/../b").is_err());
    }
}
