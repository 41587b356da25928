//! Issue #11, item 1: `dbxport completions` and `dbxport man` are generated from the same
//! command definitions the parser uses. bash sources the completion script and completes
//! commands and flags through it; `man -l` renders every page without a warning.

use crate::common;

use std::process::{Command, Output};

fn dbx(args: &[&str]) -> Output {
    crate::support::ctx::offline(args)
}

/// What the bash completion function offers for `words`, the last being the one completed.
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let body = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\n_dbxport dbxport '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words[cword]
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &body])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_flags() {
    if !common::have_tool("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dbx(&["completions", "bash"]);
    assert!(out.status.success());
    let script = dir.path().join("dbxport.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    assert_eq!(complete(&script, &["dbxport", "ex"]), ["export"]);
    let top = complete(&script, &["dbxport", ""]);
    for c in [
        "export",
        "verify",
        "import",
        "plan",
        "diff",
        "models",
        "completions",
        "man",
    ] {
        assert!(top.iter().any(|w| w == c), "{c} not in {top:?}");
    }
    assert!(complete(&script, &["dbxport", "export", "--out"]).contains(&"--output".to_string()));
    let models = complete(&script, &["dbxport", "models", ""]);
    assert!(models.contains(&"export".to_string()), "{models:?}");
    // A flag that does not exist is not offered.
    assert!(complete(&script, &["dbxport", "verify", "--outp"]).is_empty());
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = dbx(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("dbxport") && text.contains("export"),
            "{shell}"
        );
    }
    let out = dbx(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_render_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dbx(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    // One page per command, nested ones included.
    for want in [
        "dbxport.1",
        "dbxport-export.1",
        "dbxport-import.1",
        "dbxport-models-export.1",
        "dbxport-man.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} not in {pages:?}");
    }
    // The page printed for one command is the one written for it.
    let one = dbx(&["man", "models", "export"]);
    assert!(one.status.success());
    assert_eq!(
        one.stdout,
        std::fs::read(dir.path().join("dbxport-models-export.1")).unwrap()
    );
    let bad = dbx(&["man", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hint: one of:"));
    if !common::have_tool("man") {
        return;
    }
    for p in &pages {
        let out = Command::new("man")
            .args(["-l", "--warnings", "-E", "UTF-8"])
            .arg(dir.path().join(p))
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "{p}");
        assert!(
            out.stderr.is_empty(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{p} renders empty");
    }
}
