//! The per-record rules of spec §5–§6 that need nothing but the inventory: names, the `meta`
//! fields import acts on, and the agreement of records with each other. [`check`] runs them
//! all; the reader calls it in §10.1 step 5, so `inspect`, `verify`, `unpack` and every
//! command that imports (which verify first) refuse the same records, before anything is
//! written anywhere.
//!
//! This module holds the driver, the sealing rule of §5.2 and the checks several kinds share
//! (workspace paths, secret and model names); each kind's own rules are written beside its
//! typed meta, in `kinds::<kind>::format` (`check_record` and the like).
//!
//! The rules, by section (stored paths, sizes and digests against the bag — §5.2's E303/E304 —
//! are checked with the manifest in the reader):
//!
//! * §5.2 `sealed`: only a secret's value file is sealed (§8), so a `secret` record with a
//!   stored file is sealed, stored at one `….age` path, and no other known kind is sealed;
//!   a `directory` claims at most one path, a folder (`…/`); no other kind claims a folder.
//! * §6.1, §6.2: the `name` of `directory`, `notebook`, `file` and `repo` is a workspace path:
//!   absolute, no empty, `.` or `..` component, no control character.
//! * §6.3: a scope name and a key name are 1–128 letters, digits, `-`, `_`, `.` or `@` (not
//!   `.` or `..`); a scope's `name` is its `source_id`, its `meta.keys` are key names; a
//!   secret's `name` is `<scope>/<key>` from its `meta`, and its scope has a record.
//! * §6.4: `permissions` has a `request_object_type` of the list and an `object_id` that is
//!   one clean path component (both go into the request path); its `name` is `<type>/<id>`.
//! * §6.5: a model name is not empty, `.` or `..`, and has no `/` or control character; a
//!   version is a decimal number; `registered_model`, `model_version` and `model_artifact`
//!   names are `<model>`, `<model>/<version>`, `<model>/<version>/<path>`; a version has a
//!   `model.json`-holding model record and a stored `version.json`; an artifact has a version
//!   record. An artifact path has no empty, `.` or `..` component (E303, as §6.5 says); a
//!   duplicate's `same_as` names a stored artifact with its `sha256` and `size` (E303); a
//!   version's `artifacts_sha256`, `artifact_count` and `artifact_bytes` are what its artifact
//!   records give (the reader MUST of §6.5; E303).
//!
//! Everything but the three E303 rules §6.5 assigns is E307 (`RecordInvalid`).

use super::error::{BundleError, ErrorCode, ProblemList};
use super::inventory::{Inventory, Record};
use crate::kinds::model::format::ModelFacts;
use crate::model::Kind;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The longest scope or key name (§6.3).
pub const MAX_SECRET_NAME: usize = 128;

/// The `request_object_type`s of §6.4.
pub const PERMISSION_TYPES: [&str; 6] = [
    "notebooks",
    "directories",
    "files",
    "repos",
    "jobs",
    "registered-models",
];

/// Checks a workspace path (§6.1): absolute, no empty, `.` or `..` component, no control
/// character. Returns what is wrong.
pub fn check_workspace_path(p: &str) -> Result<(), String> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err("is not an absolute workspace path (it must start with `/`)".into());
    };
    if p.chars().any(char::is_control) {
        return Err("has a control character".into());
    }
    for c in rest.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return Err(format!(
                "has an empty, `.` or `..` component ({c:?}); a workspace path is absolute and clean"
            ));
        }
    }
    Ok(())
}

/// Checks a secret scope or key name (§6.3).
pub fn check_secret_name(what: &str, n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.chars().count() <= MAX_SECRET_NAME
        && n != "."
        && n != ".."
        && n.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {n:?} is not 1–{MAX_SECRET_NAME} letters, digits, `-`, `_`, `.` or `@`"
        ))
    }
}

/// Checks a registered model name (§6.5).
pub fn check_model_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n == "." || n == ".." || n.contains('/') || n.chars().any(char::is_control) {
        Err(format!(
            "model name {n:?} is empty, `.` or `..`, or has a `/` or a control character"
        ))
    } else {
        Ok(())
    }
}

/// True for an artifact path below a version's root (§6.5): `/`-separated, relative, no empty,
/// `.` or `..` component, no backslash or control character.
pub fn is_artifact_path(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
        && !rel.chars().any(char::is_control)
}

pub(crate) fn is_version(v: &str) -> bool {
    !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit())
}

/// One clean path component (ids that go into request paths).
pub(crate) fn is_component(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains(['/', '\\'])
        && !s.chars().any(char::is_control)
}

/// The digest of §6.5's artifact manifest: SHA-256 of `<sha256>  <path>\n` lines sorted by path
/// bytes.
pub fn artifacts_digest<'a, S: AsRef<str>>(
    entries: impl IntoIterator<Item = (&'a str, S)>,
) -> String {
    let mut lines: Vec<(&str, S)> = entries.into_iter().collect();
    lines.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    for (path, sha) in lines {
        h.update(sha.as_ref().as_bytes());
        h.update(b"  ");
        h.update(path.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Where the record rules put what they find: each problem names its record.
pub(crate) struct Out<'a>(&'a mut ProblemList);

/// What a kind's record rules may look at besides the record: the names the other records
/// hold. (The model kinds keep what their rules need of each other in
/// [`ModelFacts`] instead.)
pub(crate) struct RecordContext<'a> {
    /// Names of the secret scopes.
    pub(crate) scopes: BTreeSet<&'a str>,
}

impl Out<'_> {
    pub(crate) fn push(&mut self, code: ErrorCode, r: &Record, detail: impl Into<String>) {
        self.0.push(BundleError::new(
            code,
            format!("record {} {}", r.kind, r.name),
            detail,
        ));
    }
    pub(crate) fn invalid(&mut self, r: &Record, detail: impl Into<String>) {
        self.push(ErrorCode::RecordInvalid, r, detail);
    }
    pub(crate) fn result(&mut self, r: &Record, res: Result<(), String>) {
        if let Err(e) = res {
            self.invalid(r, e);
        }
    }
}

pub(crate) fn meta_u64(r: &Record, k: &str) -> Option<u64> {
    r.meta.get(k).and_then(Value::as_u64)
}

/// Checks every record of `inv` against the rules above; one problem per broken rule. The
/// model records a lean reading checked as they streamed left their facts in `inv`
/// (`Inventory::model_facts`); they are checked with the others here, and dropped.
pub fn check(inv: &mut Inventory, problems: &mut ProblemList) {
    // The streamed facts are moved, not copied: at a million records they are tens of MB.
    let mut facts = std::mem::take(&mut inv.model_facts);
    let mut out = Out(problems);
    let ctx = RecordContext {
        scopes: inv
            .records
            .iter()
            .filter(|r| r.kind == Kind::SecretScope)
            .map(|r| r.name.as_str())
            .collect(),
    };
    for r in &inv.records {
        check_sealing(&mut out, r);
        crate::kinds::format::record_rules(r, &ctx, &mut facts, &mut out);
    }
    facts.check(out.0);
}

/// True for the kinds whose rules need no other record but what `ModelFacts` keeps, and
/// whose meta no command that only verifies, inspects or unpacks reads afterwards: all but
/// the secret kinds (whose rules need the scopes, and whose meta `verify --identity` reads).
pub fn checked_alone(kind: Kind) -> bool {
    !matches!(kind, Kind::SecretScope | Kind::Secret)
}

/// Runs [`check`]'s rules on one record of a kind [`checked_alone`] accepts, adding its
/// problems to `problems` and what the model rules need of it to `facts`; returns false (and
/// checks nothing) for other kinds.
pub(crate) fn check_alone(r: &Record, problems: &mut ProblemList, facts: &mut ModelFacts) -> bool {
    if !checked_alone(r.kind) {
        return false;
    }
    let mut out = Out(problems);
    let ctx = RecordContext {
        scopes: BTreeSet::new(),
    };
    check_sealing(&mut out, r);
    crate::kinds::format::record_rules(r, &ctx, facts, &mut out);
    true
}

/// §5.2 and §8: which records are sealed, and what directories claim.
fn check_sealing(out: &mut Out, r: &Record) {
    if r.kind == Kind::Secret {
        if let Some(first) = r.stored.first() {
            if !r.sealed {
                out.invalid(r, format!("its value {first} is not marked sealed; a secret value is always sealed (§6.3)"));
            }
            if r.stored.len() != 1 || !first.ends_with(".age") {
                out.invalid(r, "a secret stores exactly one sealed value file (`….age`)");
            }
        }
    } else if r.sealed {
        out.invalid(
            r,
            "is marked sealed; only secret values are sealed in format 1 (§8)",
        );
    }
    let folders = r.stored.iter().filter(|p| p.ends_with('/')).count();
    if r.kind == Kind::Directory {
        if r.stored.len() > 1 || folders != r.stored.len() {
            out.invalid(
                r,
                "a directory claims at most one path, a folder ending in `/`",
            );
        }
    } else if folders > 0 {
        out.invalid(r, "claims a folder; only a directory record does");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(kind: Kind, name: &str, stored: &[&str], meta: Value) -> Record {
        Record {
            kind,
            source_id: name.into(),
            name: name.into(),
            stored: stored.iter().map(|s| s.to_string()).collect(),
            size: 0,
            sha256: None,
            sealed: false,
            notes: vec![],
            meta,
        }
    }

    fn inv(records: Vec<Record>) -> Inventory {
        let mut i = Inventory::new(
            "3c6f1e2a-9b8d-4e7f-a1b2-c3d4e5f60718".into(),
            time::OffsetDateTime::UNIX_EPOCH,
            Default::default(),
            json!({}),
        );
        i.records = records;
        i
    }

    fn codes(records: Vec<Record>) -> Vec<(&'static str, String)> {
        let mut l = ProblemList::new();
        check(&mut inv(records), &mut l);
        l.into_vec()
            .into_iter()
            .map(|e| (e.code().code(), e.detail().to_string()))
            .collect()
    }

    #[test]
    fn workspace_paths_are_absolute_and_clean() {
        for ok in ["/Users/a", "/Shared/x y/z.py", "/Users/ΟΔΟΣ"] {
            assert_eq!(check_workspace_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/",
            "relative/x",
            "/Shared/../Users/a",
            "/Shared/./a",
            "/Shared//a",
            "/Shared/a/",
            "/Shared/a\nb",
        ] {
            assert!(check_workspace_path(bad).is_err(), "{bad:?}");
            let c = codes(vec![rec(Kind::Notebook, bad, &[], json!({}))]);
            assert_eq!(c.len(), 1, "{bad:?}: {c:?}");
            assert_eq!(c[0].0, "E307", "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_named_sealed_and_scoped() {
        let scope = rec(Kind::SecretScope, "etl", &[], json!({"keys": ["pw"]}));
        let mut s = rec(
            Kind::Secret,
            "etl/pw",
            &["data/secrets/etl/values/pw.age"],
            json!({"scope": "etl", "key": "pw"}),
        );
        s.sealed = true;
        assert!(codes(vec![scope.clone(), s.clone()]).is_empty());
        let mut unsealed = s.clone();
        unsealed.sealed = false;
        let c = codes(vec![scope.clone(), unsealed]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "E307");
        assert_eq!(codes(vec![s.clone()])[0].0, "E307", "no scope record");
        let mut bad_key = s.clone();
        bad_key.meta = json!({"scope": "etl", "key": "../x"});
        bad_key.name = "etl/../x".into();
        assert_eq!(codes(vec![scope.clone(), bad_key])[0].0, "E307");
        let mut renamed = s;
        renamed.name = "other/pw".into();
        assert_eq!(codes(vec![scope, renamed])[0].0, "E307");
        let mut sealed_nb = rec(Kind::Notebook, "/a", &["data/workspace/a.py"], json!({}));
        sealed_nb.sealed = true;
        assert_eq!(codes(vec![sealed_nb])[0].0, "E307");
    }

    fn model(artifacts: &[(&str, &str, u64)], digest: Option<String>) -> Vec<Record> {
        let mut v = vec![
            rec(
                Kind::RegisteredModel,
                "m",
                &["data/models/m/model.json"],
                json!({"name": "m"}),
            ),
            rec(
                Kind::ModelVersion,
                "m/1",
                &["data/models/m/versions/1/version.json"],
                json!({
                    "model": "m", "version": "1",
                    "artifacts_sha256": digest.unwrap_or_else(|| artifacts_digest(artifacts.iter().map(|a| (a.0, a.1)))),
                    "artifact_count": artifacts.len(),
                    "artifact_bytes": artifacts.iter().map(|a| a.2).sum::<u64>(),
                    "complete": true,
                }),
            ),
        ];
        for (path, sha, size) in artifacts {
            let mut a = rec(
                Kind::ModelArtifact,
                &format!("m/1/{path}"),
                &[&format!("data/models/m/versions/1/artifacts/{path}")],
                json!({"model": "m", "version": "1", "path": path}),
            );
            a.sha256 = Some(sha.to_string());
            a.size = *size;
            v.push(a);
        }
        v
    }

    #[test]
    fn models_follow_section_6_5() {
        let sha = "a".repeat(64);
        assert!(codes(model(&[("MLmodel", &sha, 3)], None)).is_empty());
        // The reader MUST check artifacts_sha256.
        let c = codes(model(&[("MLmodel", &sha, 3)], Some("b".repeat(64))));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "E303");
        // An artifact path that climbs out of the version's root.
        let c = codes(model(&[("../../../x", &sha, 3)], None));
        assert_eq!(c[0].0, "E303", "{c:?}");
        assert!(c[0].1.contains("../../../x"), "{c:?}");
        // A duplicate must name a stored copy with its digest and size.
        let mut recs = model(&[("a", &sha, 3)], None);
        let mut dup = rec(
            Kind::ModelArtifact,
            "m/1/b",
            &[],
            json!({"model": "m", "version": "1", "path": "b", "same_as": "m/1/a", "sha256": sha, "size": 3}),
        );
        recs[1].meta["artifacts_sha256"] =
            json!(artifacts_digest([("a", sha.as_str()), ("b", sha.as_str())]));
        recs[1].meta["artifact_count"] = json!(2);
        recs[1].meta["artifact_bytes"] = json!(6);
        recs.push(dup.clone());
        assert!(codes(recs.clone()).is_empty(), "{:?}", codes(recs.clone()));
        dup.meta["size"] = json!(4);
        *recs.last_mut().unwrap() = dup;
        assert_eq!(codes(recs)[0].0, "E303");
        // Names: a model name with `/`, a version that is not a number.
        let mut recs = model(&[], None);
        recs[1].meta["version"] = json!("../1");
        recs[1].name = "m/../1".into();
        assert_eq!(codes(recs)[0].0, "E307");
        let mut recs = model(&[], None);
        recs.remove(0);
        assert_eq!(codes(recs)[0].0, "E307", "version without its model");
    }

    /// The model rules keep a valid digest as bytes (issue #15) and any other text as it is:
    /// each is compared and quoted as the bundle wrote it.
    #[test]
    fn model_digests_are_compared_and_quoted_as_written() {
        let sha = "a".repeat(64);
        let right = artifacts_digest([("MLmodel", sha.as_str())]);
        assert!(codes(model(&[("MLmodel", &sha, 3)], Some(right.clone()))).is_empty());
        for wrong in [
            "not-a-digest".to_string(),
            right.to_uppercase(),
            "b".repeat(64),
        ] {
            let c = codes(model(&[("MLmodel", &sha, 3)], Some(wrong.clone())));
            assert_eq!(c.len(), 1, "{wrong}: {c:?}");
            assert_eq!(c[0].0, "E303");
            assert!(
                c[0].1.contains(&format!(
                    "meta.artifacts_sha256 is {wrong}, its 1 artifact records give {right}"
                )),
                "{c:?}"
            );
        }
        // An artifact digest that is not lowercase hex goes into the manifest as written.
        let upper = "A".repeat(64);
        let as_written = artifacts_digest([("MLmodel", upper.as_str())]);
        let c = codes(model(&[("MLmodel", &upper, 3)], Some(as_written)));
        assert!(c.iter().all(|p| !p.1.contains("artifacts_sha256")), "{c:?}");
    }

    /// The model rules find the same problems whether the records were kept whole or checked
    /// as they streamed and kept lean (what `verify` does: issue #15), in any record order.
    #[test]
    fn model_rules_find_the_same_lean_and_whole() {
        let sha = "a".repeat(64);
        let two = [("a", sha.as_str(), 3), ("b", sha.as_str(), 4)];
        let dup = |same_as: &str, size: u64| {
            rec(
                Kind::ModelArtifact,
                "m/1/c",
                &[],
                json!({"model": "m", "version": "1", "path": "c", "same_as": same_as,
                       "sha256": "a".repeat(64), "size": size}),
            )
        };
        let mut cases: Vec<(Vec<Record>, usize)> = vec![
            (model(&two, None), 0),
            (model(&two, Some("b".repeat(64))), 1),
        ];
        let mut no_model = model(&two, None);
        no_model.remove(0);
        cases.push((no_model, 1));
        let mut no_version = model(&two, None);
        no_version.remove(1);
        cases.push((no_version, 2));
        for (same_as, size, problems) in [("m/1/a", 3, 2), ("m/1/zz", 3, 1), ("m/1/a", 9, 1)] {
            let mut recs = model(&two, None);
            recs.push(dup(same_as, size));
            cases.push((recs, problems));
        }
        let mut reversed = model(&two, None);
        reversed.reverse();
        cases.push((reversed, 0));
        let mut bad_path = model(&two, None);
        bad_path[2].meta["path"] = json!("../x");
        cases.push((bad_path, 3));
        let sorted = |l: ProblemList| {
            let mut v: Vec<String> = l.into_vec().iter().map(ToString::to_string).collect();
            v.sort();
            v
        };
        for (i, (records, problems)) in cases.into_iter().enumerate() {
            let bytes = serde_json::to_vec(&inv(records)).unwrap();
            let mut whole = ProblemList::new();
            check(&mut Inventory::from_reader(&bytes[..]).unwrap(), &mut whole);
            let streamed = std::cell::RefCell::new(ProblemList::new());
            let mut lean_inv = Inventory::from_reader_lean(&bytes[..], &streamed).unwrap();
            assert!(
                lean_inv.records.is_empty(),
                "case {i}: model records kept whole"
            );
            let mut lean = streamed.into_inner();
            check(&mut lean_inv, &mut lean);
            let (whole, lean) = (sorted(whole), sorted(lean));
            assert_eq!(whole.len(), problems, "case {i}: {whole:?}");
            assert_eq!(whole, lean, "case {i}");
        }
    }

    #[test]
    fn permissions_ids_are_plain() {
        let ok = rec(
            Kind::Permissions,
            "jobs/7",
            &[],
            json!({"request_object_type": "jobs", "object_id": "7"}),
        );
        assert!(codes(vec![ok]).is_empty());
        let bad = rec(
            Kind::Permissions,
            "jobs/../secrets",
            &[],
            json!({"request_object_type": "jobs", "object_id": "../secrets"}),
        );
        assert_eq!(codes(vec![bad])[0].0, "E307");
        let bad = rec(
            Kind::Permissions,
            "clusters/7",
            &[],
            json!({"request_object_type": "clusters", "object_id": "7"}),
        );
        assert_eq!(codes(vec![bad])[0].0, "E307");
    }
}
