//! The source side of an import: a bundle opened, fully verified, and read into typed records.
//!
//! Nothing in a bundle is trusted until it has passed every check `dbxport verify` makes (spec
//! §10.1: structure, tag files, inventory, records, manifests, every payload digest, and — with
//! an identity — every sealed file), so [`SourceBundle::open`] runs exactly those, through the
//! same function, before returning; an identity given only later is checked the same way
//! before the first value is used ([`SourceBundle::unseal_all`]). Payloads stay in the bundle and are read (digest-checked again) when a step
//! needs them, so memory does not grow with the number of notebooks. Secret values are opened
//! only by [`SourceBundle::unseal_all`], into wiped buffers, and never leave memory.

use super::ImportError;
use crate::bundle::inventory::{Inventory, OpaqueRecord, Record, INVENTORY_FILE};
use crate::bundle::{Bundle, Opener};
use crate::kinds::format::PayloadFile;
use crate::kinds::permissions::format::PermissionsFile;
use crate::kinds::reference::format::{
    ClusterFile, ClusterPolicyFile, InstancePoolFile, MountFile, WarehouseFile,
};
use crate::kinds::workspace::format::CodeReference;
use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
use crate::model::grants::{HiveGrant, HiveObjectType, UcGrants};
use crate::model::job::Job;
use crate::model::permissions::ObjectPermissions;
use crate::model::repo::Repo;
use crate::model::secret::{AclItem, KeyVaultMetadata, ScopeBackend, ValueEncoding};
use crate::model::workspace::{Format, Language};
use crate::model::Kind;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The largest notebook or file the workspace import API takes (`content` is capped at 10 MB).
pub const MAX_IMPORT_BYTES: u64 = 10 * 1024 * 1024;
/// The largest JSON payload (job, permissions, grants) read into memory.
const MAX_JSON_BYTES: u64 = 64 << 20;

/// True for kinds whose primary stored file is JSON the importer reads whole when it opens the
/// bundle. Permissions, one record per object, are read when they are planned
/// ([`SourceBundle::permissions_of`]), so that they are not all in memory at once.
fn has_json(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Repo
            | Kind::Job
            | Kind::HiveGrants
            | Kind::UcGrants
            | Kind::Cluster
            | Kind::InstancePool
            | Kind::ClusterPolicy
            | Kind::Warehouse
            | Kind::Mount
    )
}

/// A workspace folder.
#[derive(Debug, Clone)]
pub struct SrcDirectory {
    /// Source workspace path.
    pub path: String,
    /// Source object id.
    pub object_id: i64,
}

/// A notebook or a workspace file.
#[derive(Debug, Clone)]
pub struct SrcObject {
    /// Notebook or file.
    pub kind: Kind,
    /// Source workspace path.
    pub path: String,
    /// Source object id.
    pub object_id: i64,
    /// Notebook language (notebooks only).
    pub language: Option<Language>,
    /// Format of the stored primary part (`SOURCE` for notebooks whenever export could).
    pub format: Format,
    /// Stored path of the primary part.
    pub stored: Option<String>,
    /// Size of the primary part.
    pub size: u64,
    /// SHA-256 of the primary part (as stored), as bytes (hex in the journal).
    pub sha256: Option<[u8; 32]>,
    /// Notes the export left on the record.
    pub notes: Vec<String>,
    /// What export's scanner found in its code; `None` when it was not scanned (a bundle
    /// before format 1.2, or a file over the scan limit).
    pub code_references: Option<Vec<CodeReference>>,
}

/// A secret scope.
#[derive(Debug, Clone)]
pub struct SrcScope {
    /// Scope name.
    pub name: String,
    /// Backend.
    pub backend: ScopeBackend,
    /// Key Vault details, for the must-recreate list.
    pub keyvault: Option<KeyVaultMetadata>,
    /// ACL entries.
    pub acls: Vec<AclItem>,
    /// Key names.
    pub keys: Vec<String>,
}

/// One secret.
#[derive(Debug, Clone)]
pub struct SrcSecret {
    /// Scope name.
    pub scope: String,
    /// Key name.
    pub key: String,
    /// How the value was put.
    pub encoding: ValueEncoding,
    /// SHA-256 of the sealed file (not secret; identifies the value for the journal).
    pub sealed_sha256: Option<String>,
    /// Why there is no value, when there is none.
    pub notes: Vec<String>,
    /// The inventory record (for unsealing).
    pub record: Record,
}

/// The permissions of one object.
#[derive(Debug, Clone)]
pub struct SrcPermissions {
    /// `notebooks`, `directories`, `files`, `repos`, `jobs`, `registered-models`.
    pub request_object_type: String,
    /// Source object id.
    pub object_id: String,
    /// Workspace path, job name or model name, when the export recorded it.
    pub object_name: Option<String>,
    /// Stored path of the permissions as exported, read by [`SourceBundle::permissions_of`].
    pub stored: Option<String>,
}

/// The legacy Hive metastore grants on one object.
#[derive(Debug, Clone)]
pub struct SrcHiveGrants {
    /// What the grants are on.
    pub object_type: HiveObjectType,
    /// Its key (`db`, `db.table`, or empty).
    pub object_key: String,
    /// The grants, denies and owner rows.
    pub grants: Vec<HiveGrant>,
}

/// A principal the source workspace had.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SrcPrincipal {
    /// `user`, `group` or `service_principal`.
    pub principal_type: String,
    /// User name, group name or application id.
    pub name: String,
}

/// Records that import never replays, kept for the must-recreate list.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Clusters.
    pub clusters: Vec<Cluster>,
    /// Instance pools.
    pub pools: Vec<InstancePool>,
    /// Cluster policies.
    pub policies: Vec<ClusterPolicy>,
    /// SQL warehouses.
    pub warehouses: Vec<Warehouse>,
    /// DBFS mounts.
    pub mounts: Vec<Mount>,
    /// Principals.
    pub principals: Vec<SrcPrincipal>,
}

/// A verified bundle, its records sorted by kind.
pub struct SourceBundle {
    path: PathBuf,
    bundle: Arc<Mutex<Bundle>>,
    /// True once every sealed file has been opened and checked (§10.1 step 7).
    sealed_verified: AtomicBool,
    /// The bundle id.
    pub bundle_id: String,
    /// Source workspace host.
    pub source_host: String,
    /// Source workspace id (`""` when unknown).
    pub source_workspace_id: String,
    /// Folders.
    pub directories: Vec<SrcDirectory>,
    /// Notebooks and files.
    pub objects: Vec<SrcObject>,
    /// Repos.
    pub repos: Vec<Repo>,
    /// Secret scopes.
    pub scopes: Vec<SrcScope>,
    /// Secrets.
    pub secrets: Vec<SrcSecret>,
    /// Jobs.
    pub jobs: Vec<Job>,
    /// Permissions.
    pub permissions: Vec<SrcPermissions>,
    /// Hive grants.
    pub hive_grants: Vec<SrcHiveGrants>,
    /// Unity Catalog grants.
    pub uc_grants: Vec<UcGrants>,
    /// ML models, gathered from their records (registered models, versions, artifacts, and
    /// the permissions of registered models) with what the models stage reads of each.
    pub models: Vec<crate::models::BundleModel>,
    /// The model records as they stream, until [`SourceBundle::open`] finishes them into
    /// `models`.
    gather: crate::models::Gather,
    /// How many model records the bundle holds.
    model_records: usize,
    /// Reference-only records.
    pub references: References,
    /// Records of kinds this version does not know.
    pub unknown: Vec<OpaqueRecord>,
}

/// Secret values opened from a bundle, in wiped buffers, keyed by `(scope, key)`.
#[derive(Default)]
pub struct SecretValues {
    values: BTreeMap<(String, String), Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValues([{} redacted])", self.values.len())
    }
}

impl SecretValues {
    /// The value of `scope/key`, if it was opened.
    pub fn get(&self, scope: &str, key: &str) -> Option<&[u8]> {
        self.values
            .get(&(scope.to_string(), key.to_string()))
            .map(|v| v.as_slice())
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A record's primary stored file (`bytes`, read already) read as its kind's payload file
/// type; `record` names the record in errors.
fn parse_payload<F: PayloadFile>(
    record: &str,
    stored: Option<&str>,
    bytes: &Option<Vec<u8>>,
) -> Result<F::Wire, ImportError> {
    let (Some(stored), Some(bytes)) = (stored, bytes) else {
        return Err(ImportError::Record {
            record: record.to_string(),
            message: "has no stored file".into(),
        });
    };
    serde_json::from_slice::<F>(bytes)
        .map(PayloadFile::into_wire)
        .map_err(|e| ImportError::Record {
            record: record.to_string(),
            message: format!("{stored} is not the JSON the format defines: {e}"),
        })
}

/// Hashes what passes through it (the inventory's second reading is checked against the
/// digest it had when the bundle was verified).
struct Hashed<R> {
    inner: R,
    sha: sha2::Sha256,
}

impl<R: std::io::Read> std::io::Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.sha, &buf[..n]);
        Ok(n)
    }
}

fn bundle_problem(path: &Path, e: crate::bundle::BundleError) -> ImportError {
    ImportError::Bundle {
        path: path.display().to_string(),
        problems: vec![e],
    }
}

impl SourceBundle {
    /// Opens the bundle at `path` after exactly the checks of `dbxport verify` — with an
    /// identity, `verify --identity`, so every sealed file is opened and checked too. Any problem
    /// refuses the bundle, naming every one. An identity is needed only for a bundle wrapped in
    /// an envelope; given later instead, [`SourceBundle::unseal_all`] runs the sealed checks.
    pub fn open(path: &Path, opener: Option<&Opener>) -> Result<SourceBundle, ImportError> {
        // Verified with the records kept lean, as `verify` keeps them; what import needs of
        // each record is read below as the inventory streams a second time (issue #15).
        let (mut bundle, _) =
            crate::bundle::verify::open_verified_lean(path, opener, &mut |_, _| {}).map_err(
                |problems| ImportError::Bundle {
                    path: path.display().to_string(),
                    problems,
                },
            )?;
        let sealed_verified = AtomicBool::new(opener.is_some_and(|o| !o.is_empty()));
        let inv = bundle.inventory();
        let (bundle_id, source_host, source_workspace_id, unknown) = (
            inv.bundle_id.clone(),
            inv.source.host.clone(),
            inv.source.workspace_id.clone(),
            inv.opaque.clone(),
        );
        // What import needs of each record is read below; nothing reads the summaries.
        bundle.forget_summaries();
        let shared = Arc::new(Mutex::new(bundle));
        let mut s = SourceBundle {
            path: path.to_path_buf(),
            bundle_id,
            source_host,
            source_workspace_id,
            directories: Vec::new(),
            objects: Vec::new(),
            repos: Vec::new(),
            scopes: Vec::new(),
            secrets: Vec::new(),
            jobs: Vec::new(),
            permissions: Vec::new(),
            hive_grants: Vec::new(),
            uc_grants: Vec::new(),
            models: Vec::new(),
            gather: Default::default(),
            model_records: 0,
            references: References::default(),
            unknown,
            bundle: Arc::clone(&shared),
            sealed_verified,
        };
        // The records stream from the inventory (checked against the digest it had when the
        // bundle was verified); each is read into the kind's own compact form and dropped.
        // Records whose JSON payload is read now (jobs, repos, grants, compute: few) wait
        // until the stream is done, as the bundle cannot read two entries at once.
        let mut deferred: Vec<Record> = Vec::new();
        {
            let mut b = shared.lock().unwrap_or_else(|p| p.into_inner());
            let want = b.tag_digests().get(INVENTORY_FILE).cloned();
            let entry = b
                .open_raw(INVENTORY_FILE)
                .map_err(|e| bundle_problem(path, e))?;
            let mut hashed = Hashed {
                inner: entry,
                sha: sha2::Sha256::default(),
            };
            let mut failed: Option<ImportError> = None;
            let parsed = Inventory::for_each_record(&mut hashed, &mut |r: Record| {
                if failed.is_some() {
                    return;
                }
                if has_json(r.kind) {
                    deferred.push(r);
                } else if let Err(e) = s.add_record(&r, None) {
                    failed = Some(e);
                }
            });
            let drained = std::io::copy(&mut hashed, &mut std::io::sink());
            let got = hex::encode(sha2::Digest::finalize(hashed.sha));
            let changed = || {
                bundle_problem(
                    path,
                    crate::bundle::BundleError::new(
                        crate::bundle::ErrorCode::TagDigestMismatch,
                        format!("entry {INVENTORY_FILE}"),
                        "changed since the bundle was verified",
                    ),
                )
            };
            match (parsed, drained) {
                (Err(e), _) => return Err(bundle_problem(path, e)),
                (_, Err(e)) => {
                    return Err(bundle_problem(
                        path,
                        crate::bundle::BundleError::io(format!("entry {INVENTORY_FILE}"), &e),
                    ))
                }
                _ if want.as_deref() != Some(got.as_str()) => return Err(changed()),
                _ => {}
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        // In batches: the JSON payloads of a batch are read first and parsed after, so the
        // reader's large transient buffers do not interleave with the long-lived parsed
        // records (which fragments the heap badly).
        const BATCH: usize = 512;
        for batch in deferred.chunks(BATCH) {
            let mut raw: Vec<Option<Vec<u8>>> = Vec::with_capacity(batch.len());
            for r in batch {
                raw.push(match (r.kind, r.stored.first()) {
                    (k, Some(stored)) if has_json(k) => Some(s.read(stored, MAX_JSON_BYTES)?),
                    _ => None,
                });
            }
            for (r, bytes) in batch.iter().zip(raw) {
                s.add_record(r, bytes)?;
            }
        }
        // The lists with one entry per object, grown by doubling as the records streamed,
        // hold up to as much again unused: given back (issue #15).
        s.directories.shrink_to_fit();
        s.objects.shrink_to_fit();
        s.permissions.shrink_to_fit();
        let gather = std::mem::take(&mut s.gather);
        s.model_records = gather.records();
        s.models = gather.finish()?;
        Ok(s)
    }

    /// The permissions of `p` as exported: its stored file, read (digest-checked) and parsed
    /// when it is planned rather than when the bundle is opened.
    pub fn permissions_of(&self, p: &SrcPermissions) -> Result<ObjectPermissions, ImportError> {
        let what = format!("permissions {}/{}", p.request_object_type, p.object_id);
        let bytes = match &p.stored {
            Some(stored) => Some(self.read(stored, MAX_JSON_BYTES)?),
            None => None,
        };
        parse_payload::<PermissionsFile>(&what, p.stored.as_deref(), &bytes)
    }

    /// How many records were read (a bound on the items of a plan).
    pub fn record_count(&self) -> usize {
        let r = &self.references;
        self.directories.len()
            + self.objects.len()
            + self.repos.len()
            + self.scopes.len()
            + self.secrets.len()
            + self.jobs.len()
            + self.permissions.len()
            + self.hive_grants.len()
            + self.uc_grants.len()
            + self.model_records
            + r.clusters.len()
            + r.pools.len()
            + r.policies.len()
            + r.warehouses.len()
            + r.mounts.len()
            + r.principals.len()
    }

    /// The bundle file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The verified bundle, shared with the models stage (which streams artifacts from it on
    /// blocking threads).
    pub fn shared_bundle(&self) -> Arc<Mutex<Bundle>> {
        Arc::clone(&self.bundle)
    }

    /// The value of the job tag that ties a target job to source job `job_id`: the source
    /// workspace id (or host, when the id is unknown) and the job id.
    pub fn job_tag(&self, job_id: i64) -> String {
        let ws = if self.source_workspace_id.is_empty() {
            self.source_host.as_str()
        } else {
            self.source_workspace_id.as_str()
        };
        crate::model::job::source_tag_value(ws, job_id)
    }

    /// The record's primary stored file (`bytes`, read already), read as its kind's payload
    /// file type (§6) and turned into the API's terms. Payloads are read through the format
    /// types only, so what import accepts is what the format defines, whatever the API's types
    /// look like.
    pub(crate) fn payload<F: PayloadFile>(
        &self,
        r: &Record,
        bytes: &Option<Vec<u8>>,
    ) -> Result<F::Wire, ImportError> {
        parse_payload::<F>(
            &format!("{} {}", r.kind, r.name),
            r.stored.first().map(String::as_str),
            bytes,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bundle> {
        self.bundle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads a stored file (digest-checked), at most `cap` bytes.
    pub fn read(&self, stored: &str, cap: u64) -> Result<Vec<u8>, ImportError> {
        let mut b = self.lock();
        b.read_payload(stored, cap)
            .map_err(|e| bundle_problem(&self.path, e))
    }

    /// Gathers a model record (or the permissions of a registered model) for the models stage.
    pub(crate) fn gather_model(&mut self, r: &Record) -> Result<(), ImportError> {
        Ok(self.gather.add(r)?)
    }

    /// The record's `meta` as its kind's typed meta (§6), which the reader has checked.
    pub(crate) fn typed_meta<T: DeserializeOwned>(&self, r: &Record) -> Result<T, ImportError> {
        T::deserialize(&r.meta).map_err(|e| {
            bundle_problem(
                &self.path,
                crate::bundle::BundleError::new(
                    crate::bundle::ErrorCode::InventorySyntax,
                    format!("record {} {}", r.kind, r.name),
                    format!("meta does not fit its kind (spec §6): {e}"),
                ),
            )
        })
    }

    fn add_record(&mut self, r: &Record, raw: Option<Vec<u8>>) -> Result<(), ImportError> {
        // Each replayed kind reads its own records (`kinds::<kind>::import`).
        if let Some(unit) = super::unit::unit_of(r.kind) {
            return unit.load(self, r, raw);
        }
        // Reference-only kinds: for the must-recreate list and the principal mapping.
        match r.kind {
            Kind::Cluster => {
                let c = self.payload::<ClusterFile>(r, &raw)?;
                self.references.clusters.push(c)
            }
            Kind::InstancePool => {
                let p = self.payload::<InstancePoolFile>(r, &raw)?;
                self.references.pools.push(p)
            }
            Kind::ClusterPolicy => {
                let p = self.payload::<ClusterPolicyFile>(r, &raw)?;
                self.references.policies.push(p)
            }
            Kind::Warehouse => {
                let w = self.payload::<WarehouseFile>(r, &raw)?;
                self.references.warehouses.push(w)
            }
            Kind::Mount => {
                let m = self.payload::<MountFile>(r, &raw)?;
                self.references.mounts.push(m)
            }
            Kind::Principal => self.references.principals.push(SrcPrincipal {
                principal_type: r.meta_str("principal_type").unwrap_or("user").to_string(),
                name: r.name.clone(),
            }),
            // Every replayed kind has its unit (above).
            _ => {}
        }
        Ok(())
    }

    /// True when importing with `filter` puts the value of `s`: secrets are selected and its
    /// scope is not backed by Key Vault (whose values live in the vault).
    pub fn needs_value(&self, s: &SrcSecret, filter: &super::Filter) -> bool {
        filter.kind(Kind::Secret)
            && !self
                .scopes
                .iter()
                .any(|sc| sc.name == s.scope && sc.backend == ScopeBackend::AzureKeyvault)
    }

    /// Sealed secret values the selected secrets need.
    pub fn sealed_count(&self, wanted: &dyn Fn(&SrcSecret) -> bool) -> usize {
        self.secrets
            .iter()
            .filter(|s| s.sealed_sha256.is_some() && wanted(s))
            .count()
    }

    /// Runs `verify --identity`'s sealed checks (§10.1 step 7, every sealed file of the bundle,
    /// selected or not) unless they already ran when the bundle was opened.
    pub fn verify_sealed(&self, opener: &Opener) -> Result<(), ImportError> {
        if opener.is_empty() || self.sealed_verified.load(Ordering::Acquire) {
            return Ok(());
        }
        let (_, problems) = crate::bundle::verify::verify_sealed(&mut self.lock(), opener);
        if !problems.is_empty() {
            return Err(ImportError::Bundle {
                path: self.path.display().to_string(),
                problems,
            });
        }
        self.sealed_verified.store(true, Ordering::Release);
        Ok(())
    }

    /// Opens every sealed value `wanted` selects and checks it against its sealed digest
    /// (spec §8.2). Given an identity, first checks every sealed file of the bundle as
    /// `verify --identity` does ([`SourceBundle::verify_sealed`]). Fails on the first value that
    /// does not open, naming it: a missing or wrong identity, or an altered sealed file, is
    /// found here, before the first write.
    pub fn unseal_all(
        &self,
        opener: Option<&Opener>,
        wanted: &dyn Fn(&SrcSecret) -> bool,
    ) -> Result<SecretValues, ImportError> {
        if let Some(op) = opener {
            self.verify_sealed(op)?;
        }
        let mut out = SecretValues::default();
        let selected: Vec<&SrcSecret> = self
            .secrets
            .iter()
            .filter(|s| s.sealed_sha256.is_some() && wanted(s))
            .collect();
        if selected.is_empty() {
            return Ok(out);
        }
        let Some(opener) = opener.filter(|o| !o.is_empty()) else {
            return Err(ImportError::IdentityRequired {
                sealed: selected.len(),
            });
        };
        let mut b = self.bundle.lock().unwrap_or_else(|p| p.into_inner());
        for s in selected {
            let v = b
                .unseal(&s.record, opener)
                .map_err(|e| bundle_problem(&self.path, e))?;
            out.values.insert((s.scope.clone(), s.key.clone()), v);
        }
        Ok(out)
    }
}
