"""`mlflow ui` on a smoke study's store shows the study: runs, params, metrics, figures.

Starts the real server on 127.0.0.1 (a free port) and asks its REST API what a user would
see in the browser: the study's experiment, every trial run with its params and metrics,
each trial's spectrum figure, and the report figures logged on the study's parent run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from test_analysis import SMOKE_EPOCHS, smoke_uri

from analysis.load import load_trials
from analysis.report import build_report
from rankae.records import TOP_SINGULAR_VALUES

START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def mlflow_ui(backend_uri: str, log: Path) -> Iterator[str]:
    """The server's base URL while it runs; always stopped (SIGTERM, then SIGKILL) after.

    Its output goes to `log` (a pipe nobody reads could fill and stall it), quoted on failure.
    """
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", backend_uri,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (
                f"mlflow ui not up after {START_TIMEOUT_S} s; its log:\n{log.read_text()[-2000:]}"
            )
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
            process.wait(timeout=10)


def get(base: str, endpoint: str, **query: str) -> dict:
    url = f"{base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def post(base: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def test_mlflow_ui_serves_the_studys_runs_params_metrics_and_figures(smoke_studies, tmp_path):
    uri = smoke_uri(smoke_studies, "linear_depth_sweep")
    build_report("linear_depth_sweep", uri, tmp_path / "report")  # logs figures on the parent
    trials = load_trials("linear_depth_sweep", uri).set_index("run_id")
    with mlflow_ui(uri, tmp_path / "mlflow_ui.log") as base:
        experiment = get(base, "experiments/get-by-name", experiment_name="linear_depth_sweep")
        experiment_id = experiment["experiment"]["experiment_id"]
        found = post(base, "runs/search", {"experiment_ids": [experiment_id], "max_results": 100})
        runs = {r["info"]["run_id"]: r for r in found["runs"]}
        roles = {r["info"]["run_id"]: _tags(r)["role"] for r in found["runs"]}
        assert sorted(k for k, v in roles.items() if v == "trial") == sorted(trials.index)
        for run_id, trial in trials.iterrows():
            run = runs[run_id]
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
            assert params["bottleneck"] == trial["bottleneck"] and params["seed"] == "0"
            own = {"linear_net": {"depth", "alpha", "init"}, "explicit": {"k"}}
            assert {"lr", "rank_threshold"} | own.get(trial["bottleneck"], set()) <= set(params)
            unused = set().union(*own.values()) - own.get(trial["bottleneck"], set())
            assert not unused & set(params)  # no settings of a bottleneck the run lacks
            assert metrics["latent_rank"] == trial["latent_rank"]
            assert metrics["loss"] == trial["loss"] and metrics["epoch"] == SMOKE_EPOCHS
            assert f"latent_sv_{TOP_SINGULAR_VALUES}" in metrics
            assert _tags(run)["method"] == trial["method"]
            files = {f["path"] for f in get(base, "artifacts/list", run_id=run_id)["files"]}
            assert {"spectrum_trajectory.png", "spectra.json", "final.json"} <= files
        (parent,) = [run_id for run_id, role in roles.items() if role == "study"]
        report = get(base, "artifacts/list", run_id=parent, path="report")["files"]
        assert {"report/fig1_rank_trajectories.png", "report/report.html"} <= {
            f["path"] for f in report
        }
        query = urllib.parse.urlencode(
            {"run_uuid": parent, "path": "report/fig1_rank_trajectories.png"}
        )
        with urllib.request.urlopen(f"{base}/get-artifact?{query}", timeout=30) as answer:
            assert answer.read(4) == b"\x89PNG"


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"]["tags"]}
