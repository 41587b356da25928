//! The flag registry: every argument group that several commands share is declared here once,
//! with its help text, and turned into the library's plain option types (the library knows
//! nothing of clap). A command flattens the groups it takes. The key flags (`--identity`,
//! `--recipient`, passphrases) are declared the same way in [`super::keys`], beside the code
//! that reads the keys; `plan`, `import` and `diff` share `import::CommonArgs`.

use age::secrecy::SecretString;
use clap::ValueEnum;
use dbxport::client::{AuthArgs, BrowserSettings, TransportArgs};
use dbxport::model::report::OnConflict;
use dbxport::models::{
    ModelArgs, ModelTargetArgs, VersionSelection, DEFAULT_EXPERIMENT, DEFAULT_STAGING_PATH,
};
use std::path::PathBuf;

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s.to_string()))
}

/// The connection flags every command that talks to a workspace flattens into its arguments.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthFlags {
    /// Workspace URL (else DATABRICKS_HOST, else the profile's host).
    #[arg(long, value_name = "URL")]
    pub host: Option<String>,
    /// Personal access token. Visible to other processes on this machine: prefer
    /// DATABRICKS_TOKEN or a profile.
    #[arg(long, value_name = "TOKEN", value_parser = parse_secret)]
    pub token: Option<SecretString>,
    /// Profile of the config file (else DATABRICKS_CONFIG_PROFILE, else the file's
    /// default_profile setting, else its DEFAULT profile).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Config file (else DATABRICKS_CONFIG_FILE, else ~/.databrickscfg).
    #[arg(long, value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// OAuth M2M client id (service principal application id).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// OAuth M2M client secret. Visible to other processes: prefer DATABRICKS_CLIENT_SECRET.
    #[arg(long, value_name = "SECRET", value_parser = parse_secret)]
    pub client_secret: Option<SecretString>,
    /// Use exactly this auth method: pat, oauth-m2m, databricks-cli, external-browser,
    /// azure-cli, azure-client-secret or azure-msi (else DATABRICKS_AUTH_TYPE, else the first
    /// that applies, in the Databricks SDKs' order).
    #[arg(long, value_name = "TYPE")]
    pub auth_type: Option<String>,
    /// external-browser: the loopback port the sign-in page redirects to (8020, as the
    /// Databricks CLI's OAuth application expects; 0 picks a free one). The browser opens
    /// only when a terminal is attached and DBXPORT_NO_BROWSER is not set; the address is
    /// always printed.
    #[arg(
        long,
        value_name = "PORT",
        env = "DBXPORT_OAUTH_REDIRECT_PORT",
        default_value_t = 8020
    )]
    pub oauth_redirect_port: u16,
}

/// Engine flags: concurrency and time budgets.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EngineFlags {
    /// Requests in flight at once (default 8); lowered automatically while the workspace
    /// throttles.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: Option<u32>,
    /// Total seconds one call may spend retrying (default 300, or the profile's
    /// retry_timeout_seconds).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub retry_timeout: Option<u64>,
    /// Seconds one HTTP request may take (default 60, or the profile's http_timeout_seconds).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub http_timeout: Option<u64>,
    /// The largest API answer read into memory, in MiB (default 64); a larger one fails the
    /// call. Streamed downloads (model artifacts, large files) are not limited.
    #[arg(long, value_name = "MIB", env = "DBXPORT_MAX_RESPONSE_MB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_response_mb: Option<u64>,
}

impl AuthFlags {
    /// The flags as the client takes them.
    pub fn get(&self) -> AuthArgs {
        AuthArgs {
            host: self.host.clone(),
            token: self.token.clone(),
            profile: self.profile.clone(),
            config_file: self.config_file.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            auth_type: self.auth_type.clone(),
            browser: BrowserSettings {
                open_browser: browser_allowed(),
                redirect_port: self.oauth_redirect_port,
                ..BrowserSettings::default()
            },
        }
    }
}

/// A browser is opened for a sign-in only for someone at a terminal who has not said no.
fn browser_allowed() -> bool {
    use std::io::IsTerminal as _;
    std::env::var_os("DBXPORT_NO_BROWSER").is_none()
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

impl EngineFlags {
    /// The flags as the client takes them.
    pub fn get(&self) -> TransportArgs {
        TransportArgs {
            concurrency: self.concurrency,
            retry_timeout: self.retry_timeout,
            http_timeout: self.http_timeout,
            max_response_mb: self.max_response_mb,
        }
    }
}

/// The model flags of `export` and `models export`: which registry, which models, which
/// versions.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ModelFlags {
    /// Export the models of the open-source MLflow tracking server at URL instead of the
    /// workspace's registry. Artifacts move through the server's artifact proxy (start it
    /// with --serve-artifacts). A bearer token, if the server needs one, is read from
    /// MLFLOW_TRACKING_TOKEN.
    #[arg(long, value_name = "URL")]
    pub mlflow_uri: Option<String>,
    /// Which versions of each model to export: all, latest (the highest-numbered version) or
    /// stage:NAME (the versions in stage NAME: None, Staging, Production, Archived).
    #[arg(long, value_name = "WHICH", default_value = "all")]
    pub model_versions: VersionSelection,
    /// Only models whose name matches this glob (`*`, `?`, `[...]`); repeat for several.
    /// Default: every model.
    #[arg(long = "model", value_name = "GLOB")]
    pub models: Vec<String>,
}

/// The model flags of `import` and `models import`: which registry receives the models, and
/// where their artifacts are uploaded first.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelTargetFlags {
    /// Import the models into the open-source MLflow tracking server at URL instead of the
    /// workspace's registry (artifacts through its artifact proxy). A bearer token, if the
    /// server needs one, is read from MLFLOW_TRACKING_TOKEN.
    #[arg(long, value_name = "URL")]
    pub mlflow_uri: Option<String>,
    /// Importing into a workspace: where artifacts are uploaded before a version is created
    /// from them (and removed once the registry has its copy). A `dbfs:/` path is written
    /// through DBFS, a `/Volumes/...` path through the Files API.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_STAGING_PATH)]
    pub model_artifact_path: String,
    /// Importing into an MLflow server: the experiment holding the runs that carry imported
    /// versions' artifacts and their source runs' params, metrics and tags.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_EXPERIMENT)]
    pub mlflow_experiment: String,
    /// Importing into a workspace: put the models of the bundle's workspace registry into
    /// Unity Catalog, in schema CATALOG.SCHEMA, named in lowercase with `_` for other
    /// characters; stages become aliases (Production → production, Staging → staging,
    /// Archived → archived).
    #[arg(long, value_name = "CATALOG.SCHEMA")]
    pub models_to_uc: Option<String>,
}

impl Default for ModelTargetFlags {
    fn default() -> Self {
        ModelTargetFlags {
            mlflow_uri: None,
            model_artifact_path: DEFAULT_STAGING_PATH.to_string(),
            mlflow_experiment: DEFAULT_EXPERIMENT.to_string(),
            models_to_uc: None,
        }
    }
}

impl ModelFlags {
    /// The flags as the models engine takes them.
    pub fn get(&self) -> ModelArgs {
        ModelArgs {
            mlflow_uri: self.mlflow_uri.clone(),
            model_versions: self.model_versions.clone(),
            models: self.models.clone(),
        }
    }
}

impl ModelTargetFlags {
    /// The flags as the models engine takes them.
    pub fn get(&self) -> ModelTargetArgs {
        ModelTargetArgs {
            mlflow_uri: self.mlflow_uri.clone(),
            model_artifact_path: self.model_artifact_path.clone(),
            mlflow_experiment: self.mlflow_experiment.clone(),
            models_to_uc: self.models_to_uc.clone(),
        }
    }
}

/// `--on-conflict`: what to do with an object that exists in the target, differs from the
/// bundle, and was not put there by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictFlag {
    /// Refuse the import, listing every conflict.
    Fail,
    /// Keep the target's object.
    Skip,
    /// Replace it.
    Overwrite,
}

impl From<ConflictFlag> for OnConflict {
    fn from(f: ConflictFlag) -> Self {
        match f {
            ConflictFlag::Fail => OnConflict::Fail,
            ConflictFlag::Skip => OnConflict::Skip,
            ConflictFlag::Overwrite => OnConflict::Overwrite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthFlags,
        #[command(flatten)]
        engine: EngineFlags,
    }

    /// The connection flags flatten into a command, reach the client as given, and a secret
    /// on the command line is never shown.
    #[test]
    fn auth_flags_flatten_and_redact() {
        let cli = Cli::try_parse_from([
            "x",
            "--host",
            "https://h",
            "--token",
            "dapi-on-argv",
            "--client-secret",
            "cs-on-argv",
            "--concurrency",
            "4",
        ])
        .unwrap();
        let auth = cli.auth.get();
        assert_eq!(auth.host.as_deref(), Some("https://h"));
        assert_eq!(auth.warnings().len(), 2);
        assert_eq!(cli.engine.get().concurrency, Some(4));
        let shown = format!("{cli:?} {auth:?}");
        assert!(
            !shown.contains("dapi-on-argv") && !shown.contains("cs-on-argv"),
            "{shown}"
        );
        assert!(Cli::try_parse_from(["x", "--concurrency", "0"]).is_err());
    }

    /// The flag's words are the policy's names, as reports print them.
    #[test]
    fn conflict_words_are_the_policy_names() {
        for f in ConflictFlag::value_variants() {
            let word = f.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(word, OnConflict::from(*f).as_str());
        }
    }
}
