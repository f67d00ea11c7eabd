"""The trial contract: what a Ray trial receives and what it reports back.

A trial trains a group of one or more seeds of one run config side by side
(`rankae.vectorized.VectorizedTrainer`; a group of one is a plain `Trainer`). Its config is
the run config with the first seed, plus every seed under `group_seeds` and the study's
checkpoint cadence under `checkpoint_every`. Each result holds every member's latest
metrics under `members[<seed>]` and, for Tune's stopper, searchers and progress table, their
mean over the healthy members, with `diverged` set once every member has diverged. A
finished trial's checkpoint holds `artifacts/seed-<seed>/` per member. The study service
imports these names from here; nothing here imports the study service.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankae.config import RunConfig

GROUP_SEEDS_KEY = "group_seeds"
MEMBERS_KEY = "members"
CHECKPOINT_EVERY_KEY = "checkpoint_every"
ARTIFACT_DIR = "artifacts"
STATE_FILE = "trainer.pt"
# the finished trials of a study as Tune's ResultGrid gives them: (config, final result or
# None, errored) per trial; what a plan's completion and the results table read
Completed = list[tuple[dict[str, Any], dict[str, Any] | None, bool]]


def trial_config(run: RunConfig, seeds: Sequence[int], checkpoint_every: int) -> dict[str, Any]:
    """What a trial receives: `run`, the run of the group's first seed, and the group."""
    if run.seed != seeds[0]:
        raise ValueError(
            f"a trial's run has the first seed of its group {list(seeds)}, not {run.seed}"
        )
    return {
        **run.to_dict(),
        CHECKPOINT_EVERY_KEY: checkpoint_every,
        GROUP_SEEDS_KEY: list(seeds),
    }


def member_seeds(config: dict[str, Any]) -> list[int]:
    return list(config[GROUP_SEEDS_KEY])


def member_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """One config per member: the trial's config with that member's seed, without the group."""
    single = {key: value for key, value in config.items() if key != GROUP_SEEDS_KEY}
    return [{**single, "seed": seed} for seed in member_seeds(config)]


def run_config_of(member: dict[str, Any]) -> RunConfig:
    """One member's config (`member_configs`) as its RunConfig, the contract's keys left out."""
    return RunConfig.from_dict({k: v for k, v in member.items() if k != CHECKPOINT_EVERY_KEY})


def member_run_configs(config: dict[str, Any]) -> list[RunConfig]:
    return [run_config_of(member) for member in member_configs(config)]


def trial_name(config: dict[str, Any], shown: Sequence[str] = ()) -> str:
    """`orthogonal-N16-a300-s0+1+2`: the trial's runs' label (`RunConfig.label`) with its seeds
    and the settings `shown`."""
    return member_run_configs(config)[0].label(member_seeds(config), shown)


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


def trial_result(latest: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What Tune sees: every member's metrics and their mean over the healthy members."""
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
        MEMBERS_KEY: latest,
    }
    if len(latest) > 1:  # a count the progress table shows for groups
        result["members_diverged"] = len(latest) - len(healthy)
    return result
