//! Command-line parsing and dispatch. Each command lives in its own module with its `Args` and a
//! `run` function; this module owns the top-level parser, exit codes and error printing.
//!
//! Exit codes, which scripts can rely on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success: everything held |
//! | 1 | the command ran, but found problems: a failed check, a difference, an object that failed |
//! | 2 | the command could not run: bad arguments, unreadable input, refused credentials |
//! | 130 | interrupted (Ctrl-C); resumable commands can be re-run with `--resume` |

mod alloc;
pub mod completions;
pub mod demo;
pub mod diff;
mod emulator;
pub mod export;
pub mod flags;
pub mod import;
pub mod inspect;
pub mod keygen;
pub mod keys;
pub mod man;
pub mod models;
pub mod pack;
pub mod plan;
pub mod progress;
pub mod unpack;
pub mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code: everything held.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command ran but found problems.
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: the command could not run.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: interrupted.
pub const EXIT_INTERRUPTED: u8 = 130;

/// dbxport moves a Databricks workspace's notebooks, repos, jobs, secrets, table ACLs and ML
/// models into one verified, sealed, offline bundle file, and replays it into another workspace
/// or unpacks it onto local disk.
#[derive(Debug, Parser)]
#[command(name = "dbxport", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every dbxport command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a Databricks-compatible emulator on loopback until interrupted.
    Emulator(emulator::Args),
    #[allow(missing_docs)]
    Export(Box<export::Args>),
    // Each command's help comes from its `Args` doc comment (short and long).
    #[allow(missing_docs)]
    Verify(verify::Args),
    #[allow(missing_docs)]
    Inspect(inspect::Args),
    #[allow(missing_docs)]
    Unpack(unpack::Args),
    #[allow(missing_docs)]
    Pack(pack::Args),
    #[allow(missing_docs)]
    Keygen(keygen::Args),
    #[allow(missing_docs)]
    Plan(plan::Args),
    #[allow(missing_docs)]
    Import(import::Args),
    #[allow(missing_docs)]
    Diff(diff::Args),
    #[allow(missing_docs)]
    Demo(demo::Args),
    /// Move ML models (registered models, versions, artifacts) into or out of a bundle.
    Models(models::Args),
    #[allow(missing_docs)]
    Completions(completions::Args),
    #[allow(missing_docs)]
    Man(man::Args),
}

/// Parses arguments, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    quiet_on_broken_pipe();
    dbxport::memory::on_give_back(alloc::trim);
    let cli = Cli::parse();
    let result: anyhow::Result<u8> = match cli.command {
        Command::Emulator(args) => emulator::run(args),
        Command::Export(a) => export::run(*a),
        Command::Verify(a) => verify::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Unpack(a) => unpack::run(a),
        Command::Pack(a) => pack::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Import(a) => import::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Models(a) => models::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // An error may quote a bundle's names or a server's answer: never print it raw.
            eprintln!(
                "dbxport: {}",
                dbxport::bundle::printable::printable_lines(&format!("{err:#}"))
            );
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A reader that stops early (`dbxport inspect BUNDLE | head`) closes our standard output, and
/// `println!` then panics. Exit quietly instead, with the status a Unix tool killed by SIGPIPE
/// has (141), so pipelines behave as with any other command. Every other panic is reported as
/// before.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}
