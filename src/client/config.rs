//! Configuration resolution, following Databricks unified client authentication exactly as the
//! Python SDK does it (reference §9.1):
//!
//! 1. explicit arguments (command-line flags, [`ConfigArgs`]);
//! 2. environment variables, only for attributes still unset;
//! 3. the config file (`DATABRICKS_CONFIG_FILE` or `~/.databrickscfg`), **skipped entirely** when
//!    no profile is named and a host or any auth attribute is already set. Profile choice:
//!    named profile → `[__settings__] default_profile` → `[DEFAULT]`. A named profile that is
//!    missing is an error; a missing `[DEFAULT]` is ignored. The file never overrides a value
//!    already set;
//! 4. host normalisation, then validation: attributes of more than one auth method without an
//!    explicit `auth_type` is an error.
//!
//! Tokens and client secrets are held as [`SecretString`], whose `Debug` is redacted, from the
//! moment they are read. Nothing here performs network I/O.

use super::ini::Ini;
use crate::hints::Hint;
use age::secrecy::ExposeSecret;
/// The secret string type the configuration holds tokens in (re-exported from `age`).
pub use age::secrecy::SecretString;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the command line gives (every field optional; unset fields fall through to the
/// environment and the config file).
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Workspace URL.
    pub host: Option<String>,
    /// Personal access token.
    pub token: Option<SecretString>,
    /// Profile of the config file.
    pub profile: Option<String>,
    /// Config file path (default `~/.databrickscfg`).
    pub config_file: Option<PathBuf>,
    /// OAuth M2M client id (service principal application id).
    pub client_id: Option<String>,
    /// OAuth M2M client secret.
    pub client_secret: Option<SecretString>,
    /// SQL warehouse for statement execution.
    pub warehouse_id: Option<String>,
    /// Cluster for command execution.
    pub cluster_id: Option<String>,
    /// Forces one auth method (`pat`, `oauth-m2m`, `databricks-cli`, `external-browser`,
    /// `azure-cli`, `azure-client-secret`, `azure-msi`).
    pub auth_type: Option<String>,
    /// Browser sign-in (`external-browser`): how it proceeds.
    pub browser: BrowserSettings,
}

/// How a browser sign-in (`external-browser`) proceeds: things only the command line knows.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// Open the sign-in page in a browser (else only print its address). The command line
    /// turns it off when no terminal is attached or `DBXPORT_NO_BROWSER` is set.
    pub open_browser: bool,
    /// Port of the loopback address the sign-in page redirects to (`http://localhost:PORT`);
    /// 8020 as the Databricks CLI, whose OAuth application expects it; 0 picks a free port.
    pub redirect_port: u16,
    /// How long to wait for the user to finish signing in.
    pub timeout: Duration,
    /// Shows the sign-in address to the user.
    pub prompt: LoginPrompt,
}

impl Default for BrowserSettings {
    fn default() -> Self {
        BrowserSettings {
            open_browser: false,
            redirect_port: 8020,
            timeout: Duration::from_secs(300),
            prompt: LoginPrompt::default(),
        }
    }
}

/// Shows a browser sign-in address (it holds no secret: a PKCE challenge and a random state).
#[derive(Clone)]
pub struct LoginPrompt(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl Default for LoginPrompt {
    fn default() -> Self {
        LoginPrompt(std::sync::Arc::new(|url| {
            eprintln!("dbxport: to sign in, open this address in a browser:\n  {url}");
        }))
    }
}

impl fmt::Debug for LoginPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginPrompt")
    }
}

/// Where a token cache of the Databricks CLI's format lives (`~/.databricks/token-cache.json`)
/// and which entry is this workspace's.
#[derive(Debug, Clone)]
pub struct TokenCacheOptions {
    /// The cache file.
    pub file: PathBuf,
    /// The lock file the CLI serialises refreshes with (`token-cache.lock` beside it).
    pub lock: PathBuf,
    /// Keys to look the workspace up by, in order: the profile, then the host.
    pub keys: Vec<String>,
}

/// `databricks-cli`: the sign-in `databricks auth login` made.
#[derive(Debug, Clone)]
pub struct CliOptions {
    /// The `databricks` executable, when one is installed (`databricks_cli_path`, else PATH):
    /// `databricks auth token` is asked, as the SDKs do. Else the cache is read directly.
    pub cli_path: Option<PathBuf>,
    /// The profile, passed as `--profile` (else `--host`).
    pub profile: Option<String>,
    /// The CLI's token cache.
    pub cache: TokenCacheOptions,
    /// Explicit OpenID discovery URL, else discovered from the host.
    pub discovery_url: Option<String>,
}

/// `external-browser`: user-to-machine sign-in (authorization code with PKCE).
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// OAuth client: `databricks-cli` (the public client) unless `client_id` is configured.
    pub client_id: String,
    /// Secret of a confidential client, if any.
    pub client_secret: Option<SecretString>,
    /// Explicit OpenID discovery URL, else discovered from the host.
    pub discovery_url: Option<String>,
    /// Scopes (`all-apis offline_access` by default).
    pub scopes: Vec<String>,
    /// Where the tokens are kept between runs (the CLI's cache, so both share a sign-in).
    pub cache: TokenCacheOptions,
    /// How the sign-in proceeds.
    pub settings: BrowserSettings,
}

/// Which Azure cloud: its Entra ID login endpoint and service management endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureCloud {
    /// `PUBLIC`, `USGOVERNMENT` or `CHINA`.
    pub name: &'static str,
    /// Entra ID authority, e.g. `https://login.microsoftonline.com/`.
    pub login_endpoint: String,
    /// Service management endpoint, e.g. `https://management.core.windows.net/`.
    pub management_endpoint: String,
}

/// How an Azure token is obtained.
#[derive(Debug, Clone)]
pub enum AzureMethod {
    /// `az account get-access-token` (`azure-cli`).
    Cli {
        /// The `az` executable.
        az: PathBuf,
        /// Subscription of the workspace (from its resource id).
        subscription: Option<String>,
        /// Tenant, when configured.
        tenant: Option<String>,
    },
    /// Entra ID client credentials of a service principal (`azure-client-secret`).
    ClientSecret {
        /// Application (client) id.
        client_id: String,
        /// Client secret.
        client_secret: SecretString,
        /// Tenant; read from the workspace's `/aad/auth` redirect when not configured.
        tenant_id: Option<String>,
    },
    /// A managed identity (`azure-msi`).
    Msi {
        /// A user-assigned identity's client id; the system-assigned one when `None`.
        client_id: Option<String>,
        /// Where tokens are asked for.
        endpoint: MsiEndpoint,
    },
}

/// A managed identity's token endpoint.
#[derive(Debug, Clone)]
pub enum MsiEndpoint {
    /// The instance metadata service (`http://169.254.169.254`, or
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST`), asked with `Metadata: true`.
    Imds {
        /// Base URL of the service.
        base: String,
    },
    /// App Service, Functions, Container Apps, Arc: `IDENTITY_ENDPOINT` with
    /// `X-IDENTITY-HEADER: $IDENTITY_HEADER`.
    IdentityEndpoint {
        /// The endpoint URL.
        url: String,
        /// The header's secret value.
        header: SecretString,
    },
}

/// `azure-cli`, `azure-client-secret`, `azure-msi`.
#[derive(Debug, Clone)]
pub struct AzureOptions {
    /// How tokens are obtained.
    pub method: AzureMethod,
    /// The cloud (`azure_environment` / `ARM_ENVIRONMENT`, else the host's DNS zone).
    pub cloud: AzureCloud,
    /// The Azure Databricks application tokens are asked for.
    pub resource: String,
    /// The workspace's Azure resource id, sent as `X-Databricks-Azure-Workspace-Resource-Id`.
    pub workspace_resource_id: Option<String>,
}

/// Where an attribute's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A profile of a config file.
    File {
        /// The file.
        path: PathBuf,
        /// The profile (section).
        profile: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "{flag}"),
            Source::Env(var) => write!(f, "{var}"),
            Source::File { path, profile } => {
                write!(f, "profile [{profile}] of {}", path.display())
            }
        }
    }
}

/// The credentials a client authenticates with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// Personal access token (`Authorization: Bearer <token>`).
    Pat {
        /// The token.
        token: SecretString,
    },
    /// OAuth machine-to-machine (service principal client credentials).
    OAuthM2m {
        /// Client (application) id.
        client_id: String,
        /// Client secret.
        client_secret: SecretString,
        /// Explicit OpenID discovery URL (`discovery_url`), else discovered from the host.
        discovery_url: Option<String>,
        /// Scopes, space-separated on the wire (default `all-apis`).
        scopes: Vec<String>,
    },
    /// The Databricks CLI's sign-in (`databricks-cli`).
    DatabricksCli(CliOptions),
    /// User-to-machine sign-in in a browser (`external-browser`).
    ExternalBrowser(BrowserOptions),
    /// Entra ID tokens (`azure-cli`, `azure-client-secret`, `azure-msi`).
    Azure(AzureOptions),
    /// Methods of the default chain that may apply; the first that yields a token is used.
    Chain(Vec<Credentials>),
}

impl Credentials {
    /// The SDK's name for this auth type (`pat`, `oauth-m2m`, ...; `default` for a chain).
    pub fn auth_type(&self) -> &'static str {
        match self {
            Credentials::Pat { .. } => "pat",
            Credentials::OAuthM2m { .. } => "oauth-m2m",
            Credentials::DatabricksCli(_) => "databricks-cli",
            Credentials::ExternalBrowser(_) => "external-browser",
            Credentials::Azure(a) => match a.method {
                AzureMethod::Cli { .. } => "azure-cli",
                AzureMethod::ClientSecret { .. } => "azure-client-secret",
                AzureMethod::Msi { .. } => "azure-msi",
            },
            Credentials::Chain(_) => "default",
        }
    }
}

/// A resolved configuration: a host and one set of credentials, plus optional compute ids.
#[derive(Debug, Clone)]
pub struct Config {
    /// Normalised workspace URL (`https://host`, no trailing slash).
    pub host: String,
    /// Credentials.
    pub credentials: Credentials,
    /// The profile used, when one was named or chosen by `default_profile`.
    pub profile: Option<String>,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// SQL warehouse id (`warehouse_id`, `DATABRICKS_WAREHOUSE_ID`).
    pub warehouse_id: Option<String>,
    /// Cluster id (`cluster_id`, `DATABRICKS_CLUSTER_ID`).
    pub cluster_id: Option<String>,
    /// Workspace id, when configured.
    pub workspace_id: Option<String>,
    /// Account id, when configured.
    pub account_id: Option<String>,
    /// `retry_timeout_seconds` from the profile.
    pub retry_timeout: Option<Duration>,
    /// `http_timeout_seconds` from the profile.
    pub http_timeout: Option<Duration>,
    /// Where each set attribute came from (secrets included by name only).
    pub sources: BTreeMap<String, Source>,
}

impl Config {
    /// A one-line description for messages: host, auth type, and where they came from. Never
    /// contains a secret.
    pub fn describe(&self) -> String {
        let mut s = format!("host={} auth={}", self.host, self.credentials.auth_type());
        if let Some(p) = &self.profile {
            s.push_str(&format!(" profile={p}"));
        }
        let from: Vec<String> = self
            .sources
            .iter()
            .map(|(k, v)| format!("{k} from {v}"))
            .collect();
        if !from.is_empty() {
            s.push_str(&format!(" ({})", from.join(", ")));
        }
        s
    }

    /// Resolves a configuration from `args`, the environment `env` and the config file under
    /// `home` (or `DATABRICKS_CONFIG_FILE` / `--config-file`), in the SDK's order.
    pub fn resolve(
        args: &ConfigArgs,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut attrs = Attrs::default();
        attrs.set_plain("host", args.host.as_deref(), Source::Flag("--host"));
        attrs.set_secret("token", args.token.as_ref(), Source::Flag("--token"));
        attrs.set_plain(
            "profile",
            args.profile.as_deref(),
            Source::Flag("--profile"),
        );
        attrs.set_plain(
            "config_file",
            args.config_file.as_deref().and_then(Path::to_str),
            Source::Flag("--config-file"),
        );
        attrs.set_plain(
            "client_id",
            args.client_id.as_deref(),
            Source::Flag("--client-id"),
        );
        attrs.set_secret(
            "client_secret",
            args.client_secret.as_ref(),
            Source::Flag("--client-secret"),
        );
        attrs.set_plain(
            "warehouse_id",
            args.warehouse_id.as_deref(),
            Source::Flag("--warehouse-id"),
        );
        attrs.set_plain(
            "cluster_id",
            args.cluster_id.as_deref(),
            Source::Flag("--cluster-id"),
        );
        attrs.set_plain(
            "auth_type",
            args.auth_type.as_deref(),
            Source::Flag("--auth-type"),
        );

        for a in ATTRIBUTES {
            let Some(var) = a.env else { continue };
            if attrs.has(a.name) {
                continue;
            }
            let mut value = env(var).filter(|v| !v.is_empty());
            if value.is_none() && a.name == "oidc_token_filepath" {
                value = env("DATABRICKS_OIDC_TOKEN_FILE").filter(|v| !v.is_empty());
            }
            if let Some(v) = value {
                attrs.set_value(a.name, v, Source::Env(var));
            }
        }

        let file = load_config_file(&mut attrs, home)?;

        let host = match attrs.plain("host") {
            Some(h) => Some(normalize_host(&h)?),
            None => None,
        };

        let used = attrs.auth_methods();
        let auth_type = attrs.plain("auth_type");
        if used.len() > 1 && auth_type.is_none() {
            let detail: Vec<String> = ATTRIBUTES
                .iter()
                .filter(|a| a.auth.is_some())
                .filter_map(|a| attrs.source(a.name).map(|s| format!("{} from {s}", a.name)))
                .collect();
            return Err(ConfigError::MultipleAuthMethods {
                methods: used.join(" and "),
                detail: detail.join(", "),
            });
        }

        let Some(host) = host else {
            return Err(ConfigError::NoHost {
                missing_file: file.missing.clone(),
            });
        };

        let ctx = Probe {
            env,
            home,
            browser: &args.browser,
        };
        let credentials =
            pick_credentials(&attrs, auth_type.as_deref(), &used, &host, &file, &ctx)?;

        let seconds = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            match attrs.plain(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(|s| Some(Duration::from_secs_f64(s)))
                    .ok_or_else(|| ConfigError::InvalidValue {
                        attribute: name,
                        value: v.clone(),
                        source_desc: attrs
                            .source(name)
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        expected: "a positive number of seconds",
                    }),
            }
        };

        Ok(Config {
            host,
            credentials,
            profile: attrs.plain("profile"),
            config_file: file.read,
            warehouse_id: attrs.plain("warehouse_id"),
            cluster_id: attrs.plain("cluster_id"),
            workspace_id: attrs.plain("workspace_id"),
            account_id: attrs.plain("account_id"),
            retry_timeout: seconds("retry_timeout_seconds")?,
            http_timeout: seconds("http_timeout_seconds")?,
            sources: attrs
                .map
                .iter()
                .map(|(k, (_, s))| (k.to_string(), s.clone()))
                .collect(),
        })
    }

    /// A personal-access-token configuration for `host`, ignoring the environment and any
    /// config file (tests, the emulator).
    pub fn pat(host: &str, token: SecretString) -> Result<Config, ConfigError> {
        let args = ConfigArgs {
            host: Some(host.to_string()),
            token: Some(token),
            ..ConfigArgs::default()
        };
        Config::resolve(&args, &|_| None, None)
    }

    /// [`Config::resolve`] with the process environment and `$HOME`.
    pub fn resolve_from_env(args: &ConfigArgs) -> Result<Config, ConfigError> {
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from);
        Config::resolve(args, &|k| std::env::var(k).ok(), home.as_deref())
    }
}

/// Why a configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read or parsed.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `__settings__` was named as a profile.
    #[error("config file {}: [__settings__] is a reserved section and cannot be used as a profile", path.display())]
    ReservedProfile {
        /// The file.
        path: PathBuf,
    },
    /// A named profile is not in the file.
    #[error("config file {}: has no [{profile}] profile\n{}", path.display(), Hint::NoSuchProfile.with(&[("profiles", &if available.is_empty() { "none".to_string() } else { available.join(", ") })]))]
    ProfileNotFound {
        /// The file.
        path: PathBuf,
        /// The profile asked for.
        profile: String,
        /// Profiles present.
        available: Vec<String>,
    },
    /// Attributes of more than one auth method are set.
    #[error(
        "config: more than one authorization method configured: {methods} ({detail})\n{}",
        Hint::AmbiguousAuth
    )]
    MultipleAuthMethods {
        /// e.g. `oauth and pat`.
        methods: String,
        /// Which attributes, from where.
        detail: String,
    },
    /// No host anywhere.
    #[error("config: no workspace host configured{}\n{}", missing_file.as_ref().map(|p| format!(" (config file {} does not exist)", p.display())).unwrap_or_default(), Hint::NoHost)]
    NoHost {
        /// A config file that was looked for but does not exist.
        missing_file: Option<PathBuf>,
    },
    /// The host is not a usable URL.
    #[error("config: host `{host}`: {reason}\n{}", Hint::InvalidHost)]
    InvalidHost {
        /// As given.
        host: String,
        /// Why not.
        reason: String,
    },
    /// A host but no credentials.
    #[error("config: no credentials for {host}{}; tried:\n{}\n{}", missing_file.as_ref().map(|p| format!(" (config file {} does not exist)", p.display())).unwrap_or_default(), tried.iter().map(|t| format!("  {t}")).collect::<Vec<_>>().join("\n"), Hint::NoCredentials.with(&[("host", host)]))]
    NoCredentials {
        /// The host.
        host: String,
        /// A config file that was looked for but does not exist.
        missing_file: Option<PathBuf>,
        /// Each method of the chain and why it does not apply.
        tried: Vec<String>,
    },
    /// One half of a credential pair is missing.
    #[error("config: {auth_type} auth: {missing} is not set\n{hint}")]
    Incomplete {
        /// The auth type.
        auth_type: &'static str,
        /// The missing attribute.
        missing: &'static str,
        /// How to set it.
        hint: Hint,
    },
    /// An auth method dbxport does not implement.
    #[error(
        "config: auth type `{auth_type}` is not supported by dbxport\n{}",
        Hint::UnsupportedAuth
    )]
    UnsupportedAuth {
        /// The method.
        auth_type: String,
    },
    /// An attribute value of the wrong form.
    #[error("config: {attribute} = `{value}` (from {source_desc}): expected {expected}")]
    InvalidValue {
        /// Attribute.
        attribute: &'static str,
        /// Value as given.
        value: String,
        /// Where it came from.
        source_desc: String,
        /// What was expected.
        expected: &'static str,
    },
}

struct Attribute {
    name: &'static str,
    env: Option<&'static str>,
    auth: Option<&'static str>,
    sensitive: bool,
}

const fn attr(
    name: &'static str,
    env: Option<&'static str>,
    auth: Option<&'static str>,
    sensitive: bool,
) -> Attribute {
    Attribute {
        name,
        env,
        auth,
        sensitive,
    }
}

/// The SDK's config attributes, with environment variables and auth methods (reference §9.2-3).
const ATTRIBUTES: &[Attribute] = &[
    attr("host", Some("DATABRICKS_HOST"), None, false),
    attr("account_id", Some("DATABRICKS_ACCOUNT_ID"), None, false),
    attr("workspace_id", Some("DATABRICKS_WORKSPACE_ID"), None, false),
    attr(
        "discovery_url",
        Some("DATABRICKS_DISCOVERY_URL"),
        None,
        false,
    ),
    attr("token", Some("DATABRICKS_TOKEN"), Some("pat"), true),
    attr(
        "token_audience",
        Some("DATABRICKS_TOKEN_AUDIENCE"),
        None,
        false,
    ),
    attr(
        "oidc_token_env",
        Some("DATABRICKS_OIDC_TOKEN_ENV"),
        Some("env-oidc"),
        false,
    ),
    attr(
        "oidc_token_filepath",
        Some("DATABRICKS_OIDC_TOKEN_FILEPATH"),
        Some("file-oidc"),
        false,
    ),
    attr(
        "username",
        Some("DATABRICKS_USERNAME"),
        Some("basic"),
        false,
    ),
    attr("password", Some("DATABRICKS_PASSWORD"), Some("basic"), true),
    attr(
        "client_id",
        Some("DATABRICKS_CLIENT_ID"),
        Some("oauth"),
        false,
    ),
    attr(
        "client_secret",
        Some("DATABRICKS_CLIENT_SECRET"),
        Some("oauth"),
        true,
    ),
    attr("profile", Some("DATABRICKS_CONFIG_PROFILE"), None, false),
    attr("config_file", Some("DATABRICKS_CONFIG_FILE"), None, false),
    attr(
        "google_service_account",
        Some("DATABRICKS_GOOGLE_SERVICE_ACCOUNT"),
        Some("google"),
        false,
    ),
    attr(
        "google_credentials",
        Some("GOOGLE_CREDENTIALS"),
        Some("google"),
        true,
    ),
    attr(
        "azure_workspace_resource_id",
        Some("DATABRICKS_AZURE_RESOURCE_ID"),
        Some("azure"),
        false,
    ),
    attr("azure_use_msi", Some("ARM_USE_MSI"), Some("azure"), false),
    attr(
        "azure_client_secret",
        Some("ARM_CLIENT_SECRET"),
        Some("azure"),
        true,
    ),
    attr(
        "azure_client_id",
        Some("ARM_CLIENT_ID"),
        Some("azure"),
        false,
    ),
    attr(
        "azure_tenant_id",
        Some("ARM_TENANT_ID"),
        Some("azure"),
        false,
    ),
    attr("azure_environment", Some("ARM_ENVIRONMENT"), None, false),
    attr(
        "databricks_cli_path",
        Some("DATABRICKS_CLI_PATH"),
        None,
        false,
    ),
    attr("auth_type", Some("DATABRICKS_AUTH_TYPE"), None, false),
    attr("cluster_id", Some("DATABRICKS_CLUSTER_ID"), None, false),
    attr("warehouse_id", Some("DATABRICKS_WAREHOUSE_ID"), None, false),
    attr(
        "serverless_compute_id",
        Some("DATABRICKS_SERVERLESS_COMPUTE_ID"),
        None,
        false,
    ),
    attr(
        "metadata_service_url",
        Some("DATABRICKS_METADATA_SERVICE_URL"),
        Some("metadata-service"),
        true,
    ),
    attr("retry_timeout_seconds", None, None, false),
    attr("http_timeout_seconds", None, None, false),
    attr("skip_verify", None, None, false),
    attr("scopes", None, None, false),
    attr("cloud", Some("DATABRICKS_CLOUD"), None, false),
];

fn attribute(name: &str) -> Option<&'static Attribute> {
    ATTRIBUTES.iter().find(|a| a.name == name)
}

enum Val {
    Plain(String),
    Secret(SecretString),
}

#[derive(Default)]
struct Attrs {
    map: BTreeMap<&'static str, (Val, Source)>,
}

impl Attrs {
    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    fn set_plain(&mut self, name: &'static str, v: Option<&str>, src: Source) {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.map.insert(name, (Val::Plain(v.to_string()), src));
        }
    }

    fn set_secret(&mut self, name: &'static str, v: Option<&SecretString>, src: Source) {
        if let Some(v) = v.filter(|v| !v.expose_secret().is_empty()) {
            self.map.insert(name, (Val::Secret(v.clone()), src));
        }
    }

    /// Sets a value read from the environment or a file, as a secret when the attribute is one.
    fn set_value(&mut self, name: &'static str, v: String, src: Source) {
        let sensitive = attribute(name).is_some_and(|a| a.sensitive);
        let val = if sensitive {
            Val::Secret(SecretString::from(v))
        } else {
            Val::Plain(v)
        };
        self.map.insert(name, (val, src));
    }

    fn plain(&self, name: &str) -> Option<String> {
        match self.map.get(name) {
            Some((Val::Plain(v), _)) => Some(v.clone()),
            _ => None,
        }
    }

    fn secret(&self, name: &str) -> Option<SecretString> {
        match self.map.get(name) {
            Some((Val::Secret(v), _)) => Some(v.clone()),
            _ => None,
        }
    }

    fn source(&self, name: &str) -> Option<&Source> {
        self.map.get(name).map(|(_, s)| s)
    }

    /// Auth methods with at least one attribute set, sorted (as the SDK names them).
    fn auth_methods(&self) -> Vec<&'static str> {
        let mut used: Vec<&'static str> = ATTRIBUTES
            .iter()
            .filter(|a| self.has(a.name))
            .filter_map(|a| a.auth)
            .collect();
        used.sort_unstable();
        used.dedup();
        used
    }
}

#[derive(Default)]
struct FileOutcome {
    read: Option<PathBuf>,
    missing: Option<PathBuf>,
}

fn expand_home(p: &str, home: Option<&Path>) -> PathBuf {
    match (
        p.strip_prefix("~/")
            .or(if p == "~" { Some("") } else { None }),
        home,
    ) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

fn load_config_file(attrs: &mut Attrs, home: Option<&Path>) -> Result<FileOutcome, ConfigError> {
    let mut out = FileOutcome::default();
    let named = attrs.plain("profile");
    let any_auth = ATTRIBUTES
        .iter()
        .any(|a| a.auth.is_some() && attrs.has(a.name));
    if named.is_none() && (any_auth || attrs.has("host")) {
        return Ok(out);
    }
    let path = match attrs.plain("config_file") {
        Some(p) => expand_home(&p, home),
        None => match home {
            Some(h) => h.join(".databrickscfg"),
            None => return Ok(out),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "config file does not exist");
            out.missing = Some(path);
            return Ok(out);
        }
        Err(e) => {
            return Err(ConfigError::File {
                path,
                message: e.to_string(),
            })
        }
    };
    let ini = Ini::parse(&text).map_err(|e| ConfigError::File {
        path: path.clone(),
        message: format!("line {}: {}", e.line, e.message),
    })?;
    const SETTINGS: &str = "__settings__";
    let (profile, fallback) = if let Some(p) = named {
        if p == SETTINGS {
            return Err(ConfigError::ReservedProfile { path });
        }
        (p, false)
    } else if let Some(d) = ini
        .section(SETTINGS)
        .and_then(|s| s.get("default_profile"))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
    {
        if d == SETTINGS {
            return Err(ConfigError::ReservedProfile { path });
        }
        (d, false)
    } else if ini.section("DEFAULT").is_some_and(|s| !s.is_empty()) {
        ("DEFAULT".to_string(), true)
    } else {
        tracing::debug!(path = %path.display(), "config file has no DEFAULT profile");
        out.read = Some(path);
        return Ok(out);
    };
    let Some(section) = ini.section(&profile).filter(|_| profile != SETTINGS) else {
        if fallback {
            return Ok(out);
        }
        return Err(ConfigError::ProfileNotFound {
            path,
            profile,
            available: ini
                .names()
                .filter(|n| *n != SETTINGS)
                .map(str::to_string)
                .collect(),
        });
    };
    for (k, v) in section {
        let Some(a) = attribute(k) else {
            tracing::debug!(key = %k, profile = %profile, "ignoring unknown config key");
            continue;
        };
        if attrs.has(a.name) || v.is_empty() {
            continue;
        }
        attrs.set_value(
            a.name,
            v.clone(),
            Source::File {
                path: path.clone(),
                profile: profile.clone(),
            },
        );
    }
    if !fallback {
        attrs.map.insert(
            "profile",
            (
                Val::Plain(profile.clone()),
                attrs.source("profile").cloned().unwrap_or(Source::File {
                    path: path.clone(),
                    profile: profile.clone(),
                }),
            ),
        );
    }
    out.read = Some(path);
    Ok(out)
}

/// Normalises a host as the SDK does: `https://` when no scheme, no trailing slash, no `:443`.
pub fn normalize_host(host: &str) -> Result<String, ConfigError> {
    let h = host.trim();
    let with_scheme = if h.contains("://") {
        h.to_string()
    } else {
        format!("https://{h}")
    };
    let invalid = |reason: &str| ConfigError::InvalidHost {
        host: host.to_string(),
        reason: reason.to_string(),
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid("the scheme must be https or http"));
    }
    let Some(hostname) = url.host_str() else {
        return Err(invalid("no host name"));
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a workspace URL has no query or fragment"));
    }
    let mut out = format!("{}://{}", url.scheme(), hostname);
    if let Some(port) = url.port() {
        if port != 443 {
            out.push_str(&format!(":{port}"));
        }
    }
    out.push_str(url.path().trim_end_matches('/'));
    Ok(out)
}

/// What credential selection may look at besides the attributes: the environment (PATH,
/// Azure's endpoint variables), the home directory (the CLI's token cache) and the browser
/// settings. Only local facts: no network, no child process.
struct Probe<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    home: Option<&'a Path>,
    browser: &'a BrowserSettings,
}

/// The Azure Databricks first-party application (reference: the SDK's environments).
pub const AZURE_DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";

impl Probe<'_> {
    /// `name` on PATH (or `name` itself when it is a path), if it is an executable file.
    fn which(&self, name: &str) -> Option<PathBuf> {
        let executable = |p: &Path| -> bool {
            let Ok(m) = std::fs::metadata(p) else {
                return false;
            };
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            }
            #[cfg(not(unix))]
            {
                m.is_file()
            }
        };
        if name.contains('/') || name.contains(std::path::MAIN_SEPARATOR) {
            let p = PathBuf::from(name);
            return executable(&p).then_some(p);
        }
        let path = (self.env)("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| executable(p))
    }

    fn cache(&self, host: &str, profile: Option<&str>) -> Option<TokenCacheOptions> {
        let dir = self.home?.join(".databricks");
        let mut keys: Vec<String> = profile.map(str::to_string).into_iter().collect();
        keys.push(host.to_string());
        Some(TokenCacheOptions {
            file: dir.join("token-cache.json"),
            lock: dir.join("token-cache.lock"),
            keys,
        })
    }
}

/// True when the cache file holds an entry under one of the keys (the token itself is not
/// kept).
fn cache_has(cache: &TokenCacheOptions) -> bool {
    let Ok(text) = std::fs::read(&cache.file) else {
        return false;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    cache
        .keys
        .iter()
        .any(|k| v.get("tokens").and_then(|t| t.get(k)).is_some())
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// The Azure cloud of `azure_environment` (`PUBLIC`, `USGOVERNMENT`, `CHINA`; also
/// `AzurePublicCloud`-style names and `usgov`), else of the host's DNS zone.
fn azure_cloud(env_name: Option<&str>, host: &str) -> Result<AzureCloud, String> {
    let name = match env_name {
        Some(n) => {
            let mut n = n.trim().to_ascii_uppercase();
            if let Some(r) = n.strip_prefix("AZURE") {
                n = r.to_string();
            }
            if let Some(r) = n.strip_suffix("CLOUD") {
                n = r.to_string();
            }
            match n.as_str() {
                "PUBLIC" | "" => "PUBLIC",
                "USGOVERNMENT" | "USGOV" => "USGOVERNMENT",
                "CHINA" => "CHINA",
                _ => return Err(n),
            }
        }
        None if host.ends_with(".databricks.azure.us") => "USGOVERNMENT",
        None if host.ends_with(".databricks.azure.cn") => "CHINA",
        None => "PUBLIC",
    };
    let (login, mgmt) = match name {
        "USGOVERNMENT" => (
            "https://login.microsoftonline.us/",
            "https://management.core.usgovcloudapi.net/",
        ),
        "CHINA" => (
            "https://login.chinacloudapi.cn/",
            "https://management.core.chinacloudapi.cn/",
        ),
        _ => (
            "https://login.microsoftonline.com/",
            "https://management.core.windows.net/",
        ),
    };
    Ok(AzureCloud {
        name,
        login_endpoint: login.to_string(),
        management_endpoint: mgmt.to_string(),
    })
}

fn is_azure_host(host: &str) -> bool {
    let h = host
        .split("://")
        .nth(1)
        .unwrap_or(host)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    [
        ".azuredatabricks.net",
        ".databricks.azure.us",
        ".databricks.azure.cn",
    ]
    .iter()
    .any(|z| h.ends_with(z))
}

/// The Azure Databricks application of the host (dev and staging workspaces have their own).
fn azure_resource(host: &str) -> &'static str {
    if host.contains(".dev.azuredatabricks.net") {
        "62a912ac-b58e-4c1d-89ea-b2dbfc7358fc"
    } else if host.contains(".staging.azuredatabricks.net") {
        "4a67d088-db5c-48f1-9ff2-0aace800ae68"
    } else {
        AZURE_DATABRICKS_RESOURCE
    }
}

fn pick_credentials(
    attrs: &Attrs,
    auth_type: Option<&str>,
    used: &[&'static str],
    host: &str,
    file: &FileOutcome,
    probe: &Probe<'_>,
) -> Result<Credentials, ConfigError> {
    let scopes = |default: &[&str]| -> Vec<String> {
        attrs
            .plain("scopes")
            .map(|s| {
                s.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
    };
    let pat = || -> Result<Credentials, ConfigError> {
        let token = attrs.secret("token").ok_or(ConfigError::Incomplete {
            auth_type: "pat",
            missing: "token",
            hint: Hint::MissingToken,
        })?;
        Ok(Credentials::Pat { token })
    };
    let m2m = || -> Result<Credentials, ConfigError> {
        let client_id = attrs.plain("client_id").ok_or(ConfigError::Incomplete {
            auth_type: "oauth-m2m",
            missing: "client_id",
            hint: Hint::MissingClientId,
        })?;
        let client_secret = attrs
            .secret("client_secret")
            .ok_or(ConfigError::Incomplete {
                auth_type: "oauth-m2m",
                missing: "client_secret",
                hint: Hint::MissingClientSecret,
            })?;
        Ok(Credentials::OAuthM2m {
            client_id,
            client_secret,
            discovery_url: attrs.plain("discovery_url"),
            scopes: scopes(&["all-apis"]),
        })
    };
    let profile = attrs.plain("profile");
    let no_home = |auth_type: &'static str| ConfigError::Incomplete {
        auth_type,
        missing: "a home directory",
        hint: Hint::MissingHome,
    };
    let cli_path = || -> Option<PathBuf> {
        match attrs.plain("databricks_cli_path") {
            Some(p) => probe.which(&p),
            // The legacy Python CLI (a small script) has no `auth token`: the new CLI is a
            // single binary of several MB, which is how the SDKs tell them apart.
            None => probe
                .which("databricks")
                .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 1 << 20)),
        }
    };
    let cli = || -> Result<Credentials, ConfigError> {
        let cache = probe
            .cache(host, profile.as_deref())
            .ok_or_else(|| no_home("databricks-cli"))?;
        Ok(Credentials::DatabricksCli(CliOptions {
            cli_path: cli_path(),
            profile: profile.clone(),
            cache,
            discovery_url: attrs.plain("discovery_url"),
        }))
    };
    let browser = || -> Result<Credentials, ConfigError> {
        let cache = probe
            .cache(host, profile.as_deref())
            .ok_or_else(|| no_home("external-browser"))?;
        let mut scopes = scopes(&["all-apis"]);
        if !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".into());
        }
        Ok(Credentials::ExternalBrowser(BrowserOptions {
            client_id: attrs
                .plain("client_id")
                .unwrap_or_else(|| "databricks-cli".into()),
            client_secret: attrs.secret("client_secret"),
            discovery_url: attrs.plain("discovery_url"),
            scopes,
            cache,
            settings: probe.browser.clone(),
        }))
    };
    let resource_id = attrs.plain("azure_workspace_resource_id");
    let is_azure = resource_id.is_some()
        || attrs
            .plain("cloud")
            .is_some_and(|c| c.eq_ignore_ascii_case("azure"))
        || is_azure_host(host);
    let azure =
        |method: AzureMethod| -> Result<Credentials, ConfigError> {
            let mut cloud = azure_cloud(attrs.plain("azure_environment").as_deref(), host)
                .map_err(|n| ConfigError::InvalidValue {
                    attribute: "azure_environment",
                    value: n,
                    source_desc: attrs
                        .source("azure_environment")
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    expected: "PUBLIC, USGOVERNMENT or CHINA",
                })?;
            // Azure's SDKs read the Entra ID authority from AZURE_AUTHORITY_HOST (private clouds,
            // and a local emulator of it).
            if let Some(a) = (probe.env)("AZURE_AUTHORITY_HOST").filter(|a| !a.is_empty()) {
                cloud.login_endpoint = format!("{}/", a.trim_end_matches('/'));
            }
            Ok(Credentials::Azure(AzureOptions {
                method,
                cloud,
                resource: azure_resource(host).to_string(),
                workspace_resource_id: resource_id.clone(),
            }))
        };
    let az_cli = || -> Option<AzureMethod> {
        Some(AzureMethod::Cli {
            az: probe.which("az")?,
            subscription: resource_id
                .as_deref()
                .and_then(|r| r.split('/').nth(2))
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            tenant: attrs.plain("azure_tenant_id"),
        })
    };
    let msi = || -> AzureMethod {
        let endpoint = match (
            (probe.env)("IDENTITY_ENDPOINT").filter(|v| !v.is_empty()),
            (probe.env)("IDENTITY_HEADER").filter(|v| !v.is_empty()),
        ) {
            (Some(url), Some(h)) => MsiEndpoint::IdentityEndpoint {
                url,
                header: SecretString::from(h),
            },
            _ => MsiEndpoint::Imds {
                base: (probe.env)("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "http://169.254.169.254".into())
                    .trim_end_matches('/')
                    .to_string(),
            },
        };
        AzureMethod::Msi {
            client_id: attrs.plain("azure_client_id"),
            endpoint,
        }
    };
    let client_secret = || -> Result<AzureMethod, ConfigError> {
        Ok(AzureMethod::ClientSecret {
            client_id: attrs
                .plain("azure_client_id")
                .ok_or(ConfigError::Incomplete {
                    auth_type: "azure-client-secret",
                    missing: "azure_client_id",
                    hint: Hint::MissingArmClientId,
                })?,
            client_secret: attrs
                .secret("azure_client_secret")
                .ok_or(ConfigError::Incomplete {
                    auth_type: "azure-client-secret",
                    missing: "azure_client_secret",
                    hint: Hint::MissingArmClientSecret,
                })?,
            tenant_id: attrs.plain("azure_tenant_id"),
        })
    };
    let use_msi = truthy(attrs.plain("azure_use_msi"));
    match auth_type {
        Some("pat") => pat(),
        Some("oauth-m2m") => m2m(),
        Some("databricks-cli") => cli(),
        Some("external-browser") => browser(),
        Some("azure-client-secret") => azure(client_secret()?),
        Some("azure-msi") => azure(msi()),
        Some("azure-cli") => azure(az_cli().ok_or(ConfigError::Incomplete {
            auth_type: "azure-cli",
            missing: "the `az` command",
            hint: Hint::AzNotInstalled,
        })?),
        Some(other) => Err(ConfigError::UnsupportedAuth {
            auth_type: other.to_string(),
        }),
        None => match used.first() {
            Some(&"pat") => pat(),
            Some(&"oauth") => m2m(),
            // The Go SDK's order: a managed identity, then a client secret.
            Some(&"azure") if use_msi && is_azure => azure(msi()),
            Some(&"azure") if attrs.has("azure_client_id") && attrs.has("azure_client_secret") => {
                azure(client_secret()?)
            }
            Some(other) if *other != "azure" => Err(ConfigError::UnsupportedAuth {
                auth_type: other.to_string(),
            }),
            // Nothing, or Azure attributes that are not credentials themselves (a resource id,
            // a tenant): the methods that sign in through a CLI.
            _ => {
                let mut chain = Vec::new();
                let mut tried = vec![
                    "pat: no token (DATABRICKS_TOKEN)".to_string(),
                    "oauth-m2m: no client_id and client_secret (DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET)".to_string(),
                    "azure-msi, azure-client-secret: no ARM_USE_MSI, no ARM_CLIENT_ID and ARM_CLIENT_SECRET".to_string(),
                ];
                match (is_azure, az_cli()) {
                    (true, Some(m)) => chain.push(azure(m)?),
                    (true, None) => tried.push("azure-cli: no `az` on PATH".into()),
                    (false, _) => tried.push(
                        "azure-cli: the host is not an Azure Databricks workspace (set azure_workspace_resource_id or DATABRICKS_CLOUD=azure if it is)".into(),
                    ),
                }
                tried.push(
                    "external-browser: used only when asked for (--auth-type external-browser)"
                        .into(),
                );
                match probe.cache(host, profile.as_deref()) {
                    Some(cache) if cli_path().is_some() || cache_has(&cache) => chain.push(cli()?),
                    Some(cache) => tried.push(format!(
                        "databricks-cli: no `databricks` CLI on PATH and no sign-in for {} in {}",
                        cache.keys.join(" or "),
                        cache.file.display()
                    )),
                    None => tried.push("databricks-cli: no home directory".into()),
                }
                match chain.len() {
                    0 => Err(ConfigError::NoCredentials {
                        host: host.to_string(),
                        missing_file: file.missing.clone(),
                        tried,
                    }),
                    1 => Ok(chain.remove(0)),
                    _ => Ok(Credentials::Chain(chain)),
                }
            }
        },
    }
}

/// How to reach and sign in to a workspace, as a command was told (flags; the environment and
/// the config file fill in the rest). The command line builds it (`cli::flags`).
#[derive(Debug, Clone, Default)]
pub struct AuthArgs {
    /// Workspace URL (else DATABRICKS_HOST, else the profile's host).
    pub host: Option<String>,
    /// Personal access token. Visible to other processes on this machine: prefer
    /// DATABRICKS_TOKEN or a profile.
    pub token: Option<SecretString>,
    /// Profile of the config file (else DATABRICKS_CONFIG_PROFILE, else the file's
    /// default_profile setting, else its DEFAULT profile).
    pub profile: Option<String>,
    /// Config file (else DATABRICKS_CONFIG_FILE, else ~/.databrickscfg).
    pub config_file: Option<PathBuf>,
    /// OAuth M2M client id (service principal application id).
    pub client_id: Option<String>,
    /// OAuth M2M client secret. Visible to other processes: prefer DATABRICKS_CLIENT_SECRET.
    pub client_secret: Option<SecretString>,
    /// Use exactly this auth method: pat, oauth-m2m, databricks-cli, external-browser,
    /// azure-cli, azure-client-secret or azure-msi (else the first that applies, in the SDKs'
    /// order).
    pub auth_type: Option<String>,
    /// How a browser sign-in proceeds (`external-browser`).
    pub browser: BrowserSettings,
}

impl AuthArgs {
    /// The flags as [`ConfigArgs`].
    pub fn to_config_args(&self) -> ConfigArgs {
        ConfigArgs {
            host: self.host.clone(),
            token: self.token.clone(),
            profile: self.profile.clone(),
            config_file: self.config_file.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            auth_type: self.auth_type.clone(),
            browser: self.browser.clone(),
            ..ConfigArgs::default()
        }
    }

    /// Warnings the command should print before it starts: secrets given as flags are visible
    /// to other processes (`ps`, `/proc/<pid>/cmdline`).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.token.is_some() {
            w.push("--token: a token given on the command line is visible to other processes on this machine; prefer DATABRICKS_TOKEN or a profile in ~/.databrickscfg".to_string());
        }
        if self.client_secret.is_some() {
            w.push("--client-secret: a secret given on the command line is visible to other processes on this machine; prefer DATABRICKS_CLIENT_SECRET or a profile in ~/.databrickscfg".to_string());
        }
        w
    }
}

/// Engine settings: concurrency and time budgets, as a command was told.
#[derive(Debug, Clone, Default)]
pub struct TransportArgs {
    /// Requests in flight at once (default 8); lowered automatically while the workspace
    /// throttles.
    pub concurrency: Option<u32>,
    /// Total seconds one call may spend retrying (default 300, or the profile's
    /// retry_timeout_seconds).
    pub retry_timeout: Option<u64>,
    /// Seconds one HTTP request may take (default 60, or the profile's http_timeout_seconds).
    pub http_timeout: Option<u64>,
    /// The largest API answer read into memory, in MiB (default 64); a larger one fails the
    /// call. Streamed downloads (model artifacts, large files) are not limited.
    pub max_response_mb: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_normalisation() {
        assert_eq!(
            normalize_host("adb-1.2.azuredatabricks.net/").unwrap(),
            "https://adb-1.2.azuredatabricks.net"
        );
        assert_eq!(
            normalize_host("https://x.cloud.databricks.com:443/").unwrap(),
            "https://x.cloud.databricks.com"
        );
        assert_eq!(
            normalize_host("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_host("ftp://x").is_err());
        assert!(normalize_host("https://").is_err());
    }

    #[test]
    fn home_expansion() {
        assert_eq!(
            expand_home("~/a/cfg", Some(Path::new("/h"))),
            PathBuf::from("/h/a/cfg")
        );
        assert_eq!(
            expand_home("/abs", Some(Path::new("/h"))),
            PathBuf::from("/abs")
        );
    }
}
