"""What `--resume` needs of each invocation, kept in `.rankstudy/invocations/` of the
working folder: `<run_name>.json` (the options it was started with, its MLflow parent run
and the version of the trial contract its trials were made under) and, for an Optuna plan,
`<run_name>.optuna.db` (its study, `optuna.load_study`)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rankae.config import ConfigError

STATE_DIR = Path(".rankstudy") / "invocations"


def new_invocation(study: str, options: dict[str, Any]) -> dict[str, Any]:
    """A fresh invocation record, named `<study>-<UTC time>-<hex>` (unique per invocation)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_name = f"{study}-{stamp}-{secrets.token_hex(2)}"
    return {"run_name": run_name, "options": options, "parent_run_id": None}


def optuna_db(run_name: str) -> Path:
    """The Optuna study of an invocation (`optuna.load_study(study_name=run_name, ...)`)."""
    return (STATE_DIR / f"{run_name}.optuna.db").absolute()


def save_invocation(run_name: str, record: dict[str, Any]) -> Path:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = STATE_DIR / f"{run_name}.json"
    path.write_text(json.dumps(record, indent=1))
    return path


def find_invocation(study: str, which: str) -> dict[str, Any]:
    """The named invocation, or the latest one started: by the UTC start time in its name
    (`<study>-<YYYYmmdd-HHMMSS>-<hex>`), not by when its record was last written, so resuming
    an older invocation does not make it the latest."""
    found = STATE_DIR.glob(f"{study}-*.json") if STATE_DIR.is_dir() else []
    candidates = sorted(found, key=lambda path: path.stem.removeprefix(f"{study}-"))
    if which != "latest":
        candidates = [c for c in candidates if c.stem == which]
    if not candidates:
        raise ConfigError(
            f"--resume {which}: no earlier invocation of {study!r} in {STATE_DIR.absolute()}"
        )
    return json.loads(candidates[-1].read_text())


def content_digest(path: Path) -> str:
    """sha256 of a file's bytes; of a folder, of each file's relative path and bytes in
    sorted order (an image folder whose files change, appear or vanish gets a new digest)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode() + b"\0")
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def content_digests(paths: Iterable[str]) -> dict[str, str]:
    """Each input the invocation reads (a user's data, labels), by its content."""
    return {str(path): content_digest(Path(path)) for path in paths}


def check_unchanged(recorded: dict[str, str], now: dict[str, str], run_name: str) -> None:
    """`--resume` continues trials that read the recorded inputs: one that changed or
    vanished since would mix two datasets in one study, so it is refused (ConfigError)."""
    for path, digest in recorded.items():
        if now.get(path) != digest:
            change = "changed" if path in now else "is gone"
            raise ConfigError(
                f"--resume {run_name}: {path} {change} since the invocation started (its "
                "trials read the earlier content); restore it, or start a new invocation"
            )
