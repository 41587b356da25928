//! The report model shared by export, import (plan, apply, diff) and the models pipeline:
//! what became of one object ([`Outcome`]), what to do with an object the target already has
//! ([`OnConflict`]), and the "must recreate" checklist of what import never creates
//! ([`MustRecreate`]). The reports themselves (counts, rendering) stay with their pipelines;
//! these are the words they share, so that one object's fate is spelt one way everywhere.
//!
//! The JSON is that of the types this module replaced: the export report stored in a bundle
//! (`export-report.json`) groups the checklist by kind ([`by_kind`]), the import report that
//! `--json` prints lists it flat, and both are pinned by tests.

use super::scan::Finding;
use serde::{Deserialize, Serialize};

/// What became of one object in an export or an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Export: in the bundle, whole.
    Exported,
    /// Export: in the bundle, with a loss the notes describe (outputs dropped, a value
    /// unreadable).
    Degraded,
    /// Export: not in the bundle (or its content is missing), by choice; the notes say why.
    Omitted,
    /// Import: created in the target.
    Created,
    /// Import: changed in the target.
    Updated,
    /// Import: already as the bundle has it; no request sent.
    Unchanged,
    /// Import: deliberately not replayed; the reasons say why.
    Skipped,
    /// Not carried over because something failed; the reasons name the call.
    Failed,
}

impl Outcome {
    /// The word the JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Exported => "exported",
            Outcome::Degraded => "degraded",
            Outcome::Omitted => "omitted",
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// What import does with an object that exists in the target, differs from the bundle, and
/// cannot be shown to come from this bundle: a notebook at the same path, a secret whose value
/// this import did not put, a registered model of the same name with other versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Refuse it before any write, listing every conflict (the default).
    #[default]
    Fail,
    /// Leave the target's object as it is; the report lists it as skipped.
    Skip,
    /// Make it the bundle's (a model keeps its existing versions and gets the bundle's as new
    /// ones; the version mapping is reported).
    Overwrite,
}

impl OnConflict {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Fail => "fail",
            OnConflict::Skip => "skip",
            OnConflict::Overwrite => "overwrite",
        }
    }
}

/// The kinds of object import never creates: recorded for reference, recreated by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecreateKind {
    /// A cluster, with its init scripts and libraries.
    Cluster,
    /// An instance pool.
    InstancePool,
    /// A cluster policy.
    ClusterPolicy,
    /// A SQL warehouse.
    Warehouse,
    /// A DBFS mount, with its source when known.
    Mount,
    /// A secret scope backed by Azure Key Vault.
    KeyvaultScope,
}

impl RecreateKind {
    /// Every kind, in checklist order.
    pub const ALL: [RecreateKind; 6] = [
        RecreateKind::Cluster,
        RecreateKind::InstancePool,
        RecreateKind::ClusterPolicy,
        RecreateKind::Warehouse,
        RecreateKind::Mount,
        RecreateKind::KeyvaultScope,
    ];

    /// The word the flat JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RecreateKind::Cluster => "cluster",
            RecreateKind::InstancePool => "instance_pool",
            RecreateKind::ClusterPolicy => "cluster_policy",
            RecreateKind::Warehouse => "warehouse",
            RecreateKind::Mount => "mount",
            RecreateKind::KeyvaultScope => "keyvault_scope",
        }
    }

    /// The key of its list in the grouped JSON ([`by_kind`]).
    pub fn group(self) -> &'static str {
        match self {
            RecreateKind::Cluster => "clusters",
            RecreateKind::InstancePool => "instance_pools",
            RecreateKind::ClusterPolicy => "cluster_policies",
            RecreateKind::Warehouse => "warehouses",
            RecreateKind::Mount => "mounts",
            RecreateKind::KeyvaultScope => "keyvault_scopes",
        }
    }
}

impl std::fmt::Display for RecreateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets callers (and tests) compare with the JSON word.
impl PartialEq<&str> for RecreateKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One thing the user must recreate by hand in the target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecreateItem {
    /// What it is.
    pub kind: RecreateKind,
    /// Its id (or mount point, or scope name) in the source.
    pub id: String,
    /// Its name in the source.
    pub name: String,
    /// What to look at when recreating it (init scripts, storage URI, vault).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// What the import mapping file maps it to, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_to: Option<String>,
    /// Jobs and notebooks that use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
}

impl RecreateItem {
    /// An item with no details, mapping or users.
    pub fn new(kind: RecreateKind, id: impl Into<String>, name: impl Into<String>) -> Self {
        RecreateItem {
            kind,
            id: id.into(),
            name: name.into(),
            details: Vec::new(),
            mapped_to: None,
            used_by: Vec::new(),
        }
    }
}

/// Everything import does not create, and the code that depends on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MustRecreate {
    /// Compute, storage and scope records.
    pub items: Vec<RecreateItem>,
    /// Lines of notebooks and files that depend on mounts, hard-coded cluster or job ids, or
    /// secrets.
    pub code: Vec<Finding>,
}

impl MustRecreate {
    /// True when there is nothing to recreate and no dependent code.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.code.is_empty()
    }

    /// The items of one kind, in list order.
    pub fn of(&self, kind: RecreateKind) -> impl Iterator<Item = &RecreateItem> {
        self.items.iter().filter(move |i| i.kind == kind)
    }

    /// Sorts and deduplicates every list (and each item's details), so that the same input
    /// gives the same checklist.
    pub fn normalize(&mut self) {
        for i in &mut self.items {
            i.details.sort();
            i.details.dedup();
        }
        self.items.sort();
        self.items.dedup();
        self.code.sort();
        self.code.dedup();
    }
}

/// The grouped JSON of a [`MustRecreate`], as the export report stores it in a bundle: one
/// list per kind (`clusters`, `instance_pools`, …, each item without its `kind`) and `code`.
/// Use as `#[serde(with = "crate::model::report::by_kind")]`.
pub mod by_kind {
    use super::{Finding, MustRecreate, RecreateItem, RecreateKind};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// One item of a group: the kind is the group's.
    #[derive(Serialize, Deserialize)]
    struct Item {
        id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        details: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mapped_to: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        used_by: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct Grouped {
        clusters: Vec<Item>,
        instance_pools: Vec<Item>,
        cluster_policies: Vec<Item>,
        warehouses: Vec<Item>,
        mounts: Vec<Item>,
        keyvault_scopes: Vec<Item>,
        code: Vec<Finding>,
    }

    impl Grouped {
        fn list(&mut self, kind: RecreateKind) -> &mut Vec<Item> {
            match kind {
                RecreateKind::Cluster => &mut self.clusters,
                RecreateKind::InstancePool => &mut self.instance_pools,
                RecreateKind::ClusterPolicy => &mut self.cluster_policies,
                RecreateKind::Warehouse => &mut self.warehouses,
                RecreateKind::Mount => &mut self.mounts,
                RecreateKind::KeyvaultScope => &mut self.keyvault_scopes,
            }
        }
    }

    /// Serializes `m` grouped by kind.
    pub fn serialize<S: Serializer>(m: &MustRecreate, s: S) -> Result<S::Ok, S::Error> {
        let mut g = Grouped {
            clusters: Vec::new(),
            instance_pools: Vec::new(),
            cluster_policies: Vec::new(),
            warehouses: Vec::new(),
            mounts: Vec::new(),
            keyvault_scopes: Vec::new(),
            code: m.code.clone(),
        };
        for i in &m.items {
            g.list(i.kind).push(Item {
                id: i.id.clone(),
                name: i.name.clone(),
                details: i.details.clone(),
                mapped_to: i.mapped_to.clone(),
                used_by: i.used_by.clone(),
            });
        }
        g.serialize(s)
    }

    /// Reads the grouped form back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MustRecreate, D::Error> {
        let mut g = Grouped::deserialize(d)?;
        let mut items = Vec::new();
        for kind in RecreateKind::ALL {
            items.extend(
                std::mem::take(g.list(kind))
                    .into_iter()
                    .map(|i| RecreateItem {
                        kind,
                        id: i.id,
                        name: i.name,
                        details: i.details,
                        mapped_to: i.mapped_to,
                        used_by: i.used_by,
                    }),
            );
        }
        Ok(MustRecreate {
            items,
            code: g.code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::scan::Dependency;

    fn sample() -> MustRecreate {
        let mut cluster = RecreateItem::new(RecreateKind::Cluster, "c1", "shared");
        cluster.used_by = vec!["job nightly".into()];
        cluster.mapped_to = Some("cluster c9".into());
        let mut mount = RecreateItem::new(RecreateKind::Mount, "/mnt/x", "/mnt/x");
        mount.details = vec!["source s3a://b".into()];
        MustRecreate {
            items: vec![
                cluster,
                mount,
                RecreateItem::new(RecreateKind::KeyvaultScope, "kv", "kv"),
            ],
            code: vec![Finding {
                path: "/a".into(),
                line: 4,
                dependency: Dependency::MountPath,
                matched: "/mnt/x/y".into(),
            }],
        }
    }

    // The flat form is what `import --json` and `plan --json` print: pinned field for field,
    // in the order the import report's own `Recreate` used.
    #[test]
    fn flat_json_is_the_import_reports() {
        let got = serde_json::to_string(&sample()).unwrap();
        assert_eq!(
            got,
            r#"{"items":[{"kind":"cluster","id":"c1","name":"shared","mapped_to":"cluster c9","used_by":["job nightly"]},{"kind":"mount","id":"/mnt/x","name":"/mnt/x","details":["source s3a://b"]},{"kind":"keyvault_scope","id":"kv","name":"kv"}],"code":[{"path":"/a","line":4,"dependency":"mount_path","matched":"/mnt/x/y"}]}"#
        );
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Wrap(#[serde(with = "by_kind")] MustRecreate);

    // The grouped form is what `export-report.json` stores in a bundle (the golden bundle
    // pins it byte for byte): one list per kind, items without `kind`.
    #[test]
    fn grouped_json_is_the_export_reports_and_reads_back() {
        let mut m = sample();
        m.items[0].mapped_to = None;
        m.items[0].used_by.clear();
        let got = serde_json::to_string(&Wrap(m.clone())).unwrap();
        assert_eq!(
            got,
            r#"{"clusters":[{"id":"c1","name":"shared"}],"instance_pools":[],"cluster_policies":[],"warehouses":[],"mounts":[{"id":"/mnt/x","name":"/mnt/x","details":["source s3a://b"]}],"keyvault_scopes":[{"id":"kv","name":"kv"}],"code":[{"path":"/a","line":4,"dependency":"mount_path","matched":"/mnt/x/y"}]}"#
        );
        let back: Wrap = serde_json::from_str(&got).unwrap();
        assert_eq!(back.0, m);
    }

    #[test]
    fn words_are_the_json_words() {
        for o in [
            Outcome::Exported,
            Outcome::Degraded,
            Outcome::Omitted,
            Outcome::Created,
            Outcome::Updated,
            Outcome::Unchanged,
            Outcome::Skipped,
            Outcome::Failed,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for k in RecreateKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for c in [OnConflict::Fail, OnConflict::Skip, OnConflict::Overwrite] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
