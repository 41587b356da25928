//! ML models: registered models, their versions and the versions' artifact files, moved
//! between a model registry and a bundle — the heaviest resource dbxport carries, since model
//! artifacts run to gigabytes.
//!
//! * [`registry`] — the two registries behind one [`Registry`]: a Databricks workspace's and
//!   an open-source MLflow tracking server's (`--mlflow-uri`); either can be source or target.
//! * [`export`] — [`export_models`]: models, selected versions, source-run provenance, and
//!   every artifact streamed into the bundle builder with its digest; identical files stored
//!   once.
//! * [`import`] — [`import_models`]: models and versions recreated in version order with
//!   tags, aliases and stages, artifacts uploaded first; idempotent and resumable.
//! * [`manifest`] — the bundle side: records per model and version, artifact manifests.
//! * [`select`] — the flags ([`ModelArgs`]), version selection and conflict policy.
//! * [`steps`] — the journal seen through [`StepLog`], so the pipelines' journals serve too.
//! * [`pipe`] and [`uri`] — streaming between async downloads and the sync bundle code, and
//!   artifact URIs.
//!
//! The bundle layout is spec §6.5 (`spec/bundle-format.md`).

pub mod error;
pub mod export;
pub mod import;
pub mod manifest;
pub mod pipe;
pub mod registry;
pub mod select;
pub mod steps;
pub mod uri;

pub use error::ModelsError;
pub use export::{export_models, Deferred, ExportOptions, ExportReport, StageSink};
pub use import::{import_models, Action, ActionKind, ImportOptions, ImportReport, VersionMapping};
pub use manifest::{BundleModel, Gather};
pub use registry::Registry;
pub use select::{
    ModelArgs, ModelTargetArgs, NameFilter, VersionSelection, DEFAULT_EXPERIMENT,
    DEFAULT_STAGING_PATH,
};
pub use steps::{StepLog, STEP_PREFIX};

use crate::client::{Client, ClientOptions};
use crate::hints::Hint;
use age::secrecy::SecretString;
use serde::Serialize;

/// One object that could not be moved, or that the user should know about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What it concerns: `model churn`, `model version churn/3`, `model artifact churn/3/x`.
    pub object: String,
    /// What happened, and what to do about it when something can be done.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// The environment variable a bearer token for an MLflow server is read from (as the MLflow
/// client does). Tokens are never taken from the command line.
pub const MLFLOW_TOKEN_ENV: &str = "MLFLOW_TRACKING_TOKEN";

fn mlflow_token() -> Option<SecretString> {
    std::env::var(MLFLOW_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
        .map(SecretString::from)
}

fn no_registry() -> ModelsError {
    ModelsError::usage("model registry", "no registry given", Hint::NoRegistry)
}

impl ModelArgs {
    /// The registry these flags name: the MLflow server of `--mlflow-uri` when given, else the
    /// registry of `workspace` (the command's workspace client). `options` tune the MLflow
    /// server's client.
    pub fn registry(
        &self,
        workspace: Option<&Client>,
        options: ClientOptions,
    ) -> Result<Registry, ModelsError> {
        match (&self.mlflow_uri, workspace) {
            (Some(uri), _) => Registry::oss(uri, mlflow_token(), DEFAULT_EXPERIMENT, options),
            (None, Some(c)) => Registry::databricks(c.clone(), DEFAULT_STAGING_PATH),
            (None, None) => Err(no_registry()),
        }
    }

    /// The export options these flags select.
    pub fn export_options(&self) -> Result<ExportOptions, ModelsError> {
        Ok(ExportOptions {
            versions: self.model_versions.clone(),
            names: self.name_filter()?,
        })
    }

    /// The flags as recorded in a bundle's options (no secrets).
    pub fn recorded(&self) -> serde_json::Value {
        serde_json::json!({
            "registry": if self.mlflow_uri.is_some() { "mlflow" } else { "workspace" },
            "versions": self.model_versions.to_string(),
            "names": self.models,
        })
    }
}

impl ModelTargetArgs {
    /// The registry receiving models: the MLflow server of `--mlflow-uri` when given, else the
    /// registry of `workspace`.
    pub fn registry(
        &self,
        workspace: Option<&Client>,
        options: ClientOptions,
    ) -> Result<Registry, ModelsError> {
        match (&self.mlflow_uri, workspace) {
            (Some(uri), _) => Registry::oss(uri, mlflow_token(), &self.mlflow_experiment, options),
            (None, Some(c)) => Registry::databricks(c.clone(), &self.model_artifact_path),
            (None, None) => Err(no_registry()),
        }
    }

    /// The registries one import writes models to, each with the models it takes (`base`
    /// gives the renames): into a workspace, its own registry and — when the bundle holds Unity
    /// Catalog models (`has_uc`) or `--models-to-uc` is given — its Unity Catalog; into an
    /// MLflow server, the server alone. Used by `import` and `models import` alike.
    pub fn routes(
        &self,
        workspace: Option<&Client>,
        options: ClientOptions,
        base: import::Route,
        has_uc: bool,
    ) -> Result<Vec<(Registry, import::Route)>, ModelsError> {
        let base = import::Route {
            models_to_uc: self.models_to_uc.clone(),
            ..base
        };
        if let Some(cs) = &self.models_to_uc {
            if cs.split('.').count() != 2
                || cs.split('.').any(str::is_empty)
                || self.mlflow_uri.is_some()
            {
                return Err(ModelsError::usage(
                    format!("--models-to-uc {cs}"),
                    if self.mlflow_uri.is_some() {
                        "cannot be used with --mlflow-uri (an MLflow server has no Unity Catalog)"
                    } else {
                        "is not a CATALOG.SCHEMA name"
                    },
                    crate::hints::Hint::ModelsToUc,
                ));
            }
        }
        let registry = self.registry(workspace, options)?;
        if registry.is_oss() {
            let route = import::Route {
                to_mlflow: true,
                ..base
            };
            return Ok(vec![(registry, route)]);
        }
        let client = registry.client().clone();
        let mut out = vec![(registry, base.clone())];
        if has_uc || self.models_to_uc.is_some() {
            let route = import::Route {
                to_uc: true,
                ..base
            };
            out.push((Registry::uc(client), route));
        }
        Ok(out)
    }
}
