//! Git folders (`repo`): a remote URL, a branch and a path; their content comes from the remote.

pub mod format;
pub mod import;
