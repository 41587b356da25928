//! The golden bundles. The current one (format 1.2): rebuilt from its inputs by both writers it
//! must be identical byte for byte (determinism, spec §9). It and the frozen format 1.1 and 1.0
//! ones: `inspect --json` must match the recorded output; they verify; unpack then pack must
//! reproduce them; their inventories must satisfy the JSON Schema (spec §14: a reader keeps
//! reading every 1.x bundle).

use crate::common;
use crate::support::golden;
use crate::support::schema;

use dbxport::bundle::{pack, unpack, verify_file, write_bundle, BagBuilder, PackOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// Every golden bundle: the current one, then the frozen 1.1 and 1.0 ones.
fn goldens() -> [(PathBuf, PathBuf); 3] {
    [
        (golden::current_path(), golden::current_inspect_path()),
        (golden::v1_1_path(), golden::v1_1_inspect_path()),
        (golden::bundle_path(), golden::inspect_path()),
    ]
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    format!(
        "lengths {} and {}, first difference at byte {at}",
        a.len(),
        b.len()
    )
}

fn stream_build() -> Vec<u8> {
    write_bundle(
        Vec::new(),
        &golden::settings(),
        Some(golden::sealer().sealing()),
        golden::resources(),
        golden::extra_tags(),
    )
    .unwrap()
    .0
}

#[test]
fn golden_bundle_is_rebuilt_byte_for_byte() {
    if golden::blessing() {
        golden::ensure_sealed_inputs();
        let bytes = stream_build();
        std::fs::write(golden::current_path(), &bytes).unwrap();
        let report = dbxport::bundle::inspect(&golden::current_path(), None).unwrap();
        let mut json = serde_json::to_vec_pretty(&report).unwrap();
        json.push(b'\n');
        std::fs::write(golden::current_inspect_path(), json).unwrap();
    }
    let want = golden::read(&golden::current_path());
    let got = stream_build();
    assert!(
        got == want,
        "the writer no longer reproduces {} ({}).\n\
         If the tool version changed on purpose, regenerate it with\n\
         `DBXPORT_BLESS=1 cargo test --test it bundle_golden` and review the diff. If the\n\
         format changed, bump its minor version (spec §14.3) and add a new golden bundle\n\
         instead: the old one stays, for the reader.",
        golden::current_path().display(),
        first_difference(&got, &want)
    );
}

/// The golden resources staged the way an export stages them: two threads, arrival order
/// reversed, extra tag files last.
fn staged_golden(root: &std::path::Path) -> BagBuilder {
    let settings = golden::settings();
    let bag = root.join(&settings.bag_name);
    let builder = Arc::new(BagBuilder::create(&bag, settings, Some(golden::sealer())).unwrap());
    // Arrival order must not matter: two threads, reversed halves.
    let mut all = golden::resources();
    all.reverse();
    let second = all.split_off(all.len() / 2);
    let handles: Vec<_> = [all, second]
        .into_iter()
        .map(|chunk| {
            let b = Arc::clone(&builder);
            std::thread::spawn(move || {
                for r in chunk {
                    b.add(r).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for (name, bytes) in golden::extra_tags() {
        builder.add_tag_file(&name, &bytes).unwrap();
    }
    Arc::try_unwrap(builder).ok().unwrap()
}

#[test]
fn staged_builder_then_pack_gives_the_same_bytes() {
    let want = golden::read(&golden::current_path());
    let tmp = tempfile::tempdir().unwrap();
    let dir = staged_golden(tmp.path()).finalize().unwrap();
    let out = tmp.path().join("staged.zip");
    pack(&dir, &out, &PackOptions::default()).unwrap();
    let got = std::fs::read(&out).unwrap();
    assert!(
        got == want,
        "staged + pack differs from the golden bundle: {}",
        first_difference(&got, &want)
    );
}

/// Export's path: the bundle written straight from the staged files, no bag folder between.
#[test]
fn staged_builder_written_directly_gives_the_same_bytes() {
    let want = golden::read(&golden::current_path());
    let tmp = tempfile::tempdir().unwrap();
    let builder = staged_golden(tmp.path());
    let out = tmp.path().join("direct.zip");
    let summary = builder.write_bundle_file(&out, None, false).unwrap();
    let got = std::fs::read(&out).unwrap();
    assert!(
        got == want,
        "staged + direct write differs from the golden bundle: {}",
        first_difference(&got, &want)
    );
    assert_eq!(summary.bytes, want.len() as u64);
}

#[test]
fn inspect_json_matches_the_recorded_output() {
    for (bundle, inspect) in goldens() {
        inspect_matches(&bundle, &inspect);
    }
}

fn inspect_matches(bundle: &std::path::Path, inspect: &std::path::Path) {
    let want: serde_json::Value = serde_json::from_slice(&golden::read(inspect)).unwrap();
    let out = std::process::Command::new(common::dbxport_bin())
        .args(["inspect", "--json"])
        .arg(bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, want);
    // Every kind of the resource model is present.
    let kinds: Vec<&str> = got["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    for k in dbxport::model::Kind::ALL {
        assert!(kinds.contains(&k.as_str()), "golden bundle lacks kind {k}");
    }
    assert_eq!(got["sealed"]["values"], 2);
    assert_eq!(got["sealed"]["recipients"], 1);
}

#[test]
fn golden_verifies_with_and_without_the_key() {
    for (bundle, _) in goldens() {
        verifies(&bundle);
    }
}

fn verifies(bundle: &std::path::Path) {
    let plain = verify_file(bundle, None).unwrap();
    assert!(plain.ok, "{}: {:#?}", bundle.display(), plain.problems);
    assert_eq!(plain.sealed_opened, 0);
    let opener = golden::opener();
    let keyed = verify_file(bundle, Some(&opener)).unwrap();
    assert!(keyed.ok, "{:#?}", keyed.problems);
    assert_eq!(keyed.sealed_opened, 3, "one digest index and two values");
    let mut b = dbxport::bundle::Bundle::open(bundle, None).unwrap();
    let records = b.inventory().records.clone();
    for (scope, key, value, _) in golden::secret_values() {
        let r = records
            .iter()
            .find(|r| r.name == format!("{scope}/{key}"))
            .unwrap();
        assert_eq!(&b.unseal(r, &opener).unwrap()[..], &value[..]);
    }
}

#[test]
fn unpack_then_pack_reproduces_the_bundle() {
    for (bundle, _) in goldens() {
        unpack_pack(&bundle);
    }
}

fn unpack_pack(bundle: &std::path::Path) {
    let want = golden::read(bundle);
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    let opener = golden::opener();
    let s = unpack(bundle, &target, Some(&opener), false).unwrap();
    assert_eq!(s.secrets_opened, 2);
    let bag = target.join("dbxport-golden-v1");
    assert!(bag.join("INVENTORY.md").is_file());
    assert!(bag
        .join("data/workspace/Users/alice@example.org/etl")
        .is_dir());
    assert!(bag
        .join("data/workspace/Users/alice@example.org/empty")
        .is_dir());
    let pw = target.join("secrets/etl/db-password");
    assert_eq!(std::fs::read(&pw).unwrap(), b"hunter2-golden");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&pw), 0o600);
        assert_eq!(mode(&target.join("secrets")), 0o700);
        assert_eq!(mode(&target.join("secrets/etl")), 0o700);
    }
    let again = tmp.path().join("again.zip");
    // The unpack folder holds the bag and secrets/; pack finds the bag in it.
    pack(&target, &again, &PackOptions::default()).unwrap();
    let got = std::fs::read(&again).unwrap();
    assert!(
        got == want,
        "unpack + pack differs: {}",
        first_difference(&got, &want)
    );
}

#[test]
fn golden_inventory_satisfies_the_schema() {
    for (bundle, _) in goldens() {
        schema::assert_bundle_inventory_valid(&bundle);
    }
}

/// Format 1.1 made a version's artifact summary required (spec §6.5, §14.3): the current
/// golden has it and is what this code writes; the 1.0 golden lacks it and still reads, and
/// the models importer takes its version as complete.
#[test]
fn version_meta_follows_the_format_version() {
    use dbxport::bundle::inventory::{FORMAT_VERSION, MODEL_VERSION_META_1_1};
    use dbxport::model::Kind;
    for (bundle, version, has_keys) in [
        (golden::current_path(), FORMAT_VERSION, true),
        (golden::v1_1_path(), "1.1.0", true),
        (golden::bundle_path(), "1.0.0", false),
    ] {
        let b = dbxport::bundle::Bundle::open(&bundle, None).unwrap();
        let inv = b.inventory();
        assert_eq!(inv.format_version, version, "{}", bundle.display());
        let v = inv
            .records
            .iter()
            .find(|r| r.kind == Kind::ModelVersion)
            .unwrap();
        for k in MODEL_VERSION_META_1_1 {
            assert_eq!(
                v.meta.get(k).is_some(),
                has_keys,
                "{}: {k}",
                bundle.display()
            );
        }
        let models = dbxport::models::manifest::collect(inv).unwrap();
        let version = &models[0].versions[0];
        assert!(version.complete, "{}", bundle.display());
        assert_eq!(version.artifacts.len(), 2);
        if has_keys {
            assert_eq!(
                v.meta_str("artifacts_sha256"),
                Some(version.manifest_digest().as_str())
            );
            assert_eq!(v.meta["artifact_count"], 2);
            assert_eq!(v.meta["artifact_bytes"], version.bytes());
            assert_eq!(v.meta["complete"], true);
        }
    }
}

/// A 1.1 bundle whose version lacks any key of its artifact summary is refused (E300, the
/// schema's rule), by `verify` and by `open` alike.
#[test]
fn a_1_1_version_without_its_artifact_summary_is_refused() {
    use dbxport::bundle::inventory::MODEL_VERSION_META_1_1;
    use dbxport::model::Kind;
    let tmp = tempfile::tempdir().unwrap();
    for key in MODEL_VERSION_META_1_1 {
        let mut resources = golden::resources();
        for r in resources
            .iter_mut()
            .filter(|r| r.kind == Kind::ModelVersion)
        {
            r.meta.as_object_mut().unwrap().remove(key);
        }
        let path = tmp.path().join(format!("{key}.zip"));
        let file = std::fs::File::create(&path).unwrap();
        write_bundle(
            file,
            &golden::settings(),
            Some(golden::sealer().sealing()),
            resources,
            golden::extra_tags(),
        )
        .unwrap();
        let report = verify_file(&path, None).unwrap();
        assert!(!report.ok, "{key}");
        let p = &report.problems[0];
        assert_eq!(p.code().code(), "E300", "{key}: {p}");
        assert!(p.detail().contains(key), "{key}: {p}");
        let e = dbxport::bundle::Bundle::open(&path, None).err().unwrap();
        assert_eq!(e.code().code(), "E300", "{key}");
    }
}

#[test]
fn text_is_deflated_and_incompressible_data_stored() {
    let mut f = std::fs::File::open(golden::current_path()).unwrap();
    let idx = dbxport::bundle::container::read_index(&mut f).unwrap();
    let method = |suffix: &str| {
        idx.entries
            .iter()
            .find(|e| idx.name(e).ends_with(suffix))
            .unwrap()
            .method
    };
    assert_eq!(method("dbxport.json"), 8, "JSON text is deflated");
    assert_eq!(method("manifest-sha256.txt"), 8);
    assert_eq!(method("artifacts/model.pkl"), 0, "random bytes are stored");
    assert_eq!(
        method("values/db-password.age"),
        0,
        "sealed bytes are stored"
    );
}

/// Issue #10: every golden bundle — the current one and the frozen 1.1 and 1.0 ones — imports
/// into a fresh workspace (jobs and table grants left out: the golden job runs a job the bundle
/// does not hold, and grants need a SQL warehouse), and a second import writes nothing.
#[test]
fn every_golden_bundle_imports_and_reimports_as_unchanged() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map.toml");
    std::fs::write(&map, "unmapped_principals = \"drop\"\n").unwrap();
    for (fixture, _) in goldens() {
        // A copy: import keeps its journal beside the bundle, never in the fixtures.
        let bundle = dir.path().join(fixture.file_name().unwrap());
        std::fs::copy(&fixture, &bundle).unwrap();
        let emu = rt
            .block_on(dbxport::emulator::Emulator::start(
                dbxport::emulator::EmulatorConfig::default(),
            ))
            .unwrap();
        let import = || {
            let out = std::process::Command::new(common::dbxport_bin())
                .arg("import")
                .arg(&bundle)
                .arg("--identity")
                .arg(golden::key_path())
                .arg("--map")
                .arg(&map)
                .args(["--exclude", "job,hive_grants,uc_grants", "--json"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", dir.path())
                .env("DATABRICKS_HOST", emu.url())
                .env("DATABRICKS_TOKEN", emu.admin_token())
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}\n{}",
                    bundle.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            (out.status.code(), v["report"].clone())
        };
        let outcomes = |r: &serde_json::Value, o: &str| {
            r["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["outcome"] == o)
                .count()
        };
        let (code, first) = import();
        assert_eq!(code, Some(0), "{}: {first}", bundle.display());
        assert!(
            outcomes(&first, "created") >= 15,
            "{}: {first}",
            bundle.display()
        );
        assert_eq!(outcomes(&first, "failed"), 0, "{}", bundle.display());
        let (code, again) = import();
        assert_eq!(code, Some(0), "{}", bundle.display());
        assert_eq!(
            again["mutating_requests"],
            0,
            "{}: {again}",
            bundle.display()
        );
        assert_eq!(outcomes(&again, "created"), 0, "{}", bundle.display());
    }
}

/// A local header must repeat its central record's version and time (E105): a flipped byte
/// there changed nothing a digest covers, so `import_poc`'s "one byte flipped" test passed or
/// failed by where the byte fell.
#[test]
fn a_local_header_time_or_version_that_differs_is_refused() {
    let original = golden::read(&golden::current_path());
    let tmp = tempfile::tempdir().unwrap();
    for field in [4usize, 10, 12] {
        let mut b = original.clone();
        b[field] ^= 0x5a; // the first entry's local header starts at 0
        let path = tmp.path().join(format!("f{field}.zip"));
        std::fs::write(&path, &b).unwrap();
        let report = verify_file(&path, None).unwrap();
        assert!(!report.ok, "byte {field}");
        assert_eq!(report.problems[0].code().code(), "E105", "byte {field}");
    }
}

/// One payload file of the golden bundle against its format type: the wire value export had,
/// converted (`to_file`, export's conversion) and written as canonical JSON, is the golden's
/// bytes exactly; those bytes, read as the format type and converted back (import's
/// conversion), give the wire value again.
fn payload_case<F, W>(what: &str, golden_bytes: &[u8], to_file: impl Fn(&W) -> F, wire: W)
where
    F: dbxport::kinds::format::PayloadFile<Wire = W>,
    W: PartialEq + std::fmt::Debug,
{
    let written = dbxport::bundle::json::to_canonical_bytes(&to_file(&wire)).unwrap();
    assert!(
        written == golden_bytes,
        "{what}: the format type writes\n{}\nthe golden holds\n{}",
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(golden_bytes)
    );
    let read: F = serde_json::from_slice(golden_bytes)
        .unwrap_or_else(|e| panic!("{what}: the golden's file is not its format type: {e}"));
    assert_eq!(read.into_wire(), wire, "{what}: read back");
}

/// Issue #10, "the format is its own": every JSON payload file of the golden bundle is written
/// from its kind's format type and read back through it, byte for byte (one case per file;
/// a JSON payload the table does not cover fails the test).
#[test]
fn every_json_payload_is_its_format_type_byte_for_byte() {
    use dbxport::kinds::grants::format::{HiveGrantsFile, UcGrantsFile};
    use dbxport::kinds::job::format::JobFile;
    use dbxport::kinds::model::format::{ModelFile, VersionFile};
    use dbxport::kinds::permissions::format::PermissionsFile;
    use dbxport::kinds::reference::format::{
        ClusterFile, ClusterPolicyFile, GroupFile, InstancePoolFile, MountFile,
        ServicePrincipalFile, UserFile, WarehouseFile,
    };
    use dbxport::kinds::repo::format::RepoFile;
    use dbxport::kinds::secret::format::ScopeFile;
    use dbxport::model::grants::HiveGrant;
    use dbxport::model::secret::{AclItem, SecretMetadata, SecretScope};
    use dbxport::model::Kind;

    let mut bundle = dbxport::bundle::Bundle::open(&golden::current_path(), None).unwrap();
    let records: Vec<(Kind, String, String)> = bundle
        .inventory()
        .records
        .iter()
        .flat_map(|r| {
            r.stored
                .iter()
                .filter(|s| s.ends_with(".json"))
                .map(|s| (r.kind, r.name.clone(), s.clone()))
        })
        .collect();
    let mut covered = std::collections::BTreeSet::new();
    let mut file = |kind: Kind, name: &str| -> Vec<u8> {
        let (_, _, stored) = records
            .iter()
            .find(|(k, n, _)| *k == kind && n == name)
            .unwrap_or_else(|| panic!("the golden has no JSON payload for {kind} {name}"));
        covered.insert(stored.clone());
        bundle.read_payload(stored, 1 << 20).unwrap()
    };
    // Export sorts grant rows, a scope's ACL and its keys before writing them.
    let sorted = |mut v: Vec<HiveGrant>| {
        v.sort();
        v
    };
    type Scope = (SecretScope, Vec<AclItem>, Vec<SecretMetadata>);
    let scope = |(s, mut acls, mut keys): Scope| {
        acls.sort();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        (s, acls, keys)
    };
    let scope_file = |(s, a, k): &Scope| ScopeFile::from_wire(s, a, k);

    let repo = "/Repos/alice@example.org/project";
    payload_case(
        "repo",
        &file(Kind::Repo, repo),
        |w| RepoFile::from(w),
        golden::repo(),
    );
    payload_case(
        "job",
        &file(Kind::Job, "nightly etl"),
        |w| JobFile::from(w),
        golden::job(),
    );
    payload_case(
        "notebook permissions",
        &file(Kind::Permissions, "notebooks/1011"),
        |w| PermissionsFile::from(w),
        golden::notebook_permissions(),
    );
    payload_case(
        "job permissions",
        &file(Kind::Permissions, "jobs/42"),
        |w| PermissionsFile::from(w),
        golden::job_permissions(),
    );
    let hive = |g: &Vec<HiveGrant>| HiveGrantsFile::from(g.as_slice());
    payload_case(
        "table grants",
        &file(Kind::HiveGrants, "TABLE sales.orders"),
        hive,
        sorted(golden::table_grants()),
    );
    payload_case(
        "catalog grants",
        &file(Kind::HiveGrants, "CATALOG"),
        hive,
        sorted(golden::catalog_grants()),
    );
    payload_case(
        "uc grants",
        &file(Kind::UcGrants, "catalog main"),
        |w| UcGrantsFile::from(w),
        golden::uc_grants(),
    );
    payload_case(
        "model",
        &file(Kind::RegisteredModel, "churn"),
        |w| ModelFile::from(w),
        golden::model(),
    );
    payload_case(
        "version",
        &file(Kind::ModelVersion, "churn/1"),
        |w| VersionFile::from(w),
        golden::version(),
    );
    payload_case(
        "scope etl",
        &file(Kind::SecretScope, "etl"),
        scope_file,
        scope(golden::etl_scope()),
    );
    payload_case(
        "scope kv",
        &file(Kind::SecretScope, "kv"),
        scope_file,
        scope(golden::kv_scope()),
    );
    payload_case(
        "cluster",
        &file(Kind::Cluster, "shared etl"),
        |w| ClusterFile::from(w),
        golden::cluster(),
    );
    payload_case(
        "pool",
        &file(Kind::InstancePool, "small nodes"),
        |w| InstancePoolFile::from(w),
        golden::pool(),
    );
    payload_case(
        "policy",
        &file(Kind::ClusterPolicy, "personal compute"),
        |w| ClusterPolicyFile::from(w),
        golden::policy(),
    );
    payload_case(
        "warehouse",
        &file(Kind::Warehouse, "Starter Warehouse"),
        |w| WarehouseFile::from(w),
        golden::warehouse(),
    );
    payload_case(
        "mount",
        &file(Kind::Mount, "/mnt/raw"),
        |w| MountFile::from(w),
        golden::mount(),
    );
    payload_case(
        "user",
        &file(Kind::Principal, "alice@example.org"),
        |w| UserFile::from(w),
        golden::user(),
    );
    payload_case(
        "group",
        &file(Kind::Principal, "analysts"),
        |w| GroupFile::from(w),
        golden::group(),
    );
    payload_case(
        "service principal",
        &file(Kind::Principal, "6f1e2d3c-4b5a-6978-8899-aabbccddeeff"),
        |w| ServicePrincipalFile::from(w),
        golden::service_principal(),
    );
    let all: std::collections::BTreeSet<String> =
        records.iter().map(|(_, _, s)| s.clone()).collect();
    let missed: Vec<&String> = all.difference(&covered).collect();
    assert!(
        missed.is_empty(),
        "JSON payloads of the golden bundle with no case here: {missed:?}"
    );
}

/// `run.json` (§6.5, not in the golden bundle: its version's run was not read) is the run
/// object kept verbatim: its bytes are the canonical JSON of what `runs/get` gave, fields
/// this version does not know included; an answer that is no object gives no file.
#[test]
fn a_run_file_keeps_the_run_object_verbatim() {
    use dbxport::kinds::format::PayloadFile;
    use dbxport::kinds::model::format::RunFile;
    let run = serde_json::json!({
        "info": {"run_id": "9f8e7d6c5b4a", "status": "FINISHED", "start_time": 1767000000000i64},
        "data": {"params": [{"key": "lr", "value": "0.1"}], "metrics": [], "tags": []},
        "inputs": {"dataset_inputs": [{"dataset": {"name": "churn", "digest": "abc"}}]}
    });
    let file = RunFile::from_wire(&run).expect("an object is a run file");
    let bytes = dbxport::bundle::json::to_canonical_bytes(&file).unwrap();
    assert_eq!(
        bytes,
        dbxport::bundle::json::to_canonical_bytes(&run).unwrap()
    );
    let read: RunFile = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(read.into_wire(), run);
    assert!(RunFile::from_wire(&serde_json::Value::Null).is_none());
    assert!(serde_json::from_slice::<RunFile>(b"[1]").is_err());
}
