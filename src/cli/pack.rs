//! `dbxport pack`: an unpacked (or staged and finalized) bag folder → a bundle.

use super::keys::{exit_code_for, print_json, print_problems, RecipientArgs};
use super::EXIT_OK;
use anyhow::bail;
use clap::Args as ClapArgs;
use dbxport::bundle::PackOptions;
use dbxport::hints::Hint;
use std::path::PathBuf;

/// Pack a bag folder into a bundle — the inverse of `dbxport unpack`.
///
/// DIR is a bag folder (it holds bagit.txt) or the folder `dbxport unpack` wrote into. The
/// files must match the bag's manifests exactly: every difference (a changed, missing or extra
/// file) is reported with its error code and nothing is written. The bundle is deterministic:
/// unpacking a bundle and packing it again gives the same bytes. It is verified before it is
/// renamed to BUNDLE.
///
/// With --recipient/--recipients-file/--passphrase the whole bundle is wrapped in an age
/// envelope (name it *.zip.age), hiding even file names; no plaintext copy is written to disk.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport pack ./my-workspace -o export.zip\n  dbxport pack ./my-workspace -o export.zip.age -r age1..."
)]
pub struct Args {
    /// The bag folder, or the folder holding it.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The bundle to write.
    #[arg(short = 'o', long = "output", value_name = "BUNDLE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub envelope: RecipientArgs,
    /// Replace BUNDLE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pack`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let envelope = args.envelope.sealer()?;
    let name = args.output.to_string_lossy();
    match (&envelope, name.ends_with(".age")) {
        (Some(_), false) => bail!(
            "{}: an enveloped bundle should be named *.zip.age\n{}",
            args.output.display(),
            Hint::PackEnvelopeName
        ),
        (None, true) => bail!(
            "{}: a name ending in .age promises an envelope\n{}",
            args.output.display(),
            Hint::PackAgeNameWithoutRecipient
        ),
        _ => {}
    }
    let opts = PackOptions {
        envelope,
        replace: args.force,
    };
    match dbxport::bundle::pack(&args.dir, &args.output, &opts) {
        Ok(s) => {
            if args.json {
                print_json(&s)?;
            } else {
                println!(
                    "packed {} ({} payload files, {} bytes) into {}{}",
                    s.bag,
                    s.payload_files,
                    s.payload_bytes,
                    s.output.display(),
                    if s.envelope { " (age envelope)" } else { "" }
                );
            }
            Ok(EXIT_OK)
        }
        Err(p) => {
            if args.json {
                print_json(&serde_json::json!({ "ok": false, "problems": p.0 }))?;
            }
            print_problems(&format!("pack {}", args.dir.display()), &p.0);
            Ok(exit_code_for(&p.0))
        }
    }
}
