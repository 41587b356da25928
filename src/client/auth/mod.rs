//! Authentication: the headers every authenticated request carries, and the sources of
//! expiring tokens behind them (reference §9).
//!
//! A personal access token is a fixed header. Every other method is a `Source` of tokens that
//! expire: OAuth M2M (`m2m`), the Databricks CLI's sign-in (`cli`, its token cache in
//! `cache`), user-to-machine sign-in in a browser (`u2m`), and Azure (`azure`). A
//! `Refreshing` holds the current token, refreshes it shortly before it expires (40 s, or half
//! its lifetime when shorter) and makes concurrent callers wait for one refresh instead of each
//! starting their own. When the default chain leaves several methods that may apply, the first
//! that yields a token is kept for the run, as the SDKs do; when none does, the error lists
//! each method tried and why it did not apply.
//!
//! No token is ever logged, put in an error, or passed on a command line: header values are
//! marked sensitive, secrets are [`SecretString`]s, and temporary copies are zeroized.

pub(crate) mod azure;
pub(crate) mod cache;
pub(crate) mod cli;
pub(crate) mod m2m;
pub(crate) mod pkce;
pub(crate) mod u2m;

use super::config::Credentials;
use super::error::ClientError;
use super::transport::{Call, Transport};
use crate::clock::Clock;
use crate::hints::{Filled, Hint};
use age::secrecy::{ExposeSecret, SecretString};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};
use serde::Deserialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use std::time::Instant;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// How long before expiry a token is refreshed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(40);

/// Lifetime assumed for a token whose source states none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The headers of one authenticated request: `Authorization` first, then any the method adds
/// (Azure's management token and workspace resource id).
pub(crate) type AuthHeaders = Vec<(HeaderName, HeaderValue)>;

/// A token a source produced.
pub(crate) struct Token {
    pub headers: AuthHeaders,
    /// How long it stays valid from now, when the source knows.
    pub lifetime: Option<Duration>,
}

/// Why a source produced no token.
pub(crate) enum FetchError {
    /// The method does not apply here (a CLI not installed or not signed in): the chain moves
    /// on to the next method. Says why, and what would make it apply.
    Unavailable {
        /// Why it does not apply.
        reason: String,
        /// What to do about it.
        hint: Filled,
    },
    /// The credentials were refused; they will not fix themselves during a run, so later
    /// callers fail at once with the same message instead of asking again. `(call, message)`.
    Refused(String, String),
    /// Anything else (unreachable, malformed answer): a current token is kept while it lasts.
    Other(ClientError),
}

/// A source of expiring tokens.
pub(crate) trait Source: Send + Sync {
    /// The SDK's name for the method (`oauth-m2m`, `databricks-cli`, ...).
    fn auth_type(&self) -> &'static str;
    /// A fresh token (the current one is about to expire, or there is none yet). `renew`:
    /// the workspace refused the last token, so a cached one must not be handed out again.
    fn fetch<'a>(&'a self, t: &'a Transport, renew: bool) -> BoxFut<'a, Result<Token, FetchError>>;
}

/// A header value that is never printed (`Debug` shows `Sensitive`).
pub(crate) fn sensitive(value: &str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ClientError::Auth {
        call: "authorization header".into(),
        message: "the credential contains characters that cannot be sent in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// `Authorization: <type> <token>` as a sensitive header.
pub(crate) fn bearer(kind: &str, access: &str) -> Result<(HeaderName, HeaderValue), ClientError> {
    let kind = if kind.is_empty() { "Bearer" } else { kind };
    let v = Zeroizing::new(format!("{kind} {access}"));
    Ok((AUTHORIZATION, sensitive(&v)?))
}

/// An OAuth token endpoint's answer (RFC 6749 §5.1). `expires_in` may be a number or a
/// numeric string.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: Option<String>,
    pub token_type: Option<String>,
    pub expires_in: Option<Value>,
    pub refresh_token: Option<String>,
    pub expires_on: Option<Value>,
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        if let Some(a) = &mut self.access_token {
            a.zeroize();
        }
        if let Some(r) = &mut self.refresh_token {
            r.zeroize();
        }
    }
}

/// Seconds as a JSON number or numeric string.
pub(crate) fn seconds(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite())
}

impl TokenResponse {
    /// The lifetime the answer states (`expires_in`, else `expires_on` as epoch seconds).
    pub fn lifetime(&self) -> Option<Duration> {
        if let Some(s) = seconds(self.expires_in.as_ref()).filter(|s| *s > 0.0) {
            return Some(Duration::from_secs_f64(s));
        }
        let on = seconds(self.expires_on.as_ref())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(Duration::from_secs_f64((on - now).max(0.0)))
    }

    /// The access token, or an error naming the call.
    pub fn access(&self, call: &str, method: &str) -> Result<Zeroizing<String>, FetchError> {
        self.access_token
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(|a| Zeroizing::new(a.to_string()))
            .ok_or_else(|| {
                FetchError::Other(ClientError::Auth {
                    call: call.to_string(),
                    message: format!("{method}: the token response has no access_token"),
                })
            })
    }
}

/// How a token request's refusal is worded: `{method}: the token endpoint refused {subject}:
/// {error}: {description}` and `hint: {hint}`.
pub(crate) struct Wording<'a> {
    pub method: &'a str,
    pub subject: &'a str,
    pub hint: Filled,
}

/// Posts a form to an OAuth token endpoint. A 4xx answer is a refusal (its `error` and
/// `error_description` quoted, worded by `w`); anything else is [`FetchError::Other`].
pub(crate) async fn post_token_form(
    t: &Transport,
    endpoint: &str,
    object: String,
    basic: Option<&str>,
    form: Vec<(String, String)>,
    w: Wording<'_>,
) -> Result<TokenResponse, FetchError> {
    let Wording {
        method,
        subject,
        hint,
    } = w;
    let mut call = Call::post("(oauth token)")
        .url(endpoint)
        .unauthenticated()
        .safe_to_retry()
        .object(object)
        .form(form);
    if let Some(b) = basic {
        call = call.header(AUTHORIZATION, b);
    }
    let what = call.describe();
    t.json(call).await.map_err(
        |e| match e.api().filter(|a| (400..500).contains(&a.status)) {
            Some(a) => FetchError::Refused(
                what.clone(),
                format!(
                    "{method}: the token endpoint refused {subject}: {} {}{}\n{hint}",
                    a.status,
                    a.error_code
                        .as_deref()
                        .map(|c| format!("{c}: "))
                        .unwrap_or_default(),
                    a.message
                ),
            ),
            None => FetchError::Other(ClientError::Auth {
                call: what.clone(),
                message: format!("{method}: cannot obtain a token: {e}"),
            }),
        },
    )
}

struct Cached {
    headers: AuthHeaders,
    expires_at: Instant,
    refresh_at: Instant,
}

#[derive(Default)]
struct State {
    /// The source that gave the first token; kept for the run.
    chosen: Option<usize>,
    token: Option<Cached>,
    refused: Option<(String, String)>,
    /// The workspace refused the last token.
    renew: bool,
}

/// Expiring tokens from the first source of a chain that yields one.
pub(crate) struct Refreshing {
    sources: Vec<Box<dyn Source>>,
    state: Mutex<State>,
    /// What "expired" is measured by (`TransportOptions::clock`).
    clock: Clock,
}

/// The credentials of a client, ready to produce headers.
pub(crate) enum Auth {
    Pat(HeaderValue),
    Refreshing(Box<Refreshing>),
}

/// The sources for `credentials`, in chain order.
fn sources(credentials: &Credentials) -> Result<Vec<Box<dyn Source>>, ClientError> {
    Ok(match credentials {
        Credentials::Pat { .. } => Vec::new(),
        Credentials::OAuthM2m {
            client_id,
            client_secret,
            discovery_url,
            scopes,
        } => vec![Box::new(m2m::M2m::new(
            client_id.clone(),
            client_secret.clone(),
            discovery_url.clone(),
            scopes.join(" "),
        ))],
        Credentials::DatabricksCli(o) => vec![Box::new(cli::DatabricksCli::new(o.clone()))],
        Credentials::ExternalBrowser(o) => {
            vec![Box::new(u2m::ExternalBrowser::new(o.clone()))]
        }
        Credentials::Azure(o) => vec![Box::new(azure::Azure::new(o.clone()))],
        Credentials::Chain(list) => {
            let mut all = Vec::new();
            for c in list {
                all.extend(sources(c)?);
            }
            all
        }
    })
}

impl Auth {
    pub(crate) fn new(credentials: &Credentials, clock: Clock) -> Result<Auth, ClientError> {
        if let Credentials::Pat { token } = credentials {
            let v = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
            return Ok(Auth::Pat(sensitive(&v)?));
        }
        Ok(Auth::Refreshing(Box::new(Refreshing {
            sources: sources(credentials)?,
            state: Mutex::new(State::default()),
            clock,
        })))
    }

    pub(crate) fn auth_type(&self) -> &'static str {
        match self {
            Auth::Pat(_) => "pat",
            Auth::Refreshing(r) if r.sources.len() == 1 => r.sources[0].auth_type(),
            Auth::Refreshing(_) => "default",
        }
    }

    /// The headers for the next request. Boxed with a declared `Send` type: token requests
    /// themselves go through the transport, which calls this.
    pub(crate) fn headers<'a>(
        &'a self,
        t: &'a Transport,
    ) -> BoxFut<'a, Result<AuthHeaders, ClientError>> {
        match self {
            Auth::Pat(v) => {
                let v = v.clone();
                Box::pin(async move { Ok(vec![(AUTHORIZATION, v)]) })
            }
            Auth::Refreshing(r) => Box::pin(r.headers(t)),
        }
    }

    /// The workspace refused `used`: forget it, so that the next request fetches a new token.
    /// True when a new token may help (an expiring token; another caller may already have
    /// replaced it); false for a fixed token.
    pub(crate) async fn invalidate(&self, used: &AuthHeaders) -> bool {
        let Auth::Refreshing(r) = self else {
            return false;
        };
        let mut st = r.state.lock().await;
        if st
            .token
            .as_ref()
            .is_some_and(|c| c.headers.first().map(|h| &h.1) == used.first().map(|h| &h.1))
        {
            st.token = None;
            st.renew = true;
        }
        st.refused.is_none()
    }
}

impl Refreshing {
    async fn headers(&self, t: &Transport) -> Result<AuthHeaders, ClientError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.token {
            if self.clock.now() < c.refresh_at {
                return Ok(c.headers.clone());
            }
        }
        if let Some((call, message)) = &st.refused {
            return Err(ClientError::Auth {
                call: call.clone(),
                message: message.clone(),
            });
        }
        let started = self.clock.now();
        let renew = std::mem::take(&mut st.renew);
        let result = match st.chosen {
            Some(i) => self.sources[i].fetch(t, renew).await,
            None => {
                let mut tried = Vec::new();
                let mut found = None;
                for (i, s) in self.sources.iter().enumerate() {
                    match s.fetch(t, renew).await {
                        Err(FetchError::Unavailable { reason, hint }) => {
                            tracing::debug!(target: "dbxport::client", auth = s.auth_type(), reason = %reason, "auth method does not apply");
                            tried.push((s.auth_type(), reason, hint));
                        }
                        other => {
                            st.chosen = Some(i);
                            found = Some(other);
                            break;
                        }
                    }
                }
                match found {
                    Some(r) => r,
                    None => {
                        let message = match tried.as_slice() {
                            [(name, reason, hint)] => format!("{name}: {reason}\n{hint}"),
                            _ => format!(
                                "no authentication method applies; tried:\n{}\n{}",
                                tried
                                    .iter()
                                    .map(|(n, r, h)| format!("  {n}: {r} ({})", h.text()))
                                    .collect::<Vec<_>>()
                                    .join("\n"),
                                Hint::NoCredentials.with(&[("host", &t.host())])
                            ),
                        };
                        st.refused = Some(("authentication".into(), message.clone()));
                        return Err(ClientError::Auth {
                            call: "authentication".into(),
                            message,
                        });
                    }
                }
            }
        };
        match result {
            Ok(tok) => {
                let lifetime = tok.lifetime.unwrap_or(DEFAULT_LIFETIME);
                tracing::debug!(target: "dbxport::client", lifetime_s = lifetime.as_secs(), "token obtained");
                let h = tok.headers.clone();
                st.token = Some(Cached {
                    headers: tok.headers,
                    expires_at: started + lifetime,
                    refresh_at: started + refresh_after(lifetime),
                });
                Ok(h)
            }
            Err(FetchError::Refused(call, message)) => {
                st.refused = Some((call.clone(), message.clone()));
                Err(ClientError::Auth { call, message })
            }
            Err(FetchError::Unavailable { reason, hint }) => {
                // The method worked before and now cannot serve (signed out meanwhile).
                let call = "authentication".to_string();
                let message = format!("{reason}\n{hint}");
                st.refused = Some((call.clone(), message.clone()));
                Err(ClientError::Auth { call, message })
            }
            Err(FetchError::Other(e)) => {
                // An unexpired token still works while the endpoint is briefly unreachable.
                if let Some(c) = &st.token {
                    if self.clock.now() < c.expires_at {
                        tracing::warn!(target: "dbxport::client", error = %e, "token refresh failed; using the current token until it expires");
                        return Ok(c.headers.clone());
                    }
                }
                Err(e)
            }
        }
    }
}

/// When a token of `lifetime` is replaced: [`REFRESH_MARGIN`] before it expires, or halfway
/// through when it lives less than twice the margin.
fn refresh_after(lifetime: Duration) -> Duration {
    lifetime - REFRESH_MARGIN.min(lifetime / 2)
}

/// A secret held as text, for token caches and answers.
pub(crate) fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_before_they_expire() {
        let s = Duration::from_secs;
        assert_eq!(refresh_after(s(3600)), s(3560));
        assert_eq!(refresh_after(s(80)), s(40));
        assert_eq!(refresh_after(s(2)), s(1), "short lives: halfway");
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    fn answer(v: serde_json::Value) -> TokenResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn lifetimes_from_token_answers() {
        let l = |v| answer(v).lifetime();
        assert_eq!(
            l(serde_json::json!({"expires_in": 3599})),
            Some(Duration::from_secs(3599))
        );
        assert_eq!(
            l(serde_json::json!({"expires_in": "60"})),
            Some(Duration::from_secs(60))
        );
        // Entra v1 and managed identity: `expires_on`, epoch seconds as a string.
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let got = l(serde_json::json!({"expires_on": soon.to_string()})).unwrap();
        assert!(
            got > Duration::from_secs(590) && got <= Duration::from_secs(600),
            "{got:?}"
        );
        assert_eq!(
            l(serde_json::json!({"expires_on": "1"})),
            Some(Duration::ZERO),
            "past"
        );
        assert_eq!(l(serde_json::json!({"expires_in": "soon"})), None);
        assert_eq!(l(serde_json::json!({})), None);
    }

    #[test]
    fn a_missing_access_token_is_an_error_that_names_the_call() {
        let r = answer(serde_json::json!({"token_type": "Bearer"}));
        match r.access("POST https://x/token", "oauth m2m") {
            Err(FetchError::Other(e)) => assert!(e.to_string().contains("POST https://x/token")),
            _ => panic!("accepted"),
        }
    }
}
