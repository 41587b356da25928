//! `dbxport emulator`: serve a Databricks-compatible emulator on loopback until interrupted,
//! for offline rehearsals and demos.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};

use dbxport::emulator::{
    is_limit_key, Emulator, EmulatorConfig, EmulatorError, FaultConfig, LimitsProfile, CLASSES,
    FAMILIES,
};

use super::EXIT_OK;
use dbxport::hints::Hint;

/// Serve a Databricks-compatible emulator until interrupted (Ctrl-C).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Seed workspace directory to load (format: spec/emulator-seed.md).
    #[arg(long, value_name = "DIR")]
    pub seed: Option<PathBuf>,
    /// A bearer token the emulator accepts, acting as its first admin (repeatable). A fake
    /// credential for a fake workspace; prefer the environment variable to keep it out of
    /// process listings.
    #[arg(
        long = "token",
        value_name = "TOKEN",
        env = "DBXPORT_EMULATOR_TOKEN",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub tokens: Vec<String>,
    /// Fixed latency added to every response, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra random latency of up to this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub jitter_ms: u64,
    /// Rate limit as FAMILY=RPS per endpoint family or class (`workspace`, `workspace.export`,
    /// `permissions.write`, …), or RPS for one bucket over all requests (repeatable); answered
    /// with 429 and Retry-After. Overrides the `--limits` profile for what it names.
    #[arg(long = "rate-limit", value_name = "[FAMILY=]RPS")]
    pub rate_limits: Vec<String>,
    /// A named set of per-class rate limits: `published` models the approximate per-API limits
    /// quoted for real workspaces (workspace export 60/s, import 30/s, permissions reads 100/s
    /// and writes 30/s, jobs create 20/s, DBFS 30/s, MLflow search 7/s, …; see
    /// spec/emulator-seed.md); `none` (the default) sets none.
    #[arg(long, value_name = "PROFILE", default_value = "none", value_parser = parse_profile)]
    pub limits: LimitsProfile,
    /// Probability (0..1) of answering a request with a random 500 or 503.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Probability (0..1) of closing the connection without an answer.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Carry out a dropped request before closing its connection.
    #[arg(long)]
    pub drop_after_apply: bool,
    /// Seed of the fault random stream, so that a run can be repeated.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fault_seed: u64,
    /// Lifetime of the OAuth access tokens the workspace's OAuth server issues, in seconds
    /// (short lifetimes rehearse token refresh).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub oauth_token_ttl: u64,
    /// Stamp every timestamp the emulator assigns with this epoch-millisecond value.
    #[arg(long, value_name = "EPOCH_MS")]
    pub fixed_clock: Option<i64>,
    /// Let tokens expire and rate limits refill only when the clock is moved
    /// (`POST /emulator/clock/advance {"seconds": N}`), for tests of timed behaviour.
    #[arg(long)]
    pub manual_clock: bool,
    /// Print the start-up line as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_profile(s: &str) -> Result<LimitsProfile, String> {
    LimitsProfile::parse(s)
        .ok_or_else(|| format!("unknown limits profile `{s}`; use published or none"))
}

fn rate_limits(specs: &[String]) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let (family, rps) = match s.split_once('=') {
            Some((f, r)) => (f.trim().to_string(), r),
            None => ("*".to_string(), s.as_str()),
        };
        let rps: f64 = rps
            .trim()
            .parse()
            .with_context(|| format!("--rate-limit {s}: not a number of requests per second"))?;
        if !is_limit_key(&family) {
            bail!(
                "--rate-limit {s}: unknown family `{family}`\n{}",
                Hint::EmulatorFamily.with(&[(
                    "families",
                    &format!("{}, {}", FAMILIES.join(", "), CLASSES.join(", "))
                )])
            );
        }
        out.insert(family, rps);
    }
    Ok(out)
}

/// Serves until Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let token_hint = if !args.tokens.is_empty() {
        "use the token you passed with --token (or DBXPORT_EMULATOR_TOKEN)".to_string()
    } else if let Some(seed) = args
        .seed
        .as_ref()
        .filter(|s| s.join("tokens.json").is_file())
    {
        format!("use a token from {}", seed.join("tokens.json").display())
    } else {
        bail!(
            "emulator: no credential to accept\n{}",
            Hint::EmulatorNoToken
        );
    };
    let faults = FaultConfig {
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        rate_limits: rate_limits(&args.rate_limits)?,
        limits: args.limits,
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
        drop_after_apply: args.drop_after_apply,
        seed: args.fault_seed,
        ..FaultConfig::default()
    };
    let config = EmulatorConfig {
        addr: args.addr,
        seed: args.seed.clone(),
        tokens: args.tokens,
        faults,
        fixed_clock: args.fixed_clock,
        oauth_token_ttl_secs: args.oauth_token_ttl,
        manual_clock: args.manual_clock,
        ..EmulatorConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("emulator: cannot start the async runtime")?;
    runtime.block_on(async move {
        let handle = Emulator::start(config).await.map_err(|e| match e {
            EmulatorError::Bind { .. } => anyhow::anyhow!("{e}\n{}", Hint::EmulatorAddrInUse),
            other => other.into(),
        })?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({"url": handle.url(), "workspace_id": handle.workspace_id()})
            );
        } else {
            println!("dbxport emulator: serving {}", handle.url());
            println!("token: {token_hint}");
            println!(
                "control: {0}/emulator/stats, {0}/emulator/faults, {0}/emulator/dump; Ctrl-C stops",
                handle.url()
            );
        }
        tokio::signal::ctrl_c()
            .await
            .context("emulator: cannot wait for Ctrl-C")?;
        handle.stop_and_wait().await;
        Ok::<u8, anyhow::Error>(EXIT_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_specs() {
        let r = rate_limits(&["workspace=5".into(), "100".into()]).unwrap();
        assert_eq!(r.get("workspace"), Some(&5.0));
        assert_eq!(r.get("*"), Some(&100.0));
        assert!(rate_limits(&["nope=1".into()]).is_err());
        let r = rate_limits(&["workspace.export=7".into()]).unwrap();
        assert_eq!(r.get("workspace.export"), Some(&7.0));
        assert_eq!(parse_profile("published"), Ok(LimitsProfile::Published));
        assert!(parse_profile("fast").is_err());
        assert!(rate_limits(&["jobs=x".into()]).is_err());
    }
}
