//! Configuration resolution, following the Databricks SDK's unified auth order: flags, then
//! environment, then `~/.databrickscfg` profiles; conflicts; and secrets never shown.

use age::secrecy::ExposeSecret;
use dbxport::client::config::Source;
use dbxport::client::{AuthArgs, ClientOptions, Config, ConfigArgs, ConfigError, Credentials};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

struct Env(HashMap<&'static str, String>);

impl Env {
    fn new(pairs: &[(&'static str, &str)]) -> Env {
        Env(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }
    fn get(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |k| self.0.get(k).cloned()
    }
}

fn home_with(cfg: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(".databrickscfg"), cfg).unwrap();
    d
}

fn resolve(args: &ConfigArgs, env: &Env, home: Option<&Path>) -> Result<Config, ConfigError> {
    Config::resolve(args, &env.get(), home)
}

fn token(c: &Config) -> String {
    match &c.credentials {
        Credentials::Pat { token } => token.expose_secret().to_string(),
        other => panic!("expected pat, got {other:?}"),
    }
}

const CFG: &str = "\
[DEFAULT]
host = https://default.cloud.databricks.com
token = dapi-default

[prod]
host = prod.cloud.databricks.com/
token = dapi-prod
warehouse_id = wh-1
cluster_id = cl-1
retry_timeout_seconds = 42

[m2m]
host = https://m2m.cloud.databricks.com
client_id = sp-app-id
client_secret = sp-secret

[both]
host = https://both.cloud.databricks.com
token = dapi-both
client_id = sp-app-id
";

#[test]
fn flags_skip_the_config_file_entirely() {
    // A broken file proves it was never read.
    let home = home_with("this is [not valid\n");
    let args = ConfigArgs {
        host: Some("https://flag.example".into()),
        token: Some("dapi-flag".to_string().into()),
        ..ConfigArgs::default()
    };
    let c = resolve(&args, &Env::new(&[]), Some(home.path())).unwrap();
    assert_eq!(c.host, "https://flag.example");
    assert_eq!(token(&c), "dapi-flag");
    assert_eq!(c.config_file, None);
    assert_eq!(c.sources["token"], Source::Flag("--token"));
}

#[test]
fn environment_then_flags_precedence() {
    let env = Env::new(&[
        ("DATABRICKS_HOST", "https://env.example"),
        ("DATABRICKS_TOKEN", "dapi-env"),
    ]);
    let c = resolve(&ConfigArgs::default(), &env, None).unwrap();
    assert_eq!(c.host, "https://env.example");
    assert_eq!(token(&c), "dapi-env");
    assert_eq!(c.sources["host"], Source::Env("DATABRICKS_HOST"));
    let args = ConfigArgs {
        host: Some("https://flag.example".into()),
        ..ConfigArgs::default()
    };
    let c = resolve(&args, &env, None).unwrap();
    assert_eq!(c.host, "https://flag.example");
    assert_eq!(token(&c), "dapi-env");
}

#[test]
fn default_profile_when_nothing_else_is_set() {
    let home = home_with(CFG);
    let c = resolve(&ConfigArgs::default(), &Env::new(&[]), Some(home.path())).unwrap();
    assert_eq!(c.host, "https://default.cloud.databricks.com");
    assert_eq!(token(&c), "dapi-default");
    // The DEFAULT fallback is not reported as a named profile (as in the SDK).
    assert_eq!(c.profile, None);
}

#[test]
fn settings_default_profile_wins_over_default() {
    let home = home_with(&format!("[__settings__]\ndefault_profile = prod\n\n{CFG}"));
    let c = resolve(&ConfigArgs::default(), &Env::new(&[]), Some(home.path())).unwrap();
    assert_eq!(c.host, "https://prod.cloud.databricks.com");
    assert_eq!(c.profile.as_deref(), Some("prod"));
    assert_eq!(c.warehouse_id.as_deref(), Some("wh-1"));
    assert_eq!(c.cluster_id.as_deref(), Some("cl-1"));
    assert_eq!(c.retry_timeout, Some(Duration::from_secs(42)));
    assert_eq!(
        ClientOptions::from_config(&c).retry_budget,
        Duration::from_secs(42)
    );
}

#[test]
fn named_profile_by_flag_and_by_env() {
    let home = home_with(CFG);
    let args = ConfigArgs {
        profile: Some("prod".into()),
        ..ConfigArgs::default()
    };
    let c = resolve(&args, &Env::new(&[]), Some(home.path())).unwrap();
    assert_eq!(token(&c), "dapi-prod");
    assert!(matches!(&c.sources["token"], Source::File { profile, .. } if profile == "prod"));
    let env = Env::new(&[("DATABRICKS_CONFIG_PROFILE", "m2m")]);
    let c = resolve(&ConfigArgs::default(), &env, Some(home.path())).unwrap();
    match &c.credentials {
        Credentials::OAuthM2m {
            client_id,
            client_secret,
            scopes,
            ..
        } => {
            assert_eq!(client_id, "sp-app-id");
            assert_eq!(client_secret.expose_secret(), "sp-secret");
            assert_eq!(scopes, &vec!["all-apis".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.credentials.auth_type(), "oauth-m2m");
}

#[test]
fn profile_values_never_override_earlier_ones() {
    let home = home_with(CFG);
    let env = Env::new(&[("DATABRICKS_TOKEN", "dapi-env")]);
    let args = ConfigArgs {
        profile: Some("prod".into()),
        ..ConfigArgs::default()
    };
    let c = resolve(&args, &env, Some(home.path())).unwrap();
    assert_eq!(c.host, "https://prod.cloud.databricks.com");
    assert_eq!(token(&c), "dapi-env");
}

#[test]
fn missing_named_profile_is_an_error_missing_default_is_not() {
    let home = home_with(CFG);
    let args = ConfigArgs {
        profile: Some("staging".into()),
        ..ConfigArgs::default()
    };
    let err = resolve(&args, &Env::new(&[]), Some(home.path())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::ProfileNotFound { .. }), "{msg}");
    assert!(
        msg.contains("[staging]") && msg.contains("prod, m2m, both"),
        "{msg}"
    );
    assert!(msg.contains("--profile"), "{msg}");

    // No DEFAULT section: silently nothing, so the error is about the missing host.
    let home = home_with("[prod]\nhost = https://p\ntoken = t\n");
    let err = resolve(&ConfigArgs::default(), &Env::new(&[]), Some(home.path())).unwrap_err();
    assert!(matches!(err, ConfigError::NoHost { .. }), "{err}");
    assert!(err.to_string().contains("--host"));
}

#[test]
fn missing_file_is_named_when_it_matters() {
    let home = tempfile::tempdir().unwrap();
    let args = ConfigArgs {
        profile: Some("prod".into()),
        ..ConfigArgs::default()
    };
    let err = resolve(&args, &Env::new(&[]), Some(home.path())).unwrap_err();
    assert!(
        err.to_string().contains(".databrickscfg does not exist"),
        "{err}"
    );
}

#[test]
fn config_file_from_env_and_flag() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("custom.cfg");
    std::fs::write(&p, CFG).unwrap();
    let env = Env::new(&[
        ("DATABRICKS_CONFIG_FILE", p.to_str().unwrap()),
        ("DATABRICKS_CONFIG_PROFILE", "prod"),
    ]);
    let c = resolve(&ConfigArgs::default(), &env, None).unwrap();
    assert_eq!(token(&c), "dapi-prod");
    assert_eq!(c.config_file.as_deref(), Some(p.as_path()));
    let args = ConfigArgs {
        config_file: Some(p.clone()),
        ..ConfigArgs::default()
    };
    let c = resolve(&args, &Env::new(&[]), None).unwrap();
    assert_eq!(token(&c), "dapi-default");
}

#[test]
fn conflicting_methods_are_an_error_unless_auth_type_chooses() {
    let env = Env::new(&[
        ("DATABRICKS_HOST", "https://h.example"),
        ("DATABRICKS_TOKEN", "dapi-x"),
        ("DATABRICKS_CLIENT_ID", "sp"),
    ]);
    let err = resolve(&ConfigArgs::default(), &env, None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("more than one authorization method configured: oauth and pat"),
        "{msg}"
    );
    assert!(
        msg.contains("DATABRICKS_TOKEN") && msg.contains("--auth-type"),
        "{msg}"
    );
    assert!(!msg.contains("dapi-x"), "{msg}");
    let args = ConfigArgs {
        auth_type: Some("pat".into()),
        ..ConfigArgs::default()
    };
    let c = resolve(&args, &env, None).unwrap();
    assert_eq!(token(&c), "dapi-x");

    // The same conflict inside one profile.
    let home = home_with(CFG);
    let args = ConfigArgs {
        profile: Some("both".into()),
        ..ConfigArgs::default()
    };
    let err = resolve(&args, &Env::new(&[]), Some(home.path())).unwrap_err();
    assert!(
        matches!(err, ConfigError::MultipleAuthMethods { .. }),
        "{err}"
    );
}

#[test]
fn incomplete_and_unsupported_methods() {
    let env = Env::new(&[
        ("DATABRICKS_HOST", "h.example"),
        ("DATABRICKS_CLIENT_ID", "sp"),
    ]);
    let err = resolve(&ConfigArgs::default(), &env, None).unwrap_err();
    assert!(
        err.to_string().contains("client_secret is not set"),
        "{err}"
    );
    // An Azure client id without a secret, on a host that is not Azure: no method applies.
    let env = Env::new(&[("DATABRICKS_HOST", "h.example"), ("ARM_CLIENT_ID", "az")]);
    let err = resolve(&ConfigArgs::default(), &env, None).unwrap_err();
    assert!(matches!(err, ConfigError::NoCredentials { .. }), "{err}");
    let env = Env::new(&[
        ("DATABRICKS_HOST", "h.example"),
        ("DATABRICKS_USERNAME", "u"),
        ("DATABRICKS_PASSWORD", "p"),
    ]);
    let err = resolve(&ConfigArgs::default(), &env, None).unwrap_err();
    assert!(matches!(err, ConfigError::UnsupportedAuth { .. }), "{err}");
    let env = Env::new(&[("DATABRICKS_HOST", "h.example")]);
    let err = resolve(&ConfigArgs::default(), &env, None).unwrap_err();
    assert!(matches!(err, ConfigError::NoCredentials { .. }), "{err}");
    assert!(err.to_string().contains("DATABRICKS_TOKEN"));
    let home = home_with("[__settings__]\ndefault_profile = __settings__\n");
    let err = resolve(&ConfigArgs::default(), &Env::new(&[]), Some(home.path())).unwrap_err();
    assert!(matches!(err, ConfigError::ReservedProfile { .. }), "{err}");
}

#[test]
fn host_is_normalised() {
    let env = Env::new(&[
        ("DATABRICKS_HOST", "adb-123.4.azuredatabricks.net:443/"),
        ("DATABRICKS_TOKEN", "t"),
    ]);
    let c = resolve(&ConfigArgs::default(), &env, None).unwrap();
    assert_eq!(c.host, "https://adb-123.4.azuredatabricks.net");
    let env = Env::new(&[("DATABRICKS_HOST", "ftp://x"), ("DATABRICKS_TOKEN", "t")]);
    assert!(matches!(
        resolve(&ConfigArgs::default(), &env, None).unwrap_err(),
        ConfigError::InvalidHost { .. }
    ));
}

#[test]
fn secrets_never_appear_in_debug_or_messages() {
    let home = home_with(CFG);
    let env = Env::new(&[("DATABRICKS_CONFIG_PROFILE", "m2m")]);
    let c = resolve(&ConfigArgs::default(), &env, Some(home.path())).unwrap();
    let shown = format!("{c:?} {} {:?}", c.describe(), c.credentials);
    assert!(!shown.contains("sp-secret"), "{shown}");
    let args = ConfigArgs {
        host: Some("https://h".into()),
        token: Some("dapi-very-secret".to_string().into()),
        ..ConfigArgs::default()
    };
    let c = resolve(&args, &Env::new(&[]), None).unwrap();
    let shown = format!("{args:?} {c:?} {}", c.describe());
    assert!(!shown.contains("dapi-very-secret"), "{shown}");
}

/// Secrets given as flags (the command line builds `AuthArgs` from them, `cli::flags`) are
/// warned about and never shown.
#[test]
fn auth_args_warn_and_redact() {
    let auth = AuthArgs {
        host: Some("https://h".into()),
        token: Some("dapi-on-argv".to_string().into()),
        client_secret: Some("cs-on-argv".to_string().into()),
        ..AuthArgs::default()
    };
    let w = auth.warnings();
    assert_eq!(w.len(), 2);
    assert!(w[0].contains("visible to other processes") && w[0].contains("DATABRICKS_TOKEN"));
    let shown = format!("{auth:?}");
    assert!(
        !shown.contains("dapi-on-argv") && !shown.contains("cs-on-argv"),
        "{shown}"
    );
    let c = resolve(
        &ConfigArgs {
            client_secret: None,
            ..auth.to_config_args()
        },
        &Env::new(&[]),
        None,
    )
    .unwrap();
    assert_eq!(token(&c), "dapi-on-argv");
    let quiet = AuthArgs {
        profile: Some("p".into()),
        ..AuthArgs::default()
    };
    assert!(quiet.warnings().is_empty());
}

/// The Azure methods, their cloud's login endpoint (`ARM_ENVIRONMENT`, else the host's DNS
/// zone; `AZURE_AUTHORITY_HOST` overrides it) and the SDKs' order among them.
#[test]
fn azure_methods_and_clouds() {
    use dbxport::client::{AzureMethod, MsiEndpoint};
    let azure = |pairs: &[(&'static str, &str)]| -> dbxport::client::AzureOptions {
        match resolve(&ConfigArgs::default(), &Env::new(pairs), None)
            .unwrap()
            .credentials
        {
            Credentials::Azure(a) => a,
            other => panic!("{}", other.auth_type()),
        }
    };
    let sp = [
        ("DATABRICKS_HOST", "adb-1.2.azuredatabricks.net"),
        ("ARM_CLIENT_ID", "app"),
        ("ARM_CLIENT_SECRET", "s3cret"),
    ];
    let a = azure(&sp);
    assert!(matches!(
        a.method,
        AzureMethod::ClientSecret {
            tenant_id: None,
            ..
        }
    ));
    assert_eq!(a.cloud.login_endpoint, "https://login.microsoftonline.com/");
    assert_eq!(
        a.cloud.management_endpoint,
        "https://management.core.windows.net/"
    );
    assert_eq!(a.resource, "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d");
    for (env, login) in [
        ("usgov", "https://login.microsoftonline.us/"),
        ("USGOVERNMENT", "https://login.microsoftonline.us/"),
        ("AzureChinaCloud", "https://login.chinacloudapi.cn/"),
        ("public", "https://login.microsoftonline.com/"),
    ] {
        let mut p = sp.to_vec();
        p.push(("ARM_ENVIRONMENT", env));
        assert_eq!(azure(&p).cloud.login_endpoint, login, "{env}");
    }
    let gov = azure(&[
        ("DATABRICKS_HOST", "adb-1.2.databricks.azure.us"),
        ("ARM_CLIENT_ID", "app"),
        ("ARM_CLIENT_SECRET", "s"),
    ]);
    assert_eq!(
        gov.cloud.management_endpoint,
        "https://management.core.usgovcloudapi.net/"
    );
    let mut p = sp.to_vec();
    p.push(("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9"));
    assert_eq!(azure(&p).cloud.login_endpoint, "http://127.0.0.1:9/");
    let mut p = sp.to_vec();
    p.push(("ARM_ENVIRONMENT", "mars"));
    assert!(matches!(
        resolve(&ConfigArgs::default(), &Env::new(&p), None).unwrap_err(),
        ConfigError::InvalidValue {
            attribute: "azure_environment",
            ..
        }
    ));

    // A managed identity comes before a client secret; IDENTITY_ENDPOINT before IMDS.
    let mut p = sp.to_vec();
    p.push(("ARM_USE_MSI", "true"));
    let msi = azure(&p);
    assert!(matches!(
        msi.method,
        AzureMethod::Msi { endpoint: MsiEndpoint::Imds { ref base }, .. } if base == "http://169.254.169.254"
    ));
    p.push(("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"));
    p.push(("IDENTITY_HEADER", "h"));
    assert!(matches!(
        azure(&p).method,
        AzureMethod::Msi {
            endpoint: MsiEndpoint::IdentityEndpoint { .. },
            ..
        }
    ));
    // Azure attributes beside a token are two methods.
    let err = resolve(
        &ConfigArgs::default(),
        &Env::new(&[
            ("DATABRICKS_HOST", "h"),
            ("DATABRICKS_TOKEN", "t"),
            ("ARM_CLIENT_ID", "a"),
        ]),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::MultipleAuthMethods { .. }),
        "{err}"
    );
}

/// `auth_type = databricks-cli` as `databricks auth login` writes it; external-browser only
/// when asked for; with nothing configured, the chain lists every method it tried.
#[test]
fn cli_browser_and_the_default_chain() {
    let home =
        home_with("[dev]\nhost = https://dbc-1.cloud.databricks.com\nauth_type = databricks-cli\n");
    let args = ConfigArgs {
        profile: Some("dev".into()),
        ..ConfigArgs::default()
    };
    let c = resolve(
        &args,
        &Env::new(&[("PATH", "/nonexistent")]),
        Some(home.path()),
    )
    .unwrap();
    let Credentials::DatabricksCli(o) = &c.credentials else {
        panic!("{}", c.credentials.auth_type())
    };
    assert!(o.cli_path.is_none());
    assert_eq!(o.cache.keys, ["dev", "https://dbc-1.cloud.databricks.com"]);
    assert_eq!(
        o.cache.file,
        home.path().join(".databricks/token-cache.json")
    );
    assert_eq!(
        o.cache.lock,
        home.path().join(".databricks/token-cache.lock")
    );

    let env = Env::new(&[
        ("DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com"),
        ("DATABRICKS_AUTH_TYPE", "external-browser"),
    ]);
    let c = resolve(&ConfigArgs::default(), &env, Some(home.path())).unwrap();
    let Credentials::ExternalBrowser(b) = &c.credentials else {
        panic!("{}", c.credentials.auth_type())
    };
    assert_eq!(b.client_id, "databricks-cli");
    assert_eq!(b.scopes, ["all-apis", "offline_access"]);
    assert_eq!(b.settings.redirect_port, 8020);

    // Nothing configured: each method of the chain, and why it does not apply.
    let empty = tempfile::tempdir().unwrap();
    let env = Env::new(&[
        ("DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com"),
        ("PATH", "/nonexistent"),
    ]);
    let err = resolve(&ConfigArgs::default(), &env, Some(empty.path())).unwrap_err();
    let msg = err.to_string();
    for m in [
        "pat:",
        "oauth-m2m:",
        "azure-msi, azure-client-secret:",
        "azure-cli:",
        "external-browser:",
        "databricks-cli:",
    ] {
        assert!(msg.contains(m), "{m}: {msg}");
    }
    assert!(
        msg.contains("databricks auth login --host https://dbc-1.cloud.databricks.com"),
        "{msg}"
    );

    // A sign-in in the CLI's cache is found without the CLI.
    std::fs::create_dir_all(empty.path().join(".databricks")).unwrap();
    std::fs::write(
        empty.path().join(".databricks/token-cache.json"),
        r#"{"version":1,"tokens":{"https://dbc-1.cloud.databricks.com":{"access_token":"a"}}}"#,
    )
    .unwrap();
    let c = resolve(&ConfigArgs::default(), &env, Some(empty.path())).unwrap();
    assert_eq!(c.credentials.auth_type(), "databricks-cli");
    assert!(!format!("{c:?}").contains("\"a\""));
}
