//! Job references on replay: `run_job_task` ids point at the new jobs — through a reference
//! cycle (created as placeholders, then set whole) and inside `for_each_task` — and a reference
//! to a job outside the selection is refused unless that job was imported before. A cluster,
//! notebook or job named only inside a `for_each_task` is seen by the exported record, the
//! must-recreate list and the remap alike.

use crate::support::import as support;

use dbxport::emulator::{Emulator, EmulatorConfig};
use dbxport::import::plan::Action;
use dbxport::import::Options;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::*;

fn write(dir: &std::path::Path, rel: &str, v: &Value) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn job(id: i64, name: &str, tasks: Value) -> Value {
    json!({"job_id": id, "creator_user_name": "ada.okafor@sciencehub.example",
           "created_time": 1700000000000i64,
           "settings": {"name": name, "tasks": tasks,
                        "schedule": {"quartz_cron_expression": "0 0 1 * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"}}})
}

/// A source with three jobs: `ping` and `pong` run each other, `fan` runs `ping` for each item.
fn source_seed(dir: &std::path::Path) {
    let empty = repo_path("fixtures/workspaces/empty");
    for f in ["principals.json", "tokens.json"] {
        std::fs::copy(empty.join(f), dir.join(f)).unwrap();
    }
    write(
        dir,
        "workspace.json",
        &json!({"workspace_id": "5550000000000001"}),
    );
    write(
        dir,
        "jobs/11.json",
        &job(
            11,
            "ping",
            json!([{"task_key": "call", "run_job_task": {"job_id": 22}}]),
        ),
    );
    write(
        dir,
        "jobs/22.json",
        &job(
            22,
            "pong",
            json!([{"task_key": "call", "run_job_task": {"job_id": 11}}]),
        ),
    );
    write(
        dir,
        "jobs/33.json",
        &job(
            33,
            "fan",
            json!([{"task_key": "each", "for_each_task": {"inputs": "[1,2]",
                "task": {"task_key": "each_iteration", "run_job_task": {"job_id": 11}}}}]),
        ),
    );
}

#[test]
fn references_follow_the_new_ids_through_cycles_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("src-seed");
    std::fs::create_dir_all(&seed).unwrap();
    source_seed(&seed);
    let src = Emulator::start_in_background(EmulatorConfig::default().with_seed(&seed)).unwrap();
    let (key, recipient) = keypair(dir.path());
    let bundle = export_all(&src, dir.path(), &recipient);
    let prod = start_prod(dir.path(), Default::default());

    let (p, report) = import(&prod, &bundle, Some(&key), &options_all(), false);
    assert!(!report.has_problems(), "{}", report.render());
    assert!(p.items.iter().all(|i| i.action != Action::Refuse));

    let c = client(&prod);
    let jobs = rt().block_on(c.jobs().list(true)).unwrap();
    assert_eq!(jobs.len(), 3);
    let by_name: BTreeMap<String, &dbxport::model::job::Job> = jobs
        .iter()
        .map(|j| (j.settings["name"].as_str().unwrap().to_string(), j))
        .collect();
    let id = |n: &str| by_name[n].job_id;
    assert_eq!(
        by_name["ping"].settings["tasks"][0]["run_job_task"]["job_id"],
        json!(id("pong"))
    );
    assert_eq!(
        by_name["pong"].settings["tasks"][0]["run_job_task"]["job_id"],
        json!(id("ping"))
    );
    assert_eq!(
        by_name["fan"].settings["tasks"][0]["for_each_task"]["task"]["run_job_task"]["job_id"],
        json!(id("ping"))
    );
    for j in &jobs {
        assert_eq!(j.settings["schedule"]["pause_status"], "PAUSED");
    }
    // Again: nothing to do.
    prod.reset_stats();
    let (_, again) = import(&prod, &bundle, Some(&key), &options_all(), false);
    assert_eq!(
        again.totals().unchanged,
        again.plan().items.len() as u64 - again.totals().skipped
    );
    assert_eq!(prod.stats().mutating, 0);

    // A bundle of `fan` alone (the same source workspace): refused on a fresh target, naming
    // the reference it cannot resolve...
    let seed2 = dir.path().join("src2-seed").tap();
    source_seed(&seed2);
    std::fs::remove_file(seed2.join("jobs/11.json")).unwrap();
    std::fs::remove_file(seed2.join("jobs/22.json")).unwrap();
    let src2 = Emulator::start_in_background(EmulatorConfig::default().with_seed(&seed2)).unwrap();
    let fan_only = export_all(&src2, &dir.path().join("b2").tap(), &recipient);
    let prod2 = start_prod(&dir.path().join("p2").tap(), Default::default());
    let (p, report) = import(&prod2, &fan_only, Some(&key), &options_all(), false);
    assert!(report.refused);
    assert_eq!(prod2.stats().mutating, 0);
    let fan = p.items.iter().find(|i| i.target == "fan").unwrap();
    assert!(fan.reasons.iter().any(|r| r.contains("job 11")), "{fan:?}");
    // ...and resolved through the tags once `ping` and `pong` were imported there.
    let (_, r) = import(&prod2, &bundle, Some(&key), &options_all(), false);
    assert!(!r.has_problems(), "{}", r.render());
    let (p, report) = import(&prod2, &fan_only, Some(&key), &options_all(), false);
    assert!(
        !report.refused,
        "{}",
        dbxport::import::report::render_plan(&p, true)
    );
    assert!(!report.has_problems(), "{}", report.render());
}

/// A job whose every reference sits inside a `for_each_task`: the exported record's meta
/// names them, the plan's must-recreate list says the job uses the cluster, an import without
/// a mapping for the cluster is refused, and with one the nested task points at the target's.
#[test]
fn references_only_inside_for_each_task_are_seen_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("src-seed").tap();
    source_seed(&seed);
    std::fs::remove_file(seed.join("jobs/22.json")).unwrap();
    std::fs::remove_file(seed.join("jobs/33.json")).unwrap();
    write(
        &seed,
        "jobs/11.json",
        &job(
            11,
            "ping",
            json!([{"task_key": "noop", "notebook_task": {"notebook_path": "/Shared/top"}}]),
        ),
    );
    write(
        &seed,
        "jobs/44.json",
        &job(
            44,
            "loop",
            json!([{"task_key": "each", "for_each_task": {"inputs": "[1,2]",
                "task": {"task_key": "each_iteration", "existing_cluster_id": "0101-000000-nested1",
                         "notebook_task": {"notebook_path": "/Shared/nested"},
                         "for_each_task": {"inputs": "[3]", "task": {
                             "task_key": "deeper", "run_job_task": {"job_id": 11}}}}}}]),
        ),
    );
    let src = Emulator::start_in_background(EmulatorConfig::default().with_seed(&seed)).unwrap();
    let (key, recipient) = keypair(dir.path());
    let bundle = export_all(&src, dir.path(), &recipient);

    // The record's meta, as the bundle's inventory holds it.
    let b = dbxport::bundle::reader::Bundle::open(&bundle, None).unwrap();
    let meta = b
        .inventory()
        .records
        .iter()
        .find(|r| r.kind == dbxport::model::Kind::Job && r.source_id == "44")
        .expect("the job record")
        .meta
        .clone();
    assert_eq!(meta["existing_cluster_ids"], json!(["0101-000000-nested1"]));
    assert_eq!(meta["notebook_paths"], json!(["/Shared/nested"]));
    assert_eq!(meta["run_job_ids"], json!([11]));

    // No mapping for the cluster: refused, and the checklist says who uses it.
    let prod = start_prod(&dir.path().join("p").tap(), Default::default());
    let (p, report) = import(&prod, &bundle, Some(&key), &options_all(), false);
    assert!(report.refused);
    let item = p
        .must_recreate
        .items
        .iter()
        .find(|i| i.kind == "cluster" && i.id == "0101-000000-nested1")
        .expect("the nested cluster is on the must-recreate list");
    assert_eq!(item.used_by, vec!["job loop".to_string()]);
    let refused = p.items.iter().find(|i| i.target == "loop").unwrap();
    assert!(
        refused
            .reasons
            .iter()
            .any(|r| r.contains("0101-000000-nested1")),
        "{refused:?}"
    );

    // Mapped: the nested task runs on the target's cluster, and runs the new `ping`.
    let mut opts = options_all();
    opts.mapping = dbxport::import::Mapping::parse(
        "[clusters]\n\"0101-000000-nested1\" = \"1201-090000-prodshr1\"\n",
        "test mapping",
    )
    .unwrap();
    let (_, report) = import(&prod, &bundle, Some(&key), &opts, false);
    assert!(!report.has_problems(), "{}", report.render());
    let jobs = rt().block_on(client(&prod).jobs().list(true)).unwrap();
    let by_name: BTreeMap<String, &dbxport::model::job::Job> = jobs
        .iter()
        .map(|j| (j.settings["name"].as_str().unwrap().to_string(), j))
        .collect();
    let inner = &by_name["loop"].settings["tasks"][0]["for_each_task"]["task"];
    assert_eq!(inner["existing_cluster_id"], "1201-090000-prodshr1");
    assert_eq!(
        inner["for_each_task"]["task"]["run_job_task"]["job_id"],
        json!(by_name["ping"].job_id)
    );
}

fn options_all() -> Options {
    Options {
        concurrency: 4,
        ..Options::default()
    }
}

trait Tap {
    fn tap(self) -> Self;
}

impl Tap for std::path::PathBuf {
    fn tap(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

fn export_all(
    emu: &dbxport::emulator::EmulatorHandle,
    dir: &std::path::Path,
    recipient: &str,
) -> std::path::PathBuf {
    let out = dir.join("jobs.zip");
    let opts = dbxport::export::ExportOptions {
        output: out.clone(),
        kinds: dbxport::export::DEFAULT_KINDS.into_iter().collect(),
        selection: Default::default(),
        notebook_format: None,
        secrets: dbxport::export::SecretsOptions {
            sealer: Some(dbxport::bundle::Sealer::to_recipients(&[recipient]).unwrap()),
            cluster_id: None,
        },
        warehouse_id: None,
        cluster_id: None,
        envelope: None,
        resume: false,
        concurrency: 4,
        models: Default::default(),
    };
    let s = rt()
        .block_on(dbxport::export::export(
            client(emu),
            opts,
            std::sync::Arc::new(dbxport::export::Quiet),
        ))
        .unwrap();
    assert!(!s.has_failures(), "{:?}", s.report);
    out
}
