"""Each external thing a study uses, probed before the first write, with a short timeout:
the results storage and the Ray cluster to join (the MLflow store: `study.adapters.store`). Each
refusal is one line naming the thing (a `ValueError`); none of them writes anything.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

PROBE_TIMEOUT_S = 10.0  # a reachable store or cluster answers well within this
# Ray's record of the cluster started on this machine (`ray start --head`), read by
# `ray.init(address="auto")` when RAY_ADDRESS is unset
RAY_CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")
T = TypeVar("T")


def within(seconds: float, what: str, probe: Callable[[], T]) -> T:
    """`probe()`'s value, or a ValueError naming `what` once `seconds` have passed (the
    probe's own error is passed on as one line)."""
    outcome: dict[str, object] = {}

    def attempt() -> None:
        try:
            outcome["value"] = probe()
        except Exception as err:  # any failure means the thing cannot be used
            outcome["error"] = err

    worker = threading.Thread(target=attempt, daemon=True)  # a hung probe is left behind
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ValueError(f"{what} did not answer within {seconds:g} s")
    if "error" in outcome:
        detail = " ".join(str(outcome["error"]).split())[:300]
        raise ValueError(f"{what} cannot be used ({type(outcome['error']).__name__}: {detail})")
    return outcome["value"]  # type: ignore[return-value]


def check_storage(storage: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """A local folder that can be created and written (returned absolute), or a remote URI
    whose file system answers (returned as given). Nothing is created here."""
    if "://" in storage:
        from pyarrow import fs

        def listing() -> None:
            filesystem, path = fs.FileSystem.from_uri(storage)
            filesystem.get_file_info(path)

        within(timeout, f"--storage {storage!r}", listing)
        return storage
    path = Path(storage).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(
            f"--storage {storage!r} is invalid: {existing} is a file, and the results storage "
            "must be a folder (created if missing)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--storage {storage!r} is not writable ({existing} is read-only)")
    if existing.is_relative_to("/proc") or existing.is_relative_to("/sys"):
        raise ValueError(f"--storage {storage!r} is not writable ({existing} is a kernel folder)")
    return str(path)


def cluster_endpoint(address: str) -> tuple[str, int]:
    """The (host, port) `ray.init(address=...)` will connect to: `auto` is RAY_ADDRESS or
    the cluster started on this machine; `ray://host:port` a Ray Client server."""
    given = address
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address and RAY_CURRENT_CLUSTER.is_file():
            address = RAY_CURRENT_CLUSTER.read_text().strip()
        if not address:
            raise ValueError(
                "--address auto: no Ray cluster runs on this machine (start one with "
                "`ray start --head`, or give its HOST:PORT)"
            )
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--address {given!r} is invalid: give HOST:PORT, ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def check_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """A bounded TCP connection to the cluster's endpoint: a closed port or an unknown host
    is refused in one line, never a hang (Ray itself retries for minutes)."""
    host, port = cluster_endpoint(address)

    def connect() -> None:
        with socket.create_connection((host, port), timeout=timeout):
            pass

    within(timeout, f"--address {address!r} (Ray at {host}:{port})", connect)
