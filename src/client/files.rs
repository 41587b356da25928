//! Files API (`/api/2.0/fs/*`, Unity Catalog volumes): streamed download and upload, HEAD
//! metadata, delete, directory listing (paged), create and delete. Paths are URL-quoted with
//! `/` kept.

use super::stream::{reader_stream, ByteStream};
use super::transport::Call;
use super::{check_page, encode_path, Client, ClientError};
use bytes::Bytes;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use tokio::io::AsyncRead;

/// Files API calls.
#[derive(Debug, Clone, Copy)]
pub struct FilesApi<'a> {
    c: &'a Client,
}

/// What `HEAD` tells about a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileMetadata {
    /// Size in bytes.
    pub content_length: Option<u64>,
    /// Content type.
    pub content_type: Option<String>,
    /// `Last-Modified` (HTTP date).
    pub last_modified: Option<String>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// Absolute path.
    pub path: String,
    /// Last component.
    #[serde(default)]
    pub name: String,
    /// True for a directory.
    #[serde(default)]
    pub is_directory: bool,
    /// Size (files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
    /// Modification time, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<i64>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    contents: Vec<DirectoryEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

fn file_path(p: &str) -> String {
    format!("/api/2.0/fs/files{}", encode_path(p))
}

fn dir_path(p: &str) -> String {
    format!("/api/2.0/fs/directories{}", encode_path(p))
}

fn metadata(h: &HeaderMap) -> FileMetadata {
    let s = |k| {
        h.get(k)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    FileMetadata {
        content_length: s(CONTENT_LENGTH).and_then(|v| v.parse().ok()),
        content_type: s(CONTENT_TYPE),
        last_modified: s(LAST_MODIFIED),
    }
}

impl<'a> FilesApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        FilesApi { c }
    }

    fn put_call(path: &str, overwrite: bool) -> Call {
        let call = Call::put("/api/2.0/fs/files{path}")
            .path(file_path(path))
            .query("overwrite", overwrite)
            .object(format!("path={path}"));
        if overwrite {
            call.safe_to_retry()
        } else {
            call
        }
    }

    /// Downloads a file as a stream.
    pub async fn download(&self, path: &str) -> Result<ByteStream, ClientError> {
        self.c
            .transport()
            .stream(
                Call::get("/api/2.0/fs/files{path}")
                    .path(file_path(path))
                    .header(ACCEPT, "application/octet-stream")
                    .object(format!("path={path}")),
            )
            .await
    }

    /// A file's size, type and modification time.
    pub async fn metadata(&self, path: &str) -> Result<FileMetadata, ClientError> {
        let f = self
            .c
            .transport()
            .fetch(
                &Call::head("/api/2.0/fs/files{path}")
                    .path(file_path(path))
                    .object(format!("path={path}")),
            )
            .await?;
        Ok(metadata(&f.headers))
    }

    /// Uploads bytes in memory.
    pub async fn upload_bytes(
        &self,
        path: &str,
        data: Bytes,
        overwrite: bool,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(Self::put_call(path, overwrite).bytes(data, "application/octet-stream"))
            .await
    }

    /// Uploads a local file, streamed (re-read on a retry).
    pub async fn upload_file(
        &self,
        path: &str,
        local: PathBuf,
        overwrite: bool,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(Self::put_call(path, overwrite).file(local, "application/octet-stream"))
            .await
    }

    /// Uploads from a reader, streamed in 1 MB chunks; sent once (a reader cannot be rewound).
    pub async fn upload_reader<R: AsyncRead + Send + Unpin + 'static>(
        &self,
        path: &str,
        reader: R,
        len: Option<u64>,
        overwrite: bool,
    ) -> Result<(), ClientError> {
        let body = reqwest::Body::wrap_stream(reader_stream(reader, 1 << 20));
        self.c
            .transport()
            .send(Self::put_call(path, overwrite).stream(body, len, "application/octet-stream"))
            .await
    }

    /// Deletes a file.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/fs/files{path}")
                    .path(file_path(path))
                    .gone_means_done()
                    .object(format!("path={path}")),
            )
            .await
    }

    /// The entries of a directory (all pages).
    pub async fn list_directory(&self, path: &str) -> Result<Vec<DirectoryEntry>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let call = Call::get("/api/2.0/fs/directories{path}")
                .path(dir_path(path))
                .query("page_size", 1000)
                .query_opt("page_token", token.as_deref())
                .object(format!("path={path}"));
            let describe = call.describe();
            let r: ListResponse = self.c.transport().json(call).await?;
            out.extend(r.contents);
            pages += 1;
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => {
                    check_page(&describe, pages, &mut seen, &t)?;
                    token = Some(t);
                }
                None => return Ok(out),
            }
        }
    }

    /// Creates a directory and its parents (idempotent).
    pub async fn create_directory(&self, path: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::put("/api/2.0/fs/directories{path}")
                    .path(dir_path(path))
                    .safe_to_retry()
                    .object(format!("path={path}")),
            )
            .await
    }

    /// Deletes an empty directory.
    pub async fn delete_directory(&self, path: &str) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::delete("/api/2.0/fs/directories{path}")
                    .path(dir_path(path))
                    .gone_means_done()
                    .object(format!("path={path}")),
            )
            .await
    }
}
