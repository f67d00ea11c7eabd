"""Helpers for the end-to-end reliability tests: every scenario runs the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient

from study.service.launch import LOCAL_RAY_CLUSTER_ENV, NEW_OUTPUT_ENV

REPO = Path(__file__).resolve().parents[2]

# A linear study of two trials (alpha 1, then alpha 2), one at a time, 30 epochs of 100 steps,
# checkpointed every 10 epochs: slow enough to signal mid-trial without holding it (the
# node-loss test, whose trial runs on a node the test starts, beyond the driver's environment).
SLOW_LINEAR = ["linear_alpha_sweep", "--smoke", "--max-concurrent", "1", "--set", "epochs=30"]
# The same at a quarter of the steps (about 5 s a trial). A test that signals it mid-trial
# holds the trial first (`held_at`), so the signal never races the training.
LINEAR = [*SLOW_LINEAR, "--set", "gd_steps_per_epoch=25"]
# A tiny conv escalation on sklearn digits (no download): 2 depths x alpha 100, 200.
TINY_ESCALATION = [
    "mnist_alpha_sweep", "--smoke", "--max-concurrent", "1",
    "--set", "dataset=digits", "--set", "n_train=96", "--set", "n_eval=64",
    "--set", "epochs=4", "--set", "downstream=false", "--set", "patience_steps=1",
]  # fmt: skip


def held_at(epoch: int, where: str = "") -> dict[str, str]:
    """The environment that stops a trial after it reported `epoch` until it is killed
    (trainables/faults.py); `where`, "KEY=VALUE", picks the trial by a setting."""
    return {"RANKSTUDY_TEST_HOLD": f"{epoch}:{where}" if where else str(epoch)}


# what `start_ray` sets on its own process for a local instance: a test process that ran a
# study in-process (tests/conftest.py's `ray_local`) has them, and a subprocess must not
# inherit them (a `ray start` node with Ray's multi-node switch off prints no address)
SET_BY_START_RAY = (
    LOCAL_RAY_CLUSTER_ENV, NEW_OUTPUT_ENV, "RAY_AUTH_MODE", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS",
)  # fmt: skip


def cli_env(**extra: str) -> dict[str, str]:
    """A subprocess's environment: the shell's, as a user's would be, and the checkout."""
    shell = {key: value for key, value in os.environ.items() if key not in SET_BY_START_RAY}
    return {**shell, "PYTHONPATH": str(REPO), **extra}


def run_cli(*args: str, cwd: Path, timeout: float = 420, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "study.run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
    )


def start_cli(*args: str, cwd: Path, **env: str) -> subprocess.Popen:
    """The driver in its own session, so a signal reaches it (and only it) like a terminal's,
    with SIGHUP's default as in a terminal (a suite run under `nohup` would pass on its
    ignored SIGHUP, which the driver rightly keeps ignoring)."""
    return subprocess.Popen(
        [sys.executable, "-m", "study.run", *args],
        cwd=cwd,
        env=cli_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )


def wait_for(predicate: Callable[[], object], timeout: float = 300, what: str = "") -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except Exception:  # the store may not exist yet
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def client(folder: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")


def runs(folder: Path, experiment: str, role: str = "trial") -> list:
    mlflow = client(folder)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return []
    return [r for r in mlflow.search_runs([found.experiment_id]) if r.data.tags.get("role") == role]


def epochs_logged(folder: Path, run) -> list[int]:
    return sorted(m.step for m in client(folder).get_metric_history(run.info.run_id, "loss"))
