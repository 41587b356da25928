"""Jobs API 2.2 (and 2.1): list (token paging, expand_tasks), get with >100-task paging through
the SDK mixin, create, reset, update, delete, and their errors."""
from __future__ import annotations

import dataclasses
import time

from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service import jobs

from harness import Ctx, by, case, eq, ok, raises


def create(ctx: Ctx, settings: dict, **extra) -> int:
    s = jobs.JobSettings.from_dict(settings)
    kw = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if getattr(s, f.name) not in (None, [])}
    return ctx.w.jobs.create(**kw, **extra).job_id


def running_cluster(ctx: Ctx) -> str:
    return next(c["cluster_id"] for c in ctx.seed.compute["clusters"] if c.get("state") == "RUNNING")


def big_job(ctx: Ctx):
    return next(j for j in ctx.seed.jobs.values() if len(j["settings"].get("tasks", [])) > 100)


def norm(d):
    """A settings subtree as plain JSON, for comparing the SDK's parse with the seed."""
    return d.as_dict() if hasattr(d, "as_dict") else d


@case("list: token paging (limit=3) returns every seed job with its creator and name")
def list_all(ctx: Ctx):
    got = list(ctx.w.jobs.list(limit=3))
    ids = [j.job_id for j in got]
    eq(len(ids), len(set(ids)), "no job listed twice")
    got = by(got, lambda j: j.job_id)
    eq(sorted(got), sorted(ctx.seed.jobs), "job ids")
    for jid, j in ctx.seed.jobs.items():
        g = got[jid]
        eq((g.creator_user_name, g.created_time, g.settings.name),
           (j["creator_user_name"], j["created_time"], j["settings"]["name"]), f"job {jid}")
        eq(g.settings.tasks or [], [], f"job {jid} lists tasks without expand_tasks")
    first = ctx.w.api_client.do("GET", "/api/2.2/jobs/list", query={"limit": 3})
    eq(len(first["jobs"]), 3, "first page size")
    eq(first.get("has_more"), True, "has_more on the first page")
    ok(first.get("next_page_token"), "next_page_token on the first page")


@case("list expand_tasks: 2.2 truncates at 100 tasks with has_more; the SDK mixin completes them")
def list_expand(ctx: Ctx):
    big = big_job(ctx)
    raw = ctx.w.api_client.do("GET", "/api/2.2/jobs/list", query={"expand_tasks": "true", "limit": 100})
    rb = next(j for j in raw["jobs"] if j["job_id"] == big["job_id"])
    eq(len(rb["settings"]["tasks"]), 100, "tasks of the big job in a 2.2 list")
    eq(rb.get("has_more"), True, "has_more of the big job")
    small = next(j for j in raw["jobs"] if j["job_id"] != big["job_id"])
    eq(len(small["settings"]["tasks"]), len(ctx.seed.jobs[small["job_id"]]["settings"]["tasks"]), "small job tasks")
    ok(not small.get("has_more"), "has_more on a small job")
    full = by(ctx.w.jobs.list(expand_tasks=True), lambda j: j.job_id)
    for jid, j in ctx.seed.jobs.items():
        eq([t.task_key for t in full[jid].settings.tasks], [t["task_key"] for t in j["settings"]["tasks"]],
           f"job {jid} task keys via list(expand_tasks=True)")


@case("list name filter: exact and case-insensitive")
def list_name(ctx: Ctx):
    j = next(iter(ctx.seed.jobs.values()))
    for name in (j["settings"]["name"], j["settings"]["name"].upper()):
        eq([x.job_id for x in ctx.w.jobs.list(name=name)], [j["job_id"]], f"list(name={name!r})")
    eq(list(ctx.w.jobs.list(name="no such job")), [], "list of an unknown name")


@case("get: every seed job, settings field by field, server defaults filled")
def get_seeded(ctx: Ctx):
    for jid, j in ctx.seed.jobs.items():
        g = ctx.w.jobs.get(jid)
        eq((g.job_id, g.creator_user_name, g.run_as_user_name, g.created_time),
           (jid, j["creator_user_name"], j["run_as_user_name"], j["created_time"]), f"job {jid} header")
        s, want = g.settings, j["settings"]
        eq(s.name, want["name"], f"job {jid} name")
        eq(s.format, jobs.Format.MULTI_TASK, f"job {jid} format")
        eq(len(s.tasks), len(want["tasks"]), f"job {jid} number of tasks")
        for key in ("schedule", "email_notifications", "run_as", "git_source", "health", "queue",
                    "webhook_notifications", "notification_settings"):
            if key in want:
                eq(norm(getattr(s, key)), want[key], f"job {jid} {key}")
        for key in ("tags", "description", "max_concurrent_runs", "timeout_seconds"):
            if key in want:
                eq(getattr(s, key), want[key], f"job {jid} {key}")
        eq([norm(c) for c in s.job_clusters], want.get("job_clusters", []), f"job {jid} job_clusters")
        eq([norm(p) for p in s.parameters], want.get("parameters", []), f"job {jid} parameters")
        for t, wt in zip(s.tasks, want["tasks"]):
            eq(t.task_key, wt["task_key"], f"job {jid} task order")
            eq(t.run_if, jobs.RunIf(wt.get("run_if", "ALL_SUCCESS")), f"job {jid} task {t.task_key} run_if")
            for key in ("existing_cluster_id", "job_cluster_key", "max_retries", "timeout_seconds"):
                if key in wt:
                    eq(getattr(t, key), wt[key], f"job {jid} task {t.task_key} {key}")
            eq(sorted(d.task_key for d in t.depends_on or []), sorted(d["task_key"] for d in wt.get("depends_on", [])),
               f"job {jid} task {t.task_key} depends_on")
            if "notebook_task" in wt:
                nt = wt["notebook_task"]
                eq(t.notebook_task.notebook_path, nt["notebook_path"], f"job {jid} {t.task_key} notebook_path")
                eq(t.notebook_task.base_parameters, nt.get("base_parameters"), f"job {jid} {t.task_key} base_parameters")
                want_src = nt.get("source", "GIT" if "git_source" in want else "WORKSPACE")
                eq(t.notebook_task.source, jobs.Source(want_src), f"job {jid} {t.task_key} notebook source")
            if "run_job_task" in wt:
                eq(t.run_job_task.job_id, wt["run_job_task"]["job_id"], f"job {jid} {t.task_key} run_job_task")
            if "new_cluster" in wt:
                eq(norm(t.new_cluster), wt["new_cluster"], f"job {jid} {t.task_key} new_cluster")
    raises(ResourceDoesNotExist, lambda: ctx.w.jobs.get(424242))


@case("get 2.2: the 120-task job pages at 100 (token on page 1 only, omitted on the last); SDK joins pages")
def get_paged(ctx: Ctx):
    big = big_job(ctx)
    jid, n = big["job_id"], len(big["settings"]["tasks"])
    p1 = ctx.w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": jid})
    eq(len(p1["settings"]["tasks"]), 100, "tasks on page 1")
    tok = p1.get("next_page_token")
    ok(isinstance(tok, str) and tok, f"next_page_token on page 1: {tok!r}")
    p2 = ctx.w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": jid, "page_token": tok})
    eq(len(p2["settings"].get("tasks", [])), n - 100, "tasks on page 2")
    ok("next_page_token" not in p2 or p2["next_page_token"] is None, f"token on the last page: {p2.get('next_page_token')!r}")
    g = ctx.w.jobs.get(jid)
    eq([t.task_key for t in g.settings.tasks], [t["task_key"] for t in big["settings"]["tasks"]], "all task keys, in order")
    eq(len(g.settings.job_clusters), len(big["settings"]["job_clusters"]), "job clusters not duplicated across pages")
    whole = ctx.w.api_client.do("GET", "/api/2.1/jobs/get", query={"job_id": jid})
    eq(len(whole["settings"]["tasks"]), n, "2.1 returns the tasks whole")
    ok("next_page_token" not in whole, "2.1 get pages")


@case("create: read back with server defaults; creator and run-as are the caller")
def create_simple(ctx: Ctx):
    before = int(time.time() * 1000) - 60_000
    jid = create(ctx, {"name": f"conformance {ctx.run_id}", "tags": {"suite": "sdk"},
                       "tasks": [{"task_key": "only", "existing_cluster_id": running_cluster(ctx),
                                  "notebook_task": {"notebook_path": "/Shared/etl/nightly_load"}}]},
                 access_control_list=[jobs.JobAccessControlRequest(
                     group_name="researchers", permission_level=jobs.JobPermissionLevel.CAN_VIEW)])
    ok(isinstance(jid, int) and jid > 0, f"job_id {jid!r}")
    g = ctx.w.jobs.get(jid)
    eq((g.creator_user_name, g.run_as_user_name), (ctx.seed.admin, ctx.seed.admin), "creator / run as")
    ok(g.created_time and g.created_time >= before, f"created_time {g.created_time}")
    s = g.settings
    eq((s.name, s.tags, s.format, s.timeout_seconds), (f"conformance {ctx.run_id}", {"suite": "sdk"},
                                                       jobs.Format.MULTI_TASK, 0), "settings")
    ok(s.email_notifications is not None, "email_notifications not echoed as {}")
    t = s.tasks[0]
    eq((t.task_key, t.run_if, t.notebook_task.source), ("only", jobs.RunIf.ALL_SUCCESS, jobs.Source.WORKSPACE),
       "task defaults")
    eq(s.run_as, None, "run_as returned although never set")
    perms = ctx.w.permissions.get("jobs", str(jid))
    levels = {(a.group_name or a.user_name): [p.permission_level.value for p in a.all_permissions]
              for a in perms.access_control_list}
    ok("CAN_VIEW" in levels.get("researchers", []), f"access_control_list not applied: {levels}")
    ok("IS_OWNER" in levels.get(ctx.seed.admin, []), f"creator is not the owner: {levels}")
    ctx.state["simple"] = jid


@case("create 130 tasks: get joins two pages in order; list expand_tasks completes it")
def create_big(ctx: Ctx):
    tasks = [{"task_key": f"t{i:03d}", "existing_cluster_id": running_cluster(ctx),
              "notebook_task": {"notebook_path": "/Shared/etl/nightly_load", "base_parameters": {"i": str(i)}},
              **({"depends_on": [{"task_key": f"t{i - 1:03d}"}]} if i else {})} for i in range(130)]
    jid = create(ctx, {"name": f"conformance big {ctx.run_id}", "tasks": tasks})
    g = ctx.w.jobs.get(jid)
    eq([t.task_key for t in g.settings.tasks], [t["task_key"] for t in tasks], "task keys")
    eq(g.settings.tasks[129].notebook_task.base_parameters, {"i": "129"}, "last task parameters")
    listed = next(j for j in ctx.w.jobs.list(expand_tasks=True, name=f"conformance big {ctx.run_id}"))
    eq(len(listed.settings.tasks), 130, "tasks via list(expand_tasks=True)")
    ctx.state["big"] = jid


@case("reset: replaces all settings (absent fields are dropped)")
def reset(ctx: Ctx):
    jid = ctx.state["simple"]
    new = jobs.JobSettings.from_dict({
        "name": f"conformance reset {ctx.run_id}", "max_concurrent_runs": 2,
        "schedule": {"quartz_cron_expression": "0 0 4 * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"},
        "tasks": [{"task_key": "a", "existing_cluster_id": running_cluster(ctx),
                   "notebook_task": {"notebook_path": "/Shared/etl/quality_checks"}},
                  {"task_key": "b", "depends_on": [{"task_key": "a"}], "existing_cluster_id": running_cluster(ctx),
                   "notebook_task": {"notebook_path": "/Shared/etl/nightly_load"}}]})
    ctx.w.jobs.reset(jid, new)
    s = ctx.w.jobs.get(jid).settings
    eq((s.name, s.max_concurrent_runs, s.tags), (new.name, 2, None), "settings after reset")
    eq(s.schedule.as_dict(), new.schedule.as_dict(), "schedule after reset")
    eq([t.task_key for t in s.tasks], ["a", "b"], "tasks after reset")
    raises((ResourceDoesNotExist, InvalidParameterValue), lambda: ctx.w.jobs.reset(424242, new))


@case("update: merges new_settings and removes fields_to_remove")
def update(ctx: Ctx):
    jid = ctx.state["simple"]
    ctx.w.jobs.update(jid, new_settings=jobs.JobSettings(tags={"phase": "2"}, timeout_seconds=600),
                      fields_to_remove=["tasks/b", "schedule"])
    s = ctx.w.jobs.get(jid).settings
    eq((s.name, s.tags, s.timeout_seconds, s.max_concurrent_runs),
       (f"conformance reset {ctx.run_id}", {"phase": "2"}, 600, 2), "settings after update")
    eq([t.task_key for t in s.tasks], ["a"], "tasks after removing tasks/b")
    eq(s.schedule, None, "schedule after removal")


@case("create errors: a task without task_key, git_source without provider → InvalidParameterValue")
def create_errors(ctx: Ctx):
    raises(InvalidParameterValue, lambda: ctx.w.api_client.do(
        "POST", "/api/2.2/jobs/create", body={"name": "bad", "tasks": [{"notebook_task": {"notebook_path": "/x"}}]}))
    raises(InvalidParameterValue, lambda: ctx.w.api_client.do(
        "POST", "/api/2.2/jobs/create", body={"name": "bad", "git_source": {"git_url": "https://github.com/a/b"},
                                              "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "x"}}]}))


@case("delete: gone afterwards; deleting again fails")
def delete(ctx: Ctx):
    for key in ("simple", "big"):
        jid = ctx.state[key]
        ctx.w.jobs.delete(jid)
        raises(ResourceDoesNotExist, lambda: ctx.w.jobs.get(jid))
        raises((ResourceDoesNotExist, InvalidParameterValue), lambda: ctx.w.jobs.delete(jid))
    eq(sorted(j.job_id for j in ctx.w.jobs.list()), sorted(ctx.seed.jobs), "only seed jobs remain")
