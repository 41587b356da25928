//! The import pipeline: read → plan → apply, from a bundle into a workspace, with a journal.

pub mod mapping;
pub mod remap;
