//! What a person sees of a command in a terminal: runs it in a pseudo-terminal (util-linux
//! `script`) and replays the bytes it wrote through a VT100 screen (the `vt100` crate).
#![allow(dead_code)]

use std::num::NonZeroU16;
use std::process::{Command, Stdio};

/// The terminal's width.
pub const COLS: u16 = 120;
/// The terminal's height.
pub const ROWS: u16 = 30;

/// Runs `cmd` (program, arguments and the environment it sets; it should clear the rest) in a
/// `COLS`×`ROWS` pseudo-terminal, and returns its exit code and every byte it wrote there.
pub fn run_in_pty(cmd: &Command) -> (Option<i32>, Vec<u8>) {
    // Single quotes keep every argument as it is; a quote inside one is closed and escaped.
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let mut line = format!(
        "stty cols {COLS} rows {ROWS} && exec {}",
        quote(cmd.get_program())
    );
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut script = Command::new("script");
    // -q: no start and end lines; -f: flush as written; -e: the command's exit code;
    // -c: the command. The typescript file is not needed: the session is copied to stdout.
    script
        .args(["-qfec", &line, "/dev/null"])
        .env_clear()
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            script.env(k, v);
        }
    }
    let out = script.output().expect("util-linux `script` runs");
    (out.status.code(), out.stdout)
}

/// A VT100 screen of `COLS`×`ROWS` that keeps every line scrolled off the top.
fn parser() -> vt100::Parser {
    vt100::Parser::new(
        NonZeroU16::new(ROWS).unwrap(),
        NonZeroU16::new(COLS).unwrap(),
        100_000,
    )
}

/// The rows of the screen now visible, trailing blanks removed.
fn visible(p: &vt100::Parser) -> Vec<String> {
    p.screen()
        .rows(0, COLS)
        .map(|r| r.trim_end().to_string())
        .collect()
}

/// Every line a person can read after `bytes`: the scrollback, then the screen.
pub fn transcript(bytes: &[u8]) -> Vec<String> {
    let mut p = parser();
    p.process(bytes);
    p.screen_mut().set_scrollback(usize::MAX);
    let scrolled = p.screen().scrollback();
    let mut lines = Vec::new();
    // Each step down the scrollback brings one more line to the top row.
    for back in (1..=scrolled).rev() {
        p.screen_mut().set_scrollback(back);
        lines.push(visible(&p).swap_remove(0));
    }
    p.screen_mut().set_scrollback(0);
    lines.extend(visible(&p));
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// The screen as it stood before each redraw of the progress area (each cursor-up sequence,
/// `ESC [ n A`, with which indicatif goes back to the area's top), and at the end.
pub fn screens_between_redraws(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut p = parser();
    let mut screens = Vec::new();
    let mut from = 0;
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == 0x1b && bytes[i + 1] == b'[' {
            let digits = bytes[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 && bytes.get(i + 2 + digits) == Some(&b'A') {
                p.process(&bytes[from..i]);
                screens.push(visible(&p));
                from = i;
            }
        }
        i += 1;
    }
    p.process(&bytes[from..]);
    screens.push(visible(&p));
    screens
}

/// True when `line` draws a progress bar (indicatif's bar glyphs).
pub fn is_bar(line: &str) -> bool {
    line.contains('█') || line.contains('░')
}

/// The name a bar line starts with (`total`, or a kind), past the spinner.
pub fn bar_name(line: &str) -> &str {
    line.split_whitespace()
        .find(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or("")
}

/// The `done/total` counts of a bar line.
pub fn bar_counts(line: &str) -> Option<(u64, u64)> {
    line.split_whitespace().find_map(|w| {
        let (a, b) = w.split_once('/')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    })
}

/// Checks the screen between every two redraws of the progress area: no bar drawn twice (a
/// kind or the total), at most `max_kinds` kind lines, and no kind line of a finished kind
/// (`n/n`: finished kinds fold into the total). Returns how many redraws and bar lines it saw.
pub fn check_live_area(bytes: &[u8], max_kinds: usize) -> (usize, usize) {
    let screens = screens_between_redraws(bytes);
    let mut drawn = 0;
    for screen in &screens {
        let at = || format!("screen during the run:\n{}", screen.join("\n"));
        let bars: Vec<&String> = screen.iter().filter(|l| is_bar(l)).collect();
        drawn += bars.len();
        let mut names: Vec<&str> = bars.iter().map(|l| bar_name(l)).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a bar drawn twice; {}", at());
        assert!(
            n <= max_kinds + 1,
            "more than {max_kinds} kind lines and a total; {}",
            at()
        );
        for b in bars.iter().filter(|l| bar_name(l) != "total") {
            let (done, total) = bar_counts(b).unwrap_or_else(|| panic!("no n/m in {b}"));
            assert!(
                done < total,
                "a finished kind kept its line ({b}); {}",
                at()
            );
        }
    }
    (screens.len(), drawn)
}

/// Panics when `lines` (a [`transcript`]) still hold a bar or a stale `0/N` count.
pub fn assert_no_bar_left(lines: &[String]) {
    let shown = lines.join("\n");
    for l in lines {
        assert!(!is_bar(l), "a bar was left behind: {l:?}\n{shown}");
        assert!(
            !l.contains(" 0/"),
            "a stale 0/N count was left behind: {l:?}\n{shown}"
        );
    }
}
