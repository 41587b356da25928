//! The byte pipes between the asynchronous registry and the synchronous bundle, so that an
//! artifact of any size passes through in constant memory:
//!
//! * export: a download's chunks flow through a bounded channel into a `ChannelReader`,
//!   which the bundle builder reads on a blocking thread. The reader checks the byte count
//!   against the listing, hashes what passes, and at the end refuses bytes that duplicate an
//!   artifact already stored (so the builder drops its staged copy);
//! * import: a blocking thread reads a payload file from the bundle (digest-checked) into a
//!   bounded channel that an upload consumes as a [`ChunkReceiver`]. The last chunk is held
//!   back until the digest has been checked, so a corrupt payload never completes an upload.

use crate::bundle::container::read::classify_read_error;
use crate::bundle::{Bundle, BundleError};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Chunks in flight between the two sides of a pipe (each at most about 1 MiB).
pub(crate) const DEPTH: usize = 4;
/// Size of the chunks read from a bundle.
const CHUNK: usize = 1 << 20;

/// What the reading side of an export pipe saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct PipeState {
    /// Bytes received so far.
    pub received: u64,
    /// The stream had more bytes than the listing said.
    pub too_long: bool,
    /// The stream ended before the listed size.
    pub too_short: bool,
    /// SHA-256 of the bytes, when all of them arrived.
    pub digest: Option<String>,
    /// The id of an artifact already stored with the same bytes.
    pub duplicate_of: Option<String>,
}

/// Digests of artifacts already stored in this export: digest → (artifact id, size).
pub(crate) type Known = BTreeMap<String, (String, u64)>;

/// Copies what fits of the chunk at hand into `buf`, keeping the rest; returns the count.
fn serve(cur: &mut Bytes, buf: &mut [u8]) -> usize {
    let n = buf.len().min(cur.len());
    buf[..n].copy_from_slice(&cur[..n]);
    let _ = cur.split_to(n);
    n
}

/// The blocking reader the bundle builder pulls an artifact's bytes from.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    expected: u64,
    seen: u64,
    sha: Sha256,
    ended: bool,
    state: Arc<Mutex<PipeState>>,
    known: Arc<Known>,
}

impl ChannelReader {
    /// A reader expecting exactly `expected` bytes from `rx`.
    pub fn new(
        rx: mpsc::Receiver<io::Result<Bytes>>,
        expected: u64,
        state: Arc<Mutex<PipeState>>,
        known: Arc<Known>,
    ) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Bytes::new(),
            expected,
            seen: 0,
            sha: Sha256::new(),
            ended: false,
            state,
            known,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.cur.is_empty() {
                return Ok(serve(&mut self.cur, buf));
            }
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => {
                    self.seen += b.len() as u64;
                    if self.seen > self.expected {
                        let mut st = self.state();
                        st.received = self.seen;
                        st.too_long = true;
                        return Err(io::Error::other(format!(
                            "more bytes than the {} the listing gave",
                            self.expected
                        )));
                    }
                    self.sha.update(&b);
                    self.cur = b;
                }
                Some(Err(e)) => return Err(e),
                None => {
                    self.ended = true;
                    let seen = self.seen;
                    let mut st = self.state();
                    st.received = seen;
                    if seen < self.expected {
                        st.too_short = true;
                        return Err(io::Error::other(format!(
                            "{seen} bytes, fewer than the {} the listing gave",
                            self.expected
                        )));
                    }
                    let digest = hex::encode(self.sha.clone().finalize());
                    st.digest = Some(digest.clone());
                    if let Some((first, size)) = self.known.get(&digest) {
                        if *size == seen {
                            st.duplicate_of = Some(first.clone());
                            // Failing here makes the builder discard its staged copy.
                            return Err(io::Error::other(format!("same bytes as {first}")));
                        }
                    }
                    return Ok(0);
                }
            }
        }
    }
}

/// Why a streamed artifact could not be written, shared between its reader (on the bundle
/// writer's thread) and the export that decides what to do next.
pub(crate) type StreamFailures = Arc<Mutex<Vec<String>>>;

/// An artifact read from the registry only when the bundle writer reaches its entry (spec
/// §11): the download starts on the first read, its chunks come through a bounded channel,
/// and anything but exactly the listed byte count is an error, recorded in `failures` so the
/// export can stage the file the ordinary way and write again. It does not hash: the writer
/// hashes every entry it writes and the read-back hashes it again from the disk.
pub(crate) struct StreamedFile {
    open: Option<(
        crate::models::Registry,
        crate::models::registry::ArtifactLocation,
        String,
    )>,
    runtime: tokio::runtime::Handle,
    rx: Option<mpsc::Receiver<io::Result<Bytes>>>,
    cur: Bytes,
    expected: u64,
    seen: u64,
    name: String,
    failures: StreamFailures,
}

impl StreamedFile {
    /// A reader of `path` under `loc`, expecting `expected` bytes; `name` names it in errors.
    pub(crate) fn new(
        registry: crate::models::Registry,
        loc: crate::models::registry::ArtifactLocation,
        path: String,
        expected: u64,
        name: String,
        failures: StreamFailures,
    ) -> StreamedFile {
        StreamedFile {
            open: Some((registry, loc, path)),
            runtime: tokio::runtime::Handle::current(),
            rx: None,
            cur: Bytes::new(),
            expected,
            seen: 0,
            name,
            failures,
        }
    }

    fn fail(&self, why: String) -> io::Error {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("model artifact {}: {why}", self.name));
        io::Error::other(why)
    }

    /// Starts the download on the runtime; its chunks fill a bounded channel.
    fn start(&mut self) -> mpsc::Receiver<io::Result<Bytes>> {
        let (tx, rx) = mpsc::channel(DEPTH);
        if let Some((registry, loc, path)) = self.open.take() {
            self.runtime.spawn(async move {
                let mut stream = match registry.open(&loc, &path).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                        return;
                    }
                };
                while let Some(chunk) = stream.next_chunk().await {
                    let item = chunk.map_err(|e| io::Error::other(e.to_string()));
                    let stop = item.is_err();
                    if tx.send(item).await.is_err() || stop {
                        return;
                    }
                }
            });
        }
        rx
    }
}

impl Read for StreamedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.cur.is_empty() {
                return Ok(serve(&mut self.cur, buf));
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if self.rx.is_none() {
                self.rx = Some(self.start());
            }
            let Some(rx) = self.rx.as_mut() else {
                return Ok(0);
            };
            match rx.blocking_recv() {
                Some(Ok(b)) => {
                    self.seen += b.len() as u64;
                    if self.seen > self.expected {
                        return Err(self.fail(format!(
                            "more bytes arrived than the {} the listing gave",
                            self.expected
                        )));
                    }
                    self.cur = b;
                }
                Some(Err(e)) => return Err(self.fail(format!("download failed: {e}"))),
                None => {
                    if self.seen < self.expected {
                        return Err(self.fail(format!(
                            "{} bytes arrived, fewer than the {} the listing gave",
                            self.seen, self.expected
                        )));
                    }
                    return Ok(0);
                }
            }
        }
    }
}

/// The receiving end of an upload pipe: chunks of one payload file.
pub struct ChunkReceiver {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl ChunkReceiver {
    /// The chunks as a stream (for an HTTP request body).
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::unfold(self.rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    /// All the chunks in memory (for small files). `what` names the upload in an error.
    pub async fn collect(mut self, what: &str) -> Result<Bytes, crate::client::ClientError> {
        let mut buf = bytes::BytesMut::new();
        while let Some(c) = self.rx.recv().await {
            let c = c.map_err(|source| crate::client::ClientError::Io {
                call: what.to_string(),
                source,
            })?;
            buf.extend_from_slice(&c);
        }
        Ok(buf.freeze())
    }

    /// The chunks as an `AsyncRead` (for DBFS and Files API uploads).
    pub fn into_async_read(self) -> ChunkRead {
        ChunkRead {
            rx: self.rx,
            cur: Bytes::new(),
        }
    }
}

/// [`ChunkReceiver`] as an `AsyncRead`.
pub struct ChunkRead {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl AsyncRead for ChunkRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.cur.is_empty() {
                let n = buf.remaining().min(self.cur.len());
                let chunk = self.cur.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => self.cur = b,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Starts reading the payload file `stored` of `bundle` on a blocking thread. Returns the
/// chunks and the reader's outcome (the bytes read, or why the file is unusable). `on_chunk`
/// sees the size of each chunk as it is handed on.
pub(crate) fn read_payload(
    bundle: Arc<Mutex<Bundle>>,
    stored: String,
    on_chunk: impl Fn(u64) + Send + 'static,
) -> (
    ChunkReceiver,
    tokio::task::JoinHandle<Result<u64, BundleError>>,
) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(DEPTH);
    let task = tokio::task::spawn_blocking(move || {
        let subject = format!("entry {stored}");
        let mut guard = bundle.lock().unwrap_or_else(|p| p.into_inner());
        let mut r = guard.open_payload(&stored)?;
        let mut pending: Option<Bytes> = None;
        let mut total = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match read_full(&mut r, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let err = classify_read_error(&subject, &e);
                    let _ = tx.blocking_send(Err(io::Error::other(err.to_string())));
                    return Err(err);
                }
            };
            if n == 0 {
                break;
            }
            buf.truncate(n);
            total += n as u64;
            if let Some(p) = pending.replace(Bytes::from(buf)) {
                let len = p.len() as u64;
                if tx.blocking_send(Ok(p)).is_err() {
                    // The upload stopped; its own error says why.
                    return Ok(total);
                }
                on_chunk(len);
            }
        }
        // The reader has now checked the digest (it fails the final read otherwise).
        if let Some(p) = pending {
            let len = p.len() as u64;
            if tx.blocking_send(Ok(p)).is_ok() {
                on_chunk(len);
            }
        }
        Ok(total)
    });
    (ChunkReceiver { rx }, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(
        expected: u64,
        chunks: Vec<&'static [u8]>,
        known: Known,
    ) -> (io::Result<Vec<u8>>, PipeState) {
        let (tx, rx) = mpsc::channel(DEPTH);
        let state = Arc::new(Mutex::new(PipeState::default()));
        let mut r = ChannelReader::new(rx, expected, state.clone(), Arc::new(known));
        let t = std::thread::spawn(move || {
            for c in chunks {
                if tx.blocking_send(Ok(Bytes::from_static(c))).is_err() {
                    break;
                }
            }
        });
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).map(|_| out);
        t.join().unwrap();
        let st = state.lock().unwrap().clone();
        (res, st)
    }

    #[test]
    fn counts_hashes_and_refuses_mismatches() {
        let (r, st) = pipe(6, vec![b"abc", b"def"], Known::new());
        assert_eq!(r.unwrap(), b"abcdef");
        assert_eq!(
            st.digest.as_deref(),
            Some("bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721")
        );
        let (r, st) = pipe(4, vec![b"abc", b"def"], Known::new());
        assert!(r.is_err() && st.too_long && !st.too_short);
        let (r, st) = pipe(7, vec![b"abc", b"def"], Known::new());
        assert!(r.is_err() && st.too_short && st.received == 6);
        let mut known = Known::new();
        known.insert(
            "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721".into(),
            ("m/1/a".into(), 6),
        );
        let (r, st) = pipe(6, vec![b"abc", b"def"], known);
        assert!(r.is_err());
        assert_eq!(st.duplicate_of.as_deref(), Some("m/1/a"));
    }
}
