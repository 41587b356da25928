//! `dbxport man`: manual pages, generated from the same command definitions the parser uses
//! (one page per command, `dbxport-<command>(1)`, the way git and cargo ship theirs).

use super::{Cli, EXIT_ERROR, EXIT_OK};
use clap::{Args as ClapArgs, CommandFactory};
use dbxport::bundle::fsutil::AtomicFile;
use dbxport::hints::Hint;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Print or write the manual pages.
///
/// Without --out, prints the page of COMMAND (or of dbxport itself) in roff, for
/// `dbxport man import | man -l -`. With --out DIR, writes every page into DIR —
/// `dbxport.1`, `dbxport-export.1`, `dbxport-models-export.1`, … — for `man -M` or a
/// `man1` folder.
#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  dbxport man import | man -l -\n  dbxport man --out ~/.local/share/man/man1"
)]
pub struct Args {
    /// The command whose page to print (`models export` for a models command).
    #[arg(value_name = "COMMAND", num_args = 0..)]
    pub command: Vec<String>,
    /// Write every page into this folder instead.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out: Option<PathBuf>,
}

/// Runs `man`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let root = Cli::command();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}\n{}", dir.display(), Hint::ManFolder))?;
        let mut written = 0;
        write_pages(&root, "dbxport", dir, &mut written)?;
        eprintln!("dbxport: wrote {written} manual pages to {}", dir.display());
        return Ok(EXIT_OK);
    }
    let mut cmd = root.clone();
    let mut name = "dbxport".to_string();
    for word in &args.command {
        let Some(sub) = cmd.find_subcommand(word).cloned() else {
            let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            eprintln!(
                "dbxport: man: {name} has no command {word:?}\n{}",
                Hint::ManNoCommand.with(&[("commands", &names.join(", "))])
            );
            return Ok(EXIT_ERROR);
        };
        name = format!("{name}-{word}");
        cmd = sub;
    }
    let page = render(cmd, &name)?;
    std::io::stdout().write_all(&page)?;
    Ok(EXIT_OK)
}

/// The roff page of `cmd`, titled `name`.
fn render(cmd: clap::Command, name: &str) -> anyhow::Result<Vec<u8>> {
    let cmd = cmd.name(name.to_string()).version(dbxport::VERSION);
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

/// Writes the page of `cmd` and of every command below it.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut f =
        AtomicFile::create(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    f.file().write_all(&render(cmd.clone(), name)?)?;
    // Pages are regenerated in place: replacing an older page is the point.
    f.commit(true)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
