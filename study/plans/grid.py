"""The grid: a fixed list of variants, every one run once per seed, handed out in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rankae.config import RunConfig
from search_spaces import Variant

from .base import QueueSearch, ReplayedPlan, Search, Trials


@dataclass(frozen=True)
class Grid(ReplayedPlan):
    """Every variant, once per seed."""

    max_concurrent = None  # no cap of its own: as many trials as the resources allow
    variants: Sequence[Variant]

    def all_variants(self) -> list[Variant]:
        return list(self.variants)

    def trial_count(self, seed_groups: int) -> int:
        return len(self.variants) * seed_groups

    def in_flight(self, runs: int, seeds: int) -> int:
        return runs

    def varied_keys(self) -> set[str]:
        keys = {key for variant in self.variants for key in variant}
        return {k for k in keys if len({repr(v.get(k)) for v in self.variants if k in v}) > 1}

    def named_keys(self) -> tuple[str, ...]:
        """The settings the grid varies that the label does not carry (a `--grid lr=...`):
        trial and run names show them, so no two variants share a name."""
        return tuple(sorted(self.varied_keys() - set(RunConfig.LABELLED)))

    def describe(self, seeds: int) -> list[str]:
        return [f"grid: {len(self.variants)} configs x {seeds} seeds"] + [
            f"  {variant}" for variant in self.variants
        ]

    def search(self, trials: Trials, storage_url: str | None, name: str) -> Search:
        return QueueSearch([config for v in self.variants for config in trials.per_group(v)])
