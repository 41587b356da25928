//! The HTTP engine under every API call: one pooled `reqwest` client (rustls), a [`Call`]
//! description of a request, and [`Transport`], which runs calls with
//!
//! * bounded, adaptive concurrency ([`super::limiter`]): 429/503 halve the permitted
//!   concurrency for the whole client and pause it for `Retry-After`, recovery is additive;
//! * a learned request rate ([`super::pacer`]): after 429s, requests to the workspace are
//!   spaced at just under the rate it let through, so a long run settles at its rate limit
//!   instead of alternating bursts and pauses;
//! * retries within an overall time budget (default 300 s):
//!   - **every** call is retried on 429 and 503 (the server did not process it), after
//!     `Retry-After` (integer seconds, 1 s when absent), and on connection failures before
//!     anything was sent;
//!   - **idempotent** calls (GET/HEAD, and mutations the caller marks [`Retry::Safe`]) are also
//!     retried on other 5xx answers, SDK transient messages, timeouts and connections dropped
//!     mid-request, with exponential backoff and jitter;
//!   - nothing is retried on 401/403 or other 4xx: a refused token fails after one request.
//!   - a workspace that has never answered (connections refused, or its name unresolvable,
//!     from the first request on) is given up after three attempts: a wrong host is reported
//!     in seconds, not after the whole budget.
//! * per-request timeouts (default 60 s; streamed bodies use an idle timeout instead, so a
//!   multi-GiB download is not cut off), and downloads resumed with `Range` requests when
//!   their connection drops mid-body;
//! * a cap on answers read into memory (default 64 MiB, `--max-response-mb`): a host that
//!   streams without end fails the call with [`ClientError::ResponseTooLarge`] instead of
//!   exhausting memory. Streamed downloads ([`Transport::stream`]) are not held in memory and
//!   have no cap; error bodies are read up to 1 MiB only (they are parsed for a message);
//! * an HTML page where JSON was asked for (a login page, a proxy's page, with status 200) is
//!   [`ClientError::NotApi`], never retried, rather than a decoding error on every call;
//! * counters ([`Stats`]).
//!
//! Which mutations are safe to retry (replaying them has the same effect): workspace import
//! with `overwrite=true`, workspace mkdirs, secrets put (overwrites), secret ACL put and delete,
//! permissions PUT (replace) and PATCH (merge of levels), Unity Catalog grant PATCH, repos
//! update to a branch/tag, DBFS put with overwrite, DBFS delete, Files API PUT with overwrite,
//! MLflow set-tag / set-alias / update, OAuth token requests. Deletes are marked
//! [`Call::gone_means_done`]: a 404 answering a retry after an attempt whose answer was lost
//! means the first attempt deleted it. Creations (jobs create, repos create, scope create,
//! model create, DBFS add-block, SQL statements that write) are not safe.
//!
//! Logs (`tracing`, target `dbxport::client`) carry the method, route, object, status and
//! timing, never headers or bodies.

use super::auth::{Auth, AuthHeaders};
use super::error::{describe_reqwest, ApiError, ClientError};
use super::limiter::Limiter;
use super::pacer::Pacer;
use super::stats::{Counters, Stats};
use super::stream::ByteStream;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Tuning of the engine.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Requests in flight at most (`--concurrency`, default 8).
    pub concurrency: usize,
    /// Total time one call may spend including retries (default 300 s).
    pub retry_budget: Duration,
    /// Timeout of one buffered request, and the idle timeout of streamed ones (default 60 s).
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// First backoff step for non-throttle retries (default 500 ms), doubled each attempt.
    pub backoff_base: Duration,
    /// Largest backoff step (default 10 s).
    pub backoff_cap: Duration,
    /// `User-Agent` product part.
    pub user_agent: String,
    /// The largest answer read into memory, in bytes (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    /// Streamed downloads are not limited.
    pub max_response_bytes: u64,
    /// The clock cached tokens expire by: real time, or a manual [`crate::clock::Clock`] a
    /// test moves forward to check refreshing without waiting.
    pub clock: crate::clock::Clock,
}

/// The default cap of an answer read into memory: 64 MiB, far above any Databricks API answer
/// (pages of listings, a notebook export up to its 10 MB limit).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// How much of an error answer is read: enough for any error message.
const MAX_ERROR_BODY: usize = 1 << 20;

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            concurrency: 8,
            retry_budget: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(10),
            user_agent: format!("dbxport/{}", crate::VERSION),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            clock: crate::clock::Clock::real(),
        }
    }
}

/// Whether a call may be sent again after a failure that may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A read (GET, HEAD): retried on 5xx, timeouts and dropped connections.
    Idempotent,
    /// A mutation whose replay has the same effect (marked by the caller): retried like a read.
    Safe,
    /// A mutation that may have been applied: retried only on 429/503 and failed connects.
    Unsafe,
}

/// One part of a multipart form.
#[derive(Debug, Clone)]
pub struct FormPart {
    /// Field name.
    pub name: String,
    /// File name, for file parts.
    pub filename: Option<String>,
    /// Content.
    pub data: Bytes,
}

/// A request body.
enum CallBody {
    Empty,
    Json(Result<Bytes, String>),
    Form(Vec<(String, String)>),
    Bytes(Bytes, String),
    Multipart(Vec<FormPart>),
    /// A file, re-opened on each attempt (so uploads from disk can be retried).
    File(PathBuf, String),
    /// A one-shot stream; never replayed.
    Stream(Mutex<Option<reqwest::Body>>, Option<u64>, String),
}

impl CallBody {
    fn replayable(&self) -> bool {
        !matches!(self, CallBody::Stream(..))
    }

    fn streaming(&self) -> bool {
        matches!(self, CallBody::Stream(..) | CallBody::File(..))
    }
}

/// A description of one API call: method, route, path, query, body, retry safety, and the
/// object it concerns (for messages).
pub struct Call {
    method: Method,
    route: &'static str,
    path: String,
    absolute: bool,
    query: Vec<(String, String)>,
    body: CallBody,
    retry: Retry,
    object: String,
    headers: Vec<(HeaderName, String)>,
    authenticated: bool,
    gone_means_done: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Call {
    /// A call of `method` on `route` (also its path until [`Call::path`] says otherwise).
    /// `route` keys the request counters, so ids in it are written as templates (`{id}`).
    pub fn new(method: Method, route: &'static str) -> Call {
        let retry = if method == Method::GET || method == Method::HEAD {
            Retry::Idempotent
        } else {
            Retry::Unsafe
        };
        Call {
            method,
            route,
            path: route.to_string(),
            absolute: false,
            query: Vec::new(),
            body: CallBody::Empty,
            retry,
            object: String::new(),
            headers: Vec::new(),
            authenticated: true,
            gone_means_done: false,
        }
    }

    /// `GET route`.
    pub fn get(route: &'static str) -> Call {
        Call::new(Method::GET, route)
    }

    /// `POST route`.
    pub fn post(route: &'static str) -> Call {
        Call::new(Method::POST, route)
    }

    /// `PUT route`.
    pub fn put(route: &'static str) -> Call {
        Call::new(Method::PUT, route)
    }

    /// `PATCH route`.
    pub fn patch(route: &'static str) -> Call {
        Call::new(Method::PATCH, route)
    }

    /// `DELETE route`.
    pub fn delete(route: &'static str) -> Call {
        Call::new(Method::DELETE, route)
    }

    /// `HEAD route`.
    pub fn head(route: &'static str) -> Call {
        Call::new(Method::HEAD, route)
    }

    /// The concrete path (already percent-encoded where needed), below the host.
    pub fn path(mut self, path: impl Into<String>) -> Call {
        self.path = path.into();
        self
    }

    /// An absolute URL instead of a path below the host (OIDC endpoints, signed URIs). Its
    /// query string is never shown in messages or logs.
    pub fn url(mut self, url: impl Into<String>) -> Call {
        self.path = url.into();
        self.absolute = true;
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl ToString) -> Call {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds a query parameter when `value` is `Some`.
    pub fn query_opt<V: ToString>(self, key: &str, value: Option<V>) -> Call {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// A JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Call {
        self.body = CallBody::Json(
            serde_json::to_vec(body)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
        );
        self
    }

    /// A JSON body already serialized (e.g. into a buffer that zeroizes itself).
    pub fn json_bytes(mut self, body: Bytes) -> Call {
        self.body = CallBody::Json(Ok(body));
        self
    }

    /// A form-urlencoded body.
    pub fn form(mut self, pairs: Vec<(String, String)>) -> Call {
        self.body = CallBody::Form(pairs);
        self
    }

    /// A raw body.
    pub fn bytes(mut self, data: Bytes, content_type: &str) -> Call {
        self.body = CallBody::Bytes(data, content_type.to_string());
        self
    }

    /// A multipart/form-data body.
    pub fn multipart(mut self, parts: Vec<FormPart>) -> Call {
        self.body = CallBody::Multipart(parts);
        self
    }

    /// The contents of a file, streamed; re-opened on each attempt.
    pub fn file(mut self, path: PathBuf, content_type: &str) -> Call {
        self.body = CallBody::File(path, content_type.to_string());
        self
    }

    /// A one-shot streamed body (never retried once handed over).
    pub fn stream(mut self, body: reqwest::Body, len: Option<u64>, content_type: &str) -> Call {
        self.body = CallBody::Stream(Mutex::new(Some(body)), len, content_type.to_string());
        self
    }

    /// Sets the retry safety.
    pub fn retry(mut self, r: Retry) -> Call {
        self.retry = r;
        self
    }

    /// Marks a mutation whose replay has the same effect as sending it once.
    pub fn safe_to_retry(self) -> Call {
        self.retry(Retry::Safe)
    }

    /// Marks a delete: safe to retry, and a 404 (`RESOURCE_DOES_NOT_EXIST`) answering a retry
    /// after an attempt whose answer was lost (dropped connection, timeout, 5xx) counts as
    /// done, since that attempt most likely deleted the object. A 404 on the first attempt is
    /// still an error.
    pub fn gone_means_done(mut self) -> Call {
        self.gone_means_done = true;
        self.retry(Retry::Safe)
    }

    /// Names the object the call concerns (`path=/Users/x`, `job_id=7`), for messages.
    pub fn object(mut self, object: impl Into<String>) -> Call {
        self.object = object.into();
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    /// Sends no `Authorization` header (discovery, token and signed-URI calls).
    pub fn unauthenticated(mut self) -> Call {
        self.authenticated = false;
        self
    }

    /// The call as messages name it: `GET /api/2.0/workspace/list path=/Users/x`.
    pub fn describe(&self) -> String {
        let target = if self.absolute {
            // Never show a query string: signed URLs carry credentials there.
            match reqwest::Url::parse(&self.path) {
                Ok(u) => {
                    format!(
                        "{}://{}{}",
                        u.scheme(),
                        u.host_str().unwrap_or(""),
                        u.port().map(|p| format!(":{p}")).unwrap_or_default()
                    ) + u.path()
                }
                Err(_) => "<url>".to_string(),
            }
        } else {
            self.route.to_string()
        };
        if self.object.is_empty() {
            format!("{} {target}", self.method)
        } else {
            format!("{} {target} {}", self.method, self.object)
        }
    }

    /// A copy of a GET/HEAD call without a body, for resuming downloads.
    fn clone_bodiless(&self) -> Option<Call> {
        if !matches!(self.body, CallBody::Empty)
            || !matches!(self.retry, Retry::Idempotent | Retry::Safe)
        {
            return None;
        }
        Some(Call {
            method: self.method.clone(),
            route: self.route,
            path: self.path.clone(),
            absolute: self.absolute,
            query: self.query.clone(),
            body: CallBody::Empty,
            retry: self.retry,
            object: self.object.clone(),
            headers: self.headers.clone(),
            authenticated: self.authenticated,
            gone_means_done: false,
        })
    }

    fn counter_key(&self) -> String {
        if self.absolute {
            format!("{} <external>", self.method)
        } else {
            format!("{} {}", self.method, self.route)
        }
    }

    fn idempotent(&self) -> bool {
        matches!(self.retry, Retry::Idempotent | Retry::Safe)
    }

    /// True when the caller left `Accept` to the engine, which then asks for JSON.
    fn wants_json(&self) -> bool {
        !self.headers.iter().any(|(k, _)| k == ACCEPT)
    }

    /// The host the call goes to, for messages: the workspace, or an absolute URL's host.
    fn host_of(&self, workspace: &str) -> String {
        if !self.absolute {
            return workspace.to_string();
        }
        reqwest::Url::parse(&self.path)
            .map(|u| {
                format!(
                    "{}://{}{}",
                    u.scheme(),
                    u.host_str().unwrap_or(""),
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                )
            })
            .unwrap_or_else(|_| "<url>".to_string())
    }
}

/// A fully read 2xx answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Buffer,
    Stream,
}

enum Outcome {
    Done(Fetched),
    Streaming(reqwest::Response),
}

enum Failure {
    Api(ApiError),
    Send(reqwest::Error),
    Body(reqwest::Error),
    /// The answer exceeded the cap; nothing more is read.
    TooLarge(u64),
    /// An HTML page came back where JSON was asked for.
    NotApi,
}

/// True when a successful answer is an HTML page: by its `Content-Type`, or (when the type
/// says nothing useful) by how the body starts.
fn is_html(headers: &HeaderMap, body: Option<&[u8]>) -> bool {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct.starts_with("text/html") || ct.starts_with("application/xhtml") {
        return true;
    }
    let Some(body) = body else { return false };
    if ct.contains("json") {
        return false;
    }
    let start: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    start.starts_with(b"<!doctype html") || start.starts_with(b"<html")
}

/// Reads a body up to `cap` bytes: `Ok(None)` when it is longer (the rest is not read).
async fn read_capped(resp: reqwest::Response, cap: u64) -> Result<Option<Bytes>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > cap) {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if (body.len() + chunk.len()) as u64 > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// Reads an error body up to [`MAX_ERROR_BODY`]; a body cut off (or longer) is kept as far as
/// it got, since only its message is wanted.
async fn read_error_body(resp: reqwest::Response) -> Bytes {
    let mut body = bytes::BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body.freeze()
}

struct Inner {
    http: reqwest::Client,
    host: String,
    /// True once the workspace has answered anything: from then on a refused connection is
    /// an outage to wait out, before it a sign of a wrong host (see [`UNREACHED_ATTEMPTS`]).
    reached: AtomicBool,
    auth: Auth,
    limiter: Arc<Limiter>,
    pacer: Pacer,
    counters: Counters,
    /// The first refusal of the credentials: later authenticated calls fail at once with it
    /// instead of each sending a request the workspace will refuse again.
    refused: Mutex<Option<ApiError>>,
    options: TransportOptions,
}

/// The engine. Cheap to clone; clones share the pool, limiter, token cache and counters.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("host", &self.inner.host)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds the engine for `host` (normalised) with `auth`.
    pub(crate) fn new(
        host: &str,
        auth: Auth,
        options: TransportOptions,
    ) -> Result<Transport, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(format!("{} auth/{}", options.user_agent, auth.auth_type()))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.request_timeout)
            .pool_max_idle_per_host(options.concurrency.max(1) * 2)
            .build()
            .map_err(|e| ClientError::Transport {
                call: "http client setup".into(),
                message: describe_reqwest(&e),
                connect: false,
                timeout: false,
            })?;
        Ok(Transport {
            inner: Arc::new(Inner {
                http,
                host: host.to_string(),
                reached: AtomicBool::new(false),
                auth,
                limiter: Limiter::new(options.concurrency),
                pacer: Pacer::default(),
                counters: Counters::default(),
                refused: Mutex::new(None),
                options,
            }),
        })
    }

    /// The workspace URL.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The options this engine was built with.
    pub fn options(&self) -> &TransportOptions {
        &self.inner.options
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let l = &self.inner.limiter;
        self.inner.counters.snapshot(l.limit(), l.min_limit())
    }

    /// Runs a call and decodes its JSON answer (an empty body reads as `{}`).
    pub async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        let f = self.fetch(&call).await?;
        decode_json(&call.describe(), &f.body)
    }

    /// Runs a call and discards its answer.
    pub async fn send(&self, call: Call) -> Result<(), ClientError> {
        self.fetch(&call).await.map(|_| ())
    }

    /// Runs a call and returns its whole answer.
    pub async fn fetch(&self, call: &Call) -> Result<Fetched, ClientError> {
        match self.run(call, Mode::Buffer).await {
            Ok(Outcome::Done(f)) => Ok(f),
            Ok(Outcome::Streaming(_)) => unreachable!("buffered mode never streams"),
            Err(e) => {
                self.inner.counters.failure();
                Err(e)
            }
        }
    }

    /// Runs a call and hands back its body as a stream once the headers are in. Retries cover
    /// everything up to the headers; when the connection drops mid-body, a GET is resumed
    /// with a `Range` request from where it broke off (up to 5 times, when the server answers
    /// 206 with exactly that range); otherwise the stream ends with an error naming the call.
    pub async fn stream(&self, call: Call) -> Result<ByteStream, ClientError> {
        let resp = match self.run(&call, Mode::Stream).await {
            Ok(Outcome::Streaming(r)) => r,
            Ok(Outcome::Done(f)) => return Ok(ByteStream::from_bytes(f.body)),
            Err(e) => {
                self.inner.counters.failure();
                return Err(e);
            }
        };
        let headers = resp.headers().clone();
        let len = resp.content_length();
        let state = StreamState {
            t: self.clone(),
            describe: call.describe(),
            resume: call.clone_bodiless(),
            body: Box::pin(resp.bytes_stream()),
            received: 0,
            resumes: 0,
        };
        let s = futures_util::stream::unfold(Some(state), |st| async move {
            let mut st = st?;
            loop {
                match st.body.next().await {
                    None => return None,
                    Some(Ok(b)) => {
                        st.t.inner.counters.received(b.len());
                        st.received += b.len() as u64;
                        return Some((Ok(b), Some(st)));
                    }
                    Some(Err(e)) => {
                        let err = ClientError::Transport {
                            call: st.describe.clone(),
                            message: describe_reqwest(&e),
                            connect: false,
                            timeout: e.is_timeout(),
                        };
                        if st.resumes < MAX_RESUMES {
                            if let Some(body) = st.resume_at_offset().await {
                                st.body = body;
                                continue;
                            }
                        }
                        st.t.inner.counters.failure();
                        return Some((Err(err), None));
                    }
                }
            }
        });
        Ok(ByteStream::new(s, len, headers))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let o = &self.inner.options;
        let exp = o
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(o.backoff_cap);
        // Equal jitter: half fixed, half random, so concurrent retries spread out.
        exp / 2 + exp.mul_f64(rand::random::<f64>() / 2.0)
    }

    async fn build(
        &self,
        call: &Call,
        auth: Option<AuthHeaders>,
        mode: Mode,
    ) -> Result<reqwest::Request, ClientError> {
        let url = if call.absolute {
            call.path.clone()
        } else {
            format!("{}{}", self.inner.host, call.path)
        };
        let mut rb = self.inner.http.request(call.method.clone(), url);
        if !call.query.is_empty() {
            rb = rb.query(&call.query);
        }
        for (name, value) in auth.into_iter().flatten() {
            rb = rb.header(name, value);
        }
        let mut has_accept = false;
        for (k, v) in &call.headers {
            has_accept |= k == ACCEPT;
            rb = rb.header(k.clone(), v.as_str());
        }
        if !has_accept && mode == Mode::Buffer {
            rb = rb.header(ACCEPT, "application/json");
        }
        if mode == Mode::Buffer && !call.body.streaming() {
            rb = rb.timeout(self.inner.options.request_timeout);
        }
        let describe = || call.describe();
        rb = match &call.body {
            CallBody::Empty => rb,
            CallBody::Json(Ok(b)) => rb.header(CONTENT_TYPE, "application/json").body(b.clone()),
            CallBody::Json(Err(e)) => {
                return Err(ClientError::Protocol {
                    call: describe(),
                    message: format!("cannot encode the request body: {e}"),
                })
            }
            CallBody::Form(pairs) => rb.form(pairs),
            CallBody::Bytes(b, ct) => rb.header(CONTENT_TYPE, ct.as_str()).body(b.clone()),
            CallBody::Multipart(parts) => {
                let mut form = reqwest::multipart::Form::new();
                for p in parts {
                    let mut part =
                        reqwest::multipart::Part::stream(reqwest::Body::from(p.data.clone()));
                    if let Some(f) = &p.filename {
                        part = part.file_name(f.clone());
                    }
                    form = form.part(p.name.clone(), part);
                }
                rb.multipart(form)
            }
            CallBody::File(path, ct) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|source| ClientError::Io {
                        call: describe(),
                        source,
                    })?;
                let len = file.metadata().await.ok().map(|m| m.len());
                let body = reqwest::Body::wrap_stream(super::stream::reader_stream(file, 1 << 20));
                let mut rb = rb.header(CONTENT_TYPE, ct.as_str());
                if let Some(l) = len {
                    rb = rb.header(reqwest::header::CONTENT_LENGTH, l);
                }
                rb.body(body)
            }
            CallBody::Stream(slot, len, ct) => {
                let body = slot
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .ok_or_else(|| ClientError::Protocol {
                        call: describe(),
                        message:
                            "the streamed request body was already sent once and cannot be replayed"
                                .into(),
                    })?;
                let mut rb = rb.header(CONTENT_TYPE, ct.as_str());
                if let Some(l) = len {
                    rb = rb.header(reqwest::header::CONTENT_LENGTH, *l);
                }
                rb.body(body)
            }
        };
        rb.build().map_err(|e| ClientError::Protocol {
            call: describe(),
            message: format!("cannot build the request: {}", describe_reqwest(&e)),
        })
    }

    async fn run(&self, call: &Call, mode: Mode) -> Result<Outcome, ClientError> {
        let inner = &self.inner;
        let started = Instant::now();
        let budget = inner.options.retry_budget;
        let describe = call.describe();
        let mut attempt: u32 = 0;
        // True once an attempt may have reached the server but its answer was lost.
        let mut answer_lost = false;
        // True once a refused token was replaced and the call sent again.
        let mut auth_renewed = false;
        loop {
            attempt += 1;
            if call.authenticated {
                let refused = inner
                    .refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if let Some(first) = refused {
                    return Err(ClientError::Unauthorized(Box::new(ApiError {
                        call: describe,
                        message: format!(
                            "not sent: the credentials were already refused ({first})"
                        ),
                        ..first
                    })));
                }
            }
            // Fetched before a slot is taken: a token request needs a slot of its own.
            let auth = if call.authenticated {
                Some(inner.auth.headers(self).await?)
            } else {
                None
            };
            let used = auth.clone();
            let slot = inner.limiter.acquire().await;
            // Only the workspace is paced; external hosts (signed URLs) have limits of their own.
            if !call.absolute {
                inner.pacer.wait().await;
            }
            let epoch = slot.epoch;
            let request = self.build(call, auth, mode).await?;
            inner.counters.request(&call.counter_key());
            let t0 = Instant::now();
            let result = match inner.http.execute(request).await {
                Err(e) => Err(Failure::Send(e)),
                Ok(resp) => {
                    if !call.absolute {
                        inner.reached.store(true, Ordering::Relaxed);
                    }
                    let status = resp.status();
                    if is_private_link_redirect(resp.url()) {
                        Err(Failure::Api(ApiError {
                            call: describe.clone(),
                            status: 403,
                            error_code: Some("PRIVATE_LINK_VALIDATION_ERROR".into()),
                            message: "the workspace redirected to its login page: it is reachable only through a private link, from a network this machine is not on".into(),
                            request_id: None,
                            retry_after: None,
                        }))
                    } else if status.is_success() {
                        if mode == Mode::Stream {
                            Ok(Outcome::Streaming(resp))
                        } else {
                            let headers = resp.headers().clone();
                            let json = call.wants_json();
                            if json && is_html(&headers, None) {
                                Err(Failure::NotApi)
                            } else {
                                let cap = inner.options.max_response_bytes;
                                match read_capped(resp, cap).await {
                                    Ok(Some(body)) if json && is_html(&headers, Some(&body)) => {
                                        Err(Failure::NotApi)
                                    }
                                    Ok(Some(body)) => {
                                        inner.counters.received(body.len());
                                        Ok(Outcome::Done(Fetched {
                                            status,
                                            headers,
                                            body,
                                        }))
                                    }
                                    Ok(None) => Err(Failure::TooLarge(cap)),
                                    Err(e) => Err(Failure::Body(e)),
                                }
                            }
                        }
                    } else {
                        let headers = resp.headers().clone();
                        // An error body cut off mid-way is parsed as far as it got.
                        let body = read_error_body(resp).await;
                        inner.counters.received(body.len());
                        Err(Failure::Api(ApiError::parse(
                            describe.clone(),
                            status.as_u16(),
                            &headers,
                            &body,
                        )))
                    }
                }
            };
            drop(slot);
            let failure = match result {
                Ok(o) => {
                    inner.limiter.on_success();
                    if !call.absolute {
                        inner.pacer.on_success();
                    }
                    tracing::debug!(target: "dbxport::client", call = %describe, attempt, ms = t0.elapsed().as_millis() as u64, "ok");
                    return Ok(o);
                }
                Err(f) => f,
            };
            if let Failure::Api(e) = &failure {
                if call.gone_means_done && answer_lost && e.is_not_found() {
                    tracing::debug!(target: "dbxport::client", call = %describe, attempt, "already gone after an attempt whose answer was lost: done");
                    inner.limiter.on_success();
                    return Ok(Outcome::Done(Fetched {
                        status: StatusCode::NO_CONTENT,
                        headers: HeaderMap::new(),
                        body: Bytes::new(),
                    }));
                }
            }
            // Sticky: once an attempt may have been applied, a later 404 may be its doing.
            answer_lost |= match &failure {
                Failure::Api(e) => e.status >= 500 && !e.is_throttled(),
                Failure::Send(e) => !e.is_connect(),
                Failure::Body(_) => true,
                Failure::TooLarge(_) | Failure::NotApi => false,
            };
            // An expiring token refused mid-run (expired early, or revoked and re-issued) is
            // replaced once before the refusal counts.
            if let (Failure::Api(e), Some(used)) = (&failure, &used) {
                if e.is_credentials_refused()
                    && !auth_renewed
                    && call.body.replayable()
                    && inner.auth.invalidate(used).await
                {
                    auth_renewed = true;
                    tracing::debug!(target: "dbxport::client", call = %describe, "token refused; renewing it once");
                    continue;
                }
            }
            let (err, wait) = self.decide(call, &describe, failure, attempt, epoch);
            if matches!(err, ClientError::Transport { connect: true, .. })
                && !call.absolute
                && attempt >= UNREACHED_ATTEMPTS
                && !inner.reached.load(Ordering::Relaxed)
            {
                return Err(ClientError::Unreachable {
                    host: inner.host.clone(),
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            let Some(wait) = wait else {
                tracing::debug!(target: "dbxport::client", call = %describe, attempt, error = %err, "failed");
                return Err(err);
            };
            let elapsed = started.elapsed();
            if elapsed + wait > budget {
                tracing::warn!(target: "dbxport::client", call = %describe, attempt, "retry budget exhausted");
                return Err(ClientError::RetriesExhausted {
                    call: describe,
                    attempts: attempt,
                    elapsed,
                    budget,
                    last: Box::new(err),
                });
            }
            tracing::debug!(target: "dbxport::client", call = %describe, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
            inner.counters.retry();
            tokio::time::sleep(wait).await;
        }
    }

    /// Classifies a failed attempt: the error, and the wait before a retry (or `None`).
    fn decide(
        &self,
        call: &Call,
        describe: &str,
        f: Failure,
        attempt: u32,
        epoch: u64,
    ) -> (ClientError, Option<Duration>) {
        let replayable = call.body.replayable();
        let idempotent = call.idempotent() && replayable;
        match f {
            Failure::Api(e) => {
                if e.is_credentials_refused() {
                    if call.authenticated {
                        let mut r = self.inner.refused.lock().unwrap_or_else(|p| p.into_inner());
                        r.get_or_insert_with(|| e.clone());
                    }
                    return (ClientError::Unauthorized(Box::new(e)), None);
                }
                if e.is_throttled() {
                    self.inner.counters.throttle();
                    let after = e.retry_after.unwrap_or(super::error::DEFAULT_RETRY_AFTER);
                    let counted = self.inner.limiter.on_throttle(epoch, after);
                    // A rate limit (429) teaches a rate; overload (503) does not.
                    if counted && e.status == 429 && !call.absolute {
                        self.inner.pacer.on_throttle();
                    }
                    let jitter = Duration::from_millis(rand::random::<u64>() % 100);
                    return (
                        ClientError::Api(Box::new(e)),
                        replayable.then_some(after + jitter),
                    );
                }
                let transient = e.status >= 500 || e.is_transient_message();
                let wait =
                    (idempotent && transient && e.status != 501).then(|| self.backoff(attempt));
                let err = if e.is_too_large() {
                    ClientError::TooLarge(Box::new(e))
                } else {
                    ClientError::Api(Box::new(e))
                };
                (err, wait)
            }
            Failure::Send(e) => {
                let connect = e.is_connect();
                let err = ClientError::Transport {
                    call: describe.to_string(),
                    message: describe_reqwest(&e),
                    connect,
                    timeout: e.is_timeout(),
                };
                // A refused connection sent nothing, so any replayable call may go again.
                let wait = ((connect && replayable) || idempotent).then(|| self.backoff(attempt));
                (err, wait)
            }
            Failure::Body(e) => {
                let err = ClientError::Transport {
                    call: describe.to_string(),
                    message: describe_reqwest(&e),
                    connect: false,
                    timeout: e.is_timeout(),
                };
                (err, idempotent.then(|| self.backoff(attempt)))
            }
            // Asking again would read the same endless or foreign answer.
            Failure::TooLarge(limit) => (
                ClientError::ResponseTooLarge {
                    call: describe.to_string(),
                    limit,
                },
                None,
            ),
            Failure::NotApi => (
                ClientError::NotApi {
                    call: describe.to_string(),
                    host: call.host_of(&self.inner.host),
                },
                None,
            ),
        }
    }
}

/// Private Link workspaces answer requests from other networks with a redirect to their login
/// page, which looks like a success to an HTTP client.
fn is_private_link_redirect(url: &reqwest::Url) -> bool {
    url.path() == "/login.html"
        && url
            .query()
            .is_some_and(|q| q.contains("error=private-link-validation-error"))
}

/// How often one download is resumed after its connection drops.
const MAX_RESUMES: u32 = 5;

/// Connection attempts to a workspace that has never answered before the client gives up
/// (with backoff, a few seconds): a host refused or unresolvable from the very first request
/// is most likely wrong, and waiting out the whole retry budget only delays saying so.
const UNREACHED_ATTEMPTS: u32 = 3;

type BodyStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A download in progress, able to resume with a `Range` request where it broke off.
struct StreamState {
    t: Transport,
    describe: String,
    resume: Option<Call>,
    body: BodyStream,
    received: u64,
    resumes: u32,
}

impl StreamState {
    /// Asks for the rest of the body from `received` on; `None` when the call cannot be
    /// resumed or the server does not answer with exactly that range.
    async fn resume_at_offset(&mut self) -> Option<BodyStream> {
        let call = self
            .resume
            .as_ref()?
            .clone_bodiless()?
            .header(reqwest::header::RANGE, format!("bytes={}-", self.received));
        self.resumes += 1;
        tracing::debug!(target: "dbxport::client", call = %self.describe, offset = self.received, "resuming download");
        let resp = match self.t.run(&call, Mode::Stream).await {
            Ok(Outcome::Streaming(r)) => r,
            _ => return None,
        };
        let start = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        (resp.status() == StatusCode::PARTIAL_CONTENT && start == Some(self.received))
            .then(|| Box::pin(resp.bytes_stream()) as BodyStream)
    }
}

/// Decodes a JSON answer; an empty body reads as `{}`.
pub(crate) fn decode_json<T: DeserializeOwned>(call: &str, body: &[u8]) -> Result<T, ClientError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ClientError::Decode {
        call: call.to_string(),
        message: e.to_string(),
    })
}
