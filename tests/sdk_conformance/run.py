#!/usr/bin/env python3
"""Drives a dbxport emulator through every API it serves with the official `databricks-sdk`, and
checks field by field what the SDK returns, including the exception classes it raises.

    CONFORMANCE_TOKEN=TOKEN [CONFORMANCE_CLIENT_SECRET=SECRET] [CONFORMANCE_TARGET_TOKEN=TOKEN] \
    python tests/sdk_conformance/run.py --host http://127.0.0.1:PORT [--client-id ID] \
        [--user-token TOKEN] [--target-host URL] [--seed DIR] [--only FAMILY,...]

Credentials are read from the environment, never the command line.

The source emulator must be freshly started from `--seed` (default: fixtures/workspaces/poc),
whose files say what it must serve. `--target-*` names a second emulator that allows
`secrets/get` (fixtures/workspaces/empty); cases that need it are skipped without it. Exits
non-zero on any failure; the last line is `N passed, N failed[, N skipped]`.
"""
from __future__ import annotations

import argparse
import logging
import os
import pathlib
import secrets
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # run from a source tree: leave no __pycache__ behind
sys.path.insert(0, str(HERE))

# The SDK reads DATABRICKS_* variables and ~/.databrickscfg; a developer's own settings must not
# leak into a run against the emulator (two auth methods at once is a config error).
for k in list(os.environ):
    if k.startswith("DATABRICKS_") or k.startswith("ARM_"):
        del os.environ[k]
os.environ["DATABRICKS_CONFIG_FILE"] = os.devnull

from databricks.sdk import WorkspaceClient  # noqa: E402
from databricks.sdk.core import Config  # noqa: E402

import harness  # noqa: E402
import seed as seedmod  # noqa: E402

FAMILIES = ["core", "workspace", "repos", "jobs", "secrets", "permissions", "sql", "compute",
            "storage", "mlflow", "uc_models", "faults"]

# Fast failure: the SDK retries 429/503 and connection errors for up to this budget.
RETRY_TIMEOUT_SECONDS = 15
HTTP_TIMEOUT_SECONDS = 30


def make_client(host: str, **kw) -> WorkspaceClient:
    cfg = Config(host=host, retry_timeout_seconds=RETRY_TIMEOUT_SECONDS,
                 http_timeout_seconds=HTTP_TIMEOUT_SECONDS, **kw)
    return WorkspaceClient(config=cfg)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", required=True)
    # Credentials come from the environment, never the command line, where other processes
    # could read them: CONFORMANCE_TOKEN (an admin token of the source emulator),
    # CONFORMANCE_CLIENT_SECRET and CONFORMANCE_TARGET_TOKEN.
    ap.add_argument("--client-id")
    ap.add_argument("--user-token", help="an ordinary (non-admin) user's token; default: from the seed")
    ap.add_argument("--target-host")
    ap.add_argument("--seed", default=str(HERE.parent.parent / "fixtures" / "workspaces" / "poc"))
    ap.add_argument("--only", help="comma-separated families: " + ",".join(FAMILIES))
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    a.token = os.environ.get("CONFORMANCE_TOKEN")
    a.client_secret = os.environ.get("CONFORMANCE_CLIENT_SECRET")
    a.target_token = os.environ.get("CONFORMANCE_TARGET_TOKEN")
    if not a.token:
        ap.error("set CONFORMANCE_TOKEN to an admin token of the source emulator")

    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.ERROR)
    seed = seedmod.load(pathlib.Path(a.seed))
    user_token = a.user_token
    if user_token is None:
        admin = seed.admin
        user_token = next((t["token"] for t in seed.tokens.get("tokens", []) if t["user_name"] != admin), None)
    for fam in FAMILIES:
        __import__(f"api_{fam}")

    ctx = harness.Ctx(
        host=a.host.rstrip("/"), token=a.token, w=make_client(a.host, token=a.token), seed=seed,
        run_id=secrets.token_hex(4), client_id=a.client_id, client_secret=a.client_secret,
        user_token=user_token, target_host=a.target_host, target_token=a.target_token,
        make_client=make_client,
    )
    if a.target_host and a.target_token:
        ctx.target = make_client(a.target_host, token=a.target_token)
    only = [f.strip() for f in a.only.split(",")] if a.only else None
    results = harness.run_cases(ctx, only=only, verbose=a.verbose)
    passed = sum(r.outcome == "pass" for r in results)
    failed = sum(r.outcome == "fail" for r in results)
    skipped = sum(r.outcome == "skip" for r in results)
    if failed:
        print("\nfailed cases:")
        for r in results:
            if r.outcome == "fail":
                print(f"  {r.family}: {r.name}")
    tail = f", {skipped} skipped" if skipped else ""
    print(f"{passed} passed, {failed} failed{tail}")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
