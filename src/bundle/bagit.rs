//! The BagIt layer (spec §4): `bagit.txt`, `bag-info.txt`, the payload manifest and the tag
//! manifest — their exact bytes when written and their grammar when read.

use super::error::{BundleError, ErrorCode, Result};
use super::inventory::{is_sha256_hex, Inventory};
use std::collections::BTreeMap;

/// `bagit.txt`, exactly as written (§4.1).
pub const BAGIT_TXT: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
/// The declaration file's name.
pub const BAGIT_FILE: &str = "bagit.txt";
/// The bag metadata file's name.
pub const BAG_INFO_FILE: &str = "bag-info.txt";
/// The payload manifest's name.
pub const MANIFEST_FILE: &str = "manifest-sha256.txt";
/// The tag manifest's name.
pub const TAG_MANIFEST_FILE: &str = "tagmanifest-sha256.txt";
/// The human overview's name.
pub const OVERVIEW_FILE: &str = "INVENTORY.md";
/// Tag files every bag has, besides the tag manifest.
pub const REQUIRED_TAG_FILES: [&str; 5] = [
    BAGIT_FILE,
    BAG_INFO_FILE,
    super::inventory::INVENTORY_FILE,
    OVERVIEW_FILE,
    MANIFEST_FILE,
];

/// The bag-info label carrying the format version.
pub const LABEL_FORMAT_VERSION: &str = "Dbxport-Format-Version";

/// True when `name` may be used for an extra tag file (§4.5).
pub fn is_extra_tag_name(name: &str) -> bool {
    let ok_chars = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    ok_chars
        && !REQUIRED_TAG_FILES.contains(&name)
        && name != TAG_MANIFEST_FILE
        && name != "fetch.txt"
        && name != "data"
        && !name.starts_with("manifest-")
        && !name.starts_with("tagmanifest-")
        && super::names::check_component(name).is_ok()
}

/// True when `name` is a valid bag folder name (§3.2).
pub fn is_bag_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && super::names::check_component(name).is_ok()
}

/// `bag-info.txt` for an inventory and its payload totals (§4.2).
pub fn bag_info(inv: &Inventory, payload_octets: u64, payload_files: u64) -> String {
    let date = inv.created.get(..10).unwrap_or("");
    let mut s = String::new();
    s.push_str(&format!(
        "Bag-Software-Agent: {} {}\n",
        inv.tool.name, inv.tool.version
    ));
    s.push_str(&format!("Bagging-Date: {date}\n"));
    s.push_str(&format!("External-Identifier: {}\n", inv.bundle_id));
    s.push_str(&format!(
        "External-Description: Databricks workspace {} at {}\n",
        one_line(&inv.source.workspace_id),
        one_line(&inv.source.host)
    ));
    s.push_str(&format!("Payload-Oxum: {payload_octets}.{payload_files}\n"));
    s.push_str(&format!("{LABEL_FORMAT_VERSION}: {}\n", inv.format_version));
    s
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Checks `bagit.txt` (§4.1).
pub fn check_bagit_txt(bytes: &[u8]) -> Result<()> {
    let bad = |d: &str| BundleError::new(ErrorCode::BagitDeclaration, BAGIT_FILE, d);
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(bad("starts with a byte-order mark"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    if lines != ["BagIt-Version: 1.0", "Tag-File-Character-Encoding: UTF-8"] {
        return Err(bad(
            "must declare exactly `BagIt-Version: 1.0` and `Tag-File-Character-Encoding: UTF-8`",
        ));
    }
    Ok(())
}

/// Parsed `bag-info.txt`: labels in order, continuation lines joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BagInfo {
    /// `(label, value)` pairs in file order.
    pub entries: Vec<(String, String)>,
}

impl BagInfo {
    /// Parses `bag-info.txt` (E201 on failure).
    pub fn parse(bytes: &[u8]) -> Result<BagInfo> {
        let bad = |d: String| BundleError::new(ErrorCode::BagInfo, BAG_INFO_FILE, d);
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let mut entries: Vec<(String, String)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                let Some(last) = entries.last_mut() else {
                    return Err(bad(format!("line {}: continuation without a label", n + 1)));
                };
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let Some((label, value)) = line.split_once(':') else {
                return Err(bad(format!("line {}: not `Label: value`", n + 1)));
            };
            entries.push((label.trim().to_string(), value.trim().to_string()));
        }
        let info = BagInfo { entries };
        for label in ["Payload-Oxum", "External-Identifier", LABEL_FORMAT_VERSION] {
            match info.all(label).len() {
                1 => {}
                0 => return Err(bad(format!("`{label}` is missing"))),
                _ => return Err(bad(format!("`{label}` appears more than once"))),
            }
        }
        info.oxum()?;
        Ok(info)
    }

    /// Every value of `label`.
    pub fn all(&self, label: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(l, _)| l.eq_ignore_ascii_case(label))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `label`.
    pub fn get(&self, label: &str) -> Option<&str> {
        self.all(label).into_iter().next()
    }

    /// `Payload-Oxum` as `(octets, files)`.
    pub fn oxum(&self) -> Result<(u64, u64)> {
        let v = self.get("Payload-Oxum").unwrap_or("");
        let parsed = v
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        parsed.ok_or_else(|| {
            BundleError::new(
                ErrorCode::BagInfo,
                BAG_INFO_FILE,
                format!("Payload-Oxum {v:?} is not `<octets>.<files>`"),
            )
        })
    }
}

/// Formats a manifest (§4.3): `<hex>  <path>` lines sorted by path bytes.
pub fn format_manifest<'a>(lines: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut v: Vec<(&str, &str)> = lines.into_iter().collect();
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::new();
    write_manifest(&mut out, v).expect("writing into memory does not fail");
    String::from_utf8(out).expect("paths and digests are UTF-8")
}

/// Writes the lines of a manifest given already sorted by path bytes (§4.3) as they come:
/// a writer streams the payload manifest of a large bundle instead of holding it.
pub fn write_manifest<'a, W: std::io::Write>(
    mut w: W,
    sorted: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> std::io::Result<()> {
    for (path, hex) in sorted {
        w.write_all(hex.as_bytes())?;
        w.write_all(b"  ")?;
        w.write_all(path.as_bytes())?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Parses a manifest into `path → hex`. `code` is E203 for the payload manifest or E207 for
/// the tag manifest; `payload` says whether paths must be below `data/`.
pub fn parse_manifest(
    bytes: &[u8],
    file: &str,
    code: ErrorCode,
    payload: bool,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut lines = ManifestLines::new(file, code, payload);
    for raw in bytes.split(|b| *b == b'\n') {
        lines.line(raw, &mut |path, digest| {
            out.insert(path.to_string(), hex::encode(digest)).is_none()
        });
    }
    lines.finish().map(|_| out)
}

/// A manifest checked line by line as it streams ([`parse_manifest`]'s grammar and errors,
/// without holding the file or a map of it: the reader keeps each digest as 32 bytes beside
/// the zip entry it names, issue #15). The outcome is the same as parsing the whole text: a
/// file that is not UTF-8 anywhere is refused as such, else the first bad line is.
pub struct ManifestLines<'a> {
    file: &'a str,
    code: ErrorCode,
    payload: bool,
    line: usize,
    not_utf8: bool,
    first_error: Option<BundleError>,
}

impl<'a> ManifestLines<'a> {
    /// A parser for `file`; `code` and `payload` as for [`parse_manifest`].
    pub fn new(file: &'a str, code: ErrorCode, payload: bool) -> Self {
        ManifestLines {
            file,
            code,
            payload,
            line: 0,
            not_utf8: false,
            first_error: None,
        }
    }

    /// Takes the next line (without its `\n`). `add(path, digest)` receives each listed file
    /// until the first error, and returns false when `path` was listed before.
    pub fn line(&mut self, raw: &[u8], add: &mut dyn FnMut(&str, [u8; 32]) -> bool) {
        self.line += 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            self.not_utf8 = true;
            return;
        };
        if self.first_error.is_some() || self.not_utf8 {
            return;
        }
        if let Err(e) = self.parse(text, add) {
            self.first_error = Some(e);
        }
    }

    fn parse(&self, raw: &str, add: &mut dyn FnMut(&str, [u8; 32]) -> bool) -> Result<()> {
        let n = self.line;
        let bad = |d: String| BundleError::new(self.code, self.file, d);
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            return Ok(());
        }
        let Some((hex, rest)) = line.split_once(char::is_whitespace) else {
            return Err(bad(format!("line {n}: not `<sha256>  <path>`")));
        };
        let path = rest.trim_start_matches([' ', '\t']);
        let hex = hex.to_ascii_lowercase();
        if !is_sha256_hex(&hex) {
            return Err(bad(format!("line {n}: {hex:?} is not a SHA-256")));
        }
        if path.contains('%') {
            return Err(bad(format!(
                "line {n}: path {path:?} holds `%` (percent-encoding is not used in dbxport bags)"
            )));
        }
        let inside = if self.payload {
            path.starts_with("data/") && path.len() > 5
        } else {
            !path.is_empty() && !path.contains('/')
        };
        let enclosed = !path.starts_with('/')
            && !path.contains('\\')
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !inside || !enclosed {
            return Err(bad(format!(
                "line {n}: path {path:?} is not {}",
                if self.payload {
                    "a file below data/"
                } else {
                    "a tag file in the bag folder"
                }
            )));
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&hex, &mut digest)
            .map_err(|_| bad(format!("line {n}: {hex:?} is not a SHA-256")))?;
        if !add(path, digest) {
            return Err(bad(format!("line {n}: {path:?} is listed twice")));
        }
        Ok(())
    }

    /// The outcome once every line was given.
    pub fn finish(self) -> Result<()> {
        if self.not_utf8 {
            return Err(BundleError::new(self.code, self.file, "not UTF-8"));
        }
        self.first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip() {
        let h = "ab".repeat(32);
        let m = format_manifest([("data/b.txt", h.as_str()), ("data/a b.txt", h.as_str())]);
        assert_eq!(m, format!("{h}  data/a b.txt\n{h}  data/b.txt\n"));
        let p = parse_manifest(m.as_bytes(), MANIFEST_FILE, ErrorCode::Manifest, true).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p["data/a b.txt"], h);
    }

    #[test]
    fn manifest_rejects() {
        let h = "ab".repeat(32);
        for bad in [
            format!("{h}  ../x\n"),
            format!("{h}  data/../../x\n"),
            format!("{h}  /data/x\n"),
            format!("{h}  data/a%20b\n"),
            format!("{h}  data/x\n{h}  data/x\n"),
            "xyz  data/x\n".to_string(),
        ] {
            let e = parse_manifest(bad.as_bytes(), MANIFEST_FILE, ErrorCode::Manifest, true)
                .unwrap_err();
            assert_eq!(e.code(), ErrorCode::Manifest, "{bad}");
        }
    }

    #[test]
    fn bagit_and_info() {
        check_bagit_txt(BAGIT_TXT.as_bytes()).unwrap();
        check_bagit_txt(b"BagIt-Version: 1.0\r\nTag-File-Character-Encoding: UTF-8\r\n").unwrap();
        assert!(
            check_bagit_txt(b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n").is_err()
        );
        let info = BagInfo::parse(
            b"Payload-Oxum: 10.2\nExternal-Identifier: x\n  y\nDbxport-Format-Version: 1.0.0\n",
        )
        .unwrap();
        assert_eq!(info.oxum().unwrap(), (10, 2));
        assert_eq!(info.get("External-Identifier"), Some("x y"));
        assert!(BagInfo::parse(b"External-Identifier: x\n").is_err());
    }

    #[test]
    fn tag_names() {
        assert!(is_extra_tag_name("export-report.json"));
        for n in [
            "bagit.txt",
            "manifest-md5.txt",
            "fetch.txt",
            "data",
            ".hidden",
            "a/b",
            "con.txt",
        ] {
            assert!(!is_extra_tag_name(n), "{n}");
        }
        assert!(is_bag_name("dbxport-123-20260101T000000Z"));
        assert!(!is_bag_name("../x"));
    }

    #[test]
    fn manifest_lines_give_the_whole_files_outcome() {
        let h = "ab".repeat(32);
        let parse = |m: &[u8]| {
            let mut got = Vec::new();
            let mut lines = ManifestLines::new(MANIFEST_FILE, ErrorCode::Manifest, true);
            for raw in m.split(|b| *b == b'\n') {
                lines.line(raw, &mut |p, d| {
                    got.push((p.to_string(), d));
                    true
                });
            }
            lines.finish().map(|_| got)
        };
        let ok = parse(format!("{h}  data/a\r\n\n{}  data/b\n", h.to_uppercase()).as_bytes());
        let ok = ok.unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1], ("data/b".to_string(), [0xab; 32]));
        // A bad line, then bytes that are not UTF-8: the file is refused as not UTF-8, as a
        // parse of the whole text refuses it.
        let mut m = format!("{h}  data/a\nnonsense\n").into_bytes();
        m.extend_from_slice(b"\xff  data/c\n");
        assert_eq!(parse(&m).unwrap_err().detail(), "not UTF-8");
        let e = parse(format!("{h}  data/a\nnonsense\n{h}  data/a\n").as_bytes()).unwrap_err();
        assert_eq!(e.detail(), "line 2: not `<sha256>  <path>`");
        let e = parse_manifest(
            format!("{h}  data/a\n{h}  data/a\n").as_bytes(),
            MANIFEST_FILE,
            ErrorCode::Manifest,
            true,
        )
        .unwrap_err();
        assert_eq!(e.detail(), "line 2: \"data/a\" is listed twice");
    }
}
