//! Errors of the REST client: [`ApiError`] (a non-2xx answer, parsed tolerantly from every body
//! shape Databricks is known to send) and [`ClientError`], which wraps every failure of a call
//! and always names the call it concerns.
//!
//! Bodies are never copied into messages beyond the server's own error text, so a secret in a
//! request or response cannot leak through an error.

use super::config::ConfigError;
use crate::hints::{Filled, Hint};
use regex::Regex;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

/// How a failed call is classified, error code first and HTTP status second (as the SDKs do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400 / `INVALID_PARAMETER_VALUE`, `BAD_REQUEST`, `MALFORMED_REQUEST`.
    BadRequest,
    /// 401: the credentials were not accepted.
    Unauthenticated,
    /// 403 / `PERMISSION_DENIED`.
    PermissionDenied,
    /// 404 / `RESOURCE_DOES_NOT_EXIST`: the object asked for does not exist.
    NotFound,
    /// `ENDPOINT_NOT_FOUND`: the workspace does not serve this API at all (an older or
    /// differently configured workspace). A missing API, never a missing object.
    EndpointNotFound,
    /// `RESOURCE_ALREADY_EXISTS`, `ALREADY_EXISTS`.
    AlreadyExists,
    /// 409 / `ABORTED`, `RESOURCE_CONFLICT`.
    Conflict,
    /// `INVALID_STATE`.
    InvalidState,
    /// 429 / `REQUEST_LIMIT_EXCEEDED`, `RESOURCE_EXHAUSTED`.
    TooManyRequests,
    /// `MAX_NOTEBOOK_SIZE_EXCEEDED` and the other size limits.
    TooLarge,
    /// 499.
    Cancelled,
    /// 500 / `INTERNAL_ERROR`, `UNKNOWN`, `DATA_LOSS`.
    Internal,
    /// 501.
    NotImplemented,
    /// 503.
    Unavailable,
    /// 504.
    DeadlineExceeded,
    /// Anything else.
    Other,
}

/// A non-2xx answer from the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The call, e.g. `GET /api/2.0/workspace/list path=/Users/x`.
    pub call: String,
    /// HTTP status.
    pub status: u16,
    /// The error code, numeric codes stringified (`403`), SCIM errors as `SCIM_<status>`.
    pub error_code: Option<String>,
    /// The server's message, or the HTTP reason when the body said nothing.
    pub message: String,
    /// The request id, when the server gave one.
    pub request_id: Option<String>,
    /// `Retry-After` of a 429 or 503 (integer seconds; 1 s when absent or unparseable).
    pub retry_after: Option<Duration>,
}

fn string_error_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^([A-Z_]+): (.*)").expect("static regex"))
}

fn html_res() -> &'static [Regex; 2] {
    static RE: OnceLock<[Regex; 2]> = OnceLock::new();
    RE.get_or_init(|| {
        [
            Regex::new(r"<pre>(.*)</pre>").expect("static regex"),
            Regex::new(r"<title>(.*)</title>").expect("static regex"),
        ]
    })
}

fn jobs_not_found_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(Job|Cluster|Run) .* does not exist|^Run: .* in job: .* doesn't exist")
            .expect("static regex")
    })
}

/// The default wait of a 429/503 without a usable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Parses `Retry-After` as integer seconds (the HTTP-date form is not used by Databricks).
pub fn parse_retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

fn reason(status: u16) -> String {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(str::to_string)
        .unwrap_or_else(|| format!("http {status}"))
}

fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn code_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ApiError {
    /// Builds the error for a non-2xx answer from its status, headers and body, accepting every
    /// body shape of the reference: JSON `{error_code, message}` (string or numeric code),
    /// legacy `{error}`, SCIM `{detail, status, scimType}`, plain `CODE: message`, HTML pages
    /// (`<pre>` or `<title>`), and empty bodies.
    pub fn parse(
        call: impl Into<String>,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ApiError {
        let mut err = ApiError {
            call: call.into(),
            status,
            error_code: None,
            message: String::new(),
            request_id: headers
                .get("x-request-id")
                .or_else(|| headers.get("x-databricks-request-id"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            retry_after: (status == 429 || status == 503).then(|| parse_retry_after(headers)),
        };
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            err.message = reason(status);
            return err;
        }
        if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
            err.message = obj
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("request failed")
                .to_string();
            err.error_code = obj.get("error_code").and_then(code_string);
            match obj.get("error") {
                Some(Value::String(e)) => {
                    // OAuth endpoints answer {error, error_description}; API 1.2 answers {error}.
                    if let Some(d) = obj.get("error_description").and_then(Value::as_str) {
                        err.error_code.get_or_insert_with(|| e.clone());
                        err.message = d.to_string();
                    } else {
                        err.message = e.clone();
                    }
                }
                Some(other @ Value::Object(_)) => err.message = other.to_string(),
                _ => {}
            }
            if let Some(detail) = obj.get("detail").and_then(Value::as_str) {
                if !detail.is_empty() {
                    let detail = if detail == "null" {
                        "SCIM API Internal Error"
                    } else {
                        detail
                    };
                    let scim_type = obj.get("scimType").and_then(Value::as_str).unwrap_or("");
                    err.message = format!("{scim_type} {detail}").trim().to_string();
                    let st = obj
                        .get("status")
                        .and_then(code_string)
                        .unwrap_or_else(|| status.to_string());
                    err.error_code = Some(format!("SCIM_{st}"));
                }
            }
            if let Some(details) = obj.get("details").and_then(Value::as_array) {
                for d in details {
                    let is_request_info = d
                        .get("@type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.ends_with("RequestInfo"));
                    if let (true, Some(id)) =
                        (is_request_info, d.get("request_id").and_then(Value::as_str))
                    {
                        err.request_id = Some(id.to_string());
                    }
                }
            }
            return err;
        }
        if let Some(c) = string_error_re().captures(&text) {
            err.error_code = Some(c[1].to_string());
            err.message = c[2].trim().to_string();
            return err;
        }
        for re in html_res() {
            if let Some(c) = re.captures(&text) {
                let m = unescape_html(c[1].trim());
                let r = reason(status);
                err.message = if m.is_empty() { r.clone() } else { m };
                err.error_code = Some(r.to_ascii_uppercase().replace(' ', "_"));
                return err;
            }
        }
        // Unknown shape: keep a short, single-line excerpt so the user sees what came back.
        let mut excerpt: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        if text.chars().count() > 200 {
            excerpt.push('…');
        }
        err.message = format!("unparseable error body: {}", excerpt.trim());
        err
    }

    /// The classification of this error: error code first, then HTTP status.
    pub fn kind(&self) -> ErrorKind {
        if let Some(code) = self.error_code.as_deref() {
            let by_code = match code {
                "INVALID_PARAMETER_VALUE" | "BAD_REQUEST" | "MALFORMED_REQUEST" => {
                    // The jobs/clusters/runs "does not exist" answers are 400s that mean 404.
                    if self.status == 400 && jobs_not_found_re().is_match(&self.message) {
                        Some(ErrorKind::NotFound)
                    } else {
                        Some(ErrorKind::BadRequest)
                    }
                }
                "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND" | "FEATURE_DISABLED_OR_NOT_FOUND" => {
                    Some(ErrorKind::NotFound)
                }
                "ENDPOINT_NOT_FOUND" => Some(ErrorKind::EndpointNotFound),
                "RESOURCE_ALREADY_EXISTS" | "ALREADY_EXISTS" => Some(ErrorKind::AlreadyExists),
                "ABORTED" | "RESOURCE_CONFLICT" => Some(ErrorKind::Conflict),
                "INVALID_STATE" => Some(ErrorKind::InvalidState),
                "RESOURCE_EXHAUSTED" | "REQUEST_LIMIT_EXCEEDED" | "TOO_MANY_REQUESTS" => {
                    Some(ErrorKind::TooManyRequests)
                }
                "MAX_NOTEBOOK_SIZE_EXCEEDED"
                | "MAX_BLOCK_SIZE_EXCEEDED"
                | "MAX_READ_SIZE_EXCEEDED" => Some(ErrorKind::TooLarge),
                "PERMISSION_DENIED" => Some(ErrorKind::PermissionDenied),
                "UNAUTHENTICATED" => Some(ErrorKind::Unauthenticated),
                "UNKNOWN" | "DATA_LOSS" | "INTERNAL_ERROR" => Some(ErrorKind::Internal),
                "TEMPORARILY_UNAVAILABLE" => Some(ErrorKind::Unavailable),
                _ => None,
            };
            if let Some(k) = by_code {
                return k;
            }
        }
        match self.status {
            400 => ErrorKind::BadRequest,
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::TooManyRequests,
            499 => ErrorKind::Cancelled,
            500 => ErrorKind::Internal,
            501 => ErrorKind::NotImplemented,
            503 => ErrorKind::Unavailable,
            504 => ErrorKind::DeadlineExceeded,
            _ => ErrorKind::Other,
        }
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// True when the workspace does not serve the API called (`ENDPOINT_NOT_FOUND`).
    pub fn is_endpoint_not_found(&self) -> bool {
        self.kind() == ErrorKind::EndpointNotFound
    }

    /// True when the object already exists.
    pub fn is_already_exists(&self) -> bool {
        self.kind() == ErrorKind::AlreadyExists
    }

    /// True when access to this object was denied.
    pub fn is_permission_denied(&self) -> bool {
        self.kind() == ErrorKind::PermissionDenied
    }

    /// True when a size limit was exceeded (`MAX_NOTEBOOK_SIZE_EXCEEDED`, …).
    pub fn is_too_large(&self) -> bool {
        self.kind() == ErrorKind::TooLarge
    }

    /// True for 429 and 503, which every call may retry after `Retry-After`.
    pub fn is_throttled(&self) -> bool {
        self.status == 429 || self.status == 503
    }

    /// True when the credentials themselves were refused, as opposed to access to one object:
    /// every 401, and a 403 that names the token (`{"error_code": 403, "message": "Invalid
    /// access token."}`) or carries no specific code.
    pub fn is_credentials_refused(&self) -> bool {
        match self.status {
            401 => true,
            403 => {
                let m = self.message.to_ascii_lowercase();
                let code_is_specific = self
                    .error_code
                    .as_deref()
                    .is_some_and(|c| c.parse::<u16>().is_err() && c != "FORBIDDEN");
                !code_is_specific
                    || m.contains("token")
                    || m.contains("credential")
                    || m.contains("authenticat")
            }
            _ => false,
        }
    }

    /// True when the message carries one of the transient markers the SDKs retry on.
    pub fn is_transient_message(&self) -> bool {
        const MARKERS: [&str; 5] = [
            "Unexpected error",
            "Please try again later or try a faster operation.",
            "RPC token bucket limit has been exceeded",
            "ClusterNotReadyException",
            "com.databricks.common.client.DatabricksServiceHttpClientException",
        ];
        MARKERS.iter().any(|m| self.message.contains(m))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.status)?;
        match &self.error_code {
            Some(c) if c != &self.status.to_string() => write!(f, " {c}")?,
            _ => {}
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// How the message of a connection that failed on looking up the host name starts: the hint
/// then asks about the name, not about the network.
pub(crate) const UNRESOLVED: &str = "cannot resolve the host name";

/// The hint of [`ClientError::Unreachable`]: about the name when it did not resolve, else
/// about the host and the network.
fn unreachable_hint(host: &str, attempts: &u32, last: &ClientError) -> Filled {
    match last {
        ClientError::Transport { message, .. } if message.starts_with(UNRESOLVED) => {
            let name = reqwest::Url::parse(host)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| host.to_string());
            Hint::UnknownHost.with(&[("name", &name), ("attempts", attempts)])
        }
        _ => Hint::Unreachable.with(&[("host", &host), ("attempts", attempts)]),
    }
}

/// Renders an error and its sources on one line, stripping URLs from reqwest errors (a signed
/// download URL carries its credential in the query string). A failed name lookup is said in
/// so many words, with the resolver's own reason.
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut chain: Vec<String> = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !t.contains("://") && !chain.contains(&t) {
            chain.push(t);
        }
        src = s.source();
    }
    // hyper-util's connector reports a failed lookup as "dns error", its cause the resolver's.
    if let Some(at) = chain.iter().position(|t| t.starts_with("dns error")) {
        let name = e.url().and_then(|u| u.host_str()).unwrap_or("");
        let mut out = format!("{UNRESOLVED} {name}");
        let first = chain[at]
            .trim_start_matches("dns error")
            .trim_start_matches(": ");
        for t in std::iter::once(first).chain(chain[at + 1..].iter().map(String::as_str)) {
            if !t.is_empty() && !out.ends_with(t) {
                out.push_str(": ");
                out.push_str(t);
            }
        }
        return out;
    }
    let mut out = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the response".to_string()
    } else if e.is_request() {
        "error sending the request".to_string()
    } else {
        "http error".to_string()
    };
    for t in chain {
        out.push_str(": ");
        out.push_str(&t);
    }
    out
}

/// Every failure of a client call. Each variant names the call (or the configuration step).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration could not be resolved.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Obtaining an OAuth token failed (discovery or token endpoint).
    #[error("{call}: {message}")]
    Auth {
        /// The call that failed.
        call: String,
        /// What went wrong.
        message: String,
    },
    /// The workspace refused the credentials (401, or a 403 about the token). Never retried.
    #[error("{0}\n{hint}", hint = Hint::CredentialsRefused)]
    Unauthorized(Box<ApiError>),
    /// A notebook or file exceeds an export/import size limit (`MAX_NOTEBOOK_SIZE_EXCEEDED`).
    #[error("{0}")]
    TooLarge(Box<ApiError>),
    /// Any other non-2xx answer.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The request could not be sent or the answer could not be read (connection refused,
    /// reset, timeout).
    #[error("{call}: {message}")]
    Transport {
        /// The call.
        call: String,
        /// The cause, without URLs.
        message: String,
        /// True when the connection was never established (nothing was sent).
        connect: bool,
        /// True for a timeout.
        timeout: bool,
    },
    /// A 2xx answer whose body is not what the API documents.
    #[error("{call}: cannot decode the response: {message}")]
    Decode {
        /// The call.
        call: String,
        /// The decoder's complaint (never the body).
        message: String,
    },
    /// A 2xx answer that is an HTML page where JSON was asked for: a login page, a proxy's or
    /// a portal's page. The host is not the Databricks API (or not only), so every call would
    /// fail the same way; the run stops.
    #[error(
        "{host} answered with an HTML page, not the Databricks API: check the URL ({call})\n{}",
        Hint::NotTheApi
    )]
    NotApi {
        /// The call.
        call: String,
        /// The host that answered (scheme, host and port).
        host: String,
    },
    /// An answer larger than the cap on what is read into memory: a host streaming without
    /// end, or something that is not the Databricks API. Not retried; the run stops.
    #[error("{call}: the answer is larger than {} MiB, the most dbxport reads into memory for one call; no Databricks API answer is that large, so the host is most likely not a Databricks workspace\n{}", limit.div_ceil(1 << 20), Hint::ResponseTooLarge)]
    ResponseTooLarge {
        /// The call.
        call: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The workspace never answered: every attempt to connect failed before any request of
    /// this client had reached it, which points at a wrong host or a blocked network rather
    /// than a passing outage, so the client gives up after a few attempts.
    #[error("{last}\n{}", unreachable_hint(.host, .attempts, .last))]
    Unreachable {
        /// The workspace URL.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<ClientError>,
    },
    /// The retry budget ran out; `last` is the final attempt's error.
    #[error("{call}: gave up after {attempts} attempts in {:.1} s (retry budget {:.0} s): {last}", elapsed.as_secs_f64(), budget.as_secs_f64())]
    RetriesExhausted {
        /// The call.
        call: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The budget that ran out.
        budget: Duration,
        /// The last error.
        last: Box<ClientError>,
    },
    /// Reading an upload source or writing a download failed.
    #[error("{call}: {source}")]
    Io {
        /// The call.
        call: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A SQL statement ended FAILED, CANCELED or CLOSED.
    #[error("sql statement `{statement}`: {state}{}: {message}", error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Statement {
        /// The statement (first 120 characters).
        statement: String,
        /// Terminal state.
        state: String,
        /// Error code from the warehouse.
        error_code: Option<String>,
        /// Error message.
        message: String,
    },
    /// A command (API 1.2) ended in error or was cancelled.
    #[error("{call}: command {status}: {message}")]
    Command {
        /// The call, naming the cluster.
        call: String,
        /// `Error` or `Cancelled`.
        status: String,
        /// The cause reported by the cluster.
        message: String,
    },
    /// The server answered in a way that breaks the API's contract (missing field, a page
    /// token that never ends).
    #[error("{call}: {message}")]
    Protocol {
        /// The call.
        call: String,
        /// What was wrong.
        message: String,
    },
}

impl ClientError {
    /// The API error behind this error, looking through retries.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) | ClientError::Unauthorized(e) | ClientError::TooLarge(e) => {
                Some(e)
            }
            ClientError::RetriesExhausted { last, .. } => last.api(),
            _ => None,
        }
    }

    /// The classification of the underlying API error, if any.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.api().map(ApiError::kind)
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }

    /// True when the workspace does not serve the API called (`ENDPOINT_NOT_FOUND`): a
    /// missing API, not a missing object.
    pub fn is_endpoint_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_endpoint_not_found)
    }

    /// True when the object already exists.
    pub fn is_already_exists(&self) -> bool {
        self.api().is_some_and(ApiError::is_already_exists)
    }

    /// True when access was denied.
    pub fn is_permission_denied(&self) -> bool {
        self.api().is_some_and(ApiError::is_permission_denied)
    }

    /// True for a size-limit failure (`MAX_NOTEBOOK_SIZE_EXCEEDED`).
    pub fn is_too_large(&self) -> bool {
        matches!(self, ClientError::TooLarge(_)) || self.api().is_some_and(ApiError::is_too_large)
    }

    /// True when the credentials were refused or could not be obtained, or the host is not
    /// the API at all (it answers with HTML pages, or without end): the whole run should stop
    /// rather than fail object by object.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            ClientError::Unauthorized(_)
            | ClientError::Auth { .. }
            | ClientError::Config(_)
            | ClientError::NotApi { .. }
            | ClientError::ResponseTooLarge { .. } => true,
            ClientError::RetriesExhausted { last, .. } => last.is_auth_failure(),
            _ => false,
        }
    }

    /// The error code of the underlying API error.
    pub fn error_code(&self) -> Option<&str> {
        self.api().and_then(|e| e.error_code.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn parse(status: u16, body: &str) -> ApiError {
        ApiError::parse("GET /x", status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn a_missing_endpoint_is_not_a_missing_object() {
        let e = parse(
            404,
            r#"{"error_code":"ENDPOINT_NOT_FOUND","message":"No API found for 'GET /mlflow/runs/get'"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::EndpointNotFound);
        assert!(e.is_endpoint_not_found());
        assert!(!e.is_not_found());
        // A bare 404 without a code still means a missing object.
        assert!(parse(404, "{}").is_not_found());
    }

    #[test]
    fn standard_and_numeric_codes() {
        let e = parse(
            404,
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Path (/a) doesn't exist."}"#,
        );
        assert_eq!(e.error_code.as_deref(), Some("RESOURCE_DOES_NOT_EXIST"));
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "GET /x: 404 RESOURCE_DOES_NOT_EXIST: Path (/a) doesn't exist."
        );
        let e = parse(
            403,
            r#"{"error_code":403,"message":"Invalid access token."}"#,
        );
        assert_eq!(e.error_code.as_deref(), Some("403"));
        assert!(e.is_credentials_refused());
        assert_eq!(e.to_string(), "GET /x: 403: Invalid access token.");
        let e = parse(
            403,
            r#"{"error_code":"PERMISSION_DENIED","message":"no access to /a"}"#,
        );
        assert!(!e.is_credentials_refused());
        assert!(e.is_permission_denied());
    }

    #[test]
    fn legacy_scim_string_html_empty() {
        let e = parse(400, r#"{"error":"Cluster abc does not exist"}"#);
        assert_eq!(e.message, "Cluster abc does not exist");
        assert_eq!(e.error_code, None);
        let e = parse(
            404,
            r#"{"schemas":["x"],"detail":"User not found","status":"404","scimType":"invalidValue"}"#,
        );
        assert_eq!(e.error_code.as_deref(), Some("SCIM_404"));
        assert_eq!(e.message, "invalidValue User not found");
        let e = parse(500, r#"{"detail":"null","status":500}"#);
        assert_eq!(e.error_code.as_deref(), Some("SCIM_500"));
        assert_eq!(e.message, "SCIM API Internal Error");
        let e = parse(400, "INVALID_PARAMETER_VALUE: bad path\nmore");
        assert_eq!(e.error_code.as_deref(), Some("INVALID_PARAMETER_VALUE"));
        assert_eq!(e.message, "bad path");
        let e = parse(
            502,
            "<html><head><title>502 Bad Gateway</title></head><body><pre>upstream &lt;x&gt; died</pre></body></html>",
        );
        assert_eq!(e.message, "upstream <x> died");
        assert_eq!(e.error_code.as_deref(), Some("BAD_GATEWAY"));
        let e = parse(504, "<html><title>Gateway Timeout</title></html>");
        assert_eq!(e.message, "Gateway Timeout");
        let e = parse(503, "");
        assert_eq!(e.message, "Service Unavailable");
        assert_eq!(e.retry_after, Some(DEFAULT_RETRY_AFTER));
        let e = parse(500, "  \n");
        assert_eq!(e.message, "Internal Server Error");
        let e = parse(500, "\u{1}garbage that is not json");
        assert!(
            e.message.starts_with("unparseable error body: "),
            "{}",
            e.message
        );
        let e = parse(
            400,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        );
        assert_eq!(e.error_code.as_deref(), Some("invalid_client"));
        assert_eq!(e.message, "bad secret");
        let e = parse(400, r#"[1,2]"#);
        assert!(e.message.starts_with("unparseable"));
    }

    #[test]
    fn request_id_and_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let e = ApiError::parse(
            "GET /x",
            429,
            &h,
            br#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down","details":[{"@type":"type.googleapis.com/google.rpc.RequestInfo","request_id":"r-1"}]}"#,
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert_eq!(e.kind(), ErrorKind::TooManyRequests);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn job_does_not_exist_is_not_found() {
        let e = parse(
            400,
            r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Job 123 does not exist."}"#,
        );
        assert!(e.is_not_found());
        let e = parse(
            400,
            r#"{"error_code":"MAX_NOTEBOOK_SIZE_EXCEEDED","message":"too big"}"#,
        );
        assert!(e.is_too_large());
    }
}
