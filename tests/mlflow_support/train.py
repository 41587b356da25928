"""A training script as people write it for a Databricks workspace, run unmodified against the
emulator: the MLflow client finds the workspace in DATABRICKS_HOST / DATABRICKS_TOKEN.

Usage: train.py MODEL_NAME [REGISTRY_URI]

Logs a run (a param, a metric, a tag) in the experiment /Users/x/exp, logs a scikit-learn
model with ``mlflow.sklearn.log_model`` and registers it as MODEL_NAME in the workspace model
registry (REGISTRY_URI ``databricks``, the default) or in Unity Catalog (``databricks-uc``,
MODEL_NAME ``catalog.schema.model``; the version then gets the alias ``champion``). Prints a JSON summary on its last line: the run id, the registered version, and the
fitted model's predictions for the inputs ``predict.py`` uses.
"""

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

name = sys.argv[1]
registry = sys.argv[2] if len(sys.argv) > 2 else "databricks"

mlflow.set_tracking_uri("databricks")
mlflow.set_registry_uri(registry)
mlflow.set_experiment("/Users/x/exp")

X = np.array([[1.0, 0.5], [2.0, -1.0], [3.0, 2.5], [4.0, 0.0], [5.0, 1.5]])
y = 3.0 * X[:, 0] - 2.0 * X[:, 1] + 0.25

with mlflow.start_run() as run:
    mlflow.log_param("fit_intercept", True)
    mlflow.log_metric("train_rows", len(X))
    mlflow.set_tag("team", "ocean")
    model = LinearRegression(fit_intercept=True).fit(X, y)
    mlflow.log_metric("r2", float(model.score(X, y)))
    info = mlflow.sklearn.log_model(
        model, name="model", registered_model_name=name, input_example=X[:1]
    )

if registry == "databricks-uc":
    mlflow.MlflowClient().set_registered_model_alias(
        name, "champion", info.registered_model_version
    )

probe = np.array([[0.0, 0.0], [10.0, 1.0], [-2.5, 3.0]])
print(
    json.dumps(
        {
            "run_id": run.info.run_id,
            "model_id": info.model_id,
            "version": str(info.registered_model_version),
            "predictions": [float(v) for v in model.predict(probe)],
        }
    )
)
