"""Populates an MLflow tracking server with the models the model tests move.

Usage: populate.py TRACKING_URI WORK_DIR BIG_MB

Creates, with the MLflow Python client and real logged runs:

* ``iris-classifier``: three versions. v1 and v2 are scikit-learn models logged with
  ``mlflow.sklearn.log_model`` from two runs (params, metrics, tags); v3 is registered again
  from v1's logged model, so its artifacts are byte for byte v1's. Stages Archived / Production /
  Staging, aliases ``champion`` -> 2 and ``challenger`` -> 3, model and version tags and
  descriptions.
* ``Sea-Level Forecast (ünïcode %)``: a pyfunc-free artifact bundle logged under a run
  (a generated BIG_MB MiB binary, a nested JSON file and an empty file), registered from
  ``runs:/<run>/bundle``. Its first version is deleted, so the source holds only version 2
  (the target will number it 1). Alias ``latest-good`` -> 2.

Prints a JSON summary (model names, versions, the big file's size and SHA-256) on stdout.
"""

import hashlib
import json
import os
import random
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

IRIS = "iris-classifier"
SEA = "Sea-Level Forecast (ünïcode %)"


def main():
    uri, work, big_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(work, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    c = MlflowClient(uri)
    mlflow.set_experiment("dbxport-source")
    x, y = load_iris(return_X_y=True)

    c.create_registered_model(
        IRIS,
        tags={"team": "risk", "domain": "botany"},
        description="Iris species from sepal and petal sizes.",
    )
    versions = []
    for i, cval in enumerate([0.5, 2.0], start=1):
        with mlflow.start_run(run_name=f"lr-C{cval}") as run:
            mlflow.log_params({"C": cval, "solver": "lbfgs", "max_iter": 300})
            model = LogisticRegression(C=cval, max_iter=300).fit(x, y)
            mlflow.log_metric("accuracy", float(model.score(x, y)))
            mlflow.log_metric("loss", 0.1 * i)
            mlflow.set_tags({"trainer": "populate.py", "attempt": str(i)})
            info = mlflow.sklearn.log_model(
                model, name="model", pip_requirements=["scikit-learn"]
            )
        mv = mlflow.register_model(info.model_uri, IRIS)
        c.update_model_version(IRIS, mv.version, description=f"logistic regression, C={cval}")
        c.set_model_version_tag(IRIS, mv.version, "validated", "yes" if i == 2 else "no")
        versions.append((mv, info.model_uri))
    v3 = mlflow.register_model(versions[0][1], IRIS)
    c.update_model_version(IRIS, v3.version, description="v1 registered again")
    c.set_model_version_tag(IRIS, v3.version, "origin", "copy of v1")
    c.transition_model_version_stage(IRIS, "1", "Archived")
    c.transition_model_version_stage(IRIS, "2", "Production")
    c.transition_model_version_stage(IRIS, "3", "Staging")
    c.set_registered_model_alias(IRIS, "champion", "2")
    c.set_registered_model_alias(IRIS, "challenger", "3")

    big = os.path.join(work, "bundle")
    os.makedirs(os.path.join(big, "nested", "deeper"), exist_ok=True)
    rng = random.Random(20261126)
    h = hashlib.sha256()
    with open(os.path.join(big, "weights.bin"), "wb") as f:
        for _ in range(big_mb):
            chunk = rng.randbytes(1 << 20)
            h.update(chunk)
            f.write(chunk)
    with open(os.path.join(big, "nested", "deeper", "config.json"), "w") as f:
        json.dump({"horizon_days": 30, "stations": ["Brest", "Cuxhaven"]}, f)
    open(os.path.join(big, "empty.txt"), "wb").close()
    c.create_registered_model(SEA, description="Monthly sea level, tide-gauge ensemble.")
    with mlflow.start_run(run_name="sea-level") as run:
        mlflow.log_param("window", 12)
        mlflow.log_metric("rmse_mm", 41.5)
        mlflow.log_artifacts(big, artifact_path="bundle")
    first = c.create_model_version(SEA, f"runs:/{run.info.run_id}/bundle", run_id=run.info.run_id)
    second = c.create_model_version(
        SEA,
        f"runs:/{run.info.run_id}/bundle",
        run_id=run.info.run_id,
        description="ensemble of 12 gauges",
        tags={"units": "mm"},
    )
    c.delete_model_version(SEA, first.version)
    c.set_registered_model_alias(SEA, "latest-good", second.version)
    c.set_registered_model_tag(SEA, "region", "North Sea")

    print(
        json.dumps(
            {
                "models": [IRIS, SEA],
                "versions": {IRIS: ["1", "2", "3"], SEA: [second.version]},
                "big_size": big_mb << 20,
                "big_sha256": h.hexdigest(),
            }
        )
    )


if __name__ == "__main__":
    main()
