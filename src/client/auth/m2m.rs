//! OAuth machine-to-machine for Databricks service principals (reference §9.5).
//!
//! The token endpoint is discovered the way current SDKs do it —
//! `GET {host}/.well-known/databricks-config` → `oidc_endpoint` →
//! `GET {oidc_endpoint}/.well-known/oauth-authorization-server` → `token_endpoint` — falling
//! back to `{host}/oidc/.well-known/oauth-authorization-server` (older SDKs) when the host
//! publishes no metadata, or using `discovery_url` when configured. The token is requested with
//! `grant_type=client_credentials` and HTTP Basic client authentication.

use super::{post_token_form, BoxFut, FetchError, Source, Token, Wording};
use crate::client::error::ClientError;
use crate::client::transport::{Call, Transport};
use crate::hints::Hint;
use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine as _;
use serde_json::Value;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// The endpoints an OpenID discovery document names.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub token: String,
    pub authorization: Option<String>,
}

/// Discovers the workspace's OAuth endpoints (`discovery_url` when given).
pub(crate) async fn discover(
    t: &Transport,
    discovery_url: Option<&str>,
    method: &str,
) -> Result<Endpoints, ClientError> {
    let host = t.host().to_string();
    let discovery = match discovery_url {
        Some(u) => u.to_string(),
        None => {
            let meta: Result<Value, ClientError> = t
                .json(
                    Call::get("/.well-known/databricks-config")
                        .unauthenticated()
                        .object("(oauth discovery)"),
                )
                .await;
            match meta {
                Ok(v) => match v.get("oidc_endpoint").and_then(Value::as_str) {
                    Some(oidc) => format!(
                        "{}/.well-known/oauth-authorization-server",
                        oidc.trim_end_matches('/')
                    ),
                    None => format!("{host}/oidc/.well-known/oauth-authorization-server"),
                },
                Err(e) if e.api().is_some() => {
                    tracing::debug!(target: "dbxport::client", error = %e, "no host metadata; using the default OIDC discovery path");
                    format!("{host}/oidc/.well-known/oauth-authorization-server")
                }
                Err(e) => return Err(e),
            }
        }
    };
    let call = Call::get("(oauth discovery)")
        .url(discovery)
        .unauthenticated();
    let what = call.describe();
    let doc: Value = t.json(call).await.map_err(|e| ClientError::Auth {
        call: what.clone(),
        message: format!("{method}: cannot discover the token endpoint: {e}"),
    })?;
    let token = doc
        .get("token_endpoint")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ClientError::Auth {
            call: what,
            message: format!("{method}: the discovery document has no token_endpoint"),
        })?;
    Ok(Endpoints {
        token,
        authorization: doc
            .get("authorization_endpoint")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Discovered once, then kept for the run.
#[derive(Default)]
pub(crate) struct EndpointCache(Mutex<Option<Endpoints>>);

impl EndpointCache {
    pub(crate) async fn get(
        &self,
        t: &Transport,
        discovery_url: Option<&str>,
        method: &str,
    ) -> Result<Endpoints, ClientError> {
        let mut e = self.0.lock().await;
        if let Some(e) = &*e {
            return Ok(e.clone());
        }
        let found = discover(t, discovery_url, method).await?;
        *e = Some(found.clone());
        Ok(found)
    }
}

pub(crate) struct M2m {
    client_id: String,
    client_secret: SecretString,
    discovery_url: Option<String>,
    scopes: String,
    endpoints: EndpointCache,
}

impl M2m {
    pub(crate) fn new(
        client_id: String,
        client_secret: SecretString,
        discovery_url: Option<String>,
        scopes: String,
    ) -> M2m {
        M2m {
            client_id,
            client_secret,
            discovery_url,
            scopes,
            endpoints: EndpointCache::default(),
        }
    }

    async fn token(&self, t: &Transport) -> Result<Token, FetchError> {
        let endpoints = self
            .endpoints
            .get(t, self.discovery_url.as_deref(), "oauth m2m")
            .await
            .map_err(FetchError::Other)?;
        let basic = Zeroizing::new(format!(
            "{}:{}",
            self.client_id,
            self.client_secret.expose_secret()
        ));
        let basic = Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(basic.as_bytes())
        ));
        let resp = post_token_form(
            t,
            &endpoints.token,
            format!("client_id={}", self.client_id),
            Some(&basic),
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("scope".into(), self.scopes.clone()),
            ],
            Wording {
                method: "oauth m2m",
                subject: &format!("client {}", self.client_id),
                hint: Hint::OauthClientRefused.with(&[]),
            },
        )
        .await?;
        let what = format!("POST {} (client_id={})", endpoints.token, self.client_id);
        let access = resp.access(&what, "oauth m2m")?;
        let kind = resp.token_type.clone().unwrap_or_default();
        Ok(Token {
            headers: vec![super::bearer(&kind, &access).map_err(FetchError::Other)?],
            lifetime: resp.lifetime(),
        })
    }
}

impl Source for M2m {
    fn auth_type(&self) -> &'static str {
        "oauth-m2m"
    }

    fn fetch<'a>(&'a self, t: &'a Transport, renew: bool) -> BoxFut<'a, Result<Token, FetchError>> {
        // Every fetch asks the endpoint anew.
        let _ = renew;
        Box::pin(self.token(t))
    }
}
