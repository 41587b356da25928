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
        Some(match s.to_ascii_uppercase().replace(' ', "_").as_str() {
            "CATALOG" | "CATALOG$" => HiveObjectType::Catalog,
            "DATABASE" | "SCHEMA" => HiveObjectType::Database,
            "TABLE" => HiveObjectType::Table,
            "VIEW" => HiveObjectType::View,
            "FUNCTION" => HiveObjectType::Function,
            "ANY_FILE" => HiveObjectType::AnyFile,
            "ANONYMOUS_FUNCTION" => HiveObjectType::AnonymousFunction,
            _ => return None,
        })
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
}
