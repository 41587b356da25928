//! The export pipeline: list → fetch → write, from a workspace (through [`crate::client`]) into a
//! bundle (through [`crate::bundle`]).

pub mod scan;
