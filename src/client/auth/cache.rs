//! The Databricks CLI's token cache, `~/.databricks/token-cache.json`, read and written in its
//! own format so that a sign-in is shared between `databricks` and dbxport:
//!
//! ```json
//! { "version": 1,
//!   "tokens": { "<profile or host>": { "access_token": "…", "token_type": "Bearer",
//!                                      "refresh_token": "…", "expiry": "2025-01-01T10:00:00.5Z" } } }
//! ```
//!
//! Entries are keyed by profile name (current CLIs) and by host (`https://…`, older CLIs and
//! sign-ins without a profile); `expiry` is RFC 3339 (Go's `time.Time`; the zero time means
//! none). Another version is refused rather than rewritten. Refreshes hold the CLI's own
//! advisory lock, an exclusive `flock` on `~/.databricks/token-cache.lock`, around the
//! read-refresh-write sequence, so that two processes never spend the same refresh token. The
//! file is replaced atomically and stays mode 0600 in a 0700 directory. Unknown fields, and
//! every other entry, are kept as they are.

use super::m2m::EndpointCache;
use super::{bearer, post_token_form, secret, FetchError, Token, Wording, REFRESH_MARGIN};
use crate::client::config::TokenCacheOptions;
use crate::client::error::ClientError;
use crate::client::transport::Transport;
use crate::hints::Filled;
use age::secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The only cache format version there is.
const VERSION: u64 = 1;
/// How long to wait for another process's refresh.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// One cached sign-in.
pub(crate) struct CachedToken {
    pub access_token: SecretString,
    pub token_type: String,
    pub refresh_token: Option<SecretString>,
    /// `None`: no expiry recorded.
    pub expiry: Option<OffsetDateTime>,
}

impl CachedToken {
    /// The sign-in a token endpoint answered with (`access` is its checked access token). A
    /// refresh that returns no new refresh token keeps `previous_refresh`.
    pub fn from_answer(
        resp: &super::TokenResponse,
        access: &str,
        previous_refresh: Option<SecretString>,
    ) -> CachedToken {
        CachedToken {
            access_token: secret(access),
            token_type: resp.token_type.clone().unwrap_or_else(|| "Bearer".into()),
            refresh_token: resp
                .refresh_token
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(secret)
                .or(previous_refresh),
            expiry: resp.lifetime().map(|l| OffsetDateTime::now_utc() + l),
        }
    }

    /// How long the access token stays valid from now (zero when expired); `None` when the
    /// cache records no expiry.
    pub fn valid_for(&self) -> Option<Duration> {
        let left = self.expiry? - OffsetDateTime::now_utc();
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }
}

/// A whole cache file, unknown fields kept.
#[derive(Default)]
pub(crate) struct CacheFile {
    root: Map<String, Value>,
}

/// Why a cache could not be used.
#[derive(Debug)]
pub(crate) struct CacheError(pub String);

fn parse_expiry(v: Option<&Value>) -> Result<Option<OffsetDateTime>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let t = OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|e| format!("expiry `{s}` is not an RFC 3339 time: {e}"))?;
            // Go's zero time.Time: no expiry.
            Ok((t.year() > 1).then_some(t))
        }
        Some(other) => Err(format!("expiry is {other}, not a time")),
    }
}

impl CacheFile {
    /// Parses a cache file's text.
    pub fn parse(text: &[u8]) -> Result<CacheFile, String> {
        let v: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(root) = v else {
            return Err("not a JSON object".into());
        };
        match root.get("version").and_then(Value::as_u64) {
            Some(VERSION) => {}
            other => {
                return Err(format!(
                    "needs version {VERSION}, got {}",
                    other
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "none".into())
                ))
            }
        }
        if !root.get("tokens").is_none_or(Value::is_object) {
            return Err("`tokens` is not an object".into());
        }
        Ok(CacheFile { root })
    }

    fn tokens(&self) -> Option<&Map<String, Value>> {
        self.root.get("tokens").and_then(Value::as_object)
    }

    /// The first entry under `keys`, with the key it was found under.
    pub fn lookup(&self, keys: &[String]) -> Result<Option<(String, CachedToken)>, String> {
        let Some(tokens) = self.tokens() else {
            return Ok(None);
        };
        for k in keys {
            let Some(e) = tokens.get(k) else { continue };
            let s = |f: &str| e.get(f).and_then(Value::as_str).filter(|v| !v.is_empty());
            let Some(access) = s("access_token") else {
                return Err(format!("entry `{k}` has no access_token"));
            };
            return Ok(Some((
                k.clone(),
                CachedToken {
                    access_token: secret(access),
                    token_type: s("token_type").unwrap_or("Bearer").to_string(),
                    refresh_token: s("refresh_token").map(secret),
                    expiry: parse_expiry(e.get("expiry"))
                        .map_err(|m| format!("entry `{k}`: {m}"))?,
                },
            )));
        }
        Ok(None)
    }

    /// Stores `t` under `key`, keeping the entry's other fields and every other entry.
    pub fn put(&mut self, key: &str, t: &CachedToken) {
        self.root.entry("version").or_insert(Value::from(VERSION));
        let tokens = self
            .root
            .entry("tokens")
            .or_insert_with(|| Value::Object(Map::new()));
        if !tokens.is_object() {
            *tokens = Value::Object(Map::new());
        }
        let Value::Object(tokens) = tokens else {
            return;
        };
        let entry = tokens
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(e) = entry else { return };
        e.insert(
            "access_token".into(),
            Value::from(t.access_token.expose_secret()),
        );
        e.insert("token_type".into(), Value::from(t.token_type.as_str()));
        match &t.refresh_token {
            Some(r) => {
                e.insert("refresh_token".into(), Value::from(r.expose_secret()));
            }
            None => {
                e.remove("refresh_token");
            }
        }
        match t.expiry.and_then(|x| x.format(&Rfc3339).ok()) {
            Some(x) => {
                e.insert("expiry".into(), Value::from(x));
            }
            None => {
                e.remove("expiry");
            }
        }
    }

    /// Keys whose entry holds this refresh token (the CLI writes one sign-in under both the
    /// profile and the host; a rotated refresh token must replace it in each).
    pub fn keys_with_refresh(&self, refresh: &str) -> Vec<String> {
        self.tokens()
            .map(|t| {
                t.iter()
                    .filter(|(_, e)| {
                        e.get("refresh_token").and_then(Value::as_str) == Some(refresh)
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The file's bytes (indented as the CLI writes it).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            serde_json::to_vec_pretty(&Value::Object(self.root.clone())).unwrap_or_default(),
        )
    }
}

/// Reads the cache; `None` when the file does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<CacheFile>, CacheError> {
    match std::fs::read(path) {
        Ok(b) => {
            let b = Zeroizing::new(b);
            CacheFile::parse(&b)
                .map(Some)
                .map_err(|m| CacheError(format!("{}: {m}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CacheError(format!("{}: {e}", path.display()))),
    }
}

/// Replaces the cache atomically: a 0600 temporary file beside it, renamed over it.
pub(crate) fn write(path: &Path, cache: &CacheFile) -> Result<(), CacheError> {
    let err = |e: std::io::Error| CacheError(format!("{}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".token-cache-")
        .tempfile_in(dir)
        .map_err(err)?;
    // tempfile creates the file 0600 already; say so explicitly for any umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    use std::io::Write as _;
    tmp.write_all(&cache.to_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

/// The CLI's advisory lock, held until dropped.
pub(crate) struct Lock {
    _file: std::fs::File,
}

impl Lock {
    /// Waits for the exclusive lock on `path` (polling as the CLI does).
    pub(crate) async fn acquire(path: &Path) -> Result<Lock, CacheError> {
        let err = |e: std::io::Error| CacheError(format!("lock {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(err)?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.create(true).truncate(false).read(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            o.mode(0o600);
        }
        let file = o.open(path).map_err(err)?;
        let started = std::time::Instant::now();
        loop {
            if try_lock(&file).map_err(err)? {
                return Ok(Lock { _file: file });
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(CacheError(format!(
                    "{} is held by another process for more than {} s",
                    path.display(),
                    LOCK_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(unix)]
fn try_lock(f: &std::fs::File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Without flock the lock is not taken; the atomic rename still keeps the file whole.
#[cfg(not(unix))]
fn try_lock(_f: &std::fs::File) -> std::io::Result<bool> {
    Ok(true)
}

/// A sign-in read from (and refreshed into) a token cache by one OAuth client.
pub(crate) struct CacheSource {
    pub cache: TokenCacheOptions,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub discovery_url: Option<String>,
    pub endpoints: EndpointCache,
    /// The method's name and what to do when the sign-in is gone, for messages.
    pub method: &'static str,
    pub relogin: Filled,
}

/// What the cache held.
pub(crate) enum Cached {
    /// A usable token (refreshed if it had to be).
    Token(Token),
    /// No sign-in for this workspace.
    Missing(PathBuf),
}

impl CacheSource {
    /// The workspace's token from the cache, refreshed (and written back) when it expires
    /// within the refresh margin, or when `renew` says the workspace refused it.
    pub(crate) async fn token(&self, t: &Transport, renew: bool) -> Result<Cached, FetchError> {
        let cache_err = |e: CacheError| {
            FetchError::Other(ClientError::Auth {
                call: "token cache".into(),
                message: format!(
                    "{}: cannot use the token cache: {}\n{}",
                    self.method, e.0, self.relogin
                ),
            })
        };
        let _lock = Lock::acquire(&self.cache.lock).await.map_err(cache_err)?;
        let Some(mut file) = read(&self.cache.file).map_err(cache_err)? else {
            return Ok(Cached::Missing(self.cache.file.clone()));
        };
        let found = file
            .lookup(&self.cache.keys)
            .map_err(|m| cache_err(CacheError(format!("{}: {m}", self.cache.file.display()))))?;
        let Some((key, entry)) = found else {
            return Ok(Cached::Missing(self.cache.file.clone()));
        };
        let left = entry.valid_for();
        if !renew && left.is_none_or(|l| l > REFRESH_MARGIN) {
            tracing::debug!(target: "dbxport::client", key = %key, "token cache: current token");
            return Ok(Cached::Token(Token {
                headers: vec![
                    bearer(&entry.token_type, entry.access_token.expose_secret())
                        .map_err(FetchError::Other)?,
                ],
                lifetime: left,
            }));
        }
        let Some(refresh) = &entry.refresh_token else {
            return Err(FetchError::Refused(
                "token cache".into(),
                format!(
                    "{}: the signed-in token for {key} has expired or was refused, and the cache holds no refresh token\n{}",
                    self.method, self.relogin
                ),
            ));
        };
        let endpoints = self
            .endpoints
            .get(t, self.discovery_url.as_deref(), self.method)
            .await
            .map_err(FetchError::Other)?;
        let mut form = vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            (
                "refresh_token".to_string(),
                refresh.expose_secret().to_string(),
            ),
            ("client_id".to_string(), self.client_id.clone()),
        ];
        if let Some(s) = &self.client_secret {
            form.push(("client_secret".into(), s.expose_secret().to_string()));
        }
        let resp = post_token_form(
            t,
            &endpoints.token,
            format!("refresh of {key}"),
            None,
            form,
            Wording {
                method: self.method,
                subject: "the refresh token (it expired or was revoked)",
                hint: self.relogin.clone(),
            },
        )
        .await?;
        let what = format!("POST {} (refresh of {key})", endpoints.token);
        let access = resp.access(&what, self.method)?;
        let lifetime = resp.lifetime();
        let renewed = CachedToken::from_answer(&resp, &access, entry.refresh_token.clone());
        let mut keys = file.keys_with_refresh(refresh.expose_secret());
        if !keys.contains(&key) {
            keys.push(key.clone());
        }
        for k in &keys {
            file.put(k, &renewed);
        }
        write(&self.cache.file, &file).map_err(cache_err)?;
        tracing::debug!(target: "dbxport::client", key = %key, "token cache: refreshed");
        Ok(Cached::Token(Token {
            headers: vec![bearer(&renewed.token_type, &access).map_err(FetchError::Other)?],
            lifetime,
        }))
    }

    /// Writes a new sign-in under every key (profile and host, as the CLI does).
    pub(crate) async fn store(&self, t: &CachedToken) -> Result<(), CacheError> {
        let _lock = Lock::acquire(&self.cache.lock).await?;
        let mut file = read(&self.cache.file)?.unwrap_or_default();
        for k in &self.cache.keys {
            file.put(k, t);
        }
        write(&self.cache.file, &file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
  "version": 1,
  "tokens": {
    "https://adb-1.2.azuredatabricks.net": {
      "access_token": "acc-1",
      "token_type": "Bearer",
      "refresh_token": "ref-1",
      "expiry": "2031-03-04T05:06:07.123456789+01:00",
      "custom": 7
    },
    "dev": { "access_token": "acc-2", "token_type": "Bearer", "expiry": "0001-01-01T00:00:00Z" },
    "other": { "access_token": "acc-3", "refresh_token": "ref-1" }
  },
  "extra": true
}"#;

    #[test]
    fn parses_the_cli_format() {
        let c = CacheFile::parse(SAMPLE.as_bytes()).unwrap();
        let (k, t) = c
            .lookup(&[
                "missing".into(),
                "https://adb-1.2.azuredatabricks.net".into(),
            ])
            .unwrap()
            .unwrap();
        assert_eq!(k, "https://adb-1.2.azuredatabricks.net");
        assert_eq!(t.access_token.expose_secret(), "acc-1");
        assert_eq!(t.refresh_token.as_ref().unwrap().expose_secret(), "ref-1");
        assert_eq!(
            t.expiry.unwrap(),
            time::macros::datetime!(2031-03-04 04:06:07.123456789 UTC)
        );
        assert!(t.valid_for().unwrap() > Duration::from_secs(3600));
        // Go's zero time is no expiry; the profile key is found first.
        let (k, t) = c
            .lookup(&["dev".into(), "https://x".into()])
            .unwrap()
            .unwrap();
        assert_eq!(k, "dev");
        assert!(t.expiry.is_none() && t.valid_for().is_none() && t.refresh_token.is_none());
        assert_eq!(c.keys_with_refresh("ref-1").len(), 2);
    }

    #[test]
    fn refuses_other_versions_and_shapes() {
        assert!(CacheFile::parse(br#"{"version":2,"tokens":{}}"#)
            .err()
            .unwrap()
            .contains("needs version 1, got 2"));
        assert!(CacheFile::parse(b"[]").is_err());
        assert!(CacheFile::parse(br#"{"version":1,"tokens":[]}"#).is_err());
        let bad = CacheFile::parse(
            br#"{"version":1,"tokens":{"h":{"access_token":"a","expiry":"soon"}}}"#,
        )
        .unwrap();
        assert!(bad.lookup(&["h".into()]).is_err());
    }

    #[test]
    fn put_keeps_everything_else() {
        let mut c = CacheFile::parse(SAMPLE.as_bytes()).unwrap();
        c.put(
            "https://adb-1.2.azuredatabricks.net",
            &CachedToken {
                access_token: secret("acc-new"),
                token_type: "Bearer".into(),
                refresh_token: Some(secret("ref-new")),
                expiry: Some(time::macros::datetime!(2032-01-01 00:00 UTC)),
            },
        );
        let v: Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        let e = &v["tokens"]["https://adb-1.2.azuredatabricks.net"];
        assert_eq!(e["access_token"], "acc-new");
        assert_eq!(e["refresh_token"], "ref-new");
        assert_eq!(e["expiry"], "2032-01-01T00:00:00Z");
        assert_eq!(e["custom"], 7);
        assert_eq!(v["tokens"]["dev"]["access_token"], "acc-2");
        assert_eq!(v["extra"], true);
        assert_eq!(v["version"], 1);
    }

    #[test]
    fn expired_tokens_are_valid_for_zero() {
        let t = CachedToken {
            access_token: secret("a"),
            token_type: "Bearer".into(),
            refresh_token: None,
            expiry: Some(OffsetDateTime::now_utc() - Duration::from_secs(5)),
        };
        assert_eq!(t.valid_for(), Some(Duration::ZERO));
    }

    #[cfg(unix)]
    #[test]
    fn writes_0600_and_the_lock_excludes_a_second_holder() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".databricks/token-cache.json");
        write(&path, &CacheFile::parse(SAMPLE.as_bytes()).unwrap()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert!(read(&path).unwrap().is_some());
        let lock = dir.path().join(".databricks/token-cache.lock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let held = rt.block_on(Lock::acquire(&lock)).unwrap();
        let other = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
        assert!(
            !try_lock(&other).unwrap(),
            "a second open file cannot take it"
        );
        drop(held);
        assert!(try_lock(&other).unwrap());
    }
}
