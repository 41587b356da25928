//! dbxport carries a Databricks workspace's resources into one offline, verified bundle file and
//! back out again: into another workspace, or onto local disk.
//!
//! The crate is cut along the design in `DESIGN.md`:
//!
//! * [`model`] — the resource model every other module shares;
//! * [`bundle`] — the bundle format (spec: `spec/bundle-format.md`): writer, reader, verify, seal;
//! * [`client`] — the Databricks REST client: config and auth, transport, one module per API;
//! * [`clock`] — the monotonic clock what expires runs on, real or moved by hand in tests;
//! * [`emulator`] — a Databricks-compatible server for tests, demos and rehearsals;
//! * [`export`] and [`import`] — the two pipelines between a workspace and a bundle.
//! * [`models`] — ML models (registry, versions, artifacts) between a registry and a bundle,
//!   used by both pipelines and by `dbxport models`;
//! * [`journal`] — the append-only journal that makes export and import resumable;
//! * `kinds` — one module per kind of resource: what export and import do with it;
//! * [`hints`] — the catalogue of error ids and the hint that says what to do about each.
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin layer of argument parsing and output.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod bundle;
pub mod client;
pub mod clock;
pub mod emulator;
pub mod export;
pub mod hints;
pub mod import;
pub mod journal;
pub mod kinds;
pub mod memory;
pub mod model;
pub mod models;

/// The version of dbxport, as recorded in every bundle it writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
