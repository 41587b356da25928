"""Unity Catalog registered models through the SDK's catalog API (`registered_models`,
`model_versions`, `grants` on securable type `function`): the seed's models field by field,
aliases and get-by-alias, paging, create → update → delete, and errors."""
from __future__ import annotations

import json

from databricks.sdk.errors import ResourceAlreadyExists, ResourceDoesNotExist

from harness import Ctx, by, case, eq, raises


def seed_models(ctx: Ctx) -> dict:
    """The seed's UC models: full name → (model.json, {version: version.json})."""
    out = {}
    root = ctx.seed.root / "uc_models"
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        m = json.loads((d / "model.json").read_text())
        versions = {}
        for v in sorted((d / "versions").iterdir()):
            versions[int(v.name)] = json.loads((v / "version.json").read_text())
        out[f"{m['catalog_name']}.{m['schema_name']}.{m['name']}"] = (m, versions)
    return out


@case("uc models: list per schema (paged), get with aliases, versions, get by alias, grants")
def read_seed(ctx: Ctx):
    seed = seed_models(ctx)
    if not seed:
        return
    for full, (m, versions) in seed.items():
        listed = by(ctx.w.registered_models.list(catalog_name=m["catalog_name"], schema_name=m["schema_name"],
                                                 max_results=1), lambda x: x.full_name)
        g = listed[full]
        eq((g.name, g.catalog_name, g.schema_name, g.comment, g.owner, g.created_by, g.created_at),
           (m["name"], m["catalog_name"], m["schema_name"], m.get("comment"), m["owner"], m["created_by"],
            m["created_at"]), f"listed {full}")
        got = ctx.w.registered_models.get(full, include_aliases=True)
        eq(sorted((a.alias_name, a.version_num) for a in got.aliases or []),
           sorted((a["alias_name"], a["version_num"]) for a in m.get("aliases", [])), f"aliases of {full}")
        vs = by(ctx.w.model_versions.list(full), lambda v: v.version)
        eq(sorted(vs), sorted(versions), f"versions of {full}")
        for n, v in versions.items():
            gv = ctx.w.model_versions.get(full, n)
            eq((gv.comment, gv.run_id, gv.run_workspace_id, gv.status.value, gv.source, gv.model_name),
               (v.get("comment"), v.get("run_id"), v.get("run_workspace_id"), v["status"], v["source"], m["name"]),
               f"version {full}/{n}")
        for a in m.get("aliases", []):
            eq(ctx.w.model_versions.get_by_alias(full, a["alias_name"]).version, a["version_num"],
               f"{full}@{a['alias_name']}")
        raises(ResourceDoesNotExist, lambda: ctx.w.model_versions.get_by_alias(full, "nosuchalias"))
        want = {}
        for gr in ctx.seed.uc.get("grants", []):
            if gr["securable_type"] == "function" and gr["full_name"] == full:
                want = {a["principal"]: sorted(a["privileges"]) for a in gr["privilege_assignments"]}
        p = ctx.w.grants.get("function", full)
        eq({a.principal: sorted(x.value if hasattr(x, "value") else x for x in a.privileges)
            for a in p.privilege_assignments or []}, want, f"grants on {full}")


@case("uc models: create, update comment and owner, no alias without a version, delete; errors")
def create_cycle(ctx: Ctx):
    seed = seed_models(ctx)
    if not seed:
        return
    m, _ = next(iter(seed.values()))
    name = f"sdk_{ctx.run_id}"
    full = f"{m['catalog_name']}.{m['schema_name']}.{name}"
    c = ctx.w.registered_models.create(catalog_name=m["catalog_name"], schema_name=m["schema_name"], name=name,
                                       comment="first")
    eq((c.full_name, c.comment), (full, "first"), "created")
    raises(ResourceAlreadyExists, lambda: ctx.w.registered_models.create(
        catalog_name=m["catalog_name"], schema_name=m["schema_name"], name=name))
    raises(ResourceDoesNotExist, lambda: ctx.w.registered_models.create(catalog_name="nosuchcatalog", schema_name="x", name=name))
    u = ctx.w.registered_models.update(full, comment="second", owner=ctx.seed.admin)
    eq((u.comment, u.owner), ("second", ctx.seed.admin), "updated")
    eq(list(ctx.w.model_versions.list(full)), [], "no versions")
    raises(ResourceDoesNotExist, lambda: ctx.w.registered_models.set_alias(full, "champion", 1))
    ctx.w.registered_models.delete(full)
    raises(ResourceDoesNotExist, lambda: ctx.w.registered_models.get(full))
