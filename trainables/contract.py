"""The trial contract: what a Ray trial receives and what it reports back.

A trial trains a group of one or more seeds of one run config side by side
(`rankae.vectorized.VectorizedTrainer`; a group of one is a plain `Trainer`). Its config holds
its members' run configs under `runs` (one per seed, built and validated once, by the driver's
plan; the worker and every reader in the driver use those objects) and the study's
checkpoint cadence under `checkpoint_every`. Each result holds every member's latest
metrics under `members[<seed>]` and, for Tune's stopper, searchers and progress table, their
mean over the healthy members, with `diverged` set once every member has diverged, and
`ended` set in the trial's last result (every member trained to its end or stopped). A
finished trial's checkpoint holds `artifacts/seed-<seed>/` per member. The study service
imports these names from here; nothing here imports the study service.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankae.config import RunConfig

RUNS_KEY = "runs"
MEMBERS_KEY = "members"
ENDED_KEY = "ended"
CHECKPOINT_EVERY_KEY = "checkpoint_every"
ARTIFACT_DIR = "artifacts"
STATE_FILE = "trainer.pt"
# the shape of what a trial receives; an invocation Tune saved under another is not resumed
# (2: the members' RunConfig objects, `ended` in results; 1: one run's settings, its seeds)
CONTRACT_VERSION = 2
# the finished trials of a study as Tune's ResultGrid gives them: (config, final result or
# None, errored) per trial; what a plan's completion and the results table read
Completed = list[tuple[dict[str, Any], dict[str, Any] | None, bool]]


def trial_config(runs: Sequence[RunConfig], checkpoint_every: int) -> dict[str, Any]:
    """What a trial receives: its members' run configs (seed order), each checked valid (once:
    a config that passed answers at once, here and in the trainers).

    A list: Tune saves trial configs as JSON and gives a tuple back as a list, and a plan's
    completion compares the saved configs with the ones its search makes
    (`study.plans.base.replay_complete`).
    """
    return {RUNS_KEY: [run.validate() for run in runs], CHECKPOINT_EVERY_KEY: checkpoint_every}


def trial_runs(config: dict[str, Any]) -> list[RunConfig]:
    """The trial's members' run configs, as the driver built them."""
    return list(config[RUNS_KEY])


def member_seeds(config: dict[str, Any]) -> list[int]:
    return [run.seed for run in trial_runs(config)]


def trial_name(config: dict[str, Any], shown: Sequence[str] = ()) -> str:
    """`orthogonal-N16-a300-s0+1+2`: the trial's runs' label (`RunConfig.label`) with its seeds
    and the settings `shown`."""
    return trial_runs(config)[0].label(member_seeds(config), shown)


def member_results(
    config: dict[str, Any], result: dict[str, Any] | None
) -> list[dict[str, Any] | None]:
    """Each member's latest metrics (seed order), None for a member that reported nothing.

    Takes a result as reported, or as Tune hands it to searchers: flattened, with the
    members' metrics under keys `members/<seed>/<metric>`.
    """
    result = result or {}
    members = result.get(MEMBERS_KEY)
    if members is None:
        members = {}
        for key, value in result.items():
            head, _, rest = key.partition("/")
            if head == MEMBERS_KEY and "/" in rest:
                seed, _, metric = rest.partition("/")
                members.setdefault(seed, {})[metric] = value
    return [members.get(str(seed)) for seed in member_seeds(config)]


def member_artifacts(folder: Path | str, seed: int) -> Path:
    """Where member `seed`'s final artifacts lie in a finished trial's checkpoint folder."""
    return Path(folder) / ARTIFACT_DIR / f"seed-{seed}"


def trial_ended(result: dict[str, Any] | None) -> bool:
    """Whether a trial's last result is its end. Tune marks a trial an interrupt stopped as
    terminated too, and does not always save its own `done` with a finished trial."""
    return bool((result or {}).get(ENDED_KEY))


def trial_result(latest: dict[str, dict[str, Any]], ended: bool = False) -> dict[str, Any]:
    """What Tune sees: every member's metrics and their mean over the healthy members, and
    whether this is the trial's last result (`ended`)."""
    healthy = [metrics for metrics in latest.values() if not metrics["diverged"]]
    summary: dict[str, Any] = {}
    for key in sorted({key for metrics in healthy for key in metrics}):
        values = [m[key] for m in healthy if isinstance(m.get(key), int | float)]
        if values:
            summary[key] = sum(values) / len(values)
    result = {
        **summary,
        "epoch": max(metrics["epoch"] for metrics in latest.values()),
        "loss": summary.get("loss", math.nan),
        "diverged": float(not healthy),
        ENDED_KEY: float(ended),
        MEMBERS_KEY: latest,
    }
    if len(latest) > 1:  # a count the progress table shows for groups
        result["members_diverged"] = len(latest) - len(healthy)
    return result
