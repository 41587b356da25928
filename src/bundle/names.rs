//! Stored names (spec §7): which path components are safe on Windows, macOS and Linux, how an
//! original name becomes a safe one, and how siblings are kept apart under case folding and
//! Unicode normalization.
//!
//! The mapping depends only on the *set* of names in a folder, never on arrival order, so a
//! staged export that fetches objects concurrently still produces the same bytes.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use unicode_normalization::UnicodeNormalization;

/// The longest name part (before the hash suffix and extension) a writer keeps, in bytes.
pub const MAX_STEM_BYTES: usize = 100;
/// The longest stored component a reader accepts, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

const DEVICE_NAMES: [&str; 6] = ["CON", "PRN", "AUX", "NUL", "COM", "LPT"];

/// True for characters that may not appear in a stored name (§7.1).
fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' | '%'
        )
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// True when the part of `name` before its first `.` is a Windows device name.
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("");
    let upper = stem.to_uppercase();
    if DEVICE_NAMES[..4].contains(&upper.as_str()) {
        return true;
    }
    let mut chars = upper.chars();
    let head: String = chars.by_ref().take(3).collect();
    let rest: String = chars.collect();
    (head == "COM" || head == "LPT")
        && matches!(
            rest.as_str(),
            "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
        )
}

/// Checks one stored path component against §7.1; returns what is wrong, if anything.
pub fn check_component(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("empty, `.` or `..` component");
    }
    if name.len() > MAX_COMPONENT_BYTES {
        return Err("component longer than 255 bytes");
    }
    if name.chars().any(is_forbidden_char) {
        return Err("forbidden character");
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err("ends with `.` or space");
    }
    if is_device_name(name) {
        return Err("Windows device name");
    }
    if name.nfc().ne(name.chars()) {
        return Err("not in Unicode NFC");
    }
    Ok(())
}

/// The key two names share when a case-insensitive or normalization-insensitive file system
/// would treat them as one (§7.2 step 4): NFC of the full Unicode case folding (CaseFolding.txt
/// status C and F, as Python's `str.casefold()`) of the NFD form — Unicode's canonical caseless
/// match. Full folding, not lowercasing: `ΟΔΟΣ`/`οδος` (final sigma) and `STRASSE`/`straße`
/// must meet. The writer's sibling mapping and the reader's E104 check both use this one key.
pub fn fold_key(name: &str) -> String {
    // NFD first: folding a precomposed character is not always the precomposed fold (U+0345).
    let nfd: String = name.nfd().collect();
    unicase::UniCase::unicode(nfd.as_str())
        .to_folded_case()
        .nfc()
        .collect()
}

/// Step 1 of §7.2: the original component with unsafe characters replaced and cut to length.
pub fn clean(original: &str) -> String {
    if original == "." {
        return "_".into();
    }
    if original == ".." {
        return "__".into();
    }
    let nfc: String = original.nfc().collect();
    let mut out: String = nfc
        .chars()
        .map(|c| if is_forbidden_char(c) { '_' } else { c })
        .collect();
    if out.len() > MAX_STEM_BYTES {
        let mut cut = MAX_STEM_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if out.ends_with('.') || out.ends_with(' ') {
        out.pop();
        out.push('_');
    }
    if is_device_name(&out) {
        match out.find('.') {
            Some(i) => out.insert(i, '_'),
            None => out.push('_'),
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The first `n` hex digits of SHA-256 of `s`.
fn short_hash(s: &str, n: usize) -> String {
    let mut h = hex::encode(Sha256::digest(s.as_bytes()));
    h.truncate(n);
    h
}

/// One child of a payload folder, as §7.2 sorts them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Child {
    /// The original component, byte for byte.
    pub original: String,
    /// The extension the writer adds (without the dot), if any.
    pub ext: Option<String>,
    /// True for a folder.
    pub dir: bool,
}

/// Splits a trailing extension (`.csv`: 1–10 ASCII letters or digits after a `.` that is not
/// the first character) off a name, so that suffixes keep the extension last.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i)
            if i > 0
                && (2..=11).contains(&(name.len() - i))
                && name[i + 1..].bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            (&name[..i], &name[i..])
        }
        _ => (name, ""),
    }
}

/// Assigns stored names to the children of one folder (§7.2), keyed by [`Child`].
pub fn assign_siblings(children: &[Child]) -> Result<BTreeMap<Child, String>, String> {
    let mut sorted: Vec<&Child> = children.iter().collect();
    sorted.sort();
    sorted.dedup();
    let names = assign_sorted_siblings(sorted.iter().copied())?;
    Ok(sorted.into_iter().cloned().zip(names).collect())
}

/// [`assign_siblings`] for children given in ascending order without repeats (a folder's
/// `BTreeMap` keys), returning their names in that order: no copy of the children is made.
/// O(k) `HashSet` look-ups for k children (a suffix is tried at most five times).
pub(crate) fn assign_sorted_siblings<'a>(
    sorted: impl Iterator<Item = &'a Child>,
) -> Result<Vec<String>, String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for child in sorted {
        let cleaned = clean(&child.original);
        let changed = cleaned != child.original;
        // Without a writer-added extension, a suffix goes before the name's own extension.
        let (base, own_ext) = if child.ext.is_none() && !child.dir {
            split_ext(&cleaned)
        } else {
            (cleaned.as_str(), "")
        };
        let compose = |suffix: Option<String>| {
            let mut n = base.to_string();
            if let Some(s) = suffix {
                n.push('-');
                n.push_str(&s);
            }
            n.push_str(own_ext);
            if let Some(e) = &child.ext {
                n.push('.');
                n.push_str(e);
            }
            n
        };
        let h8 = short_hash(&child.original, 8);
        let mut name = compose(changed.then(|| h8.clone()));
        let mut tries = [8usize, 16, 32, 64].into_iter();
        while taken.contains(&fold_key(&name)) {
            let Some(n) = tries.next() else {
                return Err(format!(
                    "cannot find a free stored name for {:?}",
                    child.original
                ));
            };
            let h = short_hash(&child.original, n);
            name = compose(Some(if changed { format!("{h8}-{h}") } else { h }));
        }
        taken.insert(fold_key(&name));
        out.push(name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(o: &str, ext: Option<&str>) -> Child {
        Child {
            original: o.into(),
            ext: ext.map(str::to_string),
            dir: false,
        }
    }

    #[test]
    fn safe_names_stay() {
        for n in [
            "Report",
            "My Notebook",
            "données",
            "a.b",
            "x-1_2",
            "Ünïcødé",
        ] {
            assert_eq!(check_component(n), Ok(()), "{n}");
            assert_eq!(clean(n), n);
        }
    }

    #[test]
    fn unsafe_names_are_rejected_and_cleaned() {
        for n in [
            "a:b",
            "a?b",
            "a%b",
            "a\\b",
            "con",
            "CON.txt",
            "lpt1",
            "com¹",
            "x.",
            "x ",
            ".",
            "..",
            "",
            "a\nb",
            "a\u{202E}b",
            "e\u{301}",
        ] {
            assert!(check_component(n).is_err(), "{n:?} should be unsafe");
            let c = clean(n);
            assert_eq!(check_component(&c), Ok(()), "{n:?} cleaned to {c:?}");
        }
        let long = "x".repeat(300);
        assert_eq!(clean(&long).len(), MAX_STEM_BYTES);
        let long_multi = "é".repeat(80);
        assert!(clean(&long_multi).len() <= MAX_STEM_BYTES);
    }

    #[test]
    fn case_and_normalization_collisions_get_suffixes() {
        let kids = vec![
            child("Report", Some("py")),
            child("report", Some("py")),
            child("caf\u{e9}", None),
            child("cafe\u{301}", None),
            child("a:b", None),
            child("a?b", None),
        ];
        let names = assign_siblings(&kids).unwrap();
        assert_eq!(names[&kids[0]], "Report.py");
        let con = assign_siblings(&[child("CON.csv", None)]).unwrap();
        let n = con.values().next().unwrap();
        assert!(n.starts_with("CON_-") && n.ends_with(".csv"), "{n}");
        assert!(names[&kids[1]].starts_with("report-") && names[&kids[1]].ends_with(".py"));
        let folded: HashSet<String> = names.values().map(|n| fold_key(n)).collect();
        assert_eq!(folded.len(), kids.len(), "{names:?}");
        for n in names.values() {
            assert_eq!(check_component(n), Ok(()), "{n}");
        }
    }

    /// Full case folding, not lowercasing: final sigma, sharp s and ligatures meet their
    /// folded forms, in the key and therefore in the writer's mapping.
    #[test]
    fn fold_key_is_full_case_folding() {
        for (a, b) in [
            ("ΟΔΟΣ", "οδοσ"),
            ("ΟΔΟΣ", "οδος"),
            ("Straße", "STRASSE"),
            ("ﬁle", "FILE"),
            ("cafe\u{301}", "CAFÉ"),
            ("\u{1F80}", "\u{1F08}\u{345}"),
        ] {
            assert_eq!(fold_key(a), fold_key(b), "{a:?} / {b:?}");
        }
        assert_ne!(fold_key("strasse"), fold_key("strase"));
        for (x, y) in [("ΟΔΟΣ", "οδοσ"), ("Straße", "STRASSE")] {
            let kids = vec![child(x, Some("py")), child(y, Some("py"))];
            let names = assign_siblings(&kids).unwrap();
            assert_ne!(
                fold_key(&names[&kids[0]]),
                fold_key(&names[&kids[1]]),
                "{names:?}"
            );
            // The first in byte order keeps its name; the other gets a suffix.
            let mut sorted = [x, y];
            sorted.sort();
            let second = if sorted[0] == x { &kids[1] } else { &kids[0] };
            assert!(names[second].contains('-'), "{names:?}");
        }
    }

    /// The reader's E104 check uses the same key: names that differ only by final sigma or
    /// sharp s collide.
    #[test]
    fn reader_finds_full_case_folding_collisions() {
        use crate::bundle::container::{read_index, ZipWriter};
        for (a, b) in [("ΟΔΟΣ", "οδοσ"), ("STRASSE", "Straße")] {
            let mut w = ZipWriter::new(Vec::new());
            w.add_dir("bag/").unwrap();
            w.add_dir("bag/data/").unwrap();
            w.add_bytes(&format!("bag/data/{a}"), b"1").unwrap();
            w.add_bytes(&format!("bag/data/{b}"), b"2").unwrap();
            let zip = w.finish().unwrap();
            let index = read_index(&mut std::io::Cursor::new(zip)).unwrap();
            let e104: Vec<_> = index
                .problems
                .iter()
                .filter(|p| p.code() == crate::bundle::ErrorCode::NameCollision)
                .collect();
            assert_eq!(e104.len(), 1, "{a}/{b}: {:?}", index.problems);
            assert!(e104[0].subject().contains(b), "{:?}", e104[0]);
        }
    }

    #[test]
    fn order_does_not_matter() {
        let mut kids = vec![child("b", None), child("B", None), child("a", Some("py"))];
        let one = assign_siblings(&kids).unwrap();
        kids.reverse();
        assert_eq!(assign_siblings(&kids).unwrap(), one);
    }
}
