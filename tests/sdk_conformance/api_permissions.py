"""Permissions API on notebooks, directories, files, repos, jobs and registered models: get with
inherited entries, set (replace), update (merge), levels, the single-owner rule, errors."""
from __future__ import annotations

from databricks.sdk.errors import BadRequest, InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service.iam import AccessControlRequest, PermissionLevel

from harness import Ctx, case, eq, ok, raises

LEVELS = {
    "notebooks": {"CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"},
    "directories": {"CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"},
    "files": {"CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"},
    "repos": {"CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"},
    "jobs": {"CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"},
    "registered-models": {"CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS", "CAN_MANAGE_PRODUCTION_VERSIONS",
                          "CAN_MANAGE"},
}
SINGULAR = {"notebooks": "notebook", "directories": "directory", "files": "file", "repos": "repo", "jobs": "job",
            "registered-models": "registered-model"}


def who(a) -> str:
    return a.user_name or a.group_name or a.service_principal_name


def entries(perms) -> dict:
    """principal → {(level, inherited, tuple(inherited_from))}"""
    out = {}
    for a in perms.access_control_list or []:
        for p in a.all_permissions or []:
            out.setdefault(who(a), set()).add((p.permission_level.value, bool(p.inherited),
                                               tuple(p.inherited_from_object or ())))
    return out


def direct(perms) -> set:
    return {(k, lvl) for k, v in entries(perms).items() for (lvl, inh, _) in v if not inh}


def resolve(ctx: Ctx, obj: str) -> tuple[str, str]:
    """A permissions.json object name → (request type, id)."""
    if obj.startswith("/"):
        st = ctx.w.workspace.get_status(obj)
        kind = {"NOTEBOOK": "notebooks", "DIRECTORY": "directories", "FILE": "files", "REPO": "repos"}[st.object_type.value]
        return kind, str(st.object_id)
    kind, ident = obj.split("/", 1)
    if kind == "registered-models":
        ident = ctx.w.model_registry.get_model(ident).registered_model_databricks.id
    return kind, ident


def seed_direct(entry) -> set:
    return {(a.get("user_name") or a.get("group_name") or a.get("service_principal_name"), a["permission_level"])
            for a in entry["access_control_list"]}


@case("get: every object in permissions.json serves its direct grants, object_id and object_type")
def get_seeded(ctx: Ctx):
    for entry in ctx.seed.permissions:
        kind, ident = resolve(ctx, entry["object"])
        p = ctx.w.permissions.get(kind, ident)
        eq((p.object_id, p.object_type), (f"/{kind}/{ident}", SINGULAR[kind]), f"{entry['object']} ids")
        d = direct(p)
        missing = seed_direct(entry) - d
        ok(not missing, f"{entry['object']}: direct grants missing {missing}; served {d}")
        ok(("admins", "CAN_MANAGE") not in d, f"{entry['object']}: admins CAN_MANAGE served as direct")
        adm = entries(p).get("admins", set())
        ok(any(lvl == "CAN_MANAGE" and inh for lvl, inh, _ in adm), f"{entry['object']}: no inherited admins CAN_MANAGE")


@case("get: a folder's grants are inherited by what it holds, naming the folder")
def inherited_from_folder(ctx: Ctx):
    folder = next(e for e in ctx.seed.permissions
                  if e["object"].startswith("/") and ctx.seed.tree.get(e["object"]) and
                  ctx.seed.tree[e["object"]].kind == "DIRECTORY" and
                  any(x.kind == "NOTEBOOK" for x in ctx.seed.under(e["object"])))
    fid = ctx.w.workspace.get_status(folder["object"]).object_id
    child = next(x for x in ctx.seed.under(folder["object"]) if x.kind == "NOTEBOOK")
    cid = ctx.w.workspace.get_status(child.path).object_id
    got = entries(ctx.w.permissions.get("notebooks", str(cid)))
    for who_, lvl in seed_direct(folder):
        ok((lvl, True, (f"/directories/{fid}",)) in got.get(who_, set()),
           f"{child.path}: {who_} {lvl} not inherited from /directories/{fid}: {got.get(who_)}")


@case("get jobs: the creator is the owner unless ownership was transferred; exactly one IS_OWNER")
def job_owner(ctx: Ctx):
    transferred = {e["object"].split("/", 1)[1]: a.get("user_name") or a.get("service_principal_name")
                   for e in ctx.seed.permissions if e["object"].startswith("jobs/")
                   for a in e["access_control_list"] if a["permission_level"] == "IS_OWNER"}
    for jid, job in ctx.seed.jobs.items():
        got = entries(ctx.w.permissions.get("jobs", str(jid)))
        owners = [k for k, v in got.items() for lvl, _, _ in v if lvl == "IS_OWNER"]
        eq(owners, [transferred.get(str(jid), job["creator_user_name"])], f"owner of job {jid}")


@case("permission levels for every object type")
def levels(ctx: Ctx):
    seen = set()
    for entry in ctx.seed.permissions:
        kind, ident = resolve(ctx, entry["object"])
        if kind in seen:
            continue
        seen.add(kind)
        got = ctx.w.permissions.get_permission_levels(kind, ident)
        eq({l.permission_level.value for l in got.permission_levels}, LEVELS[kind], f"levels of {kind}")
        ok(all(l.description for l in got.permission_levels), f"{kind}: a level has no description")
    eq(seen, set(LEVELS), "object types covered by the seed")


@case("update (PATCH) merges; set (PUT) replaces the direct grants; inherited ones stay")
def set_and_update(ctx: Ctx):
    path = "/Shared/etl/quality_checks"
    oid = str(ctx.w.workspace.get_status(path).object_id)
    before = direct(ctx.w.permissions.get("notebooks", oid))
    r = ctx.w.permissions.update("notebooks", oid, access_control_list=[
        AccessControlRequest(user_name="zoe.muller@sciencehub.example", permission_level=PermissionLevel.CAN_EDIT)])
    eq(direct(r), before | {("zoe.muller@sciencehub.example", "CAN_EDIT")}, "direct grants after PATCH")
    eq(direct(ctx.w.permissions.get("notebooks", oid)), direct(r), "GET after PATCH")
    r = ctx.w.permissions.set("notebooks", oid, access_control_list=[
        AccessControlRequest(group_name="interns", permission_level=PermissionLevel.CAN_READ)])
    eq(direct(r), {("interns", "CAN_READ")}, "direct grants after PUT")
    inherited = {k for k, v in entries(r).items() if any(inh for _, inh, _ in v)}
    ok("admins" in inherited, f"inherited entries lost after PUT: {entries(r)}")
    r = ctx.w.permissions.set("notebooks", oid, access_control_list=[])
    eq(direct(r), set(), "direct grants after PUT []")


@case("jobs: PUT keeps exactly one owner; two owners → InvalidParameterValue")
def job_single_owner(ctx: Ctx):
    jid = str(next(iter(ctx.seed.jobs)))
    owner = ctx.seed.jobs[int(jid)]["creator_user_name"]
    r = ctx.w.permissions.set("jobs", jid, access_control_list=[
        AccessControlRequest(user_name=owner, permission_level=PermissionLevel.IS_OWNER),
        AccessControlRequest(group_name="interns", permission_level=PermissionLevel.CAN_VIEW)])
    eq(direct(r), {(owner, "IS_OWNER"), ("interns", "CAN_VIEW")}, "job grants after PUT")
    raises(InvalidParameterValue, lambda: ctx.w.permissions.set("jobs", jid, access_control_list=[
        AccessControlRequest(user_name=owner, permission_level=PermissionLevel.IS_OWNER),
        AccessControlRequest(user_name="zoe.muller@sciencehub.example", permission_level=PermissionLevel.IS_OWNER)]))
    eq(direct(ctx.w.permissions.get("jobs", jid)), direct(r), "a refused PUT changes nothing")


@case("errors: unknown object, unknown type, wrong level, unknown principal")
def errors(ctx: Ctx):
    raises(ResourceDoesNotExist, lambda: ctx.w.permissions.get("notebooks", "1"))
    raises(ResourceDoesNotExist, lambda: ctx.w.permissions.get("jobs", "1"))
    raises((BadRequest, InvalidParameterValue), lambda: ctx.w.permissions.get("spaceships", "1"))
    oid = str(ctx.w.workspace.get_status("/Shared/etl/quality_checks").object_id)
    raises(InvalidParameterValue, lambda: ctx.w.permissions.update("notebooks", oid, access_control_list=[
        AccessControlRequest(group_name="researchers", permission_level=PermissionLevel.CAN_VIEW)]))
    raises(InvalidParameterValue, lambda: ctx.w.permissions.update("notebooks", oid, access_control_list=[
        AccessControlRequest(user_name="nobody@nowhere.example", permission_level=PermissionLevel.CAN_READ)]))
