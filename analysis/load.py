"""MLflow -> pandas: a study's trials, per-epoch histories and spectra as tidy DataFrames.

The study service (`study.adapters.tracking`) writes one parent run per invocation (tag role=study)
and one run per trial (role=trial), all tagged with the study's name and invocation. This
module reads them back from any tracking URI, so a notebook or the report works on a laptop's
sqlite store and on a team's MLflow server alike. Metric names come from the one trial
record schema (`rankae.records`), so what a trial reported is what comes back.

By default only the latest invocation of a study is read: a re-run should not silently
average with an older, maybe differently configured, one. Pass `invocation="all"` to pool.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rankae.config import INITS, ConfigError, RunConfig, parse_value, setting_text
from rankae.records import (
    CODES_ARTIFACT,
    DOWNSTREAM_METRICS,
    EPOCH_METRICS,
    SCALAR_METRICS,
    SWITCH_METRICS,
)

PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# run-config values worth a column: what tells two studies' settings apart
PARAM_COLUMNS = (
    "dataset",
    "data_path",  # a user's data (rank_of): the report reads it again for its estimators
    "labels_path",
    "latent_dim",
    "rank_threshold",
    "epochs",
    "n_train",
    "two_stage",
    "synth_rank",
    "classifier_labels",
    "dtype",
)
METHOD_ORDER = ("vanilla", "explicit", *INITS)
CONFIG = ("method", "depth", "alpha", "k")  # the bottleneck settings of a configuration
PARAM_INTEGERS = ("latent_dim", "epochs", "n_train", "synth_rank", "classifier_labels")
FLOAT_COLUMNS = ("wall_s", "rank_threshold")
CONFIG_COLUMNS = ("method", "bottleneck", "init", "depth", "alpha", "k", "variant", "seed")
# a run's last value of every scalar metric it reports (rankae/records.py); `diverged` and
# `k` are columns of their own (the run's flag, over its tag too; the configured width)
FINAL_METRICS = tuple(
    name
    for name in (*SCALAR_METRICS, *SWITCH_METRICS, *DOWNSTREAM_METRICS)
    if name not in ("diverged", "k")
)
# per-epoch metric `k` is the explicit bottleneck's width *at that epoch* (two-stage runs get
# it at the switch); it is renamed so it cannot be confused with the trial's configured k
HISTORY_RENAMES = {"k": "active_k"}


def default_tracking_uri() -> str:
    """MLflow's own `MLFLOW_TRACKING_URI` when set, else the sqlite store `./mlflow.db`.

    Used by `study.run`, `analysis.report` and the notebook when no URI is given.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


class AnalysisError(Exception):
    """The store or the study cannot be read; the message says what to do (one line)."""


@dataclass(frozen=True)
class StudyRuns:
    """The MLflow runs of one study: its parent run(s) and its trial runs."""

    study: str
    tracking_uri: str
    invocations: tuple[str, ...]  # oldest first
    parents: tuple[Run, ...]
    trials: tuple[Run, ...]

    @property
    def latest_parent(self) -> Run | None:
        return max(self.parents, key=lambda r: r.info.start_time, default=None)


def connect(tracking_uri: str | None = None) -> tuple[MlflowClient, str]:
    """A client on an existing store; never creates an empty one at a mistyped path.

    MLflow happily creates a new sqlite database (or mlruns folder) wherever it is
    pointed, which turns a typo into an empty, confusing result; refuse instead.
    """
    uri = tracking_uri or default_tracking_uri()
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        if not uri.startswith("sqlite:///") or not path.is_file():
            raise AnalysisError(
                f"no MLflow store at {uri}: run a study there first or pass --mlflow-uri"
            )
    elif parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not path.is_dir():
            raise AnalysisError(f"no MLflow store at {uri}: the folder {path} does not exist")
    client = MlflowClient(uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as err:  # any transport or server error: the store is unusable
        raise AnalysisError(
            f"cannot read the MLflow store at {uri} ({type(err).__name__})"
        ) from None
    return client, uri


def _search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str) -> list[Run]:
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=filter_string, max_results=1000, page_token=token
        )
        runs += list(page)
        token = page.token
        if not token:
            return runs


def study_names(tracking_uri: str | None = None) -> list[str]:
    """Every study with runs in the store (from the runs' `study` tags)."""
    client, _ = connect(tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments(max_results=10_000)]
    parents = _search_all(client, ids, "tags.role = 'study'")
    return sorted({r.data.tags["study"] for r in parents})


def find_runs(study: str, tracking_uri: str | None = None, invocation: str = "latest") -> StudyRuns:
    """The runs of `study`: invocation "latest" (default), "all", or one invocation's name.

    Runs are found by their `study` tag in every experiment, so a study logged under
    `--experiment OTHER` is found too.
    """
    client, uri = connect(tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments(max_results=10_000)]
    runs = _search_all(client, ids, f"tags.study = '{study}'")
    if not runs:
        known = ", ".join(study_names(uri)) or "none"
        raise AnalysisError(f"study {study!r} has no runs in {uri} (studies there: {known})")
    by_start = sorted(runs, key=lambda r: r.info.start_time)
    invocations = tuple(dict.fromkeys(r.data.tags.get("invocation", "") for r in by_start))
    if invocation == "latest":
        chosen = {invocations[-1]}
    elif invocation == "all":
        chosen = set(invocations)
    elif invocation in invocations:
        chosen = {invocation}
    else:
        raise AnalysisError(
            f"study {study!r} has no invocation {invocation!r} (known: {', '.join(invocations)})"
        )
    picked = [r for r in by_start if r.data.tags.get("invocation") in chosen]
    trials = tuple(r for r in picked if r.data.tags.get("role") == "trial")
    if not trials:
        raise AnalysisError(f"study {study!r} has no trial runs in {uri} ({', '.join(chosen)})")
    return StudyRuns(
        study=study,
        tracking_uri=uri,
        invocations=tuple(i for i in invocations if i in chosen),
        parents=tuple(r for r in picked if r.data.tags.get("role") == "study"),
        trials=trials,
    )


def _typed(params: dict[str, str]) -> dict[str, Any]:
    """Params are strings in MLflow; type them as `--set` does (`rankae.config.parse_value`).

    A value this version cannot parse (a store written by another version) stays a string.
    """
    known = {f.name for f in fields(RunConfig)}
    typed: dict[str, Any] = {}
    for key, value in params.items():
        if key in known:
            try:
                typed[key] = parse_value(key, value)
            except ConfigError:
                typed[key] = value
    return typed


def _trial_row(run: Run) -> dict[str, Any]:
    tags, metrics = run.data.tags, run.data.metrics
    params = _typed(run.data.params)
    bottleneck = params.get("bottleneck", tags.get("bottleneck"))
    net, explicit = bottleneck == "linear_net", bottleneck == "explicit"
    row: dict[str, Any] = {
        "study": tags.get("study"),
        "invocation": tags.get("invocation"),
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "method": tags.get("method"),
        "bottleneck": bottleneck,
        "init": params.get("init") if net else None,  # stores before 2026-11-27 log it anyway
        "depth": params.get("depth") if net else None,
        "alpha": params.get("alpha") if net else None,
        "k": params.get("k") if explicit else None,
        "seed": params.get("seed"),
        "diverged": tags.get("diverged") == "true" or bool(metrics.get("diverged", 0.0)),
        **{name: metrics.get(name) for name in FINAL_METRICS},
        "wall_s": (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None,
        **{name: params.get(name) for name in PARAM_COLUMNS},
        "settings": params,
    }
    return row


def trials_frame(runs: StudyRuns) -> pd.DataFrame:
    """One row per trial: configuration, final-epoch metrics, downstream results, timing.

    Final values are MLflow's latest value per metric (the highest step = the last epoch).
    `depth`/`alpha`/`init` are empty unless the bottleneck is the N-layer sub-network and
    `k` unless it is the explicit one, so groupings never mix unused settings in.
    """
    return tidy_trials([_trial_row(r) for r in runs.trials])


def run_row(run: RunConfig, result: dict[str, Any] | None, errored: bool) -> dict[str, Any]:
    """One run's row of the trial frame from its config and its final metrics (a trial of
    several seeds gives one per seed): its settings, status, divergence, final metrics and
    recoveries, as `load_trials` reads them from MLflow."""
    result = result or {}
    return {
        "run_name": run.label(),
        "status": "FAILED" if errored else "FINISHED",
        **run.bottleneck_settings(),
        "bottleneck": run.bottleneck,
        "latent_dim": run.latent_dim,  # the width a vanilla run's codes have
        "seed": run.seed,
        "diverged": bool(result.get("diverged", False)),
        **{metric: result.get(metric) for metric in FINAL_METRICS},
        # recoveries: restarted from scratch (an unreadable checkpoint) / resumed at an epoch
        "checkpoint_discarded": bool(result.get("checkpoint_discarded", False)),
        "resumed_from_epoch": result.get("resumed_from_epoch"),
        "settings": run.to_dict(),
    }


def variants(frame: pd.DataFrame, settings: list[dict[str, Any]]) -> list[str]:
    """Each run's settings beyond its bottleneck's in which the runs of its bottleneck
    settings differ ("init_scale=0.001"; "" where none do). A study file or `--grid` may
    sweep any setting: runs that differ in one are different configurations, not seeds of
    one. A setting that differs only between bottlenecks (the rank check's budget) is not
    one: the bottleneck settings already tell those runs apart."""
    table = pd.DataFrame(settings, index=frame.index).drop(
        columns=["seed", "bottleneck", "init", *CONFIG], errors="ignore"
    )
    group = frame.groupby(list(CONFIG), dropna=False, sort=False).ngroup()
    varied = table.map(repr).groupby(group).transform("nunique") > 1  # per run and setting
    return [
        " ".join(setting_text(key, value) for key, value in table.loc[run, varied.loc[run]].items())
        for run in table.index
    ]


def tidy_trials(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Trial rows -> the typed, ordered trial frame (from MLflow here; from Tune's results
    at the end of a study, `study.adapters.table.trials_frame`), with each run's `variant`."""
    settings = [row.pop("settings", {}) for row in rows]
    frame = pd.DataFrame(rows)
    frame["variant"] = variants(frame, settings)
    # the runs of two variants share a label: their names say which they are
    frame["run_name"] = (frame["run_name"] + " " + frame["variant"]).str.strip()
    integers = ("depth", "k", "seed", "epoch", "step", "stage", *PARAM_INTEGERS)
    for column in frame:
        if column in integers:
            frame[column] = pd.to_numeric(frame[column]).astype("Int64")
        elif column == "alpha" or column in FINAL_METRICS or column in FLOAT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return order_configs(frame).reset_index(drop=True)


def order_configs(frame: pd.DataFrame) -> pd.DataFrame:
    """Vanilla, explicit, then the sub-network inits; within each by N, alpha and k."""
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    keys = [c for c in ("depth", "alpha", "k", "variant", "seed") if c in frame]
    ordered = frame.assign(_order=frame["method"].map(rank).fillna(len(rank)))
    return ordered.sort_values(["_order", *keys], na_position="first").drop(columns="_order")


def _metric_histories(
    client: MlflowClient, uri: str, run_ids: list[str], keys: list[str]
) -> pd.DataFrame:
    """Long (run_id, key, step, value, timestamp) frame of every logged value.

    One public `get_metric_history` request per run and metric, in parallel threads (the
    SQL store's bulk query is not part of MLflow's public API).
    """
    records: list[tuple[str, str, int, float, int]] = []
    pairs = [(r, k) for r in run_ids for k in keys]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(lambda p: (p[0], client.get_metric_history(*p)), pairs)
        for run_id, history in results:
            records += [(run_id, m.key, m.step, m.value, m.timestamp) for m in history]
    return pd.DataFrame(records, columns=["run_id", "key", "step", "value", "timestamp"])


def history_frame(runs: StudyRuns, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trial and epoch: loss, ranks, top singular values (raw), stage, step.

    `epoch` is MLflow's step; `step` is the optimiser step count the trial reported. A value
    logged twice for one epoch (a resumed trial) keeps the later one.
    """
    trials = trials_frame(runs) if trials is None else trials
    client, uri = connect(runs.tracking_uri)
    keys = sorted({k for r in runs.trials for k in r.data.metrics} & set(EPOCH_METRICS))
    long = _metric_histories(client, uri, list(trials["run_id"]), keys)
    long = long.rename(columns={"step": "mlflow_step"}).sort_values("timestamp")
    long = long.drop_duplicates(["run_id", "key", "mlflow_step"], keep="last")
    wide = long.pivot(index=["run_id", "mlflow_step"], columns="key", values="value")
    wide = wide.drop(columns="epoch", errors="ignore").reset_index()
    wide = wide.rename(columns={"mlflow_step": "epoch", **HISTORY_RENAMES})
    ids = trials[["run_id", "study", *CONFIG_COLUMNS, "rank_threshold"]]
    frame = ids.merge(wide, on="run_id", how="inner")
    present = [m for m in EPOCH_METRICS if m in frame and m not in ("epoch", "k")]
    order = [*ids.columns, "epoch", *present, *(c for c in HISTORY_RENAMES.values() if c in frame)]
    position = {run_id: i for i, run_id in enumerate(trials["run_id"])}  # the trials' order
    frame = frame[order].sort_values(
        ["run_id", "epoch"], key=lambda c: c.map(position) if c.name == "run_id" else c
    )
    frame["epoch"] = frame["epoch"].astype(int)
    return frame.reset_index(drop=True)


def load_trials(
    study: str, tracking_uri: str | None = None, invocation: str = "latest"
) -> pd.DataFrame:
    """One row per trial of `study` (see `trials_frame`)."""
    return trials_frame(find_runs(study, tracking_uri, invocation))


def load_history(
    study: str, tracking_uri: str | None = None, invocation: str = "latest"
) -> pd.DataFrame:
    """One row per trial and epoch of `study` (see `history_frame`)."""
    return history_frame(find_runs(study, tracking_uri, invocation))


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No progress bar per artifact (one per run clutters notebooks and logs)."""
    previous = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[PROGRESS_BAR]
        else:
            os.environ[PROGRESS_BAR] = previous


def load_spectra(
    run_ids: list[str], tracking_uri: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Each run's whole spectra per epoch (its `spectra.json` artifact), by run id.

    Entries are {"epoch", "stage", "we": raw singular values or None, "latent": ...}: the
    full spectra, so rank can be recomputed with another threshold or definition. Runs
    without the artifact (killed before their final report) are left out.
    """
    client, _ = connect(tracking_uri)
    out: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder, _quiet_downloads():
        for run_id in run_ids:
            try:
                path = client.download_artifacts(run_id, "spectra.json", folder)
            except (MlflowException, OSError):
                continue
            out[run_id] = json.loads(Path(path).read_text())
    return out


SEARCH_ARTIFACT_DIR = "search"  # the parent run's copy of an Optuna study's record


def load_search_record(parent_run_id: str, tracking_uri: str | None, folder: Path) -> Path | None:
    """The invocation's Optuna record (`<invocation>.optuna.db`), downloaded into `folder`;
    None for a study that searched nothing."""
    client, _ = connect(tracking_uri)
    with _quiet_downloads():
        try:
            local = client.download_artifacts(parent_run_id, SEARCH_ARTIFACT_DIR, str(folder))
        except (MlflowException, OSError):
            return None
    return next(Path(local).glob("*.optuna.db"), None)


def load_codes(run_id: str, tracking_uri: str | None = None) -> np.ndarray | None:
    """A vanilla or sub-network run's codes of its training split on a user's data
    (`CODES_ARTIFACT`), or None for a run that kept none."""
    client, _ = connect(tracking_uri)
    with tempfile.TemporaryDirectory() as folder, _quiet_downloads():
        try:
            return np.load(client.download_artifacts(run_id, CODES_ARTIFACT, folder))
        except (MlflowException, OSError):
            return None
