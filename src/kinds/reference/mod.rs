//! Reference-only records: clusters, instance pools, cluster policies, SQL warehouses, mounts
//! and principals. Export records them so the user knows what to recreate (or whom to map);
//! import never replays them and lists them under "must recreate".

pub mod export;
pub mod format;
