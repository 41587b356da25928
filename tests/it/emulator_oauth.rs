//! The emulator's sign-in endpoints over raw HTTP: OIDC discovery, user-to-machine sign-in
//! with PKCE and a test user's approval, refresh-token rotation, short-lived access tokens,
//! revocation, and the Azure side (Entra ID client credentials, managed identity through the
//! instance metadata service and `IDENTITY_ENDPOINT`, the management-token and workspace
//! resource id headers, the tenant redirect).

use base64::Engine as _;
use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

const SP: &str = "9c7d2e14-5b3a-4f68-a1d0-3e8b6c2f9a71";
const ENTRA_SECRET: &str = "entra-poc-fake-secret-etl-7a1f9c";
const TENANT: &str = "5f3c1a2b-8e4d-4c6f-9a7b-0d1e2f3a4b5c";
const RESOURCE_ID: &str = "/subscriptions/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/resourceGroups/rg-sciencehub/providers/Microsoft.Databricks/workspaces/poc";
const USER: &str = "lena.fischer@sciencehub.example";
const DATABRICKS: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";

async fn start(ttl: u64) -> EmulatorHandle {
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/workspaces/poc");
    Emulator::start(
        EmulatorConfig::default()
            .with_seed(seed)
            .with_oauth_token_ttl(ttl)
            .with_manual_clock(),
    )
    .await
    .expect("emulator starts")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn form(url: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let r = http().post(url).form(pairs).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// `GET /api/2.0/preview/scim/v2/Me` with `token` and extra headers: (status, userName).
async fn me(emu: &EmulatorHandle, token: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut rb = http()
        .get(format!("{}/api/2.0/preview/scim/v2/Me", emu.url()))
        .bearer_auth(token);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (
        s,
        v["userName"]
            .as_str()
            .or(v["applicationId"].as_str())
            .unwrap_or("")
            .to_string(),
    )
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Plays the browser: opens the authorize URL, approves as `user` (or denies), and returns
/// the redirect's query parameters.
async fn sign_in(
    emu: &EmulatorHandle,
    verifier: &str,
    user: &str,
    approve: bool,
) -> Vec<(String, String)> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/oidc/v1/authorize", emu.url()),
        &[
            ("client_id", "databricks-cli"),
            ("redirect_uri", "http://localhost:8020"),
            ("response_type", "code"),
            ("state", "st-123"),
            ("scope", "all-apis offline_access"),
            ("code_challenge", &challenge(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let page = http().get(url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    let re = regex::Regex::new(r#"name="request_id" value="([^"]+)""#).unwrap();
    let id = re.captures(&html).expect("a request id")[1].to_string();
    let r = http()
        .post(format!("{}/oidc/v1/authorize/consent", emu.url()))
        .form(&[
            ("request_id", id.as_str()),
            ("user_name", user),
            ("decision", if approve { "approve" } else { "deny" }),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("http://localhost:8020"), "{loc}");
    reqwest::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_names_every_endpoint() {
    let emu = start(3600).await;
    let d: Value = http()
        .get(format!(
            "{}/oidc/.well-known/oauth-authorization-server",
            emu.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["authorization_endpoint"],
        json!(format!("{}/oidc/v1/authorize", emu.url()))
    );
    assert_eq!(
        d["token_endpoint"],
        json!(format!("{}/oidc/v1/token", emu.url()))
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_to_machine_with_pkce_refresh_and_revocation() {
    let emu = start(1).await;
    let token_url = format!("{}/oidc/v1/token", emu.url());
    let verifier = "v".repeat(20) + "-._~0123456789abcdefghijklmnop";
    let q = sign_in(&emu, &verifier, USER, true).await;
    assert_eq!(param(&q, "state"), Some("st-123"));
    let code = param(&q, "code").expect("a code").to_string();

    // A wrong verifier is refused, and spends nothing: the right one still redeems the code.
    let bad = "w".repeat(50);
    let (s, v) = form(
        &token_url,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "databricks-cli"),
            ("code", &code),
            ("redirect_uri", "http://localhost:8020"),
            ("code_verifier", &bad),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    let q = sign_in(&emu, &verifier, USER, true).await;
    let code = param(&q, "code").unwrap().to_string();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("client_id", "databricks-cli"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:8020"),
        ("code_verifier", verifier.as_str()),
    ];
    let (s, t) = form(&token_url, &redeem).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["expires_in"], json!(1));
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token")
        .to_string();
    assert_eq!(me(&emu, &access, &[]).await, (200, USER.to_string()));
    // A code is redeemed once.
    let (s, _) = form(&token_url, &redeem).await;
    assert_eq!(s, 400);

    // The access token expires; the refresh token gives a new one and is spent (rotation).
    assert!(emu.advance_clock(Duration::from_millis(1200)));
    assert_eq!(me(&emu, &access, &[]).await.0, 403);
    let (s, t2) = form(
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "databricks-cli"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!(s, 200, "{t2}");
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh, refresh2);
    assert_eq!(me(&emu, &access2, &[]).await, (200, USER.to_string()));
    let (s, v) = form(
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "databricks-cli"),
            ("refresh_token", &refresh),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));

    // Revocation over HTTP signs the user out everywhere.
    let r = http()
        .post(format!("{}/emulator/oauth/revoke", emu.url()))
        .bearer_auth(emu.admin_token())
        .json(&json!({"principal": USER}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(me(&emu, &access2, &[]).await.0, 403);
    let (s, _) = form(
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "databricks-cli"),
            ("refresh_token", &refresh2),
        ],
    )
    .await;
    assert_eq!(s, 400);

    // Denied consent redirects with access_denied; an unknown client never redirects.
    let q = sign_in(&emu, &verifier, USER, false).await;
    assert_eq!(param(&q, "error"), Some("access_denied"));
    let r = http()
        .get(format!("{}/oidc/v1/authorize?client_id=nobody&redirect_uri=http://localhost:1&response_type=code", emu.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = http()
        .get(format!("{}/oidc/v1/authorize?client_id=databricks-cli&redirect_uri=https://evil.example/&response_type=code", emu.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_client_credentials_and_azure_headers() {
    let emu = start(3600).await;
    let v1 = format!("{}/{TENANT}/oauth2/token", emu.url());
    let (s, t) = form(
        &v1,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SP),
            ("client_secret", ENTRA_SECRET),
            ("resource", DATABRICKS),
        ],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert!(
        t["expires_on"].is_string() && t["expires_in"].is_string(),
        "{t}"
    );
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(access.split('.').count(), 3, "Entra-shaped");
    let (s, m) = form(
        &v1,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SP),
            ("client_secret", ENTRA_SECRET),
            ("resource", "https://management.core.windows.net/"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let mgmt = m["access_token"].as_str().unwrap().to_string();

    let headers = [
        ("X-Databricks-Azure-SP-Management-Token", mgmt.as_str()),
        ("X-Databricks-Azure-Workspace-Resource-Id", RESOURCE_ID),
    ];
    assert_eq!(me(&emu, &access, &headers).await, (200, SP.to_string()));
    // A management token does not open the APIs itself, and a forged one is refused.
    assert_eq!(me(&emu, &mgmt, &[]).await.0, 403);
    assert_eq!(
        me(
            &emu,
            &access,
            &[("X-Databricks-Azure-SP-Management-Token", "forged")]
        )
        .await
        .0,
        403
    );
    assert_eq!(
        me(
            &emu,
            &access,
            &[(
                "X-Databricks-Azure-Workspace-Resource-Id",
                "/subscriptions/x/other"
            )]
        )
        .await
        .0,
        403
    );

    // v2 flavour; wrong secret, unknown tenant, unknown resource.
    let v2 = format!("{}/{TENANT}/oauth2/v2.0/token", emu.url());
    let scope = format!("{DATABRICKS}/.default");
    let (s, t) = form(
        &v2,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SP),
            ("client_secret", ENTRA_SECRET),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        me(&emu, t["access_token"].as_str().unwrap(), &[]).await.0,
        200
    );
    let (s, v) = form(
        &v1,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SP),
            ("client_secret", "wrong"),
            ("resource", DATABRICKS),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
    let (s, _) = form(
        &format!("{}/other-tenant/oauth2/token", emu.url()),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SP),
            ("client_secret", ENTRA_SECRET),
            ("resource", DATABRICKS),
        ],
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = form(
        &v1,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SP),
            ("client_secret", ENTRA_SECRET),
            ("resource", "https://graph.microsoft.com"),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_resource")));

    // The workspace names its tenant.
    let r = http()
        .get(format!("{}/aad/auth", emu.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(
        reqwest::Url::parse(loc)
            .unwrap()
            .path_segments()
            .unwrap()
            .next(),
        Some(TENANT)
    );

    // What `az login` holds for a user.
    let r: Value = http()
        .post(format!("{}/emulator/entra/user-token", emu.url()))
        .bearer_auth(emu.admin_token())
        .json(&json!({"user_name": USER}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me(&emu, r["access_token"].as_str().unwrap(), &[]).await,
        (200, USER.to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_endpoints() {
    let emu = start(3600).await;
    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={DATABRICKS}",
        emu.url()
    );
    let r = http().get(&imds).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "no Metadata header");
    let t: Value = http()
        .get(&imds)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["client_id"], json!(SP));
    assert!(
        t["expires_on"].as_str().unwrap().parse::<u64>().is_ok(),
        "{t}"
    );
    assert_eq!(
        me(&emu, t["access_token"].as_str().unwrap(), &[]).await,
        (200, SP.to_string())
    );
    let r = http()
        .get(format!("{imds}&client_id=unknown-identity"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let ep = format!(
        "{}/msi/token?api-version=2019-08-01&resource={DATABRICKS}",
        emu.url()
    );
    let r = http()
        .get(&ep)
        .header("X-IDENTITY-HEADER", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let t: Value = http()
        .get(&ep)
        .header("X-IDENTITY-HEADER", "poc-fake-identity-header-4d2e81")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me(&emu, t["access_token"].as_str().unwrap(), &[]).await,
        (200, SP.to_string())
    );
}
