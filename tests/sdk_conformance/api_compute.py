"""Clusters, instance pools and cluster policies (list, get), and command execution (contexts,
execute, status, destroy) with the fixed programs dbxport sends (src/model/command.rs)."""
from __future__ import annotations

import base64
import json
import pathlib
import re
from datetime import timedelta

from databricks.sdk.errors import BadRequest, DatabricksError, InvalidParameterValue, InvalidState, ResourceDoesNotExist
from databricks.sdk.service.compute import CommandStatus, ContextStatus, Language, ResultType, State

from harness import Ctx, by, case, eq, ok, raises

COMMAND_RS = pathlib.Path(__file__).resolve().parent.parent.parent / "src" / "model" / "command.rs"
WAIT = timedelta(seconds=30)


def program(name: str) -> str:
    """A program text as the shared model defines it (the emulator recognises exactly these)."""
    src = COMMAND_RS.read_text(encoding="utf-8")
    m = re.search(r'pub const ' + name + r': &str = r#"(.*?)"#;', src, re.S)
    if not m:
        raise AssertionError(f"{name} not found in {COMMAND_RS}")
    return m.group(1)


def secret_read_command(pairs: list[tuple[str, str]]) -> str:
    payload = json.dumps([list(p) for p in pairs], separators=(",", ":"), ensure_ascii=False).encode()
    return program("SECRET_READ_SNIPPET").replace("__DBXPORT_KEYS_B64__", base64.b64encode(payload).decode(), 1)


def running(ctx: Ctx) -> dict:
    return next(c for c in ctx.seed.compute["clusters"] if c.get("state") == "RUNNING")


@case("clusters: list and get field by field; unknown id → ResourceDoesNotExist")
def clusters(ctx: Ctx):
    got = by(ctx.w.clusters.list(), lambda c: c.cluster_id)
    eq(sorted(got), sorted(c["cluster_id"] for c in ctx.seed.compute["clusters"]), "cluster ids")
    for want in ctx.seed.compute["clusters"]:
        for g in (got[want["cluster_id"]], ctx.w.clusters.get(want["cluster_id"])):
            eq((g.cluster_name, g.state, g.spark_version, g.node_type_id, g.num_workers if "num_workers" in want else None,
                g.autotermination_minutes, g.creator_user_name, g.custom_tags, g.spark_conf, g.policy_id,
                g.instance_pool_id),
               (want["cluster_name"], State(want["state"]), want["spark_version"], want["node_type_id"],
                want.get("num_workers"), want["autotermination_minutes"], want["creator_user_name"],
                want.get("custom_tags"), want.get("spark_conf"), want.get("policy_id"), want.get("instance_pool_id")),
               f"cluster {want['cluster_id']}")
            eq(g.autoscale.as_dict() if g.autoscale else None, want.get("autoscale"), "autoscale")
            eq([s.as_dict() for s in g.init_scripts or []], want.get("init_scripts", []), "init_scripts")
    raises(ResourceDoesNotExist, lambda: ctx.w.clusters.get("0000-000000-nosuch00"))


@case("instance pools and cluster policies: list and get")
def pools_policies(ctx: Ctx):
    pools = by(ctx.w.instance_pools.list(), lambda p: p.instance_pool_id)
    for want in ctx.seed.compute["instance_pools"]:
        for g in (pools[want["instance_pool_id"]], ctx.w.instance_pools.get(want["instance_pool_id"])):
            eq((g.instance_pool_name, g.node_type_id, g.max_capacity, g.min_idle_instances,
                g.idle_instance_autotermination_minutes, g.preloaded_spark_versions, g.state.value),
               (want["instance_pool_name"], want["node_type_id"], want["max_capacity"], want["min_idle_instances"],
                want["idle_instance_autotermination_minutes"], want["preloaded_spark_versions"], want["state"]),
               f"pool {want['instance_pool_id']}")
    eq(len(pools), len(ctx.seed.compute["instance_pools"]), "number of pools")
    policies = by(ctx.w.cluster_policies.list(), lambda p: p.policy_id)
    for want in ctx.seed.compute["policies"]:
        for g in (policies[want["policy_id"]], ctx.w.cluster_policies.get(want["policy_id"])):
            eq((g.name, g.description, g.max_clusters_per_user, g.creator_user_name, g.created_at_timestamp),
               (want["name"], want["description"], want["max_clusters_per_user"], want["creator_user_name"],
                want["created_at_timestamp"]), f"policy {want['policy_id']}")
            eq(json.loads(g.definition), json.loads(want["definition"]), "policy definition")
    eq(len(policies), len(ctx.seed.compute["policies"]), "number of policies")


@case("command execution: create a context on the running cluster and wait until Running")
def context_create(ctx: Ctx):
    cid = running(ctx)["cluster_id"]
    st = ctx.w.command_execution.create_and_wait(cluster_id=cid, language=Language.PYTHON, timeout=WAIT)
    eq(st.status, ContextStatus.RUNNING, "context status")
    ok(st.id, "no context id")
    again = ctx.w.command_execution.context_status(cluster_id=cid, context_id=st.id)
    eq((again.id, again.status), (st.id, ContextStatus.RUNNING), "context_status")
    ctx.state["context"] = st.id


@case("command execution: the secret-read program returns every seed value byte for byte")
def secret_read(ctx: Ctx):
    cid, context = running(ctx)["cluster_id"], ctx.state["context"]
    pairs, want = [], {}
    for s in ctx.seed.secrets["scopes"]:
        for k in s["secrets"]:
            pairs.append((s["name"], k["key"]))
            want[(s["name"], k["key"])] = (k["string_value"].encode() if "string_value" in k
                                           else base64.b64decode(k["bytes_value"]))
    pairs.append((ctx.seed.secrets["scopes"][0]["name"], "no-such-key"))
    r = ctx.w.command_execution.execute_and_wait(cluster_id=cid, context_id=context, language=Language.PYTHON,
                                                 command=secret_read_command(pairs), timeout=WAIT)
    eq(r.status, CommandStatus.FINISHED, "command status")
    eq(r.results.result_type, ResultType.TEXT, f"result type ({r.results.cause})")
    out = json.loads(r.results.data)
    got = {(v["scope"], v["key"]): base64.b64decode(v["value"]) for v in out["values"]}
    eq(got, want, "secret values")
    eq([(e["scope"], e["key"]) for e in out["errors"]], [pairs[-1]], "unreadable keys reported in errors")
    ok(all(e["error"] for e in out["errors"]), "error text missing")


@case("command execution: the mounts program lists the seed mounts (besides built-ins)")
def mounts(ctx: Ctx):
    cid, context = running(ctx)["cluster_id"], ctx.state["context"]
    r = ctx.w.command_execution.execute_and_wait(cluster_id=cid, context_id=context, language=Language.PYTHON,
                                                 command=program("MOUNTS_SNIPPET"), timeout=WAIT)
    eq((r.status, r.results.result_type), (CommandStatus.FINISHED, ResultType.TEXT), f"result ({r.results.cause})")
    builtin = set(re.findall(r'"(/[^"]*)"', program_consts()))
    got = {m["mount_point"]: m for m in json.loads(r.results.data)["mounts"] if m["mount_point"] not in builtin}
    eq(sorted(got), sorted(m["mount_point"] for m in ctx.seed.mounts), "mount points")
    for m in ctx.seed.mounts:
        eq(got[m["mount_point"]]["source"], m["source"], f"{m['mount_point']} source")
        if m.get("encryption_type"):
            eq(got[m["mount_point"]]["encryption_type"], m["encryption_type"], f"{m['mount_point']} encryption")


def program_consts() -> str:
    src = COMMAND_RS.read_text(encoding="utf-8")
    m = re.search(r"BUILTIN_MOUNT_POINTS: \[&str; \d+\] = \[(.*?)\];", src, re.S)
    return m.group(1) if m else ""


@case("command execution: any other program finishes with an error result; status by id")
def other_program(ctx: Ctx):
    cid, context = running(ctx)["cluster_id"], ctx.state["context"]
    w = ctx.w.command_execution.execute(cluster_id=cid, context_id=context, language=Language.PYTHON,
                                        command="spark.range(10).count()")
    r = w.result(timeout=WAIT)
    eq((r.status, r.results.result_type), (CommandStatus.FINISHED, ResultType.ERROR), "unsupported program")
    ok(r.results.cause or r.results.summary, "no cause or summary for the error")
    s = ctx.w.command_execution.command_status(cluster_id=cid, context_id=context, command_id=w.response.id)
    eq((s.id, s.status), (w.response.id, CommandStatus.FINISHED), "command_status by id")


@case("command execution: destroy; the context is gone; a terminated cluster refuses contexts")
def destroy(ctx: Ctx):
    cid, context = running(ctx)["cluster_id"], ctx.state["context"]
    ctx.w.command_execution.destroy(cluster_id=cid, context_id=context)
    try:
        st = ctx.w.command_execution.context_status(cluster_id=cid, context_id=context)
        ok(st.status != ContextStatus.RUNNING, f"destroyed context still Running: {st}")
    except DatabricksError as e:
        ok(type(e) in (ResourceDoesNotExist, InvalidParameterValue, BadRequest), f"unexpected {type(e).__name__}: {e}")
    stopped = next((c for c in ctx.seed.compute["clusters"] if c.get("state") == "TERMINATED"), None)
    if stopped:
        raises((InvalidParameterValue, BadRequest, InvalidState), lambda: ctx.w.command_execution.create(
            cluster_id=stopped["cluster_id"], language=Language.PYTHON).result(timeout=WAIT))
