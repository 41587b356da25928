//! Table ACLs: legacy Hive metastore grants (`hive_grants`) and Unity Catalog grants (`uc_grants`).

pub mod export;
pub mod format;
pub mod import;
pub mod replay;
