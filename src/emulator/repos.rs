//! Git folders (`/api/2.0/repos`) and git credentials (`/api/2.0/git-credentials`).
//!
//! A repo's root is a `REPO` entry of the workspace tree whose object id is the repo id. The
//! emulator cannot reach a Git remote: a created repo is an empty root at a deterministic head
//! commit (a hash of URL and ref); a seed can put files under it.

use std::sync::Arc;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::model::repo::{canonical_provider, GitCredential, Repo, SparseCheckout};
use crate::model::workspace::{self as ws, ObjectType};

use super::access;
use super::error::{ApiError, ApiResult};
use super::extract::{self, read_page_token, Body, Ctx, Fields, Params};
use super::state::{CredentialState, RepoState, Shared, State};
use super::workspace::{delete_path, make_dirs, new_node, norm_path};

/// Repos per page of `GET /api/2.0/repos`.
pub(crate) const PAGE_SIZE: usize = 20;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/2.0/repos", get(list).post(create))
        .route(
            "/api/2.0/repos/{id}",
            get(get_repo).patch(update).delete(delete),
        )
        .route(
            "/api/2.0/git-credentials",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/api/2.0/git-credentials/{id}",
            get(get_credential)
                .patch(update_credential)
                .delete(delete_credential),
        )
}

/// A deterministic 40-hex-digit commit id for `url` at `reference`.
pub(crate) fn commit_for(url: &str, reference: &str) -> String {
    let mut h = Sha256::new();
    h.update(url.as_bytes());
    h.update([0]);
    h.update(reference.as_bytes());
    hex::encode(&h.finalize()[..20])
}

fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid(format!("Invalid {what} id: {raw}")))
}

fn repo_json(r: &Repo) -> Value {
    serde_json::to_value(r).unwrap_or_default()
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("Repo {id} does not exist."))
}

/// The last path segment of a Git URL without `.git`.
fn repo_name(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next().unwrap_or(trimmed);
    last.strip_suffix(".git").unwrap_or(last).to_string()
}

/// Creates a repo and its root; used by the API and by nothing else, so that seeds and API
/// agree on what a repo is.
pub(crate) fn create_repo(
    st: &mut State,
    caller: &str,
    url: &str,
    provider: &str,
    path: Option<&str>,
    sparse: Option<SparseCheckout>,
) -> Result<Repo, ApiError> {
    let provider = canonical_provider(provider).ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid git provider: {provider}; valid providers are {}",
            crate::model::repo::PROVIDERS.join(", ")
        ))
    })?;
    if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("git@")) {
        return Err(ApiError::invalid(format!("Invalid Git URL: {url}")));
    }
    let path = match path {
        Some(p) => norm_path(p)?,
        None => format!("/Repos/{caller}/{}", repo_name(url)),
    };
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if parts.first() == Some(&"Repos") {
        if parts.len() != 3 {
            return Err(ApiError::invalid(format!(
                "Invalid repo path {path}: repos under /Repos must be at /Repos/{{folder}}/{{name}}"
            )));
        }
        make_dirs(st, ws::parent_path(&path))?;
    } else {
        match st.tree.get(ws::parent_path(&path)) {
            Some(n) if n.object_type == ObjectType::Directory => {}
            _ => {
                return Err(ApiError::not_found(format!(
                    "The parent folder ({}) does not exist.",
                    ws::parent_path(&path)
                )))
            }
        }
    }
    if st.tree.get(&path).is_some() {
        return Err(ApiError::exists(format!("Path ({path}) already exists.")));
    }
    let node = new_node(st, ObjectType::Repo);
    let id = node.object_id;
    st.tree.insert(path.clone(), node);
    let repo = Repo {
        id,
        path: Some(path),
        url: url.to_string(),
        provider: provider.to_string(),
        branch: Some("main".to_string()),
        head_commit_id: Some(commit_for(url, "main")),
        sparse_checkout: sparse,
    };
    st.repos.insert(
        id,
        RepoState {
            repo: repo.clone(),
            acl: Vec::new(),
        },
    );
    Ok(repo)
}

async fn create(ctx: Ctx, Body(b): Body) -> ApiResult {
    let url = b.req_str("url")?;
    let provider = b.req_str("provider")?;
    let sparse = match b.opt_object("sparse_checkout")? {
        Some(o) => Some(
            serde_json::from_value::<SparseCheckout>(Value::Object(o.clone()))
                .map_err(|e| ApiError::invalid(format!("Invalid sparse_checkout: {e}")))?,
        ),
        None => None,
    };
    if let Some(cid) = b.opt_i64("git_credential_id")? {
        let owner = ctx.caller.name().to_string();
        let owned = ctx
            .state()
            .git_credentials
            .get(&cid)
            .is_some_and(|c| c.owner == owner);
        if !owned {
            return Err(ApiError::not_found(format!(
                "Git credential {cid} does not exist."
            )));
        }
    }
    let caller = ctx.caller.name().to_string();
    let mut st = ctx.state();
    if let Some(p) = b.opt_str("path")? {
        // A new repo needs CAN_EDIT where it goes (one's own /Repos folder is one's own).
        access::check_path(&st, &ctx.caller, &norm_path(p)?, "CAN_EDIT")?;
    }
    let repo = create_repo(&mut st, &caller, url, provider, b.opt_str("path")?, sparse)?;
    Ok(extract::json(repo_json(&repo)))
}

async fn get_repo(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "repo")?;
    let st = ctx.state();
    let r = st.repos.get(&id).ok_or_else(|| not_found(id))?;
    access::check_path(
        &st,
        &ctx.caller,
        r.repo.path.as_deref().unwrap_or("/"),
        "CAN_READ",
    )?;
    let mut v = repo_json(&r.repo);
    if let Value::Object(o) = &mut v {
        o.insert("git_cli_enabled".into(), Value::Bool(false));
    }
    Ok(extract::json(v))
}

async fn list(ctx: Ctx, p: Params) -> ApiResult {
    let prefix = match p.get("path_prefix") {
        None | Some("") => None,
        Some(x) => Some(norm_path(x)?),
    };
    // Without a prefix (or with the root) only /Repos is listed, as on real workspaces.
    let prefix = match prefix.as_deref() {
        None | Some("/") => "/Repos".to_string(),
        Some(x) => x.to_string(),
    };
    let after = match p.get("next_page_token") {
        None | Some("") => None,
        Some(t) => Some(read_page_token(t)?),
    };
    let st = ctx.state();
    let admin = access::is_admin(&st, &ctx.caller);
    // Only repos the caller can manage are listed.
    let mut repos: Vec<&Repo> = st
        .repos
        .values()
        .map(|r| &r.repo)
        .filter(|r| {
            admin
                || access::can_path(
                    &st,
                    &ctx.caller,
                    r.path.as_deref().unwrap_or("/"),
                    "CAN_MANAGE",
                )
        })
        .filter(|r| {
            r.path
                .as_deref()
                .is_some_and(|path| path.starts_with(&prefix))
        })
        .collect();
    repos.sort_by(|a, b| a.path.cmp(&b.path));
    let start = match &after {
        Some(a) => repos
            .iter()
            .position(|r| r.path.as_deref().unwrap_or("") > a.as_str())
            .unwrap_or(repos.len()),
        None => 0,
    };
    let page: Vec<Value> = repos[start..]
        .iter()
        .take(PAGE_SIZE)
        .map(|r| repo_json(r))
        .collect();
    let mut out = serde_json::Map::new();
    if !page.is_empty() {
        out.insert("repos".into(), Value::Array(page));
    }
    if start + PAGE_SIZE < repos.len() {
        let last = repos[start + PAGE_SIZE - 1]
            .path
            .clone()
            .unwrap_or_default();
        out.insert(
            "next_page_token".into(),
            Value::String(extract::page_token(&last)),
        );
    }
    Ok(extract::json(Value::Object(out)))
}

async fn update(ctx: Ctx, Path(id): Path<String>, Body(b): Body) -> ApiResult {
    let id = parse_id(&id, "repo")?;
    let branch = b.opt_str("branch")?.map(str::to_string);
    let tag = b.opt_str("tag")?.map(str::to_string);
    if branch.is_some() && tag.is_some() {
        return Err(ApiError::invalid("Only one of branch and tag can be given"));
    }
    let sparse = match b.opt_object("sparse_checkout")? {
        Some(o) => Some(
            serde_json::from_value::<SparseCheckout>(Value::Object(o.clone()))
                .map_err(|e| ApiError::invalid(format!("Invalid sparse_checkout: {e}")))?,
        ),
        None => None,
    };
    let mut st = ctx.state();
    let path = st
        .repos
        .get(&id)
        .ok_or_else(|| not_found(id))?
        .repo
        .path
        .clone();
    access::check_path(&st, &ctx.caller, path.as_deref().unwrap_or("/"), "CAN_EDIT")?;
    let r = st.repos.get_mut(&id).ok_or_else(|| not_found(id))?;
    if sparse.is_some() && r.repo.sparse_checkout.is_none() {
        return Err(ApiError::invalid(format!(
            "Sparse checkout is not enabled for repo {id}; it can only be set when the repo is created"
        )));
    }
    if let Some(b) = branch {
        r.repo.head_commit_id = Some(commit_for(&r.repo.url, &b));
        r.repo.branch = Some(b);
    } else if let Some(t) = tag {
        // A tag checks out a detached HEAD: no branch.
        r.repo.head_commit_id = Some(commit_for(&r.repo.url, &format!("refs/tags/{t}")));
        r.repo.branch = None;
    }
    if let Some(s) = sparse {
        r.repo.sparse_checkout = Some(s);
    }
    Ok(extract::empty())
}

async fn delete(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "repo")?;
    let mut st = ctx.state();
    let path = st
        .repos
        .get(&id)
        .ok_or_else(|| not_found(id))?
        .repo
        .path
        .clone();
    access::check_path(
        &st,
        &ctx.caller,
        path.as_deref().unwrap_or("/"),
        "CAN_MANAGE",
    )?;
    match path {
        Some(p) if st.tree.get(&p).is_some() => delete_path(&mut st, &p, true)?,
        _ => {
            st.repos.remove(&id);
        }
    }
    Ok(extract::empty())
}

fn credential_json(c: &GitCredential) -> Value {
    serde_json::to_value(c).unwrap_or_default()
}

async fn create_credential(ctx: Ctx, Body(b): Body) -> ApiResult {
    let provider = b.req_str("git_provider")?;
    let provider = canonical_provider(provider)
        .ok_or_else(|| ApiError::invalid(format!("Invalid git provider: {provider}")))?;
    let mut st = ctx.state();
    let id = st.ids.next_credential_id;
    st.ids.next_credential_id += 1;
    let c = GitCredential {
        credential_id: id,
        git_provider: provider.to_string(),
        git_username: b.opt_str("git_username")?.map(str::to_string),
        name: b.opt_str("name")?.map(str::to_string),
    };
    st.git_credentials.insert(
        id,
        CredentialState {
            cred: c.clone(),
            owner: ctx.caller.name().to_string(),
        },
    );
    Ok(extract::json(credential_json(&c)))
}

async fn list_credentials(ctx: Ctx) -> ApiResult {
    let st = ctx.state();
    let mine: Vec<Value> = st
        .git_credentials
        .values()
        .filter(|c| c.owner == ctx.caller.name())
        .map(|c| credential_json(&c.cred))
        .collect();
    Ok(extract::json(json!({ "credentials": mine })))
}

/// The caller's credential `id` (another user's answers as missing).
fn own_credential<'a>(
    st: &'a mut State,
    caller: &str,
    id: i64,
) -> Result<&'a mut GitCredential, ApiError> {
    st.git_credentials
        .get_mut(&id)
        .filter(|c| c.owner == caller)
        .map(|c| &mut c.cred)
        .ok_or_else(|| credential_missing(id))
}

fn credential_missing(id: i64) -> ApiError {
    ApiError::not_found(format!("Git credential {id} does not exist."))
}

async fn get_credential(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "credential")?;
    let mut st = ctx.state();
    let c = own_credential(&mut st, ctx.caller.name(), id)?;
    Ok(extract::json(credential_json(c)))
}

async fn update_credential(ctx: Ctx, Path(id): Path<String>, Body(b): Body) -> ApiResult {
    let id = parse_id(&id, "credential")?;
    let provider = match b.opt_str("git_provider")? {
        Some(p) => Some(
            canonical_provider(p)
                .ok_or_else(|| ApiError::invalid(format!("Invalid git provider: {p}")))?,
        ),
        None => None,
    };
    let mut st = ctx.state();
    let c = own_credential(&mut st, ctx.caller.name(), id)?;
    if let Some(p) = provider {
        c.git_provider = p.to_string();
    }
    if let Some(u) = b.opt_str("git_username")? {
        c.git_username = Some(u.to_string());
    }
    if let Some(n) = b.opt_str("name")? {
        c.name = Some(n.to_string());
    }
    Ok(extract::empty())
}

async fn delete_credential(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id, "credential")?;
    let mut st = ctx.state();
    own_credential(&mut st, ctx.caller.name(), id)?;
    st.git_credentials.remove(&id);
    Ok(extract::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_commits() {
        assert_eq!(repo_name("https://github.com/org/proj.git"), "proj");
        assert_eq!(repo_name("git@github.com:org/proj"), "proj");
        assert_eq!(commit_for("u", "main").len(), 40);
        assert_ne!(commit_for("u", "main"), commit_for("u", "dev"));
    }
}
