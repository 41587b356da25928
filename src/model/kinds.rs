//! The kind vocabulary of the command line: the words `--include` / `--exclude` accept on every
//! command that takes kinds (`export`, `import`, `plan`, `diff`). One table, so a spelling that
//! one command accepts is accepted by all, and an unknown word gets the same answer everywhere.
//!
//! A word is a kind's inventory name (`secret_scope`), with `-` for `_` and in the plural
//! (`secret-scopes`), an alias (`scope`, `folder`, `pool`, …), or a group (`workspace`,
//! `secrets`, `grants`, `reference`, `models`). Case does not matter.

use super::Kind;
use crate::hints::Hint;
use std::collections::BTreeSet;

/// The kinds in the order the command line lists them.
pub const LISTED: [Kind; 19] = [
    Kind::Directory,
    Kind::Notebook,
    Kind::File,
    Kind::Repo,
    Kind::Job,
    Kind::SecretScope,
    Kind::Secret,
    Kind::Permissions,
    Kind::HiveGrants,
    Kind::UcGrants,
    Kind::Cluster,
    Kind::InstancePool,
    Kind::ClusterPolicy,
    Kind::Warehouse,
    Kind::Mount,
    Kind::Principal,
    Kind::RegisteredModel,
    Kind::ModelVersion,
    Kind::ModelArtifact,
];

/// Names of groups of kinds.
pub const GROUPS: [(&str, &[Kind]); 5] = [
    ("workspace", &[Kind::Directory, Kind::Notebook, Kind::File]),
    ("secrets", &[Kind::SecretScope, Kind::Secret]),
    ("grants", &[Kind::HiveGrants, Kind::UcGrants]),
    (
        "reference",
        &[
            Kind::Cluster,
            Kind::InstancePool,
            Kind::ClusterPolicy,
            Kind::Warehouse,
            Kind::Mount,
            Kind::Principal,
        ],
    ),
    (
        "models",
        &[
            Kind::RegisteredModel,
            Kind::ModelVersion,
            Kind::ModelArtifact,
        ],
    ),
];

/// Other names of single kinds (singular; the plural is accepted too).
pub const ALIASES: [(&str, Kind); 13] = [
    ("folder", Kind::Directory),
    ("dir", Kind::Directory),
    ("workspace_file", Kind::File),
    ("scope", Kind::SecretScope),
    ("pool", Kind::InstancePool),
    ("policy", Kind::ClusterPolicy),
    ("hive", Kind::HiveGrants),
    ("table_acl", Kind::HiveGrants),
    ("uc", Kind::UcGrants),
    ("unity_catalog", Kind::UcGrants),
    ("permission", Kind::Permissions),
    ("user", Kind::Principal),
    ("group", Kind::Principal),
];

/// One word naming no kind; `Display` lists every accepted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind {
    /// The words that name no kind, as given.
    pub words: Vec<String>,
}

impl std::fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted: Vec<String> = self.words.iter().map(|w| format!("{w:?}")).collect();
        let verb = if quoted.len() == 1 {
            "is not a kind"
        } else {
            "are not kinds"
        };
        write!(
            f,
            "{} {verb}\n{}",
            quoted.join(", "),
            Hint::UnknownKind.with(&[("kinds", &accepted_names())])
        )
    }
}

impl std::error::Error for UnknownKind {}

/// The one-word singular of `w` (`policies` → `policy`, `notebooks` → `notebook`).
fn singular(w: &str) -> Option<String> {
    if let Some(stem) = w.strip_suffix("ies") {
        return Some(format!("{stem}y"));
    }
    w.strip_suffix('s').map(str::to_string)
}

fn single(w: &str) -> Option<Kind> {
    Kind::parse(w).or_else(|| ALIASES.iter().find(|(a, _)| *a == w).map(|(_, k)| *k))
}

/// Parses one word: the kinds it names, or `None` when it names none.
pub fn parse(word: &str) -> Option<Vec<Kind>> {
    let w = word.trim().to_ascii_lowercase().replace('-', "_");
    if let Some((_, kinds)) = GROUPS.iter().find(|(g, _)| *g == w) {
        return Some(kinds.to_vec());
    }
    single(&w)
        .or_else(|| singular(&w).and_then(|s| single(&s)))
        .map(|k| vec![k])
}

/// Parses a list of words, each possibly comma-separated (`--include notebook,job`); blank
/// words are ignored. Every unknown word is named in one error.
pub fn parse_list<S: AsRef<str>>(words: &[S]) -> Result<BTreeSet<Kind>, UnknownKind> {
    let mut out = BTreeSet::new();
    let mut unknown = Vec::new();
    for w in words.iter().flat_map(|w| w.as_ref().split(',')) {
        let w = w.trim();
        if w.is_empty() {
            continue;
        }
        match parse(w) {
            Some(ks) => out.extend(ks),
            None => unknown.push(w.to_string()),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(UnknownKind { words: unknown })
    }
}

/// Every accepted name, for hints: the kinds, the groups, the aliases.
pub fn accepted_names() -> String {
    let kinds: Vec<&str> = LISTED.iter().map(|k| k.as_str()).collect();
    let groups: Vec<&str> = GROUPS.iter().map(|(g, _)| *g).collect();
    let aliases: Vec<&str> = ALIASES.iter().map(|(a, _)| *a).collect();
    format!(
        "{}; the groups {}; also {} (any of them with - for _, or in the plural)",
        kinds.join(", "),
        groups.join(", "),
        aliases.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_groups_aliases_plurals() {
        assert_eq!(parse("notebooks"), Some(vec![Kind::Notebook]));
        assert_eq!(parse("Secret-Scope"), Some(vec![Kind::SecretScope]));
        assert_eq!(parse("scopes"), Some(vec![Kind::SecretScope]));
        assert_eq!(parse("secrets").unwrap().len(), 2);
        assert_eq!(parse("policies"), Some(vec![Kind::ClusterPolicy]));
        assert_eq!(parse("directories"), Some(vec![Kind::Directory]));
        assert_eq!(parse("reference").unwrap().len(), 6);
        assert_eq!(parse("/Users/x"), None);
        assert_eq!(parse("nope"), None);
        // Every kind by its own name, and every listed kind is a kind.
        for k in Kind::ALL {
            assert_eq!(parse(k.as_str()), Some(vec![k]));
            assert!(LISTED.contains(&k));
        }
    }

    #[test]
    fn unknown_words_are_named_in_one_error_with_the_accepted_names() {
        let e = parse_list(&["job,nope", "", "zilch"]).unwrap_err();
        assert_eq!(e.words, vec!["nope".to_string(), "zilch".to_string()]);
        let text = e.to_string();
        assert!(
            text.starts_with(
                "\"nope\", \"zilch\" are not kinds\nhint: kinds are directory, notebook"
            ),
            "{text}"
        );
        for name in ["secret_scope", "reference", "scope", "models"] {
            assert!(text.contains(name), "{text}");
        }
        assert_eq!(
            parse_list(&["scope, job"]).unwrap(),
            [Kind::SecretScope, Kind::Job].into()
        );
    }
}
