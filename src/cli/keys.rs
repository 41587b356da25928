//! Key options shared by the bundle commands: identities and passphrases that open sealed
//! values, recipients that seal. Passphrases are never taken from the command line: they come
//! from a file (`--passphrase-file`), the `DBXPORT_PASSPHRASE` environment variable, or a
//! terminal prompt with echo turned off.

use anyhow::{bail, Context};
use clap::Args;
use dbxport::bundle::printable::printable;
use dbxport::bundle::seal::read_recipients_file;
use dbxport::bundle::{BundleError, ErrorCode, Opener, Sealer};
use dbxport::hints::Hint;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The environment variable a passphrase may be read from.
pub const PASSPHRASE_ENV: &str = "DBXPORT_PASSPHRASE";

/// Options that open sealed values.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// An age identity file (as written by `dbxport keygen` or `age-keygen`) or an unencrypted
    /// OpenSSH private key. Repeat to try several.
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Open values sealed with a passphrase. The passphrase is read from --passphrase-file, else
    /// from $DBXPORT_PASSPHRASE, else asked for on the terminal.
    #[arg(long)]
    pub passphrase: bool,
    /// Read the passphrase from the first line of FILE (implies --passphrase).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl IdentityArgs {
    /// The identities given, or `None` when none were.
    pub fn opener(&self) -> anyhow::Result<Option<Opener>> {
        let mut o = Opener::new();
        for f in &self.identity {
            o.add_identity_file(f)?;
        }
        if self.passphrase || self.passphrase_file.is_some() {
            o.add_passphrase(read_passphrase(self.passphrase_file.as_deref(), false)?);
        }
        Ok((!o.is_empty()).then_some(o))
    }
}

/// Options that choose whom to seal to.
#[derive(Debug, Args)]
pub struct RecipientArgs {
    /// Seal to this public key: an age recipient (`age1…`, from `dbxport keygen`) or an SSH
    /// public key (`ssh-ed25519 …`, `ssh-rsa …`). Repeat for several recipients.
    #[arg(short = 'r', long = "recipient", value_name = "KEY")]
    pub recipient: Vec<String>,
    /// Seal to every public key listed in FILE, one per line (`#` starts a comment).
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
    /// Seal with a passphrase instead (read from --passphrase-file, $DBXPORT_PASSPHRASE, or a
    /// prompt). Cannot be combined with recipients.
    #[arg(long)]
    pub passphrase: bool,
    /// Read the passphrase from the first line of FILE (implies --passphrase).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl RecipientArgs {
    /// The sealer, or `None` when no recipient and no passphrase was given.
    pub fn sealer(&self) -> anyhow::Result<Option<Sealer>> {
        let mut keys = self.recipient.clone();
        for f in &self.recipients_file {
            keys.extend(read_recipients_file(f)?);
        }
        let pass = self.passphrase || self.passphrase_file.is_some();
        match (keys.is_empty(), pass) {
            (true, false) => Ok(None),
            (false, true) => bail!(
                "a passphrase cannot be combined with --recipient/--recipients-file (age allows only one passphrase per file)"
            ),
            (false, false) => Ok(Some(Sealer::to_recipients(&keys)?)),
            (true, true) => Ok(Some(Sealer::with_passphrase(read_passphrase(
                self.passphrase_file.as_deref(),
                true,
            )?)?)),
        }
    }
}

/// Reads a passphrase: from `file`, else the environment, else the terminal.
pub fn read_passphrase(
    file: Option<&Path>,
    confirm: bool,
) -> anyhow::Result<age::secrecy::SecretString> {
    if let Some(f) = file {
        let text = std::fs::read(f).with_context(|| format!("passphrase file {}", f.display()))?;
        let text = zeroize::Zeroizing::new(text);
        let line = text.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let s = std::str::from_utf8(line)
            .with_context(|| format!("passphrase file {}: not UTF-8", f.display()))?;
        if s.is_empty() {
            bail!("passphrase file {}: the first line is empty", f.display());
        }
        return Ok(age::secrecy::SecretString::from(s.to_string()));
    }
    if let Ok(v) = std::env::var(PASSPHRASE_ENV) {
        if !v.is_empty() {
            return Ok(age::secrecy::SecretString::from(v));
        }
    }
    let first = prompt("passphrase: ")?;
    if confirm {
        let again = prompt("passphrase (again): ")?;
        use age::secrecy::ExposeSecret;
        if first.expose_secret() != again.expose_secret() {
            bail!("the two passphrases differ");
        }
    }
    Ok(first)
}

#[cfg(unix)]
fn prompt(label: &str) -> anyhow::Result<age::secrecy::SecretString> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let no_tty = || {
        anyhow::anyhow!(
            "a passphrase is needed and there is no terminal to ask on\n{}",
            Hint::PassphraseNoTerminal.with(&[("env", &PASSPHRASE_ENV)])
        )
    };
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        return Err(no_tty());
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| no_tty())?;
    let saved = tcgetattr(&tty).map_err(|_| no_tty())?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    (&tty).write_all(label.as_bytes())?;
    tcsetattr(&tty, OptionalActions::Now, &quiet).context("terminal")?;
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, OptionalActions::Now, &saved);
    let _ = (&tty).write_all(b"\n");
    read.context("reading the passphrase")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(age::secrecy::SecretString::from(p))
}

#[cfg(not(unix))]
fn prompt(_label: &str) -> anyhow::Result<age::secrecy::SecretString> {
    bail!(
        "no terminal prompt on this platform\n{}",
        Hint::PassphraseNoTerminal.with(&[("env", &PASSPHRASE_ENV)])
    )
}

/// Exit code for a set of problems: 2 when the command could not run (usage, keys, I/O),
/// 1 when the bundle or bag itself has problems.
pub fn exit_code_for(problems: &[BundleError]) -> u8 {
    let cannot_run = problems.iter().any(|p| {
        matches!(
            p.code(),
            ErrorCode::IdentityRequired
                | ErrorCode::NoMatchingIdentity
                | ErrorCode::TargetNotEmpty
                | ErrorCode::NotABag
                | ErrorCode::Io
                | ErrorCode::Staging
        )
    });
    if cannot_run {
        super::EXIT_ERROR
    } else {
        super::EXIT_PROBLEMS
    }
}

/// Prints problems to stderr, one per line, with each distinct hint once.
pub fn print_problems(context: &str, problems: &[BundleError]) {
    let mut hints = Vec::new();
    for p in problems {
        // A problem about the file itself is named once (`bundle x.zip: …`, not `bundle x.zip:
        // x.zip: …`).
        let line = if context == p.subject() || context.ends_with(&format!(" {}", p.subject())) {
            format!("{} [{}]", p.detail(), p.code().code())
        } else {
            p.to_string()
        };
        // Subjects and details quote names from the bundle: never print them raw.
        eprintln!("dbxport: {}: {}", printable(context), printable(&line));
        if let Some(h) = p.hint_id() {
            if !hints.contains(&h) {
                hints.push(h);
            }
        }
    }
    for h in hints {
        eprintln!("{h}");
    }
}

/// Prints a JSON value to stdout.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}
