//! Generated workspaces (`generate.json` in a seed, `spec/emulator-seed.md`): a compact
//! description — how many notebooks, folders and jobs, and how often a direct grant — expanded
//! in memory when the seed loads. A million-notebook workspace would otherwise be a million
//! files on disk to write and walk; this way it starts in seconds and costs only its content.

use std::path::Path;

use serde::Deserialize;

use crate::model::job::Job;
use crate::model::permissions::{AccessControlRequest, PrincipalRef};
use crate::model::workspace::{self as ws, Language, ObjectType};

use super::error::EmulatorError;
use super::jobs::normalize_settings;
use super::state::{JobState, Node, State};

/// The description, as `generate.json` holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateFile {
    /// The folder everything is generated under (created with its parents).
    #[serde(default = "default_root")]
    pub root: String,
    /// Notebooks, spread evenly over the folders.
    pub notebooks: u64,
    /// Folders directly under `root`.
    pub folders: u64,
    /// Jobs, each running one to four of the notebooks.
    #[serde(default)]
    pub jobs: u64,
    /// Every n-th notebook, folder and job gets a direct grant to the `users` group (0: none).
    #[serde(default)]
    pub grant_every: u64,
    /// Seed of the content stream, so that the same description gives the same workspace.
    #[serde(default)]
    pub seed: u64,
}

fn default_root() -> String {
    "/Shared/generated".into()
}

/// A small, fast, deterministic stream (splitmix64): the content only needs to vary, not to be
/// unpredictable, and the emulator should not depend on a random crate's stream staying fixed.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Bounds that keep a description from asking for more than a machine can hold by accident.
const MAX_OBJECTS: u64 = 20_000_000;

/// The path of folder `f` and of notebook `n` inside it.
fn folder_path(root: &str, f: u64) -> String {
    format!("{root}/area-{f:06}")
}

/// Expands `generate.json` of `dir`, if there is one, into `st`.
pub(crate) fn load(dir: &Path, st: &mut State, now: i64) -> Result<(), EmulatorError> {
    let path = dir.join("generate.json");
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read(&path).map_err(|e| EmulatorError::seed(&path, e.to_string()))?;
    let g: GenerateFile =
        serde_json::from_slice(&text).map_err(|e| EmulatorError::seed(&path, e.to_string()))?;
    expand(&g, st, now).map_err(|m| EmulatorError::seed(&path, m))
}

fn expand(g: &GenerateFile, st: &mut State, now: i64) -> Result<(), String> {
    let root = ws::normalize_path(&g.root).to_string();
    if !root.starts_with('/') || root == "/" {
        return Err(format!(
            "root {:?} must be an absolute folder below /",
            g.root
        ));
    }
    if g.notebooks > 0 && g.folders == 0 {
        return Err("notebooks need at least one folder".into());
    }
    if g.notebooks + g.folders + g.jobs > MAX_OBJECTS {
        return Err(format!(
            "asks for {} objects, more than the {MAX_OBJECTS} a generated workspace may hold",
            g.notebooks + g.folders + g.jobs
        ));
    }
    if st.tree.get(&root).is_some() {
        return Err(format!("{root} is already in the workspace tree"));
    }
    let user = st.first_admin();
    let grant = || {
        vec![AccessControlRequest {
            principal: PrincipalRef::GroupName("users".into()),
            permission_level: "CAN_RUN".into(),
        }]
    };
    let grant_to = |i: u64| g.grant_every > 0 && i.is_multiple_of(g.grant_every);
    let mut next_id = st.ids.next_object_id.max(st.workspace.first_object_id);
    let mut node = |object_type, language, content: Vec<u8>, acl| {
        let n = Node {
            object_type,
            object_id: next_id,
            language,
            content,
            created_at: now,
            modified_at: now,
            outputs_bytes: 0,
            acl,
        };
        next_id += 1;
        n
    };
    // The root and its parents.
    let mut prefix = String::new();
    for part in root.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        match st.tree.get(&prefix).map(|n| n.object_type) {
            None => st.tree.insert(
                prefix.clone(),
                node(ObjectType::Directory, None, Vec::new(), Vec::new()),
            ),
            Some(ObjectType::Directory) => {}
            Some(t) => return Err(format!("{prefix} is a {t:?}, not a folder")),
        }
    }
    let mut rnd = Stream(g.seed);
    let per_folder = g.notebooks.checked_div(g.folders).unwrap_or(0);
    let extra = g.notebooks.checked_rem(g.folders).unwrap_or(0);
    let mut notebook_paths: Vec<String> = Vec::new();
    let sample_every = (g.notebooks / 10_000).max(1);
    let mut n_index = 0u64;
    for f in 0..g.folders {
        let dir = folder_path(&root, f);
        st.tree.insert(
            dir.clone(),
            node(
                ObjectType::Directory,
                None,
                Vec::new(),
                if grant_to(f) { grant() } else { Vec::new() },
            ),
        );
        for n in 0..per_folder + u64::from(f < extra) {
            let path = format!("{dir}/notebook_{n:04}");
            let mut text = String::from("# Databricks notebook source\n");
            for c in 0..rnd.range(2, 6) {
                if c > 0 {
                    text.push_str("\n\n# COMMAND ----------\n\n");
                }
                for i in 0..rnd.range(1, 6) {
                    text.push_str(&format!(
                        "x_{c}_{i} = spark.range({}).count()\n",
                        rnd.range(1, 1_000_000)
                    ));
                }
            }
            let acl = if grant_to(n_index) {
                grant()
            } else {
                Vec::new()
            };
            if n_index.is_multiple_of(sample_every) {
                // Jobs pick their notebooks from a sample, so a million paths are not held twice.
                notebook_paths.push(path.clone());
            }
            n_index += 1;
            st.tree.insert(
                path,
                node(
                    ObjectType::Notebook,
                    Some(Language::Python),
                    text.into_bytes(),
                    acl,
                ),
            );
        }
    }
    st.ids.next_object_id = next_id;
    let first_job = st.ids.next_job_id.max(1);
    for j in 0..g.jobs {
        let job_id = first_job + j as i64;
        let tasks: Vec<serde_json::Value> = (0..rnd.range(1, 4))
            .map(|t| {
                let nb =
                    &notebook_paths[(rnd.next() % notebook_paths.len().max(1) as u64) as usize];
                let mut task = serde_json::json!({
                    "task_key": format!("t{t}"),
                    "notebook_task": {"notebook_path": nb},
                    "job_cluster_key": "main",
                });
                if t > 0 {
                    task["depends_on"] = serde_json::json!([{"task_key": format!("t{}", t - 1)}]);
                }
                task
            })
            .filter(|_| !notebook_paths.is_empty())
            .collect();
        let job = serde_json::json!({
            "job_id": job_id,
            "creator_user_name": user,
            "created_time": now,
            "settings": {
                "name": format!("generated-job-{j:06}"),
                "tasks": tasks,
                "max_concurrent_runs": 1,
                "job_clusters": [{"job_cluster_key": "main", "new_cluster": {
                    "spark_version": "14.3.x-scala2.12", "node_type_id": "Standard_DS3_v2",
                    "num_workers": 2}}],
            },
        });
        let mut job: Job = serde_json::from_value(job).map_err(|e| format!("job {j}: {e}"))?;
        normalize_settings(&mut job.settings).map_err(|e| format!("job {j}: {}", e.message))?;
        let mut acl = vec![AccessControlRequest {
            principal: PrincipalRef::UserName(user.clone()),
            permission_level: "IS_OWNER".into(),
        }];
        if grant_to(j) {
            acl.push(AccessControlRequest {
                principal: PrincipalRef::GroupName("users".into()),
                permission_level: "CAN_VIEW".into(),
            });
        }
        st.jobs.insert(job.job_id, JobState { job, acl });
    }
    st.ids.next_job_id = st.ids.next_job_id.max(first_job + g.jobs as i64);
    Ok(())
}
