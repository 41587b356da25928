//! `external-browser`: user-to-machine OAuth, the authorization-code flow with PKCE (S256)
//! against the workspace's OIDC endpoints.
//!
//! A sign-in kept in the Databricks CLI's token cache is used (and refreshed) first, so one
//! sign-in serves `databricks` and dbxport alike. Otherwise dbxport listens on
//! `http://localhost:PORT` (8020, as the CLI, unless told otherwise), shows the sign-in address
//! (and opens a browser when the command line allows it), waits for the redirect, checks its
//! `state`, exchanges the code with the verifier, and stores the tokens in that same cache
//! (0600). Nothing else is written; no token is printed.

use super::cache::{CacheSource, Cached, CachedToken};
use super::m2m::EndpointCache;
use super::pkce::{self, Pkce};
use super::{bearer, post_token_form, BoxFut, FetchError, Source, Token, Wording};
use crate::client::config::BrowserOptions;
use crate::client::error::ClientError;
use crate::client::transport::Transport;
use crate::hints::Hint;
use age::secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Largest redirect request read from the browser.
const MAX_REQUEST: usize = 16 * 1024;
/// How long one connection to the listener may take to send its request.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) struct ExternalBrowser {
    options: BrowserOptions,
    cache: CacheSource,
}

/// What the browser's redirect carried.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Redirect {
    Code(String),
    Denied(String),
    /// Not the redirect (a favicon request, a wrong state): answered and ignored.
    Other,
}

/// Reads `GET /path?code=…&state=…` from a request head.
pub(crate) fn parse_redirect(head: &str, state: &str) -> Redirect {
    let Some(target) = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
    else {
        return Redirect::Other;
    };
    let Ok(url) = reqwest::Url::parse(&format!("http://localhost{target}")) else {
        return Redirect::Other;
    };
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    if get("state").as_deref() != Some(state) {
        return Redirect::Other;
    }
    if let Some(e) = get("error") {
        let d = get("error_description").unwrap_or_default();
        return Redirect::Denied(format!("{e}: {d}"));
    }
    match get("code") {
        Some(c) if !c.is_empty() => Redirect::Code(c),
        _ => Redirect::Other,
    }
}

impl ExternalBrowser {
    pub(crate) fn new(options: BrowserOptions) -> ExternalBrowser {
        let cache = CacheSource {
            cache: options.cache.clone(),
            client_id: options.client_id.clone(),
            client_secret: options.client_secret.clone(),
            discovery_url: options.discovery_url.clone(),
            endpoints: EndpointCache::default(),
            method: "external-browser",
            relogin: Hint::BrowserSignInAgain.with(&[]),
        };
        ExternalBrowser { options, cache }
    }

    async fn token(&self, t: &Transport, renew: bool) -> Result<Token, FetchError> {
        match self.cache.token(t, renew).await {
            Ok(Cached::Token(tok)) => return Ok(tok),
            Ok(Cached::Missing(_)) => {}
            // A spent or revoked refresh token: sign in afresh.
            Err(FetchError::Refused(_, m)) => {
                tracing::info!(target: "dbxport::client", reason = %m.lines().next().unwrap_or(""), "the cached sign-in cannot be refreshed; signing in again");
            }
            Err(e) => return Err(e),
        }
        self.login(t).await
    }

    async fn login(&self, t: &Transport) -> Result<Token, FetchError> {
        let other = |m: String| {
            FetchError::Other(ClientError::Auth {
                call: "browser sign-in".into(),
                message: format!("external-browser: {m}"),
            })
        };
        let endpoints = self
            .cache
            .endpoints
            .get(t, self.options.discovery_url.as_deref(), "external-browser")
            .await
            .map_err(FetchError::Other)?;
        let Some(authorize) = endpoints.authorization.clone() else {
            return Err(other(
                "the discovery document names no authorization_endpoint".into(),
            ));
        };
        let s = &self.options.settings;
        let listener = TcpListener::bind(("127.0.0.1", s.redirect_port))
            .await
            .map_err(|e| {
                other(format!(
                    "cannot listen on localhost:{} for the sign-in redirect: {e}\n{}",
                    s.redirect_port,
                    Hint::BrowserPortTaken
                ))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| other(e.to_string()))?
            .port();
        let redirect_uri = format!("http://localhost:{port}");
        let pkce = Pkce::new();
        let state = pkce::state();
        let mut url = reqwest::Url::parse(&authorize)
            .map_err(|e| other(format!("authorization_endpoint `{authorize}`: {e}")))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.options.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &self.options.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        let url = url.to_string();
        (s.prompt.0)(&url);
        if s.open_browser {
            open_browser(&url);
        }
        let code = tokio::time::timeout(s.timeout, wait_for_code(&listener, &state))
            .await
            .map_err(|_| {
                FetchError::Refused(
                    "browser sign-in".into(),
                    format!(
                        "external-browser: nobody finished signing in within {} s\n{}",
                        s.timeout.as_secs(),
                        Hint::BrowserTimeout
                    ),
                )
            })?
            .map_err(|m| {
                FetchError::Refused(
                    "browser sign-in".into(),
                    format!("external-browser: {m}\n{}", Hint::BrowserDenied),
                )
            })?;
        drop(listener);
        let mut form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.to_string()),
            ("redirect_uri".to_string(), redirect_uri),
            ("code_verifier".to_string(), pkce.verifier.to_string()),
            ("client_id".to_string(), self.options.client_id.clone()),
        ];
        if let Some(sec) = &self.options.client_secret {
            form.push(("client_secret".into(), sec.expose_secret().to_string()));
        }
        let resp = post_token_form(
            t,
            &endpoints.token,
            format!("client_id={}", self.options.client_id),
            None,
            form,
            Wording {
                method: "external-browser",
                subject: "the authorization code",
                hint: Hint::BrowserCodeRefused.with(&[]),
            },
        )
        .await?;
        let what = format!("POST {} (authorization code)", endpoints.token);
        let access = resp.access(&what, "external-browser")?;
        let lifetime = resp.lifetime();
        let signed_in = CachedToken::from_answer(&resp, &access, None);
        if let Err(e) = self.cache.store(&signed_in).await {
            // The run can go on; only the next one will have to sign in again.
            tracing::warn!(target: "dbxport::client", error = %e.0, "cannot keep the sign-in in the token cache");
        }
        Ok(Token {
            headers: vec![bearer(&signed_in.token_type, &access).map_err(FetchError::Other)?],
            lifetime,
        })
    }
}

/// Serves the loopback listener until the redirect with our `state` arrives. Each connection
/// is served on its own: browsers open spare connections that may never send a request.
async fn wait_for_code(listener: &TcpListener, state: &str) -> Result<String, String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, String>>(1);
    loop {
        tokio::select! {
            got = rx.recv() => {
                if let Some(r) = got {
                    return r;
                }
            }
            accepted = listener.accept() => {
                let (sock, _) = accepted.map_err(|e| format!("the sign-in listener failed: {e}"))?;
                let tx = tx.clone();
                let state = state.to_string();
                tokio::spawn(async move {
                    if let Some(r) = serve_one(sock, &state).await {
                        let _ = tx.send(r).await;
                    }
                });
            }
        }
    }
}

/// Answers one connection; the code (or the refusal) when it was the redirect.
async fn serve_one(mut sock: tokio::net::TcpStream, state: &str) -> Option<Result<String, String>> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    if tokio::time::timeout(READ_TIMEOUT, read).await.is_err() {
        return None;
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let outcome = parse_redirect(&head, state);
    let (status, body) = match &outcome {
        Redirect::Code(_) => (
            "200 OK",
            "Signed in to Databricks. You can close this window and return to dbxport.",
        ),
        Redirect::Denied(_) => (
            "200 OK",
            "The sign-in was not allowed. You can close this window.",
        ),
        Redirect::Other => ("404 Not Found", "Not the sign-in redirect."),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(answer.as_bytes()).await;
    let _ = sock.shutdown().await;
    match outcome {
        Redirect::Code(c) => Some(Ok(c)),
        Redirect::Denied(why) => Some(Err(format!("the sign-in was refused: {why}"))),
        Redirect::Other => None,
    }
}

/// Opens `url` in the desktop's browser, without waiting for it.
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        tracing::debug!(target: "dbxport::client", error = %e, "cannot open a browser; the address is shown instead");
    }
}

impl Source for ExternalBrowser {
    fn auth_type(&self) -> &'static str {
        "external-browser"
    }

    fn fetch<'a>(&'a self, t: &'a Transport, renew: bool) -> BoxFut<'a, Result<Token, FetchError>> {
        Box::pin(self.token(t, renew))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spare connection that never sends a request does not hold up the redirect.
    #[tokio::test]
    async fn an_idle_connection_does_not_block_the_redirect() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let waiting = tokio::spawn(async move { wait_for_code(&listener, "st").await });
        let _idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut real = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        real.write_all(b"GET /?code=c1&state=st HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("not held up")
            .unwrap();
        assert_eq!(got, Ok("c1".to_string()));
        let mut answer = String::new();
        real.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[test]
    fn redirects() {
        let head = "GET /?code=abc&state=s1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
        assert_eq!(parse_redirect(head, "s1"), Redirect::Code("abc".into()));
        assert_eq!(
            parse_redirect(head, "s2"),
            Redirect::Other,
            "a wrong state is ignored"
        );
        assert_eq!(
            parse_redirect("GET /favicon.ico HTTP/1.1\r\n\r\n", "s1"),
            Redirect::Other
        );
        assert_eq!(
            parse_redirect(
                "GET /?error=access_denied&error_description=no&state=s1 HTTP/1.1\r\n\r\n",
                "s1"
            ),
            Redirect::Denied("access_denied: no".into())
        );
        assert_eq!(
            parse_redirect("POST / HTTP/1.1\r\n\r\n", "s1"),
            Redirect::Other
        );
    }
}
