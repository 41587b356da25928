//! A small INI reader for `~/.databrickscfg`, following what Python's `configparser` (used by
//! the Databricks SDK) accepts: `[section]` headers, `key = value` or `key: value`, keys
//! lower-cased, values trimmed, whole-line `#`/`;` comments, indented continuation lines.
//! An inline ` #` or ` ;` comment is dropped as well (the Go SDK's reader does so, and real
//! files are written that way). A later duplicate key overrides an earlier one.

use std::collections::BTreeMap;

/// One parsed file: sections in file order, each a key → value map.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ini {
    /// `(section name, keys)` in the order sections first appear.
    pub sections: Vec<(String, BTreeMap<String, String>)>,
}

/// A syntax error, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    /// Line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn strip_inline_comment(v: &str) -> &str {
    let bytes = v.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && bytes[i - 1].is_ascii_whitespace() {
            return &v[..i];
        }
    }
    v
}

impl Ini {
    /// Parses INI text.
    pub fn parse(text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        let mut current: Option<usize> = None;
        let mut last_key: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                if trimmed.is_empty() {
                    last_key = None;
                }
                continue;
            }
            let indented = raw.starts_with(' ') || raw.starts_with('\t');
            if indented {
                if let (Some(idx), Some(k)) = (current, last_key.as_ref()) {
                    // A continuation line extends the previous value.
                    let map = &mut ini.sections[idx].1;
                    if let Some(v) = map.get_mut(k) {
                        if !v.is_empty() {
                            v.push('\n');
                        }
                        v.push_str(strip_inline_comment(trimmed).trim());
                        continue;
                    }
                }
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let name = rest.strip_suffix(']').ok_or_else(|| IniError {
                    line: line_no,
                    message: "section header without a closing `]`".into(),
                })?;
                let name = name.trim().to_string();
                current = Some(match ini.sections.iter().position(|(s, _)| *s == name) {
                    Some(i) => i,
                    None => {
                        ini.sections.push((name, BTreeMap::new()));
                        ini.sections.len() - 1
                    }
                });
                last_key = None;
                continue;
            }
            let idx = current.ok_or_else(|| IniError {
                line: line_no,
                message: "key outside any [section]".into(),
            })?;
            let split = trimmed.find(['=', ':']).ok_or_else(|| IniError {
                line: line_no,
                message: "expected `key = value`".into(),
            })?;
            let key = trimmed[..split].trim().to_ascii_lowercase();
            if key.is_empty() {
                return Err(IniError {
                    line: line_no,
                    message: "empty key".into(),
                });
            }
            let value = strip_inline_comment(trimmed[split + 1..].trim())
                .trim()
                .to_string();
            ini.sections[idx].1.insert(key.clone(), value);
            last_key = Some(key);
        }
        Ok(ini)
    }

    /// The keys of a section, if it exists.
    pub fn section(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.sections
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, m)| m)
    }

    /// Section names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(s, _)| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_databrickscfg() {
        let ini = Ini::parse(
            "; top comment\n[__settings__]\ndefault_profile = prod   # inline\n\n[DEFAULT]\nHost = https://a\ntoken: dapi#1\n[prod]\nhost=https://b\nscopes = a\n  b\n",
        )
        .unwrap();
        assert_eq!(
            ini.section("__settings__").unwrap()["default_profile"],
            "prod"
        );
        assert_eq!(ini.section("DEFAULT").unwrap()["host"], "https://a");
        // `#` not preceded by whitespace is part of the value.
        assert_eq!(ini.section("DEFAULT").unwrap()["token"], "dapi#1");
        assert_eq!(ini.section("prod").unwrap()["scopes"], "a\nb");
        assert_eq!(
            ini.names().collect::<Vec<_>>(),
            vec!["__settings__", "DEFAULT", "prod"]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(Ini::parse("host = x").unwrap_err().line, 1);
        assert_eq!(Ini::parse("[a]\n[b\n").unwrap_err().line, 2);
        assert_eq!(Ini::parse("[a]\nnovalue\n").unwrap_err().line, 2);
    }
}
