//! SQL: warehouses (list, get) and the Statement Execution API (`/api/2.0/sql/statements`:
//! submit, poll, result chunks, cancel) over a small engine for the legacy Hive metastore
//! table-ACL statements: `SHOW DATABASES|SCHEMAS`, `SHOW TABLES`, `SHOW VIEWS`, `SHOW
//! FUNCTIONS`, `SHOW GRANTS`, `GRANT`, `REVOKE`, `DENY`, `ALTER … OWNER TO` and `USE`.
//!
//! As on real warehouses, a statement that fails answers HTTP 200 with `status.state = FAILED`;
//! only a request the API itself rejects gets an HTTP error. `SHOW GRANTS` reports object types
//! and keys the way real warehouses do: `CATALOG$`, `DATABASE`, `TABLE` (views included),
//! `FUNCTION`, `ANY_FILE`, `ANONYMOUS_FUNCTION`, with backtick-quoted keys.

use std::sync::Arc;

use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::model::grants::{HiveGrant, HiveObjectType};

use super::error::{ApiError, ApiResult};
use super::extract::{self, mark, Body, Ctx, Fields};
use super::state::{HiveDatabase, Shared, State, Statement};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/sql/warehouses", get(list_warehouses))
        .route("/api/2.0/sql/warehouses/{id}", get(get_warehouse))
        .route("/api/2.0/sql/statements", post(execute))
        .route("/api/2.0/sql/statements/", post(execute))
        .route("/api/2.0/sql/statements/{id}", get(poll))
        .route(
            "/api/2.0/sql/statements/{id}/result/chunks/{index}",
            get(chunk),
        )
        .route("/api/2.0/sql/statements/{id}/cancel", post(cancel))
}

async fn list_warehouses(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    let all: Vec<Value> = st
        .compute
        .warehouses
        .iter()
        .map(|w| serde_json::to_value(w).unwrap_or_default())
        .collect();
    Ok(extract::json(json!({ "warehouses": all })))
}

async fn get_warehouse(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let st = ctx.state();
    let w = st
        .compute
        .warehouses
        .iter()
        .find(|w| w.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Warehouse {id} does not exist.")))?;
    Ok(extract::json(serde_json::to_value(w).unwrap_or_default()))
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word: keyword or identifier, case kept.
    Word(String),
    /// A backtick-quoted identifier.
    Quoted(String),
    /// A string literal.
    Str(String),
    Comma,
    Dot,
}

/// A statement failure: error class, SQL state and message.
#[derive(Debug, Clone)]
struct SqlError {
    class: &'static str,
    sql_state: &'static str,
    message: String,
}

fn syntax(near: &str) -> SqlError {
    SqlError {
        class: "PARSE_SYNTAX_ERROR",
        sql_state: "42601",
        message: format!("Syntax error at or near '{near}'."),
    }
}

fn lex(sql: &str) -> Result<Vec<Tok>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            ';' => {
                // Only trailing semicolons are allowed: one statement per request.
                if chars[i + 1..]
                    .iter()
                    .any(|c| !c.is_whitespace() && *c != ';')
                {
                    return Err(syntax(";"));
                }
                break;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '.' => {
                out.push(Tok::Dot);
                i += 1;
            }
            '`' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax("`")),
                        Some('`') if chars.get(i + 1) == Some(&'`') => {
                            s.push('`');
                            i += 2;
                        }
                        Some('`') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Quoted(s));
            }
            '\'' | '"' => {
                let q = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax(&q.to_string())),
                        Some('\\') if chars.get(i + 1).is_some() => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(c) if *c == q => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' || c == '*' || c == '@' => {
                let mut s = String::new();
                while let Some(&c) = chars.get(i) {
                    if c.is_alphanumeric()
                        || c == '_'
                        || c == '$'
                        || c == '*'
                        || c == '@'
                        || c == '-'
                    {
                        s.push(c);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(s));
            }
            other => return Err(syntax(&other.to_string())),
        }
    }
    Ok(out)
}

/// What a grant statement applies to.
#[derive(Debug, Clone, PartialEq)]
enum Securable {
    Catalog,
    Database(String),
    /// A table or view (`is_view` as written).
    Table(String, String, bool),
    Function(String, String),
    AnyFile,
    AnonymousFunction,
}

#[derive(Debug, Clone, PartialEq)]
enum Stmt {
    ShowDatabases(Option<String>),
    ShowTables(Option<String>, Option<String>),
    ShowViews(Option<String>, Option<String>),
    ShowFunctions(String, Option<String>, Option<String>),
    ShowGrants(Option<String>, Securable),
    Grant(Vec<String>, Securable, Vec<String>),
    Revoke(Vec<String>, Securable, Vec<String>),
    Deny(Vec<String>, Securable, Vec<String>),
    Owner(Securable, String),
    Use,
}

impl Stmt {
    fn is_mutating(&self) -> bool {
        matches!(
            self,
            Stmt::Grant(..) | Stmt::Revoke(..) | Stmt::Deny(..) | Stmt::Owner(..)
        )
    }
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    default_db: String,
}

const HMS_CATALOGS: [&str; 2] = ["hive_metastore", "spark_catalog"];

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn near(&self) -> String {
        match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            Some(Tok::Quoted(q)) => format!("`{q}`"),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Comma) => ",".into(),
            Some(Tok::Dot) => ".".into(),
            None => "end of input".into(),
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(syntax(&self.near()))
        }
    }

    fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(syntax(&self.near())),
        }
    }

    /// A dotted name, parts lowercased (metastore names are case-insensitive).
    fn name(&mut self) -> Result<Vec<String>, SqlError> {
        let mut parts = vec![self.ident()?.to_lowercase()];
        while self.peek() == Some(&Tok::Dot) {
            self.pos += 1;
            parts.push(self.ident()?.to_lowercase());
        }
        Ok(parts)
    }

    fn principal(&mut self) -> Result<String, SqlError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) | Some(Tok::Str(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(syntax(&self.near())),
        }
    }

    fn principals(&mut self) -> Result<Vec<String>, SqlError> {
        let mut out = vec![self.principal()?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            out.push(self.principal()?);
        }
        Ok(out)
    }

    fn end(&self) -> Result<(), SqlError> {
        if self.pos == self.toks.len() {
            Ok(())
        } else {
            Err(syntax(&self.near()))
        }
    }

    fn catalog_name(parts: &[String]) -> Result<(), SqlError> {
        match parts {
            [c] if HMS_CATALOGS.contains(&c.as_str()) => Ok(()),
            [c] => Err(SqlError {
                class: "NO_SUCH_CATALOG_EXCEPTION",
                sql_state: "42704",
                message: format!(
                    "Catalog '{c}' was not found: only the Hive metastore (hive_metastore) is served."
                ),
            }),
            _ => Err(syntax(&parts.join("."))),
        }
    }

    fn db_name(&self, parts: Vec<String>) -> Result<String, SqlError> {
        match parts.as_slice() {
            [db] => Ok(db.clone()),
            [c, db] => {
                Self::catalog_name(std::slice::from_ref(c))?;
                Ok(db.clone())
            }
            _ => Err(syntax(&parts.join("."))),
        }
    }

    fn object_name(&self, parts: Vec<String>) -> Result<(String, String), SqlError> {
        match parts.as_slice() {
            [t] => Ok((self.default_db.clone(), t.clone())),
            [db, t] => Ok((db.clone(), t.clone())),
            [c, db, t] => {
                Self::catalog_name(std::slice::from_ref(c))?;
                Ok((db.clone(), t.clone()))
            }
            _ => Err(syntax(&parts.join("."))),
        }
    }

    fn securable(&mut self) -> Result<Securable, SqlError> {
        if self.eat_kw("CATALOG") {
            if matches!(self.peek(), Some(Tok::Word(_)) | Some(Tok::Quoted(_))) {
                let n = self.name()?;
                Self::catalog_name(&n)?;
            }
            return Ok(Securable::Catalog);
        }
        if self.eat_kw("SCHEMA") || self.eat_kw("DATABASE") {
            let n = self.name()?;
            return Ok(Securable::Database(self.db_name(n)?));
        }
        if self.eat_kw("ANY") {
            self.expect_kw("FILE")?;
            return Ok(Securable::AnyFile);
        }
        if self.eat_kw("ANONYMOUS") {
            self.expect_kw("FUNCTION")?;
            return Ok(Securable::AnonymousFunction);
        }
        if self.eat_kw("FUNCTION") {
            let n = self.name()?;
            let (db, f) = self.object_name(n)?;
            return Ok(Securable::Function(db, f));
        }
        let is_view = if self.eat_kw("VIEW") {
            true
        } else {
            self.eat_kw("TABLE");
            false
        };
        let n = self.name()?;
        let (db, t) = self.object_name(n)?;
        Ok(Securable::Table(db, t, is_view))
    }

    /// `priv [, priv]…` up to `ON`.
    fn privileges(&mut self) -> Result<Vec<String>, SqlError> {
        let mut out = Vec::new();
        let mut words: Vec<String> = Vec::new();
        loop {
            match self.peek().cloned() {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ON") => break,
                Some(Tok::Word(w)) => {
                    words.push(w.to_ascii_uppercase());
                    self.pos += 1;
                }
                Some(Tok::Comma) if !words.is_empty() => {
                    out.push(words.join(" "));
                    words.clear();
                    self.pos += 1;
                }
                _ => return Err(syntax(&self.near())),
            }
        }
        if words.is_empty() {
            return Err(syntax("ON"));
        }
        out.push(words.join(" "));
        Ok(out
            .into_iter()
            .map(|p| {
                if p == "ALL" {
                    "ALL PRIVILEGES".to_string()
                } else {
                    p
                }
            })
            .collect())
    }

    /// `[FROM|IN db] [[LIKE] 'pattern']`.
    fn scope_and_pattern(
        &mut self,
        db: bool,
    ) -> Result<(Option<String>, Option<String>), SqlError> {
        let mut scope = None;
        if self.eat_kw("FROM") || self.eat_kw("IN") {
            let n = self.name()?;
            scope = Some(if db {
                self.db_name(n)?
            } else {
                Self::catalog_name(&n)?;
                String::new()
            });
        }
        self.eat_kw("LIKE");
        let pattern = match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Some(s)
            }
            _ => None,
        };
        Ok((scope, pattern))
    }

    fn statement(&mut self) -> Result<Stmt, SqlError> {
        let s = if self.eat_kw("SHOW") {
            if self.eat_kw("DATABASES") || self.eat_kw("SCHEMAS") {
                let (_, pat) = self.scope_and_pattern(false)?;
                Stmt::ShowDatabases(pat)
            } else if self.eat_kw("TABLES") {
                let (db, pat) = self.scope_and_pattern(true)?;
                Stmt::ShowTables(db, pat)
            } else if self.eat_kw("VIEWS") {
                let (db, pat) = self.scope_and_pattern(true)?;
                Stmt::ShowViews(db, pat)
            } else if self.peek_kw("USER")
                || self.peek_kw("SYSTEM")
                || self.peek_kw("ALL")
                || self.peek_kw("FUNCTIONS")
            {
                let kind = if self.peek_kw("FUNCTIONS") {
                    "ALL".to_string()
                } else {
                    self.ident()?.to_ascii_uppercase()
                };
                self.expect_kw("FUNCTIONS")?;
                let (db, pat) = self.scope_and_pattern(true)?;
                Stmt::ShowFunctions(kind, db, pat)
            } else if self.eat_kw("GRANTS") || self.eat_kw("GRANT") {
                let principal = if self.peek_kw("ON") {
                    None
                } else {
                    Some(self.principal()?)
                };
                self.expect_kw("ON")?;
                Stmt::ShowGrants(principal, self.securable()?)
            } else {
                return Err(syntax(&self.near()));
            }
        } else if self.eat_kw("GRANT") {
            let p = self.privileges()?;
            self.expect_kw("ON")?;
            let on = self.securable()?;
            self.expect_kw("TO")?;
            Stmt::Grant(p, on, self.principals()?)
        } else if self.eat_kw("DENY") {
            let p = self.privileges()?;
            self.expect_kw("ON")?;
            let on = self.securable()?;
            self.expect_kw("TO")?;
            Stmt::Deny(p, on, self.principals()?)
        } else if self.eat_kw("REVOKE") {
            let p = self.privileges()?;
            self.expect_kw("ON")?;
            let on = self.securable()?;
            self.expect_kw("FROM")?;
            Stmt::Revoke(p, on, self.principals()?)
        } else if self.eat_kw("ALTER") {
            let on = if self.peek_kw("CATALOG")
                || self.peek_kw("SCHEMA")
                || self.peek_kw("DATABASE")
                || self.peek_kw("TABLE")
                || self.peek_kw("VIEW")
                || self.peek_kw("FUNCTION")
            {
                self.securable()?
            } else {
                return Err(syntax(&self.near()));
            };
            self.eat_kw("SET");
            self.expect_kw("OWNER")?;
            self.expect_kw("TO")?;
            Stmt::Owner(on, self.principal()?)
        } else if self.eat_kw("USE") {
            if self.eat_kw("CATALOG") {
                let n = self.name()?;
                Self::catalog_name(&n)?;
            } else {
                self.eat_kw("SCHEMA");
                self.eat_kw("DATABASE");
                self.name()?;
            }
            Stmt::Use
        } else {
            return Err(SqlError {
                class: "UNSUPPORTED_STATEMENT",
                sql_state: "0A000",
                message: format!(
                    "The dbxport emulator's warehouse runs only SHOW, GRANT, REVOKE, DENY, ALTER … OWNER TO and USE statements; got '{}'.",
                    self.near()
                ),
            });
        };
        self.end()?;
        Ok(s)
    }
}

fn parse(sql: &str, default_db: &str) -> Result<Stmt, SqlError> {
    let toks = lex(sql)?;
    Parser {
        toks: &toks,
        pos: 0,
        default_db: default_db.to_lowercase(),
    }
    .statement()
}

/// True when `stmt` would change grants or owners, judged from its first word, so that even a
/// statement that fails is counted as the attempt it was.
fn first_word_mutates(sql: &str) -> bool {
    let w = sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(w.as_str(), "GRANT" | "REVOKE" | "DENY" | "ALTER")
}

// ---------------------------------------------------------------------------------------------
// Execution.

/// Spark's SHOW pattern: `*` matches anything, `|` separates alternatives, case-insensitive.
fn like(pattern: Option<&str>, name: &str) -> bool {
    let Some(p) = pattern else { return true };
    // Lowercase both sides: the crate's regex has no Unicode case folding for `(?i)`.
    let name = name.to_lowercase();
    p.to_lowercase().split('|').any(|alt| {
        let re = format!(
            "^{}$",
            alt.trim()
                .split('*')
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(".*")
        );
        regex::Regex::new(&re).is_ok_and(|r| r.is_match(&name))
    })
}

fn quote(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| format!("`{}`", p.replace('`', "``")))
        .collect::<Vec<_>>()
        .join(".")
}

fn no_schema(db: &str) -> SqlError {
    SqlError {
        class: "SCHEMA_NOT_FOUND",
        sql_state: "42704",
        message: format!("The schema `{db}` cannot be found. Verify the spelling and correctness of the schema and catalog."),
    }
}

fn database<'a>(st: &'a State, db: &str) -> Result<&'a HiveDatabase, SqlError> {
    st.hive.databases.get(db).ok_or_else(|| no_schema(db))
}

/// Checks that the object exists; returns its grant type and key (`db.name`).
fn target(st: &State, on: &Securable) -> Result<(HiveObjectType, String), SqlError> {
    Ok(match on {
        Securable::Catalog => (HiveObjectType::Catalog, String::new()),
        Securable::AnyFile => (HiveObjectType::AnyFile, String::new()),
        Securable::AnonymousFunction => (HiveObjectType::AnonymousFunction, String::new()),
        Securable::Database(db) => {
            database(st, db)?;
            (HiveObjectType::Database, db.clone())
        }
        Securable::Table(db, t, _) => {
            if !database(st, db)?.tables.contains_key(t) {
                return Err(SqlError {
                    class: "TABLE_OR_VIEW_NOT_FOUND",
                    sql_state: "42P01",
                    message: format!("The table or view {} cannot be found. Verify the spelling and correctness of the schema and catalog.", quote(&[db, t])),
                });
            }
            (HiveObjectType::Table, format!("{db}.{t}"))
        }
        Securable::Function(db, f) => {
            if !database(st, db)?.functions.contains_key(f) {
                return Err(SqlError {
                    class: "ROUTINE_NOT_FOUND",
                    sql_state: "42883",
                    message: format!("The function {} cannot be found.", quote(&[db, f])),
                });
            }
            (HiveObjectType::Function, format!("{db}.{f}"))
        }
    })
}

/// The privileges each object type accepts.
fn valid_privileges(t: HiveObjectType) -> &'static [&'static str] {
    match t {
        HiveObjectType::Catalog => &[
            "SELECT",
            "CREATE",
            "MODIFY",
            "USAGE",
            "READ_METADATA",
            "CREATE_NAMED_FUNCTION",
            "MODIFY_CLASSPATH",
            "ALL PRIVILEGES",
        ],
        HiveObjectType::Database => &[
            "SELECT",
            "CREATE",
            "MODIFY",
            "USAGE",
            "READ_METADATA",
            "CREATE_NAMED_FUNCTION",
            "ALL PRIVILEGES",
        ],
        HiveObjectType::Table | HiveObjectType::View => {
            &["SELECT", "MODIFY", "READ_METADATA", "ALL PRIVILEGES"]
        }
        HiveObjectType::Function => &["SELECT", "ALL PRIVILEGES"],
        HiveObjectType::AnyFile => &["SELECT", "MODIFY", "ALL PRIVILEGES"],
        HiveObjectType::AnonymousFunction => &["SELECT", "ALL PRIVILEGES"],
    }
}

fn type_word(t: HiveObjectType) -> &'static str {
    match t {
        HiveObjectType::Catalog => "CATALOG$",
        HiveObjectType::Database => "DATABASE",
        HiveObjectType::Table | HiveObjectType::View => "TABLE",
        HiveObjectType::Function => "FUNCTION",
        HiveObjectType::AnyFile => "ANY_FILE",
        HiveObjectType::AnonymousFunction => "ANONYMOUS_FUNCTION",
    }
}

fn key_text(t: HiveObjectType, key: &str) -> String {
    match t {
        HiveObjectType::Catalog | HiveObjectType::AnyFile | HiveObjectType::AnonymousFunction => {
            String::new()
        }
        _ => quote(&key.split('.').collect::<Vec<_>>()),
    }
}

fn check_principals(st: &State, principals: &[String]) -> Result<(), SqlError> {
    for p in principals {
        if !st.principals.name_exists(p) {
            return Err(SqlError {
                class: "PRINCIPAL_DOES_NOT_EXIST",
                sql_state: "42704",
                message: format!("Could not find principal with name {p}."),
            });
        }
    }
    Ok(())
}

fn check_privileges(t: HiveObjectType, privs: &[String]) -> Result<(), SqlError> {
    for p in privs {
        if !valid_privileges(t).contains(&p.as_str()) {
            return Err(SqlError {
                class: "INVALID_PRIVILEGE",
                sql_state: "42852",
                message: format!(
                    "Privilege {p} is not valid for {}; valid privileges are {}.",
                    type_word(t).trim_end_matches('$'),
                    valid_privileges(t).join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// The owner recorded for an object, if any.
fn owner_of(st: &State, t: HiveObjectType, key: &str) -> Option<String> {
    let (db, name) = key.split_once('.').unwrap_or((key, ""));
    match t {
        HiveObjectType::Catalog => st.hive.catalog_owner.clone(),
        HiveObjectType::Database => st.hive.databases.get(key).and_then(|d| d.owner.clone()),
        HiveObjectType::Table | HiveObjectType::View => st
            .hive
            .databases
            .get(db)
            .and_then(|d| d.tables.get(name))
            .and_then(|t| t.owner.clone()),
        HiveObjectType::Function => st
            .hive
            .databases
            .get(db)
            .and_then(|d| d.functions.get(name))
            .and_then(|o| o.clone()),
        _ => None,
    }
}

/// Result rows: column names and string cells.
type Rows = (Vec<&'static str>, Vec<Vec<Option<String>>>);

fn show_grants(st: &State, principal: Option<&str>, on: &Securable) -> Result<Rows, SqlError> {
    let (t, key) = target(st, on)?;
    let mut objects = vec![(t, key.clone())];
    match t {
        HiveObjectType::Table | HiveObjectType::View | HiveObjectType::Function => {
            let db = key.split_once('.').map(|(d, _)| d).unwrap_or("");
            objects.push((HiveObjectType::Database, db.to_string()));
            objects.push((HiveObjectType::Catalog, String::new()));
        }
        HiveObjectType::Database => objects.push((HiveObjectType::Catalog, String::new())),
        _ => {}
    }
    let mut rows = Vec::new();
    for (ot, ok) in objects {
        let mut here: Vec<(String, String)> = Vec::new();
        if let Some(o) = owner_of(st, ot, &ok) {
            here.push((o, "OWN".to_string()));
        }
        let mut grants: Vec<&HiveGrant> = st
            .hive
            .grants
            .iter()
            .filter(|g| g.object_type == ot && g.object_key == ok)
            .collect();
        grants.sort();
        here.extend(
            grants
                .iter()
                .map(|g| (g.principal.clone(), g.action_type.clone())),
        );
        for (p, a) in here {
            if principal.is_some_and(|f| f != p) {
                continue;
            }
            rows.push(vec![
                Some(p),
                Some(a),
                Some(type_word(ot).to_string()),
                Some(key_text(ot, &ok)),
            ]);
        }
    }
    Ok((
        vec!["principal", "actionType", "objectType", "objectKey"],
        rows,
    ))
}

fn run(st: &mut State, stmt: Stmt) -> Result<Rows, SqlError> {
    let none = || (Vec::<&'static str>::new(), Vec::new());
    match stmt {
        Stmt::Use => Ok(none()),
        Stmt::ShowDatabases(pat) => Ok((
            vec!["databaseName"],
            st.hive
                .databases
                .keys()
                .filter(|d| like(pat.as_deref(), d))
                .map(|d| vec![Some(d.clone())])
                .collect(),
        )),
        Stmt::ShowTables(db, pat) => {
            let db = db.unwrap_or_else(|| "default".into());
            let d = database(st, &db)?;
            Ok((
                vec!["database", "tableName", "isTemporary"],
                d.tables
                    .keys()
                    .filter(|t| like(pat.as_deref(), t))
                    .map(|t| vec![Some(db.clone()), Some(t.clone()), Some("false".into())])
                    .collect(),
            ))
        }
        Stmt::ShowViews(db, pat) => {
            let db = db.unwrap_or_else(|| "default".into());
            let d = database(st, &db)?;
            Ok((
                vec!["namespace", "viewName", "isTemporary"],
                d.tables
                    .iter()
                    .filter(|(t, v)| v.is_view && like(pat.as_deref(), t))
                    .map(|(t, _)| vec![Some(db.clone()), Some(t.clone()), Some("false".into())])
                    .collect(),
            ))
        }
        Stmt::ShowFunctions(kind, db, pat) => {
            let mut rows = Vec::new();
            if kind != "SYSTEM" {
                let dbs: Vec<String> = match db {
                    Some(d) => {
                        database(st, &d)?;
                        vec![d]
                    }
                    None => vec!["default".to_string()],
                };
                for d in dbs {
                    if let Some(hd) = st.hive.databases.get(&d) {
                        for f in hd.functions.keys() {
                            if like(pat.as_deref(), f) {
                                rows.push(vec![Some(format!("hive_metastore.{d}.{f}"))]);
                            }
                        }
                    }
                }
            }
            Ok((vec!["function"], rows))
        }
        Stmt::ShowGrants(p, on) => show_grants(st, p.as_deref(), &on),
        Stmt::Grant(privs, on, principals) => {
            change(st, &privs, &on, &principals, "")?;
            Ok(none())
        }
        Stmt::Deny(privs, on, principals) => {
            change(st, &privs, &on, &principals, "DENIED_")?;
            Ok(none())
        }
        Stmt::Revoke(privs, on, principals) => {
            let (t, key) = target(st, &on)?;
            check_privileges(t, &privs)?;
            let all = privs.iter().any(|p| p == "ALL PRIVILEGES");
            st.hive.grants.retain(|g| {
                let hit =
                    g.object_type == t && g.object_key == key && principals.contains(&g.principal);
                let base = g
                    .action_type
                    .strip_prefix("DENIED_")
                    .unwrap_or(&g.action_type);
                !(hit && (all || privs.iter().any(|p| p == base)))
            });
            Ok(none())
        }
        Stmt::Owner(on, principal) => {
            let (t, key) = target(st, &on)?;
            check_principals(st, std::slice::from_ref(&principal))?;
            let (db, name) = key.split_once('.').unwrap_or((key.as_str(), ""));
            match t {
                HiveObjectType::Catalog => st.hive.catalog_owner = Some(principal),
                HiveObjectType::Database => {
                    if let Some(d) = st.hive.databases.get_mut(db) {
                        d.owner = Some(principal);
                    }
                }
                HiveObjectType::Table | HiveObjectType::View => {
                    if let Some(t) = st
                        .hive
                        .databases
                        .get_mut(db)
                        .and_then(|d| d.tables.get_mut(name))
                    {
                        t.owner = Some(principal);
                    }
                }
                HiveObjectType::Function => {
                    if let Some(f) = st
                        .hive
                        .databases
                        .get_mut(db)
                        .and_then(|d| d.functions.get_mut(name))
                    {
                        *f = Some(principal);
                    }
                }
                _ => return Err(syntax("OWNER")),
            }
            Ok(none())
        }
    }
}

fn change(
    st: &mut State,
    privs: &[String],
    on: &Securable,
    principals: &[String],
    prefix: &str,
) -> Result<(), SqlError> {
    let (t, key) = target(st, on)?;
    check_privileges(t, privs)?;
    check_principals(st, principals)?;
    for p in principals {
        for a in privs {
            let g = HiveGrant {
                principal: p.clone(),
                action_type: format!("{prefix}{a}"),
                object_type: t,
                object_key: key.clone(),
            };
            if !st.hive.grants.contains(&g) {
                st.hive.grants.push(g);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The Statement Execution API.

fn parse_wait(s: Option<&str>) -> Result<u32, ApiError> {
    let Some(s) = s else { return Ok(10) };
    let secs: u32 = s
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            ApiError::invalid(format!("Invalid wait_timeout {s}: use 0s or 5s to 50s"))
        })?;
    if secs != 0 && !(5..=50).contains(&secs) {
        return Err(ApiError::invalid(format!(
            "Invalid wait_timeout {s}: use 0s or 5s to 50s"
        )));
    }
    Ok(secs)
}

/// Builds the terminal response and chunks of a statement.
fn build_result(
    id: &str,
    outcome: Result<Rows, SqlError>,
    row_limit: Option<usize>,
    chunk_rows: usize,
) -> (Value, Vec<Value>) {
    let (cols, mut rows) = match outcome {
        Ok(r) => r,
        Err(e) => {
            return (
                json!({
                    "statement_id": id,
                    "status": {
                        "state": "FAILED",
                        "error": {"error_code": "BAD_REQUEST", "message": format!("[{}] {}", e.class, e.message)},
                        "sql_state": e.sql_state,
                    }
                }),
                Vec::new(),
            )
        }
    };
    let mut truncated = false;
    if let Some(l) = row_limit {
        if rows.len() > l {
            rows.truncate(l);
            truncated = true;
        }
    }
    let columns: Vec<Value> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"name": c, "position": i, "type_name": "STRING", "type_text": "STRING"})
        })
        .collect();
    let n_chunks = rows.len().div_ceil(chunk_rows);
    let mut chunks = Vec::new();
    let mut infos = Vec::new();
    for (i, part) in rows.chunks(chunk_rows).enumerate() {
        let offset = i * chunk_rows;
        infos.push(json!({"chunk_index": i, "row_offset": offset, "row_count": part.len()}));
        let mut c = Map::new();
        c.insert("chunk_index".into(), json!(i));
        c.insert("row_offset".into(), json!(offset));
        c.insert("row_count".into(), json!(part.len()));
        c.insert("data_array".into(), json!(part));
        if i + 1 < n_chunks {
            c.insert("next_chunk_index".into(), json!(i + 1));
            c.insert(
                "next_chunk_internal_link".into(),
                json!(format!(
                    "/api/2.0/sql/statements/{id}/result/chunks/{}",
                    i + 1
                )),
            );
        }
        chunks.push(Value::Object(c));
    }
    let mut resp = json!({
        "statement_id": id,
        "status": {"state": "SUCCEEDED"},
        "manifest": {
            "format": "JSON_ARRAY",
            "schema": {"column_count": cols.len(), "columns": columns},
            "total_chunk_count": n_chunks,
            "total_row_count": rows.len(),
            "chunks": infos,
            "truncated": truncated,
        },
    });
    if let Some(first) = chunks.first() {
        resp["result"] = first.clone();
    }
    (resp, chunks)
}

async fn execute(ctx: Ctx, Body(b): Body) -> ApiResult {
    // Counted by what the statement would do, even when the request is refused.
    let mutating = b
        .opt_str("statement")
        .ok()
        .flatten()
        .is_some_and(first_word_mutates);
    match submit(ctx, b).await {
        Ok(r) => Ok(r),
        Err(e) => Ok(mark(e.into_response(), mutating)),
    }
}

async fn submit(ctx: Ctx, b: Map<String, Value>) -> ApiResult {
    let sql = b.req_str("statement")?.to_string();
    let warehouse = b.req_str("warehouse_id")?.to_string();
    let wait = parse_wait(b.opt_str("wait_timeout")?)?;
    match b.opt_str("disposition")? {
        None | Some("INLINE") => {}
        Some(d) => {
            return Err(ApiError::invalid(format!(
                "disposition {d} is not supported by the dbxport emulator; use INLINE"
            )))
        }
    }
    match b.opt_str("format")? {
        None | Some("JSON_ARRAY") => {}
        Some(f) => {
            return Err(ApiError::invalid(format!(
                "format {f} requires the EXTERNAL_LINKS disposition; use JSON_ARRAY"
            )))
        }
    }
    if let Some(c) = b.opt_str("catalog")? {
        if !HMS_CATALOGS.contains(&c) {
            return Err(ApiError::invalid(format!(
                "Catalog {c} is not served by the dbxport emulator; only hive_metastore is"
            )));
        }
    }
    let row_limit = b.opt_i64("row_limit")?.map(|l| l.max(0) as usize);
    let default_db = b.opt_str("schema")?.unwrap_or("default").to_string();
    let chunk_rows = ctx.shared.settings.sql_chunk_rows;
    let mut st = ctx.state();
    if !st.compute.warehouses.iter().any(|w| w.id == warehouse) {
        return Err(ApiError::not_found(format!(
            "Warehouse {warehouse} does not exist."
        )));
    }
    let id = st.next_uuid();
    let parsed = parse(&sql, &default_db);
    let mutating = parsed
        .as_ref()
        .map(Stmt::is_mutating)
        .unwrap_or_else(|_| first_word_mutates(&sql));
    let outcome = parsed.and_then(|s| run(&mut st, s));
    let (response, chunks) = build_result(&id, outcome, row_limit, chunk_rows);
    let pending = wait == 0;
    st.remember_statement(
        id.clone(),
        Statement {
            response: response.clone(),
            chunks,
            pending_polls: u32::from(pending),
            canceled: false,
        },
    );
    let body = if pending {
        json!({"statement_id": id, "status": {"state": "PENDING"}})
    } else {
        response
    };
    Ok(mark(extract::json(body), mutating))
}

fn unknown_statement(id: &str) -> ApiError {
    ApiError::not_found(format!("Statement {id} does not exist."))
}

async fn poll(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let mut st = ctx.state();
    let s = st
        .statements
        .get_mut(&id)
        .ok_or_else(|| unknown_statement(&id))?;
    if s.canceled {
        return Ok(extract::json(
            json!({"statement_id": id, "status": {"state": "CANCELED"}}),
        ));
    }
    if s.pending_polls > 0 {
        s.pending_polls -= 1;
        return Ok(extract::json(
            json!({"statement_id": id, "status": {"state": "RUNNING"}}),
        ));
    }
    Ok(extract::json(s.response.clone()))
}

async fn chunk(ctx: Ctx, Path((id, index)): Path<(String, String)>) -> ApiResult {
    let st = ctx.state();
    let s = st
        .statements
        .get(&id)
        .ok_or_else(|| unknown_statement(&id))?;
    let i: usize = index
        .parse()
        .map_err(|_| ApiError::invalid(format!("Invalid chunk index {index}")))?;
    if s.pending_polls > 0 || s.canceled {
        return Err(ApiError::bad_request(format!(
            "Statement {id} has no result yet"
        )));
    }
    let c = s.chunks.get(i).ok_or_else(|| {
        ApiError::invalid(format!(
            "Chunk index {i} is out of range for statement {id}"
        ))
    })?;
    Ok(extract::json(c.clone()))
}

async fn cancel(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let mut st = ctx.state();
    let s = st
        .statements
        .get_mut(&id)
        .ok_or_else(|| unknown_statement(&id))?;
    if s.pending_polls > 0 {
        s.canceled = true;
    }
    Ok(mark(extract::empty(), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Stmt {
        parse(s, "default").unwrap_or_else(|e| panic!("{s}: {}", e.message))
    }

    #[test]
    fn parses_grant_statements() {
        assert_eq!(
            p("GRANT SELECT, READ_METADATA ON TABLE `sales`.`orders` TO `data eng`, `bob@x.org`;"),
            Stmt::Grant(
                vec!["SELECT".into(), "READ_METADATA".into()],
                Securable::Table("sales".into(), "orders".into(), false),
                vec!["data eng".into(), "bob@x.org".into()]
            )
        );
        assert_eq!(
            p("show grants `a@b` on hive_metastore.sales.orders"),
            Stmt::ShowGrants(
                Some("a@b".into()),
                Securable::Table("sales".into(), "orders".into(), false)
            )
        );
        assert_eq!(
            p("SHOW GRANT ON CATALOG"),
            Stmt::ShowGrants(None, Securable::Catalog)
        );
        assert_eq!(
            p("REVOKE ALL PRIVILEGES ON ANY FILE FROM `users`"),
            Stmt::Revoke(
                vec!["ALL PRIVILEGES".into()],
                Securable::AnyFile,
                vec!["users".into()]
            )
        );
        assert_eq!(
            p("ALTER SCHEMA hive_metastore.sales OWNER TO `admins`"),
            Stmt::Owner(Securable::Database("sales".into()), "admins".into())
        );
        assert_eq!(
            p("DENY SELECT ON VIEW v TO interns"),
            Stmt::Deny(
                vec!["SELECT".into()],
                Securable::Table("default".into(), "v".into(), true),
                vec!["interns".into()]
            )
        );
        assert_eq!(
            p("SHOW USER FUNCTIONS FROM hive_metastore.sales LIKE 'm*'"),
            Stmt::ShowFunctions("USER".into(), Some("sales".into()), Some("m*".into()))
        );
        assert_eq!(
            p("SHOW DATABASES FROM hive_metastore"),
            Stmt::ShowDatabases(None)
        );
        assert_eq!(p("USE CATALOG hive_metastore"), Stmt::Use);
    }

    #[test]
    fn refuses_bad_statements() {
        for bad in [
            "SELECT 1",
            "GRANT ON TABLE t TO x",
            "GRANT SELECT ON TABLE t",
            "SHOW GRANTS ON TABLE main.a.b",
            "GRANT SELECT ON TABLE t TO x; DROP TABLE t",
            "SHOW TABLES IN `unterminated",
        ] {
            assert!(parse(bad, "default").is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns() {
        assert!(like(Some("sa*|x"), "sales"));
        assert!(like(Some("X"), "x"));
        assert!(!like(Some("a.c"), "abc"));
        assert!(like(None, "anything"));
    }
}
