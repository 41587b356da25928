"""Checks that an MLflow server holds the models of an emulator seed fixture exactly.

Usage: check_fixture.py TRACKING_URI MODELS_DIR WORK_DIR

MODELS_DIR is a seed's ``models/`` folder (spec/emulator-seed.md): for each
``<name>/model.json`` the server's model must have its description, tags and aliases; for
each ``versions/<n>/version.json`` the server's version n its description, tags and stage,
and its artifacts, downloaded with the MLflow client, the bytes of ``versions/<n>/artifacts``.

Prints a JSON report on stdout; exits 1 when anything differs.
"""

import hashlib
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def kv(items):
    return {t["key"]: t.get("value", "") for t in items or []}


def main():
    uri, models_dir, work = sys.argv[1], sys.argv[2], sys.argv[3]
    c = MlflowClient(uri)
    problems, versions = [], 0
    for folder in sorted(os.listdir(models_dir)):
        with open(os.path.join(models_dir, folder, "model.json")) as f:
            want = json.load(f)
        name = want["name"]
        try:
            got = c.get_registered_model(name)
        except Exception as e:  # noqa: BLE001
            problems.append(f"model {name}: missing ({e})")
            continue
        if (got.description or "") != (want.get("description") or ""):
            problems.append(f"model {name}: description {got.description!r}")
        if dict(got.tags) != kv(want.get("tags")):
            problems.append(f"model {name}: tags {dict(got.tags)}")
        if dict(got.aliases) != {a["alias"]: a["version"] for a in want.get("aliases", [])}:
            problems.append(f"model {name}: aliases {dict(got.aliases)}")
        vdir = os.path.join(models_dir, folder, "versions")
        for n in sorted(os.listdir(vdir), key=int):
            with open(os.path.join(vdir, n, "version.json")) as f:
                wv = json.load(f)
            who = f"version {name}/{n}"
            try:
                gv = c.get_model_version(name, n)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{who}: missing ({e})")
                continue
            versions += 1
            if (gv.description or "") != (wv.get("description") or ""):
                problems.append(f"{who}: description {gv.description!r}")
            if dict(gv.tags) != kv(wv.get("tags")):
                problems.append(f"{who}: tags {dict(gv.tags)}")
            if gv.current_stage != wv.get("current_stage", "None"):
                problems.append(f"{who}: stage {gv.current_stage}")
            dst = os.path.join(work, "fixture-check", folder, n)
            os.makedirs(dst, exist_ok=True)
            got_files = tree(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=c.get_model_version_download_uri(name, n),
                    dst_path=dst,
                    tracking_uri=uri,
                )
            )
            if got_files != tree(os.path.join(vdir, n, "artifacts")):
                problems.append(f"{who}: artifacts differ ({sorted(got_files)})")
    print(json.dumps({"ok": not problems, "problems": problems, "versions": versions}))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
