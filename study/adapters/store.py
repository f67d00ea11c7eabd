"""A fast check that an MLflow store is usable, and its first write (the default URI is
`analysis.load.default_tracking_uri`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path

from mlflow.tracking import MlflowClient


def check_tracking_uri(uri: str) -> None:
    """Fail fast (ValueError, one line) when the tracking store cannot be used; writes nothing
    recorded.

    An existing sqlite file is opened read-only and must be an MLflow store (or empty). One
    left by a writer killed mid-transaction (a hot journal) has that transaction rolled back.
    """
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.parent.is_dir():
            raise ValueError(f"--mlflow-uri {uri!r}: folder {path.parent} does not exist")
        if path.exists():
            _check_sqlite_store(uri, path)
        elif not os.access(path.parent, os.W_OK | os.X_OK):
            raise ValueError(f"--mlflow-uri {uri!r}: folder {path.parent} is not writable")
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
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE

        if not MLFLOW_ALLOW_FILE_STORE.get():  # what MLflow 3's FileStore checks first
            raise ValueError(
                f"--mlflow-uri {uri!r} is a file store, which MLflow 3 refuses unless "
                "MLFLOW_ALLOW_FILE_STORE=true is set; use sqlite:///PATH instead"
            )
        path = Path(uri.removeprefix("file://").removeprefix("file:")).expanduser().absolute()
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"--mlflow-uri {uri!r}: {existing} is not a writable folder")
        return
    raise ValueError(f"--mlflow-uri {uri!r}: scheme not supported (sqlite:///, http(s)://, file:)")


# What a read-only open reports when a writer was killed mid-transaction: its journal must
# be rolled back first, which every read-write open (MLflow's included) does by itself.
_LEFT_MID_WRITE = {sqlite3.SQLITE_READONLY_ROLLBACK, sqlite3.SQLITE_READONLY_RECOVERY}


def _check_sqlite_store(uri: str, path: Path) -> None:
    try:
        try:
            tables = _table_names(path, mode="ro")
        except sqlite3.Error as err:
            if getattr(err, "sqlite_errorcode", None) not in _LEFT_MID_WRITE:
                raise
            tables = _table_names(path, mode="rw")  # rolls the killed write back, as MLflow would
    except sqlite3.Error as err:
        raise ValueError(f"--mlflow-uri {uri!r} is not an MLflow store ({err})") from None
    if tables and "experiments" not in tables:
        raise ValueError(
            f"--mlflow-uri {uri!r} is an sqlite database without MLflow's tables: "
            "give a new file or an MLflow store"
        )


def _table_names(path: Path, mode: str) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode={mode}", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master")}


def prepare_store(uri: str) -> None:
    """Create (or upgrade) an sqlite store once, holding a lock on its folder: two
    invocations started together in a new folder would otherwise both create MLflow's
    schema, and one of them fail. Other stores need no preparation."""
    if not uri.startswith("sqlite:///"):
        return
    folder = os.open(Path(uri.removeprefix("sqlite:///")).parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        MlflowClient(uri).search_experiments(max_results=1)
    finally:
        os.close(folder)  # releases the lock
