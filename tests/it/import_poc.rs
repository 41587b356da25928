//! PoC → bundle → prod, end to end with in-process emulators: the end state, idempotence, plan
//! without writes, diff after planted changes, refusals before any write, bad bundles and keys.

use crate::support::import as support;

use dbxport::client::sql::Statement;
use dbxport::client::workspace::Import;
use dbxport::import::ledger::Knowledge;
use dbxport::import::plan::{plan, Action, Mode, PlanInput};
use dbxport::import::{diff, ImportError, Mapping, OnConflict, SourceBundle};
use dbxport::model::workspace::{Format, Language};
use dbxport::model::Kind;
use std::time::Duration;
use support::*;

struct Setup {
    dir: tempfile::TempDir,
    poc: dbxport::emulator::EmulatorHandle,
    key: std::path::PathBuf,
    bundle: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let poc = start_poc();
    let (key, recipient) = keypair(dir.path());
    let bundle = export_poc(&poc, dir.path(), &recipient);
    Setup {
        dir,
        poc,
        key,
        bundle,
    }
}

#[test]
fn poc_into_empty_prod_ends_equal_modulo_remaps_and_a_second_run_only_reads() {
    let s = setup();
    let prod = start_prod(s.dir.path(), Default::default());
    let (plan, report) = import(&prod, &s.bundle, Some(&s.key), &options(), false);
    assert!(!report.has_problems(), "{}", report.render());
    assert!(report.totals().created > 120, "{}", report.render());
    // Everything the PoC holds is in prod, modulo the documented remaps and ids.
    let a = normalize(&dump(&s.poc, s.dir.path()), Side::Source);
    let b = normalize(&dump(&prod, s.dir.path()), Side::Target);
    assert_same(&a, &b, "the PoC and prod after import");
    // Jobs arrive paused and tagged with their source.
    let jobs = rt().block_on(client(&prod).jobs().list(true)).unwrap();
    assert_eq!(jobs.len(), 10);
    for j in &jobs {
        let tag = j.settings["tags"]["dbxport_source"].as_str().unwrap();
        assert!(tag.starts_with("4417338625190283/"), "{tag}");
        if let Some(s) = j.settings.get("schedule") {
            assert_eq!(s["pause_status"], "PAUSED");
        }
    }
    // The Key Vault scope and its secrets are skipped, and on the must-recreate list.
    assert!(report
        .must_recreate
        .items
        .iter()
        .any(|r| r.kind == "keyvault_scope" && r.id == "hub-keyvault"));
    assert!(plan.unmapped_principals.is_empty());

    // A second import of the same bundle: everything unchanged, no mutating request.
    prod.reset_stats();
    let (_, again) = import(&prod, &s.bundle, Some(&s.key), &options(), false);
    let t = again.totals();
    assert_eq!(
        (t.created, t.updated, t.failed),
        (0, 0, 0),
        "{}",
        again.render()
    );
    assert!(t.unchanged > 200);
    let stats = prod.stats();
    assert_eq!(stats.mutating, 0, "the re-run wrote: {:?}", stats.routes);
    assert!(stats.read > 0);
    assert_eq!(again.mutating_requests, 0);

    // And diff finds nothing, secret values included.
    let src = SourceBundle::open(&s.bundle, None).unwrap();
    let d = rt()
        .block_on(diff(
            &src,
            &client(&prod),
            &options(),
            Some(&opener(&s.key)),
        ))
        .unwrap();
    assert!(d.is_clean(), "{}", d.render());
    assert_eq!(prod.stats().mutating, 0);
}

#[test]
fn plan_makes_no_mutating_request_and_diff_names_planted_changes() {
    let s = setup();
    let prod = start_prod(s.dir.path(), Default::default());
    let src = SourceBundle::open(&s.bundle, None).unwrap();
    let c = client(&prod);
    prod.reset_stats();
    let p = rt()
        .block_on(plan(PlanInput {
            source: &src,
            options: &options(),
            client: &c,
            knowledge: &Knowledge::default(),
            secrets: None,
            mode: Mode::Import,
        }))
        .unwrap();
    assert!(!p.is_refused());
    assert!(
        p.items
            .iter()
            .filter(|i| i.action == Action::Create)
            .count()
            > 120
    );
    let stats = prod.stats();
    assert_eq!(stats.mutating, 0, "plan wrote: {:?}", stats.routes);
    assert!(stats.read > 0);

    let (_, report) = import(&prod, &s.bundle, Some(&s.key), &options(), false);
    assert!(!report.has_problems(), "{}", report.render());

    // Plant three changes: a notebook edited, a job deleted, a grant revoked.
    let nb = "/Shared/etl/nightly_load";
    rt().block_on(c.workspace().import(&Import {
        path: nb,
        content: bytes::Bytes::from_static(
            b"# Databricks notebook source\nprint('edited in prod')\n",
        ),
        format: Format::Source,
        language: Some(Language::Python),
        overwrite: true,
    }))
    .unwrap();
    let jobs = rt().block_on(c.jobs().list(false)).unwrap();
    let victim = jobs
        .iter()
        .find(|j| j.settings["name"] == "ocean-anomaly-report")
        .unwrap();
    rt().block_on(c.jobs().delete(victim.job_id)).unwrap();
    rt().block_on(c.sql().execute(&Statement {
        statement: "REVOKE SELECT ON TABLE `ocean`.`argo_profiles` FROM `researchers`",
        warehouse_id: PROD_WAREHOUSE,
        catalog: None,
        schema: None,
        read_only: false,
        timeout: Duration::from_secs(30),
    }))
    .unwrap();

    prod.reset_stats();
    let d = rt().block_on(diff(&src, &c, &options(), None)).unwrap();
    assert_eq!(prod.stats().mutating, 0);
    let found = |kind: Kind, needle: &str| {
        d.differences
            .iter()
            .any(|x| x.kind == kind && (x.target.contains(needle) || x.source.contains(needle)))
    };
    assert!(found(Kind::Notebook, nb), "{}", d.render());
    assert!(found(Kind::Job, "ocean-anomaly-report"), "{}", d.render());
    let grant = d
        .differences
        .iter()
        .find(|x| x.kind == Kind::HiveGrants && x.target.contains("ocean.argo_profiles"))
        .unwrap_or_else(|| panic!("{}", d.render()));
    assert!(
        grant
            .what
            .iter()
            .any(|w| w.contains("GRANT SELECT ON TABLE `ocean`.`argo_profiles` TO `researchers`")),
        "{grant:?}"
    );
    // Nothing else differs (the deleted job's permissions follow the job).
    assert!(
        d.differences.len() <= 4,
        "unexpected differences:\n{}",
        d.render()
    );
    assert!(!d.is_clean());
}

#[test]
fn unmapped_clusters_and_principals_are_refused_before_any_write_every_one_listed() {
    let s = setup();
    // A prod without the intern's account, and no mapping at all.
    let seed = s.dir.path().join("prod-seed");
    write_prod_seed(&seed);
    let pp = seed.join("principals.json");
    let mut principals: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pp).unwrap()).unwrap();
    principals["users"]
        .as_array_mut()
        .unwrap()
        .retain(|u| u["userName"] != "kim.intern@sciencehub.example");
    for g in principals["groups"].as_array_mut().unwrap() {
        g["members"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["value"] != "5521873049120006");
    }
    std::fs::write(&pp, serde_json::to_vec(&principals).unwrap()).unwrap();
    let prod = start_prod(s.dir.path(), Default::default());
    prod.reset_stats();
    let bare = dbxport::import::Options {
        concurrency: 8,
        ..Default::default()
    };
    let (plan, report) = import(&prod, &s.bundle, Some(&s.key), &bare, false);
    assert!(report.refused, "{}", report.render());
    assert!(report.has_problems());
    assert_eq!(prod.stats().mutating, 0, "{:?}", prod.stats().routes);
    let clusters: Vec<&str> = plan
        .unmapped_clusters
        .iter()
        .map(|u| u.principal.as_str())
        .collect();
    assert_eq!(clusters, ["0611-083245-krill42a", "0702-154510-glacier7"]);
    let kim = plan
        .unmapped_principals
        .iter()
        .find(|u| u.principal == "kim.intern@sciencehub.example")
        .unwrap_or_else(|| panic!("{:?}", plan.unmapped_principals));
    // Every place that names the intern is listed: grants on two objects.
    assert!(kim.used_by.len() >= 2, "{:?}", kim.used_by);
    let text = dbxport::import::report::render_plan(&plan, false);
    assert!(text.contains("unmapped clusters"), "{text}");
    assert!(text.contains("kim.intern@sciencehub.example"), "{text}");
    // With the policy `drop`, the intern's grants are dropped and listed instead.
    let mut mapping = Mapping::parse(MAPPING, "t").unwrap();
    mapping.unmapped_principals = dbxport::import::mapping::UnmappedPolicy::Drop;
    let opts = dbxport::import::Options {
        mapping,
        concurrency: 8,
        ..Default::default()
    };
    let (plan, report) = import(&prod, &s.bundle, Some(&s.key), &opts, false);
    assert!(
        !report.refused,
        "{}",
        dbxport::import::report::render_plan(&plan, false)
    );
    assert!(report
        .dropped_principals
        .iter()
        .any(|d| d.principal == "kim.intern@sciencehub.example"));
}

#[test]
fn a_damaged_bundle_or_a_wrong_key_changes_nothing() {
    let s = setup();
    let prod = start_prod(s.dir.path(), Default::default());
    // One byte flipped in the middle of the zip.
    let bad = s.dir.path().join("bad.zip");
    let mut bytes = std::fs::read(&s.bundle).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x5a;
    std::fs::write(&bad, &bytes).unwrap();
    match SourceBundle::open(&bad, None) {
        Err(ImportError::Bundle { problems, .. }) => assert!(!problems.is_empty()),
        Err(e) => panic!("expected a verification failure, got {e}"),
        Ok(_) => panic!("a damaged bundle opened"),
    }
    // No identity, then a wrong one: refused before the first write.
    prod.reset_stats();
    let src = SourceBundle::open(&s.bundle, None).unwrap();
    let c = client(&prod);
    let run = |op: Option<&dbxport::bundle::Opener>| {
        rt().block_on(dbxport::import::import(
            &src,
            &c,
            &options(),
            op,
            &Default::default(),
            &dbxport::import::Interrupt::new(),
            &|_| {},
        ))
    };
    assert!(matches!(
        run(None),
        Err(ImportError::IdentityRequired { sealed: 5 })
    ));
    let (wrong, _) = keypair(&s.dir.path().join("other").tap_mkdir());
    match run(Some(&opener(&wrong))) {
        Err(ImportError::Bundle { problems, .. }) => {
            assert!(
                problems.iter().any(|p| p.code().code() == "E401"),
                "{problems:?}"
            )
        }
        Err(e) => panic!("expected E401, got {e}"),
        Ok(_) => panic!("a wrong key opened the values"),
    }
    assert_eq!(prod.stats().mutating, 0);
    assert!(!dbxport::import::ledger::journal_path(&s.bundle, c.host()).exists());
    // Without secrets, no key is needed.
    let mut opts = options();
    opts.filter = dbxport::import::Filter::from_names(&[], &["secret".into()], None).unwrap();
    let (_, report) = import(&prod, &s.bundle, None, &opts, false);
    assert!(!report.has_problems(), "{}", report.render());
}

#[test]
fn existing_objects_follow_on_conflict() {
    let s = setup();
    let prod = start_prod(s.dir.path(), Default::default());
    let c = client(&prod);
    // Someone already put a notebook and a secret where the bundle's go.
    rt().block_on(c.workspace().mkdirs("/Shared/etl")).unwrap();
    rt().block_on(c.workspace().import(&Import {
        path: "/Shared/etl/nightly_load",
        content: bytes::Bytes::from_static(
            b"# Databricks notebook source\nprint('prod version')\n",
        ),
        format: Format::Source,
        language: Some(Language::Python),
        overwrite: false,
    }))
    .unwrap();
    rt().block_on(
        c.secrets()
            .create_scope(&dbxport::client::secrets::CreateScope {
                scope: "soil-sensors".into(),
                ..Default::default()
            }),
    )
    .unwrap();
    rt().block_on(c.secrets().put(
        "soil-sensors",
        "mqtt-token",
        b"prod-token",
        dbxport::model::secret::ValueEncoding::String,
    ))
    .unwrap();
    prod.reset_stats();
    let (plan, report) = import(&prod, &s.bundle, Some(&s.key), &options(), false);
    assert!(report.refused);
    assert_eq!(prod.stats().mutating, 0);
    let conflicts: Vec<&str> = plan
        .items
        .iter()
        .filter(|i| i.action == Action::Refuse)
        .map(|i| i.target.as_str())
        .collect();
    assert_eq!(
        conflicts,
        ["/Shared/etl/nightly_load", "soil-sensors/mqtt-token"]
    );

    let mut skip = options();
    skip.on_conflict = OnConflict::Skip;
    let (_, report) = import(&prod, &s.bundle, Some(&s.key), &skip, false);
    assert!(!report.has_problems(), "{}", report.render());
    let nb = rt()
        .block_on(
            c.workspace()
                .export("/Shared/etl/nightly_load", Format::Source, None),
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&nb).contains("prod version"));

    let mut over = options();
    over.on_conflict = OnConflict::Overwrite;
    let (_, report) = import(&prod, &s.bundle, Some(&s.key), &over, false);
    assert!(!report.has_problems(), "{}", report.render());
    let nb = rt()
        .block_on(
            c.workspace()
                .export("/Shared/etl/nightly_load", Format::Source, None),
        )
        .unwrap();
    assert!(!String::from_utf8_lossy(&nb).contains("prod version"));
    let v = rt()
        .block_on(c.secrets().get("soil-sensors", "mqtt-token"))
        .unwrap();
    assert_eq!(v.as_slice(), b"fake-mqtt-token-77aa");
    // The value this bundle put is now known: a plain re-run finds it unchanged.
    prod.reset_stats();
    let (_, again) = import(&prod, &s.bundle, Some(&s.key), &options(), false);
    assert!(
        !again.refused && !again.has_problems(),
        "{}",
        again.render()
    );
    assert_eq!(prod.stats().mutating, 0);
}

trait MkDir {
    fn tap_mkdir(self) -> Self;
}

impl MkDir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
