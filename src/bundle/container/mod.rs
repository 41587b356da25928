//! The container layer (spec §3): a strict, deterministic zip profile. `write` streams entries
//! out, `read` parses and checks a zip before any data is trusted, `deflate` owns the
//! compression policy shared by both.

pub mod deflate;
pub mod read;
pub mod write;

pub use deflate::Method;
pub use read::{open_entry, read_index, EntryReader, ZipEntry, ZipIndex};
pub use write::ZipWriter;
