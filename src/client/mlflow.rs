//! Databricks-only MLflow calls on a workspace client: the Databricks flavour of a registered
//! model (the id its permissions are addressed by), a version's artifact listing through the
//! registry, and artifact downloads through signed URIs, plus a paged model search.
//!
//! Everything else the registry needs — on a workspace or on an open-source MLflow server —
//! lives in [`crate::models::registry::Registry`], which works for both.

use super::stream::ByteStream;
use super::transport::Call;
use super::{check_page, Client, ClientError};
use crate::model::mlflow::{FileInfo, RegisteredModel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

#[derive(Deserialize)]
struct ModelsPage {
    #[serde(default)]
    registered_models: Vec<RegisteredModel>,
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
}
