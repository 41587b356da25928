//! `dbxport verify`: checks a bundle completely, without any key, and names every failing
//! entry; with an identity it also opens every sealed value and checks its sealed digest.

use super::keys::{print_json, print_problems, IdentityArgs};
use super::progress::Live;
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS};
use clap::Args as ClapArgs;
use dbxport::bundle::printable::printable;
use dbxport::bundle::verify::verify_file_with_progress;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Check a bundle: structure, every digest, the inventory — no key needed.
///
/// Reads the whole bundle and checks the zip structure, the BagIt bag (bagit.txt, bag-info.txt,
/// both manifests), the inventory dbxport.json against its schema, and the SHA-256 of every file.
/// Every problem is printed with its error code (spec/bundle-format.md §13) and the entry it
/// concerns. With --identity (or --passphrase) it also opens every sealed secret value and checks
/// it against the digest sealed at export. A bundle wrapped in an age envelope (*.zip.age) needs
/// an identity to be read at all.
///
/// Exit status: 0 when everything holds, 1 when a problem was found, 2 when the bundle could not
/// be read (missing file, no identity for an envelope).
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport verify export.zip\n  dbxport verify export.zip --identity key.txt --json\n  DBXPORT_PASSPHRASE=... dbxport verify export.zip.age --passphrase"
)]
pub struct Args {
    /// The bundle to check (.zip, or .zip.age with an identity).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub keys: IdentityArgs,
    /// Print a JSON report on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `verify`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let opener = args.keys.opener()?;
    let live = Live::new(!args.json && std::io::stderr().is_terminal());
    let bar = live.bytes("verifying");
    let result = verify_file_with_progress(&args.bundle, opener.as_ref(), &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    live.finish();
    let label = args.bundle.display().to_string();
    // The path is the user's, but may have come from a bundle listing; never print it raw.
    let shown = printable(&label).into_owned();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                print_json(&serde_json::json!({
                    "bundle": label, "ok": false, "problems": [e]
                }))?;
            }
            print_problems(&format!("bundle {label}"), std::slice::from_ref(&e));
            return Ok(EXIT_ERROR);
        }
    };
    if args.json {
        print_json(&report)?;
    } else if report.ok {
        println!(
            "bundle {shown}: OK — {} payload files, {} bytes, all digests match{}",
            report.payload_files,
            report.payload_bytes,
            if report.sealed_opened > 0 {
                format!("; {} sealed files opened and checked", report.sealed_opened)
            } else if report.sealed_files > 0 {
                format!(
                    "; {} sealed files not opened (pass --identity to check them)",
                    report.sealed_files
                )
            } else {
                String::new()
            }
        );
    } else {
        println!(
            "bundle {shown}: FAILED — {} problem(s)",
            report.problems.len()
        );
    }
    if !report.ok && !args.json {
        print_problems(&format!("bundle {label}"), &report.problems);
    }
    Ok(if report.ok { EXIT_OK } else { EXIT_PROBLEMS })
}
