"""Deletes registered models from an MLflow server (all of them, or those named).

Usage: reset.py TRACKING_URI [NAME ...]
"""

import sys
import warnings

warnings.filterwarnings("ignore")

from mlflow import MlflowClient  # noqa: E402


def main():
    uri, names = sys.argv[1], sys.argv[2:]
    c = MlflowClient(uri)
    if not names:
        names = [m.name for m in c.search_registered_models()]
    for n in names:
        try:
            c.delete_registered_model(n)
        except Exception:  # noqa: BLE001 - already gone
            pass


if __name__ == "__main__":
    main()
