//! `dbxport keygen`: a new age identity for sealing and opening bundles.

use super::keys::print_json;
use super::{EXIT_ERROR, EXIT_OK};
use clap::Args as ClapArgs;
use dbxport::bundle::fsutil::AtomicFile;
use dbxport::bundle::inventory::format_created;
use dbxport::hints::Hint;
use std::io::Write;
use std::path::PathBuf;

/// Create an age key pair for sealing secrets in bundles.
///
/// Writes a new X25519 identity (the secret key) to FILE, readable only by you (mode 0600),
/// and prints its public key — the recipient — on stdout. Give the recipient to whoever creates
/// the bundle, so secrets are sealed to it; keep FILE to open them later with `--identity FILE`,
/// or with the standard `age -d -i FILE` tool. The file format is the one
/// `age-keygen` writes.
#[derive(Debug, ClapArgs)]
#[command(after_help = "Example:\n  dbxport keygen -o ~/.dbxport/key.txt")]
pub struct Args {
    /// Where to write the identity.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print `{"identity_file": ..., "recipient": ...}` instead of the bare recipient.
    #[arg(long)]
    pub json: bool,
}

/// Runs `keygen`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.output.exists() && !args.force {
        eprintln!(
            "dbxport: {}: already exists; refusing to overwrite a key\n{}",
            args.output.display(),
            Hint::KeyExists
        );
        return Ok(EXIT_ERROR);
    }
    let now = format_created(time::OffsetDateTime::now_utc());
    let (text, recipient) = dbxport::bundle::seal::generate_identity(&now);
    let mut f = AtomicFile::create(&args.output)?;
    #[cfg(unix)]
    f.set_mode(0o600)?;
    f.file().write_all(text.as_bytes())?;
    f.commit(args.force)?;
    if args.json {
        print_json(&serde_json::json!({
            "identity_file": args.output,
            "recipient": recipient,
        }))?;
    } else {
        eprintln!(
            "wrote a new identity to {} (keep it private); its public key:",
            args.output.display()
        );
        println!("{recipient}");
    }
    Ok(EXIT_OK)
}
