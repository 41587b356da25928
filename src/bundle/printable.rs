//! Text from a bundle, made safe to print for people.
//!
//! Names, notes and paths inside a bundle are chosen by whoever wrote it. Printed raw, an ESC
//! or OSC sequence could recolour the terminal, retitle the window or rewrite the line above
//! (a CR and a fake "bundle OK"), and a bidi override could show a name reversed. Every
//! human-readable line that carries bundle-derived text goes through [`printable`]; `--json`
//! output does not need it (JSON escapes control characters itself).

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character that must not reach a terminal raw: C0 controls (including TAB, LF and
/// CR), DEL, C1 controls, and the Unicode bidi controls and overrides.
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every character of [`is_unsafe_for_terminal`] written as a visible escape
/// (`\x1b`, `\r`, `\u{202e}`); other text, including backslashes, is unchanged.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_for_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe_for_terminal(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// [`printable`] for a message of several lines that dbxport composed (an error and its
/// `hint:` lines): each line is escaped, the line breaks between them are kept. A CR, an ESC or
/// any other control character inside a line is still escaped.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe_for_terminal(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(printable).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_only() {
        assert!(matches!(printable("data/a b/ü.py"), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}]0;x\u{7}b"), "a\\x1b]0;x\\x07b");
        assert_eq!(printable("x\rbundle OK\n"), "x\\rbundle OK\\n");
        assert_eq!(printable("\u{7f}\u{9b}31m"), "\\x7f\\u{9b}31m");
        assert_eq!(printable("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(printable("C:\\x"), "C:\\x");
    }

    #[test]
    fn lines_keep_their_breaks_and_nothing_else() {
        assert!(matches!(printable_lines("a\nhint: b"), Cow::Borrowed(_)));
        assert_eq!(
            printable_lines("job \u{1b}[2Jx: failed\rOK\nhint: retry"),
            "job \\x1b[2Jx: failed\\rOK\nhint: retry"
        );
    }
}
