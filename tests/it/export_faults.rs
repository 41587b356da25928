//! An export through a hostile network gives the same payload as a clean one: 10% server
//! errors (503 and 500), rate limiting with 429 and Retry-After, dropped connections and 50 ms
//! latency are all absorbed by retries and throttling, and nothing is lost or duplicated.

use crate::support::export as support;

use dbxport::emulator::FaultConfig;
use std::collections::BTreeMap;
use support::*;

fn export_to(
    emu: &dbxport::emulator::EmulatorHandle,
    dir: &std::path::Path,
    recipient: &str,
    name: &str,
) -> (std::path::PathBuf, serde_json::Value) {
    let bundle = dir.join(name);
    let out = run({
        let mut c = export_cmd(emu, dir, &[]);
        c.args([
            "-o",
            bundle.to_str().unwrap(),
            "-r",
            recipient,
            "--secrets-cluster",
            POC_CLUSTER,
            "--warehouse-id",
            POC_WAREHOUSE,
            "--json",
        ]);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    (bundle, summary(&out))
}

#[test]
fn faults_leave_the_payload_unchanged() {
    let emu = start_poc(no_faults());
    let tmp = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(tmp.path());
    let (clean, _) = export_to(&emu, tmp.path(), &recipient, "clean.zip");
    emu.set_faults(FaultConfig {
        latency_ms: 50,
        error_rate: 0.10,
        error_statuses: vec![503, 500],
        drop_rate: 0.04,
        rate_limits: BTreeMap::from([("permissions".to_string(), 8.0)]),
        seed: 11,
        ..FaultConfig::default()
    })
    .unwrap();
    emu.reset_stats();
    let (faulty, s) = export_to(&emu, tmp.path(), &recipient, "faulty.zip");
    let stats = emu.stats();
    assert!(stats.injected_errors > 0, "{stats:?}");
    assert!(stats.dropped > 0, "{stats:?}");
    assert!(stats.throttled > 0, "{stats:?}");
    assert!(s["run"]["retries"].as_u64().unwrap() > 0);
    let a = opened_payload(&clean, &key);
    let b = opened_payload(&faulty, &key);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(b[path] == *bytes, "{path} differs after faults");
    }
    // The report is the same too, object for object.
    let ea = entries(&clean);
    let eb = entries(&faulty);
    let ra: serde_json::Value = serde_json::from_slice(&ea["export-report.json"]).unwrap();
    let rb: serde_json::Value = serde_json::from_slice(&eb["export-report.json"]).unwrap();
    assert_eq!(ra["kinds"], rb["kinds"]);
    assert_eq!(ra["must_recreate"], rb["must_recreate"]);
    assert_eq!(
        s["report"]["issues"].as_array().unwrap().len(),
        0,
        "{}",
        s["report"]
    );
}
