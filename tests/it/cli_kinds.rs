//! `--include` / `--exclude` take the same words on every command that takes kinds (export,
//! import, plan, diff), and an unknown word gets the same answer, listing the accepted names.
//! Nothing here reaches a workspace: each command stops at its first check after the kinds
//! (export at the output name, the others at the missing host).

use std::process::Output;

fn dbx(home: &std::path::Path, args: &[&str]) -> Output {
    crate::support::ctx::bare(home, args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `command` with `flag word`: export is stopped by an output name that promises an
/// envelope, the others by having no workspace.
fn with_kinds(home: &std::path::Path, command: &str, flag: &str, word: &str) -> Output {
    let bundle = home.join("b.zip");
    let b = bundle.to_str().unwrap();
    match command {
        "export" => dbx(home, &["export", "-o", "x.zip.age", flag, word]),
        _ => dbx(home, &[command, b, flag, word]),
    }
}

const COMMANDS: [&str; 4] = ["export", "import", "plan", "diff"];

#[test]
fn every_command_accepts_the_same_kind_words() {
    let home = tempfile::tempdir().unwrap();
    for word in [
        "scope",
        "secret-scope",
        "secret_scopes",
        "Notebooks",
        "folders",
        "policies,job",
        "workspace,reference",
        "models",
        "hive,uc",
        "directories",
    ] {
        for command in COMMANDS {
            for flag in ["--include", "--exclude"] {
                let o = with_kinds(home.path(), command, flag, word);
                let err = stderr(&o);
                // Past the kinds: stopped by the next check, not by the word.
                let next = if command == "export" {
                    "promises an envelope"
                } else {
                    "no workspace host configured"
                };
                assert!(
                    err.contains(next) && !err.contains("kind"),
                    "{command} {flag} {word}: {err}"
                );
                assert_eq!(o.status.code(), Some(2), "{command} {flag} {word}: {err}");
            }
        }
    }
}

#[test]
fn an_unknown_kind_gets_one_answer_everywhere() {
    let home = tempfile::tempdir().unwrap();
    let mut hints = Vec::new();
    for command in COMMANDS {
        let o = with_kinds(home.path(), command, "--include", "job,nonsense,zilch");
        assert_eq!(o.status.code(), Some(2), "{command}");
        let err = stderr(&o);
        assert!(
            err.contains("\"nonsense\", \"zilch\" are not kinds"),
            "{command}: {err}"
        );
        let hint = err
            .lines()
            .find(|l| l.contains("hint: kinds are"))
            .unwrap_or_else(|| panic!("{command}: no hint: {err}"))
            .to_string();
        for name in ["secret_scope", "scope", "reference", "models", "cluster"] {
            assert!(hint.contains(name), "{command}: {hint}");
        }
        hints.push(hint);
    }
    hints.dedup();
    assert_eq!(hints.len(), 1, "{hints:#?}");
}
