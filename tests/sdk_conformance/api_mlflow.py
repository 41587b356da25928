"""MLflow model registry: models, versions, tags, stages, download URI, artifacts (listing,
signed download, DBFS copy), create → read → update → delete, and errors; no aliases in the
workspace registry. MLflow tracking: experiments, runs, params, metrics, tags, artifacts
through the Files API and signed URLs."""
from __future__ import annotations

import base64
import io
import time

import requests
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service.ml import Metric, ModelTag, ModelVersionTag, Param, RunTag, UpdateRunStatus

from harness import Ctx, by, case, eq, ok, raises


def tags(ts) -> dict:
    return {t.key: t.value for t in ts or []}


def seed_tags(ts) -> dict:
    return {t["key"]: t["value"] for t in ts or []}


def artifacts(ctx: Ctx, name: str, version: str, path: str | None = None) -> dict:
    q = {"name": name, "version": version}
    if path:
        q["path"] = path
    out, token = {}, None
    while True:
        if token:
            q["page_token"] = token
        r = ctx.w.api_client.do("GET", "/api/2.0/mlflow/model-versions/list-artifacts", query=q)
        for f in r.get("files", []):
            out[f["path"]] = f
        token = r.get("next_page_token")
        if not token:
            return out


@case("models: list and search return the seed models field by field")
def list_models(ctx: Ctx):
    got = by(ctx.w.model_registry.list_models(max_results=1), lambda m: m.name)
    eq(sorted(got), sorted(ctx.seed.models), "model names (paged by 1)")
    for name, m in ctx.seed.models.items():
        g = got[name]
        eq((g.description, g.user_id, g.creation_timestamp, g.last_updated_timestamp, tags(g.tags)),
           (m["description"], m["user_id"], m["creation_timestamp"], m["last_updated_timestamp"], seed_tags(m["tags"])),
           f"model {name}")
        latest = {v.current_stage: v.version for v in g.latest_versions or []}
        want = {}
        for v in sorted(m["_versions"].values(), key=lambda v: int(v["version"])):
            want[v["current_stage"]] = v["version"]
        eq(latest, want, f"{name} latest_versions per stage")
    first = next(iter(ctx.seed.models))
    eq([m.name for m in ctx.w.model_registry.search_models(filter=f"name LIKE '{first[:5]}%'")], [first],
       "search_models by name prefix")


@case("models: Databricks get (id, versions), OSS get")
def get_model(ctx: Ctx):
    for name, m in ctx.seed.models.items():
        g = ctx.w.model_registry.get_model(name).registered_model_databricks
        eq((g.id, g.name, g.description, tags(g.tags)), (m["id"], name, m["description"], seed_tags(m["tags"])),
           f"databricks get {name}")
        oss = ctx.w.api_client.do("GET", "/api/2.0/mlflow/registered-models/get", query={"name": name})
        eq(oss["registered_model"]["name"], name, f"OSS get {name}")
    raises(ResourceDoesNotExist, lambda: ctx.w.model_registry.get_model("no-such-model"))


@case("versions: get, search, latest by stage, download URI, field by field")
def versions(ctx: Ctx):
    for name, m in ctx.seed.models.items():
        found = by(ctx.w.model_registry.search_model_versions(filter=f"name='{name}'"), lambda v: v.version)
        eq(sorted(found), sorted(m["_versions"]), f"{name} versions")
        for n, v in m["_versions"].items():
            g = ctx.w.model_registry.get_model_version(name, n).model_version
            eq((g.name, g.version, g.current_stage, g.status.value, g.source, g.run_id, g.description, g.user_id,
                g.creation_timestamp, tags(g.tags)),
               (name, n, v["current_stage"], v["status"], v["source"], v["run_id"], v["description"], v["user_id"],
                v["creation_timestamp"], seed_tags(v["tags"])), f"{name} v{n}")
            eq(found[n].current_stage, v["current_stage"], f"{name} v{n} stage in search")
            uri = ctx.w.model_registry.get_model_version_download_uri(name, n).artifact_uri
            eq(uri, v["source"], f"{name} v{n} download uri")
        prod = [v["version"] for v in m["_versions"].values() if v["current_stage"] == "Production"]
        eq([v.version for v in ctx.w.model_registry.get_latest_versions(name, stages=["Production"])], prod[-1:],
           f"{name} latest Production")
    name = next(iter(ctx.seed.models))
    raises(ResourceDoesNotExist, lambda: ctx.w.model_registry.get_model_version(name, "999"))


@case("artifacts: listing (with a subfolder), signed download without auth, the DBFS copy under source")
def artifact_files(ctx: Ctx):
    for name, m in ctx.seed.models.items():
        for n, v in m["_versions"].items():
            want = v["_artifacts"]
            top = artifacts(ctx, name, n)
            eq(sorted(top), sorted({p.split("/")[0] for p in want}), f"{name} v{n} artifact listing")
            for p, f in top.items():
                if f.get("is_dir"):
                    sub = artifacts(ctx, name, n, p)
                    eq(sorted(sub), sorted(x for x in want if x.startswith(p + "/")), f"{name} v{n} listing of {p}")
                else:
                    eq(f.get("file_size"), len(want[p]), f"{name} v{n} {p} file_size")
            for p, data in want.items():
                s = ctx.w.api_client.do("GET", "/api/2.0/mlflow/model-versions/get-signed-download-uri",
                                        query={"name": name, "version": n, "path": p})
                hdrs = {h["name"]: h["value"] for h in s.get("headers", [])}
                r = requests.get(s["signed_uri"], headers=hdrs, timeout=30)
                eq((r.status_code, r.content), (200, data), f"signed download of {name} v{n} {p}")
                src = v["source"].removeprefix("dbfs:")
                rd = ctx.w.dbfs.read(f"{src}/{p}")
                eq(base64.b64decode(rd.data), data, f"DBFS copy of {name} v{n} {p}")


@case("create model and versions; tags; stage transitions with archive_existing_versions; no aliases")
def create_cycle(ctx: Ctx):
    name = f"conformance-{ctx.run_id}"
    r = ctx.w.model_registry.create_model(name, description="made by the SDK suite",
                                          tags=[ModelTag(key="suite", value="sdk")])
    eq((r.registered_model.name, r.registered_model.description, tags(r.registered_model.tags)),
       (name, "made by the SDK suite", {"suite": "sdk"}), "create_model response")
    raises(ResourceAlreadyExists, lambda: ctx.w.model_registry.create_model(name))
    raises(InvalidParameterValue, lambda: ctx.w.model_registry.create_model(""))
    made = []
    for i in (1, 2):
        # The registry copies the artifacts from `source` at registration, so they must exist.
        ctx.w.dbfs.put(f"/tmp/sdkconf-{ctx.run_id}/model-{i}/MLmodel", overwrite=True,
                       contents=base64.b64encode(f"artifact_path: model\nrun: {i}\n".encode()).decode())
        v = ctx.w.model_registry.create_model_version(
            name, f"dbfs:/tmp/sdkconf-{ctx.run_id}/model-{i}", run_id=f"{i:032x}", description=f"v{i}",
            tags=[ModelVersionTag(key="i", value=str(i))]).model_version
        eq((v.name, v.version, v.source, v.run_id), (name, str(i), f"dbfs:/tmp/sdkconf-{ctx.run_id}/model-{i}",
                                                      f"{i:032x}"), f"create_model_version {i}")
        made.append(v.version)
    for _ in range(50):
        if ctx.w.model_registry.get_model_version(name, "2").model_version.status.value == "READY":
            break
        time.sleep(0.1)
    eq(ctx.w.model_registry.get_model_version(name, "2").model_version.status.value, "READY", "status")
    eq(sorted(artifacts(ctx, name, "2")), ["MLmodel"], "artifacts copied from the source")
    bad = ctx.w.model_registry.create_model_version(name, f"dbfs:/tmp/sdkconf-{ctx.run_id}/nothing-here").model_version
    for _ in range(50):
        st = ctx.w.model_registry.get_model_version(name, bad.version).model_version
        if st.status.value != "PENDING_REGISTRATION":
            break
        time.sleep(0.1)
    eq(st.status.value, "FAILED_REGISTRATION", "a version whose source does not exist")
    ok(st.status_message, "no status_message on a failed registration")
    ctx.w.model_registry.delete_model_version(name, bad.version)
    t = ctx.w.model_registry.transition_stage(name, "1", "Production", False).model_version_databricks
    eq((t.version, t.current_stage), ("1", "Production"), "transition v1 → Production")
    ctx.w.model_registry.transition_stage(name, "2", "Production", True, comment="promote v2")
    eq(ctx.w.model_registry.get_model_version(name, "1").model_version.current_stage, "Archived",
       "v1 archived by archive_existing_versions")
    eq(ctx.w.model_registry.get_model_version(name, "2").model_version.current_stage, "Production", "v2 stage")
    raises(InvalidParameterValue, lambda: ctx.w.model_registry.transition_stage(name, "2", "Shipping", False))
    ctx.w.model_registry.set_model_tag(name, "owner", "ada")
    ctx.w.model_registry.set_model_version_tag(name, "2", "validated", "yes")
    eq(tags(ctx.w.model_registry.get_model(name).registered_model_databricks.tags), {"suite": "sdk", "owner": "ada"},
       "model tags")
    eq(tags(ctx.w.model_registry.get_model_version(name, "2").model_version.tags), {"i": "2", "validated": "yes"},
       "version tags")
    ctx.w.model_registry.delete_model_version_tag(name, "2", "validated")
    ctx.w.model_registry.delete_model_tag(name, "owner")
    eq(tags(ctx.w.model_registry.get_model_version(name, "2").model_version.tags), {"i": "2"}, "after tag delete")
    ctx.w.model_registry.update_model(name, description="updated")
    ctx.w.model_registry.update_model_version(name, "1", description="old")
    eq(ctx.w.model_registry.get_model(name).registered_model_databricks.description, "updated", "model description")
    eq(ctx.w.model_registry.get_model_version(name, "1").model_version.description, "old", "version description")
    # The workspace registry has no aliases: real workspaces serve no alias call there.
    for method, kw in [("POST", {"body": {"name": name, "alias": "champion", "version": "2"}}),
                       ("GET", {"query": {"name": name, "alias": "champion"}}),
                       ("DELETE", {"query": {"name": name, "alias": "champion"}})]:
        raises(NotFound, lambda: ctx.w.api_client.do(method, "/api/2.0/mlflow/registered-models/alias", **kw),
               code="ENDPOINT_NOT_FOUND")
    raises(ResourceDoesNotExist, lambda: ctx.w.model_registry.create_model_version("no-such-model", "dbfs:/x"))
    ctx.state["model"] = name


@case("model permissions by id; delete version and model")
def delete_cycle(ctx: Ctx):
    name = ctx.state["model"]
    mid = ctx.w.model_registry.get_model(name).registered_model_databricks.id
    p = ctx.w.model_registry.get_permissions(mid)
    eq(p.object_id, f"/registered-models/{mid}", "permissions object_id")
    ctx.w.model_registry.delete_model_version(name, "1")
    raises(ResourceDoesNotExist, lambda: ctx.w.model_registry.get_model_version(name, "1"))
    eq([v.version for v in ctx.w.model_registry.search_model_versions(filter=f"name='{name}'")], ["2"], "after delete")
    ctx.w.model_registry.delete_model(name)
    raises(ResourceDoesNotExist, lambda: ctx.w.model_registry.get_model(name))
    eq(sorted(m.name for m in ctx.w.model_registry.list_models()), sorted(ctx.seed.models), "only seed models remain")


@case("tracking: experiment, run, params, metrics, tags, batch, history, search, artifacts")
def tracking(ctx: Ctx):
    e = ctx.w.experiments
    path = f"/Users/sdkconf/exp-{ctx.run_id}"
    eid = e.create_experiment(path).experiment_id
    eq(e.get_by_name(path).experiment.experiment_id, eid, "get_by_name")
    eq(e.get_experiment(eid).experiment.name, path, "get_experiment")
    ok(eid in [x.experiment_id for x in e.search_experiments(filter=f"name = '{path}'")], "search_experiments")
    raises(ResourceAlreadyExists, lambda: e.create_experiment(path))
    raises(InvalidParameterValue, lambda: e.create_experiment("relative-name"))
    run = e.create_run(experiment_id=eid, run_name="conformance").run.info
    eq(run.status.value, "RUNNING", "a new run runs")
    e.log_param("alpha", "0.5", run_id=run.run_id)
    raises(InvalidParameterValue, lambda: e.log_param("alpha", "0.7", run_id=run.run_id))
    e.log_metric("loss", 0.9, 1000, run_id=run.run_id, step=0)
    e.log_metric("loss", 0.4, 2000, run_id=run.run_id, step=1)
    e.set_tag("team", "ocean", run_id=run.run_id)
    e.log_batch(run_id=run.run_id, params=[Param(key="beta", value="2")], tags=[RunTag(key="k", value="v")],
                metrics=[Metric(key="acc", value=0.75, timestamp=3000, step=0)])
    e.update_run(run_id=run.run_id, status=UpdateRunStatus.FINISHED, end_time=4000)
    got = e.get_run(run.run_id).run
    eq(got.info.status.value, "FINISHED", "status after update")
    eq({p.key: p.value for p in got.data.params}, {"alpha": "0.5", "beta": "2"}, "params")
    eq({m.key: m.value for m in got.data.metrics}, {"loss": 0.4, "acc": 0.75}, "latest metrics")
    eq({t.key: t.value for t in got.data.tags if not t.key.startswith("mlflow.")}, {"team": "ocean", "k": "v"}, "tags")
    eq([m.value for m in e.get_history("loss", run_id=run.run_id)], [0.9, 0.4], "metric history")
    found = list(e.search_runs(experiment_ids=[eid], filter="params.alpha = '0.5' and metrics.loss < 0.5"))
    eq([r.info.run_id for r in found], [run.run_id], "search_runs")
    eq(list(e.search_runs(experiment_ids=[eid], filter="metrics.loss > 0.5")), [], "search_runs, no match")
    raises(ResourceDoesNotExist, lambda: e.get_run("0" * 32))
    # Artifacts: written through the Files API path MLflow uses, read back by the credential path.
    root = f"/WorkspaceInternal/Mlflow/Artifacts/{eid}/Runs/{run.run_id}/artifacts"
    ctx.w.files.upload(f"{root}/notes/a.txt", io.BytesIO(b"hello"), overwrite=True)
    listed = ctx.w.api_client.do("GET", "/api/2.0/mlflow/artifacts/list",
                                 query={"run_id": run.run_id, "path": "notes"})
    eq([(f["path"], f["file_size"]) for f in listed["files"]], [("notes/a.txt", 5)], "artifacts/list")
    cred = ctx.w.api_client.do("POST", "/api/2.0/mlflow/artifacts/credentials-for-read",
                               body={"run_id": run.run_id, "path": ["notes/a.txt"]})["credential_infos"][0]
    eq(requests.get(cred["signed_uri"], timeout=30).content, b"hello", "signed read")
    eq(requests.put(cred["signed_uri"], data=b"x", timeout=30).status_code, 403, "a read URL cannot write")
    w = ctx.w.api_client.do("POST", "/api/2.0/mlflow/artifacts/credentials-for-write",
                            body={"run_id": run.run_id, "path": ["b.bin"]})["credential_infos"][0]
    eq(requests.put(w["signed_uri"], data=b"\x00\x01", timeout=30).status_code, 200, "signed write")
    eq(ctx.w.files.download(f"{root}/b.bin").contents.read(), b"\x00\x01", "written file through the Files API")
