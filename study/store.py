"""Where MLflow data lives: the default tracking URI and a fast check that a store is usable.

Kept free of Ray so the analysis side can import it cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlflow.tracking import MlflowClient


def default_tracking_uri() -> str:
    """MLflow's own `MLFLOW_TRACKING_URI` when set, else the sqlite store `./mlflow.db`.

    Used by `study.run`, `analysis.report` and the notebook when no URI is given.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_tracking_uri(uri: str) -> None:
    """Fail fast (ValueError, one line) when the tracking store cannot be reached."""
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise ValueError(f"--mlflow-uri {uri!r}: folder {folder} does not exist")
        return
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        try:
            MlflowClient(uri).search_experiments(max_results=1)
        except Exception as err:  # any transport or server error means unusable
            raise ValueError(
                f"--mlflow-uri {uri!r} is unreachable ({type(err).__name__}); "
                f"start the server or pass a sqlite:/// URI"
            ) from None
        return
    if uri.startswith("file:") or "://" not in uri:
        return
    raise ValueError(f"--mlflow-uri {uri!r}: scheme not supported (sqlite:///, http(s)://, file:)")
