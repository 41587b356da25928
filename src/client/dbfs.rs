//! DBFS (`/api/2.0/dbfs/*`): status, listing, streamed reads in 1 MB steps, streamed uploads
//! through create / add-block / close in 1 MB blocks, put, mkdirs, delete.

use super::stream::{read_full, ByteStream};
use super::transport::Call;
use super::{Client, ClientError};
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncRead;

/// The largest block the DBFS API accepts in one read or add-block.
pub const BLOCK: usize = 1 << 20;

/// DBFS API calls.
#[derive(Debug, Clone, Copy)]
pub struct DbfsApi<'a> {
    c: &'a Client,
}

/// A DBFS entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbfsFileInfo {
    /// Absolute path.
    pub path: String,
    /// True for a directory.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes.
    #[serde(default)]
    pub file_size: i64,
    /// Modification time, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modification_time: Option<i64>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    files: Vec<DbfsFileInfo>,
}

#[derive(Deserialize)]
struct ReadResponse {
    #[serde(default)]
    bytes_read: i64,
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
struct HandleResponse {
    handle: i64,
}

/// `dbfs:/x` → `/x`.
pub fn strip_scheme(path: &str) -> &str {
    path.strip_prefix("dbfs:").unwrap_or(path)
}

async fn read_block(c: &Client, path: &str, offset: i64) -> Result<Bytes, ClientError> {
    let call = Call::get("/api/2.0/dbfs/read")
        .query("path", path)
        .query("offset", offset)
        .query("length", BLOCK)
        .object(format!("path={path} offset={offset}"));
    let describe = call.describe();
    let r: ReadResponse = c.transport().json(call).await?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(r.data.as_bytes())
        .map_err(|_| ClientError::Decode {
            call: describe.clone(),
            message: "data is not valid base64".into(),
        })?;
    if r.bytes_read as usize != data.len() {
        return Err(ClientError::Decode {
            call: describe,
            message: format!(
                "bytes_read {} but {} bytes of data",
                r.bytes_read,
                data.len()
            ),
        });
    }
    Ok(Bytes::from(data))
}

impl<'a> DbfsApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        DbfsApi { c }
    }

    /// One entry's status.
    pub async fn get_status(&self, path: &str) -> Result<DbfsFileInfo, ClientError> {
        let path = strip_scheme(path);
        self.c
            .transport()
            .json(
                Call::get("/api/2.0/dbfs/get-status")
                    .query("path", path)
                    .object(format!("path={path}")),
            )
            .await
    }

    /// The entries of a directory.
    pub async fn list(&self, path: &str) -> Result<Vec<DbfsFileInfo>, ClientError> {
        let path = strip_scheme(path);
        let r: ListResponse = self
            .c
            .transport()
            .json(
                Call::get("/api/2.0/dbfs/list")
                    .query("path", path)
                    .object(format!("path={path}")),
            )
            .await?;
        Ok(r.files)
    }

    /// Reads a file as a stream of 1 MB blocks (one read call each, in order).
    pub async fn read(&self, path: &str) -> Result<ByteStream, ClientError> {
        let path = strip_scheme(path).to_string();
        let status = self.get_status(&path).await?;
        if status.is_dir {
            return Err(ClientError::Protocol {
                call: format!("GET /api/2.0/dbfs/read path={path}"),
                message: "is a directory".into(),
            });
        }
        let size = status.file_size.max(0);
        let client = self.c.clone();
        let s = futures_util::stream::unfold(Some(0i64), move |offset| {
            let client = client.clone();
            let path = path.clone();
            async move {
                let offset = offset?;
                if offset >= size {
                    return None;
                }
                match read_block(&client, &path, offset).await {
                    Ok(b) if b.is_empty() => Some((
                        Err(ClientError::Protocol {
                            call: format!("GET /api/2.0/dbfs/read path={path} offset={offset}"),
                            message: format!("file ended at {offset} of {size} bytes"),
                        }),
                        None,
                    )),
                    Ok(b) => {
                        let next = offset + b.len() as i64;
                        Some((Ok(b), Some(next)))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            }
        });
        Ok(ByteStream::new(s, Some(size as u64), HeaderMap::new()))
    }

    /// Uploads from a reader through create / add-block / close, in 1 MB blocks; returns the
    /// bytes written. On failure the partial file is deleted (best effort).
    pub async fn upload<R: AsyncRead + Unpin>(
        &self,
        path: &str,
        mut reader: R,
        overwrite: bool,
    ) -> Result<u64, ClientError> {
        let path = strip_scheme(path);
        let t = self.c.transport();
        let h: HandleResponse = t
            .json(
                Call::post("/api/2.0/dbfs/create")
                    .json(&json!({ "path": path, "overwrite": overwrite }))
                    .object(format!("path={path}")),
            )
            .await?;
        let handle = h.handle;
        let result: Result<u64, ClientError> = async {
            let mut total = 0u64;
            let mut buf = Vec::with_capacity(BLOCK);
            loop {
                let n = read_full(&mut reader, BLOCK, &mut buf)
                    .await
                    .map_err(|source| ClientError::Io {
                        call: format!("POST /api/2.0/dbfs/add-block path={path}"),
                        source,
                    })?;
                if n == 0 {
                    break;
                }
                let data = base64::engine::general_purpose::STANDARD.encode(&buf);
                t.send(
                    Call::post("/api/2.0/dbfs/add-block")
                        .json(&json!({ "handle": handle, "data": data }))
                        .object(format!("path={path} offset={total}")),
                )
                .await?;
                total += n as u64;
                if n < BLOCK {
                    break;
                }
            }
            t.send(
                Call::post("/api/2.0/dbfs/close")
                    .json(&json!({ "handle": handle }))
                    .object(format!("path={path}")),
            )
            .await?;
            Ok(total)
        }
        .await;
        if result.is_err() {
            let _ = t
                .send(
                    Call::post("/api/2.0/dbfs/close")
                        .json(&json!({ "handle": handle }))
                        .object(format!("path={path}")),
                )
                .await;
            let _ = self.delete(path, false).await;
        }
        result
    }

    /// Writes a small file (≤ 1 MB) in one call.
    pub async fn put(
        &self,
        path: &str,
        contents: &[u8],
        overwrite: bool,
    ) -> Result<(), ClientError> {
        let path = strip_scheme(path);
        if contents.len() > BLOCK {
            return self.upload(path, contents, overwrite).await.map(|_| ());
        }
        let mut call = Call::post("/api/2.0/dbfs/put")
            .json(&json!({
                "path": path,
                "contents": base64::engine::general_purpose::STANDARD.encode(contents),
                "overwrite": overwrite,
            }))
            .object(format!("path={path}"));
        if overwrite {
            call = call.safe_to_retry();
        }
        self.c.transport().send(call).await
    }

    /// Creates a directory and its parents.
    pub async fn mkdirs(&self, path: &str) -> Result<(), ClientError> {
        let path = strip_scheme(path);
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/dbfs/mkdirs")
                    .json(&json!({ "path": path }))
                    .safe_to_retry()
                    .object(format!("path={path}")),
            )
            .await
    }

    /// Deletes a file or (with `recursive`) a directory. Safe to replay: a retry after a lost
    /// answer that finds the path gone counts as done.
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<(), ClientError> {
        let path = strip_scheme(path);
        self.c
            .transport()
            .send(
                Call::post("/api/2.0/dbfs/delete")
                    .json(&json!({ "path": path, "recursive": recursive }))
                    .gone_means_done()
                    .object(format!("path={path}")),
            )
            .await
    }
}
