"""Entry point for `ray submit cluster.yaml submit.py -- STUDY [options]` on the head node.

Joins the running cluster (`--address auto`) and logs to the head's MLflow server unless
told otherwise (`--mlflow-uri`, or `MLFLOW_TRACKING_URI` on the head); every other option
is `python -m study.run`'s.
"""

import os
import sys

from study.run import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--address" not in args:
        args += ["--address", "auto"]
    if "--mlflow-uri" not in args and not os.environ.get("MLFLOW_TRACKING_URI"):
        args += ["--mlflow-uri", "http://127.0.0.1:5000"]
    sys.exit(main(args))
