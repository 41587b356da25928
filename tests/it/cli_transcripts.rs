//! Issue #11, item 2: what a user sees for the common mistakes, pinned as transcripts. Each
//! case runs the `dbxport` binary in a fresh folder (its working directory and `HOME`, with a
//! clean environment) and compares the command, its exit code, stdout and stderr with
//! `fixtures/transcripts/<case>.txt`. A changed message fails here first, so a change to what
//! users read is a reviewed change: regenerate with `DBXPORT_BLESS=1 cargo test --test it
//! cli_transcripts` and read the diff.
//!
//! The mistakes are real, not simulated: an unknown host is a `.invalid` name (RFC 6761, which
//! never resolves), the 401 and 403 come from the emulator's own checks of the OAuth client and
//! of ACLs, a full disk is the file-size limit of `ulimit -f` (writes then fail with EFBIG
//! through the normal write path, as on a full FAT32 stick), and Ctrl-C is a SIGINT sent while
//! the export waits on the workspace. Where a mistake leaves something behind, the case also
//! checks it: no partial bundle at the output path, the staging folder kept, and the command
//! the hint names (`--resume`) finishing the export.

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Runs dbxport again in a case's folder, with the case's environment.
type Rerun<'a> = &'a dyn Fn(&[&str]) -> Output;

/// One mistake: its name, how its folder is prepared, the arguments, extra environment, a
/// shell prefix it runs under, and what must hold in its folder afterwards.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    setup: fn(&Path),
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// Shell commands run before dbxport (`ulimit -f 80;`), shown in the transcript.
    shell: &'static str,
    after: fn(&Path, Rerun),
}

const CASE: Case = Case {
    name: "",
    setup: nothing,
    args: &[],
    env: &[],
    shell: "",
    after: no_check,
};

fn nothing(_: &Path) {}

fn no_check(_: &Path, _: Rerun) {}

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

/// After a failed export: nothing at the output path (not even a temporary file beside it),
/// the staging folder kept, and `--resume` without the mistake finishing the bundle.
fn resumes_to_a_bundle(dir: &Path, rerun: Rerun) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("out.zip") && n != "out.zip.partial")
            && !names.iter().any(|n| n.starts_with(".out.zip")),
        "something was left at the output path: {names:?}"
    );
    assert!(
        dir.join("out.zip.partial").is_dir(),
        "the staging folder was not kept: {names:?}"
    );
    let out = rerun(&["--resume"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--resume did not finish:\n{err}"
    );
    assert!(err.contains("objects reused"), "{err}");
    assert!(dir.join("out.zip").is_file() && !dir.join("out.zip.partial").exists());
}

/// Cases that need no server, or a server that is not there.
const CASES: &[Case] = &[
    Case {
        name: "verify-not-a-bundle",
        setup: text_file,
        args: &["verify", "notes.txt"],
        ..CASE
    },
    Case {
        name: "verify-missing-file",
        args: &["verify", "missing.zip"],
        ..CASE
    },
    Case {
        name: "verify-wrong-identity",
        setup: golden_and_other_key,
        args: &["verify", "golden.zip", "--identity", "other.key"],
        ..CASE
    },
    Case {
        name: "verify-malformed-identity",
        setup: golden_and_malformed_key,
        args: &["verify", "golden.zip", "--identity", "key.txt"],
        ..CASE
    },
    Case {
        name: "keygen-existing-output",
        setup: existing_key,
        args: &["keygen", "-o", "key.txt"],
        ..CASE
    },
    Case {
        name: "export-malformed-recipient",
        args: &["export", "-o", "out.zip", "--recipient", "age1notakey"],
        ..CASE
    },
    Case {
        name: "export-missing-recipients-file",
        args: &["export", "-o", "out.zip", "--recipients-file", "keys.txt"],
        ..CASE
    },
    Case {
        name: "export-envelope-without-recipient",
        args: &["export", "-o", "out.zip.age", "--envelope"],
        ..CASE
    },
    Case {
        name: "export-age-name-without-envelope",
        args: &["export", "-o", "out.zip.age"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
        ..CASE
    },
    Case {
        name: "export-existing-output",
        setup: existing_output,
        args: &["export", "-o", "out.zip"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
        ..CASE
    },
    Case {
        name: "export-unknown-host",
        args: &["export", "-o", "out.zip"],
        env: &[
            ("DATABRICKS_HOST", "https://dbxport-transcript.invalid"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
        ..CASE
    },
    Case {
        name: "plan-mapping-with-errors",
        setup: golden_and_bad_mapping,
        args: &["plan", "golden.zip", "--map", "map.toml"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
        ..CASE
    },
    Case {
        name: "plan-no-workspace",
        setup: golden,
        args: &["plan", "golden.zip"],
        ..CASE
    },
    Case {
        name: "plan-unreachable-host",
        setup: golden,
        args: &["plan", "golden.zip"],
        env: &[
            ("DATABRICKS_HOST", "http://127.0.0.1:9"),
            ("DATABRICKS_TOKEN", "dapi-transcript"),
        ],
        ..CASE
    },
];

/// Cases against a live emulator: the token it refuses.
const LIVE: &[Case] = &[Case {
    name: "plan-refused-token",
    setup: golden,
    args: &["plan", "golden.zip"],
    env: &[("DATABRICKS_TOKEN", "dapi-not-a-token-of-this-workspace")],
    ..CASE
}];

/// A host that answers every request with a sign-in page, as a proxy or a wrong URL does.
const HTML_HOST: &[Case] = &[Case {
    name: "plan-host-answers-html",
    setup: golden,
    args: &["plan", "golden.zip"],
    env: &[("DATABRICKS_TOKEN", "dapi-transcript")],
    ..CASE
}];

/// Cases against a live emulator, signed in: principals the target does not have.
const SIGNED_IN: &[Case] = &[Case {
    name: "plan-unmapped-principals",
    setup: golden,
    args: &["plan", "golden.zip"],
    ..CASE
}];

/// The credentials of `fixtures/workspaces/poc/tokens.json` (fake ones, for the emulator).
const ADA_ADMIN: &str = "dapi-poc-fake-admin-ada-0f3e9a41c7";
const LENA_USER: &str = "dapi-poc-fake-user-lena-7c21b4d903";
const POC_CLIENT: &str = "9c7d2e14-5b3a-4f68-a1d0-3e8b6c2f9a71";

/// Cases against the emulator seeded with the poc workspace.
const POC: &[Case] = &[
    // 401: the OAuth token endpoint refuses a wrong client secret.
    Case {
        name: "export-oauth-client-refused",
        args: &["export", "-o", "out.zip"],
        env: &[
            ("DATABRICKS_CLIENT_ID", POC_CLIENT),
            (
                "DATABRICKS_CLIENT_SECRET",
                "dose-not-the-secret-of-this-client",
            ),
        ],
        ..CASE
    },
    // 403: Lena is a user, not an admin; two secret scopes are not hers to read.
    Case {
        name: "export-token-without-permission",
        args: &["export", "-o", "out.zip", "--include", "secrets"],
        env: &[("DATABRICKS_TOKEN", LENA_USER)],
        ..CASE
    },
    // The workspace tree stages in files of a few KiB; the bundle is about 48 KiB and passes
    // the 40 KiB limit while it is written.
    Case {
        name: "export-disk-full-writing-bundle",
        args: &["export", "-o", "out.zip", "--include", "workspace"],
        env: &[("DATABRICKS_TOKEN", ADA_ADMIN)],
        shell: "trap '' XFSZ; ulimit -f 80;",
        after: resumes_to_a_bundle,
        ..CASE
    },
    // One job's settings stage as a 73 KiB file, past the 64 KiB limit.
    Case {
        name: "export-disk-full-staging",
        args: &["export", "-o", "out.zip", "--include", "job"],
        env: &[("DATABRICKS_TOKEN", ADA_ADMIN)],
        shell: "trap '' XFSZ; ulimit -f 128;",
        after: resumes_to_a_bundle,
        ..CASE
    },
];

/// dbxport in `dir` with the clean environment every case starts from.
fn command(dir: &Path, env: &[(&str, &str)], extra: &[(&str, String)]) -> Command {
    in_dir(Command::new(common::dbxport_bin()), dir, env, extra)
}

/// `cmd` in `dir` with the clean environment every case starts from.
fn in_dir(mut cmd: Command, dir: &Path, env: &[(&str, &str)], extra: &[(&str, String)]) -> Command {
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// Renders what the user saw, with what changes from run to run replaced: the folder's name,
/// the emulator's address, the number of connection attempts (the machine's speed), the
/// resolver's wording (the C library's), the time taken and the bundle's size (it holds its
/// creation time).
fn render(
    shell: &str,
    args: &[&str],
    out: &Output,
    dir: &Path,
    extra: &[(&str, String)],
) -> String {
    let shell = if shell.is_empty() {
        String::new()
    } else {
        format!("{shell} ")
    };
    let text = format!(
        "$ {shell}dbxport {}\n? {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = text.replace(&dir.display().to_string(), "$HOME");
    if let Some((_, host)) = extra.iter().find(|(k, _)| *k == "DATABRICKS_HOST") {
        text = text.replace(host.as_str(), "$HOST");
    }
    for (pattern, with) in [
        (r"\(\d+ attempts\)", "(N attempts)"),
        (
            r"(cannot resolve the host name \S+): [^\n]*",
            "$1: <the resolver's reason>",
        ),
        (r" in \d+\.\d s", " in N s"),
        (r"(wrote \S+) \([\d.]+ [KMG]?i?B\)", "$1 (SIZE)"),
    ] {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    text
}

/// Runs `case` with `extra` environment (a live emulator's address, shown as `$HOST`),
/// checks what it left behind, and renders what the user saw.
fn transcript(case: &Case, extra: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    (case.setup)(dir.path());
    let out = if case.shell.is_empty() {
        command(dir.path(), case.env, extra)
            .args(case.args)
            .output()
            .unwrap()
    } else {
        // `exec "$0" "$@"`: the binary and its arguments, under what the prefix set.
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("{} exec \"$0\" \"$@\"", case.shell))
            .arg(common::dbxport_bin())
            .args(case.args);
        in_dir(sh, dir.path(), case.env, extra).output().unwrap()
    };
    let text = render(case.shell, case.args, &out, dir.path(), extra);
    let rerun = |more: &[&str]| {
        command(dir.path(), case.env, extra)
            .args(case.args)
            .args(more)
            .output()
            .unwrap()
    };
    (case.after)(dir.path(), &rerun);
    text
}

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

/// Ctrl-C during an export: the job listing waits on a slow workspace, and the export is
/// interrupted once it says it is listing (its staging folder exists by then). It exits 130,
/// keeps the staging folder, writes nothing at the output path, and `--resume` finishes.
fn interrupted_export(emu: &dbxport::emulator::EmulatorHandle) -> (&'static str, String) {
    const ARGS: &[&str] = &["export", "-o", "out.zip", "--include", "job"];
    use dbxport::emulator::FaultConfig;
    let host = [("DATABRICKS_HOST", emu.url().to_string())];
    let env = [("DATABRICKS_TOKEN", ADA_ADMIN)];
    emu.set_faults(FaultConfig {
        latency_ms: 30_000,
        families: vec!["jobs".into()],
        ..FaultConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path(), &env, &host)
        .args(ARGS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.starts_with("dbxport: listing") {
            let sent = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            break;
        }
    }
    stderr.read_to_string(&mut seen).unwrap();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    emu.set_faults(FaultConfig::default()).unwrap();
    let out = Output {
        status,
        stdout,
        stderr: seen.into_bytes(),
    };
    let text = render("", ARGS, &out, dir.path(), &host);
    resumes_to_a_bundle(dir.path(), &|more: &[&str]| {
        command(dir.path(), &env, &host)
            .args(ARGS)
            .args(more)
            .output()
            .unwrap()
    });
    ("export-interrupted", text)
}

/// Every transcript, made once for the tests that read them.
fn every_transcript() -> &'static [(&'static str, String)] {
    static ALL: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    ALL.get_or_init(|| {
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
        let poc = rt
            .block_on(dbxport::emulator::Emulator::start(
                dbxport::emulator::EmulatorConfig::default()
                    .with_seed(common::repo_path("fixtures/workspaces/poc")),
            ))
            .unwrap();
        let live = [("DATABRICKS_HOST", emu.url().to_string())];
        let signed_in = [
            ("DATABRICKS_HOST", emu.url().to_string()),
            ("DATABRICKS_TOKEN", emu.admin_token().to_string()),
        ];
        let html = [("DATABRICKS_HOST", html_server(&rt))];
        let on_poc = [("DATABRICKS_HOST", poc.url().to_string())];
        let mut out: Vec<(&str, String)> = Vec::new();
        for (cases, extra) in [
            (CASES, &[][..]),
            (LIVE, &live[..]),
            (SIGNED_IN, &signed_in[..]),
            (HTML_HOST, &html[..]),
            (POC, &on_poc[..]),
        ] {
            out.extend(cases.iter().map(|c| (c.name, transcript(c, extra))));
        }
        out.push(interrupted_export(&poc));
        out
    })
}

#[test]
fn common_mistakes_read_as_recorded() {
    let bless = std::env::var_os("DBXPORT_BLESS").is_some();
    let mut changed = Vec::new();
    for (name, got) in every_transcript() {
        let path = common::repo_path(&format!("fixtures/transcripts/{name}.txt"));
        if bless {
            std::fs::write(&path, got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if *got != want {
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

/// Every recorded transcript is one this file makes: a renamed case leaves no stale file.
#[test]
fn no_transcript_is_left_over() {
    let made: Vec<String> = every_transcript()
        .iter()
        .map(|(n, _)| format!("{n}.txt"))
        .collect();
    for e in std::fs::read_dir(common::repo_path("fixtures/transcripts")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            made.contains(&name),
            "fixtures/transcripts/{name}: no case makes it"
        );
    }
}

/// Every transcript tells the user what to do: an error ends with a `hint:` line, and the
/// message before it names what went wrong.
#[test]
fn every_failing_case_gives_a_hint() {
    for (name, t) in every_transcript() {
        if t.contains("\n? 0\n") {
            continue;
        }
        let last = t.trim_end().lines().last().unwrap_or("");
        assert!(
            last.starts_with("hint: "),
            "{name}: does not end with a hint\n{t}"
        );
        let stderr = &t[t.find("--- stderr\n").unwrap()..];
        assert!(
            stderr.contains("\ndbxport: ") || t.contains("\n? 1\n"),
            "{name}: no message before the hint\n{t}"
        );
    }
}
