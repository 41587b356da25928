//! The HTTP server: the accept loop (hyper, one task per connection, so that a dropped
//! connection really closes the socket), the per-request pipeline (faults, authentication,
//! routing, stats) and the axum router that joins every API module.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::error::ApiError;
use super::extract::{self, Body, Caller, Ctx, Fields, Mutation, BODY_LIMIT};
use super::faults::{family, limit_class, Action, FaultConfig};
use super::state::Shared;
use super::{
    commands, compute, dbfs, entra, files, jobs, legacy, mlflow, oauth, permissions, repos, scim,
    secrets, signed, sql, tracking, uc_models, unity, workspace,
};

/// Paths served without a credential, as on real workspaces.
fn is_public(path: &str) -> bool {
    path == "/.well-known/databricks-config"
        || path.starts_with("/oidc/")
        || entra::is_public(path)
        || path.starts_with(signed::PREFIX)
}

/// The router of every API family, the control endpoints and the fallback.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(entra::routes())
        .merge(workspace::routes())
        .merge(repos::routes())
        .merge(jobs::routes())
        .merge(secrets::routes())
        .merge(commands::routes())
        .merge(permissions::routes())
        .merge(sql::routes())
        .merge(unity::routes())
        .merge(uc_models::routes())
        .merge(compute::routes())
        .merge(dbfs::routes())
        .merge(files::routes())
        .merge(mlflow::routes())
        .merge(signed::routes())
        .merge(tracking::routes())
        .merge(scim::routes())
        .merge(legacy::routes())
        .merge(control_routes())
        .route_layer(middleware::from_fn_with_state(shared.clone(), record))
        .fallback(fallback)
        .method_not_allowed_fallback(fallback)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// `POST` routes that never change what a dump of the workspace holds, answered or refused.
const READ_ONLY_POSTS: [&str; 7] = [
    "/api/1.2/contexts/create",
    "/api/1.2/contexts/destroy",
    "/api/1.2/commands/execute",
    "/api/1.2/commands/cancel",
    "/oidc/v1/token",
    "/api/2.0/mlflow/registered-models/get-latest-versions",
    "/api/2.0/sql/statements/{id}/cancel",
];

/// Counts a request a route served, as a read or a mutation.
async fn record(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    if route.starts_with("/emulator/") {
        return resp;
    }
    let mutating = resp
        .extensions()
        .get::<Mutation>()
        .map(|m| m.0)
        .unwrap_or_else(|| {
            !matches!(method, Method::GET | Method::HEAD)
                && !READ_ONLY_POSTS.contains(&route.as_str())
        });
    shared.stats.served(
        format!("{method} {route}"),
        mutating,
        resp.status().as_u16(),
    );
    resp
}

async fn fallback(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    if !uri.path().starts_with("/emulator/") {
        shared.stats.unknown_endpoint();
    }
    ApiError::no_endpoint(method.as_str(), uri.path()).into_response()
}

/// The caller a request's `Authorization` header names, or the answer real workspaces give.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unsent = || {
        ApiError::auth(
            StatusCode::UNAUTHORIZED,
            "Credential was not sent or was of an unsupported type for this API.",
        )
    };
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsent)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(unsent)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unsent());
    }
    let mut st = shared.lock();
    let caller = st
        .authenticate(token.trim())
        .ok_or_else(|| ApiError::auth(StatusCode::FORBIDDEN, "Invalid access token."))?;
    entra::check_azure_headers(&mut st, &caller, headers)?;
    Ok(caller)
}

/// Adds the headers every answer carries.
fn finish(shared: &Shared, mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&shared.settings.workspace_id) {
        resp.headers_mut().insert("x-databricks-org-id", v);
    }
    resp
}

/// One request through faults, authentication and the router. `drop_conn` closes the
/// connection without an answer.
async fn handle(
    shared: Arc<Shared>,
    router: Router,
    req: hyper::Request<Incoming>,
    drop_conn: Arc<Notify>,
) -> Result<Response, Infallible> {
    let path = req.uri().path().to_string();
    let control = path.starts_with("/emulator/");
    let mut drop_after = false;
    if !control {
        let class = limit_class(req.method().as_str(), &path);
        shared.stats.received(class);
        let decision = shared
            .faults()
            .decide(family(&path), class, shared.clock.now());
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
        }
        match decision.action {
            Action::Proceed => {}
            Action::Throttle(secs) => {
                shared.stats.throttled(class);
                let err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "REQUEST_LIMIT_EXCEEDED",
                    format!(
                        "Too many requests for the {} API: the rate limit has been exceeded. \
                         Please try again later.",
                        family(&path)
                    ),
                )
                .with_retry_after(secs);
                return Ok(finish(&shared, err.into_response()));
            }
            Action::Error(status) => {
                shared.stats.injected_error();
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (code, message) = match status {
                    StatusCode::SERVICE_UNAVAILABLE => (
                        "TEMPORARILY_UNAVAILABLE",
                        "The service is temporarily unavailable. Please try again later.",
                    ),
                    StatusCode::TOO_MANY_REQUESTS => (
                        "REQUEST_LIMIT_EXCEEDED",
                        "Too many requests. Please try again later.",
                    ),
                    _ => (
                        "INTERNAL_ERROR",
                        "Internal error (injected by the emulator).",
                    ),
                };
                let mut err = ApiError::new(status, code, message);
                if matches!(status.as_u16(), 429 | 503) {
                    err = err.with_retry_after(1);
                }
                return Ok(finish(&shared, err.into_response()));
            }
            Action::Drop => {
                shared.stats.dropped();
                drop_conn.notify_one();
                return std::future::pending().await;
            }
            Action::DropAfter => drop_after = true,
        }
    }
    if !control && shared.faults().config().unserved.contains(&path) {
        shared.stats.unknown_endpoint();
        let err = ApiError::no_endpoint(req.method().as_str(), &path);
        return Ok(finish(&shared, err.into_response()));
    }
    let mut req = req.map(axum::body::Body::new);
    if !is_public(&path) {
        match authenticate(&shared, req.headers()) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
            }
            Err(e) => {
                if !control {
                    shared.stats.unauthenticated();
                }
                return Ok(finish(&shared, e.into_response()));
            }
        }
    }
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if drop_after {
        shared.stats.dropped();
        drop_conn.notify_one();
        return std::future::pending().await;
    }
    Ok(finish(&shared, resp))
}

/// Serves `listener` until `shutdown` fires; then every open connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let router = router(shared.clone());
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(_) => {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let drop_conn = Arc::new(Notify::new());
                let svc = {
                    let shared = shared.clone();
                    let router = router.clone();
                    let drop_conn = drop_conn.clone();
                    hyper::service::service_fn(move |req| {
                        handle(shared.clone(), router.clone(), req, drop_conn.clone())
                    })
                };
                conns.spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = drop_conn.notified() => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

/// `/emulator/*`: stats, faults and dumps, for tests and the command line.
fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/emulator/stats", get(stats))
        .route("/emulator/stats/reset", post(reset_stats))
        .route("/emulator/faults", get(get_faults).post(set_faults))
        .route("/emulator/dump", post(dump))
        .route("/emulator/clock/advance", post(advance_clock))
}

/// Moves a manual clock forward: `{"seconds": 1.5}`.
async fn advance_clock(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let secs = body
        .get("seconds")
        .and_then(serde_json::Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| ApiError::invalid("seconds: a number of seconds, zero or more"))?;
    if !ctx
        .shared
        .clock
        .advance(std::time::Duration::from_secs_f64(secs))
    {
        return Err(ApiError::invalid(
            "the clock is real; start the emulator with --manual-clock to move it",
        ));
    }
    Ok(extract::empty())
}

/// The counters, with the rate limits in force (`rate_limits`: class or family → requests per
/// second, the limits profile's included) so that a benchmark can compute its floor.
async fn stats(ctx: Ctx) -> Response {
    let mut v = serde_json::to_value(ctx.shared.stats.snapshot()).unwrap_or_default();
    let limits = ctx.shared.faults().config().effective_rate_limits();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "rate_limits".into(),
            serde_json::to_value(limits).unwrap_or_default(),
        );
    }
    extract::json(v)
}

async fn reset_stats(ctx: Ctx) -> Response {
    ctx.shared.stats.reset();
    extract::empty()
}

async fn get_faults(ctx: Ctx) -> Response {
    let cfg = ctx.shared.faults().config().clone();
    extract::json(serde_json::to_value(cfg).unwrap_or_default())
}

async fn set_faults(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let cfg: FaultConfig = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| ApiError::invalid(format!("faults: {e}")))?;
    cfg.validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    ctx.shared.faults().set(cfg.clone());
    Ok(extract::json(serde_json::to_value(cfg).unwrap_or_default()))
}

async fn dump(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let dir = std::path::PathBuf::from(body.req_str("dir")?);
    let shared = ctx.shared.clone();
    let target = dir.clone();
    tokio::task::spawn_blocking(move || super::seed::dump(&shared, &target))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                e.to_string(),
            )
        })?
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(extract::json(serde_json::json!({"dir": dir})))
}
