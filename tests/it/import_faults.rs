//! Faults injected in the target — throttling (429 with Retry-After), server errors (500, 503),
//! connections dropped before and after the server applied the request — leave the same end
//! state as a clean import: nothing missing, nothing twice.

use crate::support::import as support;

use dbxport::emulator::FaultConfig;
use std::collections::BTreeMap;
use support::*;

fn faulty(seed: u64) -> Vec<(&'static str, FaultConfig)> {
    vec![
        (
            "throttled",
            FaultConfig {
                rate_limits: BTreeMap::from([("*".to_string(), 60.0)]),
                seed,
                ..FaultConfig::default()
            },
        ),
        (
            "server errors",
            FaultConfig {
                error_rate: 0.12,
                error_statuses: vec![500, 503],
                seed,
                ..FaultConfig::default()
            },
        ),
        (
            "dropped connections, some after the change was applied",
            FaultConfig {
                drop_rate: 0.08,
                drop_after_apply: seed.is_multiple_of(2),
                seed,
                ..FaultConfig::default()
            },
        ),
        (
            "dropped after apply",
            FaultConfig {
                drop_rate: 0.1,
                drop_after_apply: true,
                seed: seed + 1,
                ..FaultConfig::default()
            },
        ),
    ]
}

#[test]
fn faults_in_the_target_leave_the_same_end_state() {
    let dir = tempfile::tempdir().unwrap();
    let poc = start_poc();
    let (key, recipient) = keypair(dir.path());
    let bundle = export_poc(&poc, dir.path(), &recipient);
    let want = normalize(&dump(&poc, dir.path()), Side::Source);
    for (i, (name, faults)) in faulty(7).into_iter().enumerate() {
        let sub = dir.path().join(format!("run{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let prod = start_prod(&sub, faults);
        let journal = sub.join("journal");
        let (_, report) = import_with_journal(&prod, &bundle, &key, &journal);
        assert!(!report.has_problems(), "{name}:\n{}", report.render());
        let s = prod.stats();
        assert!(
            s.throttled + s.injected_errors + s.dropped > 0,
            "{name}: no fault was injected"
        );
        prod.set_faults(FaultConfig::default()).unwrap();
        let got = normalize(&dump(&prod, &sub), Side::Target);
        assert_same(&want, &got, name);
        let jobs = rt().block_on(client(&prod).jobs().list(false)).unwrap();
        assert_eq!(jobs.len(), 10, "{name}: duplicate or missing jobs");
    }
}

fn import_with_journal(
    emu: &dbxport::emulator::EmulatorHandle,
    bundle: &std::path::Path,
    key: &std::path::Path,
    journal: &std::path::Path,
) -> (dbxport::import::Plan, dbxport::import::ImportReport) {
    let src = dbxport::import::SourceBundle::open(bundle, None).unwrap();
    let c = client(emu);
    let report = rt()
        .block_on(dbxport::import::import(
            &src,
            &c,
            &options(),
            Some(&opener(key)),
            &dbxport::import::ApplyOptions {
                journal: Some(journal.to_path_buf()),
                resume: false,
                ..Default::default()
            },
            &dbxport::import::Interrupt::new(),
            &|_| {},
        ))
        .expect("the import runs");
    (report.plan().clone(), report)
}
