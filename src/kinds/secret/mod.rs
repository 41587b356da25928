//! Secret scopes (`secret_scope`) with their ACLs, and secrets (`secret`) with values sealed in the bundle.

pub mod export;
pub mod format;
pub mod import;
