"""MLflow tracking from the Ray driver: a parent run per study invocation, a run per trial.

A trial trains a group of one or more seeds (`trainables.contract`); each seed gets its own
run, with its own metrics, tags and artifacts, exactly as if the seeds had been separate
trials.

Runs are written with `MlflowClient` and explicit run ids (no fluent global state), from
the driver only, so trials stopped early never leave a run RUNNING: `close()` ends every
open run (KILLED on interrupt). On `--resume` the callback finds each trial's existing run
by its `trial_id` tag and appends to it, skipping epochs it already holds, so histories
have no gaps or repeats.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from ray import tune

from rankae.config import RunConfig
from rankae.records import DOWNSTREAM_METRICS, EPOCH_METRICS, RECOVERY_METRICS, SWITCH_METRICS
from trainables.contract import (
    CHECKPOINT_EVERY_KEY,
    member_artifacts,
    member_results,
    member_seeds,
    trial_runs,
)

log = logging.getLogger("rankstudy")  # the driver's console (study.run.setup_logging)
LOGGED_METRICS = frozenset(EPOCH_METRICS + SWITCH_METRICS + DOWNSTREAM_METRICS + RECOVERY_METRICS)
TRIAL_TAGS = ("method", "depth", "alpha", "k", "seed", "init", "bottleneck", "dataset")
GROUP_SEEDS_TAG = "group_seeds"  # on each run of a trial of several seeds: "0,1,2"


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        # keep artifacts beside the database, not wherever the process happens to run
        location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlruns").as_uri()
    return client.create_experiment(name, artifact_location=location)


def code_version() -> str:
    """The git commit of this checkout (`+dirty` with uncommitted changes), for the study's
    parent run and its report; "unknown" outside a git checkout (an installed package)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here,
                                capture_output=True, text=True, timeout=10, check=True)  # fmt: skip
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=here, capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def run_params(run: RunConfig, checkpoint_every: int) -> dict[str, str]:
    """A run's MLflow params: its config and the study's checkpoint cadence, less the
    settings of a bottleneck it does not have (a vanilla run has no depth or alpha to show)."""
    values = run.to_dict() | {CHECKPOINT_EVERY_KEY: checkpoint_every}
    unused = run.unused_settings
    return {key: str(value) for key, value in sorted(values.items()) if key not in unused}


class MlflowTracker(tune.Callback):
    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        study: str,
        invocation: str,
        parent_run_id: str | None = None,
        study_params: dict[str, Any] | None = None,
        shown: tuple[str, ...] = (),
    ) -> None:
        """`shown`: settings each run's name carries beyond its label (`Plan.named_keys`)."""
        self.client = MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment_id = ensure_experiment(self.client, experiment, tracking_uri)
        self.experiment_name = experiment
        self.study, self.invocation, self.shown = study, invocation, shown
        if parent_run_id is None:
            parent = self.client.create_run(
                self.experiment_id,
                run_name=f"{study} ({invocation})",
                tags={"study": study, "invocation": invocation, "role": "study"},
            )
            parent_run_id = parent.info.run_id
            params = [Param(k, str(v)[:500]) for k, v in (study_params or {}).items()]
            self.client.log_batch(parent_run_id, params=params)
        else:
            self.client.update_run(parent_run_id, status="RUNNING")
        self.parent_run_id = parent_run_id
        self.runs: dict[tuple[str, int], str] = {}  # (trial_id, seed) -> run_id
        self.last_epoch: dict[str, int] = {}  # run_id -> last epoch logged
        self.finished_before: set[str] = set()
        self.restarted: set[str] = set()  # runs whose discarded checkpoint was reported

    # -- runs: one per trial, or one per member of a vectorised group --------------------
    def _runs_for(self, trial: Any) -> list[str]:
        """The MLflow run of each of the trial's members (config order), found or created."""
        runs = trial_runs(trial.config)
        return [self._run_for(trial.trial_id, run, trial.config) for run in runs]

    def _run_for(self, trial_id: str, run: RunConfig, trial_config: dict[str, Any]) -> str:
        key = (trial_id, run.seed)
        if key in self.runs:
            return self.runs[key]
        params = run_params(run, trial_config[CHECKPOINT_EVERY_KEY])
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.trial_id = '{trial_id}' and tags.seed = '{run.seed}' "
            f"and tags.invocation = '{self.invocation}'",
        ) or self._orphan_with_same_config(run, params)
        if found:
            run_id = found[0].info.run_id
            self.client.set_tag(run_id, "trial_id", trial_id)
            # a driver killed between creating the run and logging its params left it without
            missing = {k: v for k, v in params.items() if k not in found[0].data.params}
            self._log_params(run_id, missing)
            if found[0].info.status == "FINISHED":
                # finished before the driver died, but Ray's last snapshot missed it
                self.finished_before.add(run_id)
            else:
                self.client.update_run(run_id, status="RUNNING")
            history = self.client.get_metric_history(run_id, "epoch")
            self.last_epoch[run_id] = int(max((m.value for m in history), default=0))
        else:
            tags = {
                "mlflow.parentRunId": self.parent_run_id,
                "study": self.study,
                "invocation": self.invocation,
                "trial_id": trial_id,
                "role": "trial",
                "diverged": "false",
                "method": run.method,
                **{k: v for k, v in params.items() if k in TRIAL_TAGS},
            }
            seeds = member_seeds(trial_config)
            if len(seeds) > 1:  # trained side by side with these seeds
                tags[GROUP_SEEDS_TAG] = ",".join(str(s) for s in seeds)
            name = run.label(shown=self.shown)
            created = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
            run_id = created.info.run_id
            self._log_params(run_id, params)
            self.last_epoch[run_id] = 0
        self.runs[key] = run_id
        return run_id

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        batch = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(batch), 100):
            self.client.log_batch(run_id, params=batch[start : start + 100])

    def _orphan_with_same_config(self, run: RunConfig, params: dict[str, str]) -> list:
        """A run left RUNNING by a killed driver for a trial Ray's saved state never knew.

        Ray restarts such a trial from scratch under a new id; training is deterministic, so
        the new trial continues the old run (epochs already logged are skipped).
        """
        candidates = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.invocation = '{self.invocation}' and tags.role = 'trial' "
            f"and attributes.status = 'RUNNING'",
        )
        live = set(self.runs.values())
        name = run.label(shown=self.shown)
        tags = {k: v for k, v in params.items() if k in TRIAL_TAGS}
        return [
            r for r in candidates
            if r.info.run_id not in live
            and (r.data.params == params  # or killed before its params, named and tagged alike
                 or not r.data.params and r.info.run_name == name
                 and all(r.data.tags.get(k) == v for k, v in tags.items()))
        ]  # fmt: skip

    def _forget(self, trial: Any) -> None:
        for seed in member_seeds(trial.config):
            self.runs.pop((trial.trial_id, seed), None)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._runs_for(trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info
    ) -> None:
        run_ids = self._runs_for(trial)
        for run_id, metrics in zip(run_ids, member_results(trial.config, result), strict=True):
            if metrics is not None:
                self._log_metrics(run_id, metrics)

    def _log_metrics(self, run_id: str, result: dict[str, Any]) -> None:
        if result.get("checkpoint_discarded") and run_id not in self.restarted:
            self.restarted.add(run_id)
            self.client.set_tag(run_id, "checkpoint_discarded", "true")
            log.warning(
                "run %s: its checkpoint was unreadable; restarted from scratch (tag "
                "checkpoint_discarded)", self.client.get_run(run_id).info.run_name,
            )  # fmt: skip
        epoch = int(result.get("epoch", 0))
        if epoch <= self.last_epoch.get(run_id, 0):
            return  # already logged before a restart (or a member that stopped earlier)
        self.last_epoch[run_id] = epoch
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, epoch)
            for key, value in result.items()
            if key in LOGGED_METRICS and isinstance(value, int | float)
        ]
        self.client.log_batch(run_id, metrics=metrics)
        if result.get("diverged") or not math.isfinite(float(result.get("loss", 0.0))):
            self.client.set_tag(run_id, "diverged", "true")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        run_ids = self._runs_for(trial)
        self._forget(trial)
        for run_id, run in zip(run_ids, trial_runs(trial.config), strict=True):
            if run_id in self.finished_before:
                continue
            self._log_artifacts(run_id, trial, run)
            self.client.set_terminated(run_id, "FINISHED")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info) -> None:
        log.warning(
            "trial %s failed (traceback: error.txt in its folder); Ray retries it from its "
            "last checkpoint", trial.trial_id,
        )  # fmt: skip

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        run_ids = self._runs_for(trial)
        self._forget(trial)
        for run_id in run_ids:
            self.client.set_tag(run_id, "error", "true")
            self.client.set_terminated(run_id, "FAILED")

    def _log_artifacts(self, run_id: str, trial: Any, run: RunConfig) -> None:
        checkpoint = trial.checkpoint
        if checkpoint is None:
            return
        with checkpoint.as_directory() as folder:
            artifacts = member_artifacts(folder, run.seed)
            if not (artifacts / "spectra.json").is_file():
                return
            self.client.log_artifacts(run_id, str(artifacts))
            spectra = json.loads((artifacts / "spectra.json").read_text())
        from analysis.figures import spectrum_trajectory

        figure = spectrum_trajectory(spectra, title=run.label(shown=self.shown))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "spectrum_trajectory.png"
            figure.savefig(path, dpi=110, bbox_inches="tight")
            self.client.log_artifact(run_id, str(path))

    # -- study level -------------------------------------------------------------------
    def log_artifact(self, path: Path, folder: str) -> None:
        """A file of the whole invocation (e.g. its Optuna record) on the parent run."""
        self.client.log_artifact(self.parent_run_id, str(path), artifact_path=folder)

    def log_study_summary(self, metrics: dict[str, float], table_markdown: str) -> None:
        """The parent run's summary metrics, each logged only when its value is new: a
        `--resume` of a finished plan adds no second point to their histories."""
        now = int(time.time() * 1000)
        logged = self.client.get_run(self.parent_run_id).data.metrics
        batch = [Metric(k, float(v), now, 0) for k, v in metrics.items() if logged.get(k) != v]
        if batch:
            self.client.log_batch(self.parent_run_id, metrics=batch)
        self.client.log_text(self.parent_run_id, table_markdown, "results_table.md")

    def close(self, status: str = "FINISHED") -> None:
        """End every run of this invocation still open (KILLED), then the parent run.

        Searches the store rather than trusting in-memory state: after `Tuner.restore` Ray
        logs through its own unpickled copy of this callback.
        """
        open_runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.invocation = '{self.invocation}' and tags.role = 'trial' "
            f"and attributes.status = 'RUNNING'",
        )
        for run in open_runs:
            self.client.set_terminated(run.info.run_id, "KILLED")
        self.runs.clear()
        self.client.set_terminated(self.parent_run_id, status)

    def __getstate__(self) -> dict[str, Any]:
        """Ray pickles callbacks with the experiment; keep the URI, rebuild the client."""
        state = dict(self.__dict__)
        state.update(client=None, runs={}, last_epoch={}, finished_before=set())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client = MlflowClient(self.tracking_uri)
