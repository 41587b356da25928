//! What every kind's `format` module shares: checking a record's `meta` against the kind's
//! typed meta, writing one, and the [`PayloadFile`] trait of the JSON payload files.
//!
//! A kind's meta type is its row of spec §6 as Rust: required fields are plain, optional ones
//! (`?` in the spec) are `Option` and left out when absent, and fields the spec does not name
//! are ignored (a newer writer may add some). The writer builds the record's `meta` from it and
//! the reader checks `meta` against it, so the two cannot drift apart.
//!
//! A kind's payload file types (`RepoFile`, `JobFile`, …) are its JSON files of spec §6 as
//! Rust, in the same way: their fields are the file's, spelled and shaped as the spec shows
//! them, whatever the API's types (`crate::model`) look like. Export converts the API's answer
//! into one (`From<&wire>`), which the writer serializes (`payload_part`); import reads one
//! and converts it back ([`PayloadFile::into_wire`]). A serde or API change to a wire type
//! therefore cannot change a payload byte, nor what a reader accepts: only a change to a format
//! type can, and the golden bundles pin those.

use crate::bundle::inventory::Record;
use crate::bundle::layout::LogicalPath;
use crate::bundle::records::{Out, RecordContext};
use crate::bundle::resource::{json_part, Part};
use crate::model::Kind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A JSON payload file of spec §6: a format type, with its conversion into the API's terms
/// for import. (The conversion from the API's answer, for export, is a `From` impl or a
/// `from_wire` function in the kind's `format::wire` block.)
pub trait PayloadFile: Serialize + DeserializeOwned {
    /// What import works with: the API's type(s) the file converts into.
    type Wire;

    /// The file's content in the API's terms.
    fn into_wire(self) -> Self::Wire;
}

/// The stored part holding a payload file, as canonical JSON (§9).
pub(crate) fn payload_part(path: LogicalPath, file: &impl PayloadFile) -> Part {
    json_part(path, file)
}

/// The `meta` object of a typed meta value.
pub fn meta_value(meta: &impl Serialize) -> Value {
    let v = serde_json::to_value(meta).expect("meta types serialize");
    debug_assert!(v.is_object(), "a record's meta is an object");
    v
}

/// Why `meta` is not a `T`, as a message naming the kind; `None` when it is one.
fn mismatch<T: DeserializeOwned>(kind: Kind, meta: &Value) -> Option<String> {
    // Read in place: no copy of the record's meta on the path every record takes.
    T::deserialize(meta)
        .err()
        .map(|e| format!("meta does not fit kind {kind} (spec §6): {e}"))
}

/// Checks a record's `meta` against its kind's typed meta (spec §6); empty when it fits.
/// Kinds this version does not know are not checked (their records are kept as they are).
pub fn meta_problems(kind: Kind, meta: &Value) -> Vec<String> {
    use super::{grants, job, model, permissions, reference, repo, secret, workspace};
    let found = match kind {
        Kind::Directory => mismatch::<workspace::format::DirectoryMeta>(kind, meta),
        Kind::Notebook => mismatch::<workspace::format::NotebookMeta>(kind, meta),
        Kind::File => mismatch::<workspace::format::FileMeta>(kind, meta),
        Kind::Repo => mismatch::<repo::format::RepoMeta>(kind, meta),
        Kind::Job => mismatch::<job::format::JobMeta>(kind, meta),
        Kind::SecretScope => mismatch::<secret::format::ScopeMeta>(kind, meta),
        Kind::Secret => mismatch::<secret::format::SecretMeta>(kind, meta),
        Kind::Permissions => mismatch::<permissions::format::PermissionsMeta>(kind, meta),
        Kind::HiveGrants => mismatch::<grants::format::HiveGrantsMeta>(kind, meta),
        Kind::UcGrants => mismatch::<grants::format::UcGrantsMeta>(kind, meta),
        Kind::RegisteredModel => mismatch::<model::format::RegisteredModelMeta>(kind, meta),
        Kind::ModelVersion => mismatch::<model::format::ModelVersionMeta>(kind, meta),
        Kind::ModelArtifact => mismatch::<model::format::ModelArtifactMeta>(kind, meta),
        Kind::Cluster
        | Kind::InstancePool
        | Kind::ClusterPolicy
        | Kind::Warehouse
        | Kind::Mount
        | Kind::Principal => mismatch::<reference::format::ReferenceMeta>(kind, meta),
    };
    found.into_iter().collect()
}

/// Runs the record rules of `r`'s kind (spec §6; E307, and the E303 rules §6.5 assigns).
/// Each kind writes its own in its `format` module; kinds without rules of their own (the
/// reference-only ones, jobs, grants) have only the inventory's and the typed meta's.
pub(crate) fn record_rules(
    r: &Record,
    ctx: &RecordContext<'_>,
    models: &mut crate::kinds::model::format::ModelFacts,
    out: &mut Out,
) {
    use super::{permissions, repo, secret, workspace};
    match r.kind {
        Kind::Directory | Kind::Notebook | Kind::File => workspace::format::check_record(r, out),
        Kind::Repo => repo::format::check_record(r, out),
        Kind::SecretScope => secret::format::check_scope(r, out),
        Kind::Secret => secret::format::check_secret(r, ctx, out),
        Kind::Permissions => permissions::format::check_record(r, out),
        Kind::RegisteredModel | Kind::ModelVersion | Kind::ModelArtifact => models.see(r, out),
        Kind::Job
        | Kind::HiveGrants
        | Kind::UcGrants
        | Kind::Cluster
        | Kind::InstancePool
        | Kind::ClusterPolicy
        | Kind::Warehouse
        | Kind::Mount
        | Kind::Principal => {}
    }
}
