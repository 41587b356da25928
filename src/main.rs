//! The `dbxport` binary: argument parsing and output only; every command calls into the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
