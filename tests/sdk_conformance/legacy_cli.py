#!/usr/bin/env python3
"""Drives a dbxport emulator with the legacy `databricks-cli` (PyPI 0.18.0), a second client
nobody here wrote: its `databricks` command and its Python `ApiClient` and service classes, over
workspace (`export_dir`, `import_dir`), jobs (2.0 and 2.1, runs), clusters, libraries, secrets,
the 2.0 groups API, tokens, instance profiles, the `/api/2.0/preview/permissions/` prefix with
cluster, pool and policy permissions, and SCIM group members without `$ref`.

    CONFORMANCE_TOKEN=TOKEN python tests/sdk_conformance/legacy_cli.py --host http://127.0.0.1:PORT \
        [--seed DIR] [--cli PATH] [-v]

The admin token is read from the environment, never the command line; the CLI gets it through
`DATABRICKS_TOKEN`. The emulator must be freshly started from `--seed` (default
fixtures/workspaces/poc). The last line is `N passed, N failed`; the exit status is non-zero on
any failure.

The legacy client builds its base URL from the host's name alone (`urlparse(host).hostname`),
dropping any port, so it can only reach a server on port 443 or 80. Rather than change the
client, every request it makes goes through `HTTP_PROXY` set to the emulator, which serves the
proxy-form request (`GET http://127.0.0.1/api/2.0/...`) as it serves any other: the requests are
byte for byte what the client sends a real workspace, only addressed to the emulator.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import secrets as pysecrets
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE))

for k in list(os.environ):
    if k.startswith("DATABRICKS_") or k.startswith("ARM_") or k.lower() in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        del os.environ[k]
os.environ["DATABRICKS_CONFIG_FILE"] = os.devnull

import requests  # noqa: E402
from databricks_cli.sdk.api_client import ApiClient  # noqa: E402
from databricks_cli.sdk.service import (  # noqa: E402
    ClusterService, GroupsService, JobsService, ManagedLibraryService, SecretService, TokenService,
    WorkspaceService,
)
from databricks_cli.workspace.api import WorkspaceApi  # noqa: E402

import harness  # noqa: E402
from harness import case, eq, ok  # noqa: E402
import seed as seedmod  # noqa: E402


class Legacy:
    """The run's inputs: how to call the CLI and the client, and ids carried between cases."""

    def __init__(self, host: str, token: str, user_token: str | None, cli: str, seed):
        self.host = host.rstrip("/")
        self.token = token
        self.user_token = user_token
        self.cli_path = cli
        self.seed = seed
        self.run_id = pysecrets.token_hex(3)
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="legacy-cli-"))
        self.state: dict = {}

    def env(self, token: str | None = None) -> dict:
        env = dict(os.environ)
        env["DATABRICKS_HOST"] = self.host
        env["DATABRICKS_TOKEN"] = token or self.token
        env["HTTP_PROXY"] = self.host
        env["http_proxy"] = self.host
        return env

    def cli(self, *args: str, token: str | None = None, fail: bool = False) -> str:
        """Runs the `databricks` command; returns its stdout, or with `fail` its error output."""
        p = subprocess.run([self.cli_path, *args], cwd=self.tmp, env=self.env(token),
                           capture_output=True, text=True, timeout=120)
        if fail:
            if p.returncode == 0:
                raise AssertionError(f"databricks {' '.join(args)} succeeded: {p.stdout[:300]}")
            return p.stdout + p.stderr
        if p.returncode != 0:
            raise AssertionError(f"databricks {' '.join(args)} exited {p.returncode}: "
                                 f"{(p.stdout + p.stderr)[-800:]}")
        return p.stdout

    def cli_json(self, *args: str, token: str | None = None):
        out = self.cli(*args, token=token)
        # The CLI prints a warning line before some JSON answers.
        start = min((i for i in (out.find("{"), out.find("[")) if i >= 0), default=-1)
        return json.loads(out[start:]) if start >= 0 else None

    def client(self, token: str | None = None, **kw) -> ApiClient:
        os.environ["HTTP_PROXY"] = self.host
        os.environ["http_proxy"] = self.host
        return ApiClient(host=self.host, token=token or self.token, **kw)


def http_error(fn, status: int, code: str | None = None) -> dict:
    """Calls `fn`, which must raise the client's HTTPError with `status` (and `error_code`)."""
    try:
        fn()
    except requests.exceptions.HTTPError as e:
        got = e.response.status_code if e.response is not None else None
        body = {}
        try:
            body = e.response.json()
        except ValueError:
            pass
        if got != status:
            raise AssertionError(f"expected HTTP {status}, got {got}: {str(e)[:300]}") from e
        if code is not None and body.get("error_code") != code:
            raise AssertionError(f"expected error_code {code!r}, got {body!r}") from e
        return body
    raise AssertionError(f"expected HTTP {status}, but the call succeeded")


L: Legacy = None  # set by main


# ---- workspace --------------------------------------------------------------------------------

@case("workspace ls and export_dir write every notebook with its language's extension")
def ws_export_dir(ctx):
    names = L.cli("workspace", "ls", "/Shared").split()
    ok("etl" in names and "archive" in names, f"/Shared: {names}")
    out = L.tmp / "etl-export"
    L.cli("workspace", "export_dir", "/Shared/etl", str(out))
    want = {e.path: e for e in L.seed.under("/Shared/etl") if e.kind == "NOTEBOOK"}
    ok(want, "the seed has notebooks under /Shared/etl")
    ext = {"PYTHON": ".py", "SQL": ".sql", "SCALA": ".scala", "R": ".r"}
    got = {}
    for f in out.rglob("*"):
        if f.is_file():
            rel = "/Shared/etl/" + str(f.relative_to(out))
            got[rel] = f.read_bytes()
    for path, e in want.items():
        local = path + ext[e.language]
        ok(local in got, f"{local} not exported; got {sorted(got)}")
        eq(got[local], e.content, f"exported source of {path}")
    ctx.state["etl_export"] = out


@case("import_dir re-creates the tree, and export_dir of the copy gives the same bytes")
def ws_import_dir(ctx):
    src = ctx.state["etl_export"]
    dst = f"/Shared/legacy-{L.run_id}/etl"
    L.cli("workspace", "import_dir", str(src), dst)
    again = L.tmp / "etl-again"
    L.cli("workspace", "export_dir", dst, str(again))
    a = {str(f.relative_to(src)): f.read_bytes() for f in src.rglob("*") if f.is_file()}
    b = {str(f.relative_to(again)): f.read_bytes() for f in again.rglob("*") if f.is_file()}
    eq(b, a, "files exported from the imported copy")
    api = WorkspaceApi(L.client())
    st = api.get_status(dst + "/nightly_load")
    eq((st.object_type, st.language), ("NOTEBOOK", "PYTHON"), "imported notebook")
    # Importing over an existing notebook without -o is refused, as on real workspaces.
    err = L.cli("workspace", "import", "-l", "PYTHON", str(src / "nightly_load.py"),
                dst + "/nightly_load", fail=True)
    ok("RESOURCE_ALREADY_EXISTS" in err, err[-300:])
    L.cli("workspace", "import", "-o", "-l", "PYTHON", str(src / "nightly_load.py"), dst + "/nightly_load")
    L.cli("workspace", "rm", "-r", f"/Shared/legacy-{L.run_id}")
    http_error(lambda: WorkspaceService(L.client()).get_status(dst), 404, "RESOURCE_DOES_NOT_EXIST")


# ---- jobs -------------------------------------------------------------------------------------

def all_21_job_ids(client) -> list:
    ids, offset = [], 0
    while True:
        page = JobsService(client).list_jobs(offset=offset, limit=25, version="2.1")
        ids += [j["job_id"] for j in page.get("jobs", [])]
        if not page.get("has_more"):
            return ids
        offset += 25


@case("jobs list (2.0) answers every job at once, the same jobs 2.1 pages")
def jobs_list_20(ctx):
    listed = L.cli_json("jobs", "list", "--output", "JSON")
    ids = [j["job_id"] for j in listed["jobs"]]
    eq(sorted(ids), sorted(all_21_job_ids(L.client())), "2.0 list against 2.1 pages")
    eq(len(ids), len(L.seed.jobs), "jobs in the seed")
    raw = JobsService(L.client()).list_jobs()
    eq((len(raw["jobs"]), raw.get("has_more")), (len(ids), False), "one answer, nothing more")
    # A multi-task job reads in 2.0 with its tasks, whole (2.0 never pages).
    fanout = next(j for j in listed["jobs"] if len(j["settings"].get("tasks", [])) > 100)
    eq(len(fanout["settings"]["tasks"]), 120, "tasks of the fan-out job in a 2.0 list")
    eq(fanout["settings"]["format"], "MULTI_TASK", "format")


@case("jobs create (2.0, single-task form) → get in 2.0 and 2.1 → reset → delete")
def jobs_single_task(ctx):
    name = f"legacy-single-{L.run_id}"
    spec = {"name": name, "existing_cluster_id": "0611-083245-krill42a",
            "notebook_task": {"notebook_path": "/Shared/etl/nightly_load", "base_parameters": {"d": "1"}},
            "libraries": [{"pypi": {"package": "pandas==2.2.0"}}], "max_retries": 2,
            "timeout_seconds": 600, "email_notifications": {"on_failure": ["ada.okafor@sciencehub.example"]}}
    created = L.cli_json("jobs", "create", "--json", json.dumps(spec))
    job_id = created["job_id"]
    ctx.state["single_job"] = job_id
    got = L.cli_json("jobs", "get", "--job-id", str(job_id))
    s = got["settings"]
    eq(s["format"], "SINGLE_TASK", "format in 2.0")
    ok("tasks" not in s, f"a single-task job in 2.0 has no tasks array: {s}")
    for k in ("existing_cluster_id", "libraries", "max_retries", "timeout_seconds", "email_notifications"):
        eq(s[k], spec[k], k)
    eq(s["notebook_task"]["notebook_path"], spec["notebook_task"]["notebook_path"], "notebook path")
    eq(got["creator_user_name"], L.seed.admin, "creator")
    v21 = L.cli_json("jobs", "get", "--job-id", str(job_id), "--version=2.1")["settings"]
    eq(v21["format"], "SINGLE_TASK", "format in 2.1")
    eq(len(v21["tasks"]), 1, "2.1 shows the one task")
    t = v21["tasks"][0]
    eq((t["existing_cluster_id"], t["max_retries"]), ("0611-083245-krill42a", 2), "the task's fields")
    ok("existing_cluster_id" not in v21, "2.1 keeps task fields in the task")
    spec2 = dict(spec, max_retries=5, notebook_task={"notebook_path": "/Shared/etl/quality_checks"})
    L.cli("jobs", "reset", "--job-id", str(job_id), "--json", json.dumps(spec2))
    s = L.cli_json("jobs", "get", "--job-id", str(job_id))["settings"]
    eq((s["max_retries"], s["notebook_task"]["notebook_path"]), (5, "/Shared/etl/quality_checks"), "after reset")
    # 2.0 update of a single-task job works on the single-task form.
    JobsService(L.client()).update_job(job_id, new_settings={"max_retries": 1}, version="2.0")
    s = L.cli_json("jobs", "get", "--job-id", str(job_id))["settings"]
    eq((s["max_retries"], s["existing_cluster_id"]), (1, "0611-083245-krill42a"), "after 2.0 update")


@case("jobs run-now → runs get goes PENDING, RUNNING, TERMINATED/SUCCESS; runs list; cancel")
def jobs_runs(ctx):
    job_id = ctx.state["single_job"]
    run = L.cli_json("jobs", "run-now", "--job-id", str(job_id), "--notebook-params", '{"d": "2"}')
    run_id = run["run_id"]
    eq(run["number_in_job"], 1, "number_in_job")
    seen = []
    for _ in range(3):
        r = L.cli_json("runs", "get", "--run-id", str(run_id))
        seen.append((r["state"]["life_cycle_state"], r["state"].get("result_state")))
    eq(seen, [("PENDING", None), ("RUNNING", None), ("TERMINATED", "SUCCESS")], "life cycle")
    eq(r["job_id"], job_id, "job_id")
    eq(r["overriding_parameters"], {"notebook_params": {"d": "2"}}, "overriding_parameters")
    eq(r["tasks"][0]["notebook_task"]["notebook_path"], "/Shared/etl/quality_checks", "the run's task")
    second = L.cli_json("jobs", "run-now", "--job-id", str(job_id))["run_id"]
    L.cli("runs", "cancel", "--run-id", str(second))
    r = L.cli_json("runs", "get", "--run-id", str(second))
    eq((r["state"]["life_cycle_state"], r["state"]["result_state"]), ("TERMINATED", "CANCELED"), "cancelled run")
    listed = L.cli_json("runs", "list", "--job-id", str(job_id), "--output", "JSON")
    eq([x["run_id"] for x in listed["runs"]], [second, run_id], "runs, newest first")
    active = JobsService(L.client()).list_runs(job_id=job_id, active_only=True)
    eq(active.get("runs", []), [], "no active runs left")
    err = L.cli("runs", "get", "--run-id", "1", fail=True)
    ok("INVALID_PARAMETER_VALUE" in err and "does not exist" in err, err[-300:])


@case("jobs 2.1 through the CLI: create multi-task, list, get, delete; 2.0 delete")
def jobs_21(ctx):
    spec = {"name": f"legacy-multi-{L.run_id}", "tasks": [
        {"task_key": "a", "notebook_task": {"notebook_path": "/Shared/etl/nightly_load"},
         "existing_cluster_id": "0611-083245-krill42a"},
        {"task_key": "b", "depends_on": [{"task_key": "a"}],
         "notebook_task": {"notebook_path": "/Shared/etl/quality_checks"},
         "existing_cluster_id": "0611-083245-krill42a"}]}
    job_id = L.cli_json("jobs", "create", "--json", json.dumps(spec), "--version=2.1")["job_id"]
    got = L.cli_json("jobs", "get", "--job-id", str(job_id), "--version=2.1")
    eq([t["task_key"] for t in got["settings"]["tasks"]], ["a", "b"], "tasks")
    eq(got["settings"]["format"], "MULTI_TASK", "format")
    v20 = L.cli_json("jobs", "get", "--job-id", str(job_id))
    eq([t["task_key"] for t in v20["settings"]["tasks"]], ["a", "b"], "the same job in 2.0")
    named = L.cli_json("jobs", "list", "--version=2.1", "--name", spec["name"], "--output", "JSON")
    eq([j["job_id"] for j in named["jobs"]], [job_id], "list --name")
    L.cli("jobs", "delete", "--job-id", str(job_id), "--version=2.1")
    L.cli("jobs", "delete", "--job-id", str(ctx.state["single_job"]))
    for j in (job_id, ctx.state["single_job"]):
        err = L.cli("jobs", "get", "--job-id", str(j), fail=True)
        ok("does not exist" in err, err[-300:])


# ---- clusters and libraries -------------------------------------------------------------------

def cluster_state(cid: str) -> str:
    return L.cli_json("clusters", "get", "--cluster-id", cid)["state"]


@case("clusters create → PENDING then RUNNING; restart, resize, edit; start refused while running")
def clusters_lifecycle(ctx):
    spec = {"cluster_name": f"legacy-{L.run_id}", "spark_version": "14.3.x-scala2.12",
            "node_type_id": "Standard_DS3_v2", "num_workers": 1, "autotermination_minutes": 30,
            "custom_tags": {"project": "legacy-cli"}}
    cid = L.cli_json("clusters", "create", "--json", json.dumps(spec))["cluster_id"]
    ctx.state["cluster"] = cid
    c = L.cli_json("clusters", "get", "--cluster-id", cid)
    eq((c["state"], c["cluster_name"], c["num_workers"]), ("PENDING", spec["cluster_name"], 1), "new cluster")
    eq((c["creator_user_name"], c["cluster_source"]), (L.seed.admin, "API"), "creator, source")
    eq(c["default_tags"]["ClusterId"], cid, "default tags")
    eq(cluster_state(cid), "RUNNING", "second read")
    names = L.cli("clusters", "list")
    ok(cid in names and spec["cluster_name"] in names, names)
    err = L.cli("clusters", "start", "--cluster-id", cid, fail=True)
    ok("INVALID_STATE" in err, err[-300:])
    L.cli("clusters", "resize", "--cluster-id", cid, "--num-workers", "3")
    eq(cluster_state(cid), "RESIZING", "after resize")
    eq(L.cli_json("clusters", "get", "--cluster-id", cid)["num_workers"], 3, "workers")
    L.cli("clusters", "restart", "--cluster-id", cid)
    eq([cluster_state(cid), cluster_state(cid)], ["RESTARTING", "RUNNING"], "restart")
    edited = dict(spec, cluster_id=cid, num_workers=2, autotermination_minutes=45)
    L.cli("clusters", "edit", "--json", json.dumps(edited))
    c = L.cli_json("clusters", "get", "--cluster-id", cid)
    eq((c["state"], c["num_workers"], c["autotermination_minutes"]), ("RESTARTING", 2, 45), "after edit")
    eq(c["creator_user_name"], L.seed.admin, "edit keeps the creator")
    http_error(lambda: ClusterService(L.client()).create_cluster(cluster_name="x", num_workers=1),
               400, "INVALID_PARAMETER_VALUE")


@case("libraries install → INSTALLING → INSTALLED; uninstall waits for a restart")
def libraries(ctx):
    cid = ctx.state["cluster"]
    eq(cluster_state(cid), "RUNNING", "cluster")
    L.cli("libraries", "install", "--cluster-id", cid, "--pypi-package", "pandas==2.2.0")
    L.cli("libraries", "install", "--cluster-id", cid, "--maven-coordinates", "org.jsoup:jsoup:1.7.2")
    first = L.cli_json("libraries", "cluster-status", "--cluster-id", cid)
    eq([s["status"] for s in first["library_statuses"]], ["INSTALLING", "INSTALLING"], "first read")
    second = ManagedLibraryService(L.client()).cluster_status(cid)
    eq([s["library"] for s in second["library_statuses"]],
       [{"pypi": {"package": "pandas==2.2.0"}}, {"maven": {"coordinates": "org.jsoup:jsoup:1.7.2"}}], "libraries")
    eq([s["status"] for s in second["library_statuses"]], ["INSTALLED", "INSTALLED"], "second read")
    every = L.cli_json("libraries", "all-cluster-statuses")
    eq([s["cluster_id"] for s in every["statuses"]], [cid], "all-cluster-statuses")
    L.cli("libraries", "uninstall", "--cluster-id", cid, "--pypi-package", "pandas==2.2.0")
    st = ManagedLibraryService(L.client()).cluster_status(cid)
    eq([s["status"] for s in st["library_statuses"]], ["UNINSTALL_ON_RESTART", "INSTALLED"], "after uninstall")
    L.cli("clusters", "restart", "--cluster-id", cid)
    eq([cluster_state(cid), cluster_state(cid)], ["RESTARTING", "RUNNING"], "restart")
    st = ManagedLibraryService(L.client()).cluster_status(cid)
    eq([s["library"] for s in st["library_statuses"]], [{"maven": {"coordinates": "org.jsoup:jsoup:1.7.2"}}],
       "the uninstalled library is gone after the restart")
    http_error(lambda: ManagedLibraryService(L.client()).install_libraries(cid, [{"nuget": "x"}]),
               400, "INVALID_PARAMETER_VALUE")


@case("clusters delete terminates (TERMINATING → TERMINATED), start brings it back, permanent-delete removes it")
def clusters_terminate(ctx):
    cid = ctx.state["cluster"]
    L.cli("clusters", "delete", "--cluster-id", cid)
    c = L.cli_json("clusters", "get", "--cluster-id", cid)
    eq((c["state"], c["termination_reason"]["code"]), ("TERMINATING", "USER_REQUEST"), "terminating")
    eq(cluster_state(cid), "TERMINATED", "then terminated")
    err = L.cli("clusters", "restart", "--cluster-id", cid, fail=True)
    ok("INVALID_STATE" in err, err[-300:])
    L.cli("clusters", "start", "--cluster-id", cid)
    eq([cluster_state(cid), cluster_state(cid)], ["PENDING", "RUNNING"], "start")
    L.cli("clusters", "permanent-delete", "--cluster-id", cid)
    err = L.cli("clusters", "get", "--cluster-id", cid, fail=True)
    ok("does not exist" in err, err[-300:])
    ok(cid not in L.cli("clusters", "list"), "permanently deleted cluster is listed")


@case("cluster-policies list and instance-pools list show the seed's")
def pools_policies(ctx):
    pools = L.cli_json("instance-pools", "list", "--output", "JSON")
    eq([p["instance_pool_id"] for p in pools["instance_pools"]],
       [p["instance_pool_id"] for p in L.seed.compute["instance_pools"]], "pools")
    policies = L.cli_json("cluster-policies", "list", "--output", "JSON")
    eq([p["policy_id"] for p in policies["policies"]],
       [p["policy_id"] for p in L.seed.compute["policies"]], "policies")


# ---- secrets ----------------------------------------------------------------------------------

@case("secrets: create-scope, write, list, ACLs, delete")
def secrets(ctx):
    scope = f"legacy-{L.run_id}"
    L.cli("secrets", "create-scope", "--scope", scope)
    L.cli("secrets", "write", "--scope", scope, "--key", "k1", "--string-value", "v1")
    SecretService(L.client()).put_secret(scope, "k2", bytes_value=base64.b64encode(b"\x00\x01").decode())
    keys = L.cli_json("secrets", "list", "--scope", scope, "--output", "JSON")
    eq(sorted(s["key"] for s in keys["secrets"]), ["k1", "k2"], "keys")
    L.cli("secrets", "put-acl", "--scope", scope, "--principal", "researchers", "--permission", "READ")
    acl = L.cli_json("secrets", "get-acl", "--scope", scope, "--principal", "researchers", "--output", "JSON")
    eq(acl, {"principal": "researchers", "permission": "READ"}, "get-acl")
    acls = L.cli_json("secrets", "list-acls", "--scope", scope, "--output", "JSON")
    eq(sorted((a["principal"], a["permission"]) for a in acls["items"]),
       [(L.seed.admin, "MANAGE"), ("researchers", "READ")], "list-acls")
    L.cli("secrets", "delete-acl", "--scope", scope, "--principal", "researchers")
    L.cli("secrets", "delete", "--scope", scope, "--key", "k1")
    keys = L.cli_json("secrets", "list", "--scope", scope, "--output", "JSON")
    eq([s["key"] for s in keys["secrets"]], ["k2"], "after delete")
    L.cli("secrets", "delete-scope", "--scope", scope)
    scopes = L.cli_json("secrets", "list-scopes", "--output", "JSON")
    ok(scope not in [s["name"] for s in scopes["scopes"]], "deleted scope still listed")


# ---- groups (2.0) and SCIM ---------------------------------------------------------------------

@case("groups (2.0): create, add-member, list-members, list-parents, remove-member, delete")
def groups_20(ctx):
    g, inner = f"legacy-{L.run_id}", f"legacy-inner-{L.run_id}"
    eq(L.cli_json("groups", "create", "--group-name", g), {"group_name": g}, "create")
    L.cli("groups", "create", "--group-name", inner)
    ok(g in L.cli_json("groups", "list")["group_names"], "listed")
    user = "lena.fischer@sciencehub.example"
    L.cli("groups", "add-member", "--parent-name", g, "--user-name", user)
    L.cli("groups", "add-member", "--parent-name", g, "--group-name", inner)
    members = L.cli_json("groups", "list-members", "--group-name", g)["members"]
    eq(members, [{"user_name": user}, {"group_name": inner}], "members")
    parents = L.cli_json("groups", "list-parents", "--user-name", user)["group_names"]
    want = sorted(x["displayName"] for x in L.seed.principals["groups"]
                  if any(m["value"] == L.seed.user(user)["id"] for m in x.get("members", [])))
    eq(sorted(parents), sorted(want + [g]), f"parents of {user}")
    eq(L.cli_json("groups", "list-parents", "--group-name", inner)["group_names"], [g], "parents of the inner group")
    err = L.cli("groups", "create", "--group-name", g, fail=True)
    ok("RESOURCE_ALREADY_EXISTS" in err, err[-300:])
    err = L.cli("groups", "list-members", "--group-name", "no-such-group", fail=True)
    ok("RESOURCE_DOES_NOT_EXIST" in err, err[-300:])
    if L.user_token:
        # (The CLI words every 403 as "Authorization failed"; the client shows the code.)
        http_error(lambda: GroupsService(L.client(token=L.user_token)).create_group(g + "-x"),
                   403, "PERMISSION_DENIED")
    L.cli("groups", "remove-member", "--parent-name", g, "--user-name", user)
    eq(L.cli_json("groups", "list-members", "--group-name", g)["members"], [{"group_name": inner}], "after remove")
    GroupsService(L.client()).remove_group(inner)
    L.cli("groups", "delete", "--group-name", g)
    names = L.cli_json("groups", "list")["group_names"]
    ok(g not in names and inner not in names, f"deleted groups listed: {names}")


def scim(method: str, path: str, body=None, token=None):
    s = requests.Session()
    s.proxies = {"http": L.host}
    r = s.request(method, f"http://localhost/api/2.0/preview/scim/v2{path}",
                  headers={"Authorization": f"Bearer {token or L.token}",
                           "Content-Type": "application/scim+json"},
                  data=json.dumps(body) if body is not None else None, timeout=30)
    return r.status_code, (r.json() if r.content else None)


@case("SCIM: members carry $ref; members sent without $ref are accepted (create, PATCH add/remove)")
def scim_groups(ctx):
    status, groups = scim("GET", "/Groups")
    eq(status, 200, "list groups")
    admins = next(g for g in groups["Resources"] if g["displayName"] == "admins")
    for m in admins["members"]:
        ok(m["$ref"] in (f"Users/{m['value']}", f"Groups/{m['value']}", f"ServicePrincipals/{m['value']}"),
           f"member $ref: {m}")
    status, user = scim("GET", f"/Users/{L.seed.user(L.seed.admin)['id']}")
    ok(all(g["$ref"] == f"Groups/{g['value']}" for g in user["groups"]), f"user's groups: {user['groups']}")
    lena = L.seed.user("lena.fischer@sciencehub.example")["id"]
    tomas = L.seed.user("tomas.nguyen@sciencehub.example")["id"]
    status, g = scim("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                         "displayName": f"scim-{L.run_id}", "members": [{"value": lena}]})
    eq(status, 201, f"create: {g}")
    eq([(m["value"], m["$ref"]) for m in g["members"]], [(lena, f"Users/{lena}")], "members of the new group")
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "add", "path": "members", "value": [{"value": tomas}]}]}
    status, _ = scim("PATCH", f"/Groups/{g['id']}", patch)
    ok(status in (200, 204), f"patch add: {status}")
    _, got = scim("GET", f"/Groups/{g['id']}")
    eq(sorted(m["value"] for m in got["members"]), sorted([lena, tomas]), "after add")
    status, _ = scim("PATCH", f"/Groups/{g['id']}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": f'members[value eq "{lena}"]'}]})
    _, got = scim("GET", f"/Groups/{g['id']}")
    eq([m["value"] for m in got["members"]], [tomas], "after remove")
    eq(L.cli_json("groups", "list-members", "--group-name", f"scim-{L.run_id}")["members"],
       [{"user_name": "tomas.nguyen@sciencehub.example"}], "the 2.0 API sees the SCIM change")
    status, err = scim("PATCH", f"/Groups/{g['id']}", {"Operations": [
        {"op": "add", "path": "members", "value": [{"value": "999999999"}]}]})
    eq(status, 404, f"unknown member: {err}")
    status, _ = scim("DELETE", f"/Groups/{g['id']}")
    eq(status, 204, "delete")
    status, _ = scim("GET", f"/Groups/{g['id']}")
    eq(status, 404, "deleted group")


# ---- permissions ------------------------------------------------------------------------------

@case("preview/permissions: jobs as under /permissions; clusters, pools and policies supported")
def permissions(ctx):
    c = L.client()
    job_id = 1022384759102791
    old = c.perform_query("GET", f"/preview/permissions/jobs/{job_id}")
    new = c.perform_query("GET", f"/permissions/jobs/{job_id}")
    eq(old, new, "the preview prefix serves the same ACL")
    cid = "0611-083245-krill42a"
    acl = c.perform_query("GET", f"/preview/permissions/clusters/{cid}")
    eq((acl["object_id"], acl["object_type"]), (f"/clusters/{cid}", "cluster"), "cluster ACL")
    ok(any(a.get("group_name") == "admins" for a in acl["access_control_list"]), "admins inherit")
    after = c.perform_query("PATCH", f"/preview/permissions/clusters/{cid}", data={"access_control_list": [
        {"group_name": "researchers", "permission_level": "CAN_RESTART"}]})
    ok({"group_name": "researchers", "all_permissions": [{"permission_level": "CAN_RESTART", "inherited": False}]}
       in [{k: v for k, v in a.items() if k != "display_name"} for a in after["access_control_list"]],
       f"after PATCH: {after}")
    levels = c.perform_query("GET", f"/preview/permissions/clusters/{cid}/permissionLevels")
    eq([l["permission_level"] for l in levels["permission_levels"]],
       ["CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"], "cluster levels")
    pool = L.seed.compute["instance_pools"][0]["instance_pool_id"]
    put = c.perform_query("PUT", f"/permissions/instance-pools/{pool}", data={"access_control_list": [
        {"user_name": "lena.fischer@sciencehub.example", "permission_level": "CAN_ATTACH_TO"}]})
    eq(put["object_type"], "instance-pool", "pool ACL")
    policy = L.seed.compute["policies"][0]["policy_id"]
    put = c.perform_query("PUT", f"/preview/permissions/cluster-policies/{policy}", data={"access_control_list": [
        {"group_name": "researchers", "permission_level": "CAN_USE"}]})
    eq(put["object_type"], "cluster-policy", "policy ACL")
    http_error(lambda: c.perform_query("PATCH", f"/permissions/cluster-policies/{policy}", data={
        "access_control_list": [{"group_name": "researchers", "permission_level": "CAN_MANAGE"}]}),
        400, "INVALID_PARAMETER_VALUE")
    http_error(lambda: c.perform_query("GET", "/preview/permissions/clusters/0000-000000-nothere0"),
               404, "RESOURCE_DOES_NOT_EXIST")
    if L.user_token:
        # CAN_ATTACH_TO lets the user read the pool's ACL, not change it.
        u = L.client(token=L.user_token)
        u.perform_query("GET", f"/permissions/instance-pools/{pool}")
        http_error(lambda: u.perform_query("PUT", f"/permissions/instance-pools/{pool}",
                                           data={"access_control_list": []}), 403, "PERMISSION_DENIED")


# ---- tokens and instance profiles --------------------------------------------------------------

@case("tokens create → the new token authenticates; list shows it without its value; revoke ends it")
def tokens(ctx):
    made = L.cli_json("tokens", "create", "--comment", f"legacy {L.run_id}", "--lifetime-seconds", "3600")
    value, info = made["token_value"], made["token_info"]
    ok(value.startswith("dapi") and len(value) > 20, "token value")
    eq(info["comment"], f"legacy {L.run_id}", "comment")
    eq(info["expiry_time"] - info["creation_time"], 3600 * 1000, "lifetime")
    listed = L.cli_json("tokens", "list")["token_infos"]
    ok(info in listed, f"new token not listed: {listed}")
    ok(value not in json.dumps(listed), "token/list shows a token's value")
    # The new token is a credential like any other: the CLI works with it.
    ok("etl" in L.cli("workspace", "ls", "/Shared", token=value).split(), "listing with the new token")
    eq(TokenService(L.client(token=value)).list_tokens()["token_infos"], listed, "its owner's tokens")
    L.cli("tokens", "revoke", "--token-id", info["token_id"])
    err = L.cli("workspace", "ls", "/Shared", token=value, fail=True)
    ok("403" in err or "Authorization failed" in err, err[-300:])
    ok(info["token_id"] not in json.dumps(L.cli_json("tokens", "list")), "revoked token listed")
    http_error(lambda: TokenService(L.client()).revoke_token(info["token_id"]), 404, "RESOURCE_DOES_NOT_EXIST")


@case("instance-profiles add, list, remove")
def instance_profiles(ctx):
    c = L.client()
    arn = f"arn:aws:iam::123456789012:instance-profile/legacy-{L.run_id}"
    eq(c.perform_query("GET", "/instance-profiles/list").get("instance_profiles", []), [], "none at first")
    c.perform_query("POST", "/instance-profiles/add", data={"instance_profile_arn": arn})
    eq(c.perform_query("GET", "/instance-profiles/list")["instance_profiles"],
       [{"instance_profile_arn": arn, "is_meta_instance_profile": False}], "listed")
    http_error(lambda: c.perform_query("POST", "/instance-profiles/add", data={"instance_profile_arn": arn}),
               400, "RESOURCE_ALREADY_EXISTS")
    http_error(lambda: c.perform_query("POST", "/instance-profiles/add", data={"instance_profile_arn": "nope"}),
               400, "INVALID_PARAMETER_VALUE")
    c.perform_query("POST", "/instance-profiles/remove", data={"instance_profile_arn": arn})
    eq(c.perform_query("GET", "/instance-profiles/list"), {}, "after remove")


def main(argv=None) -> int:
    global L
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--seed", default=str(HERE.parent.parent / "fixtures" / "workspaces" / "poc"))
    ap.add_argument("--cli", default=str(pathlib.Path(sys.executable).parent / "databricks"),
                    help="the legacy `databricks` command (default: next to this Python)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    token = os.environ.get("CONFORMANCE_TOKEN")
    if not token:
        ap.error("set CONFORMANCE_TOKEN to an admin token of the emulator")
    if not pathlib.Path(a.cli).exists():
        ap.error(f"{a.cli} does not exist; install databricks-cli==0.18.0 (scripts/setup-test-deps)")
    seed = seedmod.load(pathlib.Path(a.seed))
    user_token = next((t["token"] for t in seed.tokens.get("tokens", []) if t["user_name"] != seed.admin), None)
    L = Legacy(a.host, token, user_token, a.cli, seed)
    # Cases defined in a script run as __main__ are this suite's family.
    harness.CASES[:] = [("legacy", n, f) for _, n, f in harness.CASES]
    try:
        ctx = harness.Ctx(host=L.host, token=token, w=None, seed=seed, run_id=L.run_id)
        results = harness.run_cases(ctx, verbose=a.verbose)
    finally:
        shutil.rmtree(L.tmp, ignore_errors=True)
    passed = sum(r.outcome == "pass" for r in results)
    failed = sum(r.outcome == "fail" for r in results)
    if failed:
        print("\nfailed cases:")
        for r in results:
            if r.outcome == "fail":
                print(f"  {r.family}: {r.name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
