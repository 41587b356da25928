//! Azure Databricks with Entra ID tokens, as the SDKs do it:
//!
//! - `azure-cli`: `az account get-access-token --resource <Azure Databricks app> --output json`
//!   (with `--subscription` from the workspace resource id, retried without it, and `--tenant`
//!   when configured). The token comes back on `az`'s standard output, never on a command line.
//!   When the signed-in account is a service principal (its token has no `upn`), a token for the
//!   service management endpoint is sent too.
//! - `azure-client-secret`: client credentials at `{login}{tenant}/oauth2/token` with
//!   `resource=`; the tenant is read from the workspace's `/aad/auth` redirect when not
//!   configured. A service-management token goes along as
//!   `X-Databricks-Azure-SP-Management-Token`.
//! - `azure-msi`: a managed identity, through `IDENTITY_ENDPOINT` (`X-IDENTITY-HEADER`) or the
//!   instance metadata service (`Metadata: true`), with the management token as well.
//!
//! Every Azure method sends `X-Databricks-Azure-Workspace-Resource-Id` when the workspace's
//! resource id is configured.

use super::{
    bearer, post_token_form, sensitive, BoxFut, FetchError, Source, Token, TokenResponse, Wording,
};
use crate::client::config::{AzureMethod, AzureOptions, MsiEndpoint};
use crate::client::error::ClientError;
use crate::client::transport::{Call, Transport};
use crate::hints::Hint;
use age::secrecy::ExposeSecret;
use base64::Engine as _;
use reqwest::header::HeaderName;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

const AZ_TIMEOUT: Duration = Duration::from_secs(60);
/// Lifetime assumed for a token whose expiry az gives only in local time.
const LOCAL_TIME_LIFETIME: Duration = Duration::from_secs(300);
const MGMT_HEADER: &str = "x-databricks-azure-sp-management-token";
const RESOURCE_HEADER: &str = "x-databricks-azure-workspace-resource-id";

pub(crate) struct Azure {
    options: AzureOptions,
    tenant: Mutex<Option<String>>,
}

/// One Entra token.
struct Entra {
    access: Zeroizing<String>,
    kind: String,
    lifetime: Option<Duration>,
}

/// The claims of a JWT, unverified (only to tell a user from a service principal).
fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `az account get-access-token`'s answer: `accessToken`, `tokenType`, and `expires_on`
/// (epoch seconds, az ≥ 2.54) or `expiresOn` (local time `2024-01-01 12:00:00.000000`).
fn parse_az(stdout: &[u8]) -> Result<Entra, String> {
    let v: Value = serde_json::from_slice(stdout)
        .map_err(|_| "`az account get-access-token` did not answer JSON".to_string())?;
    let access = v
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .ok_or("`az account get-access-token` answered no accessToken")?;
    let now = time::OffsetDateTime::now_utc();
    let lifetime = match super::seconds(v.get("expires_on")) {
        Some(on) => Some(Duration::from_secs_f64(
            (on - now.unix_timestamp() as f64).max(0.0),
        )),
        // Older az gives only `expiresOn`, in local time of an unknown zone: ask again
        // after a few minutes (az keeps its own cache, so that is cheap).
        None if v.get("expiresOn").is_some() => Some(LOCAL_TIME_LIFETIME),
        None => None,
    };
    Ok(Entra {
        access: Zeroizing::new(access.to_string()),
        kind: v
            .get("tokenType")
            .and_then(Value::as_str)
            .unwrap_or("Bearer")
            .to_string(),
        lifetime,
    })
}

fn min_lifetime(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

impl Azure {
    pub(crate) fn new(options: AzureOptions) -> Azure {
        let tenant = match &options.method {
            AzureMethod::ClientSecret { tenant_id, .. } => tenant_id.clone(),
            _ => None,
        };
        Azure {
            options,
            tenant: Mutex::new(tenant),
        }
    }

    fn name(&self) -> &'static str {
        match self.options.method {
            AzureMethod::Cli { .. } => "azure-cli",
            AzureMethod::ClientSecret { .. } => "azure-client-secret",
            AzureMethod::Msi { .. } => "azure-msi",
        }
    }

    async fn token(&self, t: &Transport) -> Result<Token, FetchError> {
        let resource = self.options.resource.clone();
        let mgmt = self.options.cloud.management_endpoint.clone();
        let (main, management) = match &self.options.method {
            AzureMethod::Cli {
                az,
                subscription,
                tenant,
            } => {
                let main = self
                    .az(az, &resource, subscription.as_deref(), tenant.as_deref())
                    .await?;
                let is_user = claims(&main.access).is_some_and(|c| c.get("upn").is_some());
                let management = if is_user {
                    None
                } else {
                    self.az(az, &mgmt, subscription.as_deref(), tenant.as_deref())
                        .await
                        .map_err(|_| {
                            tracing::debug!(target: "dbxport::client", "no service management token from az; not sending one");
                        })
                        .ok()
                };
                (main, management)
            }
            AzureMethod::ClientSecret {
                client_id,
                client_secret,
                ..
            } => {
                let tenant = self.tenant(t).await?;
                let main = self
                    .client_secret(
                        t,
                        &tenant,
                        client_id,
                        client_secret.expose_secret(),
                        &resource,
                    )
                    .await?;
                let m = self
                    .client_secret(t, &tenant, client_id, client_secret.expose_secret(), &mgmt)
                    .await?;
                (main, Some(m))
            }
            AzureMethod::Msi {
                client_id,
                endpoint,
            } => {
                let main = self
                    .msi(t, endpoint, client_id.as_deref(), &resource)
                    .await?;
                let m = self.msi(t, endpoint, client_id.as_deref(), &mgmt).await?;
                (main, Some(m))
            }
        };
        let mut headers = vec![bearer(&main.kind, &main.access).map_err(FetchError::Other)?];
        if let Some(m) = &management {
            headers.push((
                HeaderName::from_static(MGMT_HEADER),
                sensitive(&m.access).map_err(FetchError::Other)?,
            ));
        }
        if let Some(r) = &self.options.workspace_resource_id {
            headers.push((
                HeaderName::from_static(RESOURCE_HEADER),
                reqwest::header::HeaderValue::from_str(r).map_err(|_| {
                    FetchError::Other(ClientError::Auth {
                        call: "azure".into(),
                        message: "azure_workspace_resource_id cannot be sent in a header".into(),
                    })
                })?,
            ));
        }
        Ok(Token {
            headers,
            lifetime: min_lifetime(main.lifetime, management.and_then(|m| m.lifetime)),
        })
    }

    /// The configured tenant, else the one the workspace's `/aad/auth` redirect names.
    async fn tenant(&self, t: &Transport) -> Result<String, FetchError> {
        let mut known = self.tenant.lock().await;
        if let Some(k) = &*known {
            return Ok(k.clone());
        }
        let unknown = |why: String| {
            FetchError::Refused(
            "GET /aad/auth".into(),
            format!("azure-client-secret: the tenant is not configured and the workspace does not name it ({why})\n{}", Hint::AzureTenantUnknown),
        )
        };
        // One unauthenticated request, not followed: only the redirect's address is wanted.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(t.options().request_timeout)
            .build()
            .map_err(|e| unknown(e.to_string()))?;
        let resp = http
            .get(format!("{}/aad/auth", t.host()))
            .send()
            .await
            .map_err(|e| unknown(e.to_string()))?;
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .filter(|_| resp.status().is_redirection())
            .ok_or_else(|| unknown(format!("it answered {}", resp.status())))?;
        let tenant = reqwest::Url::parse(location)
            .ok()
            .and_then(|u| u.path_segments()?.next().map(str::to_string))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unknown(format!("redirect `{location}`")))?;
        tracing::debug!(target: "dbxport::client", tenant = %tenant, "azure tenant read from the workspace");
        *known = Some(tenant.clone());
        Ok(tenant)
    }

    async fn client_secret(
        &self,
        t: &Transport,
        tenant: &str,
        client_id: &str,
        secret: &str,
        resource: &str,
    ) -> Result<Entra, FetchError> {
        let endpoint = format!("{}{tenant}/oauth2/token", self.options.cloud.login_endpoint);
        let resp = post_token_form(
            t,
            &endpoint,
            format!("client_id={client_id} resource={resource}"),
            None,
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), client_id.into()),
                ("client_secret".into(), secret.into()),
                ("resource".into(), resource.into()),
            ],
            Wording {
                method: "azure-client-secret",
                subject: &format!("client {client_id}"),
                hint: Hint::AzureSpRefused.with(&[]),
            },
        )
        .await?;
        entra(resp, &endpoint, "azure-client-secret")
    }

    async fn msi(
        &self,
        t: &Transport,
        endpoint: &MsiEndpoint,
        client_id: Option<&str>,
        resource: &str,
    ) -> Result<Entra, FetchError> {
        let call = match endpoint {
            MsiEndpoint::Imds { base } => Call::get("(azure msi)")
                .url(format!("{base}/metadata/identity/oauth2/token"))
                .query("api-version", "2018-02-01")
                .header(HeaderName::from_static("metadata"), "true"),
            MsiEndpoint::IdentityEndpoint { url, header } => Call::get("(azure msi)")
                .url(url.clone())
                .query("api-version", "2019-08-01")
                .header(
                    HeaderName::from_static("x-identity-header"),
                    header.expose_secret(),
                ),
        }
        .query("resource", resource)
        .query_opt("client_id", client_id)
        .unauthenticated()
        .object(format!(
            "managed identity {}",
            client_id.unwrap_or("(system-assigned)")
        ));
        let what = call.describe();
        let resp: TokenResponse = t.json(call).await.map_err(|e| {
            match e.api().filter(|a| (400..500).contains(&a.status)) {
                Some(a) => FetchError::Refused(
                    what.clone(),
                    format!(
                        "azure-msi: the managed identity endpoint refused: {}\n{}",
                        a.message,
                        Hint::AzureMsiRefused
                    ),
                ),
                None => FetchError::Other(ClientError::Auth {
                    call: what.clone(),
                    message: format!("azure-msi: cannot obtain a token: {e}"),
                }),
            }
        })?;
        entra(resp, &what, "azure-msi")
    }

    async fn az(
        &self,
        az: &std::path::Path,
        resource: &str,
        subscription: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Entra, FetchError> {
        if let Some(sub) = subscription {
            match self.run_az(az, resource, Some(sub), tenant).await {
                Ok(e) => return Ok(e),
                // A user may reach the workspace without access to its subscription.
                Err(_) => {
                    tracing::debug!(target: "dbxport::client", "az with --subscription failed; trying without")
                }
            }
        }
        self.run_az(az, resource, None, tenant).await
    }

    async fn run_az(
        &self,
        az: &std::path::Path,
        resource: &str,
        subscription: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Entra, FetchError> {
        let mut cmd = tokio::process::Command::new(az);
        cmd.args([
            "account",
            "get-access-token",
            "--resource",
            resource,
            "--output",
            "json",
        ]);
        if let Some(s) = subscription {
            cmd.args(["--subscription", s]);
        }
        if let Some(t) = tenant {
            cmd.args(["--tenant", t]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let shown = format!("az account get-access-token --resource {resource}");
        let out = match tokio::time::timeout(AZ_TIMEOUT, cmd.output()).await {
            Err(_) => {
                return Err(FetchError::Other(ClientError::Auth {
                    call: shown,
                    message: format!("azure-cli: no answer within {} s", AZ_TIMEOUT.as_secs()),
                }))
            }
            Ok(Err(e)) => {
                return Err(FetchError::Unavailable {
                    reason: format!("cannot run {}: {e}", az.display()),
                    hint: Hint::AzNotInstalled.with(&[]),
                })
            }
            Ok(Ok(o)) => o,
        };
        let stdout = Zeroizing::new(out.stdout);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.contains("az login") {
                return Err(FetchError::Unavailable {
                    reason: format!("the Azure CLI is not signed in: {stderr}"),
                    hint: Hint::AzLogin.with(&[]),
                });
            }
            return Err(FetchError::Refused(
                shown,
                format!(
                    "azure-cli: `az account get-access-token` failed: {stderr}\n{}",
                    Hint::AzFailed
                ),
            ));
        }
        parse_az(&stdout).map_err(|m| {
            FetchError::Other(ClientError::Auth {
                call: shown,
                message: format!("azure-cli: {m}"),
            })
        })
    }
}

fn entra(resp: TokenResponse, what: &str, method: &str) -> Result<Entra, FetchError> {
    let access = resp.access(what, method)?;
    Ok(Entra {
        access,
        kind: resp.token_type.clone().unwrap_or_else(|| "Bearer".into()),
        lifetime: resp.lifetime(),
    })
}

impl Source for Azure {
    fn auth_type(&self) -> &'static str {
        self.name()
    }

    fn fetch<'a>(&'a self, t: &'a Transport, renew: bool) -> BoxFut<'a, Result<Token, FetchError>> {
        // Every fetch asks the endpoint anew.
        let _ = renew;
        Box::pin(self.token(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn az_answers() {
        let e = parse_az(br#"{"accessToken":"a.b.c","expiresOn":"2099-01-01 00:00:00.000000","expires_on":4070908800,"subscription":"s","tenant":"t","tokenType":"Bearer"}"#).unwrap();
        assert!(e.lifetime.unwrap() > Duration::from_secs(3600));
        // Older az: only the local time, of an unknown zone.
        let e = parse_az(
            br#"{"accessToken":"x","expiresOn":"2099-01-01 00:00:00.123456","tokenType":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(e.lifetime, Some(LOCAL_TIME_LIFETIME));
        assert!(parse_az(b"{}").is_err());
        assert!(parse_az(b"Please run 'az login'").is_err());
    }

    #[test]
    fn jwt_claims_tell_users_from_service_principals() {
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let user = format!("{}.{}.sig", enc("{}"), enc(r#"{"upn":"a@b"}"#));
        let sp = format!("{}.{}.sig", enc("{}"), enc(r#"{"appid":"x"}"#));
        assert!(claims(&user).unwrap().get("upn").is_some());
        assert!(claims(&sp).unwrap().get("upn").is_none());
        assert!(claims("opaque").is_none());
    }
}
