//! The Files API (`/api/2.0/fs/files{path}`, `/api/2.0/fs/directories{path}`) over Unity Catalog
//! volume paths (`/Volumes/<catalog>/<schema>/<volume>/…`), stored in the same tree as DBFS, and
//! over the MLflow artifacts of runs and logged models (`/WorkspaceInternal/Mlflow/Artifacts/…`,
//! stored where their DBFS artifact URI says: see `tracking.rs`).
//! `create-download-url` is not served, so the SDK falls back to a plain `GET`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::dbfs::{children, dbfs_path, make_dirs, remove_tree, write_file};
use super::error::{ApiError, ApiResult};
use super::extract::{self, read_page_token, Ctx, Params};
use super::state::{DbfsNode, Shared, State};
use super::tracking;

/// Most entries one directory listing page holds.
const MAX_PAGE: usize = 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/api/2.0/fs/files/{*path}",
            get(get_file).put(put_file).delete(delete_file),
        )
        .route(
            "/api/2.0/fs/directories/{*path}",
            get(list_dir).put(create_dir).delete(delete_dir),
        )
}

fn not_found(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The file or directory {path} does not exist."),
    )
}

/// The DBFS-tree path a Files API path stands for: a path under `/Volumes/` as it is; an MLflow
/// artifact path of a run or logged model where its artifacts are stored.
fn volume_path(st: &State, raw: &str) -> Result<String, ApiError> {
    let p = dbfs_path(&format!("/{}", raw.trim_start_matches('/')))?;
    if p.starts_with("/Volumes/") {
        return Ok(p);
    }
    if p.starts_with("/WorkspaceInternal/") {
        return tracking::files_to_dbfs(st, &p).ok_or_else(|| not_found(&p));
    }
    Err(ApiError::invalid(format!(
        "Invalid path {p}: Files API paths start with /Volumes/<catalog>/<schema>/<volume>/"
    )))
}

/// The Files API path of a DBFS-tree path (the inverse of [`volume_path`]).
fn shown_path(path: &str) -> String {
    tracking::dbfs_to_files(path).unwrap_or_else(|| path.to_string())
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `Last-Modified` as an HTTP date.
fn http_date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).unwrap_or_default()
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against a length.
fn parse_range(h: &str, len: usize) -> Option<(usize, usize)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: usize = b.parse().ok()?;
        (len.saturating_sub(n), len.checked_sub(1)?)
    } else {
        let s: usize = a.parse().ok()?;
        let e = if b.is_empty() {
            len.checked_sub(1)?
        } else {
            b.parse::<usize>().ok()?.min(len.checked_sub(1)?)
        };
        (s, e)
    };
    (start <= end && end < len).then_some((start, end))
}

async fn get_file(ctx: Ctx, Path(raw): Path<String>, headers: HeaderMap) -> ApiResult {
    let (data, mtime) = {
        let st = ctx.state();
        let path = volume_path(&st, &raw)?;
        match st.dbfs.nodes.get(&path) {
            Some(DbfsNode {
                is_dir: false,
                data,
                mtime,
            }) => (data.clone(), *mtime),
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "{path} is a directory; use /api/2.0/fs/directories to list it"
                )))
            }
            None => return Err(not_found(&path)),
        }
    };
    let total = data.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|h| parse_range(h, total));
    let (status, body, content_range) = match range {
        None => (StatusCode::OK, data, None),
        Some(Some((s, e))) => (
            StatusCode::PARTIAL_CONTENT,
            data[s..=e].to_vec(),
            Some(format!("bytes {s}-{e}/{total}")),
        ),
        Some(None) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&http_date(mtime)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(cr) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, cr);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(resp)
}

async fn put_file(ctx: Ctx, Path(raw): Path<String>, p: Params, body: Bytes) -> ApiResult {
    let overwrite = p.bool("overwrite")?.unwrap_or(false);
    let mut st = ctx.state();
    let path = volume_path(&st, &raw)?;
    if !overwrite && st.dbfs.nodes.get(&path).is_some_and(|n| !n.is_dir) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("The file {path} already exists; set overwrite=true to replace it."),
        ));
    }
    write_file(&mut st, &path, body.to_vec(), true)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "ALREADY_EXISTS", e.message))?;
    Ok(no_content())
}

async fn delete_file(ctx: Ctx, Path(raw): Path<String>) -> ApiResult {
    let mut st = ctx.state();
    let path = volume_path(&st, &raw)?;
    match st.dbfs.nodes.get(&path) {
        Some(n) if !n.is_dir => {
            st.dbfs.nodes.remove(&path);
            Ok(no_content())
        }
        Some(_) => Err(ApiError::invalid(format!(
            "{path} is a directory; use /api/2.0/fs/directories to delete it"
        ))),
        None => Err(not_found(&path)),
    }
}

async fn list_dir(ctx: Ctx, Path(raw): Path<String>, p: Params) -> ApiResult {
    // Model version files of Unity Catalog (`/Models/…`) are listed where they live.
    if super::uc_models::is_model_path(&raw) {
        return super::uc_models::list_model_dir(&ctx.state(), &raw);
    }
    let size = match p.i64("page_size")? {
        None | Some(0) => MAX_PAGE,
        Some(n) if n > 0 => (n as usize).min(MAX_PAGE),
        Some(n) => return Err(ApiError::invalid(format!("Invalid page_size {n}"))),
    };
    let after = match p.get("page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(read_page_token(t)?),
        None => None,
    };
    let st = ctx.state();
    let path = volume_path(&st, raw.trim_end_matches('/'))?;
    match st.dbfs.nodes.get(&path) {
        Some(n) if n.is_dir => {}
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "{path} is a file, not a directory"
            )))
        }
        None => return Err(not_found(&path)),
    }
    let all = children(&st, &path);
    let start = after
        .as_ref()
        .map(|a| all.iter().position(|c| c > a).unwrap_or(all.len()))
        .unwrap_or(0);
    let end = (start + size).min(all.len());
    let contents: Vec<Value> = all[start..end]
        .iter()
        .filter_map(|c| {
            let n = st.dbfs.nodes.get(c)?;
            let mut o = json!({
                "path": shown_path(c),
                "name": crate::model::workspace::base_name(c),
                "is_directory": n.is_dir,
                "last_modified": n.mtime,
            });
            if !n.is_dir {
                o["file_size"] = json!(n.data.len());
            }
            Some(o)
        })
        .collect();
    let mut out = json!({ "contents": contents });
    if end < all.len() {
        out["next_page_token"] = json!(extract::page_token(&all[end - 1]));
    }
    Ok(extract::json(out))
}

async fn create_dir(ctx: Ctx, Path(raw): Path<String>) -> ApiResult {
    let mut st = ctx.state();
    let path = volume_path(&st, raw.trim_end_matches('/'))?;
    make_dirs(&mut st, &path)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "ALREADY_EXISTS", e.message))?;
    Ok(no_content())
}

async fn delete_dir(ctx: Ctx, Path(raw): Path<String>) -> ApiResult {
    let mut st = ctx.state();
    let path = volume_path(&st, raw.trim_end_matches('/'))?;
    match st.dbfs.nodes.get(&path) {
        Some(n) if n.is_dir => {}
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "{path} is a file, not a directory"
            )))
        }
        None => return Err(not_found(&path)),
    }
    if !children(&st, &path).is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "DIRECTORY_NOT_EMPTY",
            format!("The directory {path} is not empty."),
        ));
    }
    remove_tree(&mut st, &path);
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-5", 100), Some((95, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
