//! The inputs of the golden bundle `fixtures/bundles/golden-v1.2.zip`: one small resource of
//! every kind, built in code, plus secret values sealed once with the fixture key (age sealing
//! is randomized, so the sealed bytes are inputs too, kept in `golden-v1.sealed/`).
//!
//! `golden-v1.zip` is the same export written as format 1.0.0 (its `model_version` record has
//! no artifact summary). It is frozen: no writer reproduces it any more, and every reader must
//! keep accepting it (spec §14). `golden-v1.1.zip` is frozen the same way (format 1.1: no
//! `code_references`). All share the key and the sealed inputs.
//!
//! Regenerate the current one with `DBXPORT_BLESS=1 cargo test --test it bundle_golden`.
#![allow(dead_code)]

use dbxport::bundle::resource::{Content, Resource};
use dbxport::bundle::{BagSettings, Opener, Sealer, Source};
use dbxport::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
use dbxport::model::grants::{HiveGrant, HiveObjectType, PrivilegeAssignment, UcGrants};
use dbxport::model::job::Job;
use dbxport::model::mlflow::{ModelVersion, RegisteredModel};
use dbxport::model::permissions::{AccessControl, ObjectPermissions, Permission, PrincipalRef};
use dbxport::model::principal::{Group, ScimRef, ServicePrincipal, User};
use dbxport::model::repo::Repo;
use dbxport::model::scan::{scan, ScanContext};
use dbxport::model::secret::{
    AclItem, AclPermission, KeyVaultMetadata, ScopeBackend, SecretMetadata, SecretScope,
    ValueEncoding,
};
use dbxport::model::workspace::{Format, Language, ObjectInfo, ObjectType};
use dbxport::model::KeyValue;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The fixture folder.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundles")
}
/// The frozen format 1.0 golden bundle.
pub fn bundle_path() -> PathBuf {
    dir().join("golden-v1.zip")
}
/// Its expected `inspect --json` output.
pub fn inspect_path() -> PathBuf {
    dir().join("golden-v1.inspect.json")
}
/// The golden bundle today's writer reproduces (format 1.2).
pub fn current_path() -> PathBuf {
    dir().join("golden-v1.2.zip")
}
/// Its expected `inspect --json` output.
pub fn current_inspect_path() -> PathBuf {
    dir().join("golden-v1.2.inspect.json")
}
/// The frozen format 1.1 golden bundle (no `code_references`).
pub fn v1_1_path() -> PathBuf {
    dir().join("golden-v1.1.zip")
}
/// Its expected `inspect --json` output.
pub fn v1_1_inspect_path() -> PathBuf {
    dir().join("golden-v1.1.inspect.json")
}
/// The fixture identity (a test key, public on purpose).
pub fn key_path() -> PathBuf {
    dir().join("golden-v1.key")
}
/// The sealed inputs.
pub fn sealed_dir() -> PathBuf {
    dir().join("golden-v1.sealed")
}

/// The fixed settings (§9 inputs): name, id, time, source, options.
pub fn settings() -> BagSettings {
    BagSettings {
        bag_name: "dbxport-golden-v1".into(),
        bundle_id: "5f0c2a9e-7b1d-4c3e-9a8f-2d6b4e1c0a73".into(),
        created: time::macros::datetime!(2026-01-15 09:30:00 UTC),
        source: Source {
            host: "https://adb-1234567890123456.7.azuredatabricks.net".into(),
            workspace_id: "1234567890123456".into(),
        },
        options: json!({"include": ["all"], "notebook_formats": ["SOURCE", "JUPYTER"]}),
    }
}

/// The plaintext secret values: `(scope, key, value, encoding)`.
pub fn secret_values() -> Vec<(&'static str, &'static str, Vec<u8>, ValueEncoding)> {
    vec![
        (
            "etl",
            "db-password",
            b"hunter2-golden".to_vec(),
            ValueEncoding::String,
        ),
        (
            "etl",
            "TLS.cert",
            vec![0, 1, 2, 254, 255, b'\n'],
            ValueEncoding::Bytes,
        ),
    ]
}

/// The fixture key's recipient.
pub fn recipient() -> String {
    let text = std::fs::read_to_string(key_path()).expect("fixture key exists");
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("key file names its public key")
        .to_string()
}

/// An opener holding the fixture key.
pub fn opener() -> Opener {
    let mut o = Opener::new();
    o.add_identity_file(&key_path()).unwrap();
    o
}

/// A sealer to the fixture key.
pub fn sealer() -> Sealer {
    Sealer::to_recipients(&[recipient()]).unwrap()
}

/// Creates the key and sealed inputs if they are missing (only when blessing).
pub fn ensure_sealed_inputs() {
    if !key_path().exists() {
        let (text, _) = dbxport::bundle::seal::generate_identity("2026-01-15T09:30:00Z");
        std::fs::write(key_path(), text.as_bytes()).unwrap();
    }
    let s = sealer();
    let etl = sealed_dir().join("etl");
    std::fs::create_dir_all(&etl).unwrap();
    let mut index = BTreeMap::new();
    for (_, key, value, enc) in secret_values() {
        let p = etl.join(format!("{key}.age"));
        if !p.exists() {
            std::fs::write(&p, s.seal(&value).unwrap()).unwrap();
        }
        index.insert(
            key.to_string(),
            json!({
                "encoding": match enc { ValueEncoding::String => "string", ValueEncoding::Bytes => "bytes" },
                "sha256": dbxport::bundle::digest::sha256_hex(&value),
                "size": value.len(),
            }),
        );
    }
    let p = etl.join("digests.json.age");
    if !p.exists() {
        let doc = json!({"format": "dbxport-sealed-digests", "scope": "etl", "values": index});
        let bytes = dbxport::bundle::json::to_canonical_bytes(&doc).unwrap();
        std::fs::write(&p, s.seal(&bytes).unwrap()).unwrap();
    }
}

fn sealed(name: &str) -> Vec<u8> {
    std::fs::read(sealed_dir().join("etl").join(name)).expect("sealed inputs exist")
}

fn obj(t: ObjectType, path: &str, id: i64, lang: Option<Language>) -> ObjectInfo {
    ObjectInfo {
        object_type: t,
        path: path.into(),
        object_id: id,
        language: lang,
        created_at: Some(1_767_000_000_000),
        modified_at: Some(1_767_100_000_000),
        size: None,
        resource_id: None,
        directory_info: None,
    }
}

/// The ids of the golden workspace, as export's scanner knows them.
fn scan_context() -> ScanContext {
    ScanContext {
        cluster_ids: vec!["0115-093000-abcd1234".into()],
        job_ids: vec![42, 43],
        warehouse_ids: vec!["a1b2c3d4e5f60718".into()],
    }
}

/// A notebook as export writes it: its source scanned (format 1.2, `meta.code_references`).
fn notebook(info: &ObjectInfo, exports: Vec<(Format, Content)>) -> Resource {
    let findings = match &exports[0].1 {
        Content::Bytes(b) => scan(&info.path, b, &scan_context()),
        _ => Vec::new(),
    };
    Resource::notebook_scanned(info, exports, Some(&findings))
}

/// A workspace file as export writes it: scanned.
fn workspace_file(info: &ObjectInfo, content: Content) -> Resource {
    let findings = match &content {
        Content::Bytes(b) => scan(&info.path, b, &scan_context()),
        _ => Vec::new(),
    };
    Resource::workspace_file_scanned(info, content, Some(&findings))
}

fn src(lang: Language, body: &str) -> Content {
    Content::Bytes(format!("{}\n{body}\n", lang.source_header()).into_bytes())
}

/// Deterministic incompressible bytes (a tiny xorshift), to exercise Stored entries.
pub fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// The Git folder.
pub fn repo() -> Repo {
    Repo {
        id: 2000,
        path: Some("/Repos/alice@example.org/project".into()),
        url: "https://github.com/example/project.git".into(),
        provider: "gitHub".into(),
        branch: Some("main".into()),
        head_commit_id: Some("0123456789abcdef0123456789abcdef01234567".into()),
        sparse_checkout: None,
    }
}

/// The job (its second task runs a job the bundle does not hold).
pub fn job() -> Job {
    Job {
            job_id: 42,
            creator_user_name: Some("alice@example.org".into()),
            run_as_user_name: Some("alice@example.org".into()),
            created_time: Some(1_767_000_000_000),
            settings: json!({
                "name": "nightly etl",
                "max_concurrent_runs": 1,
                "tasks": [
                    {"task_key": "load", "existing_cluster_id": "0115-093000-abcd1234",
                     "notebook_task": {"notebook_path": "/Users/alice@example.org/etl/Load: daily", "source": "WORKSPACE"}},
                    {"task_key": "report", "depends_on": [{"task_key": "load"}], "run_job_task": {"job_id": 43}}
                ]
            })
            .as_object()
            .unwrap()
            .clone(),
        }
}

/// The Unity Catalog grants.
pub fn uc_grants() -> UcGrants {
    UcGrants {
        securable_type: "catalog".into(),
        full_name: "main".into(),
        privilege_assignments: vec![PrivilegeAssignment {
            principal: "analysts".into(),
            privileges: vec!["USE_CATALOG".into()],
        }],
    }
}

/// The registered model.
pub fn model() -> RegisteredModel {
    RegisteredModel {
        name: "churn".into(),
        creation_timestamp: Some(1_767_000_000_000),
        last_updated_timestamp: Some(1_767_000_000_000),
        user_id: Some("alice@example.org".into()),
        description: Some("churn classifier".into()),
        latest_versions: vec![],
        tags: vec![KeyValue {
            key: "team".into(),
            value: "growth".into(),
        }],
        aliases: vec![],
        owner: None,
    }
}

/// The cluster.
pub fn cluster() -> Cluster {
    Cluster {
            cluster_id: "0115-093000-abcd1234".into(),
            cluster_name: "shared etl".into(),
            spec: json!({"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2})
                .as_object().unwrap().clone(),
        }
}

/// The instance pool.
pub fn pool() -> InstancePool {
    InstancePool {
        instance_pool_id: "0115-pool-xyz".into(),
        instance_pool_name: "small nodes".into(),
        spec: json!({"node_type_id": "Standard_DS3_v2", "min_idle_instances": 0})
            .as_object()
            .unwrap()
            .clone(),
    }
}

/// The cluster policy.
pub fn policy() -> ClusterPolicy {
    ClusterPolicy {
            policy_id: "ABC123DEF456".into(),
            name: "personal compute".into(),
            spec: json!({"definition": "{\"spark_version\":{\"type\":\"fixed\",\"value\":\"auto:latest\"}}"})
                .as_object().unwrap().clone(),
        }
}

/// The SQL warehouse.
pub fn warehouse() -> Warehouse {
    Warehouse {
        id: "a1b2c3d4e5f60718".into(),
        name: "Starter Warehouse".into(),
        spec: json!({"cluster_size": "2X-Small", "auto_stop_mins": 10})
            .as_object()
            .unwrap()
            .clone(),
    }
}

/// The mount.
pub fn mount() -> Mount {
    Mount {
        mount_point: "/mnt/raw".into(),
        source: "abfss://raw@lake.dfs.core.windows.net/".into(),
        encryption_type: None,
    }
}

/// The user.
pub fn user() -> User {
    User {
        id: "7001".into(),
        user_name: "alice@example.org".into(),
        display_name: Some("Alice".into()),
        active: true,
        emails: vec![ScimRef {
            value: "alice@example.org".into(),
            display: None,
            primary: Some(true),
        }],
        groups: vec![ScimRef {
            value: "8001".into(),
            display: Some("analysts".into()),
            primary: None,
        }],
        entitlements: vec![],
    }
}

/// The group.
pub fn group() -> Group {
    Group {
        id: "8001".into(),
        display_name: "analysts".into(),
        members: vec![ScimRef {
            value: "7001".into(),
            display: Some("alice@example.org".into()),
            primary: None,
        }],
        entitlements: vec![],
    }
}

/// The service principal.
pub fn service_principal() -> ServicePrincipal {
    ServicePrincipal {
        id: "9001".into(),
        application_id: "6f1e2d3c-4b5a-6978-8899-aabbccddeeff".into(),
        display_name: Some("etl-bot".into()),
        active: true,
    }
}

/// The model version.
pub fn version() -> ModelVersion {
    ModelVersion {
        name: "churn".into(),
        version: "1".into(),
        creation_timestamp: Some(1_767_000_000_000),
        last_updated_timestamp: None,
        user_id: Some("alice@example.org".into()),
        current_stage: Some("Production".into()),
        description: None,
        source: Some("dbfs:/databricks/mlflow-registry/abc/models/churn/1".into()),
        run_id: Some("9f8e7d6c5b4a".into()),
        run_link: None,
        status: Some("READY".into()),
        status_message: None,
        tags: vec![],
        aliases: vec!["champion".into()],
        run_tracking_server_id: None,
    }
}

/// The notebook `/Users/alice@example.org/Report`'s permissions.
pub fn notebook_permissions() -> ObjectPermissions {
    ObjectPermissions {
        object_id: "/notebooks/1011".into(),
        object_type: "notebook".into(),
        access_control_list: vec![AccessControl {
            principal: PrincipalRef::GroupName("analysts".into()),
            display_name: None,
            all_permissions: vec![Permission {
                permission_level: "CAN_RUN".into(),
                inherited: false,
                inherited_from_object: None,
            }],
        }],
    }
}

/// The job's permissions.
pub fn job_permissions() -> ObjectPermissions {
    ObjectPermissions {
        object_id: "/jobs/42".into(),
        object_type: "job".into(),
        access_control_list: vec![AccessControl {
            principal: PrincipalRef::UserName("alice@example.org".into()),
            display_name: Some("Alice".into()),
            all_permissions: vec![Permission {
                permission_level: "IS_OWNER".into(),
                inherited: false,
                inherited_from_object: None,
            }],
        }],
    }
}

/// The grants on the table `sales.orders`, unsorted.
pub fn table_grants() -> Vec<HiveGrant> {
    vec![
        HiveGrant {
            principal: "analysts".into(),
            action_type: "SELECT".into(),
            object_type: HiveObjectType::Table,
            object_key: "sales.orders".into(),
        },
        HiveGrant {
            principal: "interns".into(),
            action_type: "DENIED_SELECT".into(),
            object_type: HiveObjectType::Table,
            object_key: "sales.orders".into(),
        },
    ]
}

/// The grants on the catalog.
pub fn catalog_grants() -> Vec<HiveGrant> {
    vec![HiveGrant {
        principal: "admins".into(),
        action_type: "OWN".into(),
        object_type: HiveObjectType::Catalog,
        object_key: String::new(),
    }]
}

/// The Databricks-backed scope `etl`: its ACL (unsorted) and its keys, in the order of
/// [`secret_values`].
pub fn etl_scope() -> (SecretScope, Vec<AclItem>, Vec<SecretMetadata>) {
    let etl = SecretScope {
        name: "etl".into(),
        backend_type: ScopeBackend::Databricks,
        keyvault_metadata: None,
    };
    let acls = vec![
        AclItem {
            principal: "users".into(),
            permission: AclPermission::Read,
        },
        AclItem {
            principal: "alice@example.org".into(),
            permission: AclPermission::Manage,
        },
    ];
    let keys = secret_values()
        .into_iter()
        .map(|(_, key, _, _)| SecretMetadata {
            key: key.into(),
            last_updated_timestamp: Some(1_767_000_000_000),
        })
        .collect();
    (etl, acls, keys)
}

/// The Key Vault-backed scope `kv`: no ACL, one key.
pub fn kv_scope() -> (SecretScope, Vec<AclItem>, Vec<SecretMetadata>) {
    let kv = SecretScope {
        name: "kv".into(),
        backend_type: ScopeBackend::AzureKeyvault,
        keyvault_metadata: Some(KeyVaultMetadata {
            resource_id:
                "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
                    .into(),
            dns_name: "https://kv.vault.azure.net/".into(),
        }),
    };
    let key = SecretMetadata {
        key: "storage-key".into(),
        last_updated_timestamp: None,
    };
    (kv, Vec::new(), vec![key])
}

/// Every resource of the golden bundle, one or more of each kind.
pub fn resources() -> Vec<Resource> {
    let alice = "/Users/alice@example.org";
    let mlmodel =
        b"artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
            .to_vec();
    let pickle = noise(6_000, 7);
    let sha = dbxport::bundle::digest::sha256_hex;
    let (mlmodel_sha, pickle_sha) = (sha(&mlmodel), sha(&pickle));
    let artifacts = [
        ("MLmodel", mlmodel_sha.as_str(), mlmodel.len() as u64),
        ("model.pkl", pickle_sha.as_str(), pickle.len() as u64),
    ];
    let mut v = vec![
        Resource::directory(alice, 1000),
        Resource::directory(&format!("{alice}/etl"), 1001),
        Resource::directory(&format!("{alice}/empty"), 1002),
        Resource::directory("/Shared", 1003),
        notebook(
            &obj(ObjectType::Notebook, &format!("{alice}/etl/Load: daily"), 1010, Some(Language::Python)),
            vec![
                (Format::Source, src(Language::Python, "# COMMAND ----------\nprint('load')\ndf = spark.read.csv('/mnt/raw/orders.csv')")),
                (
                    Format::Jupyter,
                    Content::Bytes(
                        serde_json::to_vec_pretty(&json!({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
                            .unwrap(),
                    ),
                ),
            ],
        )
        .with_notes(["outputs dropped from the JUPYTER export: over the 10 MB export limit"]),
        notebook(
            &obj(ObjectType::Notebook, &format!("{alice}/Report"), 1011, Some(Language::Python)),
            vec![(Format::Source, src(Language::Python, "display(spark.table('sales.orders'))"))],
        ),
        notebook(
            &obj(ObjectType::Notebook, &format!("{alice}/report"), 1012, Some(Language::Python)),
            vec![(Format::Source, src(Language::Python, "print('lowercase twin')"))],
        ),
        notebook(
            &obj(ObjectType::Notebook, &format!("{alice}/etl/Transform"), 1013, Some(Language::Scala)),
            vec![(Format::Source, src(Language::Scala, "val x = 1"))],
        ),
        notebook(
            &obj(ObjectType::Notebook, "/Shared/Dashboard queries", 1014, Some(Language::Sql)),
            vec![(Format::Source, src(Language::Sql, "SELECT 1"))],
        ),
        notebook(
            &obj(ObjectType::Notebook, "/Shared/Données/analyse", 1015, Some(Language::R)),
            vec![(Format::Source, src(Language::R, "summary(cars)"))],
        ),
        workspace_file(
            &obj(ObjectType::File, &format!("{alice}/etl/config.yaml"), 1020, None),
            Content::Bytes(b"source: abfss://raw@lake.dfs.core.windows.net/\nmode: append\n".to_vec()),
        ),
        workspace_file(
            &obj(ObjectType::File, "/Shared/CON.csv", 1021, None),
            Content::Bytes(b"id,amount\n1,10\n2,20\n".repeat(50)),
        ),
        Resource::repo(&repo()),
        Resource::job(&job()),
        Resource::permissions(
            "notebooks",
            "1011",
            Some("/Users/alice@example.org/Report"),
            &notebook_permissions(),
        ),
        Resource::permissions(
            "jobs",
            "42",
            Some("nightly etl"),
            &job_permissions(),
        ),
        Resource::hive_grants(
            HiveObjectType::Table,
            "sales.orders",
            &table_grants(),
        ),
        Resource::hive_grants(
            HiveObjectType::Catalog,
            "",
            &catalog_grants(),
        ),
        Resource::uc_grants(&uc_grants()),
        Resource::registered_model(&model()),
        Resource::model_version(&version(), artifacts, true),
        Resource::model_artifact("churn", "1", "MLmodel", Content::Bytes(mlmodel)),
        Resource::model_artifact("churn", "1", "model.pkl", Content::Bytes(pickle)),
        Resource::cluster(&cluster()),
        Resource::instance_pool(&pool()),
        Resource::cluster_policy(&policy()),
        Resource::warehouse(&warehouse()),
        Resource::mount(&mount()),
        Resource::user(&user()),
        Resource::group(&group()),
        Resource::service_principal(&service_principal()),
    ];
    // Secrets: a Databricks scope with two sealed values, a Key Vault scope whose value could
    // not be read.
    let (etl, acls, keys) = etl_scope();
    for ((scope, key, _, enc), meta) in secret_values().into_iter().zip(&keys) {
        assert_eq!(key, meta.key);
        v.push(Resource::secret(
            scope,
            meta,
            enc,
            Some(sealed(&format!("{key}.age"))),
        ));
    }
    v.push(Resource::secret_scope(
        &etl,
        &acls,
        &keys,
        Some(sealed("digests.json.age")),
    ));
    let (kv, _, kv_keys) = kv_scope();
    v.push(
        Resource::secret("kv", &kv_keys[0], ValueEncoding::String, None)
            .with_notes(["value not exported: the server refused secrets/get (PERMISSION_DENIED)"]),
    );
    v.push(Resource::secret_scope(&kv, &[], &kv_keys, None));
    v
}

/// The extra tag file the golden bundle carries.
pub fn extra_tags() -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    m.insert(
        "export-report.json".to_string(),
        b"{\n  \"exported\": 38,\n  \"failed\": 0\n}\n".to_vec(),
    );
    m
}

/// True when the fixtures should be rewritten.
pub fn blessing() -> bool {
    std::env::var("DBXPORT_BLESS").is_ok_and(|v| v == "1")
}

/// Reads a fixture file, with a hint when it is missing.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run `DBXPORT_BLESS=1 cargo test --test it bundle_golden` to create it",
            path.display()
        )
    })
}
