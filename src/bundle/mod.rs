//! The bundle format, v1 (normative text: `spec/bundle-format.md`).
//!
//! Owns the container, the BagIt layout, the inventory, sealing with age, the writer, the reader
//! and verification. It must not import `client`, `emulator`, `export` or `import`.
//!
//! Modules follow the spec's sections: [`container`] (§3), [`bagit`] (§4), [`inventory`] (§5),
//! [`layout`] and [`names`] (§6, §7), [`seal`] (§8), [`json`] (§9), [`reader`] and [`verify`]
//! (§10), [`writer`], [`builder`], [`mod@pack`] and [`mod@unpack`] (§11), [`error`] (§13).

pub mod bagit;
pub mod builder;
pub mod container;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod inspect;
pub mod inventory;
pub mod json;
pub mod layout;
pub mod names;
pub mod pack;
pub mod printable;
pub mod readback;
pub mod reader;
pub mod records;
pub mod resource;
pub mod seal;
pub mod tags;
pub mod unpack;
pub mod verify;
pub mod writer;

pub use builder::{BagBuilder, ScopeWriter};
pub use error::{BundleError, ErrorCode, ProblemList, Problems};
pub use inspect::{inspect, InspectReport};
pub use inventory::{Inventory, Record, Sealing, Source};
pub use pack::{pack, PackOptions, PackSummary};
pub use reader::Bundle;
pub use resource::{Content, Part, Resource};
pub use seal::{Opener, Sealer};
pub use unpack::{unpack, UnpackSummary};
pub use verify::{verify_file, VerifyReport};
pub use writer::{write_bundle, write_bundle_file, BagSettings, WriteSummary};
