"""Secrets API: scopes (Databricks and Key Vault), put string and bytes, list, get, ACLs."""
from __future__ import annotations

import base64

from databricks.sdk.errors import (BadRequest, InvalidParameterValue, PermissionDenied, ResourceAlreadyExists,
                                   ResourceDoesNotExist)
from databricks.sdk.service.workspace import AclPermission, ScopeBackendType

from harness import Ctx, Skip, by, case, eq, ok, raises

BINARY = bytes([0, 1, 2, 0xFE, 0xFF, 0x80]) + "é".encode() + b"\n\r\t"


def scope(ctx: Ctx) -> str:
    return f"conformance-{ctx.run_id}"


@case("list scopes: every seed scope with backend and Key Vault metadata")
def list_scopes(ctx: Ctx):
    got = by(ctx.w.secrets.list_scopes(), lambda s: s.name)
    for s in ctx.seed.secrets["scopes"]:
        g = got.get(s["name"])
        ok(g is not None, f"scope {s['name']} missing")
        eq(g.backend_type, ScopeBackendType(s["backend_type"]), f"{s['name']} backend_type")
        kv = s.get("keyvault_metadata")
        eq(g.keyvault_metadata.as_dict() if g.keyvault_metadata else None, kv, f"{s['name']} keyvault_metadata")
    eq(len(got), len(ctx.seed.secrets["scopes"]), "number of scopes")


@case("list secrets and ACLs of every seed scope; get one ACL")
def list_seeded(ctx: Ctx):
    for s in ctx.seed.secrets["scopes"]:
        keys = {m.key: m.last_updated_timestamp for m in ctx.w.secrets.list_secrets(s["name"])}
        eq(keys, {k["key"]: k.get("last_updated_timestamp") for k in s["secrets"]}, f"{s['name']} keys")
        acls = sorted((a.principal, a.permission.value) for a in ctx.w.secrets.list_acls(s["name"]))
        eq(acls, sorted((a["principal"], a["permission"]) for a in s.get("acls", [])), f"{s['name']} ACLs")
        a0 = s["acls"][0]
        eq(ctx.w.secrets.get_acl(s["name"], a0["principal"]).permission, AclPermission(a0["permission"]), "get_acl")
    raw = ctx.w.api_client.do("GET", "/api/2.0/secrets/acls/list", query={"scope": ctx.seed.secrets["scopes"][0]["name"]})
    ok("items" in raw, f"ACL list key is not 'items': {sorted(raw)}")
    raises(ResourceDoesNotExist, lambda: list(ctx.w.secrets.list_secrets("no-such-scope")))


@case("get secret: refused (PERMISSION_DENIED) on a workspace that refuses it outside notebooks")
def get_refused(ctx: Ctx):
    if not ctx.seed.workspace.get("secrets_get_refused"):
        raise Skip("the seed does not refuse secrets/get")
    s = ctx.seed.secrets["scopes"][0]
    raises(PermissionDenied, lambda: ctx.w.secrets.get_secret(s["name"], s["secrets"][0]["key"]),
           code="PERMISSION_DENIED")


@case("create scope: creator gets MANAGE; duplicate, bad name → errors; initial_manage_principal=users")
def create_scope(ctx: Ctx):
    ctx.w.secrets.create_scope(scope(ctx))
    got = by(ctx.w.secrets.list_scopes(), lambda s: s.name)
    eq(got[scope(ctx)].backend_type, ScopeBackendType.DATABRICKS, "backend_type")
    eq([(a.principal, a.permission) for a in ctx.w.secrets.list_acls(scope(ctx))],
       [(ctx.seed.admin, AclPermission.MANAGE)], "initial ACLs")
    raises(ResourceAlreadyExists, lambda: ctx.w.secrets.create_scope(scope(ctx)), code="RESOURCE_ALREADY_EXISTS")
    raises(InvalidParameterValue, lambda: ctx.w.secrets.create_scope("bad scope name!"))
    ctx.w.secrets.create_scope(scope(ctx) + "-u", initial_manage_principal="users")
    eq([(a.principal, a.permission) for a in ctx.w.secrets.list_acls(scope(ctx) + "-u")],
       [("users", AclPermission.MANAGE)], "ACLs with initial_manage_principal=users")
    ctx.w.secrets.delete_scope(scope(ctx) + "-u")


@case("put: string and bytes values, overwrite, list with timestamps; errors")
def put(ctx: Ctx):
    sc = scope(ctx)
    ctx.w.secrets.put_secret(sc, "text", string_value="pässwörd with spaces")
    ctx.w.secrets.put_secret(sc, "blob", bytes_value=base64.b64encode(BINARY).decode())
    first = {m.key: m.last_updated_timestamp for m in ctx.w.secrets.list_secrets(sc)}
    eq(sorted(first), ["blob", "text"], "keys")
    ok(all(isinstance(t, int) and t > 1_600_000_000_000 for t in first.values()), f"timestamps {first}")
    ctx.w.secrets.put_secret(sc, "text", string_value="second value")
    again = {m.key: m.last_updated_timestamp for m in ctx.w.secrets.list_secrets(sc)}
    ok(again["text"] >= first["text"], "timestamp went backwards on overwrite")
    raises(ResourceDoesNotExist, lambda: ctx.w.secrets.put_secret("no-such-scope", "k", string_value="v"))
    raises(InvalidParameterValue, lambda: ctx.w.secrets.put_secret(sc, "bad key/name", string_value="v"))
    kv = next(s for s in ctx.seed.secrets["scopes"] if s["backend_type"] == "AZURE_KEYVAULT")
    raises(BadRequest, lambda: ctx.w.secrets.put_secret(kv["name"], "new", string_value="v"), code="BAD_REQUEST")


@case("get (target workspace that allows it): string and bytes values come back byte for byte")
def get_values(ctx: Ctx):
    if ctx.target is None:
        raise Skip("no --target-host / CONFORMANCE_TARGET_TOKEN (a workspace that allows secrets/get)")
    t, sc = ctx.target, scope(ctx)
    t.secrets.create_scope(sc)
    t.secrets.put_secret(sc, "text", string_value="pässwörd with spaces")
    t.secrets.put_secret(sc, "blob", bytes_value=base64.b64encode(BINARY).decode())
    g = t.secrets.get_secret(sc, "text")
    eq((g.key, base64.b64decode(g.value)), ("text", "pässwörd with spaces".encode()), "string secret")
    eq(base64.b64decode(t.secrets.get_secret(sc, "blob").value), BINARY, "bytes secret")
    raises(ResourceDoesNotExist, lambda: t.secrets.get_secret(sc, "missing"))
    t.secrets.delete_scope(sc)


@case("ACLs: put, overwrite, get, list, delete")
def acls(ctx: Ctx):
    sc = scope(ctx)
    ctx.w.secrets.put_acl(sc, "researchers", AclPermission.READ)
    eq(ctx.w.secrets.get_acl(sc, "researchers").permission, AclPermission.READ, "after put")
    ctx.w.secrets.put_acl(sc, "researchers", AclPermission.WRITE)
    eq(ctx.w.secrets.get_acl(sc, "researchers").permission, AclPermission.WRITE, "after overwrite")
    eq(sorted((a.principal, a.permission.value) for a in ctx.w.secrets.list_acls(sc)),
       sorted([(ctx.seed.admin, "MANAGE"), ("researchers", "WRITE")]), "list after put")
    ctx.w.secrets.delete_acl(sc, "researchers")
    raises(ResourceDoesNotExist, lambda: ctx.w.secrets.get_acl(sc, "researchers"))
    raises(ResourceDoesNotExist, lambda: ctx.w.secrets.delete_acl(sc, "researchers"))


@case("delete: secret then scope; deleting again → ResourceDoesNotExist")
def delete(ctx: Ctx):
    sc = scope(ctx)
    ctx.w.secrets.delete_secret(sc, "text")
    eq([m.key for m in ctx.w.secrets.list_secrets(sc)], ["blob"], "keys after delete")
    raises(ResourceDoesNotExist, lambda: ctx.w.secrets.delete_secret(sc, "text"))
    ctx.w.secrets.delete_scope(sc)
    ok(sc not in {s.name for s in ctx.w.secrets.list_scopes()}, "scope still listed")
    raises(ResourceDoesNotExist, lambda: ctx.w.secrets.delete_scope(sc))


@case("an ordinary user: reads only scopes whose ACLs name them; ACLs need MANAGE")
def ordinary_user(ctx: Ctx):
    if not ctx.user_token:
        raise Skip("no ordinary user token in the seed")
    name = next(t["user_name"] for t in ctx.seed.tokens["tokens"] if t["token"] == ctx.user_token)
    u = ctx.make_client(ctx.host, token=ctx.user_token)
    groups = {g["display"] for g in ctx.seed.user(name).get("groups", [])} | {name}
    eq(sorted(s.name for s in u.secrets.list_scopes()), sorted(s["name"] for s in ctx.seed.secrets["scopes"]),
       "every user sees every scope")
    for s in ctx.seed.secrets["scopes"]:
        levels = {a["permission"] for a in s.get("acls", []) if a["principal"] in groups}
        if levels:
            eq(sorted(m.key for m in u.secrets.list_secrets(s["name"])), sorted(k["key"] for k in s["secrets"]),
               f"{name} lists {s['name']}")
        else:
            raises(PermissionDenied, lambda: list(u.secrets.list_secrets(s["name"])), code="PERMISSION_DENIED")
        if "MANAGE" in levels:
            ok(list(u.secrets.list_acls(s["name"])), f"{name} cannot list ACLs of {s['name']}")
        else:
            raises(PermissionDenied, lambda: list(u.secrets.list_acls(s["name"])), code="PERMISSION_DENIED")
