"""What every plan kind answers to: the `Plan` and `Search` protocols, the `Trials` a search
makes its trials with, and a plan's completion judged by replaying its search.

A plan kind is one module of this folder holding the plan and its search (which trial comes
next, given the ones that finished). A search is plain Python: Ray Tune drives it through one
adapter (`study.adapters.tune_search`), so planning a study never imports Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from rankae.config import RunConfig
from search_spaces import Variant
from trainables.contract import Completed, trial_config

if TYPE_CHECKING:
    from collections.abc import Mapping

FINISHED = "FINISHED"  # what a search suggests once it has nothing left (Ray Tune's word too)
Suggestion = dict[str, Any] | str | None  # a trial's config, FINISHED, or None: wait for one
Outcome = tuple[str, pd.DataFrame, dict[str, float]]  # title, table, parent-run metrics


@dataclass(frozen=True)
class Trials:
    """How a study turns a variant into trials: all a search needs of the study.

    `values` are the study's base settings with the user's `--set` on top; a run is
    `values | variant | seed`, a trial is a run for a seed group (`trainables.contract`).
    """

    values: Mapping[str, Any]
    seed_groups: tuple[tuple[int, ...], ...]
    checkpoint_every: int = 1

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(seed for group in self.seed_groups for seed in group)

    def run_config(self, variant: Variant, seed: int) -> RunConfig:
        """values | variant | seed, validated."""
        return RunConfig.from_dict({**self.values, **variant, "seed": seed})

    def trial(self, variant: Variant, seeds: Sequence[int]) -> dict[str, Any]:
        """What a Ray trial receives: the run configs of `seeds`, trained side by side."""
        runs = [self.run_config(variant, seed) for seed in seeds]
        return trial_config(runs, self.checkpoint_every)

    def per_group(
        self, variant: Variant, groups: Sequence[Sequence[int]] | None = None
    ) -> list[dict[str, Any]]:
        """`variant`'s trials: one per seed group (`groups`, default every group)."""
        chosen = self.seed_groups if groups is None else groups
        return [self.trial(variant, seeds) for seeds in chosen]


class Search(Protocol):
    """Hands out a plan's trials one at a time and hears how each ended."""

    def suggest(self, trial_id: str) -> Suggestion: ...
    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None: ...


class Plan(Protocol):
    """What the study service asks of a plan, whatever its kind (this folder's, or one a
    study file defines): nothing else, and never which kind it is."""

    at_most: bool  # the plan may end before its last trial (the count is an upper bound)
    groups_seeds: bool  # a trial may train several seeds side by side
    max_concurrent: int | None  # a cap of the plan's own on trials at once

    def all_variants(self) -> list[Variant]: ...
    def runs(self, seeds: Sequence[int]) -> list[tuple[Variant, int]]: ...
    def trial_count(self, seed_groups: int) -> int: ...
    def in_flight(self, runs: int, seeds: int) -> int: ...
    def varied_keys(self) -> set[str]: ...
    def named_keys(self) -> tuple[str, ...]: ...
    def describe(self, seeds: int) -> list[str]: ...
    def search(self, trials: Trials, storage_url: str | None, name: str) -> Search: ...
    def tune_samples(self) -> int: ...
    def complete(self, trials: Trials, completed: Completed) -> bool: ...
    def outcome(self, trials: pd.DataFrame) -> list[Outcome]: ...


class QueueSearch:
    """Suggests queued trials in order; FINISHED once the queue is empty and nothing runs.
    Kinds whose next trials depend on outcomes add them in `after_trial`."""

    def __init__(self, queue: list[dict[str, Any]]) -> None:
        self.queue = list(queue)
        self.live: dict[str, dict[str, Any]] = {}

    def suggest(self, trial_id: str) -> Suggestion:
        if self.queue:
            config = self.queue.pop(0)
            self.live[trial_id] = config
            return config
        return None if self.live else FINISHED

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        config = self.live.pop(trial_id, None)
        if config is not None:
            self.after_trial(config, result, error)

    def after_trial(
        self, config: dict[str, Any], result: dict[str, Any] | None, error: bool
    ) -> None:
        """What a finished trial changes in the plan: nothing, for a fixed list."""


class ReplayedPlan:
    """What the grid and the escalation share: every run of every seed up to the plan's
    bound, a search that says itself when it is done, and completion judged by replaying
    that search over the finished trials. A kind built on it defines `all_variants` and
    `search`."""

    at_most = False
    groups_seeds = True  # a trial may train several seeds side by side

    def runs(self, seeds: Sequence[int]) -> list[tuple[Variant, int]]:
        """Every run the plan can make: (variant, seed)."""
        return [(variant, seed) for variant in self.all_variants() for seed in seeds]

    def tune_samples(self) -> int:
        return -1  # the search says when it is done

    def named_keys(self) -> tuple[str, ...]:
        """Settings beyond the label that trial and run names show: none (a ladder's rungs
        differ in N and alpha, which the label carries)."""
        return ()

    def complete(self, trials: Trials, completed: Completed) -> bool:
        return replay_complete(self.search(trials, None, "replay"), completed)

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        return []


def replay_complete(search: Search, completed: Completed) -> bool:
    """Replay a fresh search over the completed trials: every config it suggests must be
    among them until it answers FINISHED (so an escalation stopped between two rungs is not
    done). Works the same for local and remote (`s3://`) storage: it reads no file."""
    pool = list(completed)
    for step in range(len(pool) + 1):
        suggestion = search.suggest(f"replay-{step}")
        if suggestion == FINISHED:
            return True
        match = next((t for t in pool if t[0] == suggestion), None)
        if match is None:
            return False  # a trial the plan still has to run
        pool.remove(match)
        config, result, error = match
        search.on_trial_complete(f"replay-{step}", None if error else result, error)
    return False
