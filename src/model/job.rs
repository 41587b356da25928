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

/// The top-level tasks of a settings object (empty when absent). Most callers want
/// [`visit_tasks`], which also reaches the tasks a `for_each_task` runs.
pub fn tasks(settings: &Map<String, Value>) -> &[Value] {
    settings
        .get("tasks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The task a `for_each_task` runs, if `task` is a for-each task.
fn nested(task: &Map<String, Value>) -> Option<&Map<String, Value>> {
    task.get("for_each_task")?.get("task")?.as_object()
}

/// Calls `f` on every task of a job: each top-level task, then the task its `for_each_task`
/// runs, at any depth (pre-order). This is the one task walker: every question about what a
/// job's tasks reference goes through it, so export's record, import's plan and the remap
/// all see the same tasks.
pub fn visit_tasks<'a>(
    settings: &'a Map<String, Value>,
    mut f: impl FnMut(&'a Map<String, Value>),
) {
    for t in tasks(settings) {
        let mut cur = t.as_object();
        while let Some(task) = cur {
            f(task);
            cur = nested(task);
        }
    }
}

/// [`visit_tasks`] with mutable access, in the same order.
pub fn visit_tasks_mut(
    settings: &mut Map<String, Value>,
    mut f: impl FnMut(&mut Map<String, Value>),
) {
    fn visit(task: &mut Map<String, Value>, f: &mut dyn FnMut(&mut Map<String, Value>)) {
        f(task);
        if let Some(Value::Object(inner)) = task
            .get_mut("for_each_task")
            .and_then(|fe| fe.get_mut("task"))
        {
            visit(inner, f);
        }
    }
    if let Some(Value::Array(ts)) = settings.get_mut("tasks") {
        for t in ts.iter_mut() {
            if let Value::Object(task) = t {
                visit(task, &mut f);
            }
        }
    }
}

/// Every `existing_cluster_id` referenced by the job's tasks (nested ones included), in task
/// order, without repeats.
pub fn existing_cluster_ids(settings: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    visit_tasks(settings, |t| {
        if let Some(id) = t.get("existing_cluster_id").and_then(Value::as_str) {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
    });
    out
}

/// Every job id referenced by a `run_job_task` (nested tasks included), in task order.
pub fn run_job_references(settings: &Map<String, Value>) -> Vec<i64> {
    let mut out = Vec::new();
    visit_tasks(settings, |t| {
        if let Some(id) = t
            .get("run_job_task")
            .and_then(|r| r.get("job_id"))
            .and_then(Value::as_i64)
        {
            out.push(id);
        }
    });
    out
}

/// Every `notebook_task.notebook_path` of the job's tasks (nested ones included), in task
/// order.
pub fn notebook_paths(settings: &Map<String, Value>) -> Vec<&str> {
    let mut out = Vec::new();
    visit_tasks(settings, |t| {
        if let Some(p) = t
            .get("notebook_task")
            .and_then(|n| n.get("notebook_path"))
            .and_then(Value::as_str)
        {
            out.push(p);
        }
    });
    out
}

/// Rewrites every `run_job_task.job_id` (nested tasks included) through `ids`; ids not in
/// `ids` are left as they are.
pub fn substitute_run_job_ids(
    settings: &mut Map<String, Value>,
    ids: &std::collections::BTreeMap<i64, i64>,
) {
    visit_tasks_mut(settings, |t| {
        if let Some(rj) = t.get_mut("run_job_task").and_then(Value::as_object_mut) {
            if let Some(to) = rj
                .get("job_id")
                .and_then(Value::as_i64)
                .and_then(|s| ids.get(&s))
            {
                rj.insert("job_id".into(), Value::from(*to));
            }
        }
    });
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

    /// A reference that sits only inside a `for_each_task` (two levels deep here) is seen by
    /// every question about the job, and rewritten by the mutable walk.
    #[test]
    fn nested_for_each_tasks_are_walked() {
        let mut s = json!({"tasks": [
            {"task_key": "top", "notebook_task": {"notebook_path": "/a"}},
            {"task_key": "loop", "for_each_task": {"inputs": "[1]", "task": {
                "task_key": "inner", "existing_cluster_id": "c-nested",
                "notebook_task": {"notebook_path": "/nested"},
                "for_each_task": {"inputs": "[2]", "task": {
                    "task_key": "deep", "run_job_task": {"job_id": 42}
                }}
            }}}
        ]});
        let o = s.as_object().unwrap();
        assert_eq!(existing_cluster_ids(o), vec!["c-nested"]);
        assert_eq!(run_job_references(o), vec![42]);
        assert_eq!(notebook_paths(o), vec!["/a", "/nested"]);
        let mut keys = Vec::new();
        visit_tasks(o, |t| {
            keys.push(t["task_key"].as_str().unwrap().to_string())
        });
        assert_eq!(keys, ["top", "loop", "inner", "deep"]);
        let o = s.as_object_mut().unwrap();
        substitute_run_job_ids(o, &[(42, 7)].into_iter().collect());
        assert_eq!(run_job_references(o), vec![7]);
    }
}
