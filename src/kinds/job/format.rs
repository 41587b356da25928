//! The bundle format of jobs (spec §6.2): the `meta` of `job` records, and the resource
//! export writes for one.

use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::resource::{json_part, Resource};
use crate::kinds::format::meta_value;
use crate::model::job::{self, Job};
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `meta` of a `job` record: the job's id and what its tasks (nested ones included) refer to,
/// so a reader can tell what a job needs without opening its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMeta {
    /// The job's id in the source workspace.
    pub job_id: i64,
    /// Ids of the existing clusters its tasks run on.
    #[serde(default)]
    pub existing_cluster_ids: Vec<String>,
    /// Ids of the jobs its `run_job_task`s start.
    #[serde(default)]
    pub run_job_ids: Vec<i64>,
    /// Workspace paths of the notebooks its tasks run.
    #[serde(default)]
    pub notebook_paths: Vec<String>,
}

impl Resource {
    /// A job: its `jobs/get` answer, and what its tasks refer to in `meta`.
    pub fn job(job: &Job) -> Self {
        let name = job
            .settings
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let meta = JobMeta {
            job_id: job.job_id,
            existing_cluster_ids: job::existing_cluster_ids(&job.settings),
            run_job_ids: job::run_job_references(&job.settings),
            notebook_paths: job::notebook_paths(&job.settings)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        let mut r = Resource::new(Kind::Job, job.job_id.to_string(), &name, meta_value(&meta));
        let file = if name.is_empty() {
            job.job_id.to_string()
        } else {
            format!("{}-{}", job.job_id, name)
        };
        r.parts.push(json_part(
            LogicalPath::file(segs(["jobs".to_string(), file]), Some("json")),
            job,
        ));
        r
    }
}
