//! Host metadata and OAuth machine-to-machine: `/.well-known/databricks-config` (advertising the
//! OIDC endpoint and workspace id), the authorization-server discovery document, and
//! `POST /oidc/v1/token` issuing expiring bearer tokens for client credentials sent with HTTP
//! Basic (or in the form).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::extract::{self, form_decode, mark, Caller, Ctx, Params};
use super::state::{Issued, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/.well-known/databricks-config", get(host_metadata))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(discovery),
        )
        .route("/oidc/v1/token", post(token))
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
        "scopes_supported": ["all-apis", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `client_id` and `client_secret` from HTTP Basic, or from the form.
fn client_credentials(headers: &HeaderMap, form: &Params) -> Option<(String, String)> {
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
        return Some((id.to_string(), secret.to_string()));
    }
    Some((
        form.get("client_id")?.to_string(),
        form.get("client_secret")?.to_string(),
    ))
}

async fn token(ctx: Ctx, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    if form.get("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only the client_credentials grant is supported",
        );
    }
    let Some((id, secret)) = client_credentials(&headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    let ttl = ctx.shared.settings.oauth_token_ttl_secs;
    let mut st = ctx.state();
    let client = st.oauth_clients.iter().find(|c| {
        (c.client_id == id || c.client_id == form_decode(&id))
            && (c.client_secret == secret || c.client_secret == form_decode(&secret))
    });
    let Some(client) = client else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    let caller = Caller::ServicePrincipal(client.application_id.clone());
    let n = st.next_seq();
    let mut h = Sha256::new();
    h.update(st.url_salt.as_bytes());
    h.update(n.to_le_bytes());
    let access = format!("dbxemu-oauth-{}", hex::encode(h.finalize()));
    st.remember_token(
        access.clone(),
        Issued {
            caller,
            expires: Instant::now() + Duration::from_secs(ttl),
        },
    );
    let scope = form.get("scope").unwrap_or("all-apis").to_string();
    mark(
        extract::json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
        })),
        false,
    )
}
