//! One test's world: a temporary folder of its own (with an empty HOME inside, so no
//! `~/.databrickscfg` or token cache of the machine leaks in), optionally an emulator of its own,
//! and `dbxport` commands that run the binary users get (`common::dbxport_bin`) with nothing from
//! the environment but `PATH` — plus the emulator's host and token when there is one (given as
//! environment variables, as users do, never as arguments).
//!
//! ```ignore
//! let t = Ctx::with_emulator(EmulatorConfig::default().with_seed(seed));
//! let out = t.run(["export", "-o", t.path("b.zip").to_str().unwrap(), "--json"]);
//! assert!(out.status.success(), "{}", describe(&out));
//! ```
#![allow(dead_code)]

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A test's temporary folder, HOME and emulator; all removed or stopped when it is dropped.
pub struct Ctx {
    dir: tempfile::TempDir,
    home: PathBuf,
    emu: Option<EmulatorHandle>,
}

impl Ctx {
    /// A temporary folder with an empty `home/`, and no emulator.
    pub fn new() -> Ctx {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("the test's HOME");
        Ctx {
            dir,
            home,
            emu: None,
        }
    }

    /// [`Ctx::new`] with an emulator started from `config`.
    pub fn with_emulator(config: EmulatorConfig) -> Ctx {
        let mut t = Ctx::new();
        t.emu = Some(Emulator::start_in_background(config).expect("the emulator starts"));
        t
    }

    /// The temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` inside the temporary folder.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The HOME the commands run with (empty unless the test writes into it).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The test's emulator; panics when it has none.
    pub fn emu(&self) -> &EmulatorHandle {
        self.emu
            .as_ref()
            .expect("this test context has no emulator")
    }

    /// `dbxport ARGS` as a user runs it: only `PATH` and this context's HOME from the
    /// environment, and `DATABRICKS_HOST` / `DATABRICKS_TOKEN` (the admin's) when the context
    /// has an emulator.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        match &self.emu {
            Some(emu) => against(emu, &self.home, args),
            None => bare(&self.home, args),
        }
    }

    /// Runs [`Ctx::cmd`] and returns what it printed and its exit status.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).output().expect("dbxport runs")
    }
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx::new()
    }
}

/// `dbxport ARGS` with only `PATH` and `home` as HOME from the environment, and no workspace.
pub fn bare<I, S>(home: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(crate::common::dbxport_bin());
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home);
    c
}

/// `dbxport ARGS` for the offline commands (verify, inspect, keygen, man…): [`bare`] with a
/// HOME shared by every such call of the test binary and kept empty.
pub fn offline<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().expect("an empty HOME"));
    bare(home.path(), args).output().expect("dbxport runs")
}

/// [`bare`], signed in to `emu` as its admin through `DATABRICKS_HOST` / `DATABRICKS_TOKEN`.
pub fn against<I, S>(emu: &EmulatorHandle, home: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = bare(home, args);
    c.env("DATABRICKS_HOST", emu.url())
        .env("DATABRICKS_TOKEN", emu.admin_token());
    c
}

/// A fresh age identity in `dir/key.txt`: (its path, its public recipient).
pub fn keypair(dir: &Path) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let path = dir.join("key.txt");
    std::fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (path, id.to_public().to_string())
}

/// Exit code, stdout and stderr as text, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `--json` summary a command printed on stdout.
pub fn summary(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", describe(o)))
}
