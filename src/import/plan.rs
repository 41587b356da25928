//! The plan: for every selected record of a bundle, what import would do in the target —
//! create, update, leave unchanged, skip, refuse, or what it cannot do — with reasons. Planning
//! only reads the target; `plan` prints it, `import` carries it out, `diff` reports every item
//! that is not unchanged.
//!
//! A refusal (an unmapped principal or cluster, a name conflict under `--on-conflict fail`, a
//! job reference that cannot be resolved) stops the whole import before its first write, and
//! every refusal is listed at once. An item that "cannot" be replayed (a grant on a table the
//! target lacks, a file over the import size limit) is reported as failed and the rest goes on.
//!
//! Each kind plans its own items (`kinds::<kind>::import`, through `super::unit`); this module
//! holds the plan's types, the `Planner` every unit adds to, and the sections no single kind
//! owns: records of kinds this version does not know, and the must-recreate list.

use super::ledger::Knowledge;
use super::principals::{Directory, Mapper, Unmapped};
use super::report::{MustRecreate, RecreateItem, RecreateKind};
use super::source::{SecretValues, SourceBundle, MAX_IMPORT_BYTES};
use super::target::{read_directory, Tree};
use super::{ImportError, OnConflict, Options};
use crate::client::unity::PermissionsChange;
use crate::client::{Client, ClientError};
use crate::model::permissions::{AccessControlRequest, PrincipalRef};
use crate::model::scan::{scan, ScanContext};
use crate::model::secret::{AclItem, ScopeBackend};
use crate::model::workspace::Format;
use crate::model::Kind;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What import would do with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create it.
    Create,
    /// Change the existing object.
    Update,
    /// Nothing: the target already holds it as the bundle has it.
    Unchanged,
    /// Leave it out, deliberately (with a reason).
    Skip,
    /// Refuse the whole import until this is resolved (with reasons).
    Refuse,
    /// It cannot be replayed into this target (with a reason); the rest goes on.
    Cannot,
}

impl Action {
    /// The word shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Skip => "skip",
            Action::Refuse => "refuse",
            Action::Cannot => "cannot",
        }
    }
}

/// Where an ACL goes, when the object's target id is known only after it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclObject {
    /// A known id.
    Id {
        /// `notebooks`, `directories`, `files`, `repos`, `jobs`.
        request_type: &'static str,
        /// Target id.
        id: String,
    },
    /// A workspace object this import creates (its id is read after creation).
    Path {
        /// `notebooks`, `directories`, `files`.
        request_type: &'static str,
        /// Target path.
        path: String,
    },
    /// A repo this import creates.
    Repo {
        /// Target path.
        path: String,
    },
    /// A registered model (its permissions id is read after the models stage).
    Model {
        /// Model name in the target.
        name: String,
    },
    /// A job this import creates.
    Job {
        /// Source job id.
        source_id: i64,
    },
}

impl AclObject {
    /// The permissions API's request type of the object (`notebooks`, `repos`, `jobs`…).
    pub fn request_type(&self) -> &'static str {
        match self {
            AclObject::Id { request_type, .. } | AclObject::Path { request_type, .. } => {
                request_type
            }
            AclObject::Repo { .. } => "repos",
            AclObject::Model { .. } => "registered-models",
            AclObject::Job { .. } => "jobs",
        }
    }
}

/// The work one plan item needs (what `apply` executes). Small: one is held per object, so
/// the few large steps keep their data behind a box (issue #15).
#[derive(Debug, Clone)]
pub enum Step {
    /// A folder (created by `mkdirs` of the deepest folders).
    Dir {
        /// Target path.
        path: String,
    },
    /// A notebook or file import, to the item's target path (not copied here: one of these
    /// per object, issue #15).
    Import {
        /// Index into [`SourceBundle::objects`].
        index: usize,
        /// Replace an existing object.
        overwrite: bool,
    },
    /// A repo to create, or to check out another branch.
    Repo {
        /// Index into [`SourceBundle::repos`].
        index: usize,
        /// Target path.
        path: Box<str>,
        /// The existing repo's id.
        existing: Option<i64>,
    },
    /// A secret scope to create and whose ACL to set.
    Scope(Box<ScopeStep>),
    /// A secret value to put.
    Secret {
        /// Index into [`SourceBundle::secrets`].
        index: usize,
        /// Target scope name.
        scope: String,
    },
    /// A job to create or reset.
    Job {
        /// Source job id.
        source_id: i64,
        /// The existing target job.
        existing: Option<i64>,
        /// Settings for the target, with `run_job_task` ids still the source's.
        template: Box<Map<String, Value>>,
    },
    /// ML models: every model item with this step is replayed by the models stage
    /// ([`crate::models::import_models`]) in one pass.
    Models,
    /// An ACL to set.
    Permissions {
        /// The object.
        object: Box<AclObject>,
        /// The direct entries.
        acl: Vec<AccessControlRequest>,
    },
    /// Hive grants to replay.
    Hive {
        /// The statements.
        statements: Vec<String>,
    },
    /// Unity Catalog grants to add.
    Uc(Box<UcStep>),
}

/// A secret scope to create and whose ACL to set ([`Step::Scope`]).
#[derive(Debug, Clone)]
pub struct ScopeStep {
    /// Target scope name.
    pub name: String,
    /// Create it first.
    pub create: bool,
    /// The bundle's ACL, mapped.
    pub acl: Vec<AclItem>,
    /// Entries to put (computed against the current ACL; recomputed after creation).
    pub put: Vec<AclItem>,
    /// Principals to remove.
    pub delete: Vec<String>,
}

/// Unity Catalog grants to add to one securable ([`Step::Uc`]).
#[derive(Debug, Clone)]
pub struct UcStep {
    /// Securable type.
    pub securable_type: String,
    /// Full name.
    pub full_name: String,
    /// Privileges to add.
    pub changes: Vec<PermissionsChange>,
}

/// One object of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    /// Kind.
    pub kind: Kind,
    /// Source name, path or id.
    pub source: String,
    /// Target name or path.
    pub target: String,
    /// What import would do.
    pub action: Action,
    /// Why (refusals, skips, what differs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Remaps and other notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The journal key of this item's step.
    #[serde(skip)]
    pub key: String,
    /// The work, for `Create` and `Update`.
    #[serde(skip)]
    pub step: Option<Step>,
}

impl PlanItem {
    pub(crate) fn new(
        kind: Kind,
        source: impl Into<String>,
        target: impl Into<String>,
    ) -> PlanItem {
        PlanItem {
            kind,
            source: source.into(),
            target: target.into(),
            action: Action::Unchanged,
            reasons: Vec::new(),
            notes: Vec::new(),
            key: String::new(),
            step: None,
        }
    }

    pub(crate) fn set(mut self, action: Action, reason: impl Into<String>) -> PlanItem {
        self.decide(action, reason);
        self
    }

    /// Sets the action, with its reason when there is one.
    pub(crate) fn decide(&mut self, action: Action, reason: impl Into<String>) {
        self.action = action;
        let r = reason.into();
        if !r.is_empty() {
            self.reasons.push(r);
        }
    }
}

/// Whether the plan is for an import or for a diff (where every difference is reported and
/// conflicts are not a question).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `plan` and `import`.
    Import,
    /// `diff`.
    Diff,
}

/// The plan of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// The bundle file.
    pub bundle: String,
    /// The bundle id.
    pub bundle_id: String,
    /// The source workspace (host and id).
    pub source: String,
    /// The target workspace.
    pub target: String,
    /// Every selected object, in import order.
    pub items: Vec<PlanItem>,
    /// Principals neither mapped nor in the target (policy `fail`), with their uses.
    pub unmapped_principals: Vec<Unmapped>,
    /// Clusters jobs run on that the mapping does not map, with the jobs using them.
    pub unmapped_clusters: Vec<Unmapped>,
    /// Principals left out by the `drop` policy, with their uses.
    pub dropped_principals: Vec<Unmapped>,
    /// What import never creates.
    pub must_recreate: MustRecreate,
    /// Other things worth knowing.
    pub notes: Vec<String>,
    /// The importing identity.
    #[serde(skip)]
    pub me: Option<PrincipalRef>,
    /// The warehouse chosen for Hive grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<String>,
    /// The target's principals (kept for apply).
    #[serde(skip)]
    pub directory: Directory,
    /// Source job id → existing target job id (found by tag).
    #[serde(skip)]
    pub job_ids: BTreeMap<i64, i64>,
    /// What planning learned of the target's tree.
    #[serde(skip)]
    pub tree: Tree,
}

impl Plan {
    /// True when some item refuses the import.
    pub fn is_refused(&self) -> bool {
        self.items.iter().any(|i| i.action == Action::Refuse)
    }

    /// Counts per kind: create, update, unchanged, skip, refuse, cannot.
    pub fn counts(&self) -> BTreeMap<Kind, [u64; 6]> {
        let mut m: BTreeMap<Kind, [u64; 6]> = BTreeMap::new();
        for i in &self.items {
            let c = m.entry(i.kind).or_default();
            let slot = match i.action {
                Action::Create => 0,
                Action::Update => 1,
                Action::Unchanged => 2,
                Action::Skip => 3,
                Action::Refuse => 4,
                Action::Cannot => 5,
            };
            c[slot] += 1;
        }
        m
    }

    /// True when the target already holds everything: nothing to create or update.
    pub fn is_noop(&self) -> bool {
        self.items
            .iter()
            .all(|i| !matches!(i.action, Action::Create | Action::Update))
    }
}

/// Everything planning reads from.
pub struct PlanInput<'a> {
    /// The verified bundle.
    pub source: &'a SourceBundle,
    /// The options.
    pub options: &'a Options,
    /// The target.
    pub client: &'a Client,
    /// What the journal knows. It only ever stands in for what the target cannot show (a
    /// secret value the workspace does not let us read back); whatever the target shows is
    /// compared with the bundle.
    pub knowledge: &'a Knowledge,
    /// Opened secret values, for comparing values the target lets us read.
    pub secrets: Option<&'a SecretValues>,
    /// Import or diff.
    pub mode: Mode,
}

pub(crate) fn target_err(client: &Client, e: ClientError) -> ImportError {
    ImportError::Target {
        target: client.host().to_string(),
        source: e,
    }
}

/// Reads the target and plans the import of `input.source`. Writes nothing.
pub async fn plan(input: PlanInput<'_>) -> Result<Plan, ImportError> {
    let PlanInput {
        source,
        options,
        client,
        ..
    } = input;
    let limit = options.concurrency();
    let directory = read_directory(client)
        .await
        .map_err(|e| target_err(client, e))?;
    let source_principals: Vec<String> = source
        .references
        .principals
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mapping = &options.mapping;
    let mapper = Mapper::new(mapping, &directory, source_principals);
    let mut p = Planner {
        input: &input,
        mapper: &mapper,
        // Items are at most one per record: reserved at once, as a vector of every object's
        // item grown by doubling holds up to half again as spare (issue #15).
        items: Vec::with_capacity(source.record_count()),
        tree: Tree::default(),
        path_items: Vec::new(),
        path_items_sorted: true,
        repo_paths: BTreeMap::new(),
        job_items: BTreeMap::new(),
        job_ids: BTreeMap::new(),
        unmapped_clusters: BTreeMap::new(),
        notes: Vec::new(),
        limit,
        warehouse: None,
        model_actions: BTreeMap::new(),
    };
    for unit in super::unit::UNITS {
        unit.plan(&mut p).await?;
    }
    p.unknown();
    let must_recreate = p.must_recreate()?;
    let Planner {
        mut items,
        unmapped_clusters,
        mut notes,
        job_ids,
        warehouse,
        tree,
        ..
    } = p;
    sort_items(&mut items);
    if source.source_workspace_id.is_empty() {
        notes.push(
            "the bundle does not record its source workspace id; jobs are tied to their source by host and id".into(),
        );
    }
    let me = directory.me.clone();
    Ok(Plan {
        bundle: source.path().display().to_string(),
        bundle_id: source.bundle_id.clone(),
        source: if source.source_workspace_id.is_empty() {
            source.source_host.clone()
        } else {
            format!("{} ({})", source.source_host, source.source_workspace_id)
        },
        target: client.host().to_string(),
        items,
        unmapped_principals: mapper.unmapped(),
        unmapped_clusters: unmapped_clusters
            .into_iter()
            .map(|(k, v)| Unmapped {
                principal: k,
                used_by: v.into_iter().collect(),
            })
            .collect(),
        dropped_principals: mapper.dropped(),
        must_recreate,
        notes,
        me,
        warehouse_id: warehouse,
        directory: directory.clone(),
        job_ids,
        tree,
    })
}

/// Sorts plan items by kind (in import order), target and source, stably. The order is sorted
/// as indexes and then applied in place: a stable sort of the items themselves takes scratch
/// space of up to half of them (issue #15).
fn sort_items(items: &mut [PlanItem]) {
    fn key(i: &PlanItem) -> (usize, &str, &str) {
        (
            crate::bundle::inventory::kind_rank(i.kind),
            i.target.as_str(),
            i.source.as_str(),
        )
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|a, b| key(&items[*a]).cmp(&key(&items[*b])));
    // Slot k takes the item now at order[k]: each cycle of the permutation is walked once.
    for start in 0..items.len() {
        let mut k = start;
        loop {
            let from = order[k];
            order[k] = k;
            if from == start || from == k {
                break;
            }
            items.swap(k, from);
            k = from;
        }
    }
}

/// What planning has learned so far, shared by every kind's [`super::unit::Unit`].
pub(crate) struct Planner<'a, 'b> {
    /// What the models stage would do with each registered model, by name.
    pub(crate) model_actions: BTreeMap<String, Action>,
    pub(crate) input: &'a PlanInput<'b>,
    pub(crate) mapper: &'a Mapper<'a>,
    pub(crate) items: Vec<PlanItem>,
    pub(crate) tree: Tree,
    /// The items of workspace objects and repos in this plan (indexes into `items`), whose
    /// targets are paths ([`Planner::push_path_item`]): sorted by target when asked what the
    /// plan does at a path ([`Planner::path_action`]). Indexes, not a map of copies of every
    /// path (issue #15).
    pub(crate) path_items: Vec<u32>,
    /// True when `path_items` is sorted by target.
    path_items_sorted: bool,
    /// Source repo id → (target path, action, existing id).
    pub(crate) repo_paths: BTreeMap<String, (String, Action, Option<i64>)>,
    /// Source job id → action.
    pub(crate) job_items: BTreeMap<i64, Action>,
    /// Source job id → existing target id.
    pub(crate) job_ids: BTreeMap<i64, i64>,
    pub(crate) unmapped_clusters: BTreeMap<String, BTreeSet<String>>,
    pub(crate) notes: Vec<String>,
    pub(crate) limit: usize,
    pub(crate) warehouse: Option<String>,
}

impl<'a, 'b> Planner<'a, 'b> {
    pub(crate) fn src(&self) -> &'b SourceBundle {
        self.input.source
    }

    pub(crate) fn opts(&self) -> &'b Options {
        self.input.options
    }

    pub(crate) fn client(&self) -> &'b Client {
        self.input.client
    }

    pub(crate) fn err(&self, e: ClientError) -> ImportError {
        target_err(self.client(), e)
    }

    /// The action and reason for an existing object that differs and is not provably ours.
    pub(crate) fn conflict(&self, what: String) -> (Action, String) {
        if self.input.mode == Mode::Diff {
            return (Action::Update, what);
        }
        match self.opts().on_conflict {
            OnConflict::Fail => (
                Action::Refuse,
                format!("{what} (conflict: pass --on-conflict overwrite to replace it, or skip to keep it)"),
            ),
            OnConflict::Skip => (Action::Skip, format!("{what} (kept: --on-conflict skip)")),
            OnConflict::Overwrite => (Action::Update, format!("{what} (replaced: --on-conflict overwrite)")),
        }
    }

    /// Adds the item of a workspace object or repo, whose target is its path.
    pub(crate) fn push_path_item(&mut self, item: PlanItem) {
        let i = u32::try_from(self.items.len()).expect("fewer items than records");
        self.path_items.push(i);
        self.path_items_sorted = false;
        self.items.push(item);
    }

    /// What this plan does with the workspace object or repo at target `path` (the item added
    /// last, when several share it); `None` when it has none.
    pub(crate) fn path_action(&mut self, path: &str) -> Option<Action> {
        let items = &self.items;
        if !self.path_items_sorted {
            // Stable: equal targets stay in the order they were added.
            self.path_items
                .sort_by(|a, b| items[*a as usize].target.cmp(&items[*b as usize].target));
            self.path_items_sorted = true;
        }
        let end = self
            .path_items
            .partition_point(|i| items[*i as usize].target.as_str() <= path);
        let last = *self.path_items[..end].last()? as usize;
        (items[last].target == path).then_some(items[last].action)
    }

    pub(crate) fn selected_path(&self, path: &str) -> bool {
        self.opts().filter.path(path)
    }

    fn unknown(&mut self) {
        let u = &self.src().unknown;
        if !u.is_empty() {
            let mut kinds: Vec<&str> = u.iter().map(|r| r.kind.as_str()).collect();
            kinds.sort();
            kinds.dedup();
            self.notes.push(format!(
                "{} record(s) of kinds this version does not know ({}) stay in the bundle; a newer dbxport may replay them",
                u.len(),
                kinds.join(", ")
            ));
        }
    }

    fn must_recreate(&mut self) -> Result<MustRecreate, ImportError> {
        let src = self.input.source;
        let m = &self.opts().mapping;
        let mut out = MustRecreate::default();
        let mut cluster_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut pool_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut policy_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut warehouse_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for j in &src.jobs {
            let name = format!(
                "job {}",
                j.settings.get("name").and_then(Value::as_str).unwrap_or("")
            );
            for c in crate::model::job::existing_cluster_ids(&j.settings) {
                cluster_users.entry(c).or_default().insert(name.clone());
            }
            collect_ids(&Value::Object(j.settings.clone()), &mut |k, v| {
                let slot = match k {
                    "instance_pool_id" | "driver_instance_pool_id" => &mut pool_users,
                    "policy_id" => &mut policy_users,
                    "warehouse_id" => &mut warehouse_users,
                    _ => return,
                };
                slot.entry(v.to_string()).or_default().insert(name.clone());
            });
        }
        let refs = &src.references;
        let mut seen: BTreeSet<(RecreateKind, String)> = BTreeSet::new();
        let mut push = |out: &mut MustRecreate,
                        kind: RecreateKind,
                        id: &str,
                        name: &str,
                        mapped: Option<String>,
                        users: Option<&BTreeSet<String>>| {
            if seen.insert((kind, id.to_string())) {
                out.items.push(RecreateItem {
                    kind,
                    id: id.into(),
                    name: name.into(),
                    details: Vec::new(),
                    mapped_to: mapped,
                    used_by: users
                        .map(|u| u.iter().cloned().collect())
                        .unwrap_or_default(),
                });
            }
        };
        let cluster_target = |id: &str| {
            m.cluster(id).map(|c| match c {
                super::mapping::ClusterTarget::Existing(t) => format!("cluster {t}"),
                super::mapping::ClusterTarget::NewCluster { .. } => "a job cluster".to_string(),
            })
        };
        for c in &refs.clusters {
            push(
                &mut out,
                RecreateKind::Cluster,
                &c.cluster_id,
                &c.cluster_name,
                cluster_target(&c.cluster_id),
                cluster_users.get(&c.cluster_id),
            );
        }
        for (id, users) in &cluster_users {
            push(
                &mut out,
                RecreateKind::Cluster,
                id,
                "",
                cluster_target(id),
                Some(users),
            );
        }
        for p in &refs.pools {
            push(
                &mut out,
                RecreateKind::InstancePool,
                &p.instance_pool_id,
                &p.instance_pool_name,
                m.instance_pools.get(&p.instance_pool_id).cloned(),
                pool_users.get(&p.instance_pool_id),
            );
        }
        for (id, users) in &pool_users {
            push(
                &mut out,
                RecreateKind::InstancePool,
                id,
                "",
                m.instance_pools.get(id).cloned(),
                Some(users),
            );
        }
        for p in &refs.policies {
            push(
                &mut out,
                RecreateKind::ClusterPolicy,
                &p.policy_id,
                &p.name,
                m.policies.get(&p.policy_id).cloned(),
                policy_users.get(&p.policy_id),
            );
        }
        for (id, users) in &policy_users {
            push(
                &mut out,
                RecreateKind::ClusterPolicy,
                id,
                "",
                m.policies.get(id).cloned(),
                Some(users),
            );
        }
        for w in &refs.warehouses {
            push(
                &mut out,
                RecreateKind::Warehouse,
                &w.id,
                &w.name,
                m.warehouses.get(&w.id).cloned(),
                warehouse_users.get(&w.id),
            );
        }
        for (id, users) in &warehouse_users {
            push(
                &mut out,
                RecreateKind::Warehouse,
                id,
                "",
                m.warehouses.get(id).cloned(),
                Some(users),
            );
        }
        for mt in &refs.mounts {
            push(
                &mut out,
                RecreateKind::Mount,
                &mt.mount_point,
                &mt.source,
                None,
                None,
            );
        }
        for s in src
            .scopes
            .iter()
            .filter(|s| s.backend == ScopeBackend::AzureKeyvault)
        {
            let dns = s
                .keyvault
                .as_ref()
                .map(|k| k.dns_name.clone())
                .unwrap_or_default();
            push(
                &mut out,
                RecreateKind::KeyvaultScope,
                &s.name,
                &dns,
                None,
                None,
            );
        }
        // The code that depends on them (only when workspace objects are imported).
        let ctx = ScanContext {
            cluster_ids: cluster_users
                .keys()
                .cloned()
                .chain(refs.clusters.iter().map(|c| c.cluster_id.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            job_ids: src.jobs.iter().map(|j| j.job_id).collect(),
            warehouse_ids: warehouse_users
                .keys()
                .cloned()
                .chain(refs.warehouses.iter().map(|w| w.id.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        let f = &self.opts().filter;
        for o in &src.objects {
            if !f.kind(o.kind) || !f.path(&o.path) {
                continue;
            }
            // What export's scanner found is in the record (format 1.2): no need to read and
            // scan the code again. Older bundles, and files too large to scan at export, are
            // scanned here as before.
            if let Some(refs) = &o.code_references {
                let path = m.path(&o.path);
                out.code
                    .extend(refs.iter().filter_map(|r| r.to_finding(&path)));
                continue;
            }
            let Some(stored) = &o.stored else { continue };
            if o.size > MAX_IMPORT_BYTES || (o.kind == Kind::Notebook && o.format != Format::Source)
            {
                continue;
            }
            let bytes = src.read(stored, MAX_IMPORT_BYTES)?;
            out.code.extend(scan(&m.path(&o.path), &bytes, &ctx));
        }
        out.items
            .sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
        out.code.sort();
        Ok(out)
    }
}

/// Compares the value of an existing secret in the target with the bundle's (`mine`, opened in
/// memory): `Some(true)` when they are the same, `Some(false)` when the target holds another
/// value, `None` when they cannot be compared (no opened value, or the workspace does not let
/// values be read back). `plan`, `import` and `diff` all decide with this one comparison.
pub async fn secret_value_matches(
    client: &Client,
    scope: &str,
    key: &str,
    mine: Option<&[u8]>,
) -> Result<Option<bool>, ClientError> {
    let Some(mine) = mine else {
        return Ok(None);
    };
    match client.secrets().get(scope, key).await {
        Ok(theirs) => Ok(Some(theirs.as_slice() == mine)),
        Err(e) if e.is_auth_failure() => Err(e),
        Err(_) => Ok(None),
    }
}

pub(crate) fn collect_ids(v: &Value, f: &mut dyn FnMut(&str, &str)) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if let Value::String(s) = x {
                    f(k, s);
                } else {
                    collect_ids(x, f);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ids(x, f)),
        _ => {}
    }
}

/// True when two Git remote URLs name the same repository (case of the host, a trailing
/// `.git` and slashes aside).
pub fn same_url(a: &str, b: &str) -> bool {
    let n = |s: &str| {
        s.trim()
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_lowercase()
    };
    n(a) == n(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_item_stays_small() {
        // One item per object and one per object's ACL: a million-object plan holds two
        // million of these (issue #15). Large steps keep their data behind a box.
        assert!(
            std::mem::size_of::<Step>() <= 40,
            "{}",
            std::mem::size_of::<Step>()
        );
        assert!(
            std::mem::size_of::<PlanItem>() <= 168,
            "{}",
            std::mem::size_of::<PlanItem>()
        );
    }
}
