//! One module per kind of resource (issue #10, "one kind, one place").
//!
//! A kind's module is where what that kind means is written down once:
//!
//! * `format` — its records as spec §6 defines them: the typed `meta` the writer builds and
//!   the reader checks ([`format::meta_problems`]), the record rules `verify` runs on them,
//!   and the resources export writes. It depends only on the bundle format and the shared
//!   model, never on the network;
//! * `export` — how it is fetched from a workspace and staged into a bundle;
//! * `import` — how its records are read (`load`, typed meta to the API's terms), compared
//!   with a target (`plan`, also for `diff`) and replayed into it (`apply`): three functions,
//!   declared as the kind's `Unit` by the `unit!` macro of `import::unit`.
//!
//! The drivers — [`crate::export`]'s stages, [`crate::import::plan()`] and
//! [`crate::import::apply`] — know no kind; they run every kind's module in order.
//!
//! **Where a new kind goes.** Add its name to [`crate::model::kinds`] (the one vocabulary every
//! command parses), its section to `spec/bundle-format.md` §6 (the record's `meta` and payload
//! files, as JSON) and to `spec/inventory.schema.json`, a module here with `format`, `export`
//! and `import` (its record rules to `format::record_rules` and its typed meta to
//! [`format::meta_problems`]), its unit to `import::unit::UNITS` at its place in the import order, its
//! export stage to the export driver, and a golden or hostile fixture that shows it.
//!
//! Kinds that are recorded but not replayed (clusters, pools, policies, warehouses, mounts,
//! principals) share one module, `reference`: its `format` and `export`; import has no unit
//! for them and lists them under "must recreate".

pub mod format;
pub mod grants;
pub mod job;
pub mod model;
pub mod permissions;
pub mod reference;
pub mod repo;
pub mod secret;
pub mod workspace;
