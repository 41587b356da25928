//! Injected faults: fixed and jittered latency, a token-bucket rate limit per endpoint family
//! or rate-limit class (429 with `Retry-After`), named limits profiles such as the published
//! per-API limits of real workspaces ([`LimitsProfile::Published`]), random 5xx answers and
//! dropped connections. Every random choice
//! comes from one ChaCha stream seeded by [`FaultConfig::seed`], and every request draws the same
//! number of values from it, so a client that sends the same requests in the same order meets the
//! same faults.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::EmulatorError;

/// Which faults to inject. The default injects none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Fixed latency added to every response, in milliseconds.
    pub latency_ms: u64,
    /// Extra latency drawn uniformly from `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Requests per second allowed per endpoint family (see [`FAMILIES`]) or rate-limit class
    /// (see [`CLASSES`]); the key `*` is one bucket shared by every request. Each bucket holds
    /// one second of burst. Entries here override the [`FaultConfig::limits`] profile's.
    pub rate_limits: BTreeMap<String, f64>,
    /// A named set of per-class rate limits applied beneath `rate_limits`.
    pub limits: LimitsProfile,
    /// Probability (0..=1) that a request is answered with a server error instead.
    pub error_rate: f64,
    /// The statuses injected errors use, chosen at random; default `[500, 503]`.
    pub error_statuses: Vec<u16>,
    /// Probability (0..=1) that the connection is closed without an answer.
    pub drop_rate: f64,
    /// When true, a dropped request is first carried out and only its answer is lost, as when a
    /// connection breaks after the server committed a change.
    pub drop_after_apply: bool,
    /// Families that latency, errors and drops apply to; empty means all.
    pub families: Vec<String>,
    /// Seed of the random stream.
    pub seed: u64,
    /// Request paths (exact, such as `/api/2.0/mlflow/runs/get`) answered 404
    /// `ENDPOINT_NOT_FOUND`, as by a workspace that does not serve that API.
    pub unserved: Vec<String>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency_ms: 0,
            jitter_ms: 0,
            rate_limits: BTreeMap::new(),
            limits: LimitsProfile::None,
            error_rate: 0.0,
            error_statuses: vec![500, 503],
            drop_rate: 0.0,
            drop_after_apply: false,
            families: Vec::new(),
            seed: 0,
            unserved: Vec::new(),
        }
    }
}

/// The endpoint families rate limits and fault filters name.
pub const FAMILIES: [&str; 16] = [
    "workspace",
    "repos",
    "jobs",
    "secrets",
    "permissions",
    "sql",
    "unity-catalog",
    "compute",
    "commands",
    "dbfs",
    "files",
    "mlflow",
    "scim",
    "auth",
    "artifacts",
    "other",
];

/// Rate-limit classes: parts of a family that real workspaces limit on their own (see
/// [`limit_class`]). A rate limit may name a class or its whole family.
pub const CLASSES: [&str; 13] = [
    "workspace.read",
    "workspace.export",
    "workspace.import",
    "permissions.read",
    "permissions.write",
    "jobs.read",
    "jobs.create",
    "jobs.run-now",
    "jobs.submit",
    "jobs.write",
    "mlflow.search",
    "mlflow.tracking",
    "scim.read",
];

/// A named set of rate limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitsProfile {
    /// No limit beyond `rate_limits`.
    #[default]
    None,
    /// The per-API limits third-party summaries quote from the Azure Databricks "resource
    /// limits" page ([`PUBLISHED_LIMITS`]); approximate.
    Published,
}

impl LimitsProfile {
    /// The profile named `name` (`none`, `published`).
    pub fn parse(name: &str) -> Option<LimitsProfile> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" => Some(LimitsProfile::None),
            "published" => Some(LimitsProfile::Published),
            _ => None,
        }
    }

    /// Its limits: class or family, requests per second.
    pub fn limits(self) -> &'static [(&'static str, f64)] {
        match self {
            LimitsProfile::None => &[],
            LimitsProfile::Published => &PUBLISHED_LIMITS,
        }
    }
}

/// The `published` profile, requests per second per workspace. Approximate: taken from
/// third-party summaries of the Azure Databricks "resource limits" page (see
/// `spec/emulator-seed.md`, "Rate limits", for each figure's source); rows marked *assumed*
/// there have no published figure of their own.
pub const PUBLISHED_LIMITS: [(&str, f64); 15] = [
    // Workspace export API.
    ("workspace.export", 60.0),
    // Workspace import API; mkdirs and delete are assumed to share it.
    ("workspace.import", 30.0),
    // list and get-status: no published figure; assumed equal to export.
    ("workspace.read", 60.0),
    // Permissions API GET, and PUT/PATCH.
    ("permissions.read", 100.0),
    ("permissions.write", 30.0),
    // Jobs API create, run-now, runs/submit; runs/get (applied to every jobs read).
    ("jobs.create", 20.0),
    ("jobs.run-now", 20.0),
    ("jobs.submit", 35.0),
    ("jobs.read", 100.0),
    // update, reset, delete: no published figure; assumed equal to create.
    ("jobs.write", 20.0),
    // DBFS API.
    ("dbfs", 30.0),
    // Secrets API.
    ("secrets", 1100.0),
    // MLflow search endpoints, and the tracking API's other endpoints.
    ("mlflow.search", 7.0),
    ("mlflow.tracking", 120.0),
    // Workspace SCIM API GET.
    ("scim.read", 255.0),
];

/// True when `key` names something a rate limit can apply to.
pub fn is_limit_key(key: &str) -> bool {
    key == "*" || FAMILIES.contains(&key) || CLASSES.contains(&key)
}

/// The rate-limit class of a request: its family, split where real workspaces limit parts of
/// it separately (workspace list/get-status, export and import; permission reads and writes;
/// jobs reads, create, run-now, submit and other writes; MLflow search and the rest of
/// tracking; SCIM reads). Families not split are their own class.
pub fn limit_class(method: &str, path: &str) -> &'static str {
    let fam = family(path);
    let read = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    match fam {
        "workspace" => {
            if path.ends_with("/workspace/export") {
                "workspace.export"
            } else if read {
                "workspace.read"
            } else {
                "workspace.import"
            }
        }
        "permissions" if read => "permissions.read",
        "permissions" => "permissions.write",
        "jobs" => {
            if path.ends_with("/jobs/create") {
                "jobs.create"
            } else if path.ends_with("/jobs/run-now") {
                "jobs.run-now"
            } else if path.ends_with("/jobs/runs/submit") {
                "jobs.submit"
            } else if read {
                "jobs.read"
            } else {
                "jobs.write"
            }
        }
        "mlflow" if path.contains("/search") => "mlflow.search",
        "mlflow" => "mlflow.tracking",
        "scim" if read => "scim.read",
        other => other,
    }
}

impl FaultConfig {
    /// The limits in force: the profile's, then `rate_limits` over them.
    pub fn effective_rate_limits(&self) -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = self
            .limits
            .limits()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        out.extend(self.rate_limits.iter().map(|(k, v)| (k.clone(), *v)));
        out
    }

    /// Checks ranges and names.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(EmulatorError::Faults(format!(
                    "{name} {rate} is outside 0..=1"
                )));
            }
        }
        for (family, rps) in &self.rate_limits {
            if !is_limit_key(family) {
                return Err(EmulatorError::Faults(format!(
                    "rate limit for unknown family `{family}`; families are {}, classes {}, or `*` for all",
                    FAMILIES.join(", "),
                    CLASSES.join(", ")
                )));
            }
            if !(rps.is_finite() && *rps > 0.0) {
                return Err(EmulatorError::Faults(format!(
                    "rate limit for `{family}` must be a positive number of requests per second"
                )));
            }
        }
        if let Some(p) = self.unserved.iter().find(|p| !p.starts_with('/')) {
            return Err(EmulatorError::Faults(format!(
                "unserved path `{p}` must be a request path starting with /"
            )));
        }
        for f in &self.families {
            if !FAMILIES.contains(&f.as_str()) {
                return Err(EmulatorError::Faults(format!("unknown family `{f}`")));
            }
        }
        if self.error_rate > 0.0 && self.error_statuses.is_empty() {
            return Err(EmulatorError::Faults(
                "error_rate is set but error_statuses is empty".to_string(),
            ));
        }
        if let Some(s) = self
            .error_statuses
            .iter()
            .find(|s| !(400..=599).contains(*s))
        {
            return Err(EmulatorError::Faults(format!(
                "error status {s} is not an HTTP error status"
            )));
        }
        Ok(())
    }

    fn is_quiet(&self) -> bool {
        self.latency_ms == 0
            && self.jitter_ms == 0
            && self.rate_limits.is_empty()
            && self.limits == LimitsProfile::None
            && self.error_rate == 0.0
            && self.drop_rate == 0.0
    }
}

/// The family of a request path, for rate limits and stats.
pub fn family(path: &str) -> &'static str {
    let p = path;
    let after_version = p
        .strip_prefix("/api/")
        .and_then(|r| r.split_once('/'))
        .map(|(_, rest)| rest)
        .unwrap_or("");
    if p.starts_with("/api/1.2/") {
        return "commands";
    }
    if p.starts_with("/oidc/")
        || p.starts_with("/.well-known/")
        || p.starts_with("/metadata/identity/")
        || p.starts_with("/msi/")
        || p == "/aad/auth"
        || p.contains("/oauth2/")
    {
        return "auth";
    }
    if p.starts_with("/signed-artifacts/") {
        return "artifacts";
    }
    let first = after_version.split('/').next().unwrap_or("");
    match first {
        "workspace" => "workspace",
        "repos" | "git-credentials" => "repos",
        "jobs" => "jobs",
        "secrets" => "secrets",
        "permissions" => "permissions",
        "sql" => "sql",
        "unity-catalog" => "unity-catalog",
        "clusters" | "instance-pools" | "policies" => "compute",
        "dbfs" => "dbfs",
        "fs" => "files",
        "mlflow" => "mlflow",
        "preview" if after_version.starts_with("preview/scim/") => "scim",
        _ => "other",
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Serve it.
    Proceed,
    /// Answer 429 with this `Retry-After`.
    Throttle(u64),
    /// Answer this error status.
    Error(u16),
    /// Close the connection without answering.
    Drop,
    /// Serve it, then close the connection without answering.
    DropAfter,
}

/// The fault decision for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decision {
    pub delay: Duration,
    pub action: Action,
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The live fault configuration with its random stream and buckets.
#[derive(Debug)]
pub(crate) struct FaultState {
    config: FaultConfig,
    limits: BTreeMap<String, f64>,
    rng: ChaCha8Rng,
    buckets: HashMap<String, Bucket>,
}

impl FaultState {
    pub fn new(config: FaultConfig) -> FaultState {
        FaultState {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            limits: config.effective_rate_limits(),
            config,
            buckets: HashMap::new(),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Replaces the configuration, restarting the random stream and refilling every bucket.
    pub fn set(&mut self, config: FaultConfig) {
        *self = FaultState::new(config);
    }

    /// Decides the fate of one request of `family` and rate-limit `class` (see
    /// [`limit_class`]; the family itself when it has no classes).
    pub fn decide(&mut self, family: &str, class: &str, now: Instant) -> Decision {
        let proceed = Decision {
            delay: Duration::ZERO,
            action: Action::Proceed,
        };
        if self.config.is_quiet() {
            return proceed;
        }
        // Always draw the same four values, so the stream stays aligned whatever happens.
        let jitter_roll: f64 = self.rng.random();
        let error_roll: f64 = self.rng.random();
        let drop_roll: f64 = self.rng.random();
        let status_roll: f64 = self.rng.random();

        let applies =
            self.config.families.is_empty() || self.config.families.iter().any(|f| f == family);
        let delay = if applies {
            let jitter = (jitter_roll * (self.config.jitter_ms as f64 + 1.0)).floor() as u64;
            Duration::from_millis(self.config.latency_ms + jitter.min(self.config.jitter_ms))
        } else {
            Duration::ZERO
        };

        // A class checks its own bucket too, once.
        let keys: &[&str] = if class == family {
            &["*", family]
        } else {
            &["*", family, class]
        };
        for &key in keys {
            if let Some(&rps) = self.limits.get(key) {
                let bucket = self.buckets.entry(key.to_string()).or_insert(Bucket {
                    tokens: rps.max(1.0),
                    last: now,
                });
                let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * rps).min(rps.max(1.0));
                bucket.last = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                } else {
                    let wait = ((1.0 - bucket.tokens) / rps).ceil().max(1.0) as u64;
                    return Decision {
                        delay,
                        action: Action::Throttle(wait),
                    };
                }
            }
        }

        if !applies {
            return proceed;
        }
        let action = if error_roll < self.config.error_rate {
            let n = self.config.error_statuses.len();
            let i = ((status_roll * n as f64) as usize).min(n - 1);
            Action::Error(self.config.error_statuses[i])
        } else if drop_roll < self.config.drop_rate {
            if self.config.drop_after_apply {
                Action::DropAfter
            } else {
                Action::Drop
            }
        } else {
            Action::Proceed
        };
        Decision { delay, action }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family("/api/2.0/workspace/list"), "workspace");
        assert_eq!(family("/api/2.2/jobs/get"), "jobs");
        assert_eq!(family("/api/2.0/preview/scim/v2/Me"), "scim");
        assert_eq!(family("/api/1.2/commands/execute"), "commands");
        assert_eq!(
            family("/api/2.1/unity-catalog/permissions/catalog/main"),
            "unity-catalog"
        );
        assert_eq!(family("/api/2.0/fs/files/Volumes/a"), "files");
        assert_eq!(family("/oidc/v1/token"), "auth");
        assert_eq!(family("/nope"), "other");
    }

    #[test]
    fn same_seed_same_faults() {
        let cfg = FaultConfig {
            error_rate: 0.3,
            drop_rate: 0.2,
            jitter_ms: 5,
            seed: 42,
            ..FaultConfig::default()
        };
        let now = Instant::now();
        let run = |cfg: &FaultConfig| {
            let mut s = FaultState::new(cfg.clone());
            (0..200)
                .map(|_| {
                    let d = s.decide("workspace", "workspace.read", now);
                    (d.delay, d.action)
                })
                .collect::<Vec<_>>()
        };
        let a = run(&cfg);
        assert_eq!(a, run(&cfg));
        assert!(a.iter().any(|(_, x)| matches!(x, Action::Error(500 | 503))));
        assert!(a.iter().any(|(_, x)| *x == Action::Drop));
        assert!(a.iter().any(|(_, x)| *x == Action::Proceed));
        let other = run(&FaultConfig { seed: 43, ..cfg });
        assert_ne!(a, other);
    }

    #[test]
    fn bucket_throttles_then_refills() {
        let mut rl = BTreeMap::new();
        rl.insert("jobs".to_string(), 2.0);
        let mut s = FaultState::new(FaultConfig {
            rate_limits: rl,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        assert_eq!(s.decide("jobs", "jobs.read", t0).action, Action::Proceed);
        assert_eq!(s.decide("jobs", "jobs.read", t0).action, Action::Proceed);
        assert_eq!(
            s.decide("jobs", "jobs.read", t0).action,
            Action::Throttle(1)
        );
        assert_eq!(
            s.decide("workspace", "workspace.read", t0).action,
            Action::Proceed
        );
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(s.decide("jobs", "jobs.read", t1).action, Action::Proceed);
    }

    #[test]
    fn classes() {
        assert_eq!(
            limit_class("GET", "/api/2.0/workspace/list"),
            "workspace.read"
        );
        assert_eq!(
            limit_class("GET", "/api/2.0/workspace/get-status"),
            "workspace.read"
        );
        assert_eq!(
            limit_class("GET", "/api/2.0/workspace/export"),
            "workspace.export"
        );
        assert_eq!(
            limit_class("POST", "/api/2.0/workspace/import"),
            "workspace.import"
        );
        assert_eq!(
            limit_class("POST", "/api/2.0/workspace/mkdirs"),
            "workspace.import"
        );
        assert_eq!(
            limit_class("GET", "/api/2.0/permissions/notebooks/1"),
            "permissions.read"
        );
        assert_eq!(
            limit_class("PATCH", "/api/2.0/permissions/notebooks/1"),
            "permissions.write"
        );
        assert_eq!(limit_class("POST", "/api/2.2/jobs/create"), "jobs.create");
        assert_eq!(limit_class("GET", "/api/2.2/jobs/list"), "jobs.read");
        assert_eq!(limit_class("POST", "/api/2.2/jobs/reset"), "jobs.write");
        assert_eq!(
            limit_class("POST", "/api/2.0/mlflow/registered-models/search"),
            "mlflow.search"
        );
        assert_eq!(limit_class("GET", "/api/2.0/dbfs/list"), "dbfs");
        for (key, _) in PUBLISHED_LIMITS {
            assert!(is_limit_key(key), "{key}");
        }
        for class in CLASSES {
            assert!(
                FAMILIES.contains(&class.split('.').next().unwrap()),
                "{class}"
            );
        }
    }

    #[test]
    fn published_profile_limits_each_class_on_its_own() {
        let mut overrides = BTreeMap::new();
        overrides.insert("dbfs".to_string(), 2.0);
        let mut s = FaultState::new(FaultConfig {
            limits: LimitsProfile::Published,
            rate_limits: overrides,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        let allowed = |s: &mut FaultState, fam: &str, class: &str| {
            (0..200)
                .filter(|_| s.decide(fam, class, t0).action == Action::Proceed)
                .count()
        };
        // One second of burst each: export's 60 does not spend import's 30 nor list's 60.
        assert_eq!(allowed(&mut s, "workspace", "workspace.export"), 60);
        assert_eq!(allowed(&mut s, "workspace", "workspace.import"), 30);
        assert_eq!(allowed(&mut s, "workspace", "workspace.read"), 60);
        assert_eq!(allowed(&mut s, "permissions", "permissions.write"), 30);
        assert_eq!(allowed(&mut s, "permissions", "permissions.read"), 100);
        assert_eq!(allowed(&mut s, "jobs", "jobs.create"), 20);
        assert_eq!(allowed(&mut s, "mlflow", "mlflow.search"), 7);
        // An explicit limit overrides the profile's.
        assert_eq!(allowed(&mut s, "dbfs", "dbfs"), 2);
        // A family the profile leaves alone is not limited.
        assert_eq!(allowed(&mut s, "repos", "repos"), 200);
        assert_eq!(
            LimitsProfile::parse("Published"),
            Some(LimitsProfile::Published)
        );
        assert_eq!(LimitsProfile::parse("nope"), None);
    }

    #[test]
    fn validation() {
        let bad = FaultConfig {
            error_rate: 1.5,
            ..FaultConfig::default()
        };
        assert!(bad.validate().is_err());
        let mut rl = BTreeMap::new();
        rl.insert("nope".to_string(), 1.0);
        assert!(FaultConfig {
            rate_limits: rl,
            ..FaultConfig::default()
        }
        .validate()
        .is_err());
        assert!(FaultConfig::default().validate().is_ok());
    }
}
