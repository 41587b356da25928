//! Reading a bundle back while it is written (spec §11). A writer that hashed every byte as it
//! wrote and then read the whole file back to verify it would hash everything twice; on a
//! machine with two cores that halves its speed. Instead a second thread follows the writer
//! through the temporary file: as each entry's data reaches the file it is read back from there
//! and passed through SHA-256 and CRC-32. When the writer is done, the final verification
//! (§10.1 steps 2–6) reads the structure, the tag files and the inventory as usual, and skips
//! the data of every payload entry this thread already read at the same place with the digest
//! and CRC the manifest and central directory give — the bytes on disk were checked, once.
//!
//! The writer's side is two small hooks: [`TrackedFile`], the layer under the writer's buffer
//! that tells how far the file has been written, and [`Follower::observer`], which the zip
//! writer calls as entries start and end (see
//! [`super::container::write::ZipWriter::set_observer`]).

use super::container::write::EntryEvent;
use super::container::{open_entry, Method, ZipEntry};
use super::digest::BUF;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// What the read-back found for one entry: where its data lies in the file and what those
/// bytes hash to. No name: the final verification matches an entry by where its data lies
/// (§11), and a name per entry was most of what the read-back held (issue #15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedEntry {
    /// Offset of the entry's data in the file.
    pub data_start: u64,
    /// Bytes stored.
    pub compressed: u64,
    /// Bytes of data.
    pub size: u64,
    /// CRC-32 of the data read back.
    pub crc: u32,
    /// Compression method code (0 or 8).
    pub method: u16,
    /// SHA-256 of the data read back.
    pub sha256: [u8; 32],
}

/// Entries read back, in the order written, which is the order of their data in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked(Vec<CheckedEntry>);

impl Checked {
    /// Nothing read back.
    pub fn new() -> Self {
        Checked(Vec::new())
    }

    /// The entry whose data starts at `data_start`, if it was read back.
    pub fn at(&self, data_start: u64) -> Option<&CheckedEntry> {
        self.0
            .binary_search_by_key(&data_start, |c| c.data_start)
            .ok()
            .map(|i| &self.0[i])
    }

    /// Number of entries read back.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no entry was read back.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds an entry whose data lies after every one added so far (a writer writes forward).
    fn push(&mut self, c: CheckedEntry) {
        debug_assert!(self.0.last().is_none_or(|l| l.data_start < c.data_start));
        self.0.push(c);
    }
}

impl<const N: usize> From<[CheckedEntry; N]> for Checked {
    /// Entries in any order (for tests).
    fn from(entries: [CheckedEntry; N]) -> Self {
        let mut v = entries.to_vec();
        v.sort_by_key(|c| c.data_start);
        Checked(v)
    }
}

/// How far the file has been written, shared by the writer and the follower.
#[derive(Default)]
struct Progress {
    state: Mutex<(u64, bool)>,
    moved: Condvar,
}

impl Progress {
    fn advance(&self, n: u64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 += n;
        self.moved.notify_all();
    }

    fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 = true;
        self.moved.notify_all();
    }

    /// Waits until the file holds more than `pos` bytes; returns how many it holds, or `None`
    /// when the writer stopped before that.
    fn wait_past(&self, pos: u64) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if s.0 > pos {
                return Some(s.0);
            }
            if s.1 {
                return None;
            }
            s = self.moved.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The file under the writer's buffer: counts the bytes the file accepted, so that the
/// follower never reads past them.
pub struct TrackedFile<W: Write> {
    inner: W,
    progress: Arc<Progress>,
    written: u64,
    /// Tells the writeback thread each time [`WRITEBACK`] more bytes were written.
    marks: Sender<()>,
}

impl<W: Write> Write for TrackedFile<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        let before = self.written / WRITEBACK;
        self.written += n as u64;
        if self.written / WRITEBACK != before {
            let _ = self.marks.send(());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes written between two syncs of the writeback thread.
const WRITEBACK: u64 = 32 << 20;

/// Syncs the file each time the writer says [`WRITEBACK`] more bytes were written, until the
/// writer is gone. The file is synced before it is renamed (§11); without this, a machine with
/// plenty of memory keeps the whole bundle dirty in the page cache and that last sync writes
/// all of it at once, after the last byte arrived: for a bundle filled from the network, a
/// second pass at disk speed. Here the disk writes while the writer goes on, and the last sync
/// finds little left. The thread wakes once per mark, not per write: on two cores a thread
/// woken at every write took a tenth off the writer's speed. Errors are left to that last
/// sync, which reports them.
fn write_back(file: File, marks: Receiver<()>) {
    while marks.recv().is_ok() {
        // Marks that came while the last sync ran are covered by this one.
        while marks.try_recv().is_ok() {}
        if file.sync_data().is_err() {
            return;
        }
    }
}

/// The thread that reads entries back as they are written.
pub struct Follower {
    events: Option<Sender<EntryEvent>>,
    progress: Arc<Progress>,
    thread: Option<JoinHandle<io::Result<Checked>>>,
}

impl Follower {
    /// Starts following the file at `path`, which the writer fills through the
    /// [`TrackedFile`] this returns around `file`.
    pub fn start<W: Write + std::os::fd::AsFd>(
        path: &Path,
        file: W,
    ) -> io::Result<(Follower, TrackedFile<W>)> {
        let reader = File::open(path)?;
        let progress = Arc::new(Progress::default());
        let (tx, rx) = channel();
        let p = Arc::clone(&progress);
        let thread = std::thread::Builder::new()
            .name("dbxport-readback".into())
            .spawn(move || follow(reader, &p, rx))?;
        let syncing = File::from(file.as_fd().try_clone_to_owned()?);
        let (marks, marked) = channel();
        std::thread::Builder::new()
            .name("dbxport-writeback".into())
            .spawn(move || write_back(syncing, marked))?;
        let tracked = TrackedFile {
            inner: file,
            progress: Arc::clone(&progress),
            written: 0,
            marks,
        };
        Ok((
            Follower {
                events: Some(tx),
                progress,
                thread: Some(thread),
            },
            tracked,
        ))
    }

    /// The callback the zip writer reports entries to.
    pub fn observer(&self) -> Box<dyn FnMut(EntryEvent) + Send> {
        let tx = self.events.clone().expect("the follower is running");
        // A follower that stopped on a read error is reported by `finish`.
        Box::new(move |e| {
            let _ = tx.send(e);
        })
    }

    /// Waits for the follower once the writer has flushed everything, and returns what it
    /// read back. An error means the file could not be read back at all.
    pub fn finish(mut self) -> io::Result<Checked> {
        self.events.take();
        self.progress.close();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the read-back thread panicked")),
            None => Ok(Checked::new()),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // A writer that failed must not leave the follower waiting for bytes.
        self.events.take();
        self.progress.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads the file at positions the writer has passed, blocking until it has.
struct FollowReader<'a> {
    file: &'a File,
    pos: u64,
    progress: &'a Progress,
}

impl Read for FollowReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(written) = self.progress.wait_past(self.pos) else {
            return Ok(0);
        };
        let want = buf
            .len()
            .min((written - self.pos).min(usize::MAX as u64) as usize);
        let n = read_at(self.file, &mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FollowReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match to {
            SeekFrom::Start(p) => self.pos = p,
            _ => return Err(io::Error::other("the read-back only seeks to a position")),
        }
        Ok(self.pos)
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, pos)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, pos)
}

/// The follower's loop: one entry at a time, in the order written.
fn follow(file: File, progress: &Progress, events: Receiver<EntryEvent>) -> io::Result<Checked> {
    let mut checked = Checked::new();
    let mut started: Option<(String, u64, Method, u64)> = None;
    // A stored entry is read while it is written: its compressed size is its size.
    let mut early: Option<(u32, [u8; 32])> = None;
    for event in events {
        match event {
            EntryEvent::Started {
                name,
                data_start,
                method,
                size,
            } => {
                early = None;
                if method == Method::Stored {
                    let mut r = FollowReader {
                        file: &file,
                        pos: data_start,
                        progress,
                    };
                    match hash_stored(&mut r, size)? {
                        Some(sums) => early = Some(sums),
                        // The writer stopped inside this entry.
                        None => return Ok(checked),
                    }
                }
                started = Some((name, data_start, method, size));
            }
            EntryEvent::Finished {
                name,
                crc,
                compressed,
                size,
            } => {
                let Some((n, data_start, method, declared)) = started.take() else {
                    continue;
                };
                if n != name || declared != size || (method == Method::Stored && compressed != size)
                {
                    continue;
                }
                let sums = match early.take() {
                    Some(s) => Some(s),
                    None => {
                        let entry =
                            ZipEntry::data_at(data_start, method.code(), crc, compressed, size);
                        let mut r = FollowReader {
                            file: &file,
                            pos: data_start,
                            progress,
                        };
                        inflate_and_hash(&mut r, &entry)
                    }
                };
                // An entry whose bytes did not read back as written is left out: the final
                // verification reads it again and reports what is wrong, with its code.
                if let Some((got_crc, sha256)) = sums {
                    checked.push(CheckedEntry {
                        data_start,
                        compressed,
                        size,
                        crc: got_crc,
                        method: method.code(),
                        sha256,
                    });
                }
            }
        }
    }
    Ok(checked)
}

/// CRC-32 and SHA-256 of `size` stored bytes; `None` when the file ends first.
fn hash_stored(r: &mut FollowReader<'_>, size: u64) -> io::Result<Option<(u32, [u8; 32])>> {
    let mut sha = Sha256::new();
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; BUF.min(size.max(1) as usize)];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(None);
        }
        sha.update(&buf[..n]);
        crc.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(Some((crc.finalize(), sha.finalize().into())))
}

/// Inflates a finished deflated entry from the file (checking its size and CRC-32) and hashes
/// the result; `None` when the data does not read back as the entry says.
fn inflate_and_hash(r: &mut FollowReader<'_>, e: &ZipEntry) -> Option<(u32, [u8; 32])> {
    let mut reader = open_entry(r, e).ok()?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; BUF];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sha.update(&buf[..n]),
            Err(_) => return None,
        }
    }
    Some((e.crc, sha.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::container::{read_index, ZipWriter};
    use std::io::BufWriter;

    /// Writes two entries — one stored, one deflated — through a follower and returns what it
    /// read back, with the file.
    fn follow_two(corrupt_at: Option<u64>) -> (Checked, tempfile::NamedTempFile) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        // xorshift: bytes no deflater can shrink, so the entry is stored.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let text = "a line of text\n".repeat(20_000).into_bytes();
        let (follower, tracked) = Follower::start(tmp.path(), tmp.as_file()).unwrap();
        {
            // The layer under the buffer changes one byte on its way to the file, as a bad
            // disk or driver would; the writer above it never knows.
            let mut flipped = 0u64;
            let corrupting = Corrupting {
                inner: tracked,
                at: corrupt_at,
                pos: &mut flipped,
            };
            let mut buf = BufWriter::new(corrupting);
            let mut zip = ZipWriter::new(&mut buf as &mut dyn Write);
            zip.set_observer(follower.observer());
            zip.add_bytes("b/noise.bin", &noise).unwrap();
            zip.add_bytes("b/text.txt", &text).unwrap();
            zip.finish().unwrap();
            buf.flush().unwrap();
        }
        (follower.finish().unwrap(), tmp)
    }

    struct Corrupting<'a, W: Write> {
        inner: W,
        at: Option<u64>,
        pos: &'a mut u64,
    }

    impl<W: Write> Write for Corrupting<'_, W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut b = buf.to_vec();
            if let Some(at) = self.at {
                if at >= *self.pos && at < *self.pos + b.len() as u64 {
                    b[(at - *self.pos) as usize] ^= 0x20;
                }
            }
            let n = self.inner.write(&b)?;
            *self.pos += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn every_entry_is_read_back_from_the_file_as_written() {
        let (checked, tmp) = follow_two(None);
        let index = read_index(&mut File::open(tmp.path()).unwrap()).unwrap();
        assert!(index.problems.is_empty(), "{:?}", index.problems);
        assert_eq!(checked.len(), 2);
        for e in &index.entries {
            let name = index.name(e);
            let c = checked.at(e.data_start().unwrap()).expect(name);
            assert_eq!(
                (c.compressed, c.size, c.method, c.crc),
                (e.compressed, e.size, e.method, e.crc)
            );
            let mut f = File::open(tmp.path()).unwrap();
            let mut r = open_entry(&mut f, e).unwrap();
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            assert_eq!(
                hex::encode(c.sha256),
                crate::bundle::digest::sha256_hex(&data),
                "{name}"
            );
        }
        // Written in this order: b/noise.bin, then b/text.txt.
        assert_eq!(checked.0[0].method, 0);
        assert_eq!(checked.0[1].method, 8);
    }

    /// A byte that changed between the writer and the disk shows in what was read back: the
    /// stored entry's digest and CRC are those of the bytes on disk, not of what was written.
    #[test]
    fn a_byte_changed_on_its_way_to_the_disk_is_seen() {
        let (good, _) = follow_two(None);
        // b/noise.bin is the first entry written, b/text.txt the second.
        let (noise, text) = (good.0[0], good.0[1]);
        let (bad, _) = follow_two(Some(noise.data_start + 1000));
        let b = bad.at(noise.data_start).unwrap();
        assert_ne!(noise.sha256, b.sha256);
        assert_ne!(noise.crc, b.crc);
        // In a deflated entry the damaged stream does not inflate to its CRC: not vouched for.
        let (bad, _) = follow_two(Some(text.data_start + 10));
        assert!(bad.at(text.data_start).is_none_or(|b| *b != text));
    }

    /// A writer that stops in the middle of an entry does not leave the follower waiting.
    #[test]
    fn a_writer_that_stops_does_not_hang_the_follower() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let (follower, tracked) = Follower::start(tmp.path(), tmp.as_file()).unwrap();
        let mut zip = ZipWriter::new(tracked);
        zip.set_observer(follower.observer());
        zip.start_file("b/x.bin", 1 << 20, Method::Stored).unwrap();
        zip.write_data(&[1; 1000]).unwrap();
        drop(zip);
        assert!(follower.finish().unwrap().is_empty());
    }
}
