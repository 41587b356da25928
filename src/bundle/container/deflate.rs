//! Compression policy (spec §3.3): the Stored-or-Deflate decision from a sample, and a deflate
//! encoder whose output ratio is bounded, so no entry a writer produces ever trips the reader's
//! compression-bomb check (§10.3).

use flate2::{Compress, Compression, FlushCompress, Status};
use std::cell::RefCell;
use std::io;

thread_local! {
    /// Compressors of finished entries, reset and kept for the next ones, by level (1: the
    /// method trial, 6: the encoder). A deflate state is a few hundred KiB: made and dropped
    /// once per entry it sits just above glibc's (dynamic) mmap threshold, and a bundle of
    /// 40,000 small files then left 1.3 GB of freed but fragmented heap in `pack`'s resident
    /// memory (272 MB with the threshold pinned). Reusing them keeps memory flat; a reset
    /// stream produces the same bytes as a new one.
    static SPARE: RefCell<[Option<Compress>; 2]> = const { RefCell::new([None, None]) };
}

/// A compressor at `level` (1 or 6), reused when this thread has a spare one.
fn take_compressor(level: u32) -> Compress {
    let slot = usize::from(level != 1);
    SPARE
        .with(|s| s.borrow_mut()[slot].take())
        .unwrap_or_else(|| Compress::new(Compression::new(level), false))
}

/// Returns a compressor for reuse (reset first, so it starts a new stream).
fn give_back(level: u32, mut c: Compress) {
    c.reset();
    let slot = usize::from(level != 1);
    SPARE.with(|s| s.borrow_mut()[slot] = Some(c));
}

/// Input is fed to the compressor in chunks of this size (the last may be shorter).
pub const CHUNK: usize = 65536;
/// The writer stops compressing once input exceeds this many times the output.
pub const WRITER_RATIO: u64 = 64;
/// The reader's bound: uncompressed ≤ `READER_RATIO` × compressed + [`READER_SLACK`].
pub const READER_RATIO: u64 = 100;
/// Slack of the reader's bound, in bytes.
pub const READER_SLACK: u64 = 1 << 20;

/// Compression method of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Method 0.
    Stored,
    /// Method 8, raw deflate.
    Deflated,
}

impl Method {
    /// The zip method number.
    pub fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// True when an entry of `size` uncompressed bytes and `compressed` bytes is within the
/// reader's bound (§10.3).
pub fn ratio_ok(size: u64, compressed: u64) -> bool {
    size <= compressed
        .saturating_mul(READER_RATIO)
        .saturating_add(READER_SLACK)
}

/// Chooses the method for a file whose first bytes are `sample` (at most [`CHUNK`] of them):
/// Stored when empty or when level-1 deflate saves less than 3% (§3.3).
pub fn choose_method(sample: &[u8]) -> Method {
    if sample.is_empty() {
        return Method::Stored;
    }
    let sample = &sample[..sample.len().min(CHUNK)];
    let mut c = take_compressor(1);
    let mut out = Vec::with_capacity(sample.len() + 1024);
    loop {
        let before = c.total_in() as usize;
        let status = c
            .compress_vec(&sample[before..], &mut out, FlushCompress::Finish)
            .expect("deflate of a memory buffer cannot fail");
        if status == Status::StreamEnd {
            break;
        }
        if out.len() as u64 * 100 >= sample.len() as u64 * 97 {
            break;
        }
        out.reserve(CHUNK);
    }
    give_back(1, c);
    if out.len() as u64 * 100 >= sample.len() as u64 * 97 {
        Method::Stored
    } else {
        Method::Deflated
    }
}

/// A raw-deflate encoder following §3.3: level 6, a sync flush after every chunk, and a switch
/// to stored blocks once the ratio exceeds [`WRITER_RATIO`].
pub struct BoundedDeflater {
    /// Always `Some` but while being dropped (it goes back to the thread's spares).
    c: Option<Compress>,
    pending: Vec<u8>,
    fed_chunks: u64,
    switched: bool,
    total_in: u64,
    total_out: u64,
}

impl Default for BoundedDeflater {
    fn default() -> Self {
        Self::new()
    }
}

impl BoundedDeflater {
    /// A fresh encoder.
    pub fn new() -> Self {
        BoundedDeflater {
            c: Some(take_compressor(6)),
            pending: Vec::with_capacity(CHUNK),
            fed_chunks: 0,
            switched: false,
            total_in: 0,
            total_out: 0,
        }
    }

    /// Adds input; appends any compressed output to `out`.
    pub fn write(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= CHUNK {
                let (chunk, rest) = data.split_at(CHUNK);
                self.chunk(chunk, out)?;
                data = rest;
                continue;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                let chunk = std::mem::take(&mut self.pending);
                self.chunk(&chunk, out)?;
                self.pending = chunk;
                self.pending.clear();
            }
        }
        Ok(())
    }

    fn chunk(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if self.fed_chunks > 0
            && !self.switched
            && self.total_in > WRITER_RATIO.saturating_mul(self.total_out)
        {
            self.switched = true;
        }
        self.fed_chunks += 1;
        let start = out.len();
        if self.switched {
            for block in chunk.chunks(65535) {
                let len = block.len() as u16;
                out.push(0x00);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&(!len).to_le_bytes());
                out.extend_from_slice(block);
            }
        } else {
            self.run(chunk, FlushCompress::Sync, out)?;
        }
        self.total_in += chunk.len() as u64;
        self.total_out += (out.len() - start) as u64;
        Ok(())
    }

    fn run(&mut self, input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) -> io::Result<()> {
        let c = self.c.as_mut().expect("present until dropped");
        let base_in = c.total_in();
        loop {
            out.reserve(CHUNK / 2 + 64);
            let consumed = (c.total_in() - base_in) as usize;
            let status = c
                .compress_vec(&input[consumed..], out, flush)
                .map_err(io::Error::other)?;
            let consumed = (c.total_in() - base_in) as usize;
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => consumed == input.len() && out.len() < out.capacity(),
            };
            if done {
                return Ok(());
            }
        }
    }

    /// Ends the stream; appends the remaining output to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.chunk(&chunk, out)?;
        }
        if self.switched {
            out.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]);
        } else {
            self.run(&[], FlushCompress::Finish, out)?;
        }
        Ok(())
    }
}

impl Drop for BoundedDeflater {
    fn drop(&mut self) {
        if let Some(c) = self.c.take() {
            give_back(6, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(data: &[u8], size: usize) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(size + 16);
        let st = d
            .decompress_vec(data, &mut out, FlushDecompress::Finish)
            .unwrap();
        assert_eq!(st, Status::StreamEnd);
        out
    }

    fn deflate_all(data: &[u8], write_size: usize) -> Vec<u8> {
        let mut d = BoundedDeflater::new();
        let mut out = Vec::new();
        for part in data.chunks(write_size.max(1)) {
            d.write(part, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn zeros_stay_within_the_reader_bound_and_round_trip() {
        let data = vec![0u8; 5 * CHUNK + 123];
        let out = deflate_all(&data, 7000);
        assert!(ratio_ok(data.len() as u64, out.len() as u64));
        assert!(data.len() as u64 <= WRITER_RATIO * out.len() as u64 + CHUNK as u64);
        assert_eq!(inflate(&out, data.len()), data);
    }

    #[test]
    fn output_does_not_depend_on_write_sizes() {
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {i} of text\n").into_bytes())
            .take(400_000)
            .collect();
        let a = deflate_all(&text, 1);
        let b = deflate_all(&text, 100_000);
        assert_eq!(a, b);
        assert_eq!(inflate(&a, text.len()), text);
        assert!(a.len() < text.len() / 3);
    }

    #[test]
    fn method_choice() {
        assert_eq!(choose_method(b""), Method::Stored);
        assert_eq!(choose_method(&[b'a'; 1000]), Method::Deflated);
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..CHUNK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(choose_method(&noise), Method::Stored);
        let empty = deflate_all(b"", 10);
        assert_eq!(inflate(&empty, 0), b"");
    }
}
