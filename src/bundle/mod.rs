//! The bundle format, v1 (normative text: `spec/bundle-format.md`).
//!
//! Owns the container, the BagIt layout, the inventory, sealing with age, the writer, the reader
//! and verification. It must not import `client`, `emulator`, `export` or `import`.
