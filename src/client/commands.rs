//! Command execution on a running cluster (API 1.2): create an execution context, run one
//! command, poll until `Finished`, `Error` or `Cancelled`, and always destroy the context,
//! also when the command or the polling fails. Results are never logged (a command may print
//! secret values).

use super::transport::Call;
use super::{Client, ClientError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// Commands API calls.
#[derive(Debug, Clone, Copy)]
pub struct CommandsApi<'a> {
    c: &'a Client,
}

/// The result of a finished command.
#[derive(Clone, PartialEq)]
pub struct CommandOutput {
    /// `text`, `table`, `image`, …
    pub result_type: String,
    /// The result's `data` (text, or rows for `table`).
    pub data: Value,
    /// Column descriptions for `table` results.
    pub schema: Option<Value>,
}

impl std::fmt::Debug for CommandOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The data may hold secret values read on the cluster.
        f.debug_struct("CommandOutput")
            .field("result_type", &self.result_type)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct IdResponse {
    id: Option<String>,
}

#[derive(Deserialize)]
struct StatusResponse {
    #[serde(default)]
    status: String,
    #[serde(default)]
    results: Option<Value>,
}

impl<'a> CommandsApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        CommandsApi { c }
    }

    /// Runs `command` in `language` (`python`, `scala`, `sql`) on `cluster_id` and returns its
    /// result; a command that ends in error or is cancelled is [`ClientError::Command`].
    pub async fn run(
        &self,
        cluster_id: &str,
        language: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, ClientError> {
        let t = self.c.transport();
        let call = Call::post("/api/1.2/contexts/create")
            .json(&json!({ "clusterId": cluster_id, "language": language }))
            .object(format!("cluster_id={cluster_id}"));
        let describe = call.describe();
        let ctx: IdResponse = t.json(call).await?;
        let ctx = ctx
            .id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ClientError::Protocol {
                call: describe,
                message: "the answer has no context id".into(),
            })?;
        let result = self
            .run_in(cluster_id, &ctx, language, command, timeout)
            .await;
        let destroyed = t
            .send(
                Call::post("/api/1.2/contexts/destroy")
                    .json(&json!({ "clusterId": cluster_id, "contextId": ctx }))
                    .safe_to_retry()
                    .object(format!("cluster_id={cluster_id} context={ctx}")),
            )
            .await;
        if let Err(e) = &destroyed {
            tracing::warn!(target: "dbxport::client", error = %e, "cannot destroy the execution context");
        }
        match (result, destroyed) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(r), Ok(())) => Ok(r),
        }
    }

    async fn run_in(
        &self,
        cluster_id: &str,
        ctx: &str,
        language: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, ClientError> {
        let t = self.c.transport();
        let what = format!("cluster_id={cluster_id} context={ctx}");
        let call = Call::post("/api/1.2/commands/execute")
            .json(&json!({ "clusterId": cluster_id, "contextId": ctx, "language": language, "command": command }))
            .object(what.clone());
        let describe = call.describe();
        let cmd: IdResponse = t.json(call).await?;
        let cmd = cmd
            .id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ClientError::Protocol {
                call: describe.clone(),
                message: "the answer has no command id".into(),
            })?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            let call = Call::get("/api/1.2/commands/status")
                .query("clusterId", cluster_id)
                .query("contextId", ctx)
                .query("commandId", &cmd)
                .object(format!("{what} command={cmd}"));
            let status_call = call.describe();
            let s: StatusResponse = t.json(call).await?;
            match s.status.as_str() {
                "Finished" => {
                    let r = s.results.unwrap_or(Value::Null);
                    let result_type = r
                        .get("resultType")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if result_type == "error" {
                        let cause = r
                            .get("summary")
                            .and_then(Value::as_str)
                            .or_else(|| r.get("cause").and_then(Value::as_str))
                            .unwrap_or("the command failed");
                        return Err(ClientError::Command {
                            call: status_call,
                            status: "Error".into(),
                            message: cause.lines().next().unwrap_or("").to_string(),
                        });
                    }
                    return Ok(CommandOutput {
                        result_type,
                        data: r.get("data").cloned().unwrap_or(Value::Null),
                        schema: r.get("schema").cloned(),
                    });
                }
                "Error" | "Cancelled" => {
                    let cause = s
                        .results
                        .as_ref()
                        .and_then(|r| r.get("summary").or_else(|| r.get("cause")))
                        .and_then(Value::as_str)
                        .unwrap_or("no cause given");
                    return Err(ClientError::Command {
                        call: status_call,
                        status: s.status.clone(),
                        message: cause.lines().next().unwrap_or("").to_string(),
                    });
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                let _ = t
                    .send(
                        Call::post("/api/1.2/commands/cancel")
                            .json(&json!({ "clusterId": cluster_id, "contextId": ctx, "commandId": cmd }))
                            .object(what.clone()),
                    )
                    .await;
                return Err(ClientError::Command {
                    call: status_call,
                    status: "Timeout".into(),
                    message: format!("not finished after {} s; cancelled", timeout.as_secs()),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}
