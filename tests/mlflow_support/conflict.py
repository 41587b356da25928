"""Replaces, in an MLflow server, the registered model NAME by one whose content differs from
a bundle's model of that name: one version logged from an unrelated run.

Usage: conflict.py TRACKING_URI NAME WORK_DIR
"""

import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


def main():
    uri, name, work = sys.argv[1], sys.argv[2], sys.argv[3]
    mlflow.set_tracking_uri(uri)
    c = MlflowClient(uri)
    mlflow.set_experiment("someone-else")
    os.makedirs(work, exist_ok=True)
    p = os.path.join(work, "notes.txt")
    with open(p, "w") as f:
        f.write("a different model that happens to share the name\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(p, artifact_path="other")
    try:
        c.delete_registered_model(name)
    except Exception:  # noqa: BLE001 - not there
        pass
    c.create_registered_model(name, description="not from the bundle")
    c.create_model_version(name, f"runs:/{run.info.run_id}/other", run_id=run.info.run_id)


if __name__ == "__main__":
    main()
