//! Issue #15: what the offline commands hold per object. Bundles of a generated workspace at
//! two sizes are written in-process; `verify`, `inspect`, `unpack` and `pack` run on each as
//! children whose peak RSS is measured, and the slope between the sizes — what one more object
//! costs, whatever the fixed overhead of the binary — must stay within the target of
//! 64 MiB + 1 KiB per object. The spec's per-entry bounds of §10.3 are the code's.

use crate::common;

use std::path::Path;
use std::process::Command;

use dbxport::bundle::reader::{INVENTORY_PER_ENTRY, MAX_INVENTORY, MAX_TAGS_TOTAL, TAGS_PER_ENTRY};
use dbxport::bundle::resource::{Content, Resource};
use dbxport::bundle::{write_bundle_file, BagSettings, Source};
use dbxport::model::mlflow::{ModelVersion, RegisteredModel};
use dbxport::model::permissions::{AccessControl, ObjectPermissions, Permission, PrincipalRef};
use dbxport::model::workspace::{Format, Language, ObjectInfo, ObjectType};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A workspace as the scale benchmark generates it: one folder per 20 notebooks, and one
/// permissions record per object (a direct grant on every tenth). Returns the resources and
/// the number of workspace objects (notebooks and folders).
fn workspace(notebooks: usize) -> (Vec<Resource>, usize) {
    let folders = notebooks.div_ceil(20);
    let mut out = Vec::with_capacity(2 * (notebooks + folders));
    let perms = |kind: &str, id: i64, i: usize| ObjectPermissions {
        object_id: format!("/{kind}/{id}"),
        object_type: kind.trim_end_matches('s').into(),
        access_control_list: i
            .is_multiple_of(10)
            .then(|| AccessControl {
                principal: PrincipalRef::GroupName("users".into()),
                display_name: None,
                all_permissions: vec![Permission {
                    permission_level: "CAN_RUN".into(),
                    inherited: false,
                    inherited_from_object: None,
                }],
            })
            .into_iter()
            .collect(),
    };
    let mut id = 3_000_000_000_000_000i64;
    for f in 0..folders {
        let dir = format!("/Shared/scale/area-{f:06}");
        id += 1;
        out.push(Resource::directory(&dir, id));
        out.push(Resource::permissions(
            "directories",
            &id.to_string(),
            Some(&dir),
            &perms("directories", id, f),
        ));
        for n in (f * 20)..((f + 1) * 20).min(notebooks) {
            id += 1;
            let path = format!("{dir}/notebook_{n:07}");
            let info = ObjectInfo {
                object_type: ObjectType::Notebook,
                path: path.clone(),
                object_id: id,
                language: Some(Language::Python),
                created_at: Some(1_767_000_000_000),
                modified_at: Some(1_767_000_000_000),
                size: None,
                resource_id: None,
                directory_info: None,
            };
            let body = format!(
                "# Databricks notebook source\nx_{n} = spark.range({n}).count()\n\n# COMMAND ----------\n\nprint(x_{n})\n"
            );
            out.push(Resource::notebook(
                &info,
                vec![(Format::Source, Content::Bytes(body.into_bytes()))],
            ));
            out.push(Resource::permissions(
                "notebooks",
                &id.to_string(),
                Some(&path),
                &perms("notebooks", id, n),
            ));
        }
    }
    (out, notebooks + folders)
}

/// A registry as `scripts/bench-scale`'s `models-export` generates it: `models` models of
/// three versions, each version with two artifact files. Returns the resources and the number
/// of objects (models, versions and artifact files: ten a model).
fn registry(models: usize) -> (Vec<Resource>, usize) {
    let mut out = Vec::with_capacity(10 * models);
    for m in 0..models {
        let name = format!("scale-model-{m:06}");
        let model: RegisteredModel =
            serde_json::from_value(json!({"name": name, "description": format!("model {m}")}))
                .unwrap();
        out.push(Resource::registered_model_with(
            &model,
            Some(vec!["1".into(), "2".into(), "3".into()]),
        ));
        for v in ["1", "2", "3"] {
            let files = [
                (
                    "MLmodel",
                    format!("flavors:\n  python_function:\n    loader_module: m{m}\n"),
                ),
                ("model.pkl", format!("{m}/{v}").repeat(64)),
            ];
            let digests: Vec<(&str, String, u64)> = files
                .iter()
                .map(|(p, b)| (*p, hex::encode(Sha256::digest(b)), b.len() as u64))
                .collect();
            let version: ModelVersion = serde_json::from_value(
                json!({"name": name, "version": v, "current_stage": "Staging", "status": "READY"}),
            )
            .unwrap();
            out.push(Resource::model_version(
                &version,
                digests.iter().map(|(p, s, n)| (*p, s.as_str(), *n)),
                true,
            ));
            for (p, b) in files {
                out.push(Resource::model_artifact(
                    &name,
                    v,
                    p,
                    Content::Bytes(b.into_bytes()),
                ));
            }
        }
    }
    (out, 10 * models)
}

/// Writes the bundle of [`registry`]`(models)` into `dir`; returns its path and the number of
/// model objects (ten a model).
pub(crate) fn write_registry(dir: &Path, models: usize) -> (std::path::PathBuf, usize) {
    let (resources, objects) = registry(models);
    (
        write_resources(dir, &format!("models-{models}"), resources),
        objects,
    )
}

/// Writes the bundle of [`workspace`]`(notebooks)` into `dir`; returns its path and the number
/// of workspace objects. `import_scale` imports the same bundles.
pub(crate) fn write(dir: &Path, notebooks: usize) -> (std::path::PathBuf, usize) {
    let (resources, objects) = workspace(notebooks);
    (
        write_resources(dir, &format!("scale-{notebooks}"), resources),
        objects,
    )
}

/// Writes `resources` as the bundle `<name>.zip` in `dir`.
fn write_resources(dir: &Path, name: &str, resources: Vec<Resource>) -> std::path::PathBuf {
    let settings = BagSettings {
        bag_name: format!("dbxport-{name}"),
        bundle_id: "0b8e6f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b".into(),
        created: time::macros::datetime!(2026-12-05 09:30:00 UTC),
        source: Source {
            host: "https://scale.example".into(),
            workspace_id: "15".into(),
        },
        options: json!({}),
    };
    let path = dir.join(format!("{name}.zip"));
    write_bundle_file(
        &path,
        &settings,
        None,
        resources,
        Default::default(),
        None,
        false,
    )
    .unwrap_or_else(|p| panic!("{p}"));
    path
}

/// Runs the binary with `args` as the child of a small Python process (Linux carries a
/// process's peak RSS across exec, so a child of this large test process would report this
/// process's peak) and returns its peak RSS in KiB; the command must succeed. With `env`, the
/// child has only `PATH` and those variables; without, this process's environment.
pub(crate) fn peak_kib_with(
    env: Option<&[(&str, &std::ffi::OsStr)]>,
    args: &[&std::ffi::OsStr],
) -> i64 {
    const PEAK: &str = r#"
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
if p.returncode != 0:
    sys.stderr.write(p.stderr.decode(errors="replace"))
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"#;
    let mut c = Command::new("python3");
    c.args([
        "-c".as_ref(),
        PEAK.as_ref(),
        common::dbxport_bin().as_os_str(),
    ])
    .args(args);
    if let Some(env) = env {
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied());
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<i64>().unwrap());
    match (it.next(), it.next()) {
        (Some(0), Some(kib)) => kib,
        _ => panic!(
            "{args:?} failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// [`peak_kib_with`] in this process's environment.
fn peak_kib(args: &[&std::ffi::OsStr]) -> i64 {
    peak_kib_with(None, args)
}

#[cfg(target_os = "linux")]
#[test]
fn offline_commands_memory_per_object_does_not_regress() {
    if !common::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Two sizes: the slope between them is what each object costs, without the binary's own.
    let sizes = [4_000usize, 20_000];
    let mut peaks: Vec<(usize, [i64; 4])> = Vec::new();
    for n in sizes {
        let (bundle, objects) = write(tmp.path(), n);
        let out = tmp.path().join(format!("out-{n}"));
        let repacked = tmp.path().join(format!("repacked-{n}.zip"));
        let verify = peak_kib(&["verify".as_ref(), bundle.as_os_str()]);
        let inspect = peak_kib(&["inspect".as_ref(), bundle.as_os_str()]);
        let unpack = peak_kib(&[
            "unpack".as_ref(),
            bundle.as_os_str(),
            "-d".as_ref(),
            out.as_os_str(),
        ]);
        let pack = peak_kib(&[
            "pack".as_ref(),
            out.as_os_str(),
            "-o".as_ref(),
            repacked.as_os_str(),
        ]);
        std::fs::remove_dir_all(&out).unwrap();
        peaks.push((objects, [verify, inspect, unpack, pack]));
    }
    let (small, large) = (&peaks[0], &peaks[1]);
    let objects = (large.0 - small.0) as f64;
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (i, what) in ["verify", "inspect", "unpack", "pack"].iter().enumerate() {
        let slope = (large.1[i] - small.1[i]) as f64 / objects;
        report.push(format!(
            "{what}: {} KiB at {} objects, {} KiB at {} objects, {slope:.2} KiB per object",
            small.1[i], small.0, large.1[i], large.0
        ));
        // The issue's target is 64 MiB + 1 KiB per object, and every command is within it at
        // these sizes. Measured (debug build, 4,200 → 21,000 objects): verify, inspect and
        // unpack 0.73–0.78 KiB per object (1.00–1.04 before the zip index and the records'
        // stored paths shared one arena of names), pack 0.93 (1.83 before it dropped its walk
        // before the final verification and kept the read-back as 64 bytes an entry). Small
        // sizes are noisy on a shared machine, so the limits leave about a quarter for noise
        // and still fail on a regression towards the old figures — see BENCHMARKS.md, "Scale".
        // (slope, KiB per object over 64 MiB at the larger size)
        let (slope_limit, fixed_limit) = match *what {
            "pack" => (1.2, 1.0),
            _ => (1.0, 1.0),
        };
        if slope > slope_limit || large.1[i] > 64 * 1024 + (fixed_limit * large.0 as f64) as i64 {
            over.push(what.to_string());
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        over.is_empty(),
        "per-object memory regressed (over 64 MiB + 1 KiB per object, or a slope over 1 KiB; pack 1.2): {over:?}\n{}",
        report.join("\n")
    );
}

/// Issue #15: `verify` of a bundle of many model versions — records whose rules span
/// records — holds per object what it holds for a workspace's (the model rules keep a few
/// strings per record, not the record). Debug build, 4,000 → 20,000 objects.
#[cfg(target_os = "linux")]
#[test]
fn a_bundle_of_models_verifies_in_little_memory_per_object() {
    if !common::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut peaks = Vec::new();
    for models in [400usize, 2_000] {
        let (bundle, objects) = write_registry(tmp.path(), models);
        peaks.push((objects, peak_kib(&["verify".as_ref(), bundle.as_os_str()])));
    }
    let ((small, a), (large, b)) = (peaks[0], peaks[1]);
    let slope = (b - a) as f64 / (large - small) as f64;
    let report = format!(
        "verify: {a} KiB at {small} objects, {b} KiB at {large} objects, {slope:.2} KiB per object"
    );
    eprintln!("{report}");
    assert!(
        slope <= MODELS_VERIFY_SLOPE,
        "per-object memory regressed: {report}"
    );
}

/// The limit of the test above, KiB per object. Measured: 1.05 here (debug build), 0.98 in
/// the scale benchmark (release, 2,000 → 100,000 objects); before the model rules kept their
/// facts instead of the records, 2.2 (release). The limit leaves room for the debug build and
/// a shared machine, and fails on a return towards the old figure.
const MODELS_VERIFY_SLOPE: f64 = 1.3;

/// A seed as `scripts/bench-scale` makes it: one admin, and a `generate.json` of `notebooks`
/// notebooks in folders of 20, a job per 100, a direct grant on every tenth object
/// (spec/emulator-seed.md). Returns the number of workspace objects.
fn generated_seed(dir: &Path, notebooks: usize) -> usize {
    let write = |name: &str, v: serde_json::Value| {
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&v).unwrap()).unwrap()
    };
    let user = "scale.user@example.org";
    write(
        "workspace.json",
        json!({"workspace_id": "7000000000000015", "secrets_get_refused": false,
               "first_object_id": 2_000_000_000_000_001u64}),
    );
    write(
        "principals.json",
        json!({
            "users": [{"id": "9000000000000001", "userName": user, "displayName": "Scale User",
                       "active": true, "emails": [{"value": user, "primary": true}]}],
            "groups": [
                {"id": "9100000000000001", "displayName": "admins", "members": [{"value": "9000000000000001"}]},
                {"id": "9100000000000002", "displayName": "users", "members": [{"value": "9000000000000001"}]}
            ],
            "service_principals": []
        }),
    );
    write(
        "tokens.json",
        json!({"tokens": [{"token": "dapi-scale-test", "user_name": user}], "oauth_clients": []}),
    );
    let (folders, jobs) = (notebooks / 20, notebooks / 100);
    write(
        "generate.json",
        json!({"root": "/Shared/scale", "notebooks": notebooks, "folders": folders,
               "jobs": jobs, "grant_every": 10, "seed": 15}),
    );
    notebooks + folders + jobs
}

/// Issue #15: what `export` holds per workspace object. A generated workspace (the scale
/// benchmark's, spec/emulator-seed.md) is served by an emulator in this process at two sizes,
/// and `export` runs against each as a child whose peak RSS is measured; the slope between the
/// sizes is what one more object costs (about two records and two zip entries: the object and
/// its permissions).
#[cfg(target_os = "linux")]
#[test]
fn export_memory_per_object_does_not_regress() {
    use dbxport::emulator::{Emulator, EmulatorConfig};
    if !common::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sizes = [2_000usize, 10_000];
    let mut seeds = Vec::new();
    for n in sizes {
        let seed = tmp.path().join(format!("seed-{n}"));
        std::fs::create_dir(&seed).unwrap();
        let objects = generated_seed(&seed, n);
        seeds.push((seed, objects));
    }
    let runs = std::cell::Cell::new(0);
    let export_peak = |seed: &Path| {
        let emu = Emulator::start_in_background(EmulatorConfig::default().with_seed(seed))
            .expect("the generated workspace is served");
        // A bundle of its own each time: an export resumes what it finds staged beside its
        // output.
        runs.set(runs.get() + 1);
        let bundle = tmp.path().join(format!("export-{}.zip", runs.get()));
        let env: [(&str, &std::ffi::OsStr); 3] = [
            ("HOME", home.path().as_os_str()),
            ("DATABRICKS_HOST", emu.url().as_ref()),
            ("DATABRICKS_TOKEN", "dapi-scale-test".as_ref()),
        ];
        let kib = peak_kib_with(
            Some(&env),
            &[
                "export".as_ref(),
                "-o".as_ref(),
                bundle.as_os_str(),
                "--concurrency".as_ref(),
                "8".as_ref(),
            ],
        );
        drop(emu);
        std::fs::remove_file(&bundle).unwrap();
        kib
    };
    // The issue's target is 128 MiB + 2 KiB per object. At these sizes (debug build, shared
    // machine) the slope measures 1.78–1.90 KiB per object (6.45 before the writer kept
    // records as compact summaries; 1.45 between 21,200 and 106,000 objects with
    // scripts/bench-scale, where the binary's fixed costs weigh less): the peak is the final
    // verification's, and the small sizes' slope also carries allocator arenas and buffers
    // that grow with the run. A limit of 2 KiB would fail on noise; 2.5 fails on any
    // regression towards the old figure, not on a creep of a few hundred bytes.
    //
    // The noise is not small: the same export's peak is bimodal, about 58 MiB apart at any
    // size (10,600 objects: 115–117 MiB in most runs, 57–59 in some; the heap's own peak is
    // 18 MB — glibc's arenas, not the code's data). Most runs are in the upper mode; a
    // smaller size caught in the lower one makes the slope look ~7 KiB. So a slope over the
    // limit is measured again (up to three times) with each size's highest peak: a real
    // regression stays over it, a run caught in the lower mode no longer counts.
    let mut peaks = [0i64; 2];
    let mut report = String::new();
    for _attempt in 0..3 {
        for (peak, (seed, _)) in peaks.iter_mut().zip(&seeds) {
            *peak = (*peak).max(export_peak(seed));
        }
        let ((small_n, small), (large_n, large)) = ((seeds[0].1, peaks[0]), (seeds[1].1, peaks[1]));
        let slope = (large - small) as f64 / (large_n - small_n) as f64;
        report = format!(
            "export: {small} KiB at {small_n} objects, {large} KiB at {large_n} objects, {slope:.2} KiB per object"
        );
        eprintln!("{report}");
        if slope <= 2.5 && large <= 128 * 1024 + 2 * large_n as i64 {
            return;
        }
    }
    panic!(
        "export's memory per object regressed (a slope over 2.5 KiB, or over 128 MiB + 2 KiB per object, three times): {report}"
    );
}

/// §10.3 states the bounds the reader applies; a change to one must change the other.
#[test]
fn the_spec_states_the_readers_per_entry_bounds() {
    let spec = std::fs::read_to_string(common::repo_path("spec/bundle-format.md")).unwrap();
    let tags = format!(
        "| {} MiB + {} KiB per zip entry |",
        MAX_TAGS_TOTAL >> 20,
        TAGS_PER_ENTRY >> 10
    );
    let inventory = format!(
        "| {} GiB + {} KiB per zip entry |",
        MAX_INVENTORY >> 30,
        INVENTORY_PER_ENTRY >> 10
    );
    assert!(spec.contains(&tags), "spec §10.3 does not say {tags}");
    assert!(
        spec.contains(&inventory),
        "spec §10.3 does not say {inventory}"
    );
}
