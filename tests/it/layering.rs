//! The layers of DESIGN.md hold in the source: the bundle format, the model and every kind's
//! `format` module (its typed meta and payload file types) depend on nothing network-shaped
//! or pipeline-shaped, so the format builds without the network layers; the emulator does not
//! borrow the client, and import does not borrow export (issue #10, "one kind, one place").
//! Each `.rs` file under a module is read and every import of a forbidden path is reported
//! with its file and line.
//!
//! An import is a `crate::<module>` path (in a `use`, grouped as `crate::{<module>, …}`, or
//! written inline) or an external crate's path (`tokio::…`, `use tokio;`). Comments are skipped.
//!
//! A second check holds the bundle's payload formats apart from the API's wire model (issue
//! #10, "the format is its own"; the rule is stated in `src/kinds/mod.rs`): a kind's
//! `format.rs` names a wire type of `crate::model` only inside its `mod wire { … }` block,
//! its last item, which defines no type of its own.

use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One layering rule: files of `module` (a folder under `src/`) — only those named `file`,
/// when given — must not import `forbidden`.
struct Rule {
    module: &'static str,
    file: Option<&'static str>,
    forbidden: &'static str,
    why: &'static str,
}

const fn rule(module: &'static str, forbidden: &'static str, why: &'static str) -> Rule {
    Rule {
        module,
        file: None,
        forbidden,
        why,
    }
}

/// A rule for the files named `file` under `module` (a kind's `import.rs`, say).
const fn rule_for(
    module: &'static str,
    file: &'static str,
    forbidden: &'static str,
    why: &'static str,
) -> Rule {
    Rule {
        module,
        file: Some(file),
        forbidden,
        why,
    }
}

/// The rules. `crate::x` is a module of this crate; a bare name is an external crate.
const RULES: &[Rule] = &[
    rule(
        "bundle",
        "crate::client",
        "the format is read and written offline; no workspace client",
    ),
    rule(
        "bundle",
        "crate::emulator",
        "the format knows no server, fake or real",
    ),
    rule(
        "bundle",
        "crate::export",
        "export builds on the format, not the reverse",
    ),
    rule(
        "bundle",
        "crate::import",
        "import builds on the format, not the reverse",
    ),
    rule(
        "bundle",
        "crate::models",
        "the models pipeline builds on the format, not the reverse",
    ),
    rule(
        "bundle",
        "tokio",
        "the format does blocking file I/O only; no async runtime",
    ),
    rule("bundle", "reqwest", "the format does no network I/O"),
    rule("bundle", "axum", "the format serves nothing"),
    rule("bundle", "hyper", "the format does no network I/O"),
    rule(
        "model",
        "crate::client",
        "the model is data shapes and pure helpers (model/mod.rs)",
    ),
    rule(
        "model",
        "crate::bundle",
        "the model is below the format that serializes it",
    ),
    rule(
        "model",
        "crate::emulator",
        "the model is below the server that stores it",
    ),
    rule("model", "crate::export", "the model is below the pipelines"),
    rule("model", "tokio", "the model does no I/O; no async runtime"),
    rule("model", "reqwest", "the model does no network I/O"),
    rule("model", "hyper", "the model does no network I/O"),
    rule("model", "axum", "the model serves nothing"),
    rule("model", "crate::import", "the model is below the pipelines"),
    rule(
        "emulator",
        "crate::client",
        "the emulator checks the client; built from it, both drift together",
    ),
    rule(
        "import",
        "crate::export",
        "import reads any bundle; what both need lives in model or bundle",
    ),
    rule(
        "bundle",
        r"crate::kinds::\w+::(export|import)",
        "the format may check records against a kind's typed meta (kinds::<kind>::format), never reach its pipelines",
    ),
    rule(
        "model",
        "crate::kinds",
        "the shared model sits below every kind",
    ),
    rule_for(
        "kinds",
        "import.rs",
        "crate::export",
        "a kind's import does not borrow export; shared code goes below both",
    ),
    rule_for(
        "kinds",
        "import.rs",
        "super::export",
        "a kind's import does not borrow its export; shared code goes below both",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "crate::client",
        "a kind's format is read and written offline; no workspace client",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "crate::emulator",
        "a kind's format knows no server",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "crate::export",
        "a kind's format is below its export",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "crate::import",
        "a kind's format is below its import",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "super::export",
        "a kind's format is below its export",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "super::import",
        "a kind's format is below its import",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "tokio",
        "a kind's format does no async I/O",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "reqwest",
        "a kind's format does no network I/O",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "hyper",
        "a kind's format does no network I/O",
    ),
    rule_for("kinds", "format.rs", "axum", "a kind's format serves nothing"),
    rule_for(
        "kinds",
        "format.rs",
        r"crate::kinds::\w+::(export|import)",
        "a kind's format is below every kind's pipelines",
    ),
    rule_for(
        "kinds",
        "format.rs",
        "crate::models",
        "a kind's format is below the models pipeline",
    ),
    rule_for(
        "kinds",
        "export.rs",
        "crate::import",
        "a kind's export does not borrow import",
    ),
    rule_for(
        "kinds",
        "export.rs",
        "super::import",
        "a kind's export does not borrow its import",
    ),
];

/// Imports that break a rule today, with why they stay for now. A listed exception that no
/// longer occurs fails the test, so the list only shrinks.
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// The source with `//` comments blanked (newlines kept, so offsets keep their lines). Good
/// enough for this tree: no `//` inside the string literals of the checked modules matters.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match comment_start(line) {
            Some(i) => {
                out.push_str(&line[..i]);
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Where a `//` comment starts, outside a string literal.
fn comment_start(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            // A char literal such as '"' does not open a string.
            b'\'' if !in_str && b.get(i + 2) == Some(&b'\'') => i += 2,
            b'"' => in_str = !in_str,
            b'/' if !in_str && b.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Every (line, forbidden path) in `text` that imports `forbidden`.
fn imports_of(text: &str, forbidden: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    if let Some(name) = forbidden.strip_prefix("crate::") {
        let direct = Regex::new(&format!(r"\bcrate::{name}\b")).unwrap();
        lines.extend(direct.find_iter(text).map(|m| line_of(text, m.start())));
        // `use crate::{a, name::X, …}`: top-level names of the group.
        for m in Regex::new(r"\bcrate::\{").unwrap().find_iter(text) {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in text[m.end()..].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
                if depth == 0 {
                    items.push(item);
                    break;
                }
            }
            let head = |s: &str| s.trim().split("::").next().unwrap_or("").trim().to_string();
            if items.iter().any(|i| head(i) == name) {
                lines.push(line_of(text, m.start()));
            }
        }
    } else {
        // A path into the crate (`tokio::spawn`, `::tokio::…`) or `use tokio;` / `extern crate`.
        let path = Regex::new(&format!(r"(^|[^\w:]|::){forbidden}::")).unwrap();
        let whole = Regex::new(&format!(r"\b(use|extern crate)\s+{forbidden}\b")).unwrap();
        for m in path.find_iter(text).chain(whole.find_iter(text)) {
            let at = m.start() + m.as_str().find(forbidden).unwrap_or(0);
            // `crate::tokio` or `x::tokio::` is a path inside something else, not the crate.
            let before = &text[..at];
            let prefixed = before.ends_with("::") && !before.ends_with(" ::") && {
                let t = before.trim_end_matches("::");
                t.ends_with(|c: char| c.is_alphanumeric() || c == '_')
            };
            if !prefixed {
                lines.push(line_of(text, at));
            }
        }
    }
    lines.sort();
    lines.dedup();
    lines
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.expect("source tree is readable"))
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

#[test]
fn modules_import_only_what_their_layer_allows() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut used_exceptions = vec![false; KNOWN_EXCEPTIONS.len()];
    for r in RULES {
        let dir = repo.join("src").join(r.module);
        let files = rust_files(&dir);
        assert!(!files.is_empty(), "src/{} has no .rs files", r.module);
        for f in files {
            if r.file
                .is_some_and(|name| f.file_name().is_some_and(|n| n != name))
            {
                continue;
            }
            let rel = f
                .strip_prefix(repo)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = strip_comments(&std::fs::read_to_string(&f).unwrap());
            for line in imports_of(&text, r.forbidden) {
                if let Some(i) = KNOWN_EXCEPTIONS
                    .iter()
                    .position(|(file, what, _)| *file == rel && *what == r.forbidden)
                {
                    used_exceptions[i] = true;
                    continue;
                }
                broken.push(format!(
                    "{rel}:{line}: imports {} — src/{} must not: {}",
                    r.forbidden, r.module, r.why
                ));
            }
        }
    }
    for (i, used) in used_exceptions.iter().enumerate() {
        if !used {
            let (file, what, _) = KNOWN_EXCEPTIONS[i];
            broken.push(format!(
                "{file} no longer imports {what}: remove it from KNOWN_EXCEPTIONS in tests/layering.rs"
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "layering rules broken:\n{}\nhint: move the shared code below both modules (crate::model \
         or crate::bundle) instead of importing across layers",
        broken.join("\n")
    );
}

/// The detector itself: each import form is found, lookalikes are not.
#[test]
fn the_detector_finds_each_import_form() {
    let found = |src: &str, f: &str| imports_of(&strip_comments(src), f);
    assert_eq!(found("use super::export::stage;\n", "super::export"), [1]);
    let pipelines = r"crate::kinds::\w+::(export|import)";
    assert_eq!(found("use crate::kinds::job::export::x;\n", pipelines), [1]);
    assert!(found("use crate::kinds::format::meta_problems;\n", pipelines).is_empty());
    assert!(found("use super::exporter::x;\n", "super::export").is_empty());
    assert_eq!(found("use crate::client::Client;\n", "crate::client"), [1]);
    assert_eq!(
        found("x\nlet c = crate::client::new();\n", "crate::client"),
        [2]
    );
    assert_eq!(
        found("use crate::{bundle,\n client::X};\n", "crate::client"),
        [1]
    );
    assert_eq!(
        found("use crate::{model::{a, b}, export};\n", "crate::export"),
        [1]
    );
    assert_eq!(
        found("use crate::model::Kind;\n", "crate::models"),
        Vec::<usize>::new()
    );
    assert_eq!(
        found("use crate::models::x;\n", "crate::model"),
        Vec::<usize>::new()
    );
    assert_eq!(
        found("use crate::{model::{client}};\n", "crate::client"),
        Vec::<usize>::new()
    );
    assert_eq!(
        found("// use crate::client;\n", "crate::client"),
        Vec::<usize>::new()
    );
    assert_eq!(found("use tokio::sync::Mutex;\n", "tokio"), [1]);
    assert_eq!(found("a\nb\n    tokio::spawn(x);\n", "tokio"), [3]);
    assert_eq!(found("use ::tokio::fs;\n", "tokio"), [1]);
    assert_eq!(found("use tokio;\n", "tokio"), [1]);
    assert_eq!(found("let s = \"http://x\"; hyper::Body\n", "hyper"), [1]);
    assert_eq!(
        found("use crate::x::tokio::y;\n", "tokio"),
        Vec::<usize>::new()
    );
    assert_eq!(found("let my_tokio::a;\n", "tokio"), Vec::<usize>::new());
    assert_eq!(
        found("let q = '\"'; // tokio::x\n", "tokio"),
        Vec::<usize>::new()
    );
}

/// Dev-dependencies must not change the features of crates the binary uses: under `cargo
/// test` every crate is built with the union, so library code tested in process could behave
/// unlike the shipped binary (the regex trap A1 in CONFORMANCE-NOTES.md), and `cargo test`
/// would build every such crate and everything above it — dbxport included — a second time.
/// The schema tests use Python's `jsonschema` for that reason, and the client's timed tests a
/// manual `dbxport::clock::Clock` rather than tokio's `test-util`.
#[test]
fn dev_dependencies_change_no_features_of_shipped_crates() {
    let tree = |edges: &str| -> BTreeMap<String, String> {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "--prefix",
                "none",
                "-f",
                "{p}|{f}",
                "-e",
                edges,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (p, f) = l.split_once('|')?;
                let f = f.trim_end_matches(" (*)");
                let name = p.split_whitespace().next()?.to_string();
                Some((
                    format!("{name} {}", p.split_whitespace().nth(1)?),
                    f.to_string(),
                ))
            })
            .collect()
    };
    let shipped = tree("normal,build");
    let tested = tree("normal,build,dev");
    let changed: Vec<&str> = shipped
        .iter()
        .filter(|(k, f)| tested.get(*k).is_some_and(|t| t != *f))
        .map(|(k, _)| k.split(' ').next().unwrap())
        .collect();
    assert!(
        changed.is_empty(),
        "dev-dependencies change the features of {changed:?} under `cargo test`; take the \
         dev-dependency out (or enable the same features for the binary, if it should have them)"
    );
}

/// The files of `src/model/` whose types are not the API's wire shapes: the kind vocabulary,
/// the report model and the code scanner's findings. Every other module's public types are
/// wire types (a new module counts as wire until listed here).
const NOT_WIRE_FILES: &[&str] = &["kinds.rs", "report.rs", "scan.rs"];
/// Public types of the wire files that are not wire shapes.
const NOT_WIRE_NAMES: &[&str] = &["Kind"];

/// The names of the wire model's public types, read from `src/model/`.
fn wire_type_names(model: &Path) -> Vec<String> {
    let decl = Regex::new(r"(?m)^pub (?:struct|enum|type|trait|union) (\w+)").unwrap();
    let mut names = Vec::new();
    for f in rust_files(model) {
        let file = f.file_name().unwrap().to_string_lossy().to_string();
        if NOT_WIRE_FILES.contains(&file.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for c in decl.captures_iter(&text) {
            if !NOT_WIRE_NAMES.contains(&&c[1]) {
                names.push(c[1].to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// `text` with the contents of its string literals blanked (newlines kept), so a word in a
/// message or a serde name is not taken for a type. Handles escapes, raw strings and the
/// char literal `'"'`.
fn blank_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        match b[i] {
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 3,
            b'\'' if b.get(i + 1) == Some(&b'\\') && b.get(i + 3) == Some(&b'\'') => i += 4,
            b'r' if (i == 0 || !word(b[i - 1]))
                && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let open = i + 1 + hashes;
                if b.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let mut j = open + 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    if b[j] != b'\n' {
                        out[j] = b' ';
                    }
                    j += 1;
                }
                i = j + close.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    let step = if b[j] == b'\\' { 2 } else { 1 };
                    for k in j..(j + step).min(b.len()) {
                        if b[k] != b'\n' {
                            out[k] = b' ';
                        }
                    }
                    j += step;
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out)
        .expect("blanking keeps UTF-8: only whole ASCII bytes and string contents change")
}

/// What breaks the wire-block rule in one `format.rs` (comments and strings already blanked):
/// `(line, problem)`.
fn wire_block_problems(text: &str, wire_names: &[String]) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "mod wire {");
    let format_part = &lines[..start.unwrap_or(lines.len())];
    let name = Regex::new(r"\b[A-Z]\w*\b").unwrap();
    for (n, line) in format_part.iter().enumerate() {
        for m in name.find_iter(line) {
            if wire_names.iter().any(|w| w == m.as_str()) && !line[..m.start()].ends_with("Kind::")
            {
                problems.push((
                    n + 1,
                    format!(
                        "names the wire type {} outside its `mod wire` block",
                        m.as_str()
                    ),
                ));
            }
        }
    }
    if let Some(start) = start {
        let item =
            Regex::new(r"^    (?:pub(?:\([^)]*\))?\s+)?(struct|enum|union|type|trait)\b").unwrap();
        for (n, line) in lines.iter().enumerate().skip(start + 1) {
            if !line.is_empty() && !line.starts_with(' ') && line.trim_end() != "}" {
                problems.push((
                    n + 1,
                    "an item after the `mod wire` block: it must be the file's last item".into(),
                ));
            }
            if let Some(c) = item.captures(line) {
                problems.push((
                    n + 1,
                    format!(
                        "the `mod wire` block defines a {}: format types live above it",
                        &c[1]
                    ),
                ));
            }
        }
    }
    problems
}

/// Issue #10, "the format is its own": every kind's `format.rs` names the API's wire types
/// only in its `mod wire` block (the conversions and the constructors export calls), so the
/// payload file types above it state their shapes without borrowing any wire type's.
#[test]
fn kinds_formats_name_wire_types_only_in_their_wire_block() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wire = wire_type_names(&repo.join("src/model"));
    for expected in [
        "Repo",
        "Job",
        "ObjectPermissions",
        "KeyValue",
        "HiveGrant",
        "Cluster",
    ] {
        assert!(
            wire.iter().any(|w| w == expected),
            "{expected} is not among the wire types read from src/model: {wire:?}"
        );
    }
    let mut broken = Vec::new();
    let mut with_block = 0;
    for f in rust_files(&repo.join("src/kinds")) {
        if f.file_name().is_some_and(|n| n != "format.rs") {
            continue;
        }
        let rel = f
            .strip_prefix(repo)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = blank_strings(&strip_comments(&std::fs::read_to_string(&f).unwrap()));
        with_block += usize::from(text.lines().any(|l| l.trim_end() == "mod wire {"));
        for (line, why) in wire_block_problems(&text, &wire) {
            broken.push(format!("{rel}:{line}: {why}"));
        }
    }
    assert!(
        with_block >= 8,
        "only {with_block} kinds' format.rs have a `mod wire` block"
    );
    assert!(
        broken.is_empty(),
        "the format borrows the wire model:\n{}\nhint: give the payload its own format type \
         above the block, and convert from and to the wire type inside `mod wire` (src/kinds/mod.rs)",
        broken.join("\n")
    );
}

/// The wire-block check itself: what it finds and what it lets pass.
#[test]
fn the_wire_block_check_finds_each_breach() {
    let wire = vec!["Repo".to_string(), "Job".to_string()];
    let check = |src: &str| {
        wire_block_problems(&blank_strings(&strip_comments(src)), &wire)
            .into_iter()
            .map(|(l, _)| l)
            .collect::<Vec<_>>()
    };
    let clean = "pub struct RepoFile {\n    pub id: i64,\n}\nfn k() { Kind::Job; }\n\
                 const S: &str = \"Repo\";\n// a Repo\nlet c = '\"'; let j = \"Job\";\n\
                 mod wire {\n    use crate::model::repo::Repo;\n    impl From<&Repo> for RepoFile {}\n}\n";
    assert!(check(clean).is_empty(), "{:?}", check(clean));
    assert_eq!(check("pub struct F {\n    pub r: Repo,\n}\n"), [2]);
    assert_eq!(
        check("#[serde(flatten)]\nw: crate::model::job::Job,\n"),
        [2]
    );
    assert_eq!(check("let s = r#\"Repo\"#; let x: Job;\n"), [1]);
    assert_eq!(check("mod wire {\n    pub struct Extra;\n}\n"), [2]);
    assert_eq!(check("mod wire {\n    enum E {}\n}\n"), [2]);
    assert_eq!(check("mod wire {\n}\nfn after() {}\n"), [3]);
}
