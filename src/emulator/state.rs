//! The in-memory workspace: every resource the emulator serves, held in [`crate::model`] types,
//! plus the bookkeeping real workspaces keep out of sight (object ids, ACLs, upload handles,
//! statement results). One [`State`] sits behind one mutex; every request locks it for the span
//! of a single operation and never across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use zeroize::Zeroizing;

use crate::model::compute::{Cluster, ClusterPolicy, InstancePool, Mount, Warehouse};
use crate::model::grants::{HiveGrant, PrivilegeAssignment};
use crate::model::job::Job;
use crate::model::mlflow::{ModelVersion, RegisteredModel};
use crate::model::permissions::{AccessControlRequest, PrincipalRef};
use crate::model::principal::{Group, ServicePrincipal, User};
use crate::model::repo::{GitCredential, Repo};
use crate::model::secret::{AclPermission, KeyVaultMetadata, ScopeBackend, ValueEncoding};
use crate::model::workspace::{Language, ObjectType};

use super::extract::Caller;
use super::faults::FaultState;
use super::stats::StatsRecorder;

/// What every request handler reaches through [`super::extract::Ctx`].
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The state's clock, also reachable without its lock (rate limits read it per request).
    pub clock: crate::clock::Clock,
    pub stats: StatsRecorder,
    pub faults: Mutex<FaultState>,
    pub settings: Settings,
}

impl Shared {
    pub fn new(state: State, faults: FaultState, settings: Settings) -> Shared {
        Shared {
            clock: state.clock.clone(),
            state: Mutex::new(state),
            stats: StatsRecorder::default(),
            faults: Mutex::new(faults),
            settings,
        }
    }

    /// Locks the state. A handler that panicked cannot have left it half-changed in a way a
    /// test could not see, so a poisoned lock is taken over rather than propagated.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Behaviour fixed at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Rows per result chunk of the SQL statement API.
    pub sql_chunk_rows: usize,
    /// Lifetime of OAuth access tokens.
    pub oauth_token_ttl_secs: u64,
    /// Sent as `X-Databricks-Org-Id` on every answer.
    pub workspace_id: String,
}

/// Identity and behaviour switches of the workspace (`workspace.json`).
#[derive(Debug, Clone)]
pub(crate) struct WorkspaceInfo {
    pub workspace_id: String,
    pub secrets_get_refused: bool,
    pub first_object_id: i64,
}

/// Counters that hand out ids in a deterministic order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ids {
    pub next_object_id: i64,
    pub next_job_id: i64,
    pub next_credential_id: i64,
    pub next_handle: i64,
    pub next_seq: u64,
    pub next_model: u64,
}

/// A personal access token (from the seed or `token/create`) and the user it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct TokenGrant {
    pub token: String,
    pub user_name: String,
    /// What `token/list` shows: a one-way hash of the value, never the value.
    pub token_id: String,
    pub comment: Option<String>,
    /// Epoch milliseconds; `None` for a token the seed planted.
    pub creation_time: Option<i64>,
    /// Epoch milliseconds, or -1 for a token that never expires.
    pub expiry_time: i64,
}

impl TokenGrant {
    /// A grant for `token`, its id derived from the value.
    pub fn new(token: String, user_name: String) -> TokenGrant {
        use sha2::Digest as _;
        let token_id = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        TokenGrant {
            token,
            user_name,
            token_id,
            comment: None,
            creation_time: None,
            expiry_time: -1,
        }
    }
}

/// An OAuth client (a service principal's secret) from the seed.
#[derive(Debug, Clone)]
pub(crate) struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub application_id: String,
}

/// An OAuth access token the emulator issued.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub caller: Caller,
    pub expires: Instant,
    /// What the token may be used for: only [`Audience::Databricks`] tokens open the APIs.
    pub audience: Audience,
}

/// The resource an access token was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// The workspace's own OAuth, or an Entra token for the Azure Databricks resource.
    Databricks,
    /// An Entra token for the Azure service management endpoint, sent only as
    /// `X-Databricks-Azure-SP-Management-Token`.
    Management,
}

/// A `/oidc/v1/authorize` request waiting for the test user's approval.
#[derive(Debug, Clone)]
pub(crate) struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub expires: Instant,
}

/// An authorization code handed to a redirect URI, redeemable once.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizationCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub caller: Caller,
    pub expires: Instant,
}

/// A refresh token the emulator issued (rotated on every use).
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub scope: String,
    pub caller: Caller,
}

/// The user-to-machine OAuth flows in progress and the refresh tokens issued.
#[derive(Debug, Clone, Default)]
pub(crate) struct OAuthFlows {
    pub pending: HashMap<String, PendingAuthorization>,
    pub codes: HashMap<String, AuthorizationCode>,
    pub refresh: HashMap<String, RefreshGrant>,
}

/// A service principal's Entra ID client secret.
#[derive(Debug, Clone)]
pub(crate) struct EntraClient {
    pub client_id: String,
    pub client_secret: String,
}

/// The emulated Entra ID tenant of an Azure workspace (`tokens.json` `entra`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Entra {
    pub tenant_id: String,
    /// The workspace's Azure resource id; when set, an
    /// `X-Databricks-Azure-Workspace-Resource-Id` header must name it.
    pub workspace_resource_id: Option<String>,
    pub clients: Vec<EntraClient>,
    /// Managed identities by client id; the first is the system-assigned one.
    pub managed_identities: Vec<String>,
    /// The secret `X-IDENTITY-HEADER` of the `IDENTITY_ENDPOINT` flavour.
    pub identity_header: Option<String>,
    /// Requests that carried a valid `X-Databricks-Azure-SP-Management-Token`, and a matching
    /// `X-Databricks-Azure-Workspace-Resource-Id` (for tests).
    pub seen_management_tokens: u64,
    pub seen_resource_ids: u64,
}

/// Users, groups and service principals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Principals {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub service_principals: Vec<ServicePrincipal>,
}

impl Principals {
    /// True when the principal an ACL entry names exists.
    pub fn exists(&self, p: &PrincipalRef) -> bool {
        match p {
            PrincipalRef::UserName(n) => self.users.iter().any(|u| &u.user_name == n),
            PrincipalRef::GroupName(n) => self.groups.iter().any(|g| &g.display_name == n),
            PrincipalRef::ServicePrincipalName(n) => self
                .service_principals
                .iter()
                .any(|s| &s.application_id == n),
        }
    }

    /// True when `name` is a user name, group name or application id.
    pub fn name_exists(&self, name: &str) -> bool {
        self.users.iter().any(|u| u.user_name == name)
            || self.groups.iter().any(|g| g.display_name == name)
            || self
                .service_principals
                .iter()
                .any(|s| s.application_id == name)
    }
}

/// One workspace object.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub object_type: ObjectType,
    pub object_id: i64,
    pub language: Option<Language>,
    /// Notebook source (SOURCE export, header included) or file bytes.
    pub content: Vec<u8>,
    pub created_at: i64,
    pub modified_at: i64,
    /// Size of the cell outputs a notebook carries in its rich exports.
    pub outputs_bytes: u64,
    /// Direct ACL entries.
    pub acl: Vec<AccessControlRequest>,
}

impl Node {
    /// True for objects that hold others (folders and repo roots).
    pub fn is_container(&self) -> bool {
        matches!(self.object_type, ObjectType::Directory | ObjectType::Repo)
    }
}

/// The workspace tree, keyed by normalised absolute path, with an index by object id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    pub nodes: BTreeMap<String, Node>,
    pub by_id: HashMap<i64, String>,
}

impl Tree {
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        self.nodes.get_mut(path)
    }

    pub fn insert(&mut self, path: String, node: Node) {
        if let Some(old) = self.nodes.get(&path) {
            self.by_id.remove(&old.object_id);
        }
        self.by_id.insert(node.object_id, path.clone());
        self.nodes.insert(path, node);
    }

    pub fn path_of(&self, object_id: i64) -> Option<&str> {
        self.by_id.get(&object_id).map(String::as_str)
    }

    /// The paths directly inside `dir`, in sorted order.
    pub fn children(&self, dir: &str) -> Vec<String> {
        child_keys(&self.nodes, dir)
    }

    /// Every path at or below `root`, in sorted order.
    pub fn subtree(&self, root: &str) -> Vec<String> {
        subtree_keys(&self.nodes, root)
    }

    /// Removes `root` and everything below it, returning what was removed.
    pub fn remove_subtree(&mut self, root: &str) -> Vec<(String, Node)> {
        let paths = self.subtree(root);
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            if let Some(n) = self.nodes.remove(&p) {
                self.by_id.remove(&n.object_id);
                out.push((p, n));
            }
        }
        out
    }
}

/// The keys directly inside `dir` of a map keyed by absolute path, in sorted order. Skips whole
/// subtrees, so listing costs O(children · log n), not O(descendants).
pub(crate) fn child_keys<V>(map: &BTreeMap<String, V>, dir: &str) -> Vec<String> {
    use std::ops::Bound;
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let mut out = Vec::new();
    let mut lower: Bound<String> = Bound::Excluded(prefix.clone());
    loop {
        let next = map
            .range::<String, _>((lower.as_ref(), Bound::Unbounded))
            .next();
        let Some((path, _)) = next else { break };
        if !path.starts_with(&prefix) {
            break;
        }
        let rest = &path[prefix.len()..];
        match rest.find('/') {
            None => {
                out.push(path.clone());
                lower = Bound::Excluded(path.clone());
            }
            Some(i) => {
                // Inside a child's subtree: everything below `x` sorts before `x0` ('0' follows
                // '/'), so jump there. Siblings such as `x-y` or `x.txt` sort between `x` and
                // `x/` and were seen already.
                lower = Bound::Included(format!("{}{}0", prefix, &rest[..i]));
            }
        }
    }
    out
}

/// Every key at or below `root` of a map keyed by absolute path, in sorted order.
pub(crate) fn subtree_keys<V>(map: &BTreeMap<String, V>, root: &str) -> Vec<String> {
    let prefix = if root == "/" {
        "/".to_string()
    } else {
        format!("{root}/")
    };
    let mut out = Vec::new();
    if map.contains_key(root) {
        out.push(root.to_string());
    }
    for (p, _) in map.range::<String, _>(prefix.clone()..) {
        if !p.starts_with(&prefix) {
            break;
        }
        if p != root {
            out.push(p.clone());
        }
    }
    out
}

/// A repo and its direct ACL.
#[derive(Debug, Clone)]
pub(crate) struct RepoState {
    pub repo: Repo,
    pub acl: Vec<AccessControlRequest>,
}

/// A git credential and the user it belongs to (each user sees only their own).
#[derive(Debug, Clone)]
pub(crate) struct CredentialState {
    pub cred: GitCredential,
    pub owner: String,
}

/// A job and its direct ACL (which holds the one `IS_OWNER`).
#[derive(Debug, Clone)]
pub(crate) struct JobState {
    pub job: Job,
    pub acl: Vec<AccessControlRequest>,
}

/// A stored secret value.
#[derive(Clone)]
pub(crate) struct SecretValue {
    pub value: Zeroizing<Vec<u8>>,
    pub encoding: ValueEncoding,
    pub updated: i64,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"[redacted]")
            .field("encoding", &self.encoding)
            .field("updated", &self.updated)
            .finish()
    }
}

/// A secret scope with its ACLs and values.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub backend: ScopeBackend,
    pub keyvault: Option<KeyVaultMetadata>,
    pub acls: BTreeMap<String, AclPermission>,
    pub secrets: BTreeMap<String, SecretValue>,
}

/// A table or view of the Hive metastore.
#[derive(Debug, Clone)]
pub(crate) struct HiveTable {
    pub is_view: bool,
    pub owner: Option<String>,
}

/// A database of the Hive metastore.
#[derive(Debug, Clone, Default)]
pub(crate) struct HiveDatabase {
    pub owner: Option<String>,
    pub tables: BTreeMap<String, HiveTable>,
    pub functions: BTreeMap<String, Option<String>>,
}

/// The legacy Hive metastore: objects (names lowercase), grants and denies, and owners.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hive {
    pub databases: BTreeMap<String, HiveDatabase>,
    /// Grants and denies (never `OWN`; owners live on the objects).
    pub grants: Vec<HiveGrant>,
    pub catalog_owner: Option<String>,
}

/// Unity Catalog securables known to exist, with their direct grants.
#[derive(Debug, Clone, Default)]
pub(crate) struct Unity {
    /// `(lowercase securable type, full name)` → assignments.
    pub securables: BTreeMap<(String, String), Vec<PrivilegeAssignment>>,
}

/// A registered model with its versions.
#[derive(Debug, Clone)]
pub(crate) struct ModelState {
    /// The Databricks id (`registered_model_databricks.id`), used by the permissions API.
    pub id: String,
    /// The model; `latest_versions` is computed when served.
    pub model: RegisteredModel,
    pub versions: BTreeMap<u64, ModelVersion>,
    pub acl: Vec<AccessControlRequest>,
    /// The number the next version gets (numbers are never reused).
    pub next_version: u64,
    /// Versions still `PENDING_REGISTRATION`: the status (and message) each takes at its first
    /// `model-versions/get`. A pending version missing here (one read from a seed) becomes
    /// `READY`.
    pub pending: BTreeMap<u64, (String, Option<String>)>,
}

/// Reference-only compute records.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compute {
    pub clusters: Vec<Cluster>,
    pub pools: Vec<InstancePool>,
    pub policies: Vec<ClusterPolicy>,
    pub warehouses: Vec<Warehouse>,
    /// Direct ACLs of clusters, pools and policies, keyed `<request type>/<id>`.
    pub acls: BTreeMap<String, Vec<AccessControlRequest>>,
}

/// One DBFS entry.
#[derive(Debug, Clone)]
pub(crate) struct DbfsNode {
    pub is_dir: bool,
    pub data: Vec<u8>,
    pub mtime: i64,
}

/// The DBFS root (also holding `/Volumes` for the Files API), keyed by absolute path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dbfs {
    pub nodes: BTreeMap<String, DbfsNode>,
}

/// An open DBFS streaming upload (`dbfs/create` … `dbfs/close`).
#[derive(Debug, Clone)]
pub(crate) struct DbfsHandle {
    pub path: String,
    pub data: Vec<u8>,
}

/// A submitted SQL statement and its result.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    /// The terminal response (status, manifest, first chunk).
    pub response: serde_json::Value,
    /// Result chunks, each a `ResultData` object.
    pub chunks: Vec<serde_json::Value>,
    /// Polls left that still answer `PENDING` (for `wait_timeout=0s`).
    pub pending_polls: u32,
    pub canceled: bool,
}

/// An execution context on a cluster.
#[derive(Debug, Clone)]
pub(crate) struct ExecContext {
    pub cluster_id: String,
    pub language: String,
}

/// A finished command.
#[derive(Debug, Clone)]
pub(crate) struct CommandRecord {
    pub context_id: String,
    pub cluster_id: String,
    pub response: serde_json::Value,
}

/// The whole emulated workspace.
#[derive(Debug)]
pub(crate) struct State {
    pub workspace: WorkspaceInfo,
    pub fixed_clock: Option<i64>,
    /// What expires and refills runs on (real, or manual for tests).
    pub clock: crate::clock::Clock,
    pub ids: Ids,
    pub principals: Principals,
    pub tokens: Vec<TokenGrant>,
    pub oauth_clients: Vec<OAuthClient>,
    /// Tokens given on the command line or in the config; they act as the first admin.
    pub admin_tokens: Vec<String>,
    pub issued: HashMap<String, Issued>,
    pub oauth: OAuthFlows,
    /// `None` when the seed configures no Entra ID tenant: the Entra and managed-identity
    /// endpoints then answer as for an unknown tenant.
    pub entra: Option<Entra>,
    pub tree: Tree,
    pub repos: BTreeMap<i64, RepoState>,
    pub git_credentials: BTreeMap<i64, CredentialState>,
    pub jobs: BTreeMap<i64, JobState>,
    pub scopes: BTreeMap<String, Scope>,
    pub hive: Hive,
    pub unity: Unity,
    pub models: BTreeMap<String, ModelState>,
    /// Experiments, runs and logged models of the MLflow tracking API.
    pub tracking: super::tracking::Tracking,
    /// Unity Catalog registered models.
    pub uc: super::uc_models::UcRegistry,
    pub compute: Compute,
    pub mounts: Vec<Mount>,
    pub dbfs: Dbfs,
    pub handles: HashMap<i64, DbfsHandle>,
    pub statements: HashMap<String, Statement>,
    /// Statement ids, oldest first, so that old results are forgotten as on real warehouses.
    pub statement_order: VecDeque<String>,
    pub contexts: HashMap<String, ExecContext>,
    pub commands: HashMap<String, CommandRecord>,
    /// Command ids, oldest first.
    pub command_order: VecDeque<String>,
    /// Random salt of minted tokens and key of signed URLs (`signed.rs`), so that neither can
    /// be guessed.
    pub url_salt: String,
    /// Model ACLs read from a seed before the models themselves.
    pub pending_model_acls: BTreeMap<String, Vec<AccessControlRequest>>,
    /// What the endpoints older tools call keep: job runs, libraries, instance profiles.
    pub legacy: super::legacy::Legacy,
}

/// How many statement and command results are kept before the oldest are forgotten.
pub(crate) const KEPT_RESULTS: usize = 10_000;

/// The admin user an empty workspace gets, so that there is always someone to act as.
pub(crate) const DEFAULT_ADMIN: &str = "admin@emulator.invalid";

impl State {
    /// An empty workspace: root folder, `/Users`, `/Shared`, `/Repos`, the `admins` and `users`
    /// groups.
    pub fn empty(fixed_clock: Option<i64>) -> State {
        let mut salt = [0u8; 16];
        // A salt of zeros only makes signed URLs guessable, which a test emulator survives.
        let _ = getrandom::fill(&mut salt);
        State {
            workspace: WorkspaceInfo {
                workspace_id: "1234567890123456".to_string(),
                secrets_get_refused: false,
                first_object_id: 1000,
            },
            fixed_clock,
            clock: crate::clock::Clock::real(),
            ids: Ids {
                next_object_id: 1000,
                next_job_id: 1,
                next_credential_id: 1,
                next_handle: 1,
                next_seq: 1,
                next_model: 1,
            },
            principals: Principals::default(),
            tokens: Vec::new(),
            oauth_clients: Vec::new(),
            admin_tokens: Vec::new(),
            issued: HashMap::new(),
            oauth: OAuthFlows::default(),
            entra: None,
            tree: Tree::default(),
            repos: BTreeMap::new(),
            git_credentials: BTreeMap::new(),
            jobs: BTreeMap::new(),
            scopes: BTreeMap::new(),
            hive: Hive::default(),
            unity: Unity::default(),
            models: BTreeMap::new(),
            tracking: Default::default(),
            uc: super::uc_models::UcRegistry::default(),
            compute: Compute::default(),
            mounts: Vec::new(),
            dbfs: Dbfs::default(),
            handles: HashMap::new(),
            statements: HashMap::new(),
            statement_order: VecDeque::new(),
            contexts: HashMap::new(),
            commands: HashMap::new(),
            command_order: VecDeque::new(),
            url_salt: hex::encode(salt),
            pending_model_acls: BTreeMap::new(),
            legacy: super::legacy::Legacy::default(),
        }
    }

    /// The current time in epoch milliseconds, or the fixed clock.
    pub fn now(&self) -> i64 {
        if let Some(t) = self.fixed_clock {
            return t;
        }
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    pub fn next_object_id(&mut self) -> i64 {
        let id = self.ids.next_object_id;
        self.ids.next_object_id += 1;
        id
    }

    /// A sequence number for statement, context and command ids.
    pub fn next_seq(&mut self) -> u64 {
        let n = self.ids.next_seq;
        self.ids.next_seq += 1;
        n
    }

    /// The caller a bearer token stands for, if any.
    pub fn authenticate(&mut self, token: &str) -> Option<Caller> {
        if self.admin_tokens.iter().any(|t| t == token) {
            return Some(Caller::User(self.first_admin()));
        }
        let now = self.now();
        if let Some(t) = self.tokens.iter().find(|t| t.token == token) {
            if t.expiry_time >= 0 && t.expiry_time <= now {
                return None;
            }
            return Some(Caller::User(t.user_name.clone()));
        }
        match self.issued.get(token) {
            Some(i) if i.expires > self.clock.now() && i.audience == Audience::Databricks => {
                Some(i.caller.clone())
            }
            Some(i) if i.expires > self.clock.now() => None,
            Some(_) => {
                self.issued.remove(token);
                None
            }
            None => None,
        }
    }

    /// The user command-line tokens act as: the first user in `admins`, else the first user.
    pub fn first_admin(&self) -> String {
        let admins = self
            .principals
            .groups
            .iter()
            .find(|g| g.display_name == "admins");
        if let Some(g) = admins {
            for m in &g.members {
                if let Some(u) = self.principals.users.iter().find(|u| u.id == m.value) {
                    return u.user_name.clone();
                }
            }
        }
        self.principals
            .users
            .first()
            .map(|u| u.user_name.clone())
            .unwrap_or_else(|| DEFAULT_ADMIN.to_string())
    }

    /// Keeps a statement's result, forgetting the oldest beyond [`KEPT_RESULTS`].
    pub fn remember_statement(&mut self, id: String, s: Statement) {
        self.statement_order.push_back(id.clone());
        self.statements.insert(id, s);
        while self.statement_order.len() > KEPT_RESULTS {
            if let Some(old) = self.statement_order.pop_front() {
                self.statements.remove(&old);
            }
        }
    }

    /// Keeps a command's result, forgetting the oldest beyond [`KEPT_RESULTS`].
    pub fn remember_command(&mut self, id: String, c: CommandRecord) {
        self.command_order.push_back(id.clone());
        self.commands.insert(id, c);
        while self.command_order.len() > KEPT_RESULTS {
            if let Some(old) = self.command_order.pop_front() {
                self.commands.remove(&old);
            }
        }
    }

    /// Records an issued OAuth token, dropping expired ones so the table cannot grow forever.
    pub fn remember_token(&mut self, token: String, issued: Issued) {
        let now = self.clock.now();
        self.issued.retain(|_, i| i.expires > now);
        self.issued.insert(token, issued);
    }

    /// Forgets every access and refresh token issued to `principal` (user name or application
    /// id) and every code waiting to be redeemed for it. Returns how many were dropped.
    pub fn revoke(&mut self, principal: &str) -> usize {
        let before = self.issued.len() + self.oauth.refresh.len() + self.oauth.codes.len();
        self.issued.retain(|_, i| i.caller.name() != principal);
        self.oauth
            .refresh
            .retain(|_, r| r.caller.name() != principal);
        self.oauth.codes.retain(|_, c| c.caller.name() != principal);
        before - (self.issued.len() + self.oauth.refresh.len() + self.oauth.codes.len())
    }

    /// A fresh unguessable token: the salt and a sequence number, hashed.
    pub fn mint(&mut self, prefix: &str) -> String {
        use sha2::Digest as _;
        let n = self.next_seq();
        let mut h = sha2::Sha256::new();
        h.update(self.url_salt.as_bytes());
        h.update(prefix.as_bytes());
        h.update(n.to_le_bytes());
        format!("{prefix}{}", hex::encode(h.finalize()))
    }

    /// A deterministic id shaped like a UUID, for statements and similar handles.
    pub fn next_uuid(&mut self) -> String {
        let n = self.next_seq();
        format!("01ef0000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64) -> Node {
        Node {
            object_type: ObjectType::Directory,
            object_id: id,
            language: None,
            content: Vec::new(),
            created_at: 0,
            modified_at: 0,
            outputs_bytes: 0,
            acl: Vec::new(),
        }
    }

    #[test]
    fn children_skip_subtrees() {
        let mut t = Tree::default();
        for (i, p) in [
            "/", "/a", "/a/b", "/a/b/c", "/a/b-x", "/a/b.txt", "/a/c", "/ab", "/a/b/d/e",
        ]
        .iter()
        .enumerate()
        {
            t.insert(p.to_string(), node(i as i64));
        }
        assert_eq!(t.children("/"), vec!["/a", "/ab"]);
        assert_eq!(t.children("/a"), vec!["/a/b", "/a/b-x", "/a/b.txt", "/a/c"]);
        assert_eq!(t.children("/a/b"), vec!["/a/b/c"]);
        assert_eq!(t.subtree("/a/b"), vec!["/a/b", "/a/b/c", "/a/b/d/e"]);
        let removed = t.remove_subtree("/a/b");
        assert_eq!(removed.len(), 3);
        assert!(t.path_of(2).is_none());
        assert_eq!(t.children("/a"), vec!["/a/b-x", "/a/b.txt", "/a/c"]);
    }
}
