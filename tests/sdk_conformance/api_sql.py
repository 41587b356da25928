"""SQL warehouses, Statement Execution of Hive metastore grant statements (SHOW GRANTS, GRANT,
DENY, REVOKE, ALTER … OWNER TO, failures), and Unity Catalog grants."""
from __future__ import annotations

import time

from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceDoesNotExist
from databricks.sdk.service.catalog import PermissionsChange, Privilege as P
from databricks.sdk.service.sql import StatementState

from harness import Ctx, by, case, eq, ok, raises

KEYWORD = {"CATALOG": "CATALOG", "DATABASE": "SCHEMA", "TABLE": "TABLE", "VIEW": "VIEW", "FUNCTION": "FUNCTION",
           "ANY_FILE": "ANY FILE"}


def wh(ctx: Ctx) -> str:
    return ctx.seed.compute["warehouses"][0]["id"]


def run(ctx: Ctx, statement: str, **kw):
    return ctx.w.statement_execution.execute_statement(statement=statement, warehouse_id=wh(ctx),
                                                       wait_timeout=kw.pop("wait_timeout", "30s"), **kw)


def rows(ctx: Ctx, statement: str) -> set:
    r = run(ctx, statement)
    eq(r.status.state, StatementState.SUCCEEDED, f"{statement}: state ({r.status.error})")
    cols = [c.name.lower() for c in r.manifest.schema.columns]
    eq(cols, ["principal", "actiontype", "objecttype", "objectkey"], f"{statement}: columns")
    data = r.result.data_array or [] if r.result else []
    eq(r.manifest.total_row_count, len(data), f"{statement}: total_row_count")
    return {(p, a, t, (k or "").replace("`", "")) for p, a, t, k in data}


# SHOW GRANTS names object types as the runtime does: the catalog is `CATALOG$`, a view is a
# `TABLE`; and it shows every privilege that affects the object, so the rows of the database and
# the catalog holding it come with those of a table (Databricks SQL reference, SHOW GRANTS).
SHOWN_TYPE = {"CATALOG": "CATALOG$", "VIEW": "TABLE"}


def own_rows(ctx: Ctx, object_type: str, key: str) -> set:
    out = {(g["principal"], g["action_type"], SHOWN_TYPE.get(g["object_type"], g["object_type"]), g["object_key"])
           for g in ctx.seed.hive["grants"] if g["object_type"] == object_type and g["object_key"] == key}
    owner = ctx.seed.hive.get("catalog_owner") if object_type == "CATALOG" else None
    for db in ctx.seed.hive["databases"]:
        if object_type == "DATABASE" and db["name"] == key:
            owner = db["owner"]
        for t in db.get("tables", []):
            if object_type in ("TABLE", "VIEW") and f"{db['name']}.{t['name']}" == key:
                owner = t["owner"]
        for f in db.get("functions", []):
            if object_type == "FUNCTION" and f"{db['name']}.{f['name']}" == key:
                owner = f["owner"]
    if owner:
        out.add((owner, "OWN", SHOWN_TYPE.get(object_type, object_type), key))
    return out


def expected(ctx: Ctx, object_type: str, key: str, principal: str | None = None) -> set:
    out = own_rows(ctx, object_type, key)
    if object_type in ("TABLE", "VIEW", "FUNCTION"):
        out |= own_rows(ctx, "DATABASE", key.split(".")[0])
    if object_type in ("TABLE", "VIEW", "FUNCTION", "DATABASE"):
        out |= own_rows(ctx, "CATALOG", "")
    return {r for r in out if principal is None or r[0] == principal}


@case("warehouses: list and get the seed warehouse field by field; unknown id → ResourceDoesNotExist")
def warehouses(ctx: Ctx):
    got = by(ctx.w.warehouses.list(), lambda x: x.id)
    for want in ctx.seed.compute["warehouses"]:
        for g in (got[want["id"]], ctx.w.warehouses.get(want["id"])):
            eq((g.name, g.state.value, g.cluster_size, g.warehouse_type.value, g.auto_stop_mins,
                g.min_num_clusters, g.max_num_clusters, g.enable_photon, g.creator_name),
               (want["name"], want["state"], want["cluster_size"], want["warehouse_type"], want["auto_stop_mins"],
                want["min_num_clusters"], want["max_num_clusters"], want["enable_photon"], want["creator_name"]),
               f"warehouse {want['id']}")
            eq(g.tags.as_dict() if g.tags else None, want.get("tags"), "warehouse tags")
    eq(len(got), len(ctx.seed.compute["warehouses"]), "number of warehouses")
    raises(ResourceDoesNotExist, lambda: ctx.w.warehouses.get("0000000000000000"))


@case("SHOW GRANTS on every seeded object: rows equal hive.json grants, denies and owners")
def show_grants(ctx: Ctx):
    objects = {(g["object_type"], g["object_key"]) for g in ctx.seed.hive["grants"]}
    for db in ctx.seed.hive["databases"]:
        objects.add(("DATABASE", db["name"]))
        for t in db.get("tables", []):
            objects.add((t["type"], f"{db['name']}.{t['name']}"))
    for otype, key in sorted(objects):
        stmt = f"SHOW GRANTS ON {KEYWORD[otype]} {key}".rstrip()
        eq(rows(ctx, stmt), expected(ctx, otype, key), stmt)


@case("SHOW GRANTS `principal` ON …: only that principal's rows")
def show_grants_principal(ctx: Ctx):
    g = next(g for g in ctx.seed.hive["grants"] if g["action_type"].startswith("DENIED_"))
    stmt = f"SHOW GRANTS `{g['principal']}` ON {KEYWORD[g['object_type']]} {g['object_key']}"
    eq(rows(ctx, stmt), expected(ctx, g["object_type"], g["object_key"], g["principal"]), stmt)


@case("GRANT / DENY / REVOKE / ALTER OWNER change what SHOW GRANTS answers; hive_metastore. prefix")
def grant_cycle(ctx: Ctx):
    table = next(f"{d['name']}.{t['name']}" for d in ctx.seed.hive["databases"] for t in d.get("tables", [])
                 if t["type"] == "TABLE")
    base = expected(ctx, "TABLE", table)
    for stmt in (f"GRANT SELECT, MODIFY ON TABLE {table} TO `climate modelling`",
                 f"DENY SELECT ON TABLE {table} TO `interns`",
                 f"REVOKE MODIFY ON TABLE {table} FROM `climate modelling`",
                 f"ALTER TABLE {table} OWNER TO `data-stewards`"):
        r = run(ctx, stmt)
        eq(r.status.state, StatementState.SUCCEEDED, f"{stmt}: {r.status.error}")
    old_owner = next(x for x in base if x[1] == "OWN" and x[3] == table)
    want = (base - {old_owner}) | {("climate modelling", "SELECT", "TABLE", table),
                                   ("interns", "DENIED_SELECT", "TABLE", table),
                                   ("data-stewards", "OWN", "TABLE", table)}
    eq(rows(ctx, f"SHOW GRANTS ON TABLE {table}"), want, "grants after the changes")
    eq(rows(ctx, f"SHOW GRANTS ON TABLE hive_metastore.{table}"), want, "with the hive_metastore. prefix")


@case("failures come back as HTTP 200 with state FAILED: unknown table, bad syntax")
def failed_statements(ctx: Ctx):
    for stmt in ("GRANT SELECT ON TABLE no_such_db.no_such_table TO `researchers`", "SHOW GRANTZ ON TABLE x"):
        r = run(ctx, stmt)
        eq(r.status.state, StatementState.FAILED, f"{stmt}: state")
        ok(r.status.error and r.status.error.message, f"{stmt}: no error message")
        ok(r.statement_id, "no statement_id on a failed statement")


@case("asynchronous execution: wait_timeout=0s, then poll get_statement until SUCCEEDED")
def async_poll(ctx: Ctx):
    db = ctx.seed.hive["databases"][1]["name"]
    r = run(ctx, f"SHOW GRANTS ON SCHEMA {db}", wait_timeout="0s")
    ok(r.statement_id, "no statement_id")
    state = r.status.state
    for _ in range(50):
        if state in (StatementState.SUCCEEDED, StatementState.FAILED):
            break
        time.sleep(0.1)
        r = ctx.w.statement_execution.get_statement(r.statement_id)
        state = r.status.state
    eq(state, StatementState.SUCCEEDED, "final state")
    g = ctx.w.statement_execution.get_statement(r.statement_id)
    eq(g.status.state, StatementState.SUCCEEDED, "get_statement state")
    eq(g.result.data_array, r.result.data_array, "get_statement result")
    eq({(p, a, t, k.replace("`", "")) for p, a, t, k in g.result.data_array}, expected(ctx, "DATABASE", db),
       "async SHOW GRANTS rows")
    raises((NotFound, ResourceDoesNotExist), lambda: ctx.w.statement_execution.get_statement(
        "01ef0000-0000-0000-0000-000000000000"))


def uc_map(resp) -> dict:
    return {a.principal: sorted(p.value if hasattr(p, "value") else p for p in a.privileges or [])
            for a in resp.privilege_assignments or []}


@case("UC grants get: catalog and schema assignments equal unity_catalog.json; principal filter")
def uc_get(ctx: Ctx):
    for g in ctx.seed.uc["grants"]:
        want = {a["principal"]: sorted(a["privileges"]) for a in g["privilege_assignments"]}
        eq(uc_map(ctx.w.grants.get(g["securable_type"], g["full_name"])), want, f"{g['full_name']} grants")
        eq(uc_map(ctx.w.grants.get(g["securable_type"].upper(), g["full_name"])), want, "upper-case securable type")
        p = g["privilege_assignments"][0]["principal"]
        eq(uc_map(ctx.w.grants.get(g["securable_type"], g["full_name"], principal=p)), {p: want[p]}, "principal filter")


@case("UC grants update: add, remove, and add+remove of one privilege → InvalidParameterValue")
def uc_update(ctx: Ctx):
    g = next(x for x in ctx.seed.uc["grants"] if x["securable_type"] == "schema")
    st, name, who = g["securable_type"], g["full_name"], "zoe.muller@sciencehub.example"
    r = ctx.w.grants.update(st, name, changes=[PermissionsChange(principal=who, add=[P.USE_SCHEMA, P.SELECT])])
    eq(uc_map(r).get(who), ["SELECT", "USE_SCHEMA"], "after add (response)")
    eq(uc_map(ctx.w.grants.get(st, name)).get(who), ["SELECT", "USE_SCHEMA"], "after add (get)")
    r = ctx.w.grants.update(st, name, changes=[PermissionsChange(principal=who, remove=[P.SELECT])])
    eq(uc_map(r).get(who), ["USE_SCHEMA"], "after remove")
    ctx.w.grants.update(st, name, changes=[PermissionsChange(principal=who, remove=[P.USE_SCHEMA])])
    ok(who not in uc_map(ctx.w.grants.get(st, name)), "principal with no privileges still listed")
    raises(InvalidParameterValue, lambda: ctx.w.grants.update(
        st, name, changes=[PermissionsChange(principal=who, add=[P.SELECT], remove=[P.SELECT])]))
    eq(uc_map(ctx.w.grants.get(st, name)), {a["principal"]: sorted(a["privileges"]) for a in g["privilege_assignments"]},
       "grants back to the seed")
