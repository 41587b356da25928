//! MLflow model registry and artifacts (`/api/2.0/mlflow/*`, `/api/2.0/mlflow-artifacts/*`):
//! registered models and versions (search, get in both flavours, create, update, delete, tags,
//! aliases, stage transitions), artifact listings (paged) and artifact downloads as byte
//! streams (signed URIs, the MLflow artifact proxy), plus the experiment and run calls a
//! replay needs to give new versions a source.

use super::stream::ByteStream;
use super::transport::Call;
use super::{check_page, encode_path, Client, ClientError};
use crate::model::mlflow::{FileInfo, ModelVersion, RegisteredModel};
use crate::model::KeyValue;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;

/// MLflow API calls.
#[derive(Debug, Clone, Copy)]
pub struct MlflowApi<'a> {
    c: &'a Client,
}

/// A registered model as the Databricks flavour returns it: the model plus its permissions id.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabricksModel {
    /// The id used by `/api/2.0/permissions/registered-models/{id}`.
    pub id: String,
    /// The caller's permission level.
    pub permission_level: Option<String>,
    /// The model.
    pub model: RegisteredModel,
}

/// A model version to create.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateVersion {
    /// Model name.
    pub name: String,
    /// Artifact source URI.
    pub source: String,
    /// Run id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Run link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

/// An artifact listing page set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArtifactListing {
    /// Root URI, when the server gives one.
    pub root_uri: Option<String>,
    /// Entries, paths relative to the root.
    pub files: Vec<FileInfo>,
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    /// Id.
    pub experiment_id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Artifact location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_location: Option<String>,
    /// `active` or `deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
}

/// A run's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Experiment.
    #[serde(default)]
    pub experiment_id: String,
    /// Where its artifacts live.
    #[serde(default)]
    pub artifact_uri: String,
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

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

#[derive(Deserialize)]
struct FilesPage {
    #[serde(default)]
    root_uri: Option<String>,
    #[serde(default)]
    files: Vec<FileInfo>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct ModelEnvelope {
    registered_model: RegisteredModel,
}

#[derive(Deserialize)]
struct VersionEnvelope {
    model_version: ModelVersion,
}

#[derive(Deserialize)]
struct SignedUri {
    signed_uri: String,
    #[serde(default)]
    headers: Vec<SignedHeader>,
}

#[derive(Deserialize)]
struct SignedHeader {
    name: String,
    value: String,
}

fn model_obj(name: &str) -> String {
    format!("model={name}")
}

fn version_obj(name: &str, version: &str) -> String {
    format!("model={name} version={version}")
}

impl<'a> MlflowApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        MlflowApi { c }
    }

    async fn paged<P, T>(
        &self,
        make: impl Fn(Option<&str>) -> Call,
        split: impl Fn(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, ClientError>
    where
        P: serde::de::DeserializeOwned,
    {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let call = make(token.as_deref());
            let describe = call.describe();
            let page: P = self.c.transport().json(call).await?;
            let (items, next) = split(page);
            out.extend(items);
            pages += 1;
            match next.filter(|t| !t.is_empty()) {
                Some(t) => {
                    check_page(&describe, pages, &mut seen, &t)?;
                    token = Some(t);
                }
                None => return Ok(out),
            }
        }
    }

    /// Every registered model matching `filter` (all pages).
    pub async fn search_models(
        &self,
        filter: Option<&str>,
    ) -> Result<Vec<RegisteredModel>, ClientError> {
        self.paged(
            |t| {
                Call::get("/api/2.0/mlflow/registered-models/search")
                    .query("max_results", 1000)
                    .query_opt("filter", filter)
                    .query_opt("page_token", t)
            },
            |p: ModelsPage| (p.registered_models, p.next_page_token),
        )
        .await
    }

    /// One model (OSS flavour, `registered-models/get`).
    pub async fn get_model(&self, name: &str) -> Result<RegisteredModel, ClientError> {
        let r: ModelEnvelope = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/mlflow/registered-models/get")
                    .query("name", name)
                    .object(model_obj(name)),
            )
            .await?;
        Ok(r.registered_model)
    }

    /// One model (Databricks flavour), with the id its permissions are addressed by.
    pub async fn get_model_databricks(&self, name: &str) -> Result<DatabricksModel, ClientError> {
        let call = Call::get("/api/2.0/mlflow/databricks/registered-models/get")
            .query("name", name)
            .object(model_obj(name));
        let describe = call.describe();
        let mut r: Value = self.c.transport().json(call).await?;
        let decode = |m: &str| ClientError::Decode {
            call: describe.clone(),
            message: m.to_string(),
        };
        let inner = r
            .get_mut("registered_model_databricks")
            .map(Value::take)
            .ok_or_else(|| decode("no registered_model_databricks"))?;
        let id = match inner.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(decode("registered_model_databricks has no id")),
        };
        let permission_level = inner
            .get("permission_level")
            .and_then(Value::as_str)
            .map(str::to_string);
        let model: RegisteredModel =
            serde_json::from_value(inner).map_err(|e| decode(&e.to_string()))?;
        Ok(DatabricksModel {
            id,
            permission_level,
            model,
        })
    }

    /// Creates a model.
    pub async fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<RegisteredModel, ClientError> {
        let mut body = json!({ "name": name });
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        if !tags.is_empty() {
            body["tags"] = json!(tags);
        }
        let r: ModelEnvelope = self
            .c
            .transport()
            .json(
                Call::post("/api/2.0/mlflow/registered-models/create")
                    .json(&body)
                    .object(model_obj(name)),
            )
            .await?;
        Ok(r.registered_model)
    }

    /// Sets a model's description (safe to replay).
    pub async fn update_model(&self, name: &str, description: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::patch("/api/2.0/mlflow/registered-models/update")
                    .json(&json!({ "name": name, "description": description }))
                    .safe_to_retry()
                    .object(model_obj(name)),
            )
            .await
    }

    /// Deletes a model and its versions.
    pub async fn delete_model(&self, name: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/mlflow/registered-models/delete")
                    .query("name", name)
                    .object(model_obj(name)),
            )
            .await
    }

    /// Sets a model tag (safe to replay).
    pub async fn set_model_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/mlflow/registered-models/set-tag")
                    .json(&json!({ "name": name, "key": key, "value": value }))
                    .safe_to_retry()
                    .object(format!("model={name} tag={key}")),
            )
            .await
    }

    /// Deletes a model tag.
    pub async fn delete_model_tag(&self, name: &str, key: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/mlflow/registered-models/delete-tag")
                    .query("name", name)
                    .query("key", key)
                    .object(format!("model={name} tag={key}")),
            )
            .await
    }

    /// Points an alias at a version (safe to replay).
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/mlflow/registered-models/alias")
                    .json(&json!({ "name": name, "alias": alias, "version": version }))
                    .safe_to_retry()
                    .object(format!("model={name} alias={alias}")),
            )
            .await
    }

    /// Removes an alias.
    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/mlflow/registered-models/alias")
                    .query("name", name)
                    .query("alias", alias)
                    .object(format!("model={name} alias={alias}")),
            )
            .await
    }

    /// Every version matching `filter` (e.g. `name='churn'`), all pages.
    pub async fn search_versions(
        &self,
        filter: Option<&str>,
    ) -> Result<Vec<ModelVersion>, ClientError> {
        self.paged(
            |t| {
                Call::get("/api/2.0/mlflow/model-versions/search")
                    .query("max_results", 1000)
                    .query_opt("filter", filter)
                    .query_opt("page_token", t)
            },
            |p: VersionsPage| (p.model_versions, p.next_page_token),
        )
        .await
    }

    /// One version.
    pub async fn get_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<ModelVersion, ClientError> {
        let r: VersionEnvelope = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/mlflow/model-versions/get")
                    .query("name", name)
                    .query("version", version)
                    .object(version_obj(name, version)),
            )
            .await?;
        Ok(r.model_version)
    }

    /// Creates a version.
    pub async fn create_version(&self, req: &CreateVersion) -> Result<ModelVersion, ClientError> {
        let r: VersionEnvelope = self
            .c
            .transport()
            .json(
                Call::post("/api/2.0/mlflow/model-versions/create")
                    .json(req)
                    .object(format!("model={} source={}", req.name, req.source)),
            )
            .await?;
        Ok(r.model_version)
    }

    /// Sets a version's description (safe to replay).
    pub async fn update_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::patch("/api/2.0/mlflow/model-versions/update")
                    .json(&json!({ "name": name, "version": version, "description": description }))
                    .safe_to_retry()
                    .object(version_obj(name, version)),
            )
            .await
    }

    /// Deletes a version.
    pub async fn delete_version(&self, name: &str, version: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/mlflow/model-versions/delete")
                    .query("name", name)
                    .query("version", version)
                    .object(version_obj(name, version)),
            )
            .await
    }

    /// Sets a version tag (safe to replay).
    pub async fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/mlflow/model-versions/set-tag")
                    .json(&json!({ "name": name, "version": version, "key": key, "value": value }))
                    .safe_to_retry()
                    .object(format!("model={name} version={version} tag={key}")),
            )
            .await
    }

    /// Deletes a version tag.
    pub async fn delete_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/mlflow/model-versions/delete-tag")
                    .query("name", name)
                    .query("version", version)
                    .query("key", key)
                    .object(format!("model={name} version={version} tag={key}")),
            )
            .await
    }

    /// Moves a version to `stage` (`None`, `Staging`, `Production`, `Archived`) through the
    /// OSS path, which both Databricks and the MLflow server serve (safe to replay).
    pub async fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion, ClientError> {
        let r: VersionEnvelope = self
            .c
            .transport()
            .json(
                Call::post("/api/2.0/mlflow/model-versions/transition-stage")
                    .json(&json!({
                        "name": name,
                        "version": version,
                        "stage": stage,
                        "archive_existing_versions": archive_existing_versions,
                    }))
                    .safe_to_retry()
                    .object(format!("model={name} version={version} stage={stage}")),
            )
            .await?;
        Ok(r.model_version)
    }

    /// Where a version's artifacts live.
    pub async fn get_download_uri(&self, name: &str, version: &str) -> Result<String, ClientError> {
        let call = Call::get("/api/2.0/mlflow/model-versions/get-download-uri")
            .query("name", name)
            .query("version", version)
            .object(version_obj(name, version));
        let describe = call.describe();
        let r: Value = self.c.transport().json(call).await?;
        r.get("artifact_uri")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Decode {
                call: describe,
                message: "no artifact_uri".into(),
            })
    }

    /// One directory level of a version's artifacts (all pages), through the registry.
    pub async fn list_version_artifacts(
        &self,
        name: &str,
        version: &str,
        path: Option<&str>,
    ) -> Result<ArtifactListing, ClientError> {
        let root = std::sync::Mutex::new(None);
        let files = self
            .paged(
                |t| {
                    Call::get("/api/2.0/mlflow/model-versions/list-artifacts")
                        .query("name", name)
                        .query("version", version)
                        .query_opt("path", path)
                        .query_opt("page_token", t)
                        .object(format!(
                            "model={name} version={version} path={}",
                            path.unwrap_or("")
                        ))
                },
                |p: FilesPage| {
                    if p.root_uri.is_some() {
                        *root.lock().unwrap_or_else(|e| e.into_inner()) = p.root_uri;
                    }
                    (p.files, p.next_page_token)
                },
            )
            .await?;
        Ok(ArtifactListing {
            root_uri: root.into_inner().unwrap_or_else(|e| e.into_inner()),
            files,
        })
    }

    /// Downloads one artifact file of a version as a stream: asks for a signed URI, then
    /// fetches it without the workspace credentials.
    pub async fn download_version_artifact(
        &self,
        name: &str,
        version: &str,
        path: &str,
    ) -> Result<ByteStream, ClientError> {
        let s: SignedUri = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/mlflow/model-versions/get-signed-download-uri")
                    .query("name", name)
                    .query("version", version)
                    .query("path", path)
                    .object(format!("model={name} version={version} path={path}")),
            )
            .await?;
        let mut call = Call::get("(signed uri)")
            .url(s.signed_uri)
            .unauthenticated()
            .object(format!("model={name} version={version} path={path}"));
        for h in s.headers {
            match reqwest::header::HeaderName::from_bytes(h.name.as_bytes()) {
                Ok(n) => call = call.header(n, h.value),
                Err(_) => {
                    return Err(ClientError::Decode {
                        call: "GET /api/2.0/mlflow/model-versions/get-signed-download-uri".into(),
                        message: format!("invalid header name `{}`", h.name),
                    })
                }
            }
        }
        self.c.transport().stream(call).await
    }

    /// One directory level of a run's artifacts (all pages).
    pub async fn list_run_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
    ) -> Result<ArtifactListing, ClientError> {
        let root = std::sync::Mutex::new(None);
        let files = self
            .paged(
                |t| {
                    Call::get("/api/2.0/mlflow/artifacts/list")
                        .query("run_id", run_id)
                        .query_opt("path", path)
                        .query_opt("page_token", t)
                        .object(format!("run_id={run_id} path={}", path.unwrap_or("")))
                },
                |p: FilesPage| {
                    if p.root_uri.is_some() {
                        *root.lock().unwrap_or_else(|e| e.into_inner()) = p.root_uri;
                    }
                    (p.files, p.next_page_token)
                },
            )
            .await?;
        Ok(ArtifactListing {
            root_uri: root.into_inner().unwrap_or_else(|e| e.into_inner()),
            files,
        })
    }

    /// One directory level of the MLflow server's artifact proxy (`mlflow-artifacts:/<path>`).
    pub async fn proxy_list(&self, path: &str) -> Result<Vec<FileInfo>, ClientError> {
        let r: FilesPage = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/mlflow-artifacts/artifacts")
                    .query("path", path)
                    .object(format!("path={path}")),
            )
            .await?;
        Ok(r.files)
    }

    /// Downloads a file through the MLflow server's artifact proxy, as a stream.
    pub async fn proxy_download(&self, path: &str) -> Result<ByteStream, ClientError> {
        self.c
            .transport()
            .stream(
                Call::get("/api/2.0/mlflow-artifacts/artifacts/{path}")
                    .path(format!(
                        "/api/2.0/mlflow-artifacts/artifacts/{}",
                        encode_path(path.trim_start_matches('/'))
                    ))
                    .object(format!("path={path}")),
            )
            .await
    }

    /// Uploads a local file through the MLflow server's artifact proxy (overwrites; safe to
    /// replay).
    pub async fn proxy_upload(
        &self,
        path: &str,
        local: std::path::PathBuf,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::put("/api/2.0/mlflow-artifacts/artifacts/{path}")
                    .path(format!(
                        "/api/2.0/mlflow-artifacts/artifacts/{}",
                        encode_path(path.trim_start_matches('/'))
                    ))
                    .file(local, "application/octet-stream")
                    .safe_to_retry()
                    .object(format!("path={path}")),
            )
            .await
    }

    /// The experiment of that name, or `None`.
    pub async fn get_experiment_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Experiment>, ClientError> {
        #[derive(Deserialize)]
        struct R {
            experiment: Experiment,
        }
        let r: Result<R, ClientError> = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/mlflow/experiments/get-by-name")
                    .query("experiment_name", name)
                    .object(format!("experiment={name}")),
            )
            .await;
        match r {
            Ok(r) => Ok(Some(r.experiment)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an experiment; returns its id.
    pub async fn create_experiment(&self, name: &str) -> Result<String, ClientError> {
        let call = Call::post("/api/2.0/mlflow/experiments/create")
            .json(&json!({ "name": name }))
            .object(format!("experiment={name}"));
        let describe = call.describe();
        let r: Value = self.c.transport().json(call).await?;
        r.get("experiment_id")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_i64().map(|i| i.to_string()))
            })
            .ok_or_else(|| ClientError::Decode {
                call: describe,
                message: "no experiment_id".into(),
            })
    }

    /// Starts a run in an experiment.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: Option<&str>,
    ) -> Result<RunInfo, ClientError> {
        #[derive(Deserialize)]
        struct Run {
            info: RunInfo,
        }
        #[derive(Deserialize)]
        struct R {
            run: Run,
        }
        let mut body = json!({ "experiment_id": experiment_id });
        if let Some(n) = run_name {
            body["run_name"] = json!(n);
        }
        let r: R = self
            .c
            .transport()
            .json(
                Call::post("/api/2.0/mlflow/runs/create")
                    .json(&body)
                    .object(format!("experiment_id={experiment_id}")),
            )
            .await?;
        Ok(r.run.info)
    }

    /// Marks a run finished (`FINISHED`, `FAILED`, `KILLED`; safe to replay).
    pub async fn finish_run(&self, run_id: &str, status: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/mlflow/runs/update")
                    .json(&json!({ "run_id": run_id, "status": status }))
                    .safe_to_retry()
                    .object(format!("run_id={run_id}")),
            )
            .await
    }
}
