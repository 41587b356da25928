//! The Azure side of signing in, on loopback: an Entra ID token endpoint (client credentials,
//! v1 `resource=` and v2 `scope=` flavours), the managed-identity endpoints (the instance
//! metadata service `GET /metadata/identity/oauth2/token` with `Metadata: true`, and the
//! `IDENTITY_ENDPOINT` flavour `GET /msi/token` with `X-IDENTITY-HEADER`), the workspace's
//! `/aad/auth` redirect that names its tenant, and a control endpoint standing in for
//! `az login` (`POST /emulator/entra/user-token`).
//!
//! Tokens look like Entra's (three base64url parts with `aud`, `tid`, `appid` or `upn`, `exp`
//! claims) and are signed with the emulator's salt, so they cannot be forged. Only tokens for
//! the Azure Databricks resource open the APIs; a token for the service management endpoint
//! is checked when it arrives as `X-Databricks-Azure-SP-Management-Token`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::{self, mark, Body, Caller, Ctx, Fields, Params};
use super::oauth::{oauth_error, OAuthError};
use super::state::{Audience, Entra, Issued, Shared, State};

/// The Azure Databricks first-party application: the resource its tokens are issued for.
pub(crate) const DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
/// The service management endpoints of the Azure clouds (public, US Government, China).
const MANAGEMENT: [&str; 3] = [
    "https://management.core.windows.net/",
    "https://management.core.usgovcloudapi.net/",
    "https://management.core.chinacloudapi.cn/",
];
/// Lifetime of Entra tokens unless the control endpoint asks for another.
const ENTRA_TTL: u64 = 3600;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/token", post(token_v1))
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2))
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(identity_endpoint))
        .route("/aad/auth", get(aad_auth))
        .route("/emulator/entra/user-token", post(user_token))
}

/// True for the paths above that are served without a workspace credential.
pub(crate) fn is_public(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        segs.as_slice(),
        [_, "oauth2", "token"] | [_, "oauth2", "v2.0", "token"]
    ) || path == "/metadata/identity/oauth2/token"
        || path == "/msi/token"
        || path == "/aad/auth"
}

/// The audience a requested resource stands for, if it is one the emulator serves.
fn audience_of(resource: &str) -> Option<Audience> {
    let r = resource.trim_end_matches("/.default");
    if r == DATABRICKS_RESOURCE {
        return Some(Audience::Databricks);
    }
    let with_slash = format!("{}/", r.trim_end_matches('/'));
    MANAGEMENT
        .contains(&with_slash.as_str())
        .then_some(Audience::Management)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A signed, Entra-shaped token, remembered so the API can authenticate it.
fn mint(
    st: &mut State,
    tenant: &str,
    caller: Caller,
    resource: &str,
    aud: Audience,
    ttl: u64,
) -> (String, u64) {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let iat = now_secs();
    let exp = iat + ttl;
    let jti = st.mint("");
    let mut claims = json!({
        "aud": resource.trim_end_matches("/.default"),
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "tid": tenant,
        "iat": iat, "nbf": iat, "exp": exp,
        "uti": &jti[..22],
    });
    match &caller {
        Caller::User(u) => {
            claims["upn"] = json!(u);
            claims["unique_name"] = json!(u);
            claims["scp"] = json!("user_impersonation");
        }
        Caller::ServicePrincipal(app) => {
            claims["appid"] = json!(app);
            claims["oid"] = json!(app);
        }
    }
    let head = format!(
        "{}.{}",
        b64(&json!({"typ": "JWT", "alg": "HS256", "kid": "dbxport-emulator"})),
        b64(&claims)
    );
    let mut h = Sha256::new();
    h.update(st.url_salt.as_bytes());
    h.update(head.as_bytes());
    let token = format!(
        "{head}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
    );
    st.remember_token(
        token.clone(),
        Issued {
            caller,
            expires: st.clock.now() + Duration::from_secs(ttl),
            audience: aud,
        },
    );
    (token, exp)
}

fn entra(st: &State) -> Result<&Entra, OAuthError> {
    st.entra.as_ref().ok_or_else(|| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: Tenant not found. The emulator's seed configures no Entra ID tenant (tokens.json: entra).",
        )
    })
}

/// Client credentials: `Ok((caller, tenant))` or the error answer.
fn client_credentials(
    st: &State,
    tenant: &str,
    form: &Params,
) -> Result<(Caller, String), OAuthError> {
    let e = entra(st)?;
    if !tenant.eq_ignore_ascii_case(&e.tenant_id) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        ));
    }
    if form.get("grant_type") != Some("client_credentials") {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type (only client_credentials here).",
        ));
    }
    let id = form.get("client_id").unwrap_or("");
    let secret = form.get("client_secret").unwrap_or("");
    match e.clients.iter().find(|c| c.client_id == id) {
        Some(c) if c.client_secret == secret => Ok((
            Caller::ServicePrincipal(c.client_id.clone()),
            e.tenant_id.clone(),
        )),
        Some(_) => Err(OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("AADSTS7000215: Invalid client secret provided for app '{id}'."),
        )),
        None => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{id}' was not found in the directory."
            ),
        )),
    }
}

fn unknown_resource(resource: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_resource",
        &format!(
            "AADSTS500011: The resource principal named {resource} was not found in the tenant."
        ),
    )
}

async fn token_v1(ctx: Ctx, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let mut st = ctx.state();
    let (caller, tid) = match client_credentials(&st, &tenant, &form) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let resource = form.get("resource").unwrap_or("").to_string();
    let Some(aud) = audience_of(&resource) else {
        return unknown_resource(&resource);
    };
    let (token, exp) = mint(&mut st, &tid, caller, &resource, aud, ENTRA_TTL);
    let now = now_secs();
    // The v1 endpoint answers every number as a string.
    mark(
        extract::json(json!({
            "token_type": "Bearer",
            "expires_in": ENTRA_TTL.to_string(),
            "ext_expires_in": ENTRA_TTL.to_string(),
            "expires_on": exp.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "access_token": token,
        })),
        false,
    )
}

async fn token_v2(ctx: Ctx, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let mut st = ctx.state();
    let (caller, tid) = match client_credentials(&st, &tenant, &form) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let scope = form.get("scope").unwrap_or("").to_string();
    let Some(aud) = audience_of(&scope) else {
        return unknown_resource(&scope);
    };
    let (token, _) = mint(&mut st, &tid, caller, &scope, aud, ENTRA_TTL);
    mark(
        extract::json(json!({
            "token_type": "Bearer",
            "expires_in": ENTRA_TTL,
            "ext_expires_in": ENTRA_TTL,
            "access_token": token,
        })),
        false,
    )
}

/// The managed identity a request names (`client_id`), else the system-assigned one.
fn managed_identity(st: &State, q: &Params) -> Result<(String, String), OAuthError> {
    let e = entra(st)?;
    let wanted = q.get("client_id").or_else(|| q.get("mi_res_id"));
    let id = match wanted {
        Some(w) => e.managed_identities.iter().find(|m| *m == w),
        None => e.managed_identities.first(),
    };
    match id {
        Some(id) => Ok((id.clone(), e.tenant_id.clone())),
        None => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        )),
    }
}

/// A managed identity's token, as both of its endpoints answer it.
struct MsiToken {
    id: String,
    resource: String,
    token: String,
    exp: u64,
}

/// Mints the token a managed identity asked for (the identity and resource from the query).
fn msi_token(st: &mut State, q: &Params) -> Result<MsiToken, Box<Response>> {
    let (id, tid) = managed_identity(st, q).map_err(|e| Box::new(e.into_response()))?;
    let resource = q.get("resource").unwrap_or("").to_string();
    let Some(aud) = audience_of(&resource) else {
        return Err(Box::new(unknown_resource(&resource)));
    };
    let (token, exp) = mint(
        st,
        &tid,
        Caller::ServicePrincipal(id.clone()),
        &resource,
        aud,
        ENTRA_TTL,
    );
    Ok(MsiToken {
        id,
        resource,
        token,
        exp,
    })
}

async fn imds(ctx: Ctx, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let q = Params::parse(q.as_deref().unwrap_or(""));
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    let mut st = ctx.state();
    let MsiToken {
        id,
        resource,
        token,
        exp,
    } = match msi_token(&mut st, &q) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    mark(
        extract::json(json!({
            "access_token": token,
            "refresh_token": "",
            "expires_in": ENTRA_TTL.to_string(),
            "expires_on": exp.to_string(),
            "not_before": now_secs().to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": id,
        })),
        false,
    )
}

async fn identity_endpoint(ctx: Ctx, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let q = Params::parse(q.as_deref().unwrap_or(""));
    let mut st = ctx.state();
    let expected = match entra(&st) {
        Ok(e) => e.identity_header.clone(),
        Err(r) => return r.into_response(),
    };
    let sent = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if expected.is_none() || sent != expected.as_deref() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "X-IDENTITY-HEADER is missing or does not match IDENTITY_HEADER",
        );
    }
    let MsiToken {
        id,
        resource,
        token,
        exp,
    } = match msi_token(&mut st, &q) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    mark(
        extract::json(json!({
            "access_token": token,
            "expires_on": exp.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": id,
        })),
        false,
    )
}

/// An Azure Databricks workspace redirects `/aad/auth` to its tenant's login page; clients
/// read the tenant id from the path.
async fn aad_auth(ctx: Ctx, headers: HeaderMap) -> Response {
    let st = ctx.state();
    let Some(e) = st.entra.as_ref() else {
        return ApiError::no_endpoint("GET", "/aad/auth").into_response();
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let to = format!(
        "http://{host}/{}/oauth2/authorize?client_id={DATABRICKS_RESOURCE}&response_type=code",
        e.tenant_id
    );
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// `POST /emulator/entra/user-token {"user_name", "resource"?, "ttl_secs"?}`: the token
/// `az login` would hold for a user of the seed, as `az account get-access-token` prints it.
async fn user_token(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let user = body.req_str("user_name")?.to_string();
    let resource = body
        .opt_str("resource")?
        .unwrap_or(DATABRICKS_RESOURCE)
        .to_string();
    let ttl = body.opt_i64("ttl_secs")?.unwrap_or(ENTRA_TTL as i64).max(1) as u64;
    let mut st = ctx.state();
    let Some(tid) = st.entra.as_ref().map(|e| e.tenant_id.clone()) else {
        return Err(ApiError::invalid(
            "the seed configures no Entra ID tenant (tokens.json: entra)",
        ));
    };
    if !st.principals.users.iter().any(|u| u.user_name == user) {
        return Err(ApiError::not_found(format!(
            "no user {user} in this workspace"
        )));
    }
    let aud = audience_of(&resource)
        .ok_or_else(|| ApiError::invalid(format!("unknown resource {resource}")))?;
    let (token, exp) = mint(&mut st, &tid, Caller::User(user), &resource, aud, ttl);
    Ok(extract::json(
        json!({"access_token": token, "expires_on": exp, "tenant": tid}),
    ))
}

/// Checks the Azure headers a request carries beside an Entra token: a management token must
/// be a live one of the same principal, and a workspace resource id must name this workspace.
pub(crate) fn check_azure_headers(
    st: &mut State,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if let Some(m) = headers
        .get("x-databricks-azure-sp-management-token")
        .and_then(|v| v.to_str().ok())
    {
        let ok = st.issued.get(m.trim()).is_some_and(|i| {
            i.audience == Audience::Management && i.expires > st.clock.now() && &i.caller == caller
        });
        if !ok {
            return Err(ApiError::auth(
                StatusCode::FORBIDDEN,
                "Invalid Azure service management token (X-Databricks-Azure-SP-Management-Token).",
            ));
        }
        if let Some(e) = st.entra.as_mut() {
            e.seen_management_tokens += 1;
        }
    }
    if let Some(r) = headers
        .get("x-databricks-azure-workspace-resource-id")
        .and_then(|v| v.to_str().ok())
    {
        let want = st
            .entra
            .as_ref()
            .and_then(|e| e.workspace_resource_id.as_deref());
        if let Some(w) = want {
            if !w.eq_ignore_ascii_case(r.trim()) {
                return Err(ApiError::auth(
                    StatusCode::FORBIDDEN,
                    "X-Databricks-Azure-Workspace-Resource-Id names another workspace.",
                ));
            }
        }
        if let Some(e) = st.entra.as_mut() {
            e.seen_resource_ids += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences() {
        assert_eq!(audience_of(DATABRICKS_RESOURCE), Some(Audience::Databricks));
        assert_eq!(
            audience_of(&format!("{DATABRICKS_RESOURCE}/.default")),
            Some(Audience::Databricks)
        );
        assert_eq!(
            audience_of("https://management.core.windows.net"),
            Some(Audience::Management)
        );
        assert_eq!(audience_of("https://graph.microsoft.com"), None);
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/tid-1/oauth2/token"));
        assert!(is_public("/tid-1/oauth2/v2.0/token"));
        assert!(is_public("/metadata/identity/oauth2/token"));
        assert!(!is_public("/api/2.0/oauth2/token"));
    }
}
