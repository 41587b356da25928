//! Resources as the writers take them: one [`Resource`] per inventory record, with its parts
//! (stored files described by original names) and their content. The constructors here are the
//! per-kind rules of spec §6 — name, source id, logical path and `meta` — shared by every
//! writer (the streaming [`super::writer`], the staging [`super::builder`]).

use super::json::to_canonical_bytes;
use super::layout::{notebook_ext, segs, workspace_segments, LogicalPath};
use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
use crate::model::grants::{HiveGrant, HiveObjectType, UcGrants};
use crate::model::job::{self, Job};
use crate::model::mlflow::{ModelVersion, RegisteredModel};
use crate::model::permissions::ObjectPermissions;
use crate::model::principal::{Group, ServicePrincipal, User};
use crate::model::repo::Repo;
use crate::model::secret::{AclItem, SecretMetadata, SecretScope, ValueEncoding};
use crate::model::workspace::{Format, Language, ObjectInfo};
use crate::model::Kind;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::path::PathBuf;

/// Where a part's bytes come from. Files are opened only when written, so a resource list can
/// describe any number of files without holding them open.
pub enum Content {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A file on disk, read when written.
    File(PathBuf),
    /// A stream of exactly `len` bytes.
    Stream {
        /// The exact length.
        len: u64,
        /// The bytes.
        reader: Box<dyn Read + Send>,
    },
    /// A folder (no bytes).
    Dir,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Content::File(p) => write!(f, "File({})", p.display()),
            Content::Stream { len, .. } => write!(f, "Stream({len} bytes)"),
            Content::Dir => f.write_str("Dir"),
        }
    }
}

/// One stored file or folder of a resource.
#[derive(Debug)]
pub struct Part {
    /// Where it goes, in original names.
    pub path: LogicalPath,
    /// Its bytes.
    pub content: Content,
    /// True when the bytes are sealed (§8).
    pub sealed: bool,
}

/// One resource: what becomes one inventory record plus its stored files.
#[derive(Debug)]
pub struct Resource {
    /// Its kind.
    pub kind: Kind,
    /// Its id in the source workspace.
    pub source_id: String,
    /// Its original name or path.
    pub name: String,
    /// Kind-specific details.
    pub meta: Value,
    /// Notes for the user.
    pub notes: Vec<String>,
    /// Stored files and folders, primary first.
    pub parts: Vec<Part>,
}

fn json_part(path: LogicalPath, value: &impl Serialize) -> Part {
    Part {
        path,
        content: Content::Bytes(to_canonical_bytes(value).expect("model types serialize")),
        sealed: false,
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

impl Resource {
    /// A resource with no parts yet.
    pub fn new(
        kind: Kind,
        source_id: impl Into<String>,
        name: impl Into<String>,
        meta: Value,
    ) -> Self {
        Resource {
            kind,
            source_id: source_id.into(),
            name: name.into(),
            meta: strip_nulls(meta),
            notes: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Adds notes.
    pub fn with_notes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, notes: I) -> Self {
        self.notes.extend(notes.into_iter().map(Into::into));
        self
    }

    /// True when the primary part is sealed.
    pub fn is_sealed(&self) -> bool {
        self.parts.first().is_some_and(|p| p.sealed)
    }

    /// A workspace folder (§6.1); kept even when empty.
    pub fn directory(path: &str, object_id: i64) -> Self {
        let mut r = Resource::new(
            Kind::Directory,
            object_id.to_string(),
            path,
            json!({ "object_id": object_id }),
        );
        r.parts.push(Part {
            path: LogicalPath::dir(workspace_segments(path)),
            content: Content::Dir,
            sealed: false,
        });
        r
    }

    /// A notebook (§6.1) with one part per export format, `SOURCE` first when present.
    /// `info.language` defaults to Python when the server did not say.
    pub fn notebook(info: &ObjectInfo, exports: Vec<(Format, Content)>) -> Self {
        let language = info.language.unwrap_or(Language::Python);
        let mut exports = exports;
        exports.sort_by_key(|(f, _)| *f != Format::Source);
        let formats: Vec<&str> = exports.iter().map(|(f, _)| f.as_str()).collect();
        let mut r = Resource::new(
            Kind::Notebook,
            info.object_id.to_string(),
            &info.path,
            json!({
                "object_id": info.object_id,
                "language": language.as_str(),
                "formats": formats,
                "created_at": info.created_at,
                "modified_at": info.modified_at,
            }),
        );
        for (format, content) in exports {
            r.parts.push(Part {
                path: LogicalPath::file(
                    workspace_segments(&info.path),
                    Some(notebook_ext(language, format)),
                ),
                content,
                sealed: false,
            });
        }
        r
    }

    /// A workspace file (§6.1), byte for byte.
    pub fn workspace_file(info: &ObjectInfo, content: Content) -> Self {
        let mut r = Resource::new(
            Kind::File,
            info.object_id.to_string(),
            &info.path,
            json!({ "object_id": info.object_id, "modified_at": info.modified_at }),
        );
        r.parts.push(Part {
            path: LogicalPath::file(workspace_segments(&info.path), None),
            content,
            sealed: false,
        });
        r
    }

    /// A Git folder link (§6.2).
    pub fn repo(repo: &Repo) -> Self {
        let path = repo
            .path
            .clone()
            .unwrap_or_else(|| format!("/Repos/{}", repo.id));
        let mut r = Resource::new(
            Kind::Repo,
            repo.id.to_string(),
            &path,
            json!({
                "path": path,
                "url": repo.url,
                "provider": repo.provider,
                "branch": repo.branch,
                "head_commit_id": repo.head_commit_id,
            }),
        );
        let mut segments = workspace_segments(&path);
        segments[0] = "repos".into();
        r.parts
            .push(json_part(LogicalPath::file(segments, Some("json")), repo));
        r
    }

    /// A job's full definition (§6.2).
    pub fn job(job: &Job) -> Self {
        let name = job
            .settings
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut r = Resource::new(
            Kind::Job,
            job.job_id.to_string(),
            &name,
            json!({
                "job_id": job.job_id,
                "existing_cluster_ids": job::existing_cluster_ids(&job.settings),
                "run_job_ids": job::run_job_references(&job.settings),
                "notebook_paths": job::notebook_paths(&job.settings),
            }),
        );
        let file = if name.is_empty() {
            job.job_id.to_string()
        } else {
            format!("{}-{}", job.job_id, name)
        };
        r.parts.push(json_part(
            LogicalPath::file(segs(["jobs".to_string(), file]), Some("json")),
            job,
        ));
        r
    }

    /// A secret scope (§6.3): names and ACLs, plus the sealed digest index when any value of
    /// the scope is sealed.
    pub fn secret_scope(
        scope: &SecretScope,
        acls: &[AclItem],
        keys: &[SecretMetadata],
        sealed_index: Option<Vec<u8>>,
    ) -> Self {
        let mut acls = acls.to_vec();
        acls.sort();
        let mut keys = keys.to_vec();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        let key_names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        let mut r = Resource::new(
            Kind::SecretScope,
            &scope.name,
            &scope.name,
            json!({
                "backend_type": scope.backend_type,
                "keyvault_metadata": scope.keyvault_metadata,
                "acls": acls,
                "keys": key_names,
            }),
        );
        let mut doc = Map::new();
        doc.insert("name".into(), json!(scope.name));
        doc.insert("backend_type".into(), json!(scope.backend_type));
        if let Some(kv) = &scope.keyvault_metadata {
            doc.insert("keyvault_metadata".into(), json!(kv));
        }
        doc.insert("acls".into(), json!(acls));
        doc.insert("keys".into(), json!(keys));
        r.parts.push(json_part(
            LogicalPath::file(segs(["secrets", &scope.name, "scope"]), Some("json")),
            &Value::Object(doc),
        ));
        if let Some(index) = sealed_index {
            r.parts.push(Part {
                path: LogicalPath::file(
                    segs(["secrets", &scope.name, "digests"]),
                    Some("json.age"),
                ),
                content: Content::Bytes(index),
                sealed: true,
            });
        }
        r
    }

    /// One secret (§6.3): its sealed value, or no stored file (say why with a note).
    pub fn secret(
        scope: &str,
        key: &SecretMetadata,
        encoding: ValueEncoding,
        sealed_value: Option<Vec<u8>>,
    ) -> Self {
        let id = format!("{scope}/{}", key.key);
        let mut r = Resource::new(
            Kind::Secret,
            &id,
            &id,
            json!({
                "scope": scope,
                "key": key.key,
                "encoding": encoding,
                "last_updated_timestamp": key.last_updated_timestamp,
            }),
        );
        if let Some(v) = sealed_value {
            r.parts.push(Part {
                path: LogicalPath::file(segs(["secrets", scope, "values", &key.key]), Some("age")),
                content: Content::Bytes(v),
                sealed: true,
            });
        }
        r
    }

    /// The permissions of one object (§6.4). `request_object_type` is the API path segment
    /// (`notebooks`, `jobs`, …); `object_name` is its workspace path, job name or model name.
    pub fn permissions(
        request_object_type: &str,
        object_id: &str,
        object_name: Option<&str>,
        perms: &ObjectPermissions,
    ) -> Self {
        let mut r = Resource::new(
            Kind::Permissions,
            object_id,
            format!("{request_object_type}/{object_id}"),
            json!({
                "request_object_type": request_object_type,
                "object_id": object_id,
                "object_name": object_name,
            }),
        );
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["permissions", request_object_type, object_id]),
                Some("json"),
            ),
            perms,
        ));
        r
    }

    /// The legacy Hive metastore grants on one object (§6.4).
    pub fn hive_grants(
        object_type: HiveObjectType,
        object_key: &str,
        grants: &[HiveGrant],
    ) -> Self {
        let type_name = serde_json::to_value(object_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let name = if object_key.is_empty() {
            type_name.clone()
        } else {
            format!("{type_name} {object_key}")
        };
        let mut grants = grants.to_vec();
        grants.sort();
        let mut r = Resource::new(
            Kind::HiveGrants,
            &name,
            &name,
            json!({ "object_type": type_name, "object_key": object_key }),
        );
        let lower = type_name.to_lowercase();
        let path = if object_key.is_empty() {
            segs(["grants", "hive", &lower])
        } else {
            segs(["grants", "hive", &lower, object_key])
        };
        r.parts
            .push(json_part(LogicalPath::file(path, Some("json")), &grants));
        r
    }

    /// Unity Catalog grants on one securable (§6.4).
    pub fn uc_grants(g: &UcGrants) -> Self {
        let name = format!("{} {}", g.securable_type, g.full_name);
        let mut r = Resource::new(
            Kind::UcGrants,
            &name,
            &name,
            json!({ "securable_type": g.securable_type, "full_name": g.full_name }),
        );
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["grants", "unity-catalog", &g.securable_type, &g.full_name]),
                Some("json"),
            ),
            g,
        ));
        r
    }

    /// A registered model (§6.5).
    pub fn registered_model(m: &RegisteredModel) -> Self {
        let mut r = Resource::new(
            Kind::RegisteredModel,
            &m.name,
            &m.name,
            json!({ "name": m.name }),
        );
        r.parts.push(json_part(
            LogicalPath::file(segs(["models", &m.name, "model"]), Some("json")),
            m,
        ));
        r
    }

    /// A model version (§6.5). `artifacts` are its artifact files as `(path below the artifact
    /// root, SHA-256 hex, size)`, every one the version has in the bundle, duplicates included;
    /// `complete` is false when the export could not read them all. They give the `meta` keys
    /// format 1.1 requires (`artifacts_sha256`, `artifact_count`, `artifact_bytes`,
    /// `complete`), so no writer can leave them out.
    pub fn model_version<'a>(
        v: &ModelVersion,
        artifacts: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
        complete: bool,
    ) -> Self {
        let id = format!("{}/{}", v.name, v.version);
        let artifacts: Vec<(&str, &str, u64)> = artifacts.into_iter().collect();
        let mut r = Resource::new(
            Kind::ModelVersion,
            &id,
            &id,
            json!({
                "model": v.name,
                "version": v.version,
                "run_id": v.run_id,
                "source": v.source,
                "current_stage": v.current_stage,
                "artifacts_sha256": super::records::artifacts_digest(
                    artifacts.iter().map(|(path, sha, _)| (*path, *sha))
                ),
                "artifact_count": artifacts.len(),
                "artifact_bytes": artifacts.iter().map(|a| a.2).sum::<u64>(),
                "complete": complete,
            }),
        );
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["models", &v.name, "versions", &v.version, "version"]),
                Some("json"),
            ),
            v,
        ));
        r
    }

    /// One artifact file of a model version (§6.5); `path` is relative to the artifact root.
    pub fn model_artifact(model: &str, version: &str, path: &str, content: Content) -> Self {
        let id = format!("{model}/{version}/{path}");
        let mut r = Resource::new(
            Kind::ModelArtifact,
            &id,
            &id,
            json!({ "model": model, "version": version, "path": path }),
        );
        let mut s = segs(["models", model, "versions", version, "artifacts"]);
        s.extend(
            path.split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        );
        r.parts.push(Part {
            path: LogicalPath::file(s, None),
            content,
            sealed: false,
        });
        r
    }

    fn reference(
        kind: Kind,
        folder: &str,
        id: &str,
        name: &str,
        value: &impl Serialize,
        extra: Value,
    ) -> Self {
        let mut meta = json!({ "id": id, "name": name });
        if let (Some(m), Value::Object(x)) = (meta.as_object_mut(), extra) {
            m.extend(x);
        }
        let mut r = Resource::new(kind, id, name, meta);
        r.parts.push(json_part(
            LogicalPath::file(segs(["reference", folder, id]), Some("json")),
            value,
        ));
        r
    }

    /// Reference only: a cluster (§6.6).
    pub fn cluster(c: &Cluster) -> Self {
        Self::reference(
            Kind::Cluster,
            "clusters",
            &c.cluster_id,
            &c.cluster_name,
            c,
            json!({}),
        )
    }

    /// Reference only: an instance pool (§6.6).
    pub fn instance_pool(p: &InstancePool) -> Self {
        Self::reference(
            Kind::InstancePool,
            "instance-pools",
            &p.instance_pool_id,
            &p.instance_pool_name,
            p,
            json!({}),
        )
    }

    /// Reference only: a cluster policy (§6.6).
    pub fn cluster_policy(p: &ClusterPolicy) -> Self {
        Self::reference(
            Kind::ClusterPolicy,
            "cluster-policies",
            &p.policy_id,
            &p.name,
            p,
            json!({}),
        )
    }

    /// Reference only: a SQL warehouse (§6.6).
    pub fn warehouse(w: &Warehouse) -> Self {
        Self::reference(Kind::Warehouse, "warehouses", &w.id, &w.name, w, json!({}))
    }

    /// Reference only: a DBFS mount (§6.6).
    pub fn mount(m: &Mount) -> Self {
        let mut r = Resource::new(
            Kind::Mount,
            &m.mount_point,
            &m.mount_point,
            json!({ "id": m.mount_point, "name": m.mount_point, "source": m.source }),
        );
        let mut s = segs(["reference", "mounts"]);
        s.extend(
            m.mount_point
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        );
        if s.len() == 2 {
            s.push("root".into());
        }
        r.parts
            .push(json_part(LogicalPath::file(s, Some("json")), m));
        r
    }

    fn principal(
        kind_folder: &str,
        principal_type: &str,
        id: &str,
        name: &str,
        value: &impl Serialize,
    ) -> Self {
        let mut r = Resource::new(
            Kind::Principal,
            id,
            name,
            json!({ "id": id, "name": name, "principal_type": principal_type }),
        );
        r.parts.push(json_part(
            LogicalPath::file(
                segs(["reference", "principals", kind_folder, name]),
                Some("json"),
            ),
            value,
        ));
        r
    }

    /// Reference only: a user (§6.6).
    pub fn user(u: &User) -> Self {
        Self::principal("users", "user", &u.id, &u.user_name, u)
    }

    /// Reference only: a group (§6.6).
    pub fn group(g: &Group) -> Self {
        Self::principal("groups", "group", &g.id, &g.display_name, g)
    }

    /// Reference only: a service principal (§6.6).
    pub fn service_principal(sp: &ServicePrincipal) -> Self {
        Self::principal(
            "service-principals",
            "service_principal",
            &sp.id,
            &sp.application_id,
            sp,
        )
    }
}
