//! DBFS (`/api/2.0/dbfs/*`): get-status, list, mkdirs, delete, move, put (JSON and multipart),
//! the streaming upload create / add-block / close, and read with its 1 MB cap. The same store
//! holds `/Volumes` for the Files API and the model registry's artifacts.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{self, b64, unb64, Body, Ctx, Fields, Params};
use super::state::{child_keys, subtree_keys, DbfsHandle, DbfsNode, Shared, State};

/// Largest block of `put` (JSON), `add-block` and `read`.
pub(crate) const MAX_BLOCK: usize = 1024 * 1024;
/// Default `length` of `read`.
const DEFAULT_READ: i64 = 512 * 1024;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/dbfs/get-status", get(get_status))
        .route("/api/2.0/dbfs/list", get(list))
        .route("/api/2.0/dbfs/mkdirs", post(mkdirs))
        .route("/api/2.0/dbfs/delete", post(delete))
        .route("/api/2.0/dbfs/move", post(move_path))
        .route("/api/2.0/dbfs/put", post(put))
        .route("/api/2.0/dbfs/create", post(create))
        .route("/api/2.0/dbfs/add-block", post(add_block))
        .route("/api/2.0/dbfs/close", post(close))
        .route("/api/2.0/dbfs/read", get(read))
}

/// A DBFS path: `dbfs:` prefix optional, absolute, no trailing slash, no `.`/`..`.
pub(crate) fn dbfs_path(raw: &str) -> Result<String, ApiError> {
    let p = raw.trim();
    let p = p.strip_prefix("dbfs:").unwrap_or(p);
    if !p.starts_with('/') {
        return Err(ApiError::invalid(format!("Path must be absolute: {raw}")));
    }
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    if parts.iter().any(|s| *s == "." || *s == "..") {
        return Err(ApiError::invalid(format!("Invalid path: {raw}")));
    }
    if parts.is_empty() {
        return Ok("/".to_string());
    }
    Ok(format!("/{}", parts.join("/")))
}

fn missing(path: &str) -> ApiError {
    ApiError::not_found(format!("No file or directory exists on path {path}."))
}

fn parent(path: &str) -> &str {
    crate::model::workspace::parent_path(path)
}

/// Creates `path` and its parents as directories.
pub(crate) fn make_dirs(st: &mut State, path: &str) -> Result<(), ApiError> {
    let now = st.now();
    let mut prefix = String::new();
    if !st.dbfs.nodes.contains_key("/") {
        st.dbfs.nodes.insert(
            "/".into(),
            DbfsNode {
                is_dir: true,
                data: Vec::new(),
                mtime: now,
            },
        );
    }
    for part in path.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        match st.dbfs.nodes.get(&prefix) {
            Some(n) if n.is_dir => {}
            Some(_) => {
                return Err(ApiError::exists(format!(
                    "A file or directory already exists at the input path {prefix}."
                )))
            }
            None => {
                st.dbfs.nodes.insert(
                    prefix.clone(),
                    DbfsNode {
                        is_dir: true,
                        data: Vec::new(),
                        mtime: now,
                    },
                );
            }
        }
    }
    Ok(())
}

/// Writes a file, creating parent directories.
pub(crate) fn write_file(
    st: &mut State,
    path: &str,
    data: Vec<u8>,
    overwrite: bool,
) -> Result<(), ApiError> {
    if path == "/" {
        return Err(ApiError::invalid("Cannot write to the root directory"));
    }
    match st.dbfs.nodes.get(path) {
        Some(n) if n.is_dir => {
            return Err(ApiError::exists(format!(
                "A directory already exists at the input path {path}."
            )))
        }
        Some(_) if !overwrite => {
            return Err(ApiError::exists(format!(
                "A file or directory already exists at the input path {path}."
            )))
        }
        _ => {}
    }
    make_dirs(st, parent(path))?;
    let now = st.now();
    st.dbfs.nodes.insert(
        path.to_string(),
        DbfsNode {
            is_dir: false,
            data,
            mtime: now,
        },
    );
    Ok(())
}

/// The paths directly inside a DBFS directory.
pub(crate) fn children(st: &State, dir: &str) -> Vec<String> {
    child_keys(&st.dbfs.nodes, dir)
}

/// Every path at or below `root`.
pub(crate) fn subtree(st: &State, root: &str) -> Vec<String> {
    subtree_keys(&st.dbfs.nodes, root)
}

/// Removes `root` and everything below it.
pub(crate) fn remove_tree(st: &mut State, root: &str) {
    for p in subtree(st, root) {
        st.dbfs.nodes.remove(&p);
    }
}

fn file_info(path: &str, n: &DbfsNode) -> Value {
    json!({
        "path": path,
        "is_dir": n.is_dir,
        "file_size": if n.is_dir { 0 } else { n.data.len() },
        "modification_time": n.mtime,
    })
}

async fn get_status(ctx: Ctx, p: Params) -> ApiResult {
    let path = dbfs_path(p.req("path")?)?;
    let st = ctx.state();
    let n = st.dbfs.nodes.get(&path).ok_or_else(|| missing(&path))?;
    Ok(extract::json(file_info(&path, n)))
}

async fn list(ctx: Ctx, p: Params) -> ApiResult {
    let path = dbfs_path(p.req("path")?)?;
    let st = ctx.state();
    let n = st.dbfs.nodes.get(&path).ok_or_else(|| missing(&path))?;
    let files: Vec<Value> = if n.is_dir {
        children(&st, &path)
            .iter()
            .filter_map(|c| st.dbfs.nodes.get(c).map(|n| file_info(c, n)))
            .collect()
    } else {
        vec![file_info(&path, n)]
    };
    if files.is_empty() {
        return Ok(extract::empty());
    }
    Ok(extract::json(json!({ "files": files })))
}

async fn mkdirs(ctx: Ctx, Body(b): Body) -> ApiResult {
    let path = dbfs_path(b.req_str("path")?)?;
    make_dirs(&mut ctx.state(), &path)?;
    Ok(extract::empty())
}

async fn delete(ctx: Ctx, Body(b): Body) -> ApiResult {
    let path = dbfs_path(b.req_str("path")?)?;
    let recursive = b.opt_bool("recursive")?.unwrap_or(false);
    let mut st = ctx.state();
    if path == "/" {
        return Err(ApiError::denied("Cannot delete the DBFS root"));
    }
    let Some(n) = st.dbfs.nodes.get(&path) else {
        // Deleting what is not there succeeds, as on real workspaces.
        return Ok(extract::empty());
    };
    if n.is_dir && !recursive && !children(&st, &path).is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "IO_ERROR",
            format!("Directory {path} is not empty; set recursive to delete it and its contents."),
        ));
    }
    remove_tree(&mut st, &path);
    Ok(extract::empty())
}

async fn move_path(ctx: Ctx, Body(b): Body) -> ApiResult {
    let from = dbfs_path(b.req_str("source_path")?)?;
    let to = dbfs_path(b.req_str("destination_path")?)?;
    let mut st = ctx.state();
    if !st.dbfs.nodes.contains_key(&from) {
        return Err(missing(&from));
    }
    if st.dbfs.nodes.contains_key(&to) {
        return Err(ApiError::exists(format!(
            "A file or directory already exists at the input path {to}."
        )));
    }
    move_tree(&mut st, &from, &to)?;
    Ok(extract::empty())
}

/// Moves `from` and everything below it to `to`, creating `to`'s parents.
pub(crate) fn move_tree(st: &mut State, from: &str, to: &str) -> Result<(), ApiError> {
    if to.starts_with(&format!("{from}/")) {
        return Err(ApiError::invalid(format!("Cannot move {from} into itself")));
    }
    make_dirs(st, parent(to))?;
    for p in subtree(st, from) {
        if let Some(n) = st.dbfs.nodes.remove(&p) {
            let dest = format!("{to}{}", &p[from.len()..]);
            st.dbfs.nodes.insert(dest, n);
        }
    }
    Ok(())
}

fn block_too_big(size: usize) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "MAX_BLOCK_SIZE_EXCEEDED",
        format!("The block of {size} bytes exceeds the limit of {MAX_BLOCK} bytes"),
    )
}

async fn put(ctx: Ctx, req: Request) -> ApiResult {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut fields = Map::new();
    let data: Vec<u8>;
    if is_multipart {
        let mut contents = None;
        let mut mp = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::malformed(format!("Invalid multipart body: {e}")))?;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::malformed(format!("Invalid multipart body: {e}")))?
        {
            let name = field.name().unwrap_or("").to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::malformed(format!("Invalid multipart body: {e}")))?;
            if name == "contents" {
                contents = Some(bytes.to_vec());
            } else {
                fields.insert(
                    name,
                    Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                );
            }
        }
        data = contents.unwrap_or_default();
    } else {
        let Body(b) = Body::from_request(req, &()).await?;
        data = match b.opt_str("contents")? {
            Some(c) => unb64("contents", c)?,
            None => Vec::new(),
        };
        if data.len() > MAX_BLOCK {
            return Err(block_too_big(data.len()));
        }
        fields = b;
    }
    let path = dbfs_path(fields.req_str("path")?)?;
    let overwrite = fields.opt_bool("overwrite")?.unwrap_or(false);
    write_file(&mut ctx.state(), &path, data, overwrite)?;
    Ok(extract::empty())
}

async fn create(ctx: Ctx, Body(b): Body) -> ApiResult {
    let path = dbfs_path(b.req_str("path")?)?;
    let overwrite = b.opt_bool("overwrite")?.unwrap_or(false);
    let mut st = ctx.state();
    match st.dbfs.nodes.get(&path) {
        Some(n) if n.is_dir => {
            return Err(ApiError::exists(format!(
                "A directory already exists at the input path {path}."
            )))
        }
        Some(_) if !overwrite => {
            return Err(ApiError::exists(format!(
                "A file or directory already exists at the input path {path}."
            )))
        }
        _ => {}
    }
    let h = st.ids.next_handle;
    st.ids.next_handle += 1;
    st.handles.insert(
        h,
        DbfsHandle {
            path,
            data: Vec::new(),
        },
    );
    Ok(extract::json(json!({ "handle": h })))
}

fn no_handle(h: i64) -> ApiError {
    ApiError::not_found(format!("The handle {h} does not exist or has been closed."))
}

async fn add_block(ctx: Ctx, Body(b): Body) -> ApiResult {
    let h = b.req_i64("handle")?;
    let data = unb64("data", b.opt_str("data")?.unwrap_or(""))?;
    if data.len() > MAX_BLOCK {
        return Err(block_too_big(data.len()));
    }
    let mut st = ctx.state();
    st.handles
        .get_mut(&h)
        .ok_or_else(|| no_handle(h))?
        .data
        .extend_from_slice(&data);
    Ok(extract::empty())
}

async fn close(ctx: Ctx, Body(b): Body) -> ApiResult {
    let h = b.req_i64("handle")?;
    let mut st = ctx.state();
    let handle = st.handles.remove(&h).ok_or_else(|| no_handle(h))?;
    write_file(&mut st, &handle.path, handle.data, true)?;
    Ok(extract::empty())
}

async fn read(ctx: Ctx, p: Params) -> ApiResult {
    let path = dbfs_path(p.req("path")?)?;
    let offset = p.i64("offset")?.unwrap_or(0);
    let length = p.i64("length")?.unwrap_or(DEFAULT_READ);
    if offset < 0 || length < 0 {
        return Err(ApiError::invalid("offset and length must not be negative"));
    }
    if length as usize > MAX_BLOCK {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MAX_READ_SIZE_EXCEEDED",
            format!("Cannot read more than {MAX_BLOCK} bytes at a time; asked for {length}"),
        ));
    }
    let st = ctx.state();
    let n = st.dbfs.nodes.get(&path).ok_or_else(|| missing(&path))?;
    if n.is_dir {
        return Err(ApiError::invalid(format!(
            "Cannot read {path}: it is a directory"
        )));
    }
    let start = (offset as usize).min(n.data.len());
    let end = (start + length as usize).min(n.data.len());
    Ok(extract::json(json!({
        "bytes_read": end - start,
        "data": b64(&n.data[start..end]),
    })))
}
