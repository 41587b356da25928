//! The place of ML models in the pipeline: registered models, their versions and artifacts
//! (kinds `registered_model`, `model_version`, `model_artifact`). Model export is its own
//! issue; until it lands, [`super::options::DEFAULT_KINDS`] leaves these kinds out and the
//! command line refuses to select them, so this stage has nothing to do. It takes the same
//! context as every other stage and runs with them, after the listings that give the scanner
//! its ids and before principals are gathered, so the models stage can stage records, report
//! outcomes and name principals exactly like the others.

use super::context::Ctx;
use crate::model::Kind;
use std::sync::Arc;

/// The model kinds.
pub const MODEL_KINDS: [Kind; 3] = [
    Kind::RegisteredModel,
    Kind::ModelVersion,
    Kind::ModelArtifact,
];

/// Exports ML models. Selecting model kinds is refused before a run starts (see
/// [`super::validate`]), so there is never work here yet.
pub async fn export_models(ctx: Arc<Ctx>) {
    debug_assert!(!MODEL_KINDS.iter().any(|k| ctx.opts.wants(*k)));
}
