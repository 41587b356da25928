//! Error bodies as real workspaces send them (`{"error_code": "...", "message": "..."}` with the
//! matching HTTP status), and the library-level [`EmulatorError`] for starting, seeding and
//! dumping.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Why the emulator could not start, load a seed, or write a dump.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listening socket could not be bound.
    #[error("emulator: cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A seed file is unreadable or malformed.
    #[error("seed {path}: {message}")]
    Seed {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A dump could not be written.
    #[error("dump {path}: {message}")]
    Dump {
        /// The file or directory at fault.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The runtime for a background emulator could not be built.
    #[error("emulator: cannot start a runtime: {0}")]
    Runtime(std::io::Error),
    /// A fault configuration is out of range.
    #[error("emulator faults: {0}")]
    Faults(String),
}

impl EmulatorError {
    pub(crate) fn seed(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        EmulatorError::Seed {
            path: path.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn dump(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        EmulatorError::Dump {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// An error answer of the REST API: status, `error_code` and message.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// A string code, or the integer form some auth errors use (`{"error_code": 403}`).
    pub code: Value,
    pub message: String,
    pub retry_after: Option<u64>,
    /// Sent as `X-Databricks-Reason-Phrase`, as real auth failures do.
    pub reason_phrase: bool,
}

pub(crate) type ApiResult = Result<Response, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: Value::String(code.to_string()),
            message: message.into(),
            retry_after: None,
            reason_phrase: false,
        }
    }

    /// 400 `INVALID_PARAMETER_VALUE`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    /// 400 `MALFORMED_REQUEST`.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", message)
    }

    /// 404 `RESOURCE_DOES_NOT_EXIST`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST", message)
    }

    /// 400 `RESOURCE_ALREADY_EXISTS`.
    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS", message)
    }

    /// 403 `PERMISSION_DENIED`.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    /// 404 `ENDPOINT_NOT_FOUND`, for a request no route serves.
    pub fn no_endpoint(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            format!("No API found for '{method} {path}'"),
        )
    }

    /// The 400 a required field that is absent gets.
    pub fn missing(field: &str) -> Self {
        Self::invalid(format!("Missing required field: {field}"))
    }

    /// An auth failure with an integer `error_code`, as real workspaces send it.
    pub fn auth(status: StatusCode, message: &str) -> Self {
        ApiError {
            status,
            code: Value::from(status.as_u16()),
            message: message.to_string(),
            retry_after: None,
            reason_phrase: true,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code, "message": self.message});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        if self.reason_phrase {
            if let Ok(v) = HeaderValue::from_str(&self.message) {
                resp.headers_mut().insert("x-databricks-reason-phrase", v);
            }
        }
        resp
    }
}
