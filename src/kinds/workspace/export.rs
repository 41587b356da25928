//! The workspace tree: a breadth-first walk with exactly one `workspace/list` per folder (Git
//! folders are not descended: a repo is a link to its remote), feeding a bounded pool that
//! fetches each object once — a notebook's `SOURCE` (plus the richer format when asked), a
//! file's bytes, a repo's details — and its permissions once. Nothing asks for an object's
//! status: the listing already said what it is. A Git folder's notebooks are read only to scan
//! their code (the checklist promises every notebook line that uses a mount); they are not
//! stored, the remote holds them.
//!
//! A folder's notebooks come with one directory export (`SOURCE`: a zip of the folder's
//! notebooks, split locally by [`crate::client::archive`]) when at least two of them need
//! fetching; a notebook the archive does not carry cleanly (the folder over the export size
//! limit, the export failing, an entry missing, repeated or too large, a notebook whose
//! language the listing does not give) is exported on its own, as are workspace files, which
//! a `SOURCE` archive leaves out. Which way each folder went is in the run's statistics.

use crate::bundle::{Content, Resource};
use crate::client::archive;
use crate::export::context::{commit, reason, Ctx};
use crate::export::report::Outcome;
use crate::export::stage::DoneEntry;
use crate::kinds::permissions::export::{export_permissions, wants_permissions};
use crate::model::repo::Repo;
use crate::model::scan::{scan, Finding};
use crate::model::workspace::{Format, Language, ObjectInfo, ObjectType};
use crate::model::Kind;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, OnceCell};

/// A folder's notebooks are fetched with one directory export when at least this many of them
/// need fetching (one would cost the same request either way).
const MIN_ARCHIVE_NOTEBOOKS: usize = 2;

/// One object for the fetching pool, with the archive of its folder when its content comes
/// from one.
struct Work {
    info: ObjectInfo,
    archive: Option<Arc<FolderArchive>>,
}

impl Work {
    fn alone(info: ObjectInfo) -> Work {
        Work {
            info,
            archive: None,
        }
    }
}

/// A split folder archive: entry name → bytes, taken out as notebooks are staged.
type Entries = Mutex<BTreeMap<String, Vec<u8>>>;

/// The directory export of one folder, fetched once by whichever of its notebooks asks first;
/// each notebook takes its entry out, so the bytes are freed as they are staged.
struct FolderArchive {
    path: String,
    wanted: BTreeSet<String>,
    split: OnceCell<Option<Entries>>,
}

impl FolderArchive {
    /// The notebook's `SOURCE` bytes from the archive; `None` when it must be exported alone.
    async fn take(&self, ctx: &Arc<Ctx>, info: &ObjectInfo) -> Option<Vec<u8>> {
        let language = info.language?;
        let name = archive::entry_name(crate::model::workspace::base_name(&info.path), language);
        let entries = self.split.get_or_init(|| self.fetch(ctx)).await.as_ref()?;
        let mut map = entries.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&name)
    }

    async fn fetch(&self, ctx: &Arc<Ctx>) -> Option<Entries> {
        let n = self.wanted.len();
        let bytes = match ctx
            .client
            .workspace()
            .export(&self.path, Format::Source, None)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                let why = if e.is_too_large() {
                    "the folder is over the export size limit".to_string()
                } else {
                    format!("the directory export failed: {}", reason(&e))
                };
                ctx.folder_path(&self.path, format!("per object ({n} notebooks): {why}"));
                return None;
            }
        };
        let name = crate::model::workspace::base_name(&self.path).to_string();
        let wanted = self.wanted.clone();
        let split =
            tokio::task::spawn_blocking(move || archive::split(&bytes, &name, &wanted)).await;
        match split {
            Ok(Ok(s)) => {
                let how = if s.left_out.is_empty() {
                    format!("archive ({n} notebooks)")
                } else {
                    let why: Vec<String> = s
                        .left_out
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    format!(
                        "archive ({} notebooks), {} per object: {}",
                        s.entries.len(),
                        s.left_out.len(),
                        why.join("; ")
                    )
                };
                ctx.folder_path(&self.path, how);
                Some(Mutex::new(s.entries))
            }
            Ok(Err(why)) => {
                ctx.folder_path(&self.path, format!("per object ({n} notebooks): {why}"));
                None
            }
            Err(e) => {
                ctx.folder_path(
                    &self.path,
                    format!("per object ({n} notebooks): splitting the archive failed: {e}"),
                );
                None
            }
        }
    }
}

/// Files larger than this are streamed to disk instead of held in memory.
const IN_MEMORY_LIMIT: i64 = 4 << 20;
/// Files up to this size are scanned for code dependencies.
const SCAN_LIMIT: usize = 1 << 20;

/// Exports the selected part of the workspace tree.
pub async fn export_tree(ctx: Arc<Ctx>) {
    let wanted = [
        Kind::Directory,
        Kind::Notebook,
        Kind::File,
        Kind::Repo,
        Kind::Permissions,
    ];
    if !wanted.iter().any(|k| ctx.opts.wants(*k)) {
        return;
    }
    ctx.phase("workspace tree");
    let (tx, mut rx) = mpsc::channel::<Work>(4096);
    let repos: Arc<OnceCell<HashMap<i64, Repo>>> = Arc::new(OnceCell::new());
    let walker = walk(Arc::clone(&ctx), tx);
    let width = ctx.opts.concurrency.max(1) * 2;
    let objects = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(|work| {
            let ctx = Arc::clone(&ctx);
            let repos = Arc::clone(&repos);
            async move { export_object(ctx, work, repos).await }
        })
        .buffer_unordered(width)
        .for_each(|_| async {});
    tokio::join!(walker, objects);
}

/// Lists one folder: from the journal when an interrupted run already listed it.
async fn list_folder(ctx: &Arc<Ctx>, path: &str) -> Result<Vec<ObjectInfo>, String> {
    if let Some(entries) = ctx.stage.listing(path) {
        return Ok(entries);
    }
    match ctx.client.workspace().list(path).await {
        Ok(entries) => {
            let item = crate::export::stage::Item::Listing(path.to_string(), entries.clone());
            if let Err(e) = ctx.committer.submit(item).await {
                if e.fatal {
                    ctx.set_fatal(crate::export::ExportError::Internal(format!(
                        "journaling the listing of {path}: {}",
                        e.message
                    )));
                }
                return Err(e.message);
            }
            Ok(entries)
        }
        Err(e) => {
            let why = reason(&e);
            if e.is_auth_failure() {
                ctx.set_fatal(crate::export::ExportError::Client {
                    context: format!("listing {path}"),
                    source: e,
                });
            }
            Err(why)
        }
    }
}

/// The status of a `--path` root (the whole tree's root `/` needs none).
async fn root_status(ctx: &Arc<Ctx>, root: &str) -> Option<ObjectInfo> {
    let key = format!("status:{root}");
    if let Some(v) = ctx.stage.step(&key) {
        if let Ok(info) = serde_json::from_value(v) {
            return Some(info);
        }
    }
    match ctx.client.workspace().get_status(root).await {
        Ok(info) => {
            let c = Arc::clone(ctx);
            let v = serde_json::to_value(&info).unwrap_or_default();
            let _ = tokio::task::spawn_blocking(move || c.stage.record_step(&key, &v)).await;
            Some(info)
        }
        Err(e) if e.is_not_found() && ctx.filter.is_optional_root(root) => {
            tracing::info!(target: "dbxport::export", root, "no such home folder");
            None
        }
        Err(e) => {
            ctx.found(Kind::Directory, 1);
            ctx.client_failure(Kind::Directory, root, root, &format!("--path {root}"), e);
            None
        }
    }
}

/// Walks the tree breadth-first, sending every selected object to `tx`.
async fn walk(ctx: Arc<Ctx>, tx: mpsc::Sender<Work>) {
    let mut queue: VecDeque<(String, Option<ObjectInfo>)> = VecDeque::new();
    for root in ctx.filter.roots().to_vec() {
        if root == "/" {
            queue.push_back((root, None));
            continue;
        }
        let Some(info) = root_status(&ctx, &root).await else {
            continue;
        };
        if ctx.filter.is_excluded(&info.path) {
            continue;
        }
        // A folder is sent once it is listed, so a folder whose listing fails is reported
        // instead of being exported as if it were empty.
        if info.object_type == ObjectType::Directory {
            queue.push_back((root, Some(info)));
        } else if tx.send(Work::alone(info)).await.is_err() {
            return;
        }
    }
    let limit = ctx.opts.concurrency.max(1);
    let mut listing = FuturesUnordered::new();
    let mut skipped_kinds: HashMap<&'static str, u64> = HashMap::new();
    // Objects found but not yet taken by the pool. Listings in flight hold the client's
    // request slots, so they are polled while the walker waits for room in the channel:
    // waiting on the channel alone would leave them unpolled, their slots held, and a pool
    // that needs slots to drain the channel (a deadlock once throttling narrows the slots).
    let mut outbox: VecDeque<Work> = VecDeque::new();
    loop {
        while listing.len() < limit && outbox.len() < OUTBOX_LIMIT && !ctx.is_stopped() {
            let Some((path, info)) = queue.pop_front() else {
                break;
            };
            let c = Arc::clone(&ctx);
            listing.push(async move {
                let r = list_folder(&c, &path).await;
                (path, info, r)
            });
        }
        if listing.is_empty() && outbox.is_empty() {
            break;
        }
        tokio::select! {
            permit = tx.reserve(), if !outbox.is_empty() => {
                let Ok(permit) = permit else { return };
                if let Some(w) = outbox.pop_front() {
                    permit.send(w);
                }
            }
            Some((path, info, result)) = listing.next(), if !listing.is_empty() => {
                listed(&ctx, path, info, result, &mut queue, &mut outbox, &mut skipped_kinds);
            }
        }
    }
    for (what, n) in skipped_kinds {
        ctx.notice(format!(
            "{n} {what} in the workspace tree are not exported: the workspace API cannot export them"
        ));
    }
}

/// Objects the walker holds for the pool before it pauses its listings.
const OUTBOX_LIMIT: usize = 4096;

/// What one folder's listing gives: the folder itself (now known to be readable), its objects
/// for the pool (`outbox`), its subfolders for the walk (`queue`); a failed listing is the
/// folder's failure.
fn listed(
    ctx: &Arc<Ctx>,
    path: String,
    info: Option<ObjectInfo>,
    result: Result<Vec<ObjectInfo>, String>,
    queue: &mut VecDeque<(String, Option<ObjectInfo>)>,
    outbox: &mut VecDeque<Work>,
    skipped_kinds: &mut HashMap<&'static str, u64>,
) {
    let mut entries = match result {
        Ok(e) => e,
        Err(why) => {
            let id = info
                .as_ref()
                .map_or("0".to_string(), |i| i.object_id.to_string());
            ctx.found(Kind::Directory, 1);
            ctx.failed(
                Kind::Directory,
                &path,
                &id,
                format!(
                    "listing failed, so neither the folder nor its contents are exported: {why}"
                ),
            );
            return;
        }
    };
    if let Some(info) = info {
        outbox.push_back(Work::alone(info));
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let archive = folder_archive(ctx, &path, &entries);
    for e in entries {
        if e.path == path || !ctx.filter.includes(&e.path) {
            continue;
        }
        match e.object_type {
            ObjectType::Directory => {
                queue.push_back((e.path.clone(), Some(e)));
                continue;
            }
            ObjectType::Notebook | ObjectType::File | ObjectType::Repo => {}
            ObjectType::Library => {
                *skipped_kinds.entry("libraries").or_default() += 1;
                continue;
            }
            ObjectType::Dashboard => {
                *skipped_kinds.entry("legacy dashboards").or_default() += 1;
                continue;
            }
        }
        let archive = (e.object_type == ObjectType::Notebook && e.language.is_some())
            .then(|| archive.clone())
            .flatten();
        outbox.push_back(Work { info: e, archive });
    }
}

/// The directory export that will carry the notebooks of the folder `path` (listed as
/// `entries`), when enough of them need fetching; records the way the folder goes otherwise.
fn folder_archive(
    ctx: &Arc<Ctx>,
    path: &str,
    entries: &[ObjectInfo],
) -> Option<Arc<FolderArchive>> {
    if !ctx.opts.wants(Kind::Notebook) {
        return None;
    }
    let notebooks: Vec<&ObjectInfo> = entries
        .iter()
        .filter(|e| {
            e.object_type == ObjectType::Notebook
                && e.path != path
                && ctx.filter.includes(&e.path)
                && ctx
                    .stage
                    .held(Kind::Notebook, &e.object_id.to_string())
                    .is_none()
        })
        .collect();
    if notebooks.is_empty() {
        return None;
    }
    let wanted: BTreeSet<String> = notebooks
        .iter()
        .filter_map(|e| {
            let lang = e.language?;
            Some(archive::entry_name(
                crate::model::workspace::base_name(&e.path),
                lang,
            ))
        })
        .collect();
    let hidden = notebooks.len() - wanted.len();
    if path == "/" || wanted.len() < MIN_ARCHIVE_NOTEBOOKS {
        let why = if path == "/" {
            "the workspace root is not exported as one archive"
        } else {
            "too few notebooks to fetch for an archive to save a request"
        };
        ctx.folder_path(
            path,
            format!("per object ({} notebooks): {why}", notebooks.len()),
        );
        return None;
    }
    if hidden > 0 {
        ctx.notice(format!(
            "{path}: {hidden} notebook(s) listed without a language are exported one by one: a folder archive names notebooks by their language's extension"
        ));
    }
    Some(Arc::new(FolderArchive {
        path: path.to_string(),
        wanted,
        split: OnceCell::new(),
    }))
}

/// Principals a workspace path names: the owner of a home folder or repo folder.
fn path_principals(path: &str) -> Vec<String> {
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    match (parts.next(), parts.next()) {
        (Some("Users" | "Repos"), Some(name)) => vec![format!("any:{name}")],
        _ => Vec::new(),
    }
}

async fn export_object(ctx: Arc<Ctx>, work: Work, repos: Arc<OnceCell<HashMap<i64, Repo>>>) {
    if ctx.is_stopped() {
        return;
    }
    let Work { info, archive } = work;
    let id = info.object_id.to_string();
    let (kind, request_type) = match info.object_type {
        ObjectType::Directory => (Kind::Directory, "directories"),
        ObjectType::Notebook => (Kind::Notebook, "notebooks"),
        ObjectType::File => (Kind::File, "files"),
        ObjectType::Repo => (Kind::Repo, "repos"),
        _ => return,
    };
    let content = async {
        if !ctx.opts.wants(kind) {
            return;
        }
        ctx.found(kind, 1);
        if ctx.reuse(kind, &id) {
            return;
        }
        match kind {
            Kind::Directory => export_directory(&ctx, &info).await,
            Kind::Notebook => export_notebook(&ctx, &info, archive.as_deref()).await,
            Kind::File => export_file(&ctx, &info).await,
            _ => export_repo(&ctx, &info, &repos).await,
        }
    };
    let perms = async {
        if wants_permissions(&ctx, &id) {
            export_permissions(&ctx, request_type, &id, &info.path).await;
        }
    };
    tokio::join!(content, perms);
}

async fn export_directory(ctx: &Arc<Ctx>, info: &ObjectInfo) {
    let resource = Resource::directory(&info.path, info.object_id);
    let entry = DoneEntry {
        name: info.path.clone(),
        principals: path_principals(&info.path),
        ..DoneEntry::default()
    };
    commit(
        ctx,
        Kind::Directory,
        info.object_id.to_string(),
        entry,
        resource,
    )
    .await;
}

async fn export_notebook(ctx: &Arc<Ctx>, info: &ObjectInfo, archive: Option<&FolderArchive>) {
    let id = info.object_id.to_string();
    let ws = ctx.client.workspace();
    let from_archive = match archive {
        Some(a) => a.take(ctx, info).await,
        None => None,
    };
    let fetched = match from_archive {
        Some(b) => Ok(bytes::Bytes::from(b)),
        None => ws.export(&info.path, Format::Source, None).await,
    };
    let source = match fetched {
        Ok(b) => b,
        Err(e) if e.is_too_large() => {
            ctx.failed(
                Kind::Notebook,
                &info.path,
                &id,
                format!(
                    "over the 10 MB export limit even as SOURCE, so it cannot be exported through the API: {}",
                    reason(&e)
                ),
            );
            return;
        }
        Err(e) => {
            ctx.client_failure(
                Kind::Notebook,
                &info.path,
                &id,
                &format!("notebook {}", info.path),
                e,
            );
            return;
        }
    };
    let mut notes = Vec::new();
    let mut exports = vec![(Format::Source, Content::Bytes(source.to_vec()))];
    let mut bytes = source.len() as u64;
    let language = info.language.unwrap_or(Language::Python);
    if let Some(rich) = ctx.opts.notebook_format.filter(|f| *f != Format::Source) {
        if rich != Format::RMarkdown || language == Language::R {
            let outputs = (rich == Format::Jupyter).then_some(true);
            match ws.export(&info.path, rich, outputs).await {
                Ok(b) => {
                    bytes += b.len() as u64;
                    exports.push((rich, Content::Bytes(b.to_vec())));
                }
                Err(e) if e.is_too_large() => notes.push(format!(
                    "outputs dropped: notebook over the 10 MB export limit as {}; kept as SOURCE only",
                    rich.as_str()
                )),
                Err(e) if e.is_auth_failure() => {
                    ctx.client_failure(Kind::Notebook, &info.path, &id, &format!("notebook {}", info.path), e);
                    return;
                }
                Err(e) => notes.push(format!(
                    "{} export failed, kept as SOURCE only: {}",
                    rich.as_str(),
                    reason(&e)
                )),
            }
        }
    }
    let findings = scan(&info.path, &source, ctx.scan_context());
    drop(source);
    let resource =
        Resource::notebook_scanned(info, exports, Some(&findings)).with_notes(notes.clone());
    let entry = DoneEntry {
        name: info.path.clone(),
        outcome: Some(if notes.is_empty() {
            Outcome::Exported
        } else {
            Outcome::Degraded
        }),
        notes,
        bytes,
        findings,
        principals: path_principals(&info.path),
    };
    commit(ctx, Kind::Notebook, id, entry, resource).await;
}

async fn export_file(ctx: &Arc<Ctx>, info: &ObjectInfo) {
    let id = info.object_id.to_string();
    let ws = ctx.client.workspace();
    let fail = |e: crate::client::ClientError| {
        if e.is_too_large() {
            ctx.failed(
                Kind::File,
                &info.path,
                &id,
                format!(
                    "over the export size limit of the workspace API: {}",
                    reason(&e)
                ),
            );
        } else {
            ctx.client_failure(
                Kind::File,
                &info.path,
                &id,
                &format!("file {}", info.path),
                e,
            );
        }
    };
    let (content, bytes, findings, tmp) = if info.size.unwrap_or(0) > IN_MEMORY_LIMIT {
        let stream = match ws.export_stream(&info.path, Format::Auto, None).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let tmp = ctx.stage.tmp_dir().join(format!("file-{id}"));
        let written = async {
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            let n = stream
                .write_to(&mut f, &format!("file {}", info.path))
                .await
                .map_err(|e| reason(&e))?;
            tokio::io::AsyncWriteExt::flush(&mut f)
                .await
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            Ok::<u64, String>(n)
        }
        .await;
        match written {
            // Over the in-memory limit a file is not scanned (its record says so: no
            // `code_references`).
            Ok(n) => (Content::File(tmp.clone()), n, None, Some(tmp)),
            Err(why) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                ctx.failed(Kind::File, &info.path, &id, why);
                return;
            }
        }
    } else {
        let b = match ws.export(&info.path, Format::Auto, None).await {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        let findings = (b.len() <= SCAN_LIMIT).then(|| scan(&info.path, &b, ctx.scan_context()));
        let n = b.len() as u64;
        (Content::Bytes(b.to_vec()), n, findings, None)
    };
    let resource = Resource::workspace_file_scanned(info, content, findings.as_deref());
    let findings = findings.unwrap_or_default();
    let entry = DoneEntry {
        name: info.path.clone(),
        bytes,
        findings,
        principals: path_principals(&info.path),
        ..DoneEntry::default()
    };
    commit(ctx, Kind::File, id, entry, resource).await;
    if let Some(tmp) = tmp {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
}

async fn export_repo(ctx: &Arc<Ctx>, info: &ObjectInfo, repos: &OnceCell<HashMap<i64, Repo>>) {
    let id = info.object_id.to_string();
    // One listing of every repo the caller manages answers most roots; a repo outside it
    // (a Git folder elsewhere) is read on its own.
    let listed = repos
        .get_or_init(|| async {
            match ctx.client.repos().list(None).await {
                Ok(list) => list.into_iter().map(|r| (r.id, r)).collect(),
                Err(e) => {
                    tracing::warn!(target: "dbxport::export", error = %e, "repo listing failed; reading repos one by one");
                    HashMap::new()
                }
            }
        })
        .await;
    let repo = match listed.get(&info.object_id) {
        Some(r) => r.clone(),
        None => match ctx.client.repos().get(info.object_id).await {
            Ok(r) => r,
            Err(e) => {
                ctx.client_failure(
                    Kind::Repo,
                    &info.path,
                    &id,
                    &format!("repo {}", info.path),
                    e,
                );
                return;
            }
        },
    };
    let mut repo = repo;
    if repo.path.is_none() {
        repo.path = Some(info.path.clone());
    }
    let findings = scan_repo_notebooks(ctx, &info.path).await;
    let resource = Resource::repo(&repo);
    let entry = DoneEntry {
        name: resource.name.clone(),
        principals: path_principals(&info.path),
        findings,
        ..DoneEntry::default()
    };
    commit(ctx, Kind::Repo, id, entry, resource).await;
}

/// Scans the notebooks of a Git folder for code that depends on mounts and ids: one listing
/// per folder of the working tree, one `SOURCE` export per notebook, nothing stored. Only
/// notebooks: a Git folder can hold a whole code base, and reading every file of it would
/// multiply the export's requests. What cannot be read is said in a notice, and the repo
/// link is exported all the same.
async fn scan_repo_notebooks(ctx: &Arc<Ctx>, root: &str) -> Vec<Finding> {
    let ws = ctx.client.workspace();
    let mut findings = Vec::new();
    let mut unread: Vec<String> = Vec::new();
    let mut folders = VecDeque::from([root.to_string()]);
    while let Some(folder) = folders.pop_front() {
        if ctx.is_stopped() {
            return findings;
        }
        let mut entries = match ws.list(&folder).await {
            Ok(e) => e,
            Err(e) => {
                unread.push(format!("{folder} ({})", reason(&e)));
                continue;
            }
        };
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        for e in entries {
            if e.path == folder || !ctx.filter.includes(&e.path) {
                continue;
            }
            match e.object_type {
                ObjectType::Directory => folders.push_back(e.path),
                ObjectType::Notebook => match ws.export(&e.path, Format::Source, None).await {
                    Ok(source) => findings.extend(scan(&e.path, &source, ctx.scan_context())),
                    Err(err) => unread.push(format!("{} ({})", e.path, reason(&err))),
                },
                _ => {}
            }
        }
    }
    if !unread.is_empty() {
        ctx.notice(format!(
            "Git folder {root}: {} item(s) could not be read, so their lines are not on the must-recreate checklist: {}",
            unread.len(),
            unread.join("; ")
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_owners() {
        assert_eq!(
            path_principals("/Users/a@x/nb"),
            vec!["any:a@x".to_string()]
        );
        assert_eq!(path_principals("/Repos/a@x"), vec!["any:a@x".to_string()]);
        assert!(path_principals("/Shared/x").is_empty());
        assert!(path_principals("/Users").is_empty());
    }
}
