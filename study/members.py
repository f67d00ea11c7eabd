"""A trial is one run, or a vectorised group of runs that differ only in seed.

A group's trial config is a run config (with its first seed) plus `group_seeds`; the
trainable trains the seeds side by side (`rankae.vectorized`) and reports each member's
metrics under `members[<seed>]`. These helpers split configs and results into members, so
MLflow, the results table and the searchers see one run per seed either way.
"""

from __future__ import annotations

from typing import Any

GROUP_SEEDS_KEY = "group_seeds"
MEMBERS_KEY = "members"


def method_of(config: dict[str, Any]) -> str:
    """The method a run config stands for: its init for the sub-network, else the bottleneck."""
    return config["init"] if config["bottleneck"] == "linear_net" else config["bottleneck"]


def member_seeds(config: dict[str, Any]) -> list[int]:
    return list(config.get(GROUP_SEEDS_KEY) or [config["seed"]])


def member_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """One trial config per member: the group's config with that member's seed."""
    single = {key: value for key, value in config.items() if key != GROUP_SEEDS_KEY}
    return [{**single, "seed": seed} for seed in member_seeds(config)]


def member_results(
    config: dict[str, Any], result: dict[str, Any] | None
) -> list[dict[str, Any] | None]:
    """Each member's latest metrics (config order); a single run's result is its own.

    Takes a result as reported, or as Tune hands it to searchers: flattened, with the
    members' metrics under keys `members/<seed>/<metric>`.
    """
    if GROUP_SEEDS_KEY not in config:
        return [result]
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
