//! Long scenarios as tables of named steps. When steps share a setup too slow to repeat per
//! test (MLflow servers take seconds each to start on two cores), they run in order inside one
//! test — but a failing step no longer hides the ones after it: each step runs unless a step it
//! `needs` failed or was skipped, and the test fails at the end naming every failed step (with
//! its message) and every skipped one (with the step that stopped it).
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// One step of a scenario over the shared state `W`.
pub struct Step<W> {
    /// Its name, as reports give it.
    pub name: &'static str,
    /// Earlier steps whose outcome it builds on: when one of them did not pass, this one is
    /// skipped rather than run on a state it does not expect.
    pub needs: &'static [&'static str],
    /// The step; it fails by panicking, like any test.
    pub run: fn(&mut W),
}

/// What became of each step.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and passed.
    Passed,
    /// It panicked with this message.
    Failed(String),
    /// It did not run: the step it needed, named here, did not pass.
    Skipped(&'static str),
}

/// Runs `steps` in order on `world` and returns each one's outcome, without failing.
pub fn outcomes<W>(
    scenario: &str,
    world: &mut W,
    steps: &[Step<W>],
) -> Vec<(&'static str, Outcome)> {
    let mut done: Vec<(&'static str, Outcome)> = Vec::new();
    for s in steps {
        let blocked = s
            .needs
            .iter()
            .find_map(|n| match done.iter().find(|(d, _)| d == n) {
                Some((_, Outcome::Passed)) => None,
                Some(_) => Some(*n),
                None => panic!(
                    "{scenario}: step {:?} needs {n:?}, which is not an earlier step",
                    s.name
                ),
            });
        if let Some(n) = blocked {
            eprintln!("[{scenario}] {}: skipped, {n} did not pass", s.name);
            done.push((s.name, Outcome::Skipped(n)));
            continue;
        }
        let t = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| (s.run)(world)));
        let secs = t.elapsed().as_secs_f64();
        let outcome = match r {
            Ok(()) => Outcome::Passed,
            Err(p) => Outcome::Failed(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        };
        let word = if outcome == Outcome::Passed {
            "passed"
        } else {
            "FAILED"
        };
        eprintln!("[{scenario}] {}: {word} in {secs:.1} s", s.name);
        done.push((s.name, outcome));
    }
    done
}

/// Runs `steps` in order on `world`; fails naming every step that failed or was skipped.
pub fn run<W>(scenario: &str, world: &mut W, steps: &[Step<W>]) {
    let done = outcomes(scenario, world, steps);
    let bad: Vec<String> = done
        .iter()
        .filter_map(|(name, o)| match o {
            Outcome::Passed => None,
            Outcome::Failed(m) => Some(format!("- {name}: FAILED\n{m}")),
            Outcome::Skipped(n) => Some(format!("- {name}: skipped ({n} did not pass)")),
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{scenario}: {} of {} steps did not pass\n{}",
        bad.len(),
        done.len(),
        bad.join("\n")
    );
}

#[test]
fn a_failing_step_does_not_hide_the_rest_and_its_dependents_are_skipped() {
    let steps: [Step<Vec<&'static str>>; 4] = [
        Step {
            name: "a",
            needs: &[],
            run: |w| w.push("a"),
        },
        Step {
            name: "b",
            needs: &["a"],
            run: |_| panic!("b broke"),
        },
        Step {
            name: "c",
            needs: &["b"],
            run: |w| w.push("c"),
        },
        Step {
            name: "d",
            needs: &["a"],
            run: |w| w.push("d"),
        },
    ];
    let mut ran = Vec::new();
    let done = outcomes("self-test", &mut ran, &steps);
    assert_eq!(ran, ["a", "d"]);
    assert_eq!(
        done,
        [
            ("a", Outcome::Passed),
            ("b", Outcome::Failed("b broke".into())),
            ("c", Outcome::Skipped("b")),
            ("d", Outcome::Passed),
        ]
    );
    let all = catch_unwind(AssertUnwindSafe(|| {
        run("self-test", &mut Vec::new(), &steps)
    }));
    let msg = all.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("2 of 4 steps did not pass"), "{msg}");
    assert!(
        msg.contains("- b: FAILED\nb broke") && msg.contains("- c: skipped (b did not pass)"),
        "{msg}"
    );
}
