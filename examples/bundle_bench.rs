//! Benchmark driver for `scripts/bench-bundle`: writes a bundle holding one payload file with
//! the streaming writer (the hot path of an export), and reports how long the writing took,
//! how long syncing the result to disk took, and peak memory.
//!
//! Usage: bundle_bench write PAYLOAD OUT.zip
//! Prints one JSON line: {"bytes","write_s","sync_s","total_s","peak_rss_kib"}. `write_s` ends
//! when every byte has been handed to the kernel; `sync_s` is the `fsync` that makes it durable,
//! after which the file is renamed to OUT.zip — the same steps `write_bundle_file` takes.

use dbxport::bundle::resource::{Content, Resource};
use dbxport::bundle::{write_bundle, BagSettings, Source};
use std::io::{BufWriter, Write};
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
    let resources = vec![Resource::model_artifact(
        "bench",
        "1",
        "payload.bin",
        Content::File(payload),
    )];
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let t0 = Instant::now();
    let mut tmp = tempfile::Builder::new()
        .prefix(".bench.")
        .tempfile_in(dir)
        .expect("temporary file");
    {
        let buf = BufWriter::with_capacity(dbxport::bundle::digest::BUF, tmp.as_file_mut());
        let (mut buf, _) = write_bundle(buf, &settings, None, resources, Default::default())
            .expect("bundle written");
        buf.flush().expect("flushed");
    }
    let t1 = Instant::now();
    tmp.as_file().sync_all().expect("synced");
    let t2 = Instant::now();
    tmp.persist(&out).expect("renamed");
    let (w, s) = ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64());
    println!(
        "{{\"bytes\":{bytes},\"write_s\":{w:.3},\"sync_s\":{s:.3},\"total_s\":{:.3},\"peak_rss_kib\":{}}}",
        w + s,
        peak_rss_kib()
    );
}
