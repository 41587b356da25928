//! The strict zip reader of spec §3 and §10: parses the end records and central directory,
//! checks every structural rule before any entry's data is read, and reads entry data through
//! a reader that never yields more than the declared size and checks CRC-32 at the end.
//!
//! It accepts any zip within the profile (with or without data descriptors, any timestamps),
//! not only what dbxport writes.

use super::deflate::ratio_ok;
use crate::bundle::error::{BundleError, ErrorCode, Result};
use crate::bundle::names::fold_key;
use flate2::{Decompress, FlushDecompress, Status};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

const U32_MAX: u64 = 0xFFFF_FFFF;
/// The largest central directory accepted, in bytes.
const MAX_CD: u64 = 1 << 30;

/// One entry, as the central directory and its local header describe it. Its name is kept in
/// the index's arena ([`ZipIndex::name`]), and the fields are laid out without padding: an
/// entry takes 56 bytes besides its name, which was 88 and a string of its own (issue #15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// Compressed size.
    pub compressed: u64,
    /// Uncompressed (declared) size.
    pub size: u64,
    /// Offset of the local header.
    pub header_offset: u64,
    /// Offset of the data once the local header was read, else 0 (data never starts at 0: a
    /// local header comes first).
    data_start: u64,
    /// Where the name starts in the index's arena.
    name_at: u32,
    /// CRC-32 from the central directory.
    pub crc: u32,
    /// The MS-DOS modification time and date (packed), which the local header must repeat.
    pub dos_stamp: u32,
    /// Length of the name in the arena.
    name_len: u16,
    /// Compression method (0 or 8 when valid).
    pub method: u16,
    /// General-purpose flags.
    pub flags: u16,
    /// Version needed to extract, which the local header must repeat.
    pub version: u16,
    /// True for a directory entry.
    pub dir: bool,
}

impl ZipEntry {
    /// A file entry whose data is known to lie at `data_start` with these sizes, method and
    /// CRC-32, for reading it with [`open_entry`] without an index (a writer reading back what
    /// it wrote). It has no name.
    pub fn data_at(data_start: u64, method: u16, crc: u32, compressed: u64, size: u64) -> Self {
        ZipEntry {
            compressed,
            size,
            header_offset: 0,
            data_start,
            name_at: 0,
            crc,
            dos_stamp: 0,
            name_len: 0,
            method,
            flags: 0,
            version: 0,
            dir: false,
        }
    }

    /// Offset of the data, once the local header was read.
    pub fn data_start(&self) -> Option<u64> {
        (self.data_start != 0).then_some(self.data_start)
    }
}

/// The parsed, checked structure of a zip.
#[derive(Debug, Clone)]
pub struct ZipIndex {
    /// Entries in central-directory order.
    pub entries: Vec<ZipEntry>,
    /// Every entry's name, one after another in central-directory order: one allocation
    /// instead of one per entry, which a bundle's lean inventory shares for its records'
    /// stored paths (issue #15).
    names: Arc<str>,
    /// Structural problems found (each with its code); empty when the zip is within profile.
    pub problems: Vec<BundleError>,
    /// The bag folder name (first component shared by all entries), when there is one.
    pub bag: Option<String>,
}

impl ZipIndex {
    /// The full name of `e`, an entry of this index: UTF-8 (a name that was not is shown with
    /// replacement characters, and refused, E101), `/`-separated; folders end in `/`.
    pub fn name(&self, e: &ZipEntry) -> &str {
        name_in(&self.names, e)
    }

    /// Every entry's name, where [`ZipIndex::name_at`] places them.
    pub fn names(&self) -> &Arc<str> {
        &self.names
    }

    /// Where the name of `e` starts in [`ZipIndex::names`].
    pub fn name_at(&self, e: &ZipEntry) -> usize {
        e.name_at as usize
    }
}

/// The name of `e` in the arena `names`.
fn name_in<'a>(names: &'a str, e: &ZipEntry) -> &'a str {
    let at = e.name_at as usize;
    &names[at..at + e.name_len as usize]
}

fn fatal(detail: impl Into<String>) -> BundleError {
    BundleError::new(ErrorCode::NotAZip, "zip", detail)
}

fn entry_subject(name: &str) -> String {
    format!("entry {name}")
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// Checks an entry name against §3.2; returns what is wrong.
pub fn check_entry_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("control character in name");
    }
    if name.contains('\\') {
        return Err("backslash in name");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err("drive letter");
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    for c in body.split('/') {
        match c {
            "" => return Err("empty path component"),
            "." => return Err("`.` path component"),
            ".." => return Err("`..` path component"),
            _ => {}
        }
    }
    Ok(())
}

/// Parses the zip structure of `r` and checks §3.1–§3.2. Returns `Err` (E100) only when the
/// structure cannot be parsed at all; every other problem is listed in [`ZipIndex::problems`].
pub fn read_index<R: Read + Seek>(r: &mut R) -> Result<ZipIndex> {
    let len = r
        .seek(SeekFrom::End(0))
        .map_err(|e| fatal(format!("cannot read: {e}")))?;
    if len < 22 {
        return Err(fatal("too short to be a zip (truncated?)"));
    }
    let tail_len = len.min(22 + 65535);
    let mut tail = vec![0u8; tail_len as usize];
    r.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| r.read_exact(&mut tail))
        .map_err(|e| fatal(format!("cannot read: {e}")))?;
    // The end record is the last signature whose comment ends exactly at the end of the file.
    let mut eocd_at = None;
    for i in (0..=tail.len() - 22).rev() {
        if u32_at(&tail, i) == 0x0605_4b50 {
            let clen = u16_at(&tail, i + 20) as usize;
            if i + 22 + clen == tail.len() {
                eocd_at = Some(i);
                break;
            }
        }
    }
    let Some(i) = eocd_at else {
        return Err(fatal(
            "no end-of-central-directory record (truncated, or not a zip)",
        ));
    };
    let eocd_pos = len - tail_len + i as u64;
    let e = &tail[i..i + 22];
    let (disk, cd_disk) = (u16_at(e, 4), u16_at(e, 6));
    let (n_disk, n_total) = (u16_at(e, 8) as u64, u16_at(e, 10) as u64);
    let (mut cd_size, mut cd_offset) = (u32_at(e, 12) as u64, u32_at(e, 16) as u64);
    let mut count = n_total;
    if disk != 0 || cd_disk != 0 || n_disk != n_total {
        return Err(fatal("multi-disk archives are not supported"));
    }
    // A zip64 locator, if present, sits right before the end record.
    let mut cd_end = eocd_pos;
    if eocd_pos >= 20 {
        let mut loc = [0u8; 20];
        r.seek(SeekFrom::Start(eocd_pos - 20))
            .and_then(|_| r.read_exact(&mut loc))
            .map_err(|e| fatal(format!("cannot read: {e}")))?;
        if u32_at(&loc, 0) == 0x0706_4b50 {
            if u32_at(&loc, 4) != 0 || u32_at(&loc, 16) != 1 {
                return Err(fatal("multi-disk zip64 archives are not supported"));
            }
            let z_pos = u64_at(&loc, 8);
            if z_pos.checked_add(56).is_none_or(|end| end > eocd_pos - 20) {
                return Err(fatal("zip64 end record is out of place"));
            }
            let mut z = [0u8; 56];
            r.seek(SeekFrom::Start(z_pos))
                .and_then(|_| r.read_exact(&mut z))
                .map_err(|e| fatal(format!("cannot read: {e}")))?;
            if u32_at(&z, 0) != 0x0606_4b50 {
                return Err(fatal("zip64 end record signature is wrong"));
            }
            let rec_len = u64_at(&z, 4);
            if rec_len.checked_add(12 + z_pos) != Some(eocd_pos - 20) {
                return Err(fatal("zip64 end record does not end at its locator"));
            }
            if u32_at(&z, 16) != 0 || u32_at(&z, 20) != 0 || u64_at(&z, 24) != u64_at(&z, 32) {
                return Err(fatal("multi-disk zip64 archives are not supported"));
            }
            count = u64_at(&z, 32);
            cd_size = u64_at(&z, 40);
            cd_offset = u64_at(&z, 48);
            cd_end = z_pos;
        }
    }
    if cd_offset.checked_add(cd_size) != Some(cd_end) {
        return Err(fatal(
            "central directory does not end where the end record says (extra bytes, or truncated)",
        ));
    }
    if cd_size > MAX_CD {
        return Err(fatal("central directory larger than 1 GiB"));
    }
    let mut cd = vec![0u8; cd_size as usize];
    r.seek(SeekFrom::Start(cd_offset))
        .and_then(|_| r.read_exact(&mut cd))
        .map_err(|e| fatal(format!("cannot read the central directory: {e}")))?;

    let mut problems: Vec<BundleError> = Vec::new();
    // Sized once from the end record, within what the directory can hold (a record takes at
    // least 46 bytes): growing by doubling left up to half of the index spare (issue #15).
    let records = count.min(cd.len() as u64 / 46) as usize;
    let mut entries: Vec<ZipEntry> = Vec::with_capacity(records);
    // The names take at most what the records' fixed parts do not: sized once, too.
    let mut names = String::with_capacity(cd.len().saturating_sub(46 * records));
    let mut p = 0usize;
    while p < cd.len() {
        if cd.len() - p < 46 || u32_at(&cd, p) != 0x0201_4b50 {
            return Err(fatal(format!(
                "central directory record {} is malformed",
                entries.len()
            )));
        }
        let h = &cd[p..p + 46];
        let made_by = u16_at(h, 4);
        let flags = u16_at(h, 8);
        let method = u16_at(h, 10);
        let crc = u32_at(h, 16);
        let mut compressed = u32_at(h, 20) as u64;
        let mut size = u32_at(h, 24) as u64;
        let (nlen, xlen, clen) = (
            u16_at(h, 28) as usize,
            u16_at(h, 30) as usize,
            u16_at(h, 32) as usize,
        );
        let disk_start = u16_at(h, 34);
        let ext_attr = u32_at(h, 38);
        let mut header_offset = u32_at(h, 42) as u64;
        let var_end = p + 46 + nlen + xlen + clen;
        if var_end > cd.len() {
            return Err(fatal(format!(
                "central directory record {} overruns the directory",
                entries.len()
            )));
        }
        let raw_name = &cd[p + 46..p + 46 + nlen];
        let extra = &cd[p + 46 + nlen..p + 46 + nlen + xlen];
        p = var_end;

        // zip64 extra: the fields whose 32-bit value is saturated, in order.
        let need = [
            size == U32_MAX,
            compressed == U32_MAX,
            header_offset == U32_MAX,
        ];
        if need.iter().any(|b| *b) || disk_start == 0xFFFF {
            let Some(z) = find_extra(extra, 0x0001) else {
                return Err(fatal(format!(
                    "central directory record {} needs a zip64 extra field but has none",
                    entries.len()
                )));
            };
            let mut q = 0usize;
            let mut take = |flag: bool, v: &mut u64| -> Result<()> {
                if flag {
                    if q + 8 > z.len() {
                        return Err(fatal("zip64 extra field is too short"));
                    }
                    *v = u64_at(z, q);
                    q += 8;
                }
                Ok(())
            };
            take(need[0], &mut size)?;
            take(need[1], &mut compressed)?;
            take(need[2], &mut header_offset)?;
        }
        if disk_start != 0 {
            return Err(fatal("multi-disk archives are not supported"));
        }
        let name = match std::str::from_utf8(raw_name) {
            Ok(n) => std::borrow::Cow::Borrowed(n),
            Err(_) => {
                let shown = String::from_utf8_lossy(raw_name);
                problems.push(BundleError::new(
                    ErrorCode::UnsafeName,
                    entry_subject(&shown),
                    "name is not UTF-8",
                ));
                shown
            }
        };
        let subject = entry_subject(&name);
        if let Err(why) = check_entry_name(&name) {
            problems.push(BundleError::new(ErrorCode::UnsafeName, &subject, why));
        }
        let dir = name.ends_with('/');
        if flags & 0x0001 != 0 || flags & 0x0040 != 0 || method == 99 {
            problems.push(BundleError::new(
                ErrorCode::Encrypted,
                &subject,
                "entry is encrypted",
            ));
        } else if method != 0 && method != 8 {
            problems.push(BundleError::new(
                ErrorCode::UnsupportedMethod,
                &subject,
                format!("compression method {method} (only 0 Stored and 8 Deflate are allowed)"),
            ));
        }
        if made_by >> 8 == 3 {
            let mode = ext_attr >> 16;
            let kind = mode & 0o170000;
            let what = match kind {
                0 | 0o100000 | 0o040000 => None,
                0o120000 => Some("a symbolic link"),
                0o010000 => Some("a FIFO"),
                0o020000 | 0o060000 => Some("a device"),
                0o140000 => Some("a socket"),
                _ => Some("of an unknown file type"),
            };
            if let Some(w) = what {
                problems.push(BundleError::new(
                    ErrorCode::NotRegular,
                    &subject,
                    format!("entry is {w}"),
                ));
            } else if kind == 0o040000 && !dir {
                problems.push(BundleError::new(
                    ErrorCode::NotRegular,
                    &subject,
                    "directory mode on an entry without a trailing `/`",
                ));
            }
        }
        if dir && (size != 0 || compressed != 0) {
            problems.push(BundleError::new(
                ErrorCode::DirectoryWithData,
                &subject,
                format!("directory entry holds {size} bytes"),
            ));
        }
        if method == 0 && size != compressed {
            problems.push(BundleError::new(
                ErrorCode::SizeExceeded,
                &subject,
                format!("stored entry declares {size} bytes but holds {compressed}"),
            ));
        }
        if method == 8 && !ratio_ok(size, compressed) {
            problems.push(BundleError::new(
                ErrorCode::RatioExceeded,
                &subject,
                format!(
                    "declares {size} bytes from {compressed} compressed (more than 100:1 plus 1 MiB)"
                ),
            ));
        }
        // A name shown with replacement characters may be longer than its 65,535 raw bytes;
        // the arena holds at most 4 GiB (a central directory holds at most 1 GiB).
        let (Ok(name_len), Ok(name_at)) = (u16::try_from(name.len()), u32::try_from(names.len()))
        else {
            return Err(fatal(format!(
                "central directory record {} has a name that cannot be held",
                entries.len()
            )));
        };
        names.push_str(&name);
        entries.push(ZipEntry {
            compressed,
            size,
            header_offset,
            data_start: 0,
            name_at,
            crc,
            dos_stamp: u32_at(h, 12),
            name_len,
            method,
            flags,
            version: u16_at(h, 6),
            dir,
        });
    }
    // The directory's bytes are all parsed: entries hold what is needed of them.
    drop(cd);
    if entries.len() as u64 != count {
        return Err(fatal(format!(
            "end record counts {count} entries, central directory has {}",
            entries.len()
        )));
    }

    // Names: duplicates, collisions, one bag folder.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut by_key: HashMap<String, &str> = HashMap::new();
    for e in &entries {
        let name = name_in(&names, e);
        if by_name.insert(name, 0).is_some() {
            problems.push(BundleError::new(
                ErrorCode::DuplicateName,
                entry_subject(name),
                "name appears more than once",
            ));
            continue;
        }
        let key = fold_key(name.trim_end_matches('/'));
        if let Some(other) = by_key.insert(key, name) {
            problems.push(BundleError::new(
                ErrorCode::NameCollision,
                entry_subject(name),
                format!("collides with {other} under case folding or normalization"),
            ));
        }
    }
    drop((by_name, by_key));
    let bag = bag_folder(&entries, &names, &mut problems);

    check_local_headers(r, &mut entries, &names, cd_offset, &mut problems)?;
    Ok(ZipIndex {
        entries,
        names: names.into(),
        problems,
        bag,
    })
}

fn bag_folder(
    entries: &[ZipEntry],
    names: &str,
    problems: &mut Vec<BundleError>,
) -> Option<String> {
    let firsts: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|e| name_in(names, e).split('/').next().unwrap_or(""))
        .collect();
    if firsts.len() != 1 {
        problems.push(BundleError::new(
            ErrorCode::NotOneFolder,
            "zip",
            format!(
                "{} top-level names where one bag folder is expected",
                firsts.len()
            ),
        ));
        return None;
    }
    let bag = firsts.into_iter().next().unwrap_or_default().to_string();
    if !crate::bundle::bagit::is_bag_name(&bag) {
        problems.push(BundleError::new(
            ErrorCode::NotOneFolder,
            "zip",
            format!("bag folder name {bag:?} is not allowed"),
        ));
    }
    for e in entries {
        if name_in(names, e) == bag {
            problems.push(BundleError::new(
                ErrorCode::NotOneFolder,
                entry_subject(&bag),
                "a file at the top level, outside the bag folder",
            ));
        }
    }
    Some(bag)
}

fn find_extra(extra: &[u8], id: u16) -> Option<&[u8]> {
    let mut i = 0usize;
    while i + 4 <= extra.len() {
        let tag = u16_at(extra, i);
        let len = u16_at(extra, i + 2) as usize;
        let end = (i + 4 + len).min(extra.len());
        if tag == id {
            return Some(&extra[i + 4..end]);
        }
        i = i + 4 + len;
    }
    None
}

/// Reads every local header in file order; checks agreement with the central directory and
/// that entries tile the space before the central directory (§3.1).
fn check_local_headers<R: Read + Seek>(
    r: &mut R,
    entries: &mut [ZipEntry],
    names: &str,
    cd_offset: u64,
    problems: &mut Vec<BundleError>,
) -> Result<()> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|i| entries[*i].header_offset);
    let mut br = BufReader::with_capacity(256 * 1024, r);
    br.seek(SeekFrom::Start(0))
        .map_err(|e| fatal(format!("cannot read: {e}")))?;
    let mut pos = 0u64;
    let mut expected = 0u64;
    let io = |e: io::Error| fatal(format!("cannot read: {e}"));
    for idx in order {
        let e = &mut entries[idx];
        let name = name_in(names, e);
        let subject = entry_subject(name);
        let overlap = |d: String| BundleError::new(ErrorCode::Overlap, &subject, d);
        if e.header_offset != expected {
            problems.push(overlap(if e.header_offset < expected {
                "overlaps the entry before it".into()
            } else {
                format!(
                    "{} unaccounted bytes before its local header",
                    e.header_offset - expected
                )
            }));
        }
        if e.header_offset
            .checked_add(30)
            .is_none_or(|x| x > cd_offset)
        {
            problems.push(overlap(
                "local header lies outside the entries' area".into(),
            ));
            expected = expected.max(e.header_offset);
            continue;
        }
        seek_to(&mut br, &mut pos, e.header_offset).map_err(io)?;
        let mut h = [0u8; 30];
        br.read_exact(&mut h).map_err(io)?;
        pos += 30;
        if u32_at(&h, 0) != 0x0403_4b50 {
            problems.push(overlap("no local header at its offset".into()));
            expected = expected.max(e.header_offset + 30);
            continue;
        }
        let (nlen, xlen) = (u16_at(&h, 26) as u64, u16_at(&h, 28) as u64);
        let mut var = vec![0u8; (nlen + xlen) as usize];
        br.read_exact(&mut var).map_err(io)?;
        pos += nlen + xlen;
        let lname = &var[..nlen as usize];
        let lextra = &var[nlen as usize..];
        if lname != name.as_bytes() {
            problems.push(overlap(format!(
                "local header names {:?}",
                String::from_utf8_lossy(lname)
            )));
        }
        let lflags = u16_at(&h, 6);
        if lflags != e.flags
            || u16_at(&h, 8) != e.method
            || (u16_at(&h, 4), u32_at(&h, 10)) != (e.version, e.dos_stamp)
        {
            problems.push(overlap(
                "local header flags, method, version or time differ from the central directory"
                    .into(),
            ));
        }
        let local_zip64 = find_extra(lextra, 0x0001);
        let descriptor = lflags & 0x0008 != 0;
        let (lcrc, mut lcs, mut lus) =
            (u32_at(&h, 14), u32_at(&h, 18) as u64, u32_at(&h, 22) as u64);
        if let Some(z) = local_zip64 {
            if lus == U32_MAX && z.len() >= 8 {
                lus = u64_at(z, 0);
            }
            if lcs == U32_MAX && z.len() >= 16 {
                lcs = u64_at(z, 8);
            }
        }
        let zero_fields = lcrc == 0 && lcs == 0 && lus == 0;
        if !(descriptor && zero_fields) && (lcrc != e.crc || lcs != e.compressed || lus != e.size) {
            problems.push(overlap(
                "local header CRC or sizes differ from the central directory".into(),
            ));
        }
        let data_start = e.header_offset + 30 + nlen + xlen;
        let Some(mut end) = data_start.checked_add(e.compressed) else {
            problems.push(overlap("entry data runs past the end of the file".into()));
            continue;
        };
        if end > cd_offset {
            problems.push(overlap("entry data runs into the central directory".into()));
            expected = end;
            continue;
        }
        e.data_start = data_start;
        if descriptor {
            let long = local_zip64.is_some();
            let body = if long { 20 } else { 12 };
            seek_to(&mut br, &mut pos, end).map_err(io)?;
            let mut d = [0u8; 24];
            let avail = (cd_offset - end).min(24) as usize;
            br.read_exact(&mut d[..avail]).map_err(io)?;
            pos += avail as u64;
            let with_sig = avail >= 4 && u32_at(&d, 0) == 0x0807_4b50;
            let off = if with_sig { 4 } else { 0 };
            if avail < off + body {
                problems.push(overlap("data descriptor is missing".into()));
                expected = cd_offset;
                continue;
            }
            let dcrc = u32_at(&d, off);
            let (dcs, dus) = if long {
                (u64_at(&d, off + 4), u64_at(&d, off + 12))
            } else {
                (u32_at(&d, off + 4) as u64, u32_at(&d, off + 8) as u64)
            };
            if dcrc != e.crc || dcs != e.compressed || dus != e.size {
                problems.push(overlap(
                    "data descriptor differs from the central directory".into(),
                ));
            }
            end += (off + body) as u64;
        }
        expected = end;
    }
    if expected != cd_offset {
        problems.push(BundleError::new(
            ErrorCode::Overlap,
            "zip",
            if expected < cd_offset {
                format!(
                    "{} unaccounted bytes before the central directory",
                    cd_offset - expected
                )
            } else {
                "entries run into the central directory".to_string()
            },
        ));
    }
    Ok(())
}

fn seek_to<R: Read + Seek>(br: &mut BufReader<R>, pos: &mut u64, to: u64) -> io::Result<()> {
    if to != *pos {
        let delta = to as i128 - *pos as i128;
        br.seek_relative(delta as i64)?;
        *pos = to;
    }
    Ok(())
}

/// A failure while reading an entry's data, carrying its spec code.
#[derive(Debug)]
pub struct EntryDataError {
    /// E109 or E111.
    pub code: ErrorCode,
    /// What went wrong.
    pub detail: String,
}

impl fmt::Display for EntryDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.detail, self.code.code())
    }
}

impl std::error::Error for EntryDataError {}

fn data_err(code: ErrorCode, detail: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        EntryDataError {
            code,
            detail: detail.into(),
        },
    )
}

/// Maps an error from an [`EntryReader`] to a [`BundleError`] about `subject`.
pub fn classify_read_error(subject: &str, e: &io::Error) -> BundleError {
    if let Some(d) = e.get_ref().and_then(|i| i.downcast_ref::<EntryDataError>()) {
        return BundleError::new(d.code, subject, d.detail.clone());
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return BundleError::new(ErrorCode::CorruptData, subject, "data ends early");
    }
    BundleError::io(subject, e)
}

/// Reads one entry's data: inflates when needed, never yields more than the declared size,
/// and checks size and CRC-32 when the data ends.
pub struct EntryReader<'a, R: Read> {
    src: io::Take<&'a mut R>,
    inflate: Option<Box<Decompress>>,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    src_done: bool,
    stream_end: bool,
    produced: u64,
    size: u64,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    finished: bool,
    defer_crc: bool,
    crc_problem: Option<String>,
}

/// Opens the data of `e` for reading.
pub fn open_entry<'a, R: Read + Seek>(
    r: &'a mut R,
    e: &ZipEntry,
) -> io::Result<EntryReader<'a, R>> {
    let Some(start) = e.data_start() else {
        return Err(data_err(
            ErrorCode::CorruptData,
            "local header could not be read",
        ));
    };
    r.seek(SeekFrom::Start(start))?;
    Ok(EntryReader {
        src: r.take(e.compressed),
        inflate: (e.method == 8).then(|| Box::new(Decompress::new(false))),
        // No larger than the entry's compressed data: most entries are a few KiB, and a
        // 64 KiB buffer allocated and freed for each of them fragments the heap of a command
        // that reads one per object (issue #15).
        inbuf: if e.method == 8 {
            vec![0u8; e.compressed.clamp(1, 64 * 1024) as usize]
        } else {
            Vec::new()
        },
        in_pos: 0,
        in_len: 0,
        src_done: false,
        stream_end: false,
        produced: 0,
        size: e.size,
        crc: crc32fast::Hasher::new(),
        expected_crc: e.crc,
        finished: false,
        defer_crc: false,
        crc_problem: None,
    })
}

impl<R: Read> EntryReader<'_, R> {
    /// Does not fail on a CRC-32 mismatch at the end; [`EntryReader::crc_problem`] reports it
    /// instead, so a caller can report a digest mismatch (the more useful fact) first.
    pub fn defer_crc_check(&mut self) {
        self.defer_crc = true;
    }

    /// The CRC-32 mismatch found at the end of the data, when the check was deferred.
    pub fn crc_problem(&self) -> Option<&str> {
        self.crc_problem.as_deref()
    }

    fn finish(&mut self) -> io::Result<usize> {
        if !self.finished {
            self.finished = true;
            if self.produced != self.size {
                return Err(data_err(
                    ErrorCode::CorruptData,
                    format!(
                        "data ends after {} of {} declared bytes",
                        self.produced, self.size
                    ),
                ));
            }
            let crc = self.crc.clone().finalize();
            if crc != self.expected_crc {
                let detail = format!("CRC-32 is {crc:08x}, expected {:08x}", self.expected_crc);
                if self.defer_crc {
                    self.crc_problem = Some(detail);
                } else {
                    return Err(data_err(ErrorCode::CorruptData, detail));
                }
            }
        }
        Ok(0)
    }
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte beyond the declared size is enough to notice an overrun.
        let room = (self.size - self.produced.min(self.size)).saturating_add(1);
        let cap = buf.len().min(room.min(usize::MAX as u64) as usize);
        let buf = &mut buf[..cap];
        let Some(inf) = self.inflate.as_mut() else {
            let n = self.src.read(buf)?;
            if n == 0 {
                return self.finish();
            }
            self.produced += n as u64;
            if self.produced > self.size {
                return Err(data_err(ErrorCode::SizeExceeded, "more data than declared"));
            }
            self.crc.update(&buf[..n]);
            return Ok(n);
        };
        loop {
            if self.stream_end {
                if self.in_pos < self.in_len || self.src.read(&mut [0u8; 1])? > 0 {
                    return Err(data_err(
                        ErrorCode::CorruptData,
                        "bytes after the end of the deflate stream",
                    ));
                }
                return self.finish();
            }
            if self.in_pos == self.in_len && !self.src_done {
                let n = self.src.read(&mut self.inbuf)?;
                self.in_pos = 0;
                self.in_len = n;
                self.src_done = n == 0;
            }
            let before_in = inf.total_in();
            let before_out = inf.total_out();
            let status = inf
                .decompress(
                    &self.inbuf[self.in_pos..self.in_len],
                    buf,
                    FlushDecompress::None,
                )
                .map_err(|e| {
                    data_err(ErrorCode::CorruptData, format!("invalid deflate data: {e}"))
                })?;
            let used = (inf.total_in() - before_in) as usize;
            let made = (inf.total_out() - before_out) as usize;
            self.in_pos += used;
            if status == Status::StreamEnd {
                self.stream_end = true;
            }
            if made > 0 {
                self.produced += made as u64;
                if self.produced > self.size {
                    return Err(data_err(
                        ErrorCode::SizeExceeded,
                        "inflates to more than its declared size",
                    ));
                }
                self.crc.update(&buf[..made]);
                return Ok(made);
            }
            if used == 0 && self.src_done && !self.stream_end {
                return Err(data_err(
                    ErrorCode::CorruptData,
                    "deflate stream is truncated",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::deflate::Method;
    use super::super::write::ZipWriter;
    use super::*;
    use std::io::Cursor;

    fn sample(force64: bool) -> Vec<u8> {
        let mut w = ZipWriter::new(Vec::new());
        if force64 {
            w.force_zip64_for_tests();
        }
        w.add_dir("bag/").unwrap();
        w.add_bytes("bag/a.txt", &b"hello hello hello hello ".repeat(100))
            .unwrap();
        w.add_dir("bag/data/").unwrap();
        w.start_file("bag/data/x.bin", 3, Method::Stored).unwrap();
        w.write_data(b"xyz").unwrap();
        w.finish_file().unwrap();
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut c = Cursor::new(bytes.to_vec());
        let idx = read_index(&mut c).unwrap();
        assert!(idx.problems.is_empty(), "{:?}", idx.problems);
        assert_eq!(idx.bag.as_deref(), Some("bag"));
        idx.entries
            .iter()
            .map(|e| {
                let mut v = Vec::new();
                open_entry(&mut c, e).unwrap().read_to_end(&mut v).unwrap();
                (idx.name(e).to_string(), v)
            })
            .collect()
    }

    /// What the index holds per entry besides its name (issue #15: it was 88 bytes).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_entry_is_56_bytes() {
        assert_eq!(std::mem::size_of::<ZipEntry>(), 56);
    }

    #[test]
    fn round_trip_plain_and_zip64() {
        for force in [false, true] {
            let z = sample(force);
            let all = read_all(&z);
            assert_eq!(all.len(), 4);
            assert_eq!(all[1].1, b"hello hello hello hello ".repeat(100));
            assert_eq!(all[3].1, b"xyz");
        }
    }

    #[test]
    fn out_of_order_names_are_refused() {
        let mut w = ZipWriter::new(Vec::new());
        w.add_dir("b/").unwrap();
        assert!(w.add_dir("a/").is_err());
    }

    #[test]
    fn flipped_crc_and_truncation_are_caught() {
        let mut z = sample(false);
        let pos = z
            .windows(3)
            .rposition(|w| w == b"xyz")
            .expect("stored data present");
        // The last occurrence is the data of x.bin (names are before it).
        z[pos] = b'X';
        let mut c = Cursor::new(z.clone());
        let idx = read_index(&mut c).unwrap();
        let e = idx
            .entries
            .iter()
            .find(|e| idx.name(e).ends_with("x.bin"))
            .unwrap();
        let mut v = Vec::new();
        let err = open_entry(&mut c, e)
            .unwrap()
            .read_to_end(&mut v)
            .unwrap_err();
        assert_eq!(
            classify_read_error("x", &err).code(),
            ErrorCode::CorruptData
        );
        let cut = &z[..z.len() / 2];
        assert_eq!(
            read_index(&mut Cursor::new(cut.to_vec()))
                .unwrap_err()
                .code(),
            ErrorCode::NotAZip
        );
    }

    #[test]
    fn names() {
        for bad in [
            "/abs",
            "../x",
            "a/../../b",
            "a//b",
            "C:/x",
            "a\\b",
            "a/./b",
            "a\0b",
        ] {
            assert!(check_entry_name(bad).is_err(), "{bad}");
        }
        check_entry_name("bag/data/x y.py").unwrap();
        check_entry_name("bag/").unwrap();
    }
}
