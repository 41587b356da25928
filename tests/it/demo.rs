//! `dbxport demo` runs to the end and exits 0, writes where it says, refuses a folder it did
//! not make, and replaces its own earlier output.

use std::process::Command;

fn demo(dir: &std::path::Path, cwd: &std::path::Path) -> std::process::Output {
    Command::new(crate::common::dbxport_bin())
        .args(["demo", "--dir"])
        .arg(dir)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .output()
        .expect("dbxport runs")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn demo_runs_to_the_end_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tmp.path().join("dbxport-demo");
    let o = demo(&dir, root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for step in 1..=8 {
        assert!(
            out.contains(&format!("[{step}/8]")),
            "step {step} missing:\n{out}"
        );
    }
    assert!(out.contains("no differences"), "{out}");
    assert!(out.contains("nothing is duplicated"), "{out}");
    for f in [
        "poc.zip",
        "key.txt",
        "mapping.toml",
        "import-report.txt",
        "prod-dump/objects.json",
    ] {
        assert!(dir.join(f).exists(), "{f} missing in {}", dir.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("key.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let unpacked: Vec<_> = std::fs::read_dir(dir.join("unpacked")).unwrap().collect();
    assert_eq!(unpacked.len(), 1, "one bag folder");
    // No plaintext secret value anywhere in the demo's output.
    let seed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("fixtures/workspaces/poc/secrets.json")).unwrap(),
    )
    .unwrap();
    let values: Vec<String> = seed["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["backend_type"] == "DATABRICKS")
        .flat_map(|s| s["secrets"].as_array().unwrap().clone())
        .filter_map(|s| s["string_value"].as_str().map(str::to_string))
        .collect();
    assert!(!values.is_empty());
    for f in walk(&dir) {
        let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().to_string();
        if rel.starts_with("prod-dump") || rel.starts_with("prod-seed") {
            // The emulator's own dump of production holds the values it stores, as a seed does.
            continue;
        }
        let bytes = std::fs::read(&f).unwrap();
        for v in &values {
            assert!(
                !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                "{rel} holds a secret value in plaintext"
            );
        }
    }
    assert!(!out.contains(values[0].as_str()));

    // Run again: it replaces its own output.
    let o = demo(&dir, root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A folder it did not make is refused, untouched.
    let other = tmp.path().join("mine");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let o = demo(&other, root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not made by the demo"));
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "keep me"
    );
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
