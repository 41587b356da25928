//! Workspace objects (`/api/2.0/workspace/*`): list one folder, get status, export, import (JSON
//! and multipart), mkdirs, delete. One listing per folder; callers recurse themselves so that
//! they can run folders concurrently.

use super::transport::{Call, FormPart};
use super::{ByteStream, Client, ClientError};
use crate::model::workspace::{Format, Language, ObjectInfo};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

/// Workspace API calls.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceApi<'a> {
    c: &'a Client,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct Import<'a> {
    /// Target path (the parent folder must exist).
    pub path: &'a str,
    /// Raw content (not base64).
    pub content: Bytes,
    /// Import format.
    pub format: Format,
    /// Notebook language (required for a single SOURCE notebook).
    pub language: Option<Language>,
    /// Replace an existing object.
    pub overwrite: bool,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    objects: Vec<ObjectInfo>,
}

fn obj(path: &str) -> String {
    format!("path={path}")
}

impl<'a> WorkspaceApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        WorkspaceApi { c }
    }

    /// The entries of one folder (or the object itself when `path` is not a folder).
    pub async fn list(&self, path: &str) -> Result<Vec<ObjectInfo>, ClientError> {
        let r: ListResponse = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/workspace/list")
                    .query("path", path)
                    .object(obj(path)),
            )
            .await?;
        Ok(r.objects)
    }

    /// One object's status.
    pub async fn get_status(&self, path: &str) -> Result<ObjectInfo, ClientError> {
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/workspace/get-status")
                    .query("path", path)
                    .object(obj(path)),
            )
            .await
    }

    fn export_call(path: &str, format: Format, include_outputs: Option<bool>) -> Call {
        Call::get("/api/2.0/workspace/export")
            .query("path", path)
            .query("format", format.as_str())
            .query_opt(
                "outputs",
                include_outputs.map(|o| if o { "ALL" } else { "NONE" }),
            )
            .query("direct_download", "true")
            .header(reqwest::header::ACCEPT, "*/*")
            .object(format!("path={path} format={}", format.as_str()))
    }

    /// Exports an object in `format` as raw bytes (`direct_download=true`). An object over the
    /// export size limit fails with [`ClientError::TooLarge`]. `include_outputs` sets
    /// `outputs=ALL|NONE` (server default when `None`).
    pub async fn export(
        &self,
        path: &str,
        format: Format,
        include_outputs: Option<bool>,
    ) -> Result<Bytes, ClientError> {
        Ok(self
            .c
            .transport()
            .fetch(&Self::export_call(path, format, include_outputs))
            .await?
            .body)
    }

    /// [`WorkspaceApi::export`] as a stream, for large workspace files.
    pub async fn export_stream(
        &self,
        path: &str,
        format: Format,
        include_outputs: Option<bool>,
    ) -> Result<ByteStream, ClientError> {
        self.c
            .transport()
            .stream(Self::export_call(path, format, include_outputs))
            .await
    }

    /// Imports with a JSON body (content base64-encoded). Retried like a read when
    /// `overwrite` is set, since replaying it then has the same effect.
    pub async fn import(&self, req: &Import<'_>) -> Result<(), ClientError> {
        let mut body = json!({
            "path": req.path,
            "content": base64::engine::general_purpose::STANDARD.encode(&req.content),
            "format": req.format.as_str(),
            "overwrite": req.overwrite,
        });
        if let Some(l) = req.language {
            body["language"] = json!(l.as_str());
        }
        let mut call = Call::post("/api/2.0/workspace/import")
            .json(&body)
            .object(obj(req.path));
        if req.overwrite {
            call = call.safe_to_retry();
        }
        self.c.transport().send(call).await
    }

    /// Imports with a multipart body (the content as a raw file part named `content`), as
    /// the SDK's `workspace.upload` does; no base64 inflation.
    pub async fn upload(&self, req: &Import<'_>) -> Result<(), ClientError> {
        let text = |name: &str, v: &str| FormPart {
            name: name.to_string(),
            filename: None,
            data: Bytes::from(v.to_string()),
        };
        let mut parts = vec![text("path", req.path), text("format", req.format.as_str())];
        if let Some(l) = req.language {
            parts.push(text("language", l.as_str()));
        }
        if req.overwrite {
            parts.push(text("overwrite", "true"));
        }
        parts.push(FormPart {
            name: "content".into(),
            filename: Some(crate::model::workspace::base_name(req.path).to_string()),
            data: req.content.clone(),
        });
        let mut call = Call::post("/api/2.0/workspace/import")
            .multipart(parts)
            .object(obj(req.path));
        if req.overwrite {
            call = call.safe_to_retry();
        }
        self.c.transport().send(call).await
    }

    /// Creates a folder and its parents (idempotent).
    pub async fn mkdirs(&self, path: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/workspace/mkdirs")
                    .json(&json!({ "path": path }))
                    .safe_to_retry()
                    .object(obj(path)),
            )
            .await
    }

    /// Deletes an object (a non-empty folder only with `recursive`).
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/workspace/delete")
                    .json(&json!({ "path": path, "recursive": recursive }))
                    .object(obj(path)),
            )
            .await
    }
}
