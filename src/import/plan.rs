//! The plan: for every selected record of a bundle, what import would do in the target —
//! create, update, leave unchanged, skip, refuse, or what it cannot do — with reasons. Planning
//! only reads the target; `plan` prints it, `import` carries it out, `diff` reports every item
//! that is not unchanged.
//!
//! A refusal (an unmapped principal or cluster, a name conflict under `--on-conflict fail`, a
//! job reference that cannot be resolved) stops the whole import before its first write, and
//! every refusal is listed at once. An item that "cannot" be replayed (a grant on a table the
//! target lacks, a file over the import size limit) is reported as failed and the rest goes on.

use super::acl::scope_acl_changes;
use super::compare::{first_difference, same_content};
use super::ledger::{keys, Knowledge};
use super::mapping::PrincipalOutcome;
use super::principals::{Directory, Mapper, Unmapped};
use super::remap::{rewrite_job, JobContext, Refusal};
use super::report::{MustRecreate, RecreateItem, RecreateKind};
use super::source::{SecretValues, SourceBundle, MAX_IMPORT_BYTES};
use super::target::{concurrently, list_tree, read_directory, read_jobs, Jobs, Tree};
use super::{ImportError, OnConflict, Options};
use crate::client::unity::PermissionsChange;
use crate::client::{Client, ClientError};
use crate::model::permissions::{AccessControlRequest, PrincipalRef};
use crate::model::scan::{scan, ScanContext};
use crate::model::secret::{AclItem, ScopeBackend};
use crate::model::workspace::{parent_path, Format, ObjectType};
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
        request_type: String,
        /// Target id.
        id: String,
    },
    /// A workspace object this import creates (its id is read after creation).
    Path {
        /// `notebooks`, `directories`, `files`.
        request_type: String,
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

/// The work one plan item needs (what `apply` executes).
#[derive(Debug, Clone)]
pub enum Step {
    /// A folder (created by `mkdirs` of the deepest folders).
    Dir {
        /// Target path.
        path: String,
    },
    /// A notebook or file import.
    Import {
        /// Index into [`SourceBundle::objects`].
        index: usize,
        /// Target path.
        path: String,
        /// Replace an existing object.
        overwrite: bool,
    },
    /// A repo to create, or to check out another branch.
    Repo {
        /// Index into [`SourceBundle::repos`].
        index: usize,
        /// Target path.
        path: String,
        /// The existing repo's id.
        existing: Option<i64>,
    },
    /// A secret scope to create and whose ACL to set.
    Scope {
        /// Target scope name.
        name: String,
        /// Create it first.
        create: bool,
        /// The bundle's ACL, mapped.
        acl: Vec<AclItem>,
        /// Entries to put (computed against the current ACL; recomputed after creation).
        put: Vec<AclItem>,
        /// Principals to remove.
        delete: Vec<String>,
    },
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
        template: Map<String, Value>,
    },
    /// ML models: every model item with this step is replayed by the models stage
    /// ([`crate::models::import_models`]) in one pass.
    Models,
    /// An ACL to set.
    Permissions {
        /// The object.
        object: AclObject,
        /// The direct entries.
        acl: Vec<AccessControlRequest>,
    },
    /// Hive grants to replay.
    Hive {
        /// The statements.
        statements: Vec<String>,
    },
    /// Unity Catalog grants to add.
    Uc {
        /// Securable type.
        securable_type: String,
        /// Full name.
        full_name: String,
        /// Privileges to add.
        changes: Vec<PermissionsChange>,
    },
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
        self.action = action;
        let r = reason.into();
        if !r.is_empty() {
            self.reasons.push(r);
        }
        self
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
#[derive(Debug, Clone, Serialize)]
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
        items: Vec::new(),
        tree: Tree::default(),
        created_paths: BTreeMap::new(),
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
    items.sort_by(|a, b| {
        (
            crate::bundle::inventory::kind_rank(a.kind),
            &a.target,
            &a.source,
        )
            .cmp(&(
                crate::bundle::inventory::kind_rank(b.kind),
                &b.target,
                &b.source,
            ))
    });
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

/// What planning has learned so far, shared by every kind's [`super::unit::Unit`].
pub(crate) struct Planner<'a, 'b> {
    /// What the models stage would do with each registered model, by name.
    pub(crate) model_actions: BTreeMap<String, Action>,
    pub(crate) input: &'a PlanInput<'b>,
    pub(crate) mapper: &'a Mapper<'a>,
    pub(crate) items: Vec<PlanItem>,
    pub(crate) tree: Tree,
    /// Target path → (action, kind) of workspace objects and repos in this plan.
    pub(crate) created_paths: BTreeMap<String, (Action, Kind)>,
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

    pub(crate) fn selected_path(&self, path: &str) -> bool {
        self.opts().filter.path(path)
    }

    /// True when `path` is inside a repo of the bundle (repo content comes from its remote).
    pub(crate) fn inside_repo(&self, path: &str) -> Option<String> {
        self.src().repos.iter().find_map(|r| {
            let rp = r.path.as_deref()?;
            path.starts_with(&format!("{rp}/")).then(|| rp.to_string())
        })
    }

    pub(crate) async fn workspace(&mut self) -> Result<(), ImportError> {
        let f = &self.opts().filter;
        let m = &self.opts().mapping;
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        let dirs: Vec<(String, String)> = if f.kind(Kind::Directory) {
            self.src()
                .directories
                .iter()
                .filter(|d| self.selected_path(&d.path))
                .map(|d| (d.path.clone(), m.path(&d.path)))
                .collect()
        } else {
            Vec::new()
        };
        let objects: Vec<(usize, String)> = self
            .src()
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| f.kind(o.kind) && self.selected_path(&o.path))
            .map(|(i, o)| (i, m.path(&o.path)))
            .collect();
        for (_, t) in &dirs {
            wanted.insert(t.clone());
        }
        for (_, t) in &objects {
            wanted.insert(t.clone());
        }
        if f.kind(Kind::Repo) {
            for r in &self.src().repos {
                if let Some(p) = &r.path {
                    if self.selected_path(p) {
                        wanted.insert(m.path(p));
                    }
                }
            }
        }
        self.tree = list_tree(self.client(), &wanted, self.limit)
            .await
            .map_err(|e| self.err(e))?;

        for (src, tgt) in dirs {
            let mut item = PlanItem::new(Kind::Directory, &src, &tgt);
            item.key = keys::object("dir", &tgt);
            if src != tgt {
                item.notes.push(format!("{src} → {tgt}"));
            }
            if let Some(repo) = self.inside_repo(&src) {
                item = item.set(
                    Action::Skip,
                    format!("inside the Git folder {repo}; its content comes from the remote"),
                );
            } else if self
                .src()
                .repos
                .iter()
                .any(|r| r.path.as_deref() == Some(src.as_str()))
            {
                item = item.set(Action::Skip, "it is a Git folder, replayed as a repo");
            } else {
                match self.tree.get(&tgt).map(|o| o.object_type) {
                    Some(ObjectType::Directory) => item.action = Action::Unchanged,
                    Some(other) => {
                        let (a, r) =
                            self.conflict(format!("a {other:?} exists at {tgt}").to_lowercase());
                        item = item.set(
                            if a == Action::Update {
                                Action::Refuse
                            } else {
                                a
                            },
                            r,
                        );
                    }
                    None if tgt == "/" => item.action = Action::Unchanged,
                    None => {
                        item.action = Action::Create;
                        if self.input.mode == Mode::Diff {
                            item.reasons.push("missing in target".into());
                        }
                        item.step = Some(Step::Dir { path: tgt.clone() });
                    }
                }
            }
            self.created_paths
                .insert(tgt.clone(), (item.action, Kind::Directory));
            self.items.push(item);
        }

        // Objects: compare the content of those that exist.
        let mut to_compare: Vec<(usize, String)> = Vec::new();
        let mut pending: Vec<PlanItem> = Vec::new();
        for (idx, tgt) in objects {
            let o = &self.src().objects[idx];
            let kname = if o.kind == Kind::Notebook {
                "notebook"
            } else {
                "file"
            };
            let mut item = PlanItem::new(o.kind, &o.path, &tgt);
            item.key = keys::object(kname, &tgt);
            if o.path != tgt {
                item.notes.push(format!("{} → {tgt}", o.path));
            }
            let want_type = if o.kind == Kind::Notebook {
                ObjectType::Notebook
            } else {
                ObjectType::File
            };
            if let Some(repo) = self.inside_repo(&o.path) {
                pending.push(item.set(
                    Action::Skip,
                    format!("inside the Git folder {repo}; its content comes from the remote"),
                ));
                continue;
            }
            if o.stored.is_none() {
                let why = if o.notes.is_empty() {
                    "the bundle holds no content for it".to_string()
                } else {
                    format!("the bundle holds no content for it: {}", o.notes.join("; "))
                };
                pending.push(item.set(Action::Cannot, why));
                continue;
            }
            if o.size > MAX_IMPORT_BYTES {
                pending.push(item.set(
                    Action::Cannot,
                    format!(
                        "{} bytes, over the 10 MB the workspace import API accepts",
                        o.size
                    ),
                ));
                continue;
            }
            match self.tree.get(&tgt) {
                None => {
                    item.action = Action::Create;
                    if self.input.mode == Mode::Diff {
                        item.reasons.push("missing in target".into());
                    }
                    item.step = Some(Step::Import {
                        index: idx,
                        path: tgt.clone(),
                        overwrite: false,
                    });
                    pending.push(item);
                }
                Some(info) if info.object_type != want_type => {
                    let (a, r) = self.conflict(format!(
                        "a {} exists at {tgt}",
                        format!("{:?}", info.object_type).to_lowercase()
                    ));
                    // An object of another type cannot be overwritten in place.
                    pending.push(item.set(
                        if a == Action::Update {
                            Action::Refuse
                        } else {
                            a
                        },
                        r,
                    ));
                }
                Some(info) => {
                    // Always compared with what the target holds: a journal line says only
                    // what an earlier run put, not that nobody changed it since.
                    let lang_differs = o.kind == Kind::Notebook
                        && o.language.is_some()
                        && info.language.is_some()
                        && o.language != info.language;
                    if lang_differs {
                        let (a, r) = self.conflict(format!(
                            "a {} notebook exists at {tgt}",
                            info.language.map(|l| l.as_str()).unwrap_or("")
                        ));
                        pending.push(self.with_import_step(item, a, r, idx, &tgt));
                    } else {
                        to_compare.push((idx, tgt.clone()));
                        pending.push(item);
                    }
                }
            }
        }
        // Export the existing ones and compare.
        let client = self.client().clone();
        let src = self.input.source;
        let compared = concurrently(to_compare, self.limit, |(idx, tgt)| {
            let client = client.clone();
            async move {
                let o = &src.objects[idx];
                let format = if o.kind == Kind::Notebook && o.format != Format::Source {
                    o.format
                } else {
                    Format::Source
                };
                let r = client.workspace().export(&tgt, format, None).await;
                (idx, tgt, r)
            }
        })
        .await;
        let mut verdicts: BTreeMap<String, Result<bool, String>> = BTreeMap::new();
        for (idx, tgt, r) in compared {
            let o = &self.src().objects[idx];
            let v = match r {
                Ok(bytes) => {
                    let same_hash = o
                        .sha256
                        .as_deref()
                        .is_some_and(|h| h == hex::encode(sha256(&bytes)));
                    if same_hash {
                        Ok(true)
                    } else if o.kind == Kind::Notebook && o.format != Format::Source {
                        // Rich formats are not byte-stable across exports.
                        Ok(false)
                    } else {
                        let stored = o.stored.clone().unwrap_or_default();
                        let mine = self.src().read(&stored, MAX_IMPORT_BYTES)?;
                        Ok(same_content(&mine, &bytes))
                    }
                }
                Err(e) if e.is_auth_failure() => return Err(self.err(e)),
                Err(e) => Err(e.to_string()),
            };
            verdicts.insert(tgt, v);
        }
        for mut item in pending {
            if item.action == Action::Unchanged && item.step.is_none() {
                if let Some(v) = verdicts.remove(&item.target) {
                    let idx = self
                        .src()
                        .objects
                        .iter()
                        .position(|o| o.path == item.source)
                        .unwrap_or(0);
                    let tgt = item.target.clone();
                    item = match v {
                        Ok(true) => item,
                        Ok(false) => {
                            let (a, r) = self.conflict(format!("{tgt} exists with other content"));
                            self.with_import_step(item, a, r, idx, &tgt)
                        }
                        Err(e) => {
                            let (a, r) = self
                                .conflict(format!("{tgt} exists and could not be compared: {e}"));
                            self.with_import_step(item, a, r, idx, &tgt)
                        }
                    };
                }
            }
            self.created_paths
                .insert(item.target.clone(), (item.action, item.kind));
            self.items.push(item);
        }
        Ok(())
    }

    pub(crate) fn with_import_step(
        &self,
        mut item: PlanItem,
        a: Action,
        r: String,
        idx: usize,
        tgt: &str,
    ) -> PlanItem {
        item = item.set(a, r);
        if a == Action::Update {
            item.step = Some(Step::Import {
                index: idx,
                path: tgt.to_string(),
                overwrite: true,
            });
        }
        item
    }

    pub(crate) async fn secrets(&mut self) -> Result<(), ImportError> {
        let f = &self.opts().filter;
        let (want_scopes, want_secrets) = (f.kind(Kind::SecretScope), f.kind(Kind::Secret));
        if !want_scopes && !want_secrets {
            return Ok(());
        }
        let client = self.client().clone();
        let target_scopes = client
            .secrets()
            .list_scopes()
            .await
            .map_err(|e| self.err(e))?;
        let m = &self.opts().mapping;
        let existing: BTreeMap<String, ScopeBackend> = target_scopes
            .iter()
            .map(|s| (s.name.clone(), s.backend_type))
            .collect();
        // Keys and ACLs of the scopes that exist.
        let to_read: Vec<String> = self
            .src()
            .scopes
            .iter()
            .map(|s| m.scope(&s.name).to_string())
            .filter(|t| existing.contains_key(t))
            .collect();
        let read = concurrently(to_read, self.limit, |name| {
            let client = client.clone();
            async move {
                let api = client.secrets();
                let (keys, acls) = tokio::join!(api.list_secrets(&name), api.list_acls(&name));
                (name, keys, acls)
            }
        })
        .await;
        let mut keys_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut acls_of: BTreeMap<String, Vec<AclItem>> = BTreeMap::new();
        for (name, k, a) in read {
            keys_of.insert(
                name.clone(),
                k.map_err(|e| self.err(e))?
                    .into_iter()
                    .map(|s| s.key)
                    .collect(),
            );
            acls_of.insert(name, a.map_err(|e| self.err(e))?);
        }
        let me = self
            .mapper
            .directory()
            .me
            .as_ref()
            .map(|p| p.name().to_string());
        let mut kv_scopes: BTreeSet<String> = BTreeSet::new();
        for s in &self.src().scopes {
            let tgt = m.scope(&s.name).to_string();
            if s.backend == ScopeBackend::AzureKeyvault {
                kv_scopes.insert(s.name.clone());
                if want_scopes {
                    let mut item = PlanItem::new(Kind::SecretScope, &s.name, &tgt).set(
                        Action::Skip,
                        "backed by Azure Key Vault: recreate it by hand (see must recreate)",
                    );
                    item.key = keys::scope(&tgt);
                    self.items.push(item);
                }
                continue;
            }
            if !want_scopes {
                continue;
            }
            let mut item = PlanItem::new(Kind::SecretScope, &s.name, &tgt);
            item.key = keys::scope(&tgt);
            if s.name != tgt {
                item.notes.push(format!("{} → {tgt}", s.name));
            }
            if !crate::model::secret::is_valid_name(&tgt) {
                self.items.push(item.set(
                    Action::Refuse,
                    format!("{tgt:?} is not a valid scope name ([A-Za-z0-9._-], at most 128)"),
                ));
                continue;
            }
            let mut desired: Vec<AclItem> = Vec::new();
            let mut unmapped = Vec::new();
            for a in &s.acls {
                match self
                    .mapper
                    .map(&a.principal, &format!("secret scope {}: ACL", s.name))
                {
                    PrincipalOutcome::Use(to) => desired.push(AclItem {
                        principal: to,
                        permission: a.permission,
                    }),
                    PrincipalOutcome::Drop => item.notes.push(format!(
                        "{} {:?} dropped (unmapped principal)",
                        a.principal, a.permission
                    )),
                    PrincipalOutcome::Unmapped => unmapped.push(a.principal.clone()),
                }
            }
            desired.sort();
            desired.dedup_by(|a, b| a.principal.eq_ignore_ascii_case(&b.principal));
            if !unmapped.is_empty() {
                self.items.push(item.set(
                    Action::Refuse,
                    format!("ACL names unmapped principal(s): {}", unmapped.join(", ")),
                ));
                continue;
            }
            match existing.get(&tgt) {
                Some(ScopeBackend::AzureKeyvault) => {
                    let (a, r) = self.conflict(format!(
                        "a Key Vault-backed scope {tgt} exists in the target"
                    ));
                    self.items.push(item.set(
                        if a == Action::Update {
                            Action::Refuse
                        } else {
                            a
                        },
                        r,
                    ));
                }
                Some(_) => {
                    let current = acls_of.get(&tgt).cloned().unwrap_or_default();
                    let (put, delete) = scope_acl_changes(&desired, &current, me.as_deref());
                    if put.is_empty() && delete.is_empty() {
                        item.action = Action::Unchanged;
                    } else {
                        item.action = Action::Update;
                        item.reasons.push(format!(
                            "ACL differs ({} to set, {} to remove)",
                            put.len(),
                            delete.len()
                        ));
                        item.step = Some(Step::Scope {
                            name: tgt.clone(),
                            create: false,
                            acl: desired,
                            put,
                            delete,
                        });
                    }
                    self.items.push(item);
                }
                None => {
                    item.action = Action::Create;
                    if self.input.mode == Mode::Diff {
                        item.reasons.push("missing in target".into());
                    }
                    item.step = Some(Step::Scope {
                        name: tgt.clone(),
                        create: true,
                        acl: desired,
                        put: Vec::new(),
                        delete: Vec::new(),
                    });
                    self.items.push(item);
                }
            }
        }
        if !want_secrets {
            return Ok(());
        }
        let scope_actions: BTreeMap<String, Action> = self
            .items
            .iter()
            .filter(|i| i.kind == Kind::SecretScope)
            .map(|i| (i.target.clone(), i.action))
            .collect();
        for (idx, sec) in self.src().secrets.iter().enumerate() {
            let tscope = m.scope(&sec.scope).to_string();
            let name = format!("{}/{}", sec.scope, sec.key);
            let mut item = PlanItem::new(Kind::Secret, &name, format!("{tscope}/{}", sec.key));
            item.key = keys::secret(&tscope, &sec.key);
            if kv_scopes.contains(&sec.scope) {
                self.items.push(item.set(
                    Action::Skip,
                    "its scope is backed by Azure Key Vault; the value lives in the vault",
                ));
                continue;
            }
            match scope_actions.get(&tscope) {
                Some(Action::Refuse | Action::Skip | Action::Cannot) => {
                    self.items.push(
                        item.set(Action::Skip, format!("its scope {tscope} is not imported")),
                    );
                    continue;
                }
                None if !existing.contains_key(&tscope) => {
                    self.items.push(item.set(
                        Action::Cannot,
                        format!(
                            "its scope {tscope} does not exist in the target and is not imported"
                        ),
                    ));
                    continue;
                }
                _ => {}
            }
            let Some(sealed) = sec.sealed_sha256.clone() else {
                let why = if sec.notes.is_empty() {
                    "the bundle holds no value for it".to_string()
                } else {
                    format!("the bundle holds no value for it: {}", sec.notes.join("; "))
                };
                self.items.push(item.set(Action::Cannot, why));
                continue;
            };
            let step = Step::Secret {
                index: idx,
                scope: tscope.clone(),
            };
            let exists = keys_of.get(&tscope).is_some_and(|k| k.contains(&sec.key));
            if !exists {
                item.action = Action::Create;
                if self.input.mode == Mode::Diff {
                    item.reasons.push("missing in target".into());
                }
                item.step = Some(step);
                self.items.push(item);
                continue;
            }
            // What the target shows decides; the journal speaks only where the target cannot
            // be read (no opened value, or a workspace that refuses reading values back).
            let mine = self.input.secrets.and_then(|v| v.get(&sec.scope, &sec.key));
            let verdict = secret_value_matches(&client, &tscope, &sec.key, mine)
                .await
                .map_err(|e| self.err(e))?;
            let k = self.input.knowledge;
            let journaled = |key: String| {
                self.input.mode == Mode::Import
                    && k.field(&key, "sealed_sha256") == Some(sealed.as_str())
            };
            match verdict {
                Some(true) => item.action = Action::Unchanged,
                Some(false) => {
                    let (a, r) = self.conflict(format!("{tscope}/{} holds another value", sec.key));
                    item = item.set(a, r);
                    if a == Action::Update {
                        item.step = Some(step);
                    }
                }
                None if self.input.mode == Mode::Diff => {
                    item.action = Action::Unchanged;
                    item.notes.push(
                        "value not compared (give --identity, and the workspace must allow reading values)"
                            .into(),
                    );
                }
                None if journaled(keys::secret(&tscope, &sec.key)) => {
                    item.action = Action::Unchanged;
                    item.notes.push(
                        "value not read back; the journal records that this bundle's value was put"
                            .into(),
                    );
                }
                None if journaled(keys::secret_intent(&tscope, &sec.key)) => {
                    item.action = Action::Update;
                    item.reasons
                        .push("put again: an interrupted run may have put it".into());
                    item.step = Some(step);
                }
                None => {
                    let (a, r) = self.conflict(format!(
                        "{tscope}/{} exists and its value was not put by this bundle (values cannot be read back to compare)",
                        sec.key
                    ));
                    item = item.set(a, r);
                    if a == Action::Update {
                        item.step = Some(step);
                    }
                }
            }
            self.items.push(item);
        }
        Ok(())
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

    pub(crate) async fn jobs(&mut self) -> Result<(), ImportError> {
        if !self.opts().filter.kind(Kind::Job) {
            return Ok(());
        }
        let jobs: Jobs = read_jobs(self.client()).await.map_err(|e| self.err(e))?;
        let src = self.input.source;
        // Every source job id a reference may name → the id it has in the target, when known.
        let mut known: BTreeMap<i64, i64> = BTreeMap::new();
        let bundle_ids: BTreeSet<i64> = src.jobs.iter().map(|j| j.job_id).collect();
        for j in &src.jobs {
            if let Some(t) = jobs.find(&src.job_tag(j.job_id)) {
                known.insert(j.job_id, t.job_id);
            }
        }
        // References to jobs outside the bundle can still resolve through their tags.
        for j in &src.jobs {
            for r in job_refs(&j.settings) {
                if !bundle_ids.contains(&r) {
                    if let Some(t) = jobs.find(&src.job_tag(r)) {
                        known.insert(r, t.job_id);
                    }
                }
            }
        }
        let resolvable: BTreeMap<i64, i64> = bundle_ids
            .iter()
            .chain(known.keys())
            .map(|id| (*id, *id))
            .collect();
        let keep_schedules = self.opts().keep_schedules;
        for j in &src.jobs {
            let name = j
                .settings
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let place = format!("job {name} ({})", j.job_id);
            let mut item = PlanItem::new(Kind::Job, format!("{name} ({})", j.job_id), &name);
            item.key = keys::job(j.job_id);
            let mut settings = j.settings.clone();
            for f in crate::model::job::SERVER_SETTINGS_FIELDS {
                settings.remove(f);
            }
            let mapper = self.mapper;
            let map_principal = |n: &str, field: &str| mapper.map(n, &format!("{place}: {field}"));
            let external = |a: &str| a.contains('@') && !mapper.is_source_principal(a);
            let ctx = JobContext {
                mapping: &self.opts().mapping,
                map_principal: &map_principal,
                is_external_address: &external,
                job_ids: &resolvable,
                keep_schedules,
                source_tag: src.job_tag(j.job_id),
            };
            let rw = rewrite_job(&settings, &ctx);
            item.notes.extend(rw.notes.iter().map(|n| n.0.clone()));
            let existing = jobs.find(&src.job_tag(j.job_id));
            if let Some(e) = existing {
                item.target = format!("{name} (job {})", e.job_id);
                let dups: Vec<String> = jobs.by_tag[&src.job_tag(j.job_id)]
                    .iter()
                    .skip(1)
                    .map(|d| d.job_id.to_string())
                    .collect();
                if !dups.is_empty() {
                    item.notes.push(format!(
                        "other target jobs carry the same source tag ({}); job {} is used",
                        dups.join(", "),
                        e.job_id
                    ));
                }
            }
            if !rw.refusals.is_empty() {
                for r in &rw.refusals {
                    if let Refusal::UnmappedCluster { cluster_id } = r {
                        self.unmapped_clusters
                            .entry(cluster_id.clone())
                            .or_default()
                            .insert(place.clone());
                    }
                }
                item.action = Action::Refuse;
                item.reasons = rw.refusals.iter().map(|r| r.to_string()).collect();
                self.job_items.insert(j.job_id, Action::Refuse);
                self.items.push(item);
                continue;
            }
            let template = rw.settings;
            match existing {
                None => {
                    item.action = Action::Create;
                    if self.input.mode == Mode::Diff {
                        item.reasons.push("missing in target".into());
                    }
                    item.step = Some(Step::Job {
                        source_id: j.job_id,
                        existing: None,
                        template,
                    });
                }
                Some(e) => {
                    let refs = job_refs(&template);
                    let unresolved: Vec<i64> = refs
                        .into_iter()
                        .filter(|r| !known.contains_key(r))
                        .collect();
                    let diff = if unresolved.is_empty() {
                        let mut s = template.clone();
                        substitute_job_refs(&mut s, &known);
                        let mut have = e.settings.clone();
                        for f in crate::model::job::SERVER_SETTINGS_FIELDS {
                            have.remove(f);
                        }
                        first_difference(&Value::Object(s), &Value::Object(have))
                            .map(|p| format!("settings differ at {p}"))
                    } else {
                        Some(format!(
                            "run_job_task references job(s) {} that this import creates",
                            unresolved
                                .iter()
                                .map(i64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    };
                    match diff {
                        None => item.action = Action::Unchanged,
                        Some(d) => {
                            item.action = Action::Update;
                            item.reasons.push(d);
                            item.step = Some(Step::Job {
                                source_id: j.job_id,
                                existing: Some(e.job_id),
                                template,
                            });
                        }
                    }
                }
            }
            self.job_items.insert(j.job_id, item.action);
            self.items.push(item);
        }
        self.job_ids = known;
        Ok(())
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

pub(crate) fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
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

/// Rewrites every `run_job_task.job_id` of `settings` (source ids) through `ids`; ids not in
/// `ids` are left as they are.
pub fn substitute_job_refs(settings: &mut Map<String, Value>, ids: &BTreeMap<i64, i64>) {
    crate::model::job::substitute_run_job_ids(settings, ids);
}

/// Source job ids a job's settings reference through `run_job_task`, nested tasks included.
pub fn job_refs(settings: &Map<String, Value>) -> Vec<i64> {
    let mut out = crate::model::job::run_job_references(settings);
    out.sort();
    out.dedup();
    out
}

/// The parent folders (target paths) a create of `path` needs.
pub fn needs_parent(tree: &Tree, path: &str) -> Option<String> {
    let parent = parent_path(path);
    (!tree.is_dir(parent)).then(|| parent.to_string())
}
