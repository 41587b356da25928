//! Jobs: one paged `jobs/list` with `expand_tasks=true` carries every job's full settings;
//! `jobs/get` (with 2.2 array paging) is called only for a job whose arrays the listing
//! truncated. Server-assigned fields stay at the top level of the stored job as provenance
//! (`job_id`, `creator_user_name`, `created_time`, `run_as_user_name`); the settings are
//! stored without the fields the server fills in, ready to be replayed.

use crate::bundle::Resource;
use crate::export::context::{commit, reason, Ctx};
use crate::export::stage::DoneEntry;
use crate::export::ExportError;
use crate::kinds::permissions::export::{fetch_permissions, stage_permissions};
use crate::model::job::{self, Job};
use crate::model::permissions::{ObjectPermissions, PrincipalRef};
use crate::model::Kind;
use futures_util::stream::StreamExt;
use serde_json::Value;
use std::sync::Arc;

/// Lists every job, full settings included; `None` (and a reported failure) when the listing
/// fails.
pub async fn list_jobs(ctx: &Arc<Ctx>) -> Option<Vec<Job>> {
    match ctx.client.jobs().list(true).await {
        Ok(jobs) => Some(jobs),
        Err(e) => {
            if e.is_auth_failure() {
                ctx.set_fatal(ExportError::Client {
                    context: "listing jobs".into(),
                    source: e,
                });
            } else {
                ctx.found(Kind::Job, 1);
                ctx.failed(
                    Kind::Job,
                    "(every job)",
                    "",
                    format!(
                        "the job listing failed, so no job is exported: {}",
                        reason(&e)
                    ),
                );
            }
            None
        }
    }
}

/// The settings as stored: without the fields the server fills in on read.
pub fn strip_server_fields(mut j: Job) -> Job {
    for f in job::SERVER_SETTINGS_FIELDS {
        j.settings.remove(f);
    }
    j
}

/// Principals a job names: creator, run-as identity.
pub fn job_principals(j: &Job) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = &j.creator_user_name {
        out.push(format!("any:{c}"));
    }
    if let Some(r) = &j.run_as_user_name {
        out.push(format!("any:{r}"));
    }
    if let Some(Value::Object(run_as)) = j.settings.get("run_as") {
        for (field, prefix) in [
            ("user_name", "user"),
            ("service_principal_name", "sp"),
            ("group_name", "group"),
        ] {
            if let Some(n) = run_as.get(field).and_then(Value::as_str) {
                out.push(format!("{prefix}:{n}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The owner named by a job's ACL (`IS_OWNER`).
pub fn owner(p: &ObjectPermissions) -> Option<&str> {
    p.access_control_list.iter().find_map(|ac| {
        ac.all_permissions
            .iter()
            .any(|l| l.permission_level == "IS_OWNER")
            .then(|| ac.principal.name())
    })
}

fn is_user(p: &ObjectPermissions, user: &str) -> bool {
    p.access_control_list.iter().any(|ac| {
        matches!(&ac.principal, PrincipalRef::UserName(n) if n.eq_ignore_ascii_case(user))
            && ac
                .all_permissions
                .iter()
                .any(|l| l.permission_level == "IS_OWNER")
    })
}

/// Stages the listed jobs and their permissions.
pub async fn export_jobs(ctx: Arc<Ctx>, jobs: Vec<Job>) {
    if !ctx.opts.wants(Kind::Job) && !ctx.opts.wants(Kind::Permissions) {
        return;
    }
    ctx.phase("jobs");
    let width = ctx.opts.concurrency.max(1) * 2;
    futures_util::stream::iter(jobs)
        .map(|j| export_job(Arc::clone(&ctx), j))
        .buffer_unordered(width)
        .for_each(|_| async {})
        .await;
}

async fn export_job(ctx: Arc<Ctx>, j: Job) {
    if ctx.is_stopped() {
        return;
    }
    let id = j.job_id.to_string();
    let name = j
        .settings
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let want_perms = ctx.opts.wants(Kind::Permissions);
    // With --user, a job is selected by its owner, which only its ACL tells.
    let mut fetched: Option<ObjectPermissions> = None;
    if let Some(user) = ctx.opts.selection.user.clone() {
        let held = ctx.stage.held(Kind::Job, &id).is_some()
            || ctx.stage.held(Kind::Permissions, &id).is_some();
        if !held {
            let Some(p) = fetch_permissions(&ctx, "jobs", &id, &name).await else {
                return;
            };
            if !is_user(&p, &user) {
                return;
            }
            fetched = Some(p);
        }
    }
    let content = async {
        if !ctx.opts.wants(Kind::Job) {
            return;
        }
        ctx.found(Kind::Job, 1);
        if ctx.reuse(Kind::Job, &id) {
            return;
        }
        let j = strip_server_fields(j.clone());
        let resource = Resource::job(&j);
        let entry = DoneEntry {
            name: name.clone(),
            principals: job_principals(&j),
            ..DoneEntry::default()
        };
        commit(&ctx, Kind::Job, id.clone(), entry, resource).await;
    };
    let perms = async {
        if !want_perms {
            return;
        }
        ctx.found(Kind::Permissions, 1);
        if ctx.reuse(Kind::Permissions, &id) {
            return;
        }
        let p = match fetched.clone() {
            Some(p) => p,
            None => match fetch_permissions(&ctx, "jobs", &id, &name).await {
                Some(p) => p,
                None => return,
            },
        };
        stage_permissions(&ctx, "jobs", &id, &name, &p).await;
    };
    tokio::join!(content, perms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_and_names_principals() {
        let j: Job = serde_json::from_value(json!({
            "job_id": 7, "creator_user_name": "a@x", "run_as_user_name": "sp-1",
            "settings": {"name": "n", "format": "MULTI_TASK", "run_as": {"service_principal_name": "sp-1"}}
        }))
        .unwrap();
        let s = strip_server_fields(j.clone());
        assert!(!s.settings.contains_key("format"));
        assert_eq!(s.job_id, 7);
        assert_eq!(
            job_principals(&j),
            vec![
                "any:a@x".to_string(),
                "any:sp-1".to_string(),
                "sp:sp-1".to_string()
            ]
        );
        let p: ObjectPermissions = serde_json::from_value(json!({
            "object_id": "/jobs/7", "object_type": "job",
            "access_control_list": [{"user_name": "B@x", "all_permissions": [{"permission_level": "IS_OWNER"}]}]
        }))
        .unwrap();
        assert_eq!(owner(&p), Some("B@x"));
        assert!(is_user(&p, "b@x"));
        assert!(!is_user(&p, "a@x"));
    }
}
