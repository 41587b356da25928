//! Signed URLs: where a real workspace hands out a cloud-storage URL (an S3 presigned URL, an
//! Azure SAS URI) for reading or writing one artifact file, the emulator hands out a URL of its
//! own, `/signed-artifacts/<path>?sp=r|w&se=<expiry>&sig=<hmac>`, naming a path in its DBFS
//! tree. Like cloud storage, the URL needs no Databricks credential: the signature (HMAC-SHA256
//! with a secret made at start) and the expiry (epoch seconds on the emulator's clock, so a
//! manual clock moves it too) are what is checked; a URL for reading cannot write, and a
//! changed path, access or expiry breaks the signature. Answers to refused or missing URLs are
//! S3-style XML with 403 or 404, as cloud storage sends them.
//!
//! Every API that hands out file credentials uses [`url`]: the workspace model registry
//! (`get-signed-download-uri`) and the tracking API (`artifacts/credentials-for-read|write`,
//! the logged-model credential calls); a Unity Catalog model store can use it the same way.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::dbfs::{dbfs_path, write_file};
use super::extract::{mark, Ctx, Params};
use super::state::{Shared, State};

/// How long a signed URL stays valid, as the 15 minutes real workspaces give.
pub(crate) const LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The path prefix signed URLs are served under (public: no credential).
pub(crate) const PREFIX: &str = "/signed-artifacts";

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `GET` of one file.
    Read,
    /// `PUT` of one file (created or replaced, with its parent folders).
    Write,
}

impl Access {
    fn code(self) -> &'static str {
        match self {
            Access::Read => "r",
            Access::Write => "w",
        }
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route(&format!("{PREFIX}/{{*path}}"), get(download).put(upload))
}

/// The URL the caller reaches this emulator at, from the request's `Host` header.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A signed URL granting `access` to the DBFS path `path` (absolute, normalised) for
/// [`LIFETIME`], on the emulator reached at `base` (see [`base_url`]).
pub(crate) fn url(st: &State, base: &str, access: Access, path: &str) -> String {
    let expires = (st.clock.wall_now() + LIFETIME)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let sig = signature(st, access.code(), expires, path);
    format!(
        "{base}{PREFIX}{}?sp={}&se={expires}&sig={sig}",
        encode_path(path),
        access.code()
    )
}

/// HMAC-SHA256 (RFC 2104) of the access, expiry and path, keyed with the emulator's salt.
fn signature(st: &State, access: &str, expires: u64, path: &str) -> String {
    let msg = format!("{access}\n{expires}\n{path}");
    hex::encode(hmac_sha256(st.url_salt.as_bytes(), msg.as_bytes()))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Percent-encodes a path, keeping `/` and the unreserved characters of RFC 3986.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A refusal as cloud storage sends it.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The refusal, as S3 words it.
fn refuse(status: StatusCode, code: &'static str, message: &str) -> Refusal {
    Refusal {
        status,
        code,
        message: message.to_string(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code, self.message
        );
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        r
    }
}

/// The DBFS path a request's URL grants `access` to, or the refusal to send.
fn check(st: &State, raw: &str, p: &Params, access: Access) -> Result<String, Refusal> {
    let denied = |m: &str| refuse(StatusCode::FORBIDDEN, "AccessDenied", m);
    let path = dbfs_path(&format!("/{}", raw.trim_start_matches('/')))
        .map_err(|_| denied("Invalid object path"))?;
    let (Some(sp), Some(se), Some(sig)) = (p.get("sp"), p.get("se"), p.get("sig")) else {
        return Err(denied(
            "Query-string authentication requires sp, se and sig",
        ));
    };
    let expires: u64 = se.parse().map_err(|_| denied("Invalid expiry"))?;
    if !constant_time_eq(signature(st, sp, expires, &path).as_bytes(), sig.as_bytes()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    let now = st
        .clock
        .wall_now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now >= expires {
        return Err(denied("Request has expired"));
    }
    if sp != access.code() {
        return Err(denied(match access {
            Access::Read => "This URL grants write access only",
            Access::Write => "This URL grants read access only",
        }));
    }
    Ok(path)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn download(ctx: Ctx, Path(raw): Path<String>, p: Params) -> Response {
    let st = ctx.state();
    let path = match check(&st, &raw, &p, Access::Read) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match st.dbfs.nodes.get(&path).filter(|n| !n.is_dir) {
        Some(n) => {
            let mut r = (StatusCode::OK, n.data.clone()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            mark(r, false)
        }
        None => refuse(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
        .into_response(),
    }
}

async fn upload(ctx: Ctx, Path(raw): Path<String>, p: Params, body: Bytes) -> Response {
    let mut st = ctx.state();
    let path = match check(&st, &raw, &p, Access::Write) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match write_file(&mut st, &path, body.to_vec(), true) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => refuse(StatusCode::CONFLICT, "InvalidRequest", &e.message).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls_are_checked() {
        let mut st = State::empty(None);
        st.clock = crate::clock::Clock::manual();
        let u = url(&st, "http://h", Access::Read, "/a b/c.txt");
        let (path, query) = u
            .strip_prefix("http://h/signed-artifacts")
            .unwrap()
            .split_once('?')
            .unwrap();
        assert_eq!(path, "/a%20b/c.txt");
        let p = Params::parse(query);
        assert_eq!(
            check(&st, "a b/c.txt", &p, Access::Read).unwrap(),
            "/a b/c.txt"
        );
        // Read-only, bound to its path, and tamper-evident.
        assert_eq!(
            check(&st, "a b/c.txt", &p, Access::Write)
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert!(check(&st, "a b/d.txt", &p, Access::Read).is_err());
        let longer = Params::parse(&query.replace("se=", "se=9"));
        assert!(check(&st, "a b/c.txt", &longer, Access::Read).is_err());
        // Expires with the emulator's clock.
        st.clock.advance(LIFETIME);
        assert!(check(&st, "a b/c.txt", &p, Access::Read).is_err());
    }
}
