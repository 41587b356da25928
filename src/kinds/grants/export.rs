//! Table access control. Legacy Hive metastore grants, denies and owners are read with `SHOW`
//! statements on a SQL warehouse (there is no REST API for them): the catalog, `ANY FILE`,
//! `ANONYMOUS FUNCTION`, then every database and every table, view and function in it, one
//! `SHOW GRANTS` each. Unity Catalog grants are read through REST, walking catalogs, schemas
//! and tables. One record per object, holding only the rows about that object (a `SHOW GRANTS`
//! answer also lists its parents' rows; those belong to the parents' records).

use crate::bundle::Resource;
use crate::client::sql::{Statement, StatementResult};
use crate::client::{Call, ClientError};
use crate::export::context::{commit, reason, Ctx};
use crate::export::report::Outcome;
use crate::export::stage::DoneEntry;
use crate::model::grants::{quote_name, HiveObjectType, UcGrants};
use crate::model::Kind;
use futures_util::stream::StreamExt;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How long one `SHOW` statement may take (warehouses may need to start).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

fn object_name(t: HiveObjectType, key: &str) -> String {
    let type_name = serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if key.is_empty() {
        type_name
    } else {
        format!("{type_name} {key}")
    }
}

async fn sql(ctx: &Ctx, warehouse: &str, statement: &str) -> Result<StatementResult, ClientError> {
    ctx.client
        .sql()
        .execute(&Statement {
            statement,
            warehouse_id: warehouse,
            catalog: Some("hive_metastore"),
            schema: None,
            read_only: true,
            timeout: STATEMENT_TIMEOUT,
        })
        .await
}

fn column_values(res: &StatementResult, names: &[&str], index: usize) -> Vec<String> {
    let col = names.iter().find_map(|n| res.column(n)).unwrap_or(index);
    res.rows
        .iter()
        .filter_map(|r| r.get(col).cloned().flatten())
        .collect()
}

/// The Hive objects whose grants are read, besides the catalog-wide ones.
struct HiveObject {
    t: HiveObjectType,
    key: String,
    statement: String,
}

/// Exports legacy Hive metastore grants through `warehouse`.
pub async fn export_hive(ctx: Arc<Ctx>) {
    if !ctx.opts.wants(Kind::HiveGrants) {
        return;
    }
    let Some(wh) = ctx.opts.warehouse_id.clone() else {
        ctx.found(Kind::HiveGrants, 1);
        ctx.outcome(
            Kind::HiveGrants,
            "",
            &DoneEntry::with(
                "(legacy table ACLs)",
                Outcome::Omitted,
                vec!["not read: no SQL warehouse; pass --warehouse-id ID (or set warehouse_id in the profile) to export legacy Hive metastore grants".into()],
            ),
            false,
        );
        return;
    };
    ctx.phase("legacy table ACLs");
    let mut objects = vec![
        HiveObject {
            t: HiveObjectType::Catalog,
            key: String::new(),
            statement: "SHOW GRANTS ON CATALOG".into(),
        },
        HiveObject {
            t: HiveObjectType::AnyFile,
            key: String::new(),
            statement: "SHOW GRANTS ON ANY FILE".into(),
        },
        HiveObject {
            t: HiveObjectType::AnonymousFunction,
            key: String::new(),
            statement: "SHOW GRANTS ON ANONYMOUS FUNCTION".into(),
        },
    ];
    let dbs = match sql(&ctx, &wh, "SHOW DATABASES").await {
        Ok(r) => column_values(&r, &["databaseName", "namespace"], 0),
        Err(e) => {
            ctx.found(Kind::HiveGrants, 1);
            ctx.client_failure(
                Kind::HiveGrants,
                "(every database)",
                "",
                &format!("SHOW DATABASES on warehouse {wh}"),
                e,
            );
            Vec::new()
        }
    };
    let width = ctx.opts.concurrency.max(1);
    let per_db: Vec<Vec<HiveObject>> = futures_util::stream::iter(dbs)
        .map(|db| {
            let ctx = Arc::clone(&ctx);
            let wh = wh.clone();
            async move { database_objects(&ctx, &wh, &db).await }
        })
        .buffer_unordered(width)
        .collect()
        .await;
    objects.extend(per_db.into_iter().flatten());
    objects.sort_by(|a, b| (a.t, &a.key).cmp(&(b.t, &b.key)));
    futures_util::stream::iter(objects)
        .map(|o| {
            let ctx = Arc::clone(&ctx);
            let wh = wh.clone();
            async move { export_hive_object(&ctx, &wh, o).await }
        })
        .buffer_unordered(width)
        .for_each(|_| async {})
        .await;
}

/// A database and what it holds.
async fn database_objects(ctx: &Arc<Ctx>, wh: &str, db: &str) -> Vec<HiveObject> {
    let q = quote_name(db);
    let mut out = vec![HiveObject {
        t: HiveObjectType::Database,
        key: db.to_string(),
        statement: format!("SHOW GRANTS ON SCHEMA {q}"),
    }];
    let listing = async {
        let tables = sql(ctx, wh, &format!("SHOW TABLES IN {q}")).await?;
        let views = sql(ctx, wh, &format!("SHOW VIEWS IN {q}")).await?;
        let functions = sql(ctx, wh, &format!("SHOW USER FUNCTIONS IN {q}")).await?;
        Ok::<_, ClientError>((tables, views, functions))
    }
    .await;
    let (tables, views, functions) = match listing {
        Ok(x) => x,
        Err(e) => {
            let name = format!("DATABASE {db}");
            ctx.found(Kind::HiveGrants, 1);
            ctx.client_failure(
                Kind::HiveGrants,
                &name,
                &name,
                &format!("listing database {db}"),
                e,
            );
            return Vec::new();
        }
    };
    let view_names: HashSet<String> = column_values(&views, &["viewName"], 1)
        .into_iter()
        .collect();
    let name_col = tables.column("tableName").unwrap_or(1);
    let temp_col = tables.column("isTemporary");
    for row in &tables.rows {
        let Some(t) = row.get(name_col).cloned().flatten() else {
            continue;
        };
        // Temporary views belong to a session, not to the metastore.
        if temp_col
            .and_then(|i| row.get(i).cloned().flatten())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            continue;
        }
        let is_view = view_names.contains(&t);
        let key = format!("{db}.{t}");
        let (ot, word) = if is_view {
            (HiveObjectType::View, "VIEW")
        } else {
            (HiveObjectType::Table, "TABLE")
        };
        out.push(HiveObject {
            t: ot,
            statement: format!("SHOW GRANTS ON {word} {}", quote_name(&key)),
            key,
        });
    }
    for f in column_values(&functions, &["function"], 0) {
        let name = f.rsplit('.').next().unwrap_or(&f).to_string();
        let key = format!("{db}.{name}");
        out.push(HiveObject {
            t: HiveObjectType::Function,
            statement: format!("SHOW GRANTS ON FUNCTION {}", quote_name(&key)),
            key,
        });
    }
    out
}

async fn export_hive_object(ctx: &Arc<Ctx>, wh: &str, o: HiveObject) {
    if ctx.is_stopped() {
        return;
    }
    let name = object_name(o.t, &o.key);
    if ctx.reuse(Kind::HiveGrants, &name) {
        ctx.found(Kind::HiveGrants, 1);
        return;
    }
    let res = match sql(ctx, wh, &o.statement).await {
        Ok(r) => r,
        Err(e) => {
            ctx.found(Kind::HiveGrants, 1);
            ctx.client_failure(Kind::HiveGrants, &name, &name, &o.statement, e);
            return;
        }
    };
    let grants = res.grants_about(o.t, &o.key);
    if grants.is_empty() {
        // Nothing granted and no owner recorded: nothing to carry.
        return;
    }
    ctx.found(Kind::HiveGrants, 1);
    let principals = grants
        .iter()
        .map(|g| format!("any:{}", g.principal))
        .collect();
    let resource = Resource::hive_grants(o.t, &o.key, &grants);
    let entry = DoneEntry {
        name: name.clone(),
        principals,
        ..DoneEntry::default()
    };
    commit(ctx, Kind::HiveGrants, name, entry, resource).await;
}

#[derive(Deserialize)]
struct Named {
    name: String,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    catalog_type: Option<String>,
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(default)]
    catalogs: Vec<Named>,
    #[serde(default)]
    schemas: Vec<Named>,
    #[serde(default)]
    tables: Vec<Named>,
    #[serde(default)]
    registered_models: Vec<Named>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// One Unity Catalog listing, every page; `field` picks the array.
async fn uc_list(
    ctx: &Ctx,
    route: &'static str,
    query: &[(&str, &str)],
    field: &str,
) -> Result<Vec<Named>, ClientError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = HashSet::new();
    loop {
        let mut call = Call::get(route).query("max_results", 0);
        for (k, v) in query {
            call = call.query(k, v);
        }
        let call = call.query_opt("page_token", token.as_deref());
        let describe = call.describe();
        let page: Page = ctx.client.transport().json(call).await?;
        out.extend(match field {
            "catalogs" => page.catalogs,
            "schemas" => page.schemas,
            "registered_models" => page.registered_models,
            _ => page.tables,
        });
        match page.next_page_token.filter(|t| !t.is_empty()) {
            Some(t) if seen.insert(t.clone()) => token = Some(t),
            Some(t) => {
                return Err(ClientError::Protocol {
                    call: describe,
                    message: format!("the page token `{t}` repeats"),
                })
            }
            None => return Ok(out),
        }
    }
}

/// Unity Catalog is absent (not enabled, or the workspace has no metastore).
fn no_unity(e: &ClientError) -> bool {
    e.api().is_some_and(|a| {
        matches!(
            a.error_code.as_deref(),
            Some("ENDPOINT_NOT_FOUND" | "FEATURE_DISABLED" | "METASTORE_DOES_NOT_EXIST")
        ) || a.status == 404
    })
}

/// Exports Unity Catalog grants on catalogs, schemas and tables.
pub async fn export_unity(ctx: Arc<Ctx>) {
    if !ctx.opts.wants(Kind::UcGrants) {
        return;
    }
    ctx.phase("Unity Catalog grants");
    let catalogs = match uc_list(&ctx, "/api/2.1/unity-catalog/catalogs", &[], "catalogs").await {
        Ok(c) => c,
        Err(e) if no_unity(&e) => {
            ctx.notice(format!(
                "Unity Catalog grants: none exported, the workspace has no Unity Catalog metastore ({})",
                reason(&e)
            ));
            return;
        }
        Err(e) => {
            ctx.found(Kind::UcGrants, 1);
            ctx.client_failure(Kind::UcGrants, "(every catalog)", "", "listing catalogs", e);
            return;
        }
    };
    let mut securables: BTreeMap<(String, String), ()> = BTreeMap::new();
    for c in catalogs {
        // The Hive metastore appears as a catalog; its grants are the legacy ones.
        if c.name == "hive_metastore" || c.catalog_type.as_deref() == Some("HIVE_METASTORE_CATALOG")
        {
            continue;
        }
        securables.insert(("catalog".into(), c.name.clone()), ());
        let schemas = match uc_list(
            &ctx,
            "/api/2.1/unity-catalog/schemas",
            &[("catalog_name", &c.name)],
            "schemas",
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                let name = format!("catalog {}", c.name);
                ctx.found(Kind::UcGrants, 1);
                ctx.client_failure(
                    Kind::UcGrants,
                    &name,
                    &name,
                    &format!("listing schemas of {}", c.name),
                    e,
                );
                continue;
            }
        };
        for s in schemas {
            if s.name == "information_schema" {
                continue;
            }
            let full = s
                .full_name
                .clone()
                .unwrap_or_else(|| format!("{}.{}", c.name, s.name));
            securables.insert(("schema".into(), full.clone()), ());
            match uc_list(
                &ctx,
                "/api/2.1/unity-catalog/tables",
                &[("catalog_name", &c.name), ("schema_name", &s.name)],
                "tables",
            )
            .await
            {
                Ok(tables) => {
                    for t in tables {
                        let tf = t.full_name.unwrap_or_else(|| format!("{full}.{}", t.name));
                        securables.insert(("table".into(), tf), ());
                    }
                }
                Err(e) => {
                    let name = format!("schema {full}");
                    ctx.found(Kind::UcGrants, 1);
                    ctx.client_failure(
                        Kind::UcGrants,
                        &name,
                        &name,
                        &format!("listing tables of {full}"),
                        e,
                    );
                }
            }
            // Registered models: their grants are those of the securable type `function`
            // (what Terraform's databricks_grants sends for a model).
            match uc_list(
                &ctx,
                "/api/2.1/unity-catalog/models",
                &[("catalog_name", &c.name), ("schema_name", &s.name)],
                "registered_models",
            )
            .await
            {
                Ok(models) => {
                    for m in models {
                        let mf = m.full_name.unwrap_or_else(|| format!("{full}.{}", m.name));
                        securables.insert(("function".into(), mf), ());
                    }
                }
                // A metastore without the model registry: no model grants to read.
                Err(e) if no_unity(&e) => {}
                Err(e) => {
                    let name = format!("schema {full}");
                    ctx.found(Kind::UcGrants, 1);
                    ctx.client_failure(
                        Kind::UcGrants,
                        &name,
                        &name,
                        &format!("listing registered models of {full}"),
                        e,
                    );
                }
            }
        }
    }
    let width = ctx.opts.concurrency.max(1);
    futures_util::stream::iter(securables.into_keys())
        .map(|(t, n)| {
            let ctx = Arc::clone(&ctx);
            async move { export_uc_securable(&ctx, &t, &n).await }
        })
        .buffer_unordered(width)
        .for_each(|_| async {})
        .await;
}

async fn export_uc_securable(ctx: &Arc<Ctx>, securable_type: &str, full_name: &str) {
    if ctx.is_stopped() {
        return;
    }
    let name = format!("{securable_type} {full_name}");
    if ctx.reuse(Kind::UcGrants, &name) {
        ctx.found(Kind::UcGrants, 1);
        return;
    }
    let grants: UcGrants = match ctx
        .client
        .unity()
        .get_grants(securable_type, full_name)
        .await
    {
        Ok(g) => g,
        Err(e) => {
            ctx.found(Kind::UcGrants, 1);
            ctx.client_failure(
                Kind::UcGrants,
                &name,
                &name,
                &format!("grants on {name}"),
                e,
            );
            return;
        }
    };
    if grants.privilege_assignments.is_empty() {
        return;
    }
    ctx.found(Kind::UcGrants, 1);
    let mut grants = grants;
    grants.privilege_assignments.sort();
    let principals = grants
        .privilege_assignments
        .iter()
        .map(|a| format!("any:{}", a.principal))
        .collect();
    let resource = Resource::uc_grants(&grants);
    let entry = DoneEntry {
        name: name.clone(),
        principals,
        ..DoneEntry::default()
    };
    commit(ctx, Kind::UcGrants, name, entry, resource).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_types() {
        let res = StatementResult {
            statement_id: "s".into(),
            columns: vec![
                "Principal".into(),
                "ActionType".into(),
                "ObjectType".into(),
                "ObjectKey".into(),
            ],
            rows: vec![
                vec![
                    Some("a".into()),
                    Some("OWN".into()),
                    Some("TABLE".into()),
                    Some("`db`.`v`".into()),
                ],
                vec![
                    Some("b".into()),
                    Some("USAGE".into()),
                    Some("DATABASE".into()),
                    Some("`db`".into()),
                ],
                vec![
                    Some("c".into()),
                    Some("SELECT".into()),
                    Some("TABLE".into()),
                    Some("`db`.`a``b`".into()),
                ],
            ],
        };
        let g = res.grants_about(HiveObjectType::View, "db.v");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].object_type, HiveObjectType::View);
        assert_eq!(res.grants_about(HiveObjectType::Database, "db").len(), 1);
        // The table `a`b`: its record holds its row, under its own name.
        let t = res.grants_about(HiveObjectType::Table, "db.a`b");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].principal, "c");
        assert_eq!(t[0].object_key, "db.a`b");
        assert_eq!(object_name(HiveObjectType::AnyFile, ""), "ANY_FILE");
        assert_eq!(object_name(HiveObjectType::Table, "db.t"), "TABLE db.t");
    }
}
