//! The live progress area: the one place where commands draw progress on a terminal.
//!
//! On a terminal a command gets one indicatif area at the bottom of stderr holding at most one
//! line per kind still under way (at most [`MAX_KIND_LINES`]), a total line, and a byte bar for
//! transfers. Status lines (`dbxport: secrets`, warnings) go through [`Live::status`], which
//! prints them once above the area: printed beside indicatif's redraws they left copies of the
//! bars behind. A kind whose objects are all done leaves the area and is counted in the total's
//! `kinds done`; more objects of it found later bring its line back. [`Live::finish`] clears the
//! area, so that only the command's own summary stays on screen.
//!
//! Off a terminal (stderr piped, `--json`, `-v`) nothing is drawn: status lines are printed as
//! plain lines and everything else is ignored.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The most kind lines drawn at once; kinds beyond it are counted in the total line until a
/// line frees up, so the area stays well within a small terminal.
pub const MAX_KIND_LINES: usize = 8;

/// A command's progress display: drawn on a terminal, plain status lines otherwise.
pub struct Live {
    area: Option<Area>,
}

/// What is drawn on a terminal.
struct Area {
    multi: MultiProgress,
    lines: Mutex<Lines>,
}

#[derive(Default)]
struct Lines {
    /// Created by the first count, so a command that only moves bytes shows no empty total.
    total: Option<ProgressBar>,
    /// The total's message as the command last gave it.
    message: String,
    kinds: BTreeMap<String, KindLine>,
    /// Byte bars, cleared with the rest.
    bytes: Vec<ProgressBar>,
}

#[derive(Default)]
struct KindLine {
    done: u64,
    total: u64,
    failed: u64,
    bar: Option<ProgressBar>,
}

impl KindLine {
    fn finished(&self) -> bool {
        self.total > 0 && self.done >= self.total
    }
}

impl Live {
    /// A display that draws when `terminal` is true (the caller decides: stderr is a terminal,
    /// and neither `--json` nor `-v` asked for other output).
    pub fn new(terminal: bool) -> Live {
        Live {
            area: terminal.then(|| Area {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                lines: Mutex::new(Lines::default()),
            }),
        }
    }

    /// True when progress is drawn.
    pub fn drawn(&self) -> bool {
        self.area.is_some()
    }

    /// Prints one status line on stderr: above the area on a terminal, plainly otherwise.
    pub fn status(&self, line: &str) {
        match &self.area {
            Some(a) => {
                // Under the lock, so that no line is added or removed while it prints.
                let _l = a.lock();
                if a.multi.println(line).is_err() {
                    eprintln!("{line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }

    /// Sets the counts of one kind (`done` of `total` objects, `failed` of them failed). Its
    /// line appears while it is under way and leaves the area once `done` reaches `total`.
    pub fn kind(&self, name: &str, done: u64, total: u64, failed: u64) {
        let Some(a) = &self.area else { return };
        let mut l = a.lock();
        let line = l.kinds.entry(name.to_string()).or_default();
        (line.done, line.total, line.failed) = (done, total, failed);
        if line.finished() {
            // Removed without drawing `n/n` first: a finished kind is only counted.
            if let Some(b) = line.bar.take() {
                a.multi.remove(&b);
            }
        } else if let Some(b) = &line.bar {
            show_counts(b, done, total, failed);
        }
        a.arrange(&mut l);
    }

    /// Sets the total line: `done` of `total` objects, then `message` (bytes, rate).
    pub fn total(&self, done: u64, total: u64, message: &str) {
        let Some(a) = &self.area else { return };
        let mut l = a.lock();
        l.message = message.to_string();
        let bar = a.total_bar(&mut l);
        bar.set_length(total);
        bar.set_position(done);
        a.arrange(&mut l);
    }

    /// A bar counting bytes (`VERB 1.2 MiB/4 MiB`) in the area, or a hidden one off a terminal.
    /// The caller sets its length and position; [`Live::finish`] clears it.
    pub fn bytes(&self, verb: &str) -> ProgressBar {
        let Some(a) = &self.area else {
            return ProgressBar::hidden();
        };
        let mut l = a.lock();
        let bar =
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden()).with_style(style(
                &format!("{verb} {{bytes}}/{{total_bytes}} {{wide_bar}} {{bytes_per_sec}} {{eta}}"),
            ));
        let bar = a.multi.add(bar);
        l.bytes.push(bar.clone());
        bar
    }

    /// Clears the area; what is printed next is the command's summary.
    pub fn finish(&self) {
        let Some(a) = &self.area else { return };
        let mut l = a.lock();
        for line in l.kinds.values_mut() {
            if let Some(b) = line.bar.take() {
                a.multi.remove(&b);
            }
        }
        for b in std::mem::take(&mut l.bytes) {
            a.multi.remove(&b);
        }
        if let Some(t) = l.total.take() {
            t.disable_steady_tick();
            a.multi.remove(&t);
        }
        let _ = a.multi.clear();
    }
}

impl Area {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn total_bar(&self, l: &mut Lines) -> ProgressBar {
        if let Some(t) = &l.total {
            return t.clone();
        }
        // Styled before it joins the area: a bar draws on its own target until then.
        let t = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden())
            .with_style(style(
                "{spinner} {prefix:>16} {wide_bar} {pos}/{len} {msg} · ETA {eta}",
            ))
            .with_prefix("total");
        let t = self.multi.add(t);
        t.enable_steady_tick(Duration::from_millis(200));
        l.total = Some(t.clone());
        t
    }

    /// Gives lines to kinds under way (up to [`MAX_KIND_LINES`]) and writes the total's
    /// message with the kinds done and those waiting for a line.
    fn arrange(&self, l: &mut Lines) {
        let total = self.total_bar(l);
        let mut drawn = l.kinds.values().filter(|k| k.bar.is_some()).count();
        let (mut finished, mut waiting) = (0, 0);
        for (name, k) in l.kinds.iter_mut() {
            if k.finished() {
                finished += 1;
            } else if k.bar.is_none() && k.total > 0 {
                if drawn < MAX_KIND_LINES {
                    let b =
                        ProgressBar::with_draw_target(Some(k.total), ProgressDrawTarget::hidden())
                            .with_style(style("  {prefix:>16} {bar:30} {pos}/{len} {msg}"))
                            .with_prefix(name.clone());
                    show_counts(&b, k.done, k.total, k.failed);
                    k.bar = Some(self.multi.insert_before(&total, b));
                    drawn += 1;
                } else {
                    waiting += 1;
                }
            }
        }
        let mut msg = l.message.clone();
        if finished > 0 {
            msg.push_str(&format!(" · {finished} kinds done"));
        }
        if waiting > 0 {
            msg.push_str(&format!(" · {waiting} more under way"));
        }
        total.set_message(msg);
    }
}

fn show_counts(b: &ProgressBar, done: u64, total: u64, failed: u64) {
    b.set_length(total);
    b.set_position(done);
    if failed > 0 {
        b.set_message(format!("({failed} failed)"));
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("the progress templates are valid")
}
