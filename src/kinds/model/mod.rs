//! ML models (`registered_model`, `model_version`, `model_artifact`) of a workspace registry, Unity Catalog or an MLflow server.

pub mod export;
pub mod format;
pub mod import;
