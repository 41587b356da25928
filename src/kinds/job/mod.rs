//! Jobs (`job`): settings with every cluster, job and notebook reference remapped on import.

pub mod export;
pub mod format;
pub mod import;
