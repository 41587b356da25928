//! Host metadata and the workspace's OAuth server: `/.well-known/databricks-config` (advertising
//! the OIDC endpoint and workspace id), the authorization-server discovery document,
//! `/oidc/v1/authorize` (user-to-machine sign-in with PKCE, approved by a test user over HTTP),
//! and `POST /oidc/v1/token` for the `client_credentials`, `authorization_code` and
//! `refresh_token` grants. Access tokens expire after `oauth_token_ttl_secs`; refresh tokens
//! are rotated on every use.
//!
//! The sign-in page stands in for the workspace's login screen: `GET /oidc/v1/authorize`
//! answers a page holding a `request_id`, and `POST /oidc/v1/authorize/consent` with that id, a
//! `user_name` of the seed and `decision=approve` (or `deny`) redirects to the client's
//! `redirect_uri` as a browser would be. A test drives both with plain HTTP.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::{self, form_decode, mark, Body, Caller, Ctx, Fields, Params};
use super::state::{
    Audience, AuthorizationCode, Issued, PendingAuthorization, RefreshGrant, Shared, State,
};

/// The public client the Databricks CLI and SDKs sign users in with (no secret).
pub(crate) const PUBLIC_CLIENT: &str = "databricks-cli";
/// How long an authorization request waits for approval.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long an authorization code may be redeemed.
const CODE_TTL: Duration = Duration::from_secs(300);

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/.well-known/databricks-config", get(host_metadata))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(discovery),
        )
        .route("/oidc/v1/authorize", get(authorize))
        .route("/oidc/v1/authorize/consent", post(consent))
        .route("/oidc/v1/token", post(token))
        .route("/emulator/oauth/revoke", post(revoke))
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

async fn host_metadata(ctx: Ctx, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    extract::json(json!({
        "oidc_endpoint": format!("{base}/oidc"),
        "workspace_id": ctx.shared.settings.workspace_id,
    }))
}

async fn discovery(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    extract::json(json!({
        "issuer": format!("{base}/oidc"),
        "authorization_endpoint": format!("{base}/oidc/v1/authorize"),
        "token_endpoint": format!("{base}/oidc/v1/token"),
        "jwks_uri": format!("{base}/oidc/jwks.json"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["all-apis", "offline_access", "sql"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    }))
}

pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    OAuthError::new(status, error, description).into_response()
}

/// An OAuth error answer (`{error, error_description}`), kept small until it is sent.
pub(crate) struct OAuthError(Box<(StatusCode, String, String)>);

impl OAuthError {
    pub(crate) fn new(status: StatusCode, error: &str, description: &str) -> OAuthError {
        OAuthError(Box::new((
            status,
            error.to_string(),
            description.to_string(),
        )))
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = *self.0;
        (
            status,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    }
}

/// `client_id` and `client_secret` from HTTP Basic, or from the form (the secret may be
/// absent: public clients send none).
fn client_auth(headers: &HeaderMap, form: &Params) -> Option<(String, Option<String>)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (id, secret) = text.split_once(':')?;
        // RFC 6749 §2.3.1: both halves are form-encoded before they are joined.
        return Some((form_decode(id), Some(form_decode(secret))));
    }
    Some((
        form.get("client_id")?.to_string(),
        form.get("client_secret").map(str::to_string),
    ))
}

/// Who a client is: a confidential client of the seed (whose secret must match), or the
/// public client. `Err` is the answer to give.
fn identify_client(
    st: &State,
    id: &str,
    secret: Option<&str>,
) -> Result<Option<Caller>, OAuthError> {
    let refused = || {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        )
    };
    if let Some(c) = st.oauth_clients.iter().find(|c| c.client_id == id) {
        return match secret {
            Some(s) if s == c.client_secret => {
                Ok(Some(Caller::ServicePrincipal(c.application_id.clone())))
            }
            _ => Err(refused()),
        };
    }
    if id == PUBLIC_CLIENT && secret.is_none_or(str::is_empty) {
        return Ok(None);
    }
    Err(refused())
}

/// RFC 8252 §7.3: a native app's loopback redirect may use any port.
fn loopback_redirect(uri: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(uri) else {
        return false;
    };
    u.scheme() == "http"
        && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
        && u.fragment().is_none()
}

/// PKCE S256 (RFC 7636 §4.6): the challenge is the unpadded base64url SHA-256 of the verifier.
pub(crate) fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let ok_chars = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    (43..=128).contains(&verifier.len())
        && ok_chars
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()))
            == challenge
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut u = match reqwest::Url::parse(base) {
        Ok(u) => u,
        Err(_) => return base.to_string(),
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><html><head><title>Sign in - Databricks emulator</title></head><body>{body}</body></html>"),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn authorize(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref().unwrap_or(""));
    let client_id = p.get("client_id").unwrap_or("").to_string();
    let redirect_uri = p.get("redirect_uri").unwrap_or("").to_string();
    let mut st = ctx.state();
    let known =
        client_id == PUBLIC_CLIENT || st.oauth_clients.iter().any(|c| c.client_id == client_id);
    // Never redirect to a URI that cannot be trusted: the error is shown instead.
    if !known {
        return page(
            StatusCode::BAD_REQUEST,
            format!(
                "<p>invalid_client: unknown client_id `{}`</p>",
                escape(&client_id)
            ),
        );
    }
    if !loopback_redirect(&redirect_uri) {
        return page(
            StatusCode::BAD_REQUEST,
            format!(
                "<p>invalid_request: redirect_uri `{}` is not a loopback http address</p>",
                escape(&redirect_uri)
            ),
        );
    }
    let state = p.get("state").map(str::to_string);
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = state.as_deref() {
            pairs.push(("state", s));
        }
        redirect(&with_query(&redirect_uri, &pairs))
    };
    if p.get("response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = p.get("code_challenge").filter(|c| !c.is_empty()) else {
        return fail("invalid_request", "code_challenge is required (PKCE)");
    };
    if p.get("code_challenge_method") != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let now = st.clock.now();
    st.oauth.pending.retain(|_, a| a.expires > now);
    let request_id = st.mint("req-");
    st.oauth.pending.insert(
        request_id.clone(),
        PendingAuthorization {
            client_id: client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            code_challenge: challenge.to_string(),
            scope: p.get("scope").unwrap_or("all-apis").to_string(),
            expires: now + PENDING_TTL,
        },
    );
    let users: String = st
        .principals
        .users
        .iter()
        .map(|u| format!("<option>{}</option>", escape(&u.user_name)))
        .collect();
    page(
        StatusCode::OK,
        format!(
            "<h1>Sign in to the emulated workspace</h1><p>{} asks for: {}</p>\
             <form method=\"post\" action=\"/oidc/v1/authorize/consent\">\
             <input type=\"hidden\" name=\"request_id\" value=\"{}\">\
             <select name=\"user_name\">{users}</select>\
             <button name=\"decision\" value=\"approve\">Allow</button>\
             <button name=\"decision\" value=\"deny\">Deny</button></form>",
            escape(&client_id),
            escape(p.get("scope").unwrap_or("all-apis")),
            escape(&request_id)
        ),
    )
}

async fn consent(ctx: Ctx, body: Bytes) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let request_id = form.get("request_id").unwrap_or("");
    let mut st = ctx.state();
    let Some(req) = st
        .oauth
        .pending
        .remove(request_id)
        .filter(|r| r.expires > st.clock.now())
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "<p>invalid_request: this sign-in request is unknown or has expired; start again</p>"
                .into(),
        );
    };
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let user = form.get("user_name").unwrap_or("").to_string();
    if form.get("decision") != Some("approve") {
        pairs.push(("error", "access_denied".into()));
        pairs.push(("error_description", "The user denied the request".into()));
    } else if !st.principals.users.iter().any(|u| u.user_name == user) {
        return page(
            StatusCode::BAD_REQUEST,
            format!("<p>no user `{}` in this workspace</p>", escape(&user)),
        );
    } else {
        let code = st.mint("code-");
        let expires = st.clock.now() + CODE_TTL;
        st.oauth.codes.insert(
            code.clone(),
            AuthorizationCode {
                client_id: req.client_id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                code_challenge: req.code_challenge.clone(),
                scope: req.scope.clone(),
                caller: Caller::User(user),
                expires,
            },
        );
        pairs.push(("code", code));
    }
    if let Some(s) = &req.state {
        pairs.push(("state", s.clone()));
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    mark(redirect(&with_query(&req.redirect_uri, &borrowed)), false)
}

/// Issues an access token (and a refresh token when `offline_access` was granted).
fn issue(st: &mut State, ttl: u64, caller: Caller, client_id: &str, scope: &str) -> Response {
    let access = st.mint("dbxemu-oauth-");
    st.remember_token(
        access.clone(),
        Issued {
            caller: caller.clone(),
            expires: st.clock.now() + Duration::from_secs(ttl),
            audience: Audience::Databricks,
        },
    );
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    });
    if scope.split_whitespace().any(|s| s == "offline_access") {
        let refresh = st.mint("dbxemu-refresh-");
        st.oauth.refresh.insert(
            refresh.clone(),
            RefreshGrant {
                client_id: client_id.to_string(),
                scope: scope.to_string(),
                caller,
            },
        );
        body["refresh_token"] = json!(refresh);
    }
    mark(extract::json(body), false)
}

async fn token(ctx: Ctx, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let ttl = ctx.shared.settings.oauth_token_ttl_secs;
    let Some((id, secret)) = client_auth(&headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    let mut st = ctx.state();
    let client = match identify_client(&st, &id, secret.as_deref()) {
        Ok(c) => c,
        Err(resp) => return resp.into_response(),
    };
    let invalid_grant = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    match form.get("grant_type") {
        Some("client_credentials") => {
            let Some(caller) = client else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    "A public client cannot use the client_credentials grant",
                );
            };
            let scope = form.get("scope").unwrap_or("all-apis").to_string();
            issue(&mut st, ttl, caller, &id, &scope)
        }
        Some("authorization_code") => {
            let code = form.get("code").unwrap_or("");
            let Some(c) = st.oauth.codes.remove(code) else {
                return invalid_grant("Authorization code is invalid or was already used");
            };
            if c.expires <= st.clock.now() {
                return invalid_grant("Authorization code has expired");
            }
            if c.client_id != id {
                return invalid_grant("Authorization code was issued to another client");
            }
            if form.get("redirect_uri") != Some(c.redirect_uri.as_str()) {
                return invalid_grant("redirect_uri does not match the authorization request");
            }
            if !pkce_matches(form.get("code_verifier").unwrap_or(""), &c.code_challenge) {
                return invalid_grant("PKCE verification failed: code_verifier does not match");
            }
            issue(&mut st, ttl, c.caller, &id, &c.scope)
        }
        Some("refresh_token") => {
            let rt = form.get("refresh_token").unwrap_or("");
            let Some(g) = st.oauth.refresh.get(rt).cloned() else {
                return invalid_grant("Refresh token is invalid or has been revoked");
            };
            if g.client_id != id {
                return invalid_grant("Refresh token was issued to another client");
            }
            // Rotation: the old refresh token is spent.
            st.oauth.refresh.remove(rt);
            issue(&mut st, ttl, g.caller, &id, &g.scope)
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials, authorization_code or refresh_token",
        ),
    }
}

/// `POST /emulator/oauth/revoke {"principal": NAME}`: signs a user or service principal out
/// everywhere, as an administrator revoking its tokens would.
async fn revoke(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let who = body.req_str("principal")?.to_string();
    let n = ctx.state().revoke(&who);
    Ok(extract::json(json!({"principal": who, "revoked": n})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B's example pair.
    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_matches("short", "x"));
    }

    #[test]
    fn only_loopback_redirects() {
        assert!(loopback_redirect("http://localhost:8020"));
        assert!(loopback_redirect("http://127.0.0.1:5555/callback"));
        assert!(!loopback_redirect("https://evil.example/cb"));
        assert!(!loopback_redirect("http://localhost.evil.example:80/"));
    }
}
