//! `dbxport inspect`: what a bundle holds, from its checked inventory.

use super::keys::{exit_code_for, print_json, print_problems, IdentityArgs};
use super::EXIT_OK;
use clap::Args as ClapArgs;
use dbxport::bundle::inspect::inspect;
use dbxport::bundle::printable::printable;
use dbxport::hints::Hint;
use std::path::PathBuf;

/// Show what a bundle holds: format, id, source workspace, counts and sizes per kind.
///
/// Checks the bundle's structure, tag files and inventory (not every payload digest — use
/// `dbxport verify` for that), then prints the format version, bundle id, where and when it was
/// exported, how many resources of each kind it holds and their sizes, how many secret values
/// are sealed and to how many recipients, and every note recorded at export (for example
/// outputs dropped from an oversized notebook). A bundle in an age envelope needs --identity.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport inspect export.zip\n  dbxport inspect export.zip --json | jq .kinds"
)]
pub struct Args {
    /// The bundle to describe.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub keys: IdentityArgs,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `inspect`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let opener = args.keys.opener()?;
    let label = args.bundle.display().to_string();
    let r = match inspect(&args.bundle, opener.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            print_problems(&format!("bundle {label}"), std::slice::from_ref(&e));
            eprintln!(
                "{}",
                Hint::InspectStopped.with(&[("bundle", &printable(&label))])
            );
            return Ok(exit_code_for(std::slice::from_ref(&e)));
        }
    };
    if args.json {
        print_json(&r)?;
        return Ok(EXIT_OK);
    }
    // Every field below comes from the bundle (or names it): printed through `printable`.
    let p = |s: &str| printable(s).into_owned();
    println!("bundle      {}", p(&label));
    println!("format      {} {}", p(&r.format), p(&r.format_version));
    println!("bundle id   {}", p(&r.bundle_id));
    println!("bag folder  {}", p(&r.bag));
    println!(
        "created     {} by {} {}",
        p(&r.created),
        p(&r.tool.name),
        p(&r.tool.version)
    );
    let or_unknown = |s: &str| if s.is_empty() { "?".to_string() } else { p(s) };
    println!(
        "source      workspace {} at {}",
        or_unknown(&r.source.workspace_id),
        or_unknown(&r.source.host)
    );
    if r.envelope {
        println!("envelope    yes (age)");
    }
    println!();
    println!(
        "{:<18} {:>8} {:>8} {:>14}",
        "kind", "records", "files", "bytes"
    );
    for k in &r.kinds {
        println!(
            "{:<18} {:>8} {:>8} {:>14}",
            p(&k.kind),
            k.records,
            k.files,
            k.bytes
        );
    }
    println!(
        "{:<18} {:>8} {:>8} {:>14}",
        "total", r.totals.records, r.totals.payload_files, r.totals.payload_bytes
    );
    if r.unknown_records > 0 {
        println!(
            "({} records of kinds this dbxport does not know)",
            r.unknown_records
        );
    }
    println!();
    match &r.sealed {
        Some(s) => println!(
            "sealed      {} secret values ({} sealed files) to {} recipient(s): {}",
            s.values,
            s.files,
            s.recipients,
            p(&s.recipient_types.join(", "))
        ),
        None => println!("sealed      nothing"),
    }
    if !r.notes.is_empty() {
        println!();
        println!("notes:");
        for n in &r.notes {
            println!("  {} {}: {}", p(&n.kind), p(&n.name), p(&n.note));
        }
    }
    Ok(EXIT_OK)
}
