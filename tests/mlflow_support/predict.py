"""Loads a registered model version from a Databricks workspace (DATABRICKS_HOST /
DATABRICKS_TOKEN) with ``mlflow.pyfunc.load_model`` and predicts the inputs ``train.py`` probes.

Usage: predict.py MODEL_URI [REGISTRY_URI]   (default registry: databricks; databricks-uc
for Unity Catalog)

Prints a JSON summary on its last line: the predictions.
"""

import json
import os
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import sys  # noqa: E402

import mlflow  # noqa: E402
import numpy as np  # noqa: E402

mlflow.set_tracking_uri("databricks")
mlflow.set_registry_uri(sys.argv[2] if len(sys.argv) > 2 else "databricks")

model = mlflow.pyfunc.load_model(sys.argv[1])
probe = np.array([[0.0, 0.0], [10.0, 1.0], [-2.5, 3.0]])
print(json.dumps({"predictions": [float(v) for v in model.predict(probe)]}))
