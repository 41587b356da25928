//! Jobs 2.2 (`/api/2.2/jobs/*`): list (paged with `page_token`, optionally with tasks), get
//! (following the 2.2 array pagination of `tasks`, `job_clusters`, `parameters` and
//! `environments` until no `next_page_token`), create, reset, update, delete.

use super::transport::Call;
use super::{check_page, Client, ClientError};
use crate::model::job::Job;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// Jobs API calls.
#[derive(Debug, Clone, Copy)]
pub struct JobsApi<'a> {
    c: &'a Client,
}

/// The arrays 2.2 `jobs/get` returns in pages.
pub const PAGED_ARRAYS: [&str; 4] = ["tasks", "job_clusters", "parameters", "environments"];

fn page_token(v: &Map<String, Value>) -> Option<String> {
    v.get("next_page_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn to_job(call: &str, v: Map<String, Value>) -> Result<Job, ClientError> {
    serde_json::from_value(Value::Object(v)).map_err(|e| ClientError::Decode {
        call: call.to_string(),
        message: e.to_string(),
    })
}

impl<'a> JobsApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        JobsApi { c }
    }

    /// Every job (all pages, 100 a page). With `expand_tasks`, settings include tasks and job
    /// clusters; a job whose arrays the listing truncated (`has_more`) is fetched whole with
    /// [`JobsApi::get`] — the only per-job call, and only when needed.
    pub async fn list(&self, expand_tasks: bool) -> Result<Vec<Job>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let call = Call::get("/api/2.2/jobs/list")
                .query("limit", 100)
                .query("expand_tasks", expand_tasks)
                .query_opt("page_token", token.as_deref());
            let describe = call.describe();
            let mut r: Map<String, Value> = self.c.transport().json(call).await?;
            let next = page_token(&r);
            let jobs = match r.remove("jobs") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            for j in jobs {
                let Value::Object(j) = j else {
                    return Err(ClientError::Decode {
                        call: describe.clone(),
                        message: "a jobs entry is not an object".into(),
                    });
                };
                let truncated = j.get("has_more").and_then(Value::as_bool).unwrap_or(false);
                let job = to_job(&describe, j)?;
                if expand_tasks && truncated {
                    out.push(self.get(job.job_id).await?);
                } else {
                    out.push(job);
                }
            }
            pages += 1;
            match next {
                Some(t) => {
                    check_page(&describe, pages, &mut seen, &t)?;
                    token = Some(t);
                }
                None => return Ok(out),
            }
        }
    }

    /// One job, whole: later pages of its arrays are appended to the first.
    pub async fn get(&self, job_id: i64) -> Result<Job, ClientError> {
        let call = |token: Option<&str>| {
            Call::get("/api/2.2/jobs/get")
                .query("job_id", job_id)
                .query_opt("page_token", token)
                .object(format!("job_id={job_id}"))
        };
        let first = call(None);
        let describe = first.describe();
        let mut job: Map<String, Value> = self.c.transport().json(first).await?;
        let mut next = page_token(&job);
        let mut seen = HashSet::new();
        let mut pages = 1;
        while let Some(t) = next {
            check_page(&describe, pages, &mut seen, &t)?;
            let page: Map<String, Value> = self.c.transport().json(call(Some(&t))).await?;
            pages += 1;
            next = page_token(&page);
            let Some(Value::Object(more)) = page.get("settings") else {
                continue;
            };
            let settings = job
                .entry("settings")
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(settings) = settings else {
                return Err(ClientError::Decode {
                    call: describe,
                    message: "settings is not an object".into(),
                });
            };
            for key in PAGED_ARRAYS {
                if let Some(Value::Array(items)) = more.get(key) {
                    if items.is_empty() {
                        continue;
                    }
                    match settings
                        .entry(key)
                        .or_insert_with(|| Value::Array(Vec::new()))
                    {
                        Value::Array(a) => a.extend(items.iter().cloned()),
                        other => *other = Value::Array(items.clone()),
                    }
                }
            }
        }
        job.remove("next_page_token");
        job.remove("has_more");
        to_job(&describe, job)
    }

    /// Creates a job from settings (sent as the top-level body); returns the new id.
    pub async fn create(&self, settings: &Map<String, Value>) -> Result<i64, ClientError> {
        let name = settings.get("name").and_then(Value::as_str).unwrap_or("");
        let call = Call::post("/api/2.2/jobs/create")
            .json(settings)
            .object(format!("name={name}"));
        let describe = call.describe();
        let r: Value = self.c.transport().json(call).await?;
        r.get("job_id")
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| ClientError::Decode {
                call: describe,
                message: "no job_id in the answer".into(),
            })
    }

    /// Replaces a job's settings (safe to replay).
    pub async fn reset(
        &self,
        job_id: i64,
        settings: &Map<String, Value>,
    ) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.2/jobs/reset")
                    .json(&json!({ "job_id": job_id, "new_settings": settings }))
                    .safe_to_retry()
                    .object(format!("job_id={job_id}")),
            )
            .await
    }

    /// Partially updates a job: `new_settings` merged, `fields_to_remove` (e.g.
    /// `tasks/task_1`) removed (safe to replay).
    pub async fn update(
        &self,
        job_id: i64,
        new_settings: &Map<String, Value>,
        fields_to_remove: &[String],
    ) -> Result<(), ClientError> {
        let mut body = json!({ "job_id": job_id, "new_settings": new_settings });
        if !fields_to_remove.is_empty() {
            body["fields_to_remove"] = json!(fields_to_remove);
        }
        self.c
            .transport()
            .send(
                Call::post("/api/2.2/jobs/update")
                    .json(&body)
                    .safe_to_retry()
                    .object(format!("job_id={job_id}")),
            )
            .await
    }

    /// Deletes a job.
    pub async fn delete(&self, job_id: i64) -> Result<(), ClientError> {
        self.c
            .transport()
            .send(
                Call::post("/api/2.2/jobs/delete")
                    .json(&json!({ "job_id": job_id }))
                    .object(format!("job_id={job_id}")),
            )
            .await
    }
}
