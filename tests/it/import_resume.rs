//! `dbxport import` killed with SIGKILL at several points (and stopped with Ctrl-C once), then
//! finished with `--resume`: the same end state as an uninterrupted import, no duplicate job, no
//! missing object. Also the command-line contract: exit codes, JSON output, refusals, and the
//! progress area in a terminal.

use crate::common;
use crate::support::import as support;
use crate::support::pty;

use dbxport::emulator::{EmulatorHandle, FaultConfig};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn cmd(emu: &EmulatorHandle, home: &Path, args: &[&str]) -> Command {
    crate::support::ctx::against(emu, home, args)
}

use crate::support::ctx::describe;

struct Fixture {
    dir: tempfile::TempDir,
    bundle: std::path::PathBuf,
    key: std::path::PathBuf,
    map: std::path::PathBuf,
    want: std::collections::BTreeMap<String, serde_json::Value>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let poc = start_poc();
    let (key, recipient) = keypair(dir.path());
    let bundle = export_poc(&poc, dir.path(), &recipient);
    let map = dir.path().join("mapping.toml");
    std::fs::write(&map, MAPPING).unwrap();
    let want = normalize(&dump(&poc, dir.path()), Side::Source);
    Fixture {
        dir,
        bundle,
        key,
        map,
        want,
    }
}

fn import_args<'a>(f: &'a Fixture, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "import",
        f.bundle.to_str().unwrap(),
        "--map",
        f.map.to_str().unwrap(),
        "--identity",
        f.key.to_str().unwrap(),
    ];
    v.extend_from_slice(extra);
    v
}

/// Waits until the emulator has served `writes` mutating requests (or `reads` requests when
/// `writes` is 0), then kills the child with SIGKILL. Returns false when the child finished first.
fn kill_after(child: &mut Child, emu: &EmulatorHandle, writes: u64, reads: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let s = emu.stats();
        if (writes > 0 && s.mutating >= writes) || (writes == 0 && s.total >= reads) {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(Instant::now() < deadline, "the import never got there");
        std::thread::sleep(Duration::from_micros(300));
    }
}

fn slow() -> FaultConfig {
    FaultConfig {
        latency_ms: 8,
        ..FaultConfig::default()
    }
}

#[test]
fn kill_9_at_several_points_then_resume_gives_the_same_end_state() {
    let f = fixture();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // (writes seen before the kill, or reads when writes is 0)
    let points: [(u64, u64); 6] = [(0, 15), (1, 0), (30, 0), (75, 0), (120, 0), (160, 0)];
    for (i, (writes, reads)) in points.into_iter().enumerate() {
        let sub = f.dir.path().join(format!("kill{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let prod = start_prod(&sub, slow());
        // The journal goes beside the bundle; each run uses its own copy of the bundle.
        let bundle = sub.join("poc.zip");
        std::fs::copy(&f.bundle, &bundle).unwrap();
        let mut args = import_args(&f, &[]);
        args[1] = bundle.to_str().unwrap();
        let mut child = cmd(&prod, &home, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let killed = kill_after(&mut child, &prod, writes, reads);
        assert!(killed, "point {i}: the import finished before the kill");
        let journal = dbxport::import::ledger::journal_path(&bundle, client(&prod).host());
        if writes > 0 {
            // An interrupted run is not started over by accident.
            let o = cmd(&prod, &home, &args).output().unwrap();
            assert_eq!(o.status.code(), Some(2), "point {i}: {}", describe(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("--resume"),
                "{}",
                describe(&o)
            );
            assert!(journal.exists());
        }
        let mut resume = args.clone();
        resume.push("--resume");
        let o = cmd(&prod, &home, &resume).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "point {i}: {}", describe(&o));
        prod.set_faults(FaultConfig::default()).unwrap();
        let got = normalize(&dump(&prod, &sub), Side::Target);
        assert_same(&f.want, &got, &format!("kill point {i} ({writes} writes)"));
        let jobs = rt().block_on(client(&prod).jobs().list(false)).unwrap();
        assert_eq!(jobs.len(), 10, "point {i}: duplicate or missing jobs");
        // The journal stays (mode 0600) and knows the run finished.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&journal).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A plain re-run now changes nothing.
        prod.reset_stats();
        let o = cmd(&prod, &home, &args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        assert_eq!(prod.stats().mutating, 0, "point {i}: the re-run wrote");
    }
}

#[test]
fn ctrl_c_stops_between_steps_exits_130_and_resume_finishes() {
    let f = fixture();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let prod = start_prod(f.dir.path(), slow());
    let file = f.dir.path().join("report.jsonl");
    let mut args = import_args(&f, &["--report"]);
    args.push(file.to_str().unwrap());
    let child = cmd(&prod, &home, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while prod.stats().mutating < 40 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--resume"),
        "{}",
        describe(&o)
    );
    // The interrupted run's report is whole: what was done, what was not and why.
    let lines = report_lines(&file);
    assert_eq!(lines.last().unwrap()["interrupted"], true);
    let not_done = lines
        .iter()
        .filter(|l| {
            l["outcome"] == "skipped"
                && l["reasons"][0]
                    .as_str()
                    .is_some_and(|r| r.contains("--resume"))
        })
        .count();
    let done = lines.iter().filter(|l| l["outcome"] == "created").count();
    assert!(not_done > 0 && done > 0, "{not_done} not done, {done} done");
    let mut resume = args.clone();
    resume.push("--resume");
    let o = cmd(&prod, &home, &resume).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("report written to"),
        "{}",
        describe(&o)
    );
    assert_eq!(report_lines(&file).last().unwrap()["interrupted"], false);
    prod.set_faults(FaultConfig::default()).unwrap();
    assert_same(
        &f.want,
        &normalize(&dump(&prod, f.dir.path()), Side::Target),
        "after Ctrl-C and --resume",
    );
}

#[test]
fn command_line_plan_import_diff_exit_codes_and_json() {
    let f = fixture();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let prod = start_prod(f.dir.path(), FaultConfig::default());
    let bundle = f.bundle.to_str().unwrap();
    let map = f.map.to_str().unwrap();
    let key = f.key.to_str().unwrap();

    // plan --json: creates, no refusal, nothing written.
    prod.reset_stats();
    let o = cmd(&prod, &home, &["plan", bundle, "--map", map, "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = plan["items"].as_array().unwrap();
    assert!(items
        .iter()
        .any(|i| i["action"] == "create" && i["kind"] == "job"));
    assert!(!items.iter().any(|i| i["action"] == "refuse"));
    assert_eq!(prod.stats().mutating, 0);

    // Without the mapping, the plan refuses (exit 1) and names both clusters.
    let o = cmd(&prod, &home, &["plan", bundle]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("0611-083245-krill42a") && text.contains("0702-154510-glacier7"));

    // A secret-holding bundle without a key: exit 2 before any write, with a hint.
    let o = cmd(&prod, &home, &["import", bundle, "--map", map])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--identity"));
    assert_eq!(prod.stats().mutating, 0);

    // A report file that cannot be written: exit 2 before any write (and no journal left),
    // naming the file and what to do.
    let import = |extra: &[&'static str]| {
        let mut v = vec!["import", bundle, "--map", map, "--identity", key];
        v.extend_from_slice(extra);
        v
    };
    let missing = f.dir.path().join("no-such-folder/report.jsonl");
    let o = cmd(&prod, &home, &import(&["--report"]))
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no-such-folder/report.jsonl.partial") && err.contains("hint: "),
        "{err}"
    );
    assert_eq!(prod.stats().mutating, 0);
    let journal = dbxport::import::ledger::journal_path(&f.bundle, client(&prod).host());
    assert!(
        !journal.exists(),
        "a journal was left by a run that never started"
    );

    // A refused import still writes its report: every object, and the refusal.
    let refused = f.dir.path().join("refused.jsonl");
    let o = cmd(
        &prod,
        &home,
        &["import", bundle, "--identity", key, "--report"],
    )
    .arg(&refused)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let lines = report_lines(&refused);
    assert_eq!(lines[0]["record"], "header");
    let summary = lines.last().unwrap();
    assert_eq!(summary["record"], "summary");
    assert_eq!(summary["refused"], true);
    assert_eq!(summary["mutating_requests"], 0);
    assert!(lines.len() > 100, "{} lines", lines.len());
    assert_eq!(prod.stats().mutating, 0);

    // diff before the import: differences, exit 1.
    let o = cmd(&prod, &home, &["diff", bundle, "--map", map])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));

    // import --json --report, then diff with the key: clean, exit 0.
    let file = f.dir.path().join("report.jsonl");
    let o = cmd(&prod, &home, &import(&["--json", "--report"]))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["report"]["refused"], false);
    assert!(v["report"]["counts"]["job"]["created"] == 10);
    assert_report_file_matches(&file, &v["report"]);
    let o = cmd(
        &prod,
        &home,
        &["diff", bundle, "--map", map, "--identity", key],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no differences"));

    // A missing bundle cannot run: exit 2.
    let o = cmd(&prod, &home, &["import", "/nonexistent/x.zip"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
}

/// The lines of a report file (`import --report`); a torn last line (a killed run) is left out.
fn report_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    if !text.ends_with('\n') {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A value's JSON text with every object's keys in order.
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: std::collections::BTreeMap<&String, String> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let fields: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

/// The report file holds what `--json`'s report holds: a header naming the run, one object line
/// per item (in the order the import finished them), a summary with every other field.
fn assert_report_file_matches(path: &Path, report: &serde_json::Value) {
    assert!(!dbxport::import::report_file::partial_path(path).exists());
    let lines = report_lines(path);
    let header = &lines[0];
    assert_eq!(header["record"], "header");
    assert_eq!(header["format"], "dbxport-import-report");
    for k in ["bundle", "bundle_id", "target", "journal"] {
        assert_eq!(header[k], report[k], "{k}");
    }
    // Order-free: the file has them as they finished, `--json` in plan order.
    let sorted = |v: Vec<serde_json::Value>| {
        let mut v: Vec<String> = v.iter().map(canonical).collect();
        v.sort();
        v
    };
    let objects: Vec<serde_json::Value> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            assert_eq!(l["record"], "object", "{l}");
            let mut l = l.clone();
            l.as_object_mut().unwrap().remove("record");
            l
        })
        .collect();
    assert_eq!(
        sorted(objects),
        sorted(report["items"].as_array().unwrap().clone())
    );
    let mut summary = lines.last().unwrap().clone();
    assert_eq!(summary["record"], "summary");
    let summary = summary.as_object_mut().unwrap();
    summary.remove("record");
    let mut want = report.as_object().unwrap().clone();
    for k in ["items", "bundle", "bundle_id", "target", "journal"] {
        want.remove(k);
    }
    assert_eq!(summary, &want);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn the_report_file_is_on_disk_while_the_import_runs_and_whole_at_the_end() {
    let f = fixture();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let prod = start_prod(f.dir.path(), slow());
    let file = f.dir.path().join("report.jsonl");
    let partial = dbxport::import::report_file::partial_path(&file);
    let mut args = import_args(&f, &["--report"]);
    args.push(file.to_str().unwrap());
    let mut child = cmd(&prod, &home, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Lines of finished objects appear while the import still has steps to send…
    let deadline = Instant::now() + Duration::from_secs(120);
    let objects = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|t| t.matches(r#""record":"object""#).count())
            .unwrap_or(0)
    };
    let seen = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before any object line was on disk"
        );
        let n = objects(&partial);
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "no object line ever appeared");
        std::thread::sleep(Duration::from_millis(2));
    };
    let writes = prod.stats().mutating;
    let more = kill_after(&mut child, &prod, writes + 20, 0);
    assert!(
        more,
        "the import ended right after its first lines: not streamed"
    );
    // …and stay there when the run is killed: FILE.partial, never a partial FILE.
    assert!(!file.exists());
    let lines = report_lines(&partial);
    assert_eq!(lines[0]["record"], "header");
    assert!(lines.len() > seen, "{} lines", lines.len());
    assert!(
        lines[1..].iter().all(|l| l["record"] == "object"),
        "{lines:?}"
    );
    // The resumed run writes the whole report.
    let mut resume = args.clone();
    resume.extend(["--resume", "--json"]);
    let o = cmd(&prod, &home, &resume).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_report_file_matches(&file, &v["report"]);
}

/// Runs `dbxport plan --json` with the key and returns its items.
fn plan_items(prod: &EmulatorHandle, home: &Path, f: &Fixture) -> Vec<serde_json::Value> {
    let o = cmd(
        prod,
        home,
        &[
            "plan",
            f.bundle.to_str().unwrap(),
            "--map",
            f.map.to_str().unwrap(),
            "--identity",
            f.key.to_str().unwrap(),
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["items"].as_array().unwrap().clone()
}

/// The action the plan gives the item of `kind` whose target is `target`.
fn action_of(items: &[serde_json::Value], kind: &str, target: &str) -> String {
    items
        .iter()
        .find(|i| i["kind"] == kind && i["target"] == target)
        .unwrap_or_else(|| panic!("no {kind} {target} in the plan"))["action"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `dbxport diff` with the key: its exit code and output.
fn diff(prod: &EmulatorHandle, home: &Path, f: &Fixture) -> Output {
    cmd(
        prod,
        home,
        &[
            "diff",
            f.bundle.to_str().unwrap(),
            "--map",
            f.map.to_str().unwrap(),
            "--identity",
            f.key.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap()
}

/// Puts another value into a secret of the target.
fn change_secret(prod: &EmulatorHandle, target: &str) {
    let (scope, key) = target.split_once('/').unwrap();
    rt().block_on(client(prod).secrets().put(
        scope,
        key,
        b"changed in the target",
        dbxport::model::secret::ValueEncoding::String,
    ))
    .unwrap();
}

/// Adds a line to a notebook of the target.
fn change_notebook(prod: &EmulatorHandle, path: &str) {
    use dbxport::client::workspace::Import;
    use dbxport::model::workspace::Format;
    let c = client(prod);
    rt().block_on(async {
        let info = c.workspace().get_status(path).await.unwrap();
        let mut content = c
            .workspace()
            .export(path, Format::Source, None)
            .await
            .unwrap()
            .to_vec();
        content.extend_from_slice(b"\n# changed in the target\n");
        c.workspace()
            .import(&Import {
                path,
                content: content.into(),
                format: Format::Source,
                language: info.language,
                overwrite: true,
            })
            .await
            .unwrap();
    });
}

#[test]
fn drift_in_the_target_is_seen_by_plan_import_and_diff_alike() {
    let f = fixture();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let prod = start_prod(f.dir.path(), FaultConfig::default());
    let o = cmd(&prod, &home, &import_args(&f, &[])).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let o = diff(&prod, &home, &f);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));

    // One object of three kinds, changed in the target after the import.
    let items = plan_items(&prod, &home, &f);
    let pick = |kind: &str| -> String {
        items
            .iter()
            .find(|i| i["kind"] == kind && i["action"] == "unchanged")
            .unwrap_or_else(|| panic!("no unchanged {kind} after the import"))["target"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (secret, notebook, job) = (pick("secret"), pick("notebook"), pick("job"));
    let job_id: i64 = job
        .rsplit_once("(job ")
        .and_then(|(_, id)| id.strip_suffix(')'))
        .unwrap()
        .parse()
        .unwrap();
    change_secret(&prod, &secret);
    change_notebook(&prod, &notebook);
    let mut settings = serde_json::Map::new();
    settings.insert("max_concurrent_runs".into(), 7.into());
    rt().block_on(client(&prod).jobs().update(job_id, &settings, &[]))
        .unwrap();

    // diff, plan and import agree: each of the three differs.
    let o = diff(&prod, &home, &f);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for t in [&secret, &notebook, &job] {
        assert!(
            text.lines()
                .any(|l| l.contains("differs:") && l.contains(t.as_str())),
            "{t}: {text}"
        );
    }
    let items = plan_items(&prod, &home, &f);
    for (kind, t) in [("secret", &secret), ("notebook", &notebook), ("job", &job)] {
        let a = action_of(&items, kind, t);
        assert!(
            a == "update" || a == "refuse",
            "plan says {a} for the changed {kind} {t}"
        );
    }
    let o = cmd(
        &prod,
        &home,
        &import_args(&f, &["--on-conflict", "overwrite", "--json"]),
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (kind, t) in [("secret", &secret), ("notebook", &notebook), ("job", &job)] {
        let it = v["report"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == kind && i["target"] == t.as_str())
            .unwrap_or_else(|| panic!("no {kind} {t} in the report"));
        assert_eq!(it["outcome"], "updated", "{kind} {t}: {it}");
    }
    let o = diff(&prod, &home, &f);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));

    // An unchanged target: nothing is written again.
    prod.reset_stats();
    let o = cmd(&prod, &home, &import_args(&f, &[])).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(
        prod.stats().mutating,
        0,
        "a re-run of an unchanged target wrote"
    );
}

#[test]
fn resume_compares_what_the_interrupted_run_imported_with_the_target() {
    let f = fixture();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let prod = start_prod(f.dir.path(), slow());
    let args = import_args(&f, &["--on-conflict", "overwrite"]);
    let mut child = cmd(&prod, &home, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        kill_after(&mut child, &prod, 30, 0),
        "the import finished first"
    );
    prod.set_faults(FaultConfig::default()).unwrap();
    // A notebook the interrupted run imported and journaled, changed since.
    let journal = dbxport::import::ledger::journal_path(&f.bundle, client(&prod).host());
    let text = std::fs::read_to_string(&journal).unwrap();
    let notebook = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            v["key"]
                .as_str()
                .and_then(|k| k.strip_prefix("notebook:"))
                .map(str::to_string)
        })
        .expect("the interrupted run journaled a notebook");
    change_notebook(&prod, &notebook);
    let mut resume = args.clone();
    resume.push("--resume");
    let o = cmd(&prod, &home, &resume).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let o = diff(&prod, &home, &f);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the resumed import left {notebook} as changed: {}",
        describe(&o)
    );
}

/// `import` in a 120×30 terminal: while it runs, one line per kind under way and a total, each
/// drawn at most once; when it ends, no bar is left and the report is the last thing printed,
/// each kind in it once.
#[test]
fn import_progress_on_a_terminal_leaves_only_the_report() {
    if !common::have_tool("script") {
        return;
    }
    let f = fixture();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let prod = start_prod(f.dir.path(), slow());
    let (code, bytes) = pty::run_in_pty(&cmd(&prod, &home, &import_args(&f, &[])));
    let lines = pty::transcript(&bytes);
    let shown = lines.join("\n");
    assert_eq!(code, Some(0), "the import failed:\n{shown}");
    // The live area holds at most MAX_KIND_LINES (8) kind lines and the total.
    let (redraws, drawn) = pty::check_live_area(&bytes, 8);
    assert!(
        redraws > 10 && drawn > 10,
        "the progress area was hardly drawn ({redraws} redraws, {drawn} bar lines):\n{shown}"
    );
    pty::assert_no_bar_left(&lines);
    let start = lines
        .iter()
        .position(|l| l.starts_with("import of "))
        .unwrap_or_else(|| panic!("no report:\n{shown}"));
    let header = lines[start..]
        .iter()
        .position(|l| l.starts_with("kind ") && l.contains("created"))
        .map(|i| start + i)
        .unwrap_or_else(|| panic!("no table in the report:\n{shown}"));
    let rows: Vec<&str> = lines[header + 1..]
        .iter()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut once = rows.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(
        once.len(),
        rows.len(),
        "a kind twice in the report:\n{shown}"
    );
    assert!(
        rows.contains(&"notebook") && rows.contains(&"job") && rows.last() == Some(&"total"),
        "{shown}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("import of ")).count(),
        1,
        "{shown}"
    );
}
