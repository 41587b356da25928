//! Workspace objects: folders (`directory`), notebooks and workspace files (`notebook`, `file`).

pub mod export;
pub mod format;
pub mod import;
