//! The zip writer of spec §3: streaming (it never seeks, so it writes to files, pipes and age
//! streams alike), deterministic (fixed times, modes and field values; entries must arrive in
//! name order), zip64 where §3.5 requires it, constant memory.

use super::deflate::{BoundedDeflater, Method};
use std::io::{self, Write};

/// Entries whose uncompressed size reaches this are zip64 entries (§3.5).
pub const ZIP64_SIZE_THRESHOLD: u64 = 0xFF00_0000;
const U32_MAX: u64 = 0xFFFF_FFFF;
/// DOS date 1980-01-01.
pub const DOS_DATE: u16 = 0x0021;
/// DOS time 00:00:00.
pub const DOS_TIME: u16 = 0x0000;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
const FILE_MODE: u32 = 0o100644;
const DIR_MODE: u32 = 0o040755;

/// An entry's central-directory record, until the directory is written: its name is in the
/// writer's arena ([`ZipWriter`]'s `names`), so an entry costs 48 bytes, not a string of its
/// own besides (issue #15).
struct Central {
    csize: u64,
    size: u64,
    offset: u64,
    /// Where the name starts in the arena.
    name_at: usize,
    crc: u32,
    method: u16,
    name_len: u16,
    dir: bool,
    zip64: bool,
}

struct Open {
    /// Where the name starts in the arena.
    name_at: usize,
    name_len: u16,
    method: Method,
    declared: u64,
    offset: u64,
    zip64: bool,
    crc: crc32fast::Hasher,
    written: u64,
    csize: u64,
    deflater: Option<BoundedDeflater>,
    buf: Vec<u8>,
}

/// What a finished file entry looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySummary {
    /// CRC-32 of the data.
    pub crc: u32,
    /// Bytes stored in the archive.
    pub compressed: u64,
    /// Bytes of data.
    pub size: u64,
    /// The method used.
    pub method: Method,
}

/// A file entry starting or ending, as [`ZipWriter::set_observer`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryEvent {
    /// The local header is written; the data starts at `data_start`.
    Started {
        /// Full entry name.
        name: String,
        /// Offset of the data.
        data_start: u64,
        /// How the data is stored.
        method: Method,
        /// Bytes of data declared.
        size: u64,
    },
    /// The data and its descriptor are written.
    Finished {
        /// Full entry name.
        name: String,
        /// CRC-32 of the data.
        crc: u32,
        /// Bytes stored.
        compressed: u64,
        /// Bytes of data.
        size: u64,
    },
}

/// A streaming, deterministic zip writer.
pub struct ZipWriter<W: Write> {
    out: W,
    pos: u64,
    entries: Vec<Central>,
    /// Every entry's name, one after another, in the order they were started; the last one
    /// is the name the next must sort after (§3.6).
    names: String,
    /// Where the last name starts in `names`.
    last_name: Option<usize>,
    open: Option<Open>,
    force_zip64: bool,
    observer: Option<Box<dyn FnMut(EntryEvent) + Send>>,
}

fn bad_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

impl<W: Write> ZipWriter<W> {
    /// A writer appending to `out`, which must be empty.
    pub fn new(out: W) -> Self {
        ZipWriter {
            out,
            pos: 0,
            entries: Vec::new(),
            names: String::new(),
            last_name: None,
            open: None,
            force_zip64: false,
            observer: None,
        }
    }

    /// Tells `observer` where each file entry's data lies as entries start and end, so that
    /// a reader can follow the output (see [`crate::bundle::readback`]).
    pub fn set_observer(&mut self, observer: Box<dyn FnMut(EntryEvent) + Send>) {
        self.observer = Some(observer);
    }

    fn notify(&mut self, event: impl FnOnce() -> EntryEvent) {
        if let Some(o) = self.observer.as_mut() {
            o(event());
        }
    }

    /// Makes every file entry a zip64 entry. Only for tests of the zip64 encoding on small data;
    /// bundles written this way are valid zips but not canonical (§3.5).
    #[doc(hidden)]
    pub fn force_zip64_for_tests(&mut self) {
        self.force_zip64 = true;
    }

    /// Makes room for `entries` more entries whose names take `name_bytes` together, when the
    /// caller knows them: what the writer keeps of each entry until the central directory is
    /// written then grows once, not by doubling (which leaves the heap holding every smaller
    /// copy: issue #15).
    pub fn reserve(&mut self, entries: usize, name_bytes: usize) {
        self.entries.reserve_exact(entries);
        self.names.reserve_exact(name_bytes);
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Checks that `name` may come next and keeps it in the arena; returns where it starts.
    fn check_order(&mut self, name: &str) -> io::Result<usize> {
        if self.open.is_some() {
            return Err(bad_input("zip writer: previous file entry is not finished"));
        }
        if name.is_empty() || name.len() > u16::MAX as usize {
            return Err(bad_input(format!("zip writer: bad entry name {name:?}")));
        }
        if let Some(at) = self.last_name {
            let last = &self.names[at..];
            if name.as_bytes() <= last.as_bytes() {
                return Err(bad_input(format!(
                    "zip writer: entry {name:?} is out of order after {last:?}"
                )));
            }
        }
        let at = self.names.len();
        self.names.push_str(name);
        self.last_name = Some(at);
        Ok(at)
    }

    /// The name kept at `name_at` in the arena.
    fn name_of(&self, name_at: usize, name_len: u16) -> &str {
        &self.names[name_at..name_at + name_len as usize]
    }

    /// Adds a directory entry (`name` ends in `/`).
    pub fn add_dir(&mut self, name: &str) -> io::Result<()> {
        if !name.ends_with('/') {
            return Err(bad_input(format!(
                "zip writer: directory {name:?} lacks a `/`"
            )));
        }
        let name_at = self.check_order(name)?;
        let offset = self.pos;
        let zip64 = offset >= U32_MAX;
        let mut h = Vec::with_capacity(30 + name.len());
        local_header(&mut h, name, 0, 0, zip64, 0, 0);
        self.put(&h)?;
        self.entries.push(Central {
            csize: 0,
            size: 0,
            offset,
            name_at,
            crc: 0,
            method: 0,
            name_len: name.len() as u16,
            dir: true,
            zip64,
        });
        Ok(())
    }

    /// Starts a file entry of exactly `size` bytes, compressed with `method`.
    pub fn start_file(&mut self, name: &str, size: u64, method: Method) -> io::Result<()> {
        if name.ends_with('/') {
            return Err(bad_input(format!("zip writer: file {name:?} ends in `/`")));
        }
        let name_at = self.check_order(name)?;
        let offset = self.pos;
        let zip64 = self.force_zip64 || size >= ZIP64_SIZE_THRESHOLD || offset >= U32_MAX;
        let mut h = Vec::with_capacity(50 + name.len());
        let sizes = if zip64 { U32_MAX as u32 } else { 0 };
        local_header(
            &mut h,
            name,
            FLAG_DESCRIPTOR,
            method.code(),
            zip64,
            sizes,
            sizes,
        );
        self.put(&h)?;
        let data_start = self.pos;
        self.notify(|| EntryEvent::Started {
            name: name.into(),
            data_start,
            method,
            size,
        });
        self.open = Some(Open {
            name_at,
            name_len: name.len() as u16,
            method,
            declared: size,
            offset,
            zip64,
            crc: crc32fast::Hasher::new(),
            written: 0,
            csize: 0,
            deflater: (method == Method::Deflated).then(BoundedDeflater::new),
            buf: Vec::new(),
        });
        Ok(())
    }

    /// Writes data of the open file entry.
    pub fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Err(bad_input("zip writer: no file entry is open"));
        };
        if open.written + data.len() as u64 > open.declared {
            return Err(bad_input(format!(
                "zip writer: {} is longer than its declared {} bytes",
                &self.names[open.name_at..open.name_at + open.name_len as usize],
                open.declared
            )));
        }
        open.crc.update(data);
        open.written += data.len() as u64;
        match open.deflater.as_mut() {
            None => {
                open.csize += data.len() as u64;
                self.out.write_all(data)?;
                self.pos += data.len() as u64;
            }
            Some(d) => {
                let mut buf = std::mem::take(&mut open.buf);
                buf.clear();
                d.write(data, &mut buf)?;
                open.csize += buf.len() as u64;
                self.out.write_all(&buf)?;
                self.pos += buf.len() as u64;
                if let Some(o) = self.open.as_mut() {
                    o.buf = buf;
                }
            }
        }
        Ok(())
    }

    /// Ends the open file entry, writing its data descriptor.
    pub fn finish_file(&mut self) -> io::Result<EntrySummary> {
        let Some(mut open) = self.open.take() else {
            return Err(bad_input("zip writer: no file entry is open"));
        };
        if open.written != open.declared {
            return Err(bad_input(format!(
                "zip writer: {} has {} bytes, declared {}",
                self.name_of(open.name_at, open.name_len),
                open.written,
                open.declared
            )));
        }
        if let Some(d) = open.deflater.as_mut() {
            let mut buf = Vec::new();
            d.finish(&mut buf)?;
            open.csize += buf.len() as u64;
            self.put(&buf)?;
        }
        if !open.zip64 && open.csize >= U32_MAX {
            return Err(io::Error::other(format!(
                "zip writer: {} compressed to {} bytes, beyond a non-zip64 entry",
                self.name_of(open.name_at, open.name_len),
                open.csize
            )));
        }
        let crc = open.crc.clone().finalize();
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        if open.zip64 {
            d.extend_from_slice(&open.csize.to_le_bytes());
            d.extend_from_slice(&open.written.to_le_bytes());
        } else {
            d.extend_from_slice(&(open.csize as u32).to_le_bytes());
            d.extend_from_slice(&(open.written as u32).to_le_bytes());
        }
        self.put(&d)?;
        if let Some(o) = self.observer.as_mut() {
            let at = open.name_at;
            o(EntryEvent::Finished {
                name: self.names[at..at + open.name_len as usize].to_string(),
                crc,
                compressed: open.csize,
                size: open.written,
            });
        }
        self.entries.push(Central {
            csize: open.csize,
            size: open.written,
            offset: open.offset,
            name_at: open.name_at,
            crc,
            method: open.method.code(),
            name_len: open.name_len,
            dir: false,
            zip64: open.zip64,
        });
        Ok(EntrySummary {
            crc,
            compressed: open.csize,
            size: open.written,
            method: open.method,
        })
    }

    /// Adds a whole file entry from memory, choosing the method from its content.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> io::Result<EntrySummary> {
        let method = super::deflate::choose_method(&data[..data.len().min(super::deflate::CHUNK)]);
        self.start_file(name, data.len() as u64, method)?;
        self.write_data(data)?;
        self.finish_file()
    }

    /// Writes the central directory and end records; returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.finish_counted().map(|(w, _)| w)
    }

    /// [`ZipWriter::finish`], also returning the zip's total size in bytes.
    pub fn finish_counted(mut self) -> io::Result<(W, u64)> {
        if self.open.is_some() {
            return Err(bad_input("zip writer: a file entry is still open"));
        }
        let cd_start = self.pos;
        let mut cd = Vec::with_capacity(64 * 1024);
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            central_record(&mut cd, e, self.name_of(e.name_at, e.name_len));
            if cd.len() >= 60 * 1024 {
                self.put(&cd)?;
                cd.clear();
            }
        }
        self.put(&cd)?;
        let cd_size = self.pos - cd_start;
        let count = entries.len() as u64;
        let need64 = count >= 0xFFFF || cd_start >= U32_MAX || cd_size >= U32_MAX;
        let mut end = Vec::with_capacity(98);
        if need64 {
            let z64_pos = self.pos;
            end.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            end.extend_from_slice(&44u64.to_le_bytes());
            end.extend_from_slice(&(0x0300u16 | 45).to_le_bytes());
            end.extend_from_slice(&45u16.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&cd_size.to_le_bytes());
            end.extend_from_slice(&cd_start.to_le_bytes());
            end.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&z64_pos.to_le_bytes());
            end.extend_from_slice(&1u32.to_le_bytes());
        }
        let c16 = if count >= 0xFFFF {
            0xFFFF
        } else {
            count as u16
        };
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&c16.to_le_bytes());
        end.extend_from_slice(&c16.to_le_bytes());
        end.extend_from_slice(&(cd_size.min(U32_MAX) as u32).to_le_bytes());
        end.extend_from_slice(&(cd_start.min(U32_MAX) as u32).to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        self.put(&end)?;
        self.out.flush()?;
        Ok((self.out, self.pos))
    }
}

fn version(zip64: bool) -> u16 {
    if zip64 {
        45
    } else {
        20
    }
}

fn local_header(
    h: &mut Vec<u8>,
    name: &str,
    extra_flags: u16,
    method: u16,
    zip64: bool,
    csize: u32,
    size: u32,
) {
    let extra_len: u16 = if zip64 && extra_flags & FLAG_DESCRIPTOR != 0 {
        20
    } else {
        0
    };
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&version(zip64 && extra_len > 0).to_le_bytes());
    h.extend_from_slice(&(FLAG_UTF8 | extra_flags).to_le_bytes());
    h.extend_from_slice(&method.to_le_bytes());
    h.extend_from_slice(&DOS_TIME.to_le_bytes());
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&csize.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&extra_len.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    if extra_len > 0 {
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
    }
}

fn central_record(cd: &mut Vec<u8>, e: &Central, name: &str) {
    let big_offset = e.offset >= U32_MAX;
    // A file entry is zip64 as decided when it started; a directory only needs zip64 for its
    // offset.
    let sizes64 = e.zip64 && !e.dir;
    let mut extra = Vec::new();
    if sizes64 {
        extra.extend_from_slice(&e.size.to_le_bytes());
        extra.extend_from_slice(&e.csize.to_le_bytes());
    }
    if big_offset {
        extra.extend_from_slice(&e.offset.to_le_bytes());
    }
    let v = version(sizes64 || big_offset);
    cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    cd.extend_from_slice(&(0x0300u16 | v).to_le_bytes());
    cd.extend_from_slice(&v.to_le_bytes());
    let flags = if e.dir {
        FLAG_UTF8
    } else {
        FLAG_UTF8 | FLAG_DESCRIPTOR
    };
    cd.extend_from_slice(&flags.to_le_bytes());
    cd.extend_from_slice(&e.method.to_le_bytes());
    cd.extend_from_slice(&DOS_TIME.to_le_bytes());
    cd.extend_from_slice(&DOS_DATE.to_le_bytes());
    cd.extend_from_slice(&e.crc.to_le_bytes());
    let (cs, us) = if sizes64 {
        (U32_MAX as u32, U32_MAX as u32)
    } else {
        (e.csize as u32, e.size as u32)
    };
    cd.extend_from_slice(&cs.to_le_bytes());
    cd.extend_from_slice(&us.to_le_bytes());
    cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
    let extra_len = if extra.is_empty() { 0 } else { extra.len() + 4 };
    cd.extend_from_slice(&(extra_len as u16).to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    cd.extend_from_slice(&0u16.to_le_bytes());
    let ext_attr = if e.dir {
        (DIR_MODE << 16) | 0x10
    } else {
        FILE_MODE << 16
    };
    cd.extend_from_slice(&ext_attr.to_le_bytes());
    let off = if big_offset {
        U32_MAX as u32
    } else {
        e.offset as u32
    };
    cd.extend_from_slice(&off.to_le_bytes());
    cd.extend_from_slice(name.as_bytes());
    if !extra.is_empty() {
        cd.extend_from_slice(&1u16.to_le_bytes());
        cd.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        cd.extend_from_slice(&extra);
    }
}
