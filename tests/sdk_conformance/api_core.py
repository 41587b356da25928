"""Client start-up, authentication (PAT, OAuth M2M, OAuth U2M), error mapping, SCIM identities."""
from __future__ import annotations

import os
import pathlib
import sys
import tempfile
from datetime import datetime

from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.oauth import get_host_metadata

from harness import Ctx, by, case, eq, ok, raises, Skip


@case("host metadata: /.well-known/databricks-config gives workspace id and OIDC root")
def host_metadata(ctx: Ctx):
    meta = get_host_metadata(ctx.host)
    eq(meta.workspace_id, ctx.seed.workspace["workspace_id"], "workspace_id")
    eq(meta.oidc_endpoint.rstrip("/"), ctx.host + "/oidc", "oidc_endpoint")
    # The SDK learns the workspace id at start-up and sends it on every call.
    eq(ctx.w.config.workspace_id, ctx.seed.workspace["workspace_id"], "Config.workspace_id")
    eq(ctx.w.get_workspace_id(), int(ctx.seed.workspace["workspace_id"]), "get_workspace_id()")


@case("scim me: the admin token acts as the seed's first admin; X-Databricks-Org-Id header")
def me_admin(ctx: Ctx):
    me = ctx.w.current_user.me()
    u = ctx.seed.user(ctx.seed.admin)
    eq(me.user_name, u["userName"], "userName")
    eq(me.id, u["id"], "id")
    eq(me.display_name, u["displayName"], "displayName")
    eq(me.active, True, "active")
    eq([(e.value, e.primary) for e in me.emails], [(e["value"], e.get("primary")) for e in u["emails"]], "emails")
    ok("admins" in {g.display for g in me.groups}, f"admins not in groups {me.groups}")
    raw = ctx.w.api_client.do("GET", "/api/2.0/preview/scim/v2/Me", response_headers=["X-Databricks-Org-Id"])
    eq(raw.get("X-Databricks-Org-Id"), ctx.seed.workspace["workspace_id"], "X-Databricks-Org-Id header")
    ok("urn:ietf:params:scim:schemas:core:2.0:User" in raw.get("schemas", []), f"schemas: {raw.get('schemas')}")


@case("scim me: an ordinary user's token acts as that user (not an admin)")
def me_user(ctx: Ctx):
    if not ctx.user_token:
        raise Skip("no ordinary user token in the seed")
    name = next(t["user_name"] for t in ctx.seed.tokens["tokens"] if t["token"] == ctx.user_token)
    w = ctx.make_client(ctx.host, token=ctx.user_token)
    me = w.current_user.me()
    eq(me.user_name, name, "userName")
    ok("admins" not in {g.display for g in me.groups or []}, "ordinary user listed in admins")


@case("scim users: list pages by startIndex/count and returns every seed user field by field")
def users_list(ctx: Ctx):
    users = list(ctx.w.users.list(count=2))  # count=2 forces several pages of the SDK loop
    got = by(users, lambda u: u.user_name)
    for u in ctx.seed.principals["users"]:
        g = got.get(u["userName"])
        ok(g is not None, f"user {u['userName']} missing from users.list")
        eq(g.id, u["id"], f"{u['userName']} id")
        eq(g.display_name, u.get("displayName"), f"{u['userName']} displayName")
        eq(g.active, u.get("active", True), f"{u['userName']} active")
        eq(sorted(e.value for e in g.emails or []), sorted(e["value"] for e in u.get("emails", [])), "emails")
        eq(sorted(x.display for x in g.groups or []), sorted(x["display"] for x in u.get("groups", [])),
           f"{u['userName']} groups")
    eq(len(users), len(ctx.seed.principals["users"]), "number of users")


@case("scim users: filter userName eq, get by id, unknown id → NotFound")
def users_filter_get(ctx: Ctx):
    u = ctx.seed.principals["users"][1]
    found = list(ctx.w.users.list(filter=f'userName eq "{u["userName"]}"'))
    eq([x.user_name for x in found], [u["userName"]], "filtered users")
    one = ctx.w.users.get(u["id"])
    eq((one.id, one.user_name, one.display_name), (u["id"], u["userName"], u["displayName"]), "users.get")
    raises(NotFound, lambda: ctx.w.users.get("9999999999999999"))


@case("scim groups: list with members; get by id")
def groups(ctx: Ctx):
    gs = by(ctx.w.groups.list(count=4), lambda g: g.display_name)
    for g in ctx.seed.principals["groups"]:
        got = gs.get(g["displayName"])
        ok(got is not None, f"group {g['displayName']} missing")
        eq(got.id, g["id"], f"{g['displayName']} id")
        eq(sorted(m.value for m in got.members or []), sorted(m["value"] for m in g.get("members", [])),
           f"{g['displayName']} members")
    eq(len(gs), len(ctx.seed.principals["groups"]), "number of groups")
    g0 = ctx.seed.principals["groups"][2]
    one = ctx.w.groups.get(g0["id"])
    eq(one.display_name, g0["displayName"], "groups.get displayName")


@case("scim service principals: list and get")
def service_principals(ctx: Ctx):
    sps = list(ctx.w.service_principals.list())
    want = ctx.seed.principals["service_principals"]
    eq(sorted((s.id, s.application_id, s.display_name) for s in sps),
       sorted((s["id"], s["applicationId"], s.get("displayName")) for s in want), "service principals")
    one = ctx.w.service_principals.get(want[0]["id"])
    eq(one.application_id, want[0]["applicationId"], "applicationId")


@case("auth: a wrong token → PermissionDenied")
def wrong_token(ctx: Ctx):
    w = ctx.make_client(ctx.host, token="dapi-not-a-valid-token-0000")
    raises(PermissionDenied, lambda: w.current_user.me())
    raises(PermissionDenied, lambda: list(w.workspace.list("/")))


@case("auth: no credential at all → Unauthenticated (401)")
def no_credential(ctx: Ctx):
    # `auth` replaces the SDK's header factory, so the request goes out without Authorization.
    raises(Unauthenticated, lambda: ctx.w.api_client.do("GET", "/api/2.0/workspace/list", query={"path": "/"},
                                                         auth=lambda r: r))


@case("api: an unknown endpoint → NotFound")
def unknown_endpoint(ctx: Ctx):
    raises(NotFound, lambda: ctx.w.api_client.do("GET", "/api/2.0/no-such-service/list"))
    raises(NotFound, lambda: ctx.w.api_client.do("POST", "/api/2.0/workspace/no-such-verb", body={}))


@case("oauth m2m: WorkspaceClient(host, client_id, client_secret) gets a token and acts as the service principal")
def oauth_m2m(ctx: Ctx):
    if not (ctx.client_id and ctx.client_secret):
        raise Skip("no --client-id / CONFORMANCE_CLIENT_SECRET given")
    w = ctx.make_client(ctx.host, client_id=ctx.client_id, client_secret=ctx.client_secret)
    eq(w.config.auth_type, "oauth-m2m", "auth_type")
    tok = w.config.oauth_token()
    eq(tok.token_type, "Bearer", "token_type")
    ok(tok.access_token and tok.access_token != ctx.client_secret, "access token is empty or the secret itself")
    ok(tok.expiry > datetime.now(), f"token already expired: {tok.expiry}")
    me = w.current_user.me()
    sp = next(s for s in ctx.seed.principals["service_principals"] if s["applicationId"] == ctx.client_id)
    eq(me.user_name, sp["applicationId"], "SCIM Me userName of a service principal")
    eq(me.display_name, sp.get("displayName"), "SCIM Me displayName of a service principal")
    # The token is an ordinary bearer token for the REST APIs.
    list(w.workspace.list("/"))


@case("oauth m2m: a wrong client secret fails with the token endpoint's invalid_client")
def oauth_wrong_secret(ctx: Ctx):
    if not ctx.client_id:
        raise Skip("no --client-id given")
    try:
        w = ctx.make_client(ctx.host, client_id=ctx.client_id, client_secret="wrong-secret")
        w.current_user.me()
    except Exception as e:  # the SDK raises ValueError from the token exchange, possibly wrapped
        text = str(e) + " " + str(e.__cause__ or "")
        ok("invalid_client" in text, f"expected invalid_client, got {type(e).__name__}: {text[:300]}")
        return
    raise AssertionError("a wrong client secret was accepted")


@case("oauth u2m: external-browser signs a user in through /oidc/v1/authorize (PKCE) and acts as that user")
def oauth_u2m(ctx: Ctx):
    # The SDK opens the sign-in page with `webbrowser`; BROWSER names a stand-in that approves
    # as a seed user over HTTP. HOME is a scratch folder: the SDK keeps its token cache there.
    user = ctx.seed.admin
    browser = pathlib.Path(__file__).resolve().parent / "browser.py"
    saved = {k: os.environ.get(k) for k in ("HOME", "BROWSER", "CONFORMANCE_U2M_USER")}
    with tempfile.TemporaryDirectory() as home:
        os.environ["HOME"] = home
        os.environ["BROWSER"] = f"{sys.executable} {browser} %s"
        os.environ["CONFORMANCE_U2M_USER"] = user
        try:
            w = ctx.make_client(ctx.host, auth_type="external-browser")
            eq(w.config.auth_type, "external-browser", "auth_type")
            eq(w.current_user.me().user_name, user, "SCIM Me userName after the browser sign-in")
            list(w.workspace.list("/"))
            # offline_access gave a refresh token, which the SDK keeps for its next run.
            cached = list(pathlib.Path(home, ".config/databricks-sdk-py/oauth").glob("*"))
            ok(cached and "refresh_token" in cached[0].read_text(), f"SDK token cache: {cached}")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
