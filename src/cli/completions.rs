//! `dbxport completions SHELL`: a completion script, generated from the same command
//! definitions the parser uses, so it never lists a flag that does not exist.

use super::{Cli, EXIT_OK};
use clap::{Args as ClapArgs, CommandFactory, ValueEnum};
use clap_complete::Shell as Generator;
use std::io::Write;

/// Print a shell completion script for dbxport.
///
/// Load it in the current shell, or install it where your shell looks for completions:
///
///   bash:  source <(dbxport completions bash)
///   zsh:   dbxport completions zsh > "${fpath[1]}/_dbxport"
///   fish:  dbxport completions fish > ~/.config/fish/completions/dbxport.fish
///   PowerShell:  dbxport completions powershell | Out-String | Invoke-Expression
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells a script is generated for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// PowerShell.
    Powershell,
}

/// Runs `completions`: the script goes to stdout.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let generator = match args.shell {
        Shell::Bash => Generator::Bash,
        Shell::Zsh => Generator::Zsh,
        Shell::Fish => Generator::Fish,
        Shell::Powershell => Generator::PowerShell,
    };
    let mut cmd = Cli::command();
    // Generated into memory first: the generator panics on a write error, and a closed pipe
    // (`| head`) is not one worth a panic.
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut cmd, "dbxport", &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(EXIT_OK)
}
