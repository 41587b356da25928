//! Issue #11, item 2: what a user sees for the common mistakes, pinned as transcripts. Each
//! case runs the `dbxport` binary in a fresh folder (its working directory and `HOME`, with a
//! clean environment) and compares the command, its exit code, stdout and stderr with
//! `fixtures/transcripts/<case>.txt`. A changed message fails here first, so a change to what
//! users read is a reviewed change: regenerate with `DBXPORT_BLESS=1 cargo test --test
//! cli_transcripts` and read the diff.

use crate::common;

use std::path::Path;
use std::process::Command;

/// One mistake: its name, how its folder is prepared, the arguments, extra environment.
struct Case {
    name: &'static str,
    setup: fn(&Path),
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

fn nothing(_: &Path) {}

fn text_file(dir: &Path) {
    std::fs::write(dir.join("notes.txt"), "hello\n").unwrap();
}

fn golden(dir: &Path) {
    std::fs::copy(
        common::repo_path("fixtures/bundles/golden-v1.2.zip"),
        dir.join("golden.zip"),
    )
    .unwrap();
}

fn golden_and_other_key(dir: &Path) {
    golden(dir);
    // A real identity, but not the one the golden bundle was sealed to.
    let made = Command::new(common::dbxport_bin())
        .args(["keygen", "-o"])
        .arg(dir.join("other.key"))
        .output()
        .unwrap();
    assert!(made.status.success());
}

fn golden_and_malformed_key(dir: &Path) {
    golden(dir);
    std::fs::write(dir.join("key.txt"), "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
}

fn existing_key(dir: &Path) {
    std::fs::write(dir.join("key.txt"), "# not overwritten\n").unwrap();
}

fn existing_output(dir: &Path) {
    std::fs::write(dir.join("out.zip"), "an earlier export\n").unwrap();
}

fn golden_and_bad_mapping(dir: &Path) {
    golden(dir);
    std::fs::write(dir.join("map.toml"), "[principals\nalice = \"bob\"\n").unwrap();
}

const CASES: &[Case] = &[
    Case {
        name: "verify-not-a-bundle",
        setup: text_file,
        args: &["verify", "notes.txt"],
        env: &[],
    },
    Case {
        name: "verify-missing-file",
        setup: nothing,
        args: &["verify", "missing.zip"],
        env: &[],
    },
    Case {
        name: "verify-wrong-identity",
        setup: golden_and_other_key,
        args: &["verify", "golden.zip", "--identity", "other.key"],
        env: &[],
    },
    Case {
        name: "verify-malformed-identity",
        setup: golden_and_malformed_key,
        args: &["verify", "golden.zip", "--identity", "key.txt"],
        env: &[],
    },
    Case {
        name: "keygen-existing-output",
        setup: existing_key,
        args: &["keygen", "-o", "key.txt"],
        env: &[],
    },
    Case {
        name: "export-malformed-recipient",
        setup: nothing,
        args: &["export", "-o", "out.zip", "--recipient", "age1notakey"],
        env: &[],
    },
    Case {
        name: "export-envelope-without-recipient",
        setup: nothing,
        args: &["export", "-o", "out.zip.age"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
    },
    Case {
        name: "export-existing-output",
        setup: existing_output,
        args: &["export", "-o", "out.zip"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
    },
    Case {
        name: "plan-mapping-with-errors",
        setup: golden_and_bad_mapping,
        args: &["plan", "golden.zip", "--map", "map.toml"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
    },
    Case {
        name: "plan-no-workspace",
        setup: golden,
        args: &["plan", "golden.zip"],
        env: &[],
    },
    Case {
        name: "plan-unreachable-host",
        setup: golden,
        args: &["plan", "golden.zip"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
    },
];

/// Runs `case` and renders what the user saw.
fn transcript(case: &Case) -> String {
    transcript_with(case, &[])
}

/// Like [`transcript`], with more environment (a live emulator's address), which is shown
/// as `$HOST` in the transcript.
fn transcript_with(case: &Case, extra: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    (case.setup)(dir.path());
    let mut cmd = Command::new(common::dbxport_bin());
    cmd.args(case.args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path());
    for (k, v) in case.env {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "$ dbxport {}\n? {}\n--- stdout\n{}--- stderr\n{}",
        case.args.join(" "),
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The folder's name changes with every run; the number of connection attempts with the
    // machine's speed.
    let mut text = text.replace(&dir.path().display().to_string(), "$HOME");
    if let Some((_, host)) = extra.iter().find(|(k, _)| *k == "DATABRICKS_HOST") {
        text = text.replace(host.as_str(), "$HOST");
    }
    regex::Regex::new(r"\(\d+ attempts\)")
        .unwrap()
        .replace_all(&text, "(N attempts)")
        .into_owned()
}

/// Cases against a live emulator: the token it refuses.
const LIVE: &[Case] = &[Case {
    name: "plan-refused-token",
    setup: golden,
    args: &["plan", "golden.zip"],
    env: &[("DATABRICKS_TOKEN", "dapi-not-a-token-of-this-workspace")],
}];

/// A host that answers every request with a sign-in page, as a proxy or a wrong URL does.
const HTML_HOST: &[Case] = &[Case {
    name: "plan-host-answers-html",
    setup: golden,
    args: &["plan", "golden.zip"],
    env: &[("DATABRICKS_TOKEN", "dapi-transcript")],
}];

/// Serves a sign-in page to every request, on loopback; returns its URL.
fn html_server(rt: &tokio::runtime::Runtime) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = "<html><head><title>Sign in to your organisation</title></head><body>Sign in</body></html>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

/// Cases against a live emulator, signed in: principals the target does not have.
const SIGNED_IN: &[Case] = &[Case {
    name: "plan-unmapped-principals",
    setup: golden,
    args: &["plan", "golden.zip"],
    env: &[],
}];

fn every_transcript() -> Vec<(&'static str, String)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt
        .block_on(dbxport::emulator::Emulator::start(
            dbxport::emulator::EmulatorConfig::default(),
        ))
        .unwrap();
    let live = [("DATABRICKS_HOST", emu.url().to_string())];
    let signed_in = [
        ("DATABRICKS_HOST", emu.url().to_string()),
        ("DATABRICKS_TOKEN", emu.admin_token().to_string()),
    ];
    let mut out: Vec<(&str, String)> = CASES.iter().map(|c| (c.name, transcript(c))).collect();
    out.extend(LIVE.iter().map(|c| (c.name, transcript_with(c, &live))));
    out.extend(
        SIGNED_IN
            .iter()
            .map(|c| (c.name, transcript_with(c, &signed_in))),
    );
    let html = [("DATABRICKS_HOST", html_server(&rt))];
    out.extend(
        HTML_HOST
            .iter()
            .map(|c| (c.name, transcript_with(c, &html))),
    );
    out
}

#[test]
fn common_mistakes_read_as_recorded() {
    let bless = std::env::var_os("DBXPORT_BLESS").is_some();
    let mut changed = Vec::new();
    for (name, got) in every_transcript() {
        let path = common::repo_path(&format!("fixtures/transcripts/{name}.txt"));
        if bless {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            changed.push(format!("{name}:\n--- recorded\n{want}--- now\n{got}"));
        }
    }
    assert!(
        changed.is_empty(),
        "{} transcript(s) changed (DBXPORT_BLESS=1 records them):\n{}",
        changed.len(),
        changed.join("\n")
    );
}

/// Every transcript tells the user what to do: an error ends with a `hint:` line.
#[test]
fn every_failing_case_gives_a_hint() {
    for (name, t) in every_transcript() {
        if !t.contains("\n? 0\n") {
            assert!(t.contains("\nhint: "), "{name}: no hint\n{t}");
        }
    }
}
