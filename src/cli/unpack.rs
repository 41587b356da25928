//! `dbxport unpack`: a bundle → a folder anyone can browse without dbxport.

use super::keys::{exit_code_for, print_json, print_problems, IdentityArgs};
use super::EXIT_OK;
use clap::Args as ClapArgs;
use dbxport::bundle::printable::printable;
use dbxport::bundle::unpack::{unpack_with, UnpackOptions, UnpackPlan};
use std::path::PathBuf;

/// Unpack a bundle into a folder you can browse and use without dbxport.
///
/// The bag lands in DIR/<bag folder>/: notebooks as source files with their real extensions
/// under their workspace paths, jobs, repos, permissions and models as pretty JSON, and an
/// INVENTORY.md overview listing every original name next to its stored path. Every file is
/// checked against its digest while it is written; if anything is wrong nothing is left in DIR.
///
/// Secret values stay sealed (data/secrets/<scope>/values/<key>.age) unless you pass
/// --identity (or --passphrase): then their plain values are written to DIR/secrets/<scope>/<key>
/// (folder mode 0700, files 0600), outside the bag, so the bag stays valid.
///
/// DIR must be empty or missing; --force replaces DIR/<bag folder> and DIR/secrets.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport unpack export.zip -d ./my-workspace\n  dbxport unpack export.zip -d ./my-workspace --identity key.txt"
)]
pub struct Args {
    /// The bundle to unpack.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// The folder to unpack into (created if missing).
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub keys: IdentityArgs,
    /// Unpack even if DIR is not empty, replacing DIR/<bag folder> and DIR/secrets.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `unpack`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let opener = args.keys.opener()?;
    let label = args.bundle.display().to_string();
    let bundle_bytes = std::fs::metadata(&args.bundle).map_or(0, |m| m.len());
    let quiet = args.json;
    // A small bundle may legitimately expand a thousandfold: say so before writing.
    let mut announce = |p: &UnpackPlan| {
        if !quiet && p.bytes > (1 << 30) && p.bytes / bundle_bytes.max(1) >= 20 {
            eprintln!(
                "dbxport: {} expands to {} bytes in {} entries{}",
                printable(&label),
                p.bytes,
                p.entries,
                p.available
                    .map(|a| format!(" ({a} bytes free there)"))
                    .unwrap_or_default()
            );
        }
    };
    let mut opts = UnpackOptions {
        free_space: None,
        announce: Some(&mut announce),
    };
    match unpack_with(
        &args.bundle,
        &args.dir,
        opener.as_ref(),
        args.force,
        &mut opts,
    ) {
        Ok(s) => {
            if args.json {
                print_json(&s)?;
            } else {
                println!(
                    "unpacked {} files ({} bytes) into {}",
                    s.files,
                    s.bytes,
                    printable(&s.bag_dir.display().to_string())
                );
                if let Some(d) = &s.secrets_dir {
                    println!(
                        "opened {} secret values into {} (keep this folder private)",
                        s.secrets_opened,
                        printable(&d.display().to_string())
                    );
                }
                if s.sealed_left > 0 {
                    println!(
                        "{} secret values stay sealed; pass --identity to open them",
                        s.sealed_left
                    );
                }
            }
            Ok(EXIT_OK)
        }
        Err(p) => {
            if args.json {
                print_json(&serde_json::json!({ "ok": false, "problems": p.0 }))?;
            }
            print_problems(&format!("unpack {label}"), &p.0);
            Ok(exit_code_for(&p.0))
        }
    }
}
