"""Repos (Git folders): list with paging, get, create, update, delete; git credentials."""
from __future__ import annotations

import re

from databricks.sdk.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service.workspace import ObjectType, SparseCheckout

from harness import Ctx, by, case, eq, ok, raises

PAGED = 25  # more repos than one page of the list endpoint


def folder(ctx: Ctx) -> str:
    return f"/Repos/{ctx.seed.admin}"


@case("list: every seed repo, field by field")
def list_seeded(ctx: Ctx):
    got = by(ctx.w.repos.list(path_prefix="/Repos"), lambda r: r.id)
    for r in ctx.seed.repos:
        g = got.get(r["id"])
        ok(g is not None, f"repo {r['id']} missing")
        eq((g.path, g.url, g.provider, g.branch, g.head_commit_id),
           (r["path"], r["url"], r["provider"], r.get("branch"), r["head_commit_id"]), f"repo {r['id']}")
    eq(len(got), len(ctx.seed.repos), "number of repos")


@case("get: seed repos, sparse checkout included")
def get_seeded(ctx: Ctx):
    for r in ctx.seed.repos:
        g = ctx.w.repos.get(r["id"])
        eq((g.id, g.path, g.url, g.provider, g.branch, g.head_commit_id),
           (r["id"], r["path"], r["url"], r["provider"], r.get("branch"), r["head_commit_id"]), f"get {r['id']}")
        want = (r.get("sparse_checkout") or {}).get("patterns")
        eq(g.sparse_checkout.patterns if g.sparse_checkout else None, want, f"repo {r['id']} sparse_checkout")
    raises(ResourceDoesNotExist, lambda: ctx.w.repos.get(1))


@case("create: lowercase provider is canonicalised; read back; workspace shows a REPO root")
def create(ctx: Ctx):
    path = f"{folder(ctx)}/conformance-{ctx.run_id}"
    url = "https://github.com/sciencehub-example/conformance.git"
    r = ctx.w.repos.create(url=url, provider="github", path=path,
                           sparse_checkout=SparseCheckout(patterns=["src", "docs"]))
    ok(isinstance(r.id, int) and r.id > 0, f"id {r.id!r}")
    eq((r.path, r.url, r.provider), (path, url, "gitHub"), "create response")
    ok(r.branch, "create response has no branch")
    ok(re.fullmatch(r"[0-9a-f]{40}", r.head_commit_id or ""), f"head_commit_id {r.head_commit_id!r}")
    eq(r.sparse_checkout.patterns if r.sparse_checkout else None, ["src", "docs"], "sparse_checkout")
    g = ctx.w.repos.get(r.id)
    eq((g.id, g.path, g.url, g.provider, g.branch, g.head_commit_id),
       (r.id, path, url, "gitHub", r.branch, r.head_commit_id), "get after create")
    o = ctx.w.workspace.get_status(path)
    eq((o.object_type, o.object_id), (ObjectType.REPO, r.id), "workspace status of the repo root")
    ctx.state["repo"] = r


@case("create: path taken → ResourceAlreadyExists; unknown provider or missing url → InvalidParameterValue")
def create_errors(ctx: Ctx):
    r = ctx.state["repo"]
    raises(ResourceAlreadyExists, lambda: ctx.w.repos.create(url=r.url, provider="gitHub", path=r.path))
    raises(InvalidParameterValue, lambda: ctx.w.repos.create(
        url="https://example.org/x.git", provider="subversion", path=f"{folder(ctx)}/svn-{ctx.run_id}"))
    raises(InvalidParameterValue, lambda: ctx.w.repos.create(url="", provider="gitHub",
                                                             path=f"{folder(ctx)}/nourl-{ctx.run_id}"))


@case("update: branch, then tag (detached HEAD)")
def update(ctx: Ctx):
    r = ctx.state["repo"]
    ctx.w.repos.update(r.id, branch="develop")
    eq(ctx.w.repos.get(r.id).branch, "develop", "branch after update")
    ctx.w.repos.update(r.id, tag="v1.0.0")
    g = ctx.w.repos.get(r.id)
    eq(g.branch, None, "branch after checking out a tag")
    ok(re.fullmatch(r"[0-9a-f]{40}", g.head_commit_id or ""), "head_commit_id after tag")
    raises(ResourceDoesNotExist, lambda: ctx.w.repos.update(1, branch="main"))


@case("list: paging with next_page_token returns every repo exactly once")
def list_paging(ctx: Ctx):
    base = f"{folder(ctx)}/paged-{ctx.run_id}-"
    made = []
    for i in range(PAGED):
        made.append(ctx.w.repos.create(url=f"https://github.com/sciencehub-example/p{i}.git", provider="gitHub",
                                       path=f"{base}p{i:02d}").id)
    ctx.state["paged"] = made
    first = ctx.w.api_client.do("GET", "/api/2.0/repos", query={"path_prefix": base})
    ok(first.get("next_page_token"), f"{PAGED} repos fit in one page: {len(first.get('repos', []))} returned")
    eq(len(first["repos"]), 20, "first page size (the API documents twenty repos per page)")
    listed = [r.id for r in ctx.w.repos.list(path_prefix=base)]
    eq(sorted(listed), sorted(made), "repos listed across pages")
    eq(len(listed), len(set(listed)), "no repo listed twice")
    eq(sorted(r.id for r in ctx.w.repos.list(path_prefix=f"{base}p0")), sorted(made[:10]), "path_prefix filter")


@case("delete: repo and its workspace root disappear")
def delete(ctx: Ctx):
    r = ctx.state["repo"]
    ctx.w.repos.delete(r.id)
    raises(ResourceDoesNotExist, lambda: ctx.w.repos.get(r.id))
    raises(ResourceDoesNotExist, lambda: ctx.w.workspace.get_status(r.path))
    raises(ResourceDoesNotExist, lambda: ctx.w.repos.delete(r.id))
    for rid in ctx.state.get("paged", []):
        ctx.w.repos.delete(rid)


@case("git credentials: list the caller's, create, get, update, delete")
def git_credentials(ctx: Ctx):
    mine = [c for c in ctx.seed.git_credentials if c.get("user_name", ctx.seed.admin) == ctx.seed.admin]
    got = by(ctx.w.git_credentials.list(), lambda c: c.credential_id)
    eq(sorted(got), sorted(c["credential_id"] for c in mine), "the admin's credentials")
    for c in mine:
        g = got[c["credential_id"]]
        eq((g.git_provider, g.git_username, g.name), (c["git_provider"], c.get("git_username"), c.get("name")),
           f"credential {c['credential_id']}")
    cr = ctx.w.git_credentials.create(git_provider="gitLab", git_username="ada-conformance",
                                      personal_access_token="glpat-fake-conformance", name="conformance")
    ok(isinstance(cr.credential_id, int) and cr.credential_id > 0, "credential_id")
    eq((cr.git_provider, cr.git_username), ("gitLab", "ada-conformance"), "create response")
    g = ctx.w.git_credentials.get(cr.credential_id)
    eq((g.credential_id, g.git_provider, g.git_username, g.name),
       (cr.credential_id, "gitLab", "ada-conformance", "conformance"), "get")
    raw = ctx.w.api_client.do("GET", f"/api/2.0/git-credentials/{cr.credential_id}")
    ok("personal_access_token" not in str(raw) and "glpat" not in str(raw), "the token is returned")
    ctx.w.git_credentials.update(cr.credential_id, git_provider="gitLab", git_username="ada2",
                                 personal_access_token="glpat-fake-2")
    eq(ctx.w.git_credentials.get(cr.credential_id).git_username, "ada2", "git_username after update")
    ctx.w.git_credentials.delete(cr.credential_id)
    raises(ResourceDoesNotExist, lambda: ctx.w.git_credentials.get(cr.credential_id))
