//! `databricks-cli`: the sign-in `databricks auth login` made (it writes
//! `auth_type = databricks-cli` into the profile).
//!
//! Where the CLI is installed, it is asked — `databricks auth token --profile P` (or `--host H`)
//! — as the SDKs do, so that its own storage and refresh rules apply; the token comes back on
//! its standard output, never on a command line. Without the CLI, its token cache is read and
//! refreshed directly ([`super::cache`]), with the CLI's public OAuth client `databricks-cli`.

use super::cache::{CacheSource, Cached};
use super::m2m::EndpointCache;
use super::{bearer, BoxFut, FetchError, Source, Token};
use crate::client::config::CliOptions;
use crate::client::error::ClientError;
use crate::client::transport::Transport;
use crate::hints::Hint;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// How long `databricks auth token` may take (it may refresh over the network).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct DatabricksCli {
    options: CliOptions,
    cache: CacheSource,
}

impl DatabricksCli {
    pub(crate) fn new(options: CliOptions) -> DatabricksCli {
        let host = options.cache.keys.last().cloned().unwrap_or_default();
        let target = match &options.profile {
            Some(p) => format!("--profile {p}"),
            None => format!("--host {host}"),
        };
        let relogin = Hint::CliSignInAgain.with(&[("target", &target)]);
        let cache = CacheSource {
            cache: options.cache.clone(),
            client_id: "databricks-cli".into(),
            client_secret: None,
            discovery_url: options.discovery_url.clone(),
            endpoints: EndpointCache::default(),
            method: "databricks-cli",
            relogin,
        };
        DatabricksCli { options, cache }
    }

    async fn token(&self, t: &Transport, renew: bool) -> Result<Token, FetchError> {
        if let Some(cli) = &self.options.cli_path {
            return self.ask_cli(t, cli).await;
        }
        match self.cache.token(t, renew).await? {
            Cached::Token(tok) => Ok(tok),
            Cached::Missing(file) => Err(FetchError::Unavailable {
                reason: format!(
                    "no `databricks` CLI on PATH, and no sign-in for {} in {}",
                    self.options.cache.keys.join(" or "),
                    file.display()
                ),
                hint: Hint::CliNoSignIn.with(&[("host", &t.host())]),
            }),
        }
    }

    async fn ask_cli(&self, t: &Transport, cli: &std::path::Path) -> Result<Token, FetchError> {
        let mut cmd = tokio::process::Command::new(cli);
        cmd.args(["auth", "token"]);
        match &self.options.profile {
            Some(p) => cmd.args(["--profile", p]),
            None => cmd.args(["--host", t.host()]),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let shown = format!(
            "{} auth token {}",
            cli.display(),
            match &self.options.profile {
                Some(p) => format!("--profile {p}"),
                None => format!("--host {}", t.host()),
            }
        );
        tracing::debug!(target: "dbxport::client", command = %shown, "asking the Databricks CLI for a token");
        let out = match tokio::time::timeout(CLI_TIMEOUT, cmd.output()).await {
            Err(_) => {
                return Err(FetchError::Other(ClientError::Auth {
                    call: shown,
                    message: format!(
                        "databricks-cli: no answer within {} s",
                        CLI_TIMEOUT.as_secs()
                    ),
                }))
            }
            Ok(Err(e)) => {
                return Err(FetchError::Unavailable {
                    reason: format!("cannot run {}: {e}", cli.display()),
                    hint: Hint::CliNotInstalled.with(&[]),
                })
            }
            Ok(Ok(o)) => o,
        };
        let stdout = Zeroizing::new(out.stdout);
        if !out.status.success() {
            // The CLI's messages name the profile or host, never a token.
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let relogin = self.cache.relogin.clone();
            if stderr.contains("OAuth is not configured") || stderr.contains("not found") {
                return Err(FetchError::Unavailable {
                    reason: format!("`{shown}` found no sign-in: {stderr}"),
                    hint: relogin,
                });
            }
            return Err(FetchError::Refused(
                shown,
                format!("databricks-cli: the Databricks CLI could not give a token: {stderr}\n{relogin}"),
            ));
        }
        parse_cli_token(&stdout).map_err(|m| {
            FetchError::Other(ClientError::Auth {
                call: shown,
                message: format!("databricks-cli: {m}"),
            })
        })
    }
}

/// `databricks auth token`'s answer: `{"access_token", "token_type", "expiry"}`.
fn parse_cli_token(stdout: &[u8]) -> Result<Token, String> {
    let v: Value = serde_json::from_slice(stdout)
        .map_err(|_| "`databricks auth token` did not answer JSON".to_string())?;
    let access = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .ok_or("`databricks auth token` answered no access_token")?;
    let kind = v
        .get("token_type")
        .and_then(Value::as_str)
        .unwrap_or("Bearer");
    let lifetime = match v.get("expiry").and_then(Value::as_str) {
        Some(e) => {
            let at = OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    format!("`databricks auth token` answered an expiry `{e}` that is not RFC 3339")
                })?;
            Some(Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO))
        }
        None => None,
    };
    Ok(Token {
        headers: vec![bearer(kind, access).map_err(|e| e.to_string())?],
        lifetime,
    })
}

impl Source for DatabricksCli {
    fn auth_type(&self) -> &'static str {
        "databricks-cli"
    }

    fn fetch<'a>(&'a self, t: &'a Transport, renew: bool) -> BoxFut<'a, Result<Token, FetchError>> {
        Box::pin(self.token(t, renew))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_answers() {
        let t = parse_cli_token(
            br#"{"access_token":"abc","token_type":"Bearer","expiry":"2099-01-01T00:00:00.5+02:00"}"#,
        )
        .unwrap();
        assert!(t.lifetime.unwrap() > Duration::from_secs(3600));
        assert!(t.headers[0].1.is_sensitive());
        assert!(parse_cli_token(b"not json").is_err());
        assert!(parse_cli_token(br#"{"token_type":"Bearer"}"#).is_err());
        let msg = parse_cli_token(br#"{"access_token":"secret-x","expiry":"tomorrow"}"#)
            .err()
            .unwrap();
        assert!(!msg.contains("secret-x"), "{msg}");
    }
}
