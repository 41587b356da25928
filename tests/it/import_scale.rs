//! Issue #15: what `plan`, `import`, `diff` and `models import` hold per workspace object.
//! The bundles of `bundle_scale` (a generated workspace: notebooks, one folder per 20, one
//! permissions record per object) are planned, imported into an empty emulator, compared with
//! it (`diff`, the target then holding every object) and their models imported (there are
//! none: what counts is what the command holds for the rest of the bundle), at two sizes, each
//! command a child whose peak RSS is measured; the slope between the sizes — what one more
//! object costs, whatever the fixed overhead of the binary — must stay within the issue's
//! target of 128 MiB + 2 KiB per object.

use crate::bundle_scale::{peak_kib_with, write, write_registry};
use crate::common;

use dbxport::emulator::{Emulator, EmulatorConfig, EmulatorHandle};

/// An empty emulator of its own, and a home folder (no profiles) for the commands run
/// against it.
struct EmptyTarget {
    emu: EmulatorHandle,
    home: std::path::PathBuf,
}

impl EmptyTarget {
    /// Starts the emulator; the home folder is `dir/home-<tag>`.
    fn start(dir: &std::path::Path, tag: &str) -> EmptyTarget {
        let emu = Emulator::start_in_background(
            EmulatorConfig::default().with_seed(common::repo_path("fixtures/workspaces/empty")),
        )
        .expect("the emulator starts");
        let home = dir.join(format!("home-{tag}"));
        std::fs::create_dir_all(&home).unwrap();
        EmptyTarget { emu, home }
    }

    /// The environment of a command run against it.
    fn env(&self) -> [(&str, &std::ffi::OsStr); 3] {
        [
            ("HOME", self.home.as_os_str()),
            ("DATABRICKS_HOST", self.emu.url().as_ref()),
            ("DATABRICKS_TOKEN", self.emu.admin_token().as_ref()),
        ]
    }
}

/// Peak RSS in KiB of `plan`, `import`, `diff` and `models import` of the bundle of `notebooks`
/// notebooks into an empty emulator of its own, and the number of workspace objects.
fn peaks(dir: &std::path::Path, notebooks: usize) -> (usize, [i64; 4]) {
    let (bundle, objects) = write(dir, notebooks);
    let target = EmptyTarget::start(dir, &format!("{notebooks}"));
    let env = target.env();
    let run = |cmd: &str| peak_kib_with(Some(&env), &[cmd.as_ref(), bundle.as_os_str()]);
    let plan = run("plan");
    // With its report written as it goes, as a careful user runs it.
    let report = dir.join(format!("import-{notebooks}.report.jsonl"));
    let import = peak_kib_with(
        Some(&env),
        &[
            "import".as_ref(),
            bundle.as_os_str(),
            "--report".as_ref(),
            report.as_os_str(),
        ],
    );
    let lines = std::fs::read_to_string(&report).unwrap().lines().count();
    assert!(
        lines > objects,
        "{lines} lines in the report of {objects} objects"
    );
    let diff = run("diff");
    let journal = dir.join(format!("models-{notebooks}.journal"));
    let models = peak_kib_with(
        Some(&env),
        &[
            "models".as_ref(),
            "import".as_ref(),
            bundle.as_os_str(),
            "--journal".as_ref(),
            journal.as_os_str(),
        ],
    );
    (objects, [plan, import, diff, models])
}

#[cfg(target_os = "linux")]
#[test]
fn import_plan_and_diff_memory_per_object_does_not_regress() {
    if !common::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Two sizes: the slope between them is what each object costs, without the binary's own.
    let (small, large) = (peaks(tmp.path(), 2_000), peaks(tmp.path(), 10_000));
    let objects = (large.0 - small.0) as f64;
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (i, what) in ["plan", "import", "diff", "models import"]
        .iter()
        .enumerate()
    {
        let slope = (large.1[i] - small.1[i]) as f64 / objects;
        report.push(format!(
            "{what}: {} KiB at {} objects, {} KiB at {} objects, {slope:.2} KiB per object",
            small.1[i], small.0, large.1[i], large.0
        ));
        // The target is 128 MiB + 2 KiB per object. These sizes measure 1.73 (plan),
        // 1.76 (import) and 1.74 (diff) KiB per object (debug build; the scale benchmark,
        // between 21,200 and 106,000 objects, release: 1.82, 1.87, 1.89). The limit is the
        // target itself: import failed it (2.1 here, 2.2 in the benchmark) while its apply
        // copied every plan item's names into its outcome, before the report kept outcomes
        // beside the plan. `models import` measures 0.9 in the benchmark (3.2 before it opened
        // the bundle as `import` does, every record whole).
        let limit = 2.0;
        if slope > limit || large.1[i] > 128 * 1024 + 2 * large.0 as i64 {
            over.push(what.to_string());
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        over.is_empty(),
        "per-object memory regressed (over 128 MiB + 2 KiB per object, or a slope over 2 KiB): {over:?}\n{}",
        report.join("\n")
    );
}

/// Issue #15: `plan` and `import` of a bundle of many model versions (the scale benchmark's
/// registry: ten objects a model) into an empty emulator hold per object what they hold for
/// a workspace's: the models stage reads what it needs of each model record, not the record.
/// Debug build, 2,000 → 10,000 objects.
#[cfg(target_os = "linux")]
#[test]
fn a_bundle_of_models_imports_in_little_memory_per_object() {
    if !common::have_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut peaks = Vec::new();
    for models in [200usize, 1_000] {
        let (bundle, objects) = write_registry(tmp.path(), models);
        let target = EmptyTarget::start(tmp.path(), &format!("models-{models}"));
        let env = target.env();
        let plan = peak_kib_with(Some(&env), &["plan".as_ref(), bundle.as_os_str()]);
        let import = peak_kib_with(Some(&env), &["import".as_ref(), bundle.as_os_str()]);
        peaks.push((objects, [plan, import]));
    }
    let ((small, a), (large, b)) = (peaks[0], peaks[1]);
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (i, what) in ["plan", "import"].iter().enumerate() {
        let slope = (b[i] - a[i]) as f64 / (large - small) as f64;
        report.push(format!(
            "{what}: {} KiB at {small} objects, {} KiB at {large} objects, {slope:.2} KiB per object",
            a[i], b[i]
        ));
        if slope > MODELS_IMPORT_SLOPE || b[i] > 128 * 1024 + 2 * large as i64 {
            over.push(*what);
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        over.is_empty(),
        "per-object memory of a models bundle regressed: {over:?}\n{}",
        report.join("\n")
    );
}

/// The limit of the test above, KiB per object: the target. Measured here (debug
/// build): plan 0.88, import 1.59; with the model records kept whole until the models stage
/// gathered them (before `models::Gather`), 2.69 and 3.42 (release), and 4.6 for import in the
/// scale benchmark.
const MODELS_IMPORT_SLOPE: f64 = 2.0;
