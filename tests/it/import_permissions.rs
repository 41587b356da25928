//! Permission writes an import leaves out (issue #13): a `PUT` of an object's direct ACL is sent
//! only when it changes what some principal can do there once what the object inherits is
//! counted — and an inherited entry counts only when the folder it comes from keeps its ACL in
//! the same plan. Counted with the emulator's request classes (`permissions.read`,
//! `permissions.write`).

use crate::export_folders::{export, start, TOKEN};
use crate::import_folders::{dbxport_cmd, describe, import_cmd};

use dbxport::emulator::{EmulatorHandle, FaultConfig};
use serde_json::{json, Value};
use std::path::Path;

const NOTEBOOK: &[u8] = b"# Databricks notebook source\nx = 1\n";

/// A workspace for these tests: the user `ann` (an admin, whose token is [`TOKEN`]) and `bob`,
/// the group `analysts`; the folders `folders` (held even when empty), one notebook per entry
/// of `notebooks` (the same bytes everywhere, so the notebooks themselves are unchanged), and
/// the direct ACLs `acls` (`permissions.json`). Object ids start at `first_id`, so that the
/// source's and the target's differ.
fn seed(root: &Path, first_id: i64, folders: &[&str], notebooks: &[&str], acls: Value) {
    let write = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    write(
        "workspace.json",
        json!({"workspace_id": "4400000000000002", "secrets_get_refused": false, "first_object_id": first_id})
            .to_string()
            .as_bytes(),
    );
    write(
        "principals.json",
        br#"{"users": [{"id": "1", "userName": "ann@example.org", "displayName": "Ann"},
                       {"id": "2", "userName": "bob@example.org", "displayName": "Bob"}],
             "groups": [{"id": "3", "displayName": "admins", "members": [{"value": "1"}]},
                        {"id": "4", "displayName": "analysts", "members": [{"value": "2"}]}],
             "service_principals": []}"#,
    );
    write(
        "tokens.json",
        json!({"tokens": [{"token": TOKEN, "user_name": "ann@example.org"}], "oauth_clients": []})
            .to_string()
            .as_bytes(),
    );
    let mut objects = serde_json::Map::new();
    for f in folders {
        objects.insert(f.to_string(), json!({"object_type": "DIRECTORY"}));
    }
    write(
        "objects.json",
        Value::Object(objects).to_string().as_bytes(),
    );
    for n in notebooks {
        write(&format!("workspace{n}.py"), NOTEBOOK);
    }
    write("permissions.json", acls.to_string().as_bytes());
}

fn grants(object: &str, entries: Value) -> Value {
    json!({"object": object, "access_control_list": entries})
}

fn analysts_read() -> Value {
    json!([{"group_name": "analysts", "permission_level": "CAN_READ"}])
}

fn bob_read() -> Value {
    json!([{"user_name": "bob@example.org", "permission_level": "CAN_READ"}])
}

/// Exports `/Shared` of a source seeded with `folders`, `notebooks` and `acls` into a bundle.
fn bundle_of(dir: &Path, folders: &[&str], notebooks: &[&str], acls: Value) -> std::path::PathBuf {
    let root = dir.join("source-seed");
    seed(&root, 7000, folders, notebooks, acls);
    let source = start(&root, FaultConfig::default());
    let bundle = dir.join("bundle.zip");
    export(&source, dir, &bundle);
    source.shutdown();
    bundle
}

/// A target seeded with `folders`, `notebooks` and `acls`.
fn target(dir: &Path, folders: &[&str], notebooks: &[&str], acls: Value) -> EmulatorHandle {
    let root = dir.join("target-seed");
    seed(&root, 9000, folders, notebooks, acls);
    start(&root, FaultConfig::default())
}

/// Runs `import --json` and returns its output, the target's request counts reset before.
fn import(emu: &EmulatorHandle, dir: &Path, bundle: &Path) -> Value {
    emu.reset_stats();
    let o = import_cmd(emu, dir, bundle, &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Permission writes and reads the target received since the last reset.
fn permission_requests(emu: &EmulatorHandle) -> (u64, u64) {
    let s = emu.stats();
    (
        s.class("permissions.write").requests,
        s.class("permissions.read").requests,
    )
}

/// The plan's permissions item for the object at `target` (`notebooks /Shared/team/nb`).
fn plan_item<'a>(out: &'a Value, target: &str) -> &'a Value {
    out["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "permissions" && i["target"] == target)
        .unwrap_or_else(|| panic!("no permissions item for {target}: {}", out["plan"]))
}

/// The direct entries of a workspace object of the target, as `(principal, level)`.
fn direct_acl(emu: &EmulatorHandle, rt: &str, path: &str) -> Vec<(String, String)> {
    let client = crate::support::import::client(emu);
    crate::support::import::rt().block_on(async {
        let info = client.workspace().get_status(path).await.unwrap();
        let p = client
            .permissions()
            .get(rt, &info.object_id.to_string())
            .await
            .unwrap();
        p.direct()
            .into_iter()
            .map(|e| (e.principal.name().to_string(), e.permission_level))
            .collect()
    })
}

/// The note a skipped write carries, naming the inherited entry that makes it moot.
fn assert_skipped_by_inheritance(out: &Value, target: &str, grant: &str) {
    let item = plan_item(out, target);
    assert_eq!(item["action"], "unchanged", "{item}");
    let notes = item["notes"].to_string();
    assert!(
        notes.contains("already grants the same by inheritance") && notes.contains(grant),
        "{item}"
    );
    // The import report says so too.
    let reported = out["report"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "permissions" && i["target"] == target)
        .unwrap_or_else(|| panic!("{target} is not in the report"));
    assert_eq!(reported["outcome"], "unchanged", "{reported}");
    assert!(
        reported["notes"].to_string().contains("by inheritance"),
        "{reported}"
    );
}

#[test]
fn a_direct_grant_the_unchanged_parent_folder_already_gives_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let folders = ["/Shared/team"];
    let bundle = bundle_of(
        dir.path(),
        &folders,
        &["/Shared/team/nb"],
        json!([
            grants("/Shared/team", analysts_read()),
            grants("/Shared/team/nb", analysts_read())
        ]),
    );
    // The target's folder grants the same; its notebook has no direct entry.
    let t = target(
        dir.path(),
        &folders,
        &["/Shared/team/nb"],
        json!([grants("/Shared/team", analysts_read())]),
    );
    // `diff` (the same plan) finds nothing to report: the notebook's ACL is already granted.
    let o = dbxport_cmd(&t, dir.path(), &["diff".as_ref(), bundle.as_os_str()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no differences"));
    let out = import(&t, dir.path(), &bundle);
    let (writes, _) = permission_requests(&t);
    assert_eq!(writes, 0, "{:?}", t.stats().routes);
    assert_eq!(t.stats().mutating, 0, "{:?}", t.stats().routes);
    assert_eq!(
        plan_item(&out, "directories /Shared/team")["action"],
        "unchanged"
    );
    assert_skipped_by_inheritance(
        &out,
        "notebooks /Shared/team/nb",
        "analysts CAN_READ from /directories/",
    );
    assert!(direct_acl(&t, "notebooks", "/Shared/team/nb").is_empty());
}

#[test]
fn a_grant_inherited_from_a_folder_the_plan_rewrites_is_not_relied_on() {
    let dir = tempfile::tempdir().unwrap();
    let folders = ["/Shared/keep", "/Shared/change"];
    let notebooks = ["/Shared/keep/nb", "/Shared/change/nb"];
    // Both notebooks grant analysts CAN_READ directly; `change` no longer grants it in the
    // bundle.
    let bundle = bundle_of(
        dir.path(),
        &folders,
        &notebooks,
        json!([
            grants("/Shared/keep", analysts_read()),
            grants("/Shared/keep/nb", analysts_read()),
            grants("/Shared/change", bob_read()),
            grants("/Shared/change/nb", analysts_read())
        ]),
    );
    let t = target(
        dir.path(),
        &folders,
        &notebooks,
        json!([
            grants("/Shared/keep", analysts_read()),
            grants("/Shared/change", analysts_read())
        ]),
    );
    let out = import(&t, dir.path(), &bundle);
    // `change` is rewritten, and so its notebook's inherited grant would go: both are written;
    // `keep`'s notebook is not.
    assert_eq!(
        plan_item(&out, "directories /Shared/change")["action"],
        "update"
    );
    assert_eq!(
        plan_item(&out, "notebooks /Shared/change/nb")["action"],
        "update"
    );
    assert_skipped_by_inheritance(&out, "notebooks /Shared/keep/nb", "analysts CAN_READ");
    let (writes, _) = permission_requests(&t);
    assert_eq!(writes, 2, "{:?}", t.stats().routes);
    assert_eq!(
        direct_acl(&t, "notebooks", "/Shared/change/nb"),
        vec![("analysts".to_string(), "CAN_READ".to_string())]
    );
    assert_eq!(
        direct_acl(&t, "directories", "/Shared/change"),
        vec![("bob@example.org".to_string(), "CAN_READ".to_string())]
    );
}

#[test]
fn new_objects_under_a_folder_that_already_grants_their_acl_are_not_written_and_it_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let folders = ["/Shared/team"];
    let notebooks: Vec<String> = (0..5).map(|i| format!("/Shared/team/nb{i}")).collect();
    let names: Vec<&str> = notebooks.iter().map(String::as_str).collect();
    let mut acls = vec![grants("/Shared/team", analysts_read())];
    acls.extend(names.iter().map(|n| grants(n, analysts_read())));
    let bundle = bundle_of(dir.path(), &folders, &names, Value::Array(acls));
    // The target has the folder with the same grant, and none of the notebooks.
    let t = target(
        dir.path(),
        &folders,
        &[],
        json!([grants("/Shared/team", analysts_read())]),
    );
    let out = import(&t, dir.path(), &bundle);
    for n in &names {
        assert_eq!(
            out["plan"]["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["kind"] == "notebook" && i["target"] == *n && i["action"] == "create")
                .count(),
            1,
            "{n} is not created"
        );
        assert_skipped_by_inheritance(&out, &format!("notebooks {n}"), "analysts CAN_READ");
    }
    // No write, and two reads: `/Shared` (the bundle holds its ACL too) and `/Shared/team`,
    // whose one read serves its own item and the five notebooks below it.
    let (writes, reads) = permission_requests(&t);
    assert_eq!((writes, reads), (0, 2), "{:?}", t.stats().routes);
}

#[test]
fn a_reimport_into_the_workspace_just_imported_into_writes_no_permission() {
    let dir = tempfile::tempdir().unwrap();
    // In the bundle: a folder the target has with the same grant and two new notebooks the
    // grant covers; a folder the target has with another grant (rewritten), with a new
    // notebook granting what the folder used to; a new folder with a new notebook.
    let folders = ["/Shared/keep", "/Shared/change", "/Shared/fresh"];
    let notebooks = [
        "/Shared/keep/a",
        "/Shared/keep/b",
        "/Shared/change/c",
        "/Shared/fresh/d",
    ];
    let bundle = bundle_of(
        dir.path(),
        &folders,
        &notebooks,
        json!([
            grants("/Shared/keep", analysts_read()),
            grants("/Shared/keep/a", analysts_read()),
            grants("/Shared/keep/b", analysts_read()),
            grants("/Shared/change", bob_read()),
            grants("/Shared/change/c", analysts_read()),
            grants("/Shared/fresh", bob_read()),
            grants("/Shared/fresh/d", bob_read())
        ]),
    );
    let t = target(
        dir.path(),
        &["/Shared/keep", "/Shared/change"],
        &[],
        json!([
            grants("/Shared/keep", analysts_read()),
            grants("/Shared/change", analysts_read())
        ]),
    );
    let first = import(&t, dir.path(), &bundle);
    // Written: `change` and its notebook, `fresh` (new) and its notebook (its new parent's
    // grant is not in the target yet, so nothing is known to cover it).
    // Read: `/Shared` (whose ACL the bundle holds too, and the nearest folder the target has
    // above `fresh`) and the two existing folders, each read once for itself and the new
    // notebooks below it.
    let (writes, reads) = permission_requests(&t);
    assert_eq!((writes, reads), (4, 3), "{:?}", t.stats().routes);
    assert_skipped_by_inheritance(&first, "notebooks /Shared/keep/a", "analysts CAN_READ");
    // Again: everything is there, nothing is written, nothing restated.
    let again = import(&t, dir.path(), &bundle);
    assert_eq!(t.stats().mutating, 0, "{:?}", t.stats().routes);
    let (writes, reads) = permission_requests(&t);
    assert_eq!(writes, 0);
    // One read per object with an ACL in the bundle (all eight exist now).
    assert_eq!(reads, 8, "{:?}", t.stats().routes);
    // `keep`'s notebooks still have no direct entry and still need none; the others now have
    // the bundle's.
    for n in ["/Shared/keep/a", "/Shared/keep/b"] {
        assert_skipped_by_inheritance(&again, &format!("notebooks {n}"), "analysts CAN_READ");
    }
    for n in ["/Shared/change/c", "/Shared/fresh/d"] {
        assert_eq!(
            plan_item(&again, &format!("notebooks {n}"))["action"],
            "unchanged"
        );
    }
}
