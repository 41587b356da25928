//! Running dbxport's fixed, read-only programs on a cluster (command execution, API 1.2).
//! The client does not replay command creation on its own, since in general a command may
//! change things; these programs only read, so a run that failed on the way (a dropped
//! connection, a 5xx) is simply run again, a few times.

use super::context::Ctx;
use crate::client::commands::CommandOutput;
use crate::client::ClientError;
use std::time::Duration;

/// Attempts per program run.
const ATTEMPTS: u32 = 4;

fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } => true,
        ClientError::RetriesExhausted { .. } => false,
        other => other
            .api()
            .is_some_and(|a| a.status >= 500 || a.status == 429),
    }
}

/// Runs a read-only `program` (Python) on `cluster`, again after a transient failure.
pub async fn run_read_only(
    ctx: &Ctx,
    cluster: &str,
    program: &str,
    timeout: Duration,
) -> Result<CommandOutput, ClientError> {
    let mut attempt = 1;
    loop {
        match ctx
            .client
            .commands()
            .run(cluster, "python", program, timeout)
            .await
        {
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                tracing::info!(target: "dbxport::export", cluster, attempt, error = %e, "running the program again");
                tokio::time::sleep(Duration::from_millis(500) * attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
