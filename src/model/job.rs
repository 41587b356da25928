//! Jobs (`/api/2.1|2.2/jobs/*`).
//!
//! Job settings are kept as JSON objects rather than typed structs: the settings grammar is large
//! and grows every month, and a migration tool must carry fields it does not know byte for byte.
//! The helpers here name the few fields dbxport reasons about.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A job as `jobs/get` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Server-assigned id.
    pub job_id: i64,
    /// Creator, omitted when the creator was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_user_name: Option<String>,
    /// Effective run-as identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user_name: Option<String>,
    /// Creation time, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    /// The settings object (`JobSettings`), kept whole.
    #[serde(default)]
    pub settings: Map<String, Value>,
}

/// Top-level response fields that the server assigns and a replay must not send.
pub const SERVER_FIELDS: [&str; 10] = [
    "job_id",
    "creator_user_name",
    "created_time",
    "run_as_user_name",
    "has_more",
    "next_page_token",
    "effective_budget_policy_id",
    "effective_usage_policy_id",
    "trigger_state",
    "trigger_details",
];

/// Settings fields the server fills or echoes and a replay must not send.
pub const SERVER_SETTINGS_FIELDS: [&str; 1] = ["format"];

/// The tag import writes on every job it creates, naming the source job, so that a re-run finds
/// the job it made instead of creating a duplicate.
pub const SOURCE_TAG: &str = "dbxport_source";

/// The value of [`SOURCE_TAG`] for a job `job_id` of the workspace `workspace`.
pub fn source_tag_value(workspace: &str, job_id: i64) -> String {
    format!("{workspace}/{job_id}")
}

/// The tasks of a settings object (empty when absent).
pub fn tasks(settings: &Map<String, Value>) -> &[Value] {
    settings
        .get("tasks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every `existing_cluster_id` referenced by the job's tasks, in task order, without repeats.
pub fn existing_cluster_ids(settings: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tasks(settings) {
        if let Some(id) = t.get("existing_cluster_id").and_then(Value::as_str) {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
    }
    out
}

/// Every job id referenced by a `run_job_task`, in task order.
pub fn run_job_references(settings: &Map<String, Value>) -> Vec<i64> {
    tasks(settings)
        .iter()
        .filter_map(|t| t.get("run_job_task")?.get("job_id")?.as_i64())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references() {
        let s = json!({"tasks": [
            {"task_key": "a", "existing_cluster_id": "c1"},
            {"task_key": "b", "existing_cluster_id": "c1", "run_job_task": {"job_id": 7}},
            {"task_key": "c", "existing_cluster_id": "c2"}
        ]});
        let s = s.as_object().unwrap();
        assert_eq!(existing_cluster_ids(s), vec!["c1", "c2"]);
        assert_eq!(run_job_references(s), vec![7]);
    }
}
