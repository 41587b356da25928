//! SQL warehouses and the Statement Execution API (`/api/2.0/sql/*`): run one statement, poll
//! until it is terminal, fetch every chunk of its inline result. A statement that ends FAILED
//! (which the API reports with HTTP 200) becomes [`ClientError::Statement`] naming it.

use super::transport::Call;
use super::{check_page, Client, ClientError};
use crate::model::compute::Warehouse;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

/// SQL API calls.
#[derive(Debug, Clone, Copy)]
pub struct SqlApi<'a> {
    c: &'a Client,
}

/// A statement to run.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    /// SQL text.
    pub statement: &'a str,
    /// Warehouse.
    pub warehouse_id: &'a str,
    /// Default catalog.
    pub catalog: Option<&'a str>,
    /// Default schema.
    pub schema: Option<&'a str>,
    /// True for a statement that only reads (`SHOW GRANTS`): its submission is retried like
    /// a read. A `GRANT` must leave this false.
    pub read_only: bool,
    /// How long to wait for a terminal state before cancelling.
    pub timeout: Duration,
}

/// The rows of a finished statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatementResult {
    /// Statement id.
    pub statement_id: String,
    /// Column names, in position order.
    pub columns: Vec<String>,
    /// Rows; SQL NULL is `None`.
    pub rows: Vec<Vec<Option<String>>>,
}

impl StatementResult {
    /// The legacy Hive grants of a `SHOW GRANTS` answer about the object `(t, key)` itself,
    /// parsed once for export and import alike ([`crate::model::grants::rows_about`]).
    pub fn grants_about(
        &self,
        t: crate::model::grants::HiveObjectType,
        key: &str,
    ) -> Vec<crate::model::grants::HiveGrant> {
        crate::model::grants::rows_about(&self.columns, &self.rows, t, key)
    }

    /// The index of a column, matched case-insensitively (runtimes differ in case).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }
}

#[derive(Deserialize, Default)]
struct StatusError {
    error_code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct Status {
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<StatusError>,
}

#[derive(Deserialize)]
struct Column {
    name: String,
    #[serde(default)]
    position: Option<i64>,
}

#[derive(Deserialize, Default)]
struct Schema {
    #[serde(default)]
    columns: Vec<Column>,
}

#[derive(Deserialize, Default)]
struct Manifest {
    #[serde(default)]
    schema: Schema,
    #[serde(default)]
    total_chunk_count: Option<i64>,
}

#[derive(Deserialize, Default)]
struct ResultData {
    #[serde(default)]
    chunk_index: Option<i64>,
    #[serde(default)]
    data_array: Vec<Vec<Value>>,
    #[serde(default)]
    next_chunk_index: Option<i64>,
}

#[derive(Deserialize)]
struct StatementResponse {
    #[serde(default)]
    statement_id: String,
    #[serde(default)]
    status: Status,
    #[serde(default)]
    manifest: Option<Manifest>,
    #[serde(default)]
    result: Option<ResultData>,
}

#[derive(Deserialize)]
struct WarehousesResponse {
    #[serde(default)]
    warehouses: Vec<Warehouse>,
    #[serde(default)]
    next_page_token: Option<String>,
}

fn cell(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn short(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        one_line.chars().take(119).collect::<String>() + "…"
    } else {
        one_line
    }
}

impl<'a> SqlApi<'a> {
    pub(crate) fn new(c: &'a Client) -> Self {
        SqlApi { c }
    }

    /// Every SQL warehouse (all pages).
    pub async fn list_warehouses(&self) -> Result<Vec<Warehouse>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        let mut pages = 0;
        loop {
            let call =
                Call::get("/api/2.0/sql/warehouses").query_opt("page_token", token.as_deref());
            let describe = call.describe();
            let r: WarehousesResponse = self.c.transport().json(call).await?;
            out.extend(r.warehouses);
            pages += 1;
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => {
                    check_page(&describe, pages, &mut seen, &t)?;
                    token = Some(t);
                }
                None => return Ok(out),
            }
        }
    }

    /// Runs a statement to completion and returns all its rows.
    pub async fn execute(&self, st: &Statement<'_>) -> Result<StatementResult, ClientError> {
        let t = self.c.transport();
        let deadline = Instant::now() + st.timeout;
        let mut body = json!({
            "statement": st.statement,
            "warehouse_id": st.warehouse_id,
            "wait_timeout": "30s",
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY",
        });
        if let Some(c) = st.catalog {
            body["catalog"] = json!(c);
        }
        if let Some(s) = st.schema {
            body["schema"] = json!(s);
        }
        let mut call = Call::post("/api/2.0/sql/statements")
            .json(&body)
            .object(format!(
                "warehouse_id={} statement=`{}`",
                st.warehouse_id,
                short(st.statement)
            ));
        if st.read_only {
            call = call.safe_to_retry();
        }
        let mut resp: StatementResponse = t.json(call).await?;
        let id = resp.statement_id.clone();
        let mut pause = Duration::from_millis(100);
        while matches!(resp.status.state.as_str(), "PENDING" | "RUNNING" | "") {
            if id.is_empty() {
                return Err(ClientError::Protocol {
                    call: "POST /api/2.0/sql/statements".into(),
                    message: "the answer has no statement_id".into(),
                });
            }
            if Instant::now() >= deadline {
                let _ = t
                    .send(
                        Call::post("/api/2.0/sql/statements/{id}/cancel")
                            .path(format!("/api/2.0/sql/statements/{id}/cancel"))
                            .object(format!("statement_id={id}")),
                    )
                    .await;
                return Err(ClientError::Statement {
                    statement: short(st.statement),
                    state: "TIMEOUT".into(),
                    error_code: None,
                    message: format!("not finished after {} s; cancelled", st.timeout.as_secs()),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            resp = t
                .json(
                    Call::get("/api/2.0/sql/statements/{id}")
                        .path(format!("/api/2.0/sql/statements/{id}"))
                        .object(format!("statement_id={id}")),
                )
                .await?;
        }
        if resp.status.state != "SUCCEEDED" {
            let e = resp.status.error.unwrap_or_default();
            return Err(ClientError::Statement {
                statement: short(st.statement),
                state: resp.status.state,
                error_code: e.error_code,
                message: e.message.unwrap_or_else(|| "no message".into()),
            });
        }
        let manifest = resp.manifest.unwrap_or_default();
        let mut cols = manifest.schema.columns;
        cols.sort_by_key(|c| c.position.unwrap_or(i64::MAX));
        let mut out = StatementResult {
            statement_id: id.clone(),
            columns: cols.into_iter().map(|c| c.name).collect(),
            rows: Vec::new(),
        };
        let total = manifest.total_chunk_count.unwrap_or(1);
        let mut data = resp.result.unwrap_or_default();
        let mut fetched = 0i64;
        loop {
            let index = data.chunk_index.unwrap_or(fetched);
            out.rows.extend(
                data.data_array
                    .drain(..)
                    .map(|r| r.into_iter().map(cell).collect()),
            );
            fetched += 1;
            let next = data
                .next_chunk_index
                .or_else(|| (index + 1 < total).then_some(index + 1));
            let Some(next) = next else { break };
            if fetched > total.max(1) + 1 {
                return Err(ClientError::Protocol {
                    call: format!(
                        "GET /api/2.0/sql/statements/{{id}}/result/chunks statement_id={id}"
                    ),
                    message: format!("more chunks than the manifest's {total}"),
                });
            }
            data = t
                .json(
                    Call::get("/api/2.0/sql/statements/{id}/result/chunks/{index}")
                        .path(format!("/api/2.0/sql/statements/{id}/result/chunks/{next}"))
                        .object(format!("statement_id={id} chunk={next}")),
                )
                .await?;
        }
        Ok(out)
    }
}
