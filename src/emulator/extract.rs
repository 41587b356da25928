//! Request plumbing shared by every API module: query parameters, JSON bodies, the caller's
//! identity, and JSON responses. Malformed input is answered the way real workspaces answer it
//! (`MALFORMED_REQUEST`, `INVALID_PARAMETER_VALUE`), never with a framework's own error page.

use std::sync::{Arc, MutexGuard};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::state::{Shared, State};

/// Largest request body read into memory.
pub(crate) const BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Who is calling: the principal a token or an OAuth access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A user, by user name.
    User(String),
    /// A service principal, by application id.
    ServicePrincipal(String),
}

impl Caller {
    /// The name recorded as creator or owner (user name or application id).
    pub fn name(&self) -> &str {
        match self {
            Caller::User(n) | Caller::ServicePrincipal(n) => n,
        }
    }

    /// The permissions-API principal for this caller.
    pub fn principal(&self) -> crate::model::permissions::PrincipalRef {
        use crate::model::permissions::PrincipalRef;
        match self {
            Caller::User(n) => PrincipalRef::UserName(n.clone()),
            Caller::ServicePrincipal(n) => PrincipalRef::ServicePrincipalName(n.clone()),
        }
    }
}

/// The shared emulator and the authenticated caller of one request.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub caller: Caller,
}

impl Ctx {
    /// Locks the workspace state for the duration of one operation.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl FromRequestParts<Arc<Shared>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| Caller::User(String::new()));
        Ok(Ctx {
            shared: shared.clone(),
            caller,
        })
    }
}

/// Decoded query parameters, in order, repeated keys kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses an `application/x-www-form-urlencoded` string.
    pub fn parse(query: &str) -> Params {
        Params(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (form_decode(k), form_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `key`, or the 400 a missing required field gets.
    pub fn req(&self, key: &str) -> Result<&str, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing(key)),
        }
    }

    /// `true`/`false` (any case), absent as `None`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::invalid(format!(
                "Invalid value for parameter {key}: '{v}' is not a boolean"
            ))),
        }
    }

    /// An integer, absent as `None`.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::invalid(format!(
                    "Invalid value for parameter {key}: '{v}' is not an integer"
                ))
            }),
        }
    }

    /// This query merged under a JSON body: body fields win, parameters fill the rest. Some
    /// clients send `DELETE` arguments as a body, others as a query string.
    pub fn merge_into(&self, body: &mut Map<String, Value>) {
        for (k, v) in &self.0 {
            if !body.contains_key(k) {
                body.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

/// Decodes one `x-www-form-urlencoded` component (`+` is a space).
pub(crate) fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON object body; an empty body reads as `{}`.
pub(crate) struct Body(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|e| ApiError::malformed(format!("Could not read the request body: {e}")))?;
        parse_object(&bytes).map(Body)
    }
}

/// Parses a request body as a JSON object (empty = `{}`).
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::malformed(
            "Invalid JSON given in the body of the request - expected a map",
        )),
        Err(e) => Err(ApiError::malformed(format!(
            "Invalid JSON given in the body of the request - failed to parse: {e}"
        ))),
    }
}

/// Typed access to the fields of a JSON body, with the errors real workspaces give.
pub(crate) trait Fields {
    /// A string field, absent or null as `None`.
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ApiError>;
    /// A required, non-empty string field.
    fn req_str(&self, key: &str) -> Result<&str, ApiError>;
    /// An integer field given as a number or a numeric string.
    fn opt_i64(&self, key: &str) -> Result<Option<i64>, ApiError>;
    /// A required integer field.
    fn req_i64(&self, key: &str) -> Result<i64, ApiError>;
    /// A boolean field (also `"true"`/`"false"`).
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError>;
    /// An array field.
    fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, ApiError>;
    /// An object field.
    fn opt_object(&self, key: &str) -> Result<Option<&Map<String, Value>>, ApiError>;
}

impl Fields for Map<String, Value> {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(format!(
                "Invalid value for field {key}: expected a string"
            ))),
        }
    }

    fn req_str(&self, key: &str) -> Result<&str, ApiError> {
        match self.opt_str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::missing(key)),
        }
    }

    fn opt_i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid value for field {key}: expected an integer"
                ))
            }),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
                ApiError::invalid(format!(
                    "Invalid value for field {key}: expected an integer"
                ))
            }),
            Some(_) => Err(ApiError::invalid(format!(
                "Invalid value for field {key}: expected an integer"
            ))),
        }
    }

    fn req_i64(&self, key: &str) -> Result<i64, ApiError> {
        self.opt_i64(key)?.ok_or_else(|| ApiError::missing(key))
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid(format!(
                "Invalid value for field {key}: expected a boolean"
            ))),
        }
    }

    fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(ApiError::invalid(format!(
                "Invalid value for field {key}: expected an array"
            ))),
        }
    }

    fn opt_object(&self, key: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(ApiError::invalid(format!(
                "Invalid value for field {key}: expected an object"
            ))),
        }
    }
}

/// Marks a response as a read or a mutation for the stats, overriding the default that
/// `GET`/`HEAD` read and every other method mutates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mutation(pub bool);

/// A 200 response with a JSON body.
pub(crate) fn json(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// A 200 response with `{}`, the body of every void operation.
pub(crate) fn empty() -> Response {
    json(Value::Object(Map::new()))
}

/// Marks `resp` as a read (`false`) or a mutation (`true`) for the stats.
pub(crate) fn mark(mut resp: Response, mutating: bool) -> Response {
    resp.extensions_mut().insert(Mutation(mutating));
    resp
}

/// Encodes an opaque page token (base64url of `s`).
pub(crate) fn page_token(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// Decodes a page token made by [`page_token`].
pub(crate) fn read_page_token(t: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid(format!("Invalid page token: {t}")))
}

/// Standard base64 encoding.
pub(crate) fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64 decoding, with the 400 a bad value gets.
pub(crate) fn unb64(field: &str, data: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| ApiError::invalid(format!("Invalid base64 value for field {field}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let p = Params::parse("path=%2FUsers%2Fa%20b&x=1+2&order_by=a&order_by=b&flag=TRUE");
        assert_eq!(p.get("path"), Some("/Users/a b"));
        assert_eq!(p.get("x"), Some("1 2"));
        assert_eq!(p.all("order_by"), vec!["a", "b"]);
        assert_eq!(p.bool("flag").unwrap(), Some(true));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
