//! One module per kind of resource (issue #10, "one kind, one place").
//!
//! A kind's module is where what that kind means is written down once:
//!
//! * `format` — its records as spec §6 defines them: the typed `meta` the writer builds and
//!   the reader checks ([`format::meta_problems`]), its payload file types (`RepoFile`,
//!   `JobFile`, … — each JSON file of §6, field for field, [`format::PayloadFile`]), the
//!   record rules `verify` runs on them, and the resources export writes. It depends only on
//!   the bundle format and the shared model, never on the network;
//! * `export` — how it is fetched from a workspace and staged into a bundle;
//! * `import` — how its records are read (`load`, typed meta to the API's terms), compared
//!   with a target (`plan`, also for `diff`) and replayed into it (`apply`): three functions,
//!   declared as the kind's `Unit` by the `unit!` macro of `import::unit`.
//!
//! **The format is its own.** A kind's `format.rs` is in two parts. Above, the format alone:
//! meta types, payload file types, record rules, and the builders of a record from them.
//! Below, as its last item, a private `mod wire { … }` block: the only place the file names a
//! type of the API's wire model (the public types of every `crate::model` module but `kinds`,
//! `report` and `scan`, `model::KeyValue` included; `Kind` is not one). It holds the
//! conversions — `From<&wire::X> for XFile` for export, [`format::PayloadFile::into_wire`] for
//! import — and the `Resource` constructors export calls with what the API returned; it
//! defines no type of its own. So a payload's shape is stated by the format types alone: a
//! serde change to a wire type changes no byte, and a wire field renamed or removed is a
//! compile error in a conversion rather than different bytes. Import reads payload files only as
//! format types (`SourceBundle::payload`, the models stage's `read_file`, both bound to
//! `PayloadFile`). `tests/layering.rs` checks the rule: outside the wire block no wire type
//! name occurs (`Kind::` variants aside), and the block defines no struct, enum, union, type
//! alias or trait. The golden bundles pin the bytes (`tests/bundle_golden.rs`).
//!
//! The drivers — [`crate::export`]'s stages, [`crate::import::plan()`] and
//! [`crate::import::apply`] — know no kind; they run every kind's module in order.
//!
//! **Where a new kind goes.** Add its name to [`crate::model::kinds`] (the one vocabulary every
//! command parses), its section to `spec/bundle-format.md` §6 (the record's `meta` and payload
//! files, as JSON) and to `spec/inventory.schema.json`, a module here with `format`, `export`
//! and `import` (its record rules to `format::record_rules`, its typed meta to
//! [`format::meta_problems`], its payload files as format types with their conversions in
//! `mod wire`), its unit to `import::unit::UNITS` at its place in the import order, its export
//! stage to the export driver, and a golden or hostile fixture that shows it.
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
