//! Folder-level export: a folder's notebooks come with one directory export (`SOURCE` zip),
//! split locally, and every notebook's bytes equal what its own export returns — checked object
//! by object against the emulator. Folders the archive cannot serve (over the 10 MB limit, too
//! few notebooks, files that `SOURCE` leaves out) go object by object, nothing is lost, and the
//! run's statistics say which way each folder went.

use crate::support::export as support;

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultConfig};
use std::path::Path;
use support::*;

pub(crate) const TOKEN: &str = "dapi-folder-export-test";

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A seed: `/Shared/many` (12 notebooks of four languages and two workspace files),
/// `/Shared/big` (three notebooks of 4 MB: 12 MB, over the folder export limit),
/// `/Shared/one` (a single notebook) and `/Shared/many/sub` (two notebooks, a subfolder).
pub(crate) fn seed(root: &Path) {
    write(
        root,
        "workspace.json",
        br#"{"workspace_id": "4400000000000001", "secrets_get_refused": false, "first_object_id": 7000}"#,
    );
    write(
        root,
        "principals.json",
        br#"{"users": [{"id": "1", "userName": "ann@example.org", "displayName": "Ann"}],
             "groups": [{"id": "2", "displayName": "admins", "members": [{"value": "1"}]}],
             "service_principals": []}"#,
    );
    write(
        root,
        "tokens.json",
        format!(r#"{{"tokens": [{{"token": "{TOKEN}", "user_name": "ann@example.org"}}], "oauth_clients": []}}"#)
            .as_bytes(),
    );
    let headers = [
        ("py", "# Databricks notebook source"),
        ("scala", "// Databricks notebook source"),
        ("sql", "-- Databricks notebook source"),
        ("r", "# Databricks notebook source"),
    ];
    for i in 0..12 {
        let (ext, header) = headers[i % 4];
        // Odd names too: dots, spaces and a name that ends like another language's extension.
        let name = match i {
            3 => "with space".to_string(),
            5 => "v1.2.py".to_string(),
            _ => format!("nb_{i:02}"),
        };
        write(
            root,
            &format!("workspace/Shared/many/{name}.{ext}"),
            format!("{header}\nvalue_{i} = {i}\r\n\n# trailing\n").as_bytes(),
        );
    }
    write(root, "workspace/Shared/many/data.csv", b"a,b\n1,2\n");
    write(
        root,
        "workspace/Shared/many/helper.py",
        b"def f():\n    return 1\n",
    );
    for i in 0..2 {
        write(
            root,
            &format!("workspace/Shared/many/sub/deep_{i}.py"),
            format!("# Databricks notebook source\ndeep = {i}\n").as_bytes(),
        );
    }
    let filler: String = "x = 1\n".repeat(4 * 1024 * 1024 / 6);
    for i in 0..3 {
        write(
            root,
            &format!("workspace/Shared/big/large_{i}.py"),
            format!("# Databricks notebook source\n{filler}").as_bytes(),
        );
    }
    write(
        root,
        "workspace/Shared/one/only.py",
        b"# Databricks notebook source\nonly = 1\n",
    );
}

pub(crate) fn start(seed_dir: &Path, faults: FaultConfig) -> EmulatorHandle {
    Emulator::start_in_background(
        EmulatorConfig::default()
            .with_seed(seed_dir.to_path_buf())
            .with_faults(faults)
            .with_fixed_clock(1_700_000_000_000),
    )
    .expect("the emulator starts")
}

pub(crate) fn export(emu: &EmulatorHandle, home: &Path, out: &Path) -> serde_json::Value {
    let mut c = std::process::Command::new(crate::common::dbxport_bin());
    c.arg("export")
        .args(["-o", out.to_str().unwrap(), "--json", "--path", "/Shared"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DATABRICKS_HOST", emu.url())
        .env("DATABRICKS_TOKEN", TOKEN);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    summary(&o)
}

/// The per-object `SOURCE` export of `path`, straight from the emulator.
pub(crate) fn own_export(emu: &EmulatorHandle, path: &str) -> Vec<u8> {
    let url = format!(
        "{}/api/2.0/workspace/export?format=SOURCE&direct_download=true&path={}",
        emu.url(),
        path.replace(' ', "%20")
    );
    let out = std::process::Command::new("curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {TOKEN}"), &url])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "per-object export of {path} failed");
    out.stdout
}

#[test]
fn folder_archives_give_each_notebook_its_own_exports_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let seed_dir = tmp.path().join("seed");
    seed(&seed_dir);
    let emu = start(&seed_dir, FaultConfig::default());
    let out = tmp.path().join("folders.zip");
    let s = export(&emu, tmp.path(), &out);
    let stats = emu.stats();

    // Every notebook and file is in the bundle, byte for byte what its own export answers.
    let e = entries(&out);
    let recs = records(&e);
    let notebooks = by_name(&recs, "notebook");
    let files = by_name(&recs, "file");
    assert_eq!(notebooks.len(), 12 + 2 + 3 + 1, "{:?}", notebooks.keys());
    assert_eq!(files.len(), 2, "{:?}", files.keys());
    for (path, rec) in notebooks.iter().chain(files.iter()) {
        assert!(
            primary(&e, rec) == own_export(&emu, path).as_slice(),
            "{path}: the bundle's bytes differ from its own export's"
        );
    }
    // (The seed has no SQL warehouse, so table grants are another matter.)
    for k in ["directory", "notebook", "file", "permissions"] {
        let c = &s["report"]["kinds"][k];
        assert_eq!(c["failed"], 0, "{k}");
        assert_eq!(c["not_exported"], 0, "{k}");
    }

    // Which way each folder went.
    let folders = s["run"]["folders"].as_object().expect("run.folders");
    let how = |p: &str| folders[p].as_str().unwrap().to_string();
    assert_eq!(how("/Shared/many"), "archive (12 notebooks)");
    assert_eq!(how("/Shared/many/sub"), "archive (2 notebooks)");
    assert!(
        how("/Shared/big")
            .starts_with("per object (3 notebooks): the folder is over the export size limit"),
        "{}",
        how("/Shared/big")
    );
    assert!(how("/Shared/one").starts_with("per object (1 notebooks): too few"));

    // Requests: one archive for each of the two archived folders, one failed archive and
    // three notebooks for the big one, one for the lone notebook, one per file.
    assert_eq!(
        stats.count("GET /api/2.0/workspace/export"),
        2 + (1 + 3) + 1 + 2,
        "{:?}",
        stats.routes.get("GET /api/2.0/workspace/export")
    );
    assert_eq!(stats.class("workspace.export").throttled, 0);
}

/// What the proxy answers for the directory export of `/Shared/many`.
#[derive(Clone, Copy)]
enum Archive {
    /// A server error.
    Fails,
    /// A zip with hostile entries around some good ones.
    Hostile,
}

/// A reverse proxy in front of `emu` that answers the directory export of `/Shared/many`
/// itself; everything else goes through unchanged.
fn proxy(emu: &EmulatorHandle, mode: Archive) -> (String, std::thread::JoinHandle<()>) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    let upstream = emu.url().to_string();
    let good: Vec<(String, Vec<u8>)> = (6..12)
        .map(|i| {
            let name = format!("nb_{i:02}");
            let ext = ["py", "scala", "sql", "r"][i % 4];
            let path = format!("/Shared/many/{name}");
            (format!("many/{name}.{ext}"), own_export(emu, &path))
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let http = reqwest::Client::new();
            let app = axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let http = http.clone();
                    let upstream = upstream.clone();
                    let good = good.clone();
                    async move {
                        let q = uri.query().unwrap_or("");
                        let dir_export = uri.path() == "/api/2.0/workspace/export"
                            && q.split('&').any(|kv| {
                                kv == "path=%2FShared%2Fmany" || kv == "path=/Shared/many"
                            });
                        if dir_export {
                            return match mode {
                                Archive::Fails => (
                                    StatusCode::BAD_REQUEST,
                                    r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"nope"}"#,
                                )
                                    .into_response(),
                                Archive::Hostile => hostile_zip(&good).into_response(),
                            };
                        }
                        let mut rb = http.request(method, format!("{upstream}{uri}")).body(body);
                        for (k, v) in headers.iter() {
                            if k != "host" {
                                rb = rb.header(k, v);
                            }
                        }
                        let r = rb.send().await.unwrap();
                        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
                        let mut out = HeaderMap::new();
                        for (k, v) in r.headers() {
                            if k != "content-length" && k != "transfer-encoding" {
                                out.insert(k.clone(), v.clone());
                            }
                        }
                        let b = r.bytes().await.unwrap();
                        (status, out, b).into_response()
                    }
                },
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", listener.local_addr().unwrap()))
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), h)
}

/// The hostile archive: escapes, absolute names, names of other folders, an entry that expands
/// past the notebook limit, and six good entries.
fn hostile_zip(good: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut add = |name: &str, data: &[u8]| {
        w.start_file(name, o).unwrap();
        w.write_all(data).unwrap();
    };
    add(
        "many/../../escaped.py",
        b"# Databricks notebook source\nevil\n",
    );
    add("/etc/absolute.py", b"# Databricks notebook source\nevil\n");
    add(
        "elsewhere/nb_00.py",
        b"# Databricks notebook source\nevil\n",
    );
    add("many/nb_01.scala", &vec![b'/'; 11 * 1024 * 1024]);
    for (n, d) in good {
        add(n, d);
    }
    w.finish().unwrap().into_inner()
}

fn export_via(url: &str, home: &Path, out: &Path) -> serde_json::Value {
    let mut c = std::process::Command::new(crate::common::dbxport_bin());
    c.arg("export")
        .args([
            "-o",
            out.to_str().unwrap(),
            "--json",
            "--path",
            "/Shared/many",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DATABRICKS_HOST", url)
        .env("DATABRICKS_TOKEN", TOKEN);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    summary(&o)
}

/// Every notebook of `/Shared/many` is in the bundle with its own export's bytes.
fn assert_all_notebooks(emu: &EmulatorHandle, out: &Path) {
    let e = entries(out);
    let recs = records(&e);
    let notebooks = by_name(&recs, "notebook");
    assert_eq!(notebooks.len(), 14, "{:?}", notebooks.keys());
    for (path, rec) in &notebooks {
        assert!(
            primary(&e, rec) == own_export(emu, path).as_slice(),
            "{path}: the bundle's bytes differ from its own export's"
        );
    }
}

#[test]
fn a_hostile_folder_archive_is_used_only_where_it_is_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let seed_dir = tmp.path().join("seed");
    seed(&seed_dir);
    let emu = start(&seed_dir, FaultConfig::default());
    let (url, _h) = proxy(&emu, Archive::Hostile);
    let work = tmp.path().join("work/deeper");
    std::fs::create_dir_all(&work).unwrap();
    let out = work.join("hostile.zip");
    let s = export_via(&url, tmp.path(), &out);
    assert_all_notebooks(&emu, &out);
    let how = s["run"]["folders"]["/Shared/many"].as_str().unwrap();
    assert!(
        how.starts_with("archive (6 notebooks), 6 per object: "),
        "{how}"
    );
    assert!(
        how.contains("nb_00.py: the folder archive does not hold it"),
        "{how}"
    );
    assert!(
        how.contains("nb_01.scala: its archive entry expands beyond"),
        "{how}"
    );
    assert!(how.contains("the folder archive does not hold it"), "{how}");
    // Nothing the archive named was written anywhere.
    for entry in walkdir::WalkDir::new(tmp.path()) {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains("escaped") && !name.contains("absolute"),
            "{name}"
        );
    }
    assert_eq!(s["report"]["kinds"]["notebook"]["failed"], 0);
}

#[test]
fn a_failing_folder_export_falls_back_object_by_object() {
    let tmp = tempfile::tempdir().unwrap();
    let seed_dir = tmp.path().join("seed");
    seed(&seed_dir);
    let emu = start(&seed_dir, FaultConfig::default());
    let (url, _h) = proxy(&emu, Archive::Fails);
    let out = tmp.path().join("fails.zip");
    let s = export_via(&url, tmp.path(), &out);
    assert_all_notebooks(&emu, &out);
    let how = s["run"]["folders"]["/Shared/many"].as_str().unwrap();
    assert!(
        how.starts_with("per object (12 notebooks): the directory export failed"),
        "{how}"
    );
    assert_eq!(s["report"]["kinds"]["notebook"]["failed"], 0);
    // The sub-folder is not behind the proxy's refusal: it still came as one archive.
    assert_eq!(
        s["run"]["folders"]["/Shared/many/sub"],
        "archive (2 notebooks)"
    );
}
