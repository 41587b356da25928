//! Injected faults (latency, rate limits, server errors, dropped connections), their
//! reproducibility from a seed, the request stats, and the `/emulator/*` control endpoints.

use crate::support::emulator as support;

use std::collections::BTreeMap;
use std::time::Instant;

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultConfig};
use serde_json::json;
use support::*;

const TOKEN: &str = "dapi-faults";

async fn start(faults: FaultConfig) -> (EmulatorHandle, Api) {
    let emu = Emulator::start(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_faults(faults)
            .with_manual_clock(),
    )
    .await
    .expect("emulator starts");
    let api = Api::new(emu.url(), TOKEN);
    (emu, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_routes_reads_and_mutations() {
    let (emu, api) = start(FaultConfig::default()).await;
    api.post("/api/2.0/workspace/mkdirs", json!({"path": "/Shared/a"}))
        .await
        .ok();
    api.get("/api/2.0/workspace/list?path=/Shared").await.ok();
    api.get("/api/2.0/workspace/list?path=/Shared/a").await.ok();
    api.get("/api/2.0/repos/77")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    api.get("/api/2.0/unknown")
        .await
        .err(404, "ENDPOINT_NOT_FOUND");
    Api::anonymous(emu.url())
        .get("/api/2.0/workspace/list?path=/")
        .await;
    let s = emu.stats();
    assert_eq!(s.total, 6);
    assert_eq!((s.read, s.mutating), (3, 1));
    assert_eq!(s.count("GET /api/2.0/workspace/list"), 2);
    assert_eq!(s.count("POST /api/2.0/workspace/mkdirs"), 1);
    assert_eq!(s.routes["GET /api/2.0/repos/{id}"].statuses[&404], 1);
    assert_eq!(s.mutating_routes(), vec!["POST /api/2.0/workspace/mkdirs"]);
    assert_eq!((s.unknown_endpoints, s.unauthenticated), (1, 1));
    assert_eq!(s.count_method("GET"), 3);
    // The same counts over HTTP; control requests are not counted.
    let over_http = api.get("/emulator/stats").await.ok();
    assert_eq!(over_http["mutating"], 1);
    assert_eq!(
        over_http["routes"]["GET /api/2.0/workspace/list"]["count"],
        2
    );
    api.post("/emulator/stats/reset", json!({})).await.ok();
    assert_eq!(emu.stats(), dbxport::emulator::Stats::default());
    emu.reset_stats();
    // Control endpoints need the token like any API.
    assert_eq!(
        Api::anonymous(emu.url())
            .get("/emulator/stats")
            .await
            .code(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let mut limits = BTreeMap::new();
    limits.insert("workspace".to_string(), 2.0);
    let (emu, api) = start(FaultConfig {
        rate_limits: limits,
        ..FaultConfig::default()
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = api.get("/api/2.0/workspace/list?path=/").await;
        if r.code() == 429 {
            assert_eq!(r.headers["retry-after"], "1");
            assert_eq!(r.json["error_code"], "REQUEST_LIMIT_EXCEEDED");
        }
        codes.push(r.code());
    }
    assert_eq!(codes, vec![200, 200, 429]);
    // Another family has its own bucket.
    api.get("/api/2.0/preview/scim/v2/Me").await.ok();
    // 600 ms at 2 requests/s refills more than one token (the clock moved over HTTP).
    api.post("/emulator/clock/advance", json!({"seconds": 0.6}))
        .await
        .ok();
    api.get("/api/2.0/workspace/list?path=/").await.ok();
    let s = emu.stats();
    assert_eq!(s.throttled, 1);
    assert_eq!(
        s.count("GET /api/2.0/workspace/list"),
        3,
        "throttled requests reach no route"
    );
}

async fn status_sequence(seed: u64) -> Vec<u16> {
    let (_emu, api) = start(FaultConfig {
        error_rate: 0.4,
        seed,
        ..FaultConfig::default()
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..40 {
        let r = api.get("/api/2.0/workspace/get-status?path=/Shared").await;
        if r.code() != 200 {
            let code = r.json["error_code"].as_str().unwrap().to_string();
            match r.code() {
                500 => assert_eq!(code, "INTERNAL_ERROR"),
                503 => {
                    assert_eq!(code, "TEMPORARILY_UNAVAILABLE");
                    assert_eq!(r.headers["retry-after"], "1");
                }
                other => panic!("unexpected status {other}"),
            }
        }
        out.push(r.code());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_are_reproducible_from_the_seed() {
    let a = status_sequence(7).await;
    let b = status_sequence(7).await;
    assert_eq!(a, b, "same seed, same faults");
    assert!(
        a.contains(&200) && a.contains(&500) && a.contains(&503),
        "{a:?}"
    );
    let c = status_sequence(8).await;
    assert_ne!(a, c, "another seed, other faults");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_close_without_an_answer() {
    let (emu, api) = start(FaultConfig {
        drop_rate: 1.0,
        families: vec!["workspace".to_string()],
        ..FaultConfig::default()
    })
    .await;
    let err = api
        .http
        .post(api.url("/api/2.0/workspace/mkdirs"))
        .bearer_auth(TOKEN)
        .json(&json!({"path": "/Shared/dropped"}))
        .send()
        .await
        .expect_err("the connection is closed without an answer");
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err:?}"
    );
    // Other families are untouched; the dropped mkdirs was never carried out.
    emu.set_faults(FaultConfig::default()).unwrap();
    api.get("/api/2.0/workspace/get-status?path=/Shared/dropped")
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    // drop_after_apply: the change is made, only the answer is lost.
    emu.set_faults(FaultConfig {
        drop_rate: 1.0,
        drop_after_apply: true,
        ..FaultConfig::default()
    })
    .unwrap();
    let r = api
        .http
        .post(api.url("/api/2.0/workspace/mkdirs"))
        .bearer_auth(TOKEN)
        .json(&json!({"path": "/Shared/applied"}))
        .send()
        .await;
    assert!(r.is_err());
    emu.set_faults(FaultConfig::default()).unwrap();
    api.get("/api/2.0/workspace/get-status?path=/Shared/applied")
        .await
        .ok();
    let s = emu.stats();
    assert_eq!(s.dropped, 2);
    assert_eq!(
        s.count("POST /api/2.0/workspace/mkdirs"),
        1,
        "only the applied one reached the route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_jitter_delay_answers() {
    let (_emu, api) = start(FaultConfig {
        latency_ms: 120,
        jitter_ms: 40,
        seed: 3,
        ..FaultConfig::default()
    })
    .await;
    for _ in 0..3 {
        let t = Instant::now();
        api.get("/api/2.0/workspace/list?path=/").await.ok();
        let ms = t.elapsed().as_millis();
        assert!(ms >= 120, "answered after {ms} ms");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_endpoint_sets_and_checks_faults() {
    let (emu, api) = start(FaultConfig::default()).await;
    let set = api
        .post(
            "/emulator/faults",
            json!({"error_rate": 1.0, "error_statuses": [503], "families": ["jobs"], "seed": 1}),
        )
        .await
        .ok();
    assert_eq!(set["error_statuses"], json!([503]));
    assert_eq!(
        api.get("/emulator/faults").await.ok()["families"],
        json!(["jobs"])
    );
    assert_eq!(emu.faults().error_rate, 1.0);
    api.get("/api/2.2/jobs/list")
        .await
        .err(503, "TEMPORARILY_UNAVAILABLE");
    api.get("/api/2.0/workspace/list?path=/").await.ok();
    for bad in [
        json!({"error_rate": 2.0}),
        json!({"rate_limits": {"nope": 1.0}}),
        json!({"rate_limits": {"jobs": 0}}),
        json!({"error_statuses": [200], "error_rate": 0.1}),
        json!({"latency": 5}),
    ] {
        api.post("/emulator/faults", bad.clone())
            .await
            .err(400, "INVALID_PARAMETER_VALUE");
    }
    assert!(emu
        .set_faults(FaultConfig {
            drop_rate: -0.1,
            ..FaultConfig::default()
        })
        .is_err());
    assert_eq!(emu.stats().injected_errors, 1);
}

#[test]
fn background_emulators_run_side_by_side() {
    let a = Emulator::start_in_background(EmulatorConfig::default()).expect("first");
    let b = Emulator::start_in_background(EmulatorConfig::default().with_token("dapi-b"))
        .expect("second");
    assert_ne!(a.url(), b.url());
    assert_eq!(b.admin_token(), "dapi-b");
    // Without any token configured, a made-up admin token still lets tests in.
    assert!(a.admin_token().starts_with("dapi-emulator-"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for emu in [&a, &b] {
            let api = Api::new(emu.url(), emu.admin_token());
            api.post(
                "/api/2.0/workspace/mkdirs",
                json!({"path": format!("/Shared/{}", emu.addr().port())}),
            )
            .await
            .ok();
        }
        let api = Api::new(a.url(), a.admin_token());
        api.get(&format!(
            "/api/2.0/workspace/get-status?path=/Shared/{}",
            b.addr().port()
        ))
        .await
        .err(404, "RESOURCE_DOES_NOT_EXIST");
    });
    let url = b.url().to_string();
    b.shutdown();
    let refused =
        rt.block_on(async { reqwest::get(format!("{url}/.well-known/databricks-config")).await });
    assert!(refused.is_err(), "a shut-down emulator no longer answers");
    assert_eq!(a.stats().mutating, 1);
}
