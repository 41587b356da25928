//! The bundle format of jobs (spec §6.2): the `meta` of `job` records, their payload file
//! ([`JobFile`]), and the resource export writes for one.

use crate::bundle::layout::{segs, LogicalPath};
use crate::bundle::resource::Resource;
use crate::kinds::format::{meta_value, payload_part};
use crate::model::job as tasks;
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

/// `jobs/⟨<job_id>-<name>⟩.json` (§6.2): a job as `jobs/get` returned it — the server's fields
/// about the job, typed, and its settings kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFile {
    /// The job's id in the source workspace.
    pub job_id: i64,
    /// Who created it; absent when the creator was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_user_name: Option<String>,
    /// The identity its runs ran as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user_name: Option<String>,
    /// Creation time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    /// The job's settings (`JobSettings`), kept verbatim by design: the API's settings grammar
    /// is large and grows every month, and a migration must replay fields this version does
    /// not know. A reader takes a missing `settings` as `{}`.
    #[serde(default)]
    pub settings: Map<String, Value>,
}

impl Resource {
    /// A job record from its file, and what its tasks refer to in `meta`.
    fn job_record(file: JobFile) -> Self {
        let name = file
            .settings
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let meta = JobMeta {
            job_id: file.job_id,
            existing_cluster_ids: tasks::existing_cluster_ids(&file.settings),
            run_job_ids: tasks::run_job_references(&file.settings),
            notebook_paths: tasks::notebook_paths(&file.settings)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        let mut r = Resource::new(Kind::Job, file.job_id.to_string(), &name, meta_value(&meta));
        let stored = if name.is_empty() {
            file.job_id.to_string()
        } else {
            format!("{}-{}", file.job_id, name)
        };
        r.parts.push(payload_part(
            LogicalPath::file(segs(["jobs".to_string(), stored]), Some("json")),
            &file,
        ));
        r
    }
}

/// The API's side: conversions between [`JobFile`] and the jobs API's `Job`, and the
/// constructor export calls with what the API returned.
mod wire {
    use super::JobFile;
    use crate::bundle::resource::Resource;
    use crate::kinds::format::PayloadFile;
    use crate::model::job::Job;

    impl From<&Job> for JobFile {
        fn from(j: &Job) -> Self {
            JobFile {
                job_id: j.job_id,
                creator_user_name: j.creator_user_name.clone(),
                run_as_user_name: j.run_as_user_name.clone(),
                created_time: j.created_time,
                settings: j.settings.clone(),
            }
        }
    }

    impl PayloadFile for JobFile {
        type Wire = Job;

        fn into_wire(self) -> Job {
            Job {
                job_id: self.job_id,
                creator_user_name: self.creator_user_name,
                run_as_user_name: self.run_as_user_name,
                created_time: self.created_time,
                settings: self.settings,
            }
        }
    }

    impl Resource {
        /// A job, from its `jobs/get` answer (§6.2).
        pub fn job(job: &Job) -> Self {
            Resource::job_record(JobFile::from(job))
        }
    }
}
