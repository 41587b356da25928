//! What moves: the command-line flags of model export and import ([`ModelArgs`], flattened
//! into `export`, `import` and `models`), which versions of each model are taken
//! ([`VersionSelection`]). What happens when a name is already taken in the target is the
//! shared [`OnConflict`](crate::model::report::OnConflict).

use super::error::ModelsError;
use crate::hints::Hint;
use crate::model::mlflow::{ModelVersion, RegisteredModel};
use std::str::FromStr;

/// Which versions of each registered model are exported.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionSelection {
    /// Every version (the default).
    #[default]
    All,
    /// Only the highest-numbered version of each model.
    Latest,
    /// Only the versions currently in this stage (`Production`, `Staging`, `Archived`,
    /// `None`; compared without regard to case).
    Stage(String),
}

impl FromStr for VersionSelection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(VersionSelection::All);
        }
        if t.eq_ignore_ascii_case("latest") {
            return Ok(VersionSelection::Latest);
        }
        if let Some(stage) = t
            .strip_prefix("stage:")
            .or_else(|| t.strip_prefix("STAGE:"))
        {
            let stage = stage.trim();
            if let Some(canon) = ["None", "Staging", "Production", "Archived"]
                .iter()
                .find(|c| c.eq_ignore_ascii_case(stage))
            {
                return Ok(VersionSelection::Stage((*canon).to_string()));
            }
            return Err(format!(
                "unknown stage `{stage}` (expected None, Staging, Production or Archived)"
            ));
        }
        Err(format!(
            "`{s}` is not a version selection (expected all, latest or stage:NAME)"
        ))
    }
}

impl std::fmt::Display for VersionSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSelection::All => f.write_str("all"),
            VersionSelection::Latest => f.write_str("latest"),
            VersionSelection::Stage(s) => write!(f, "stage:{s}"),
        }
    }
}

/// A version number as a number, for ordering (`"10"` after `"9"`); non-numbers sort last.
pub fn version_number(v: &str) -> u64 {
    v.trim().parse().unwrap_or(u64::MAX)
}

impl VersionSelection {
    /// The selected versions of one model, in ascending version order.
    pub fn apply(&self, mut versions: Vec<ModelVersion>) -> Vec<ModelVersion> {
        versions.sort_by_key(|v| version_number(&v.version));
        match self {
            VersionSelection::All => versions,
            VersionSelection::Latest => versions.pop().into_iter().collect(),
            VersionSelection::Stage(stage) => versions
                .into_iter()
                .filter(|v| {
                    v.current_stage
                        .as_deref()
                        .unwrap_or("None")
                        .eq_ignore_ascii_case(stage)
                })
                .collect(),
        }
    }
}

/// The model selection of `export` and `models export`: which registry, which models, which
/// versions.
#[derive(Debug, Clone, Default)]
pub struct ModelArgs {
    /// Export the models of the open-source MLflow tracking server at URL instead of the
    /// workspace's registry. Artifacts move through the server's artifact proxy (start it
    /// with --serve-artifacts). A bearer token, if the server needs one, is read from
    /// MLFLOW_TRACKING_TOKEN.
    pub mlflow_uri: Option<String>,
    /// Which versions of each model to export: all, latest (the highest-numbered version) or
    /// stage:NAME (the versions in stage NAME: None, Staging, Production, Archived).
    pub model_versions: VersionSelection,
    /// Only models whose name matches this glob (`*`, `?`, `[...]`); repeat for several.
    /// Default: every model.
    pub models: Vec<String>,
}

/// The model target of `import` and `models import`: which registry receives the models, and
/// where their artifacts are uploaded first.
#[derive(Debug, Clone)]
pub struct ModelTargetArgs {
    /// Import the models into the open-source MLflow tracking server at URL instead of the
    /// workspace's registry (artifacts through its artifact proxy). A bearer token, if the
    /// server needs one, is read from MLFLOW_TRACKING_TOKEN.
    pub mlflow_uri: Option<String>,
    /// Importing into a workspace: where artifacts are uploaded before a version is created
    /// from them (and removed once the registry has its copy). A `dbfs:/` path is written
    /// through DBFS, a `/Volumes/...` path through the Files API.
    pub model_artifact_path: String,
    /// Importing into an MLflow server: the experiment holding the runs that carry imported
    /// versions' artifacts and their source runs' params, metrics and tags.
    pub mlflow_experiment: String,
    /// Importing into a workspace: put workspace-registry models into Unity Catalog, in this
    /// `CATALOG.SCHEMA`, their stages turned into aliases.
    pub models_to_uc: Option<String>,
}

impl Default for ModelTargetArgs {
    fn default() -> Self {
        ModelTargetArgs {
            mlflow_uri: None,
            model_artifact_path: DEFAULT_STAGING_PATH.to_string(),
            mlflow_experiment: DEFAULT_EXPERIMENT.to_string(),
            models_to_uc: None,
        }
    }
}

/// Where imported artifacts go on a workspace, unless `--model-artifact-path` says otherwise.
pub const DEFAULT_STAGING_PATH: &str = "dbfs:/dbxport/model-artifacts";
/// The experiment of imported versions' runs on an MLflow server.
pub const DEFAULT_EXPERIMENT: &str = "dbxport-imports";

impl ModelArgs {
    /// The name filter of `--model`.
    pub fn name_filter(&self) -> Result<NameFilter, ModelsError> {
        NameFilter::new(&self.models)
    }
}

/// A set of name globs; empty matches everything.
#[derive(Debug, Clone)]
pub struct NameFilter {
    set: Option<globset::GlobSet>,
}

impl NameFilter {
    /// Compiles the globs.
    pub fn new(globs: &[String]) -> Result<NameFilter, ModelsError> {
        if globs.is_empty() {
            return Ok(NameFilter { set: None });
        }
        let mut b = globset::GlobSetBuilder::new();
        for g in globs {
            let glob = globset::GlobBuilder::new(g)
                .literal_separator(false)
                .build()
                .map_err(|e| {
                    ModelsError::usage(format!("--model {g}"), e.to_string(), Hint::ModelGlob)
                })?;
            b.add(glob);
        }
        let set = b
            .build()
            .map_err(|e| ModelsError::usage("--model", e.to_string(), Hint::ModelGlobs))?;
        Ok(NameFilter { set: Some(set) })
    }

    /// Everything.
    pub fn all() -> NameFilter {
        NameFilter { set: None }
    }

    /// True when `model` is selected.
    pub fn matches(&self, model: &RegisteredModel) -> bool {
        self.set.as_ref().is_none_or(|s| s.is_match(&model.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: &str, stage: &str) -> ModelVersion {
        ModelVersion {
            name: "m".into(),
            version: n.into(),
            creation_timestamp: None,
            last_updated_timestamp: None,
            user_id: None,
            current_stage: Some(stage.into()),
            description: None,
            source: None,
            run_id: None,
            run_link: None,
            status: None,
            status_message: None,
            tags: vec![],
            aliases: vec![],
            run_tracking_server_id: None,
        }
    }

    #[test]
    fn selections_parse_and_apply() {
        let all = vec![v("10", "Production"), v("2", "None"), v("9", "Staging")];
        let nums = |s: &str| -> Vec<String> {
            s.parse::<VersionSelection>()
                .unwrap()
                .apply(all.clone())
                .into_iter()
                .map(|v| v.version)
                .collect()
        };
        assert_eq!(nums("all"), ["2", "9", "10"]);
        assert_eq!(nums("latest"), ["10"]);
        assert_eq!(nums("stage:production"), ["10"]);
        assert_eq!(nums("stage:None"), ["2"]);
        assert!("stage:Prod".parse::<VersionSelection>().is_err());
        assert!("newest".parse::<VersionSelection>().is_err());
        assert_eq!(
            "stage:staging"
                .parse::<VersionSelection>()
                .unwrap()
                .to_string(),
            "stage:Staging"
        );
    }

    #[test]
    fn name_filter_matches_globs() {
        let m = |n: &str| RegisteredModel {
            name: n.into(),
            creation_timestamp: None,
            last_updated_timestamp: None,
            user_id: None,
            description: None,
            latest_versions: vec![],
            tags: vec![],
            aliases: vec![],
            owner: None,
        };
        let f = NameFilter::new(&["churn-*".into(), "x?".into()]).unwrap();
        assert!(f.matches(&m("churn-a")) && f.matches(&m("xy")));
        assert!(!f.matches(&m("soil")) && !f.matches(&m("xyz")));
        assert!(NameFilter::all().matches(&m("anything")));
        assert!(NameFilter::new(&["[".into()]).is_err());
    }
}
