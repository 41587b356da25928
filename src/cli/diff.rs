//! `dbxport diff`: after a migration, compare the target with the bundle.

use super::import::{report_error, CommonArgs};
use super::keys::{print_json, IdentityArgs};
use super::{EXIT_OK, EXIT_PROBLEMS};
use anyhow::Context;
use clap::Args as ClapArgs;

/// Compare a workspace with a bundle, after an import.
///
/// Re-reads the target and compares every object of the bundle with it, after applying the
/// mapping: notebook and file content, folders, repos, job settings (found by their source
/// tag), ACLs, table grants, secret scopes and keys — and secret values when an identity is
/// given and the workspace lets values be read back. Prints every difference.
///
/// Exit status: 0 when nothing differs, 1 when something does, 2 when the comparison could not
/// be made.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport diff poc.zip --map mapping.toml\n  dbxport diff poc.zip --map mapping.toml --identity key.txt --json"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub keys: IdentityArgs,
}

/// Runs `diff`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    super::alloc::map_large_buffers();
    let opener = args.keys.opener()?;
    let options = args.common.options(None)?;
    let client = args.common.client()?;
    let source = match args.common.open("diff", opener.as_ref()) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("diff: cannot start the async runtime")?;
    let report = match runtime.block_on(dbxport::import::diff(
        &source,
        &client,
        &options,
        opener.as_ref(),
    )) {
        Ok(r) => r,
        Err(e) => return Ok(report_error("diff", &e)),
    };
    if args.common.json {
        print_json(&report)?;
    } else {
        print!("{}", report.render());
    }
    Ok(if report.is_clean() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    })
}
