//! Benchmark driver for `scripts/bench-bundle`: writes a bundle holding one payload file along
//! the path `dbxport export` and `models export` take. The payload is first staged, as an
//! export stages what it downloads (not timed: that copy belongs to the download); then
//! `BagBuilder::write_bundle_file` — streamed to a temporary file, read back and verified
//! (§11), synced and renamed to OUT.zip — is timed, with peak memory.
//!
//! Usage: bundle_bench write PAYLOAD OUT.zip
//! Prints one JSON line: {"bytes","total_s","peak_rss_kib"}.

use dbxport::bundle::resource::{Content, Resource};
use dbxport::bundle::{BagBuilder, BagSettings, Source};
use dbxport::model::workspace::ObjectInfo;
use std::path::PathBuf;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 || args[1] != "write" {
        eprintln!("usage: bundle_bench write PAYLOAD OUT.zip");
        std::process::exit(2);
    }
    let payload = PathBuf::from(&args[2]);
    let out = PathBuf::from(&args[3]);
    let bytes = std::fs::metadata(&payload).expect("payload exists").len();
    let settings = BagSettings::new(
        Source {
            host: "https://bench.invalid".into(),
            workspace_id: "1".into(),
        },
        serde_json::json!({}),
    );
    // A workspace file: its record needs no other record, so the bundle verifies on its own.
    let info: ObjectInfo = serde_json::from_value(serde_json::json!({
        "object_type": "FILE", "path": "/bench/payload.bin", "object_id": 1
    }))
    .expect("object info");
    let staging = tempfile::Builder::new()
        .prefix(".bundle-bench.")
        .tempdir_in(out.parent().expect("OUT has a folder"))
        .expect("staging folder");
    let builder = BagBuilder::create(
        &staging.path().join(&settings.bag_name),
        settings.clone(),
        None,
    )
    .expect("staging bag");
    builder
        .add(Resource::workspace_file(&info, Content::File(payload)))
        .expect("payload staged");
    let t0 = Instant::now();
    builder
        .write_bundle_file(&out, None, true)
        .expect("bundle written and verified");
    let total = t0.elapsed().as_secs_f64();
    println!(
        "{{\"bytes\":{bytes},\"total_s\":{total:.3},\"peak_rss_kib\":{}}}",
        peak_rss_kib()
    );
}
