//! The Workspace API (`/api/2.0/workspace/*`): list, get-status, export, import (JSON and
//! multipart), mkdirs and delete over the tree of notebooks, folders, files and repo roots.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::workspace::{self as ws, Format, Language, ObjectType};

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, b64, unb64, Body, Caller, Ctx, Fields, Params};
use super::notebook;
use super::state::{Node, Shared, State};

/// The 10 MB limit of import content and export results.
pub(crate) const MAX_SIZE: usize = 10 * 1024 * 1024;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/workspace/list", get(list))
        .route("/api/2.0/workspace/get-status", get(get_status))
        .route("/api/2.0/workspace/export", get(export))
        .route("/api/2.0/workspace/import", post(import))
        .route("/api/2.0/workspace/mkdirs", post(mkdirs))
        .route("/api/2.0/workspace/delete", post(delete))
}

/// A workspace path as the API accepts it: absolute, `/Workspace` prefix optional, no trailing
/// slash, no `.` or `..` components.
pub(crate) fn norm_path(raw: &str) -> Result<String, ApiError> {
    let p = ws::normalize_path(raw.trim());
    if !p.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "Path ({raw}) is not absolute; workspace paths start with /"
        )));
    }
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    if parts.iter().any(|s| *s == "." || *s == "..") {
        return Err(ApiError::invalid(format!(
            "Path ({raw}) is not a valid path"
        )));
    }
    if parts.is_empty() {
        return Ok("/".to_string());
    }
    Ok(format!("/{}", parts.join("/")))
}

fn missing(path: &str) -> ApiError {
    ApiError::not_found(format!("Path ({path}) doesn't exist."))
}

/// The `ObjectInfo` of a node.
pub(crate) fn object_info(path: &str, n: &Node) -> Value {
    let mut o = Map::new();
    o.insert("object_type".into(), json!(n.object_type));
    o.insert("path".into(), json!(path));
    o.insert("object_id".into(), json!(n.object_id));
    if let Some(l) = n.language {
        o.insert("language".into(), json!(l));
    }
    if matches!(n.object_type, ObjectType::Notebook | ObjectType::File) {
        o.insert("created_at".into(), json!(n.created_at));
        o.insert("modified_at".into(), json!(n.modified_at));
    }
    if n.object_type == ObjectType::File {
        o.insert("size".into(), json!(n.content.len()));
    }
    o.insert("resource_id".into(), json!(n.object_id.to_string()));
    Value::Object(o)
}

/// A new node of `object_type` with a fresh id and the current time.
pub(crate) fn new_node(st: &mut State, object_type: ObjectType) -> Node {
    let now = st.now();
    Node {
        object_type,
        object_id: st.next_object_id(),
        language: None,
        content: Vec::new(),
        created_at: now,
        modified_at: now,
        outputs_bytes: 0,
        acl: Vec::new(),
    }
}

/// `mkdirs`: creates `path` and its missing parents.
pub(crate) fn make_dirs(st: &mut State, path: &str) -> Result<(), ApiError> {
    let mut prefix = String::new();
    for part in path.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        match st.tree.get(&prefix) {
            Some(n) if n.is_container() => {}
            Some(_) => {
                return Err(ApiError::exists(format!(
                    "Path ({prefix}) already exists and it is not a folder."
                )))
            }
            None => {
                let node = new_node(st, ObjectType::Directory);
                st.tree.insert(prefix.clone(), node);
            }
        }
    }
    Ok(())
}

/// Checks that the parent of `path` is an existing folder (import never creates parents).
fn check_parent(st: &State, path: &str) -> Result<(), ApiError> {
    let parent = ws::parent_path(path);
    match st.tree.get(parent) {
        Some(n) if n.is_container() => Ok(()),
        Some(_) => Err(ApiError::invalid(format!(
            "The parent of ({path}) is not a folder."
        ))),
        None => Err(ApiError::not_found(format!(
            "The parent folder ({parent}) does not exist."
        ))),
    }
}

async fn list(ctx: Ctx, p: Params) -> ApiResult {
    let path = norm_path(p.req("path")?)?;
    let after = p.i64("notebooks_modified_after")?;
    let st = ctx.state();
    let node = st.tree.get(&path).ok_or_else(|| missing(&path))?;
    access::check_path(&st, &ctx.caller, &path, "CAN_READ")?;
    let admin = access::is_admin(&st, &ctx.caller);
    let objects: Vec<Value> = if node.is_container() {
        st.tree
            .children(&path)
            .iter()
            // A listing shows only what the caller may read.
            .filter(|c| admin || access::can_path(&st, &ctx.caller, c, "CAN_READ"))
            .filter_map(|c| st.tree.get(c).map(|n| (c, n)))
            .filter(|(_, n)| match (after, n.object_type) {
                (Some(t), ObjectType::Notebook) => n.modified_at > t,
                _ => true,
            })
            .map(|(c, n)| object_info(c, n))
            .collect()
    } else {
        vec![object_info(&path, node)]
    };
    if objects.is_empty() {
        return Ok(extract::empty());
    }
    Ok(extract::json(json!({ "objects": objects })))
}

async fn get_status(ctx: Ctx, p: Params) -> ApiResult {
    let path = norm_path(p.req("path")?)?;
    let st = ctx.state();
    let node = st.tree.get(&path).ok_or_else(|| missing(&path))?;
    access::check_path(&st, &ctx.caller, &path, "CAN_READ")?;
    Ok(extract::json(object_info(&path, node)))
}

fn parse_format(s: Option<&str>) -> Result<Format, ApiError> {
    match s {
        None | Some("") => Ok(Format::Source),
        Some(f) => Format::parse(f).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid format: {f}; valid formats are SOURCE, HTML, JUPYTER, DBC, R_MARKDOWN, AUTO, RAW"
            ))
        }),
    }
}

fn parse_language(s: &str) -> Result<Language, ApiError> {
    Language::ALL
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid language: {s}; valid languages are PYTHON, SCALA, SQL, R"
            ))
        })
}

fn too_large(what: &str, size: usize) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "MAX_NOTEBOOK_SIZE_EXCEEDED",
        format!("{what} size ({size} bytes) exceeded max size ({MAX_SIZE} bytes)"),
    )
}

/// The bytes and `file_type` of one object's export.
fn export_node(
    st: &State,
    path: &str,
    n: &Node,
    format: Format,
    outputs: bool,
    readable: &dyn Fn(&str) -> bool,
) -> Result<(Vec<u8>, String), ApiError> {
    let name = ws::base_name(path);
    match n.object_type {
        ObjectType::Notebook => {
            let lang = n.language.unwrap_or(Language::Python);
            Ok(match format {
                Format::Source | Format::Auto => (n.content.clone(), lang.extension().to_string()),
                Format::Jupyter => (
                    notebook::to_jupyter(name, lang, &n.content, n.outputs_bytes, outputs),
                    "ipynb".to_string(),
                ),
                Format::Html => (
                    notebook::to_html(name, lang, &n.content, n.outputs_bytes, n.object_id),
                    "html".to_string(),
                ),
                Format::Dbc => {
                    let model = notebook::notebook_json(
                        name,
                        lang,
                        &n.content,
                        n.outputs_bytes,
                        outputs,
                        n.object_id,
                    );
                    let entry = format!("{name}.{}", notebook::dbc_suffix(lang));
                    let data = serde_json::to_vec(&model).unwrap_or_default();
                    // The limit applies to the notebook, not to its compressed archive.
                    if data.len() > MAX_SIZE {
                        return Err(too_large("Export", data.len()));
                    }
                    (
                        notebook::zip(&[(entry, data)]).map_err(ApiError::invalid)?,
                        "dbc".to_string(),
                    )
                }
                Format::RMarkdown if lang == Language::R => {
                    (notebook::to_rmd(name, &n.content), "Rmd".to_string())
                }
                Format::RMarkdown => {
                    return Err(ApiError::invalid(format!(
                        "R_MARKDOWN export is only supported for R notebooks; {path} is {}",
                        lang.as_str()
                    )))
                }
                Format::Raw => {
                    return Err(ApiError::invalid(format!(
                        "RAW export is not supported for notebook {path}"
                    )))
                }
            })
        }
        ObjectType::File => match format {
            Format::Source | Format::Auto | Format::Raw => {
                let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
                Ok((n.content.clone(), ext.to_string()))
            }
            f => Err(ApiError::invalid(format!(
                "Export format {} is not supported for file {path}",
                f.as_str()
            ))),
        },
        ObjectType::Directory | ObjectType::Repo => export_dir(st, path, format, outputs, readable),
        ObjectType::Library | ObjectType::Dashboard => Err(ApiError::invalid(format!(
            "Export is not supported for {} {path}",
            json!(n.object_type).as_str().unwrap_or("object")
        ))),
    }
}

/// A directory export: a zip of notebooks (SOURCE), notebooks and files (AUTO), or a DBC.
fn export_dir(
    st: &State,
    path: &str,
    format: Format,
    outputs: bool,
    readable: &dyn Fn(&str) -> bool,
) -> Result<(Vec<u8>, String), ApiError> {
    if !matches!(format, Format::Source | Format::Auto | Format::Dbc) {
        return Err(ApiError::invalid(format!(
            "Export format {} is not supported for folder {path}; use SOURCE, DBC or AUTO",
            format.as_str()
        )));
    }
    let root = if path == "/" {
        "root"
    } else {
        ws::base_name(path)
    };
    let mut entries = Vec::new();
    let mut total = 0usize;
    for p in st.tree.subtree(path) {
        let Some(n) = st.tree.get(&p) else { continue };
        if !readable(&p) {
            continue;
        }
        let rel = if p == path {
            root.to_string()
        } else {
            format!("{root}/{}", &p[path.len() + usize::from(path != "/")..])
        };
        match n.object_type {
            ObjectType::Directory | ObjectType::Repo => {
                entries.push((format!("{rel}/"), Vec::new()))
            }
            ObjectType::Notebook => {
                let lang = n.language.unwrap_or(Language::Python);
                let (name, data) = if format == Format::Dbc {
                    let model = notebook::notebook_json(
                        ws::base_name(&p),
                        lang,
                        &n.content,
                        n.outputs_bytes,
                        outputs,
                        n.object_id,
                    );
                    (
                        format!("{rel}.{}", notebook::dbc_suffix(lang)),
                        serde_json::to_vec(&model).unwrap_or_default(),
                    )
                } else {
                    (format!("{rel}.{}", lang.extension()), n.content.clone())
                };
                total += data.len();
                entries.push((name, data));
            }
            ObjectType::File if format == Format::Auto => {
                total += n.content.len();
                entries.push((rel, n.content.clone()));
            }
            _ => {}
        }
        if total > MAX_SIZE {
            return Err(too_large("Export", total));
        }
    }
    let data = notebook::zip(&entries).map_err(ApiError::invalid)?;
    let ft = if format == Format::Dbc { "dbc" } else { "zip" };
    Ok((data, ft.to_string()))
}

async fn export(ctx: Ctx, p: Params) -> ApiResult {
    let path = norm_path(p.req("path")?)?;
    let format = parse_format(p.get("format"))?;
    let direct = p.bool("direct_download")?.unwrap_or(false);
    let outputs = match p.get("outputs") {
        None | Some("") | Some("ALL") => true,
        Some("NONE") => false,
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "Invalid outputs: {o}; valid values are ALL, NONE"
            )))
        }
    };
    let (data, file_type) = {
        let st = ctx.state();
        let node = st.tree.get(&path).ok_or_else(|| missing(&path))?;
        access::check_path(&st, &ctx.caller, &path, "CAN_READ")?;
        let admin = access::is_admin(&st, &ctx.caller);
        let readable = |p: &str| admin || access::can_path(&st, &ctx.caller, p, "CAN_READ");
        export_node(&st, &path, node, format, outputs, &readable)?
    };
    if data.len() > MAX_SIZE {
        return Err(too_large("Export", data.len()));
    }
    if direct {
        let name = format!(
            "{}{}{}",
            ws::base_name(&path),
            if file_type.is_empty() { "" } else { "." },
            file_type
        );
        let disposition = format!(
            "attachment; filename=\"{}\"",
            name.replace(['"', '\\', '\r', '\n'], "_")
        );
        let mut resp = (
            [(header::CONTENT_TYPE, "application/octet-stream".to_string())],
            data,
        )
            .into_response();
        if let Ok(v) = axum::http::HeaderValue::from_str(&disposition) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(resp);
    }
    Ok(extract::json(
        json!({"content": b64(&data), "file_type": file_type}),
    ))
}

/// The fields of an import request, from JSON or multipart.
struct ImportRequest {
    path: String,
    format: Format,
    language: Option<Language>,
    overwrite: bool,
    content: Vec<u8>,
}

async fn read_import(req: Request) -> Result<ImportRequest, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut fields = Map::new();
    let mut content: Option<Vec<u8>> = None;
    if is_multipart {
        let mut mp = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::malformed(format!("Invalid multipart body: {e}")))?;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::malformed(format!("Invalid multipart body: {e}")))?
        {
            let name = field.name().unwrap_or("").to_string();
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::malformed(format!("Invalid multipart body: {e}")))?;
            if name == "content" {
                content = Some(data.to_vec());
            } else {
                fields.insert(
                    name,
                    Value::String(String::from_utf8_lossy(&data).into_owned()),
                );
            }
        }
    } else {
        let Body(body) = Body::from_request(req, &()).await?;
        if let Some(c) = body.opt_str("content")? {
            if c.len() > MAX_SIZE * 4 / 3 + 4 {
                return Err(too_large("File", c.len() * 3 / 4));
            }
            content = Some(unb64("content", c)?);
        }
        fields = body;
    }
    let path = norm_path(fields.req_str("path")?)?;
    let format = parse_format(fields.opt_str("format")?)?;
    let language = fields
        .opt_str("language")?
        .map(parse_language)
        .transpose()?;
    let overwrite = fields.opt_bool("overwrite")?.unwrap_or(false);
    let content = content.ok_or_else(|| ApiError::missing("content"))?;
    if content.len() > MAX_SIZE {
        return Err(too_large("File", content.len()));
    }
    Ok(ImportRequest {
        path,
        format,
        language,
        overwrite,
        content,
    })
}

/// Puts a notebook or file at `path`, replacing what is there only when `overwrite`.
fn put_object(
    st: &mut State,
    path: &str,
    object_type: ObjectType,
    language: Option<Language>,
    content: Vec<u8>,
    outputs_bytes: u64,
    overwrite: bool,
) -> Result<(), ApiError> {
    if path == "/" {
        return Err(ApiError::exists("Path (/) already exists."));
    }
    check_parent(st, path)?;
    let now = st.now();
    if let Some(existing) = st.tree.get_mut(path) {
        if !overwrite {
            return Err(ApiError::exists(format!("Path ({path}) already exists.")));
        }
        if existing.is_container() {
            return Err(ApiError::exists(format!(
                "Path ({path}) already exists and it is a folder; it cannot be overwritten."
            )));
        }
        existing.object_type = object_type;
        existing.language = language;
        existing.content = content;
        existing.outputs_bytes = outputs_bytes;
        existing.modified_at = now;
        return Ok(());
    }
    let mut node = new_node(st, object_type);
    node.language = language;
    node.content = content;
    node.outputs_bytes = outputs_bytes;
    st.tree.insert(path.to_string(), node);
    Ok(())
}

/// A notebook from a file name and bytes, the way `AUTO` import decides: a `.py`, `.scala`,
/// `.sql` or `.r` file with its language's header, or an `.ipynb`.
fn auto_notebook(name: &str, content: &[u8]) -> Option<(String, notebook::Parsed)> {
    let (base_stem, ext) = ws::base_name(name).rsplit_once('.')?;
    if base_stem.is_empty() {
        return None;
    }
    let stem = &name[..name.len() - ext.len() - 1];
    if ext.eq_ignore_ascii_case("ipynb") {
        return notebook::from_jupyter(content, None)
            .ok()
            .map(|p| (stem.to_string(), p));
    }
    let lang = Language::from_extension(ext)?;
    notebook::has_header(lang, content).then(|| {
        (
            stem.to_string(),
            notebook::Parsed {
                language: lang,
                source: content.to_vec(),
                outputs_bytes: 0,
            },
        )
    })
}

/// Imports an archive of notebooks (DBC, or a SOURCE zip) as the folder `path`.
fn import_archive(st: &mut State, path: &str, content: &[u8], dbc: bool) -> Result<(), ApiError> {
    let mut entries = notebook::unzip(content, (MAX_SIZE * 10) as u64)
        .map_err(|e| ApiError::invalid(format!("Invalid archive for {path}: {e}")))?;
    // An archive of one folder (what a folder export makes) holds that folder's content.
    let tops: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|(n, _)| n.split('/').next().unwrap_or(""))
        .collect();
    let strip = tops.len() == 1 && entries.iter().all(|(n, _)| n.contains('/'));
    if strip {
        for (n, _) in entries.iter_mut() {
            if let Some((_, rest)) = n.split_once('/') {
                *n = rest.to_string();
            }
        }
    }
    let mut notebooks = Vec::new();
    for (name, data) in entries {
        let parsed = if dbc {
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            if !["python", "scala", "sql", "r"].contains(&ext) {
                continue;
            }
            let v: Value = serde_json::from_slice(&data)
                .map_err(|e| ApiError::invalid(format!("Invalid DBC entry {name}: {e}")))?;
            let p = notebook::from_notebook_json(&v)
                .map_err(|e| ApiError::invalid(format!("Invalid DBC entry {name}: {e}")))?;
            (stem.to_string(), p)
        } else {
            match auto_notebook(&name, &data) {
                Some(x) => x,
                None => continue,
            }
        };
        notebooks.push(parsed);
    }
    if !dbc || notebooks.len() != 1 || notebooks[0].0.contains('/') || strip {
        check_parent(st, path)?;
        if st.tree.get(path).is_some() {
            return Err(ApiError::exists(format!("Path ({path}) already exists.")));
        }
        make_dirs(st, path)?;
        for (rel, p) in notebooks {
            let full = format!("{path}/{rel}");
            make_dirs(st, ws::parent_path(&full))?;
            put_object(
                st,
                &full,
                ObjectType::Notebook,
                Some(p.language),
                p.source,
                p.outputs_bytes,
                false,
            )?;
        }
        return Ok(());
    }
    let (_, p) = notebooks.remove(0);
    put_object(
        st,
        path,
        ObjectType::Notebook,
        Some(p.language),
        p.source,
        p.outputs_bytes,
        false,
    )
}

async fn import(ctx: Ctx, req: Request) -> ApiResult {
    let r = read_import(req).await?;
    let mut st = ctx.state();
    let st = &mut *st;
    let path = r.path.as_str();
    check_write(st, &ctx.caller, path)?;
    if r.format == Format::Auto {
        if let Some((stem, _)) = auto_notebook(path, &r.content) {
            check_write(st, &ctx.caller, &stem)?;
        }
    }
    match r.format {
        Format::Dbc => {
            if r.overwrite {
                return Err(ApiError::invalid(
                    "overwrite is not supported when importing the DBC format",
                ));
            }
            import_archive(st, path, &r.content, true)?;
        }
        Format::Source => match r.language {
            Some(lang) => put_object(
                st,
                path,
                ObjectType::Notebook,
                Some(lang),
                notebook::normalize_source(lang, &r.content),
                0,
                r.overwrite,
            )?,
            None if notebook::is_zip(&r.content) => {
                if r.overwrite {
                    return Err(ApiError::invalid(
                        "overwrite is not supported when importing a folder",
                    ));
                }
                import_archive(st, path, &r.content, false)?;
            }
            None => return Err(ApiError::invalid(
                "The language field is required when importing a single file in the SOURCE format",
            )),
        },
        Format::Auto => match auto_notebook(path, &r.content) {
            Some((stem, p)) => put_object(
                st,
                &stem,
                ObjectType::Notebook,
                Some(p.language),
                p.source,
                p.outputs_bytes,
                r.overwrite,
            )?,
            None => put_object(st, path, ObjectType::File, None, r.content, 0, r.overwrite)?,
        },
        Format::Raw => put_object(st, path, ObjectType::File, None, r.content, 0, r.overwrite)?,
        Format::Jupyter => {
            let p = notebook::from_jupyter(&r.content, r.language).map_err(|e| {
                ApiError::invalid(format!("Invalid JUPYTER content for {path}: {e}"))
            })?;
            put_object(
                st,
                path,
                ObjectType::Notebook,
                Some(p.language),
                p.source,
                p.outputs_bytes,
                r.overwrite,
            )?
        }
        Format::Html => {
            let p = notebook::from_html(&r.content)
                .map_err(|e| ApiError::invalid(format!("Invalid HTML content for {path}: {e}")))?;
            put_object(
                st,
                path,
                ObjectType::Notebook,
                Some(p.language),
                p.source,
                p.outputs_bytes,
                r.overwrite,
            )?
        }
        Format::RMarkdown => {
            let p = notebook::from_rmd(&r.content);
            put_object(
                st,
                path,
                ObjectType::Notebook,
                Some(Language::R),
                p.source,
                0,
                r.overwrite,
            )?
        }
    }
    Ok(extract::empty())
}

/// Refuses a write at `path` unless the caller may edit what is there, or, for a new object,
/// what it would be created in (`CAN_EDIT`, inherited from the nearest existing folders).
fn check_write(st: &State, caller: &Caller, path: &str) -> Result<(), ApiError> {
    access::check_path(st, caller, path, "CAN_EDIT")
}

async fn mkdirs(ctx: Ctx, Body(b): Body) -> ApiResult {
    let path = norm_path(b.req_str("path")?)?;
    let mut st = ctx.state();
    if st.tree.get(&path).is_none() {
        check_write(&st, &ctx.caller, &path)?;
    }
    make_dirs(&mut st, &path)?;
    Ok(extract::empty())
}

/// Top-level folders every workspace has and no one can delete.
const PROTECTED: [&str; 4] = ["/", "/Users", "/Shared", "/Repos"];

/// Deletes `path` (and, when `recursive`, what it holds), dropping repos whose roots go with it.
pub(crate) fn delete_path(st: &mut State, path: &str, recursive: bool) -> Result<(), ApiError> {
    let node = st.tree.get(path).ok_or_else(|| missing(path))?;
    if PROTECTED.contains(&path) {
        return Err(ApiError::denied(format!(
            "Folder ({path}) is a system folder and cannot be deleted."
        )));
    }
    if node.is_container() && !recursive && !st.tree.children(path).is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIRECTORY_NOT_EMPTY",
            format!("Folder ({path}) is not empty"),
        ));
    }
    for (_, n) in st.tree.remove_subtree(path) {
        if n.object_type == ObjectType::Repo {
            st.repos.remove(&n.object_id);
        }
    }
    Ok(())
}

async fn delete(ctx: Ctx, Body(b): Body) -> ApiResult {
    let path = norm_path(b.req_str("path")?)?;
    let recursive = b.opt_bool("recursive")?.unwrap_or(false);
    let mut st = ctx.state();
    if st.tree.get(&path).is_some() {
        access::check_path(&st, &ctx.caller, &path, "CAN_MANAGE")?;
    }
    delete_path(&mut st, &path, recursive)?;
    Ok(extract::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(norm_path("/Workspace/Users/a/").unwrap(), "/Users/a");
        assert_eq!(norm_path("/").unwrap(), "/");
        assert_eq!(norm_path("//Shared//x").unwrap(), "/Shared/x");
        assert!(norm_path("Users/a").is_err());
        assert!(norm_path("/Users/../etc").is_err());
    }

    #[test]
    fn auto_detection() {
        let (stem, p) = auto_notebook("/a/nb.py", b"# Databricks notebook source\nx=1\n").unwrap();
        assert_eq!(stem, "/a/nb");
        assert_eq!(p.language, Language::Python);
        assert!(auto_notebook("/a/plain.py", b"x=1\n").is_none());
        assert!(auto_notebook("/a/.py", b"# Databricks notebook source\n").is_none());
        let (_, r) = auto_notebook("/a/x.r", b"# Databricks notebook source\n").unwrap();
        assert_eq!(r.language, Language::R);
    }
}
