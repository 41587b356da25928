//! Byte streams: downloads handed to the caller chunk by chunk (constant memory however large
//! the object), and readers turned into request bodies for uploads.

use super::error::ClientError;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A download in progress. Each item is the next chunk of the body; an error names the call.
pub struct ByteStream {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>,
    /// `Content-Length`, when the server sent one.
    pub content_length: Option<u64>,
    /// Response headers (`Content-Type`, `Last-Modified`, …).
    pub headers: HeaderMap,
}

impl std::fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteStream")
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl ByteStream {
    /// Wraps a stream of chunks.
    pub fn new(
        inner: impl Stream<Item = Result<Bytes, ClientError>> + Send + 'static,
        content_length: Option<u64>,
        headers: HeaderMap,
    ) -> ByteStream {
        ByteStream {
            inner: Box::pin(inner),
            content_length,
            headers,
        }
    }

    /// A stream over bytes already in memory.
    pub fn from_bytes(b: Bytes) -> ByteStream {
        let len = b.len() as u64;
        ByteStream::new(
            futures_util::stream::iter((!b.is_empty()).then_some(Ok(b))),
            Some(len),
            HeaderMap::new(),
        )
    }

    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, ClientError>> {
        self.inner.next().await
    }

    /// Reads the whole body into memory (for bodies known to be small).
    pub async fn collect_bytes(mut self) -> Result<Bytes, ClientError> {
        let mut buf =
            BytesMut::with_capacity(self.content_length.unwrap_or(0).min(1 << 24) as usize);
        while let Some(chunk) = self.next_chunk().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    /// Copies the body into `w`, returning the number of bytes written. `call` names the
    /// download in a write error.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        mut self,
        w: &mut W,
        call: &str,
    ) -> Result<u64, ClientError> {
        let mut n = 0u64;
        while let Some(chunk) = self.next_chunk().await {
            let chunk = chunk?;
            w.write_all(&chunk)
                .await
                .map_err(|source| ClientError::Io {
                    call: call.to_string(),
                    source,
                })?;
            n += chunk.len() as u64;
        }
        w.flush().await.map_err(|source| ClientError::Io {
            call: call.to_string(),
            source,
        })?;
        Ok(n)
    }
}

impl Stream for ByteStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Reads `r` in chunks of up to `chunk` bytes, as a stream (for request bodies).
pub fn reader_stream<R: AsyncRead + Send + Unpin + 'static>(
    r: R,
    chunk: usize,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(r), move |state| async move {
        let mut r = state?;
        let mut buf = BytesMut::with_capacity(chunk);
        match r.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(r))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Fills `buf` with up to `want` bytes from `r`, stopping early only at end of input.
pub async fn read_full<R: AsyncRead + Unpin>(
    r: &mut R,
    want: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    buf.clear();
    buf.reserve(want);
    while buf.len() < want {
        let n = (&mut *r)
            .take((want - buf.len()) as u64)
            .read_to_end(buf)
            .await?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.len())
}
