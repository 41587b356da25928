"""The emulator's injected faults, as the SDK meets them: throttling (429 + Retry-After, retried
by the SDK), server errors (500 not retried, 503 retried) and the statistics that count them.
Runs last: it changes the emulator's fault settings and restores the defaults."""
from __future__ import annotations

import time

import requests
from databricks.sdk.errors import InternalError

from harness import Ctx, case, eq, ok

NO_FAULTS = {"latency_ms": 0, "jitter_ms": 0, "rate_limits": {}, "limits": "none", "error_rate": 0.0,
             "error_statuses": [500, 503], "drop_rate": 0.0, "drop_after_apply": False, "families": [], "seed": 0,
             "unserved": []}


def control(ctx: Ctx, method: str, path: str, body=None):
    r = requests.request(method, f"{ctx.host}{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {ctx.token}"})
    r.raise_for_status()
    return r.json() if r.content else {}


def set_faults(ctx: Ctx, **kw):
    control(ctx, "POST", "/emulator/faults", {**NO_FAULTS, **kw})


@case("throttling: 429 carries Retry-After and REQUEST_LIMIT_EXCEEDED; the SDK waits and succeeds")
def throttling(ctx: Ctx):
    try:
        set_faults(ctx, rate_limits={"workspace": 2.0})
        before = control(ctx, "GET", "/emulator/stats")["throttled"]
        seen = None
        for _ in range(10):  # a raw burst: the bucket holds one second of requests
            r = requests.get(f"{ctx.host}/api/2.0/workspace/get-status", params={"path": "/Shared"},
                             headers={"Authorization": f"Bearer {ctx.token}"}, timeout=30)
            if r.status_code == 429:
                seen = r
                break
        ok(seen is not None, "no 429 in a burst of 10 over a 2 rps limit")
        ok(seen.headers.get("Retry-After", "").isdigit(), f"Retry-After {seen.headers.get('Retry-After')!r}")
        eq(seen.json().get("error_code"), "REQUEST_LIMIT_EXCEEDED", "error_code of a 429")
        started = time.monotonic()
        for _ in range(6):
            eq(ctx.w.workspace.get_status("/Shared").path, "/Shared", "get-status under throttling")
        ok(time.monotonic() - started < 12, "the SDK took too long under a 2 rps limit")
        ok(control(ctx, "GET", "/emulator/stats")["throttled"] > before, "throttled requests not counted")
    finally:
        set_faults(ctx)


@case("published limits: workspace export and import, permission reads and writes have buckets of their own")
def published_limits(ctx: Ctx):
    try:
        # The profile, with import narrowed to 2/s so that a short burst meets it.
        set_faults(ctx, limits="published", rate_limits={"workspace.import": 2.0})
        stats = control(ctx, "GET", "/emulator/stats")
        for cls, rps in (("workspace.export", 60), ("workspace.import", 2), ("workspace.read", 60),
                         ("permissions.read", 100), ("permissions.write", 30), ("jobs.create", 20),
                         ("dbfs", 30), ("mlflow.search", 7)):
            eq(stats["rate_limits"].get(cls), rps, f"limit of {cls}")
        control(ctx, "POST", "/emulator/stats/reset")
        headers = {"Authorization": f"Bearer {ctx.token}"}
        codes = [requests.post(f"{ctx.host}/api/2.0/workspace/mkdirs", json={"path": "/Shared"}, headers=headers,
                               timeout=30).status_code for _ in range(6)]
        ok(429 in codes, f"no 429 in a burst of 6 mkdirs over a 2 rps import limit: {codes}")
        # Export's bucket is another: the same burst of exports all pass.
        nb = next(e for e in ctx.seed.under("/Shared/") if e.kind == "NOTEBOOK")
        codes = [requests.get(f"{ctx.host}/api/2.0/workspace/export", params={"path": nb.path}, headers=headers,
                              timeout=30).status_code for _ in range(6)]
        eq(codes, [200] * 6, "exports under the import limit")
        # The SDK waits out the 429s.
        ctx.w.workspace.mkdirs("/Shared")
        classes = control(ctx, "GET", "/emulator/stats")["classes"]
        ok(classes["workspace.import"]["throttled"] > 0, f"import 429s not counted: {classes}")
        eq(classes["workspace.export"], {"requests": 6, "throttled": 0}, "export class counts")
    finally:
        set_faults(ctx)


@case("server errors: an injected 500 raises InternalError at once; 503 is retried")
def server_errors(ctx: Ctx):
    try:
        set_faults(ctx, error_rate=1.0, error_statuses=[500], families=["secrets"])
        started = time.monotonic()
        try:
            list(ctx.w.secrets.list_scopes())
            raise AssertionError("an injected 500 was not raised")
        except InternalError:
            pass
        ok(time.monotonic() - started < 5, "a 500 was retried")
        # Half the requests fail with 503: the SDK retries each until it succeeds.
        set_faults(ctx, error_rate=0.5, error_statuses=[503], families=["secrets"], seed=7)
        for _ in range(3):
            eq(sorted(s.name for s in ctx.w.secrets.list_scopes()),
               sorted(s["name"] for s in ctx.seed.secrets["scopes"]), "scopes under 503s")
        ok(control(ctx, "GET", "/emulator/stats")["injected_errors"] > 0, "injected errors not counted")
    finally:
        set_faults(ctx)
    eq(control(ctx, "GET", "/emulator/faults"), NO_FAULTS, "faults restored")
