//! Table access control: legacy Hive metastore grants (SQL) and Unity Catalog grants (REST).

use serde::{Deserialize, Serialize};

/// What a legacy Hive metastore grant applies to, as `SHOW GRANTS` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HiveObjectType {
    /// The whole catalog.
    Catalog,
    /// A database (schema).
    Database,
    /// A table.
    Table,
    /// A view.
    View,
    /// A function.
    Function,
    /// `ANY FILE`.
    AnyFile,
    /// `ANONYMOUS FUNCTION`.
    AnonymousFunction,
}

impl HiveObjectType {
    /// The keyword used in `GRANT … ON <keyword> <key>`.
    pub fn sql_keyword(self) -> &'static str {
        match self {
            HiveObjectType::Catalog => "CATALOG",
            HiveObjectType::Database => "SCHEMA",
            HiveObjectType::Table => "TABLE",
            HiveObjectType::View => "VIEW",
            HiveObjectType::Function => "FUNCTION",
            HiveObjectType::AnyFile => "ANY FILE",
            HiveObjectType::AnonymousFunction => "ANONYMOUS FUNCTION",
        }
    }

    /// Parses the `objectType` column of `SHOW GRANTS` (case-insensitive; `SCHEMA` = `DATABASE`;
    /// real warehouses report the catalog as `CATALOG$`).
    pub fn parse(s: &str) -> Option<HiveObjectType> {
        Some(
            match s.trim().to_ascii_uppercase().replace(' ', "_").as_str() {
                "CATALOG" | "CATALOG$" => HiveObjectType::Catalog,
                "DATABASE" | "SCHEMA" => HiveObjectType::Database,
                "TABLE" => HiveObjectType::Table,
                "VIEW" => HiveObjectType::View,
                "FUNCTION" => HiveObjectType::Function,
                "ANY_FILE" => HiveObjectType::AnyFile,
                "ANONYMOUS_FUNCTION" => HiveObjectType::AnonymousFunction,
                _ => return None,
            },
        )
    }
}

/// One row of `SHOW GRANTS`: a privilege (or `OWN`, or `DENIED_<priv>`) held on an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HiveGrant {
    /// User, group or service principal.
    pub principal: String,
    /// `SELECT`, `MODIFY`, `OWN`, `DENIED_SELECT`, …
    pub action_type: String,
    /// What the grant is on.
    pub object_type: HiveObjectType,
    /// The object's name (`db`, `db.table`, empty for catalog / any file).
    pub object_key: String,
}

/// The statement that replays one [`HiveGrant`]: `GRANT`, `DENY` or `ALTER … OWNER TO`.
pub fn replay_statement(g: &HiveGrant) -> String {
    let on = match g.object_type {
        HiveObjectType::Catalog | HiveObjectType::AnyFile | HiveObjectType::AnonymousFunction => {
            g.object_type.sql_keyword().to_string()
        }
        t => format!("{} {}", t.sql_keyword(), quote_name(&g.object_key)),
    };
    let who = format!("`{}`", g.principal.replace('`', "``"));
    // Action types are SQL keywords as they are (`READ_METADATA`, `CREATE_NAMED_FUNCTION`);
    // only `ALL PRIVILEGES` is two words, and it is reported with its space.
    if g.action_type == "OWN" {
        format!("ALTER {on} OWNER TO {who}")
    } else if let Some(p) = g.action_type.strip_prefix("DENIED_") {
        format!("DENY {p} ON {on} TO {who}")
    } else {
        format!("GRANT {} ON {on} TO {who}", g.action_type)
    }
}

/// Quotes each dot-separated part of a name with backticks.
pub fn quote_name(key: &str) -> String {
    key.split('.')
        .map(|p| format!("`{}`", p.trim_matches('`').replace('`', "``")))
        .collect::<Vec<_>>()
        .join(".")
}

/// The plain dotted name of a `SHOW GRANTS` `objectKey`, which real warehouses quote with
/// backticks (`` `sales`.`orders` ``): `sales.orders`.
pub fn unquote_key(key: &str) -> String {
    let mut out = String::new();
    let mut chars = key.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                out.push('`');
            }
            '`' => quoted = !quoted,
            c => out.push(c),
        }
    }
    out
}

/// The four columns of a `SHOW GRANTS` answer, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantColumns {
    /// `Principal`.
    pub principal: usize,
    /// `ActionType`.
    pub action_type: usize,
    /// `ObjectType`.
    pub object_type: usize,
    /// `ObjectKey`.
    pub object_key: usize,
}

impl GrantColumns {
    /// Finds the columns by name. Databricks answers `Principal`, `ActionType`, `ObjectType`,
    /// `ObjectKey`; other runtimes and Hive-style tools spell them `actionType` or
    /// `action_type`. Names are matched ignoring case and underscores. `None` when one is
    /// missing.
    pub fn find(columns: &[String]) -> Option<GrantColumns> {
        let norm = |s: &str| s.replace(['_', ' '], "").to_ascii_lowercase();
        let col = |names: &[&str]| {
            columns
                .iter()
                .position(|c| names.iter().any(|n| norm(c) == *n))
        };
        Some(GrantColumns {
            principal: col(&["principal", "principalname"])?,
            action_type: col(&["actiontype"])?,
            object_type: col(&["objecttype"])?,
            object_key: col(&["objectkey"])?,
        })
    }
}

/// The object type as `SHOW GRANTS` reports it: views are reported as tables.
pub fn shown_type(t: HiveObjectType) -> HiveObjectType {
    match t {
        HiveObjectType::View => HiveObjectType::Table,
        other => other,
    }
}

/// The key of a grant's object for comparisons: the plain dotted name (see [`unquote_key`]),
/// lowercase (the Hive metastore folds names), without a leading `hive_metastore.`, and empty
/// for the objects that have no name (catalog, `ANY FILE`, `ANONYMOUS FUNCTION`).
pub fn compare_key(t: HiveObjectType, plain_key: &str) -> String {
    if matches!(
        t,
        HiveObjectType::Catalog | HiveObjectType::AnyFile | HiveObjectType::AnonymousFunction
    ) {
        return String::new();
    }
    let k = plain_key.to_lowercase();
    k.strip_prefix("hive_metastore.")
        .map(str::to_string)
        .unwrap_or(k)
}

/// Parses one `SHOW GRANTS` row into a grant: the principal as given, the action type
/// uppercase, the object type parsed (`CATALOG$` included), the object key unquoted
/// ([`unquote_key`]). `None` for a row whose object type is not known.
pub fn parse_row(cols: GrantColumns, row: &[Option<String>]) -> Option<HiveGrant> {
    let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let object_type = HiveObjectType::parse(cell(cols.object_type).trim())?;
    Some(HiveGrant {
        principal: cell(cols.principal),
        action_type: cell(cols.action_type).trim().to_uppercase(),
        object_type,
        object_key: unquote_key(cell(cols.object_key).trim()),
    })
}

/// The grants of a `SHOW GRANTS` answer (`columns`, `rows`) about the object `(t, key)`
/// itself: the answer for a table also lists its database's and the catalog's rows, which
/// belong to those objects. `key` is the plain dotted name. The grants come back sorted,
/// without repeats, with the asked type and key (a view's rows say `TABLE`). Empty when the
/// answer lacks one of the four columns.
pub fn rows_about(
    columns: &[String],
    rows: &[Vec<Option<String>>],
    t: HiveObjectType,
    key: &str,
) -> Vec<HiveGrant> {
    let Some(cols) = GrantColumns::find(columns) else {
        return Vec::new();
    };
    let want = (shown_type(t), compare_key(t, key));
    let mut out: Vec<HiveGrant> = rows
        .iter()
        .filter_map(|r| parse_row(cols, r))
        .filter(|g| {
            (
                shown_type(g.object_type),
                compare_key(g.object_type, &g.object_key),
            ) == want
        })
        .map(|g| HiveGrant {
            object_type: t,
            object_key: key.to_string(),
            ..g
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One principal's privileges on a Unity Catalog securable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PrivilegeAssignment {
    /// Principal.
    pub principal: String,
    /// Privileges, e.g. `USE_CATALOG`.
    #[serde(default)]
    pub privileges: Vec<String>,
}

/// The direct grants on one Unity Catalog securable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UcGrants {
    /// Lowercase securable type (`catalog`, `schema`, `table`, …).
    pub securable_type: String,
    /// Full name (`main.sales`).
    pub full_name: String,
    /// Assignments.
    #[serde(default)]
    pub privilege_assignments: Vec<PrivilegeAssignment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let g = HiveGrant {
            principal: "data eng".into(),
            action_type: "DENIED_SELECT".into(),
            object_type: HiveObjectType::Table,
            object_key: "sales.orders".into(),
        };
        assert_eq!(
            replay_statement(&g),
            "DENY SELECT ON TABLE `sales`.`orders` TO `data eng`"
        );
        let o = HiveGrant {
            action_type: "OWN".into(),
            ..g.clone()
        };
        assert_eq!(
            replay_statement(&o),
            "ALTER TABLE `sales`.`orders` OWNER TO `data eng`"
        );
        let a = HiveGrant {
            action_type: "SELECT".into(),
            object_type: HiveObjectType::AnyFile,
            object_key: String::new(),
            ..g
        };
        assert_eq!(
            replay_statement(&a),
            "GRANT SELECT ON ANY FILE TO `data eng`"
        );
        let m = HiveGrant {
            action_type: "READ_METADATA".into(),
            object_type: HiveObjectType::Database,
            object_key: "sales".into(),
            ..a
        };
        assert_eq!(
            replay_statement(&m),
            "GRANT READ_METADATA ON SCHEMA `sales` TO `data eng`"
        );
        assert_eq!(unquote_key("`sales`.`or``ders`"), "sales.or`ders");
        assert_eq!(
            HiveObjectType::parse("CATALOG$"),
            Some(HiveObjectType::Catalog)
        );
    }

    fn answer(columns: [&str; 4], rows: &[[&str; 4]]) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        (
            columns.iter().map(|c| c.to_string()).collect(),
            rows.iter()
                .map(|r| r.iter().map(|c| Some(c.to_string())).collect())
                .collect(),
        )
    }

    /// A doubled backtick inside a backquoted identifier is one backtick: `` `a``b` `` is the
    /// table `` a`b ``, and not the table `ab`.
    #[test]
    fn doubled_backticks_are_one_backtick() {
        let (c, r) = answer(
            ["Principal", "ActionType", "ObjectType", "ObjectKey"],
            &[
                ["analysts", "select", "TABLE", "`db`.`a``b`"],
                ["others", "SELECT", "TABLE", "`db`.`ab`"],
            ],
        );
        let g = rows_about(&c, &r, HiveObjectType::Table, "db.a`b");
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].principal, "analysts");
        assert_eq!(g[0].action_type, "SELECT");
        assert_eq!(g[0].object_key, "db.a`b");
        let plain = rows_about(&c, &r, HiveObjectType::Table, "db.ab");
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].principal, "others");
    }

    /// The column names as Databricks spells them, camel case, snake case, upper case.
    #[test]
    fn column_names_in_any_spelling() {
        for cols in [
            ["Principal", "ActionType", "ObjectType", "ObjectKey"],
            ["principal", "actionType", "objectType", "objectKey"],
            ["principal", "action_type", "object_type", "object_key"],
            ["PRINCIPAL", "ACTION_TYPE", "OBJECT_TYPE", "OBJECT_KEY"],
        ] {
            let (c, r) = answer(
                cols,
                &[
                    ["a", "OWN", "TABLE", "`db`.`v`"],
                    ["b", "USAGE", "DATABASE", "`db`"],
                    ["c", "OWN", "CATALOG$", ""],
                    ["d", "SELECT", "TABLE", "`hive_metastore`.`DB`.`V`"],
                ],
            );
            let v = rows_about(&c, &r, HiveObjectType::View, "db.v");
            assert_eq!(
                v.iter().map(|g| g.principal.as_str()).collect::<Vec<_>>(),
                ["a", "d"],
                "{cols:?}"
            );
            assert!(v.iter().all(|g| g.object_type == HiveObjectType::View));
            assert_eq!(rows_about(&c, &r, HiveObjectType::Database, "db").len(), 1);
            assert_eq!(rows_about(&c, &r, HiveObjectType::Catalog, "").len(), 1);
        }
        let (c, r) = answer(["principal", "privilege", "objectType", "objectKey"], &[]);
        assert!(GrantColumns::find(&c).is_none());
        assert!(rows_about(&c, &r, HiveObjectType::Catalog, "").is_empty());
    }
}
