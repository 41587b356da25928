"""Checks that a target MLflow server holds the source server's models exactly.

Usage: compare.py SOURCE_URI TARGET_URI WORK_DIR [MAPPING_JSON]

MAPPING_JSON maps "<model>/<source version>" to the target version where they differ
(default: the same number). For every registered model of the source: description, tags and
aliases (through the mapping) must match in the target; for every version: description,
tags, stage and READY status, and every artifact file downloaded from the target must have
the bytes of the same file downloaded from the source. For versions with a source run, the
target version's run must carry the source run's params.

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
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out[os.path.relpath(p, root)] = (os.path.getsize(p), h.hexdigest())
    return out


def download(client, uri, name, version, dst):
    src = client.get_model_version_download_uri(name, version)
    os.makedirs(dst, exist_ok=True)
    return mlflow.artifacts.download_artifacts(artifact_uri=src, dst_path=dst, tracking_uri=uri)


def main():
    src_uri, dst_uri, work = sys.argv[1], sys.argv[2], sys.argv[3]
    mapping = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    src, dst = MlflowClient(src_uri), MlflowClient(dst_uri)
    problems = []
    counts = {"models": 0, "versions": 0, "files": 0, "bytes": 0}
    for m in src.search_registered_models():
        name = m.name
        m = src.get_registered_model(name)
        try:
            t = dst.get_registered_model(name)
        except Exception as e:  # noqa: BLE001
            problems.append(f"model {name}: missing in the target ({e})")
            continue
        counts["models"] += 1
        if (m.description or "") != (t.description or ""):
            problems.append(f"model {name}: description {t.description!r} != {m.description!r}")
        if dict(m.tags) != dict(t.tags):
            problems.append(f"model {name}: tags {dict(t.tags)} != {dict(m.tags)}")
        want_aliases = {a: mapping.get(f"{name}/{v}", v) for a, v in m.aliases.items()}
        if want_aliases != dict(t.aliases):
            problems.append(f"model {name}: aliases {dict(t.aliases)} != {want_aliases}")
        for v in src.search_model_versions(f"name='{name}'"):
            v = src.get_model_version(name, v.version)
            tv_num = mapping.get(f"{name}/{v.version}", v.version)
            try:
                tv = dst.get_model_version(name, tv_num)
            except Exception as e:  # noqa: BLE001
                problems.append(f"version {name}/{v.version}: missing as {tv_num} ({e})")
                continue
            counts["versions"] += 1
            who = f"version {name}/{v.version} (target {tv_num})"
            for field in ("description", "current_stage"):
                a, b = getattr(v, field) or "", getattr(tv, field) or ""
                if a != b:
                    problems.append(f"{who}: {field} {b!r} != {a!r}")
            if dict(v.tags) != dict(tv.tags):
                problems.append(f"{who}: tags {dict(tv.tags)} != {dict(v.tags)}")
            if tv.status != "READY":
                problems.append(f"{who}: status {tv.status}")
            base = os.path.join(work, "cmp", f"{abs(hash(name))}-{v.version}")
            a = tree(download(src, src_uri, name, v.version, os.path.join(base, "src")))
            b = tree(download(dst, dst_uri, name, tv_num, os.path.join(base, "dst")))
            if a != b:
                problems.append(f"{who}: artifacts differ: source {sorted(a)} target {sorted(b)}")
            counts["files"] += len(a)
            counts["bytes"] += sum(s for s, _ in a.values())
            if v.run_id:
                sp = src.get_run(v.run_id).data.params
                if not tv.run_id:
                    problems.append(f"{who}: no run in the target")
                else:
                    tr = dst.get_run(tv.run_id)
                    if tr.data.params != sp:
                        problems.append(f"{who}: run params {tr.data.params} != {sp}")
                    if tr.data.tags.get("dbxport.source_run_id") != v.run_id:
                        problems.append(f"{who}: run does not name its source run")
    print(json.dumps({"ok": not problems, "problems": problems, **counts}))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
