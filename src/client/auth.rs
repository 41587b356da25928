//! Authentication headers: personal access tokens, and OAuth machine-to-machine tokens for
//! service principals (reference §9.5).
//!
//! OAuth M2M discovers the token endpoint the way current SDKs do —
//! `GET {host}/.well-known/databricks-config` → `oidc_endpoint` →
//! `GET {oidc_endpoint}/.well-known/oauth-authorization-server` → `token_endpoint` — falling back
//! to `{host}/oidc/.well-known/oauth-authorization-server` (older SDKs) when the host publishes
//! no metadata, or using `discovery_url` when configured. The token is requested with
//! `grant_type=client_credentials` and HTTP Basic client authentication, cached, and refreshed
//! shortly before it expires (40 s, or half its lifetime when shorter). Concurrent callers wait
//! for one refresh instead of each starting their own.

use super::config::Credentials;
use super::error::ClientError;
use super::transport::{Call, Transport};
use crate::hints::Hint;
use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine as _;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use zeroize::Zeroizing;

/// How long before expiry a token is refreshed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(40);

struct Cached {
    header: HeaderValue,
    expires_at: Instant,
    refresh_at: Instant,
}

#[derive(Default)]
struct M2mState {
    token_endpoint: Option<String>,
    token: Option<Cached>,
    /// Set when the token endpoint refused the client: the credentials will not fix
    /// themselves during a run, so later callers fail at once instead of asking again.
    refused: Option<(String, String)>,
}

pub(crate) struct M2m {
    client_id: String,
    client_secret: SecretString,
    discovery_url: Option<String>,
    scopes: String,
    state: Mutex<M2mState>,
}

/// The credentials of a client, ready to produce `Authorization` headers.
pub(crate) enum Auth {
    Pat(HeaderValue),
    M2m(Box<M2m>),
}

fn sensitive(value: &str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ClientError::Auth {
        call: "authorization header".into(),
        message: "the credential contains characters that cannot be sent in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

enum TokenError {
    /// The endpoint refused the client credentials (4xx): `(call, message)`.
    Refused(String, String),
    /// Anything else (unreachable, malformed answer).
    Other(ClientError),
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<Value>,
}

impl Auth {
    pub(crate) fn new(credentials: &Credentials) -> Result<Auth, ClientError> {
        Ok(match credentials {
            Credentials::Pat { token } => {
                let v = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
                Auth::Pat(sensitive(&v)?)
            }
            Credentials::OAuthM2m {
                client_id,
                client_secret,
                discovery_url,
                scopes,
            } => Auth::M2m(Box::new(M2m {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                discovery_url: discovery_url.clone(),
                scopes: scopes.join(" "),
                state: Mutex::new(M2mState::default()),
            })),
        })
    }

    pub(crate) fn auth_type(&self) -> &'static str {
        match self {
            Auth::Pat(_) => "pat",
            Auth::M2m(_) => "oauth-m2m",
        }
    }

    /// The `Authorization` header for the next request. Boxed with a declared `Send` type:
    /// the OAuth token request itself goes through the transport, which calls this.
    pub(crate) fn header<'a>(
        &'a self,
        t: &'a Transport,
    ) -> BoxFut<'a, Result<HeaderValue, ClientError>> {
        match self {
            Auth::Pat(v) => {
                let v = v.clone();
                Box::pin(async move { Ok(v) })
            }
            Auth::M2m(m) => Box::pin(m.header(t)),
        }
    }
}

impl M2m {
    async fn header(&self, t: &Transport) -> Result<HeaderValue, ClientError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.token {
            if Instant::now() < c.refresh_at {
                return Ok(c.header.clone());
            }
        }
        if let Some((call, message)) = &st.refused {
            return Err(ClientError::Auth {
                call: call.clone(),
                message: message.clone(),
            });
        }
        let endpoint = match st.token_endpoint.clone() {
            Some(e) => e,
            None => {
                let e = self.discover(t).await?;
                st.token_endpoint = Some(e.clone());
                e
            }
        };
        match self.request_token(t, &endpoint).await {
            Ok(c) => {
                let h = c.header.clone();
                st.token = Some(c);
                Ok(h)
            }
            Err(TokenError::Refused(call, message)) => {
                st.refused = Some((call.clone(), message.clone()));
                Err(ClientError::Auth { call, message })
            }
            Err(TokenError::Other(e)) => {
                // An unexpired token still works while the endpoint is briefly unreachable.
                if let Some(c) = &st.token {
                    if Instant::now() < c.expires_at {
                        tracing::warn!(target: "dbxport::client", error = %e, "oauth token refresh failed; using the current token until it expires");
                        return Ok(c.header.clone());
                    }
                }
                Err(e)
            }
        }
    }

    async fn discover(&self, t: &Transport) -> Result<String, ClientError> {
        let host = t.host().to_string();
        let discovery = match &self.discovery_url {
            Some(u) => u.clone(),
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
            message: format!("oauth m2m: cannot discover the token endpoint: {e}"),
        })?;
        doc.get("token_endpoint")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Auth {
                call: what,
                message: "oauth m2m: the discovery document has no token_endpoint".into(),
            })
    }

    async fn request_token(&self, t: &Transport, endpoint: &str) -> Result<Cached, TokenError> {
        let basic = Zeroizing::new(format!(
            "{}:{}",
            self.client_id,
            self.client_secret.expose_secret()
        ));
        let basic = Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(basic.as_bytes())
        ));
        let call = Call::post("(oauth token)")
            .url(endpoint)
            .unauthenticated()
            .safe_to_retry()
            .object(format!("client_id={}", self.client_id))
            .header(reqwest::header::AUTHORIZATION, basic.as_str())
            .form(vec![
                ("grant_type".into(), "client_credentials".into()),
                ("scope".into(), self.scopes.clone()),
            ]);
        let what = call.describe();
        let started = Instant::now();
        let resp: TokenResponse = t.json(call).await.map_err(|e| {
            match e.api().filter(|a| (400..500).contains(&a.status)) {
                Some(a) => TokenError::Refused(
                    what.clone(),
                    format!(
                        "oauth m2m: the token endpoint refused client {}: {} {}{}\n{}",
                        self.client_id,
                        a.status,
                        a.error_code
                            .as_deref()
                            .map(|c| format!("{c}: "))
                            .unwrap_or_default(),
                        a.message,
                        Hint::OauthClientRefused
                    ),
                ),
                None => TokenError::Other(ClientError::Auth {
                    call: what.clone(),
                    message: format!("oauth m2m: cannot obtain a token: {e}"),
                }),
            }
        })?;
        let access = resp.access_token.filter(|a| !a.is_empty()).ok_or_else(|| {
            TokenError::Other(ClientError::Auth {
                call: what.clone(),
                message: "oauth m2m: the token response has no access_token".into(),
            })
        })?;
        let access = Zeroizing::new(access);
        let kind = resp.token_type.unwrap_or_else(|| "Bearer".to_string());
        let lifetime = match resp.expires_in {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(3600));
        let header = sensitive(&Zeroizing::new(format!("{kind} {}", access.as_str())))
            .map_err(TokenError::Other)?;
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        tracing::debug!(target: "dbxport::client", lifetime_s = lifetime.as_secs(), "oauth token obtained");
        Ok(Cached {
            header,
            expires_at: started + lifetime,
            refresh_at: started + lifetime - margin,
        })
    }
}
