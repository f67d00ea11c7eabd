"""A user's latent rank (`study.studies.rank_of`): the alpha escalation on their data, then
the check at the rank it found (explicit bottlenecks around it, and vanilla)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.load import run_row, tidy_trials
from analysis.rank_estimate import (
    RankAnswer,
    check_budget,
    check_variants,
    knee_table,
    per_depth_table,
    trials_answer,
    verdict,
)
from search_spaces import Variant
from trainables.contract import member_results, trial_runs

from .base import Outcome, Search, Suggestion, Trials
from .escalation import AlphaEscalation, EscalationSearch


@dataclass(frozen=True)
class RankEstimate(AlphaEscalation):
    """The alpha escalation per N, then the check, queued once every ladder has ended: the
    explicit bottleneck at k around the estimate and the vanilla autoencoder, every seed
    (`analysis.rank_estimate.check_variants`).
    """

    check_seeds: int | None = None  # the check trains the first this many seeds (None: all)

    def check_groups(self, groups: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
        """The seed groups of the check: `groups` holding only the first `check_seeds` seeds."""
        keep = {seed for group in groups for seed in group}
        keep = set(sorted(keep)[: self.check_seeds])
        kept = (tuple(seed for seed in group if seed in keep) for group in groups)
        return [group for group in kept if group]

    def all_variants(self) -> list[Variant]:
        """Every rung, and the check's runs at an estimate of 1 (one of each kind)."""
        return super().all_variants() + check_variants(1, 1)

    def largest_check(self) -> list[Variant]:
        """What the plan is priced with before the estimate is known: the check's runs for an
        estimate of 8 at d = 64 (22 widths) and vanilla, each explicit one at k = 1 so it is
        valid at any d (the autoencoder around the bottleneck costs the same at every k)."""
        check = check_variants(8, 64)
        return [{**v, "k": 1} if v["bottleneck"] == "explicit" else v for v in check]

    def runs(self, seeds: Sequence[int]) -> list[tuple[Variant, int]]:
        """Every rung up to the top, and the largest check."""
        check = self.largest_check()
        checked = seeds[: self.check_seeds]
        return super().runs(seeds) + [(variant, seed) for variant in check for seed in checked]

    def trial_count(self, seed_groups: int) -> int:
        """At most: a group of several seeds may hold both of the check's."""
        checked = min(seed_groups, self.check_seeds or seed_groups)
        return super().trial_count(seed_groups) + len(self.largest_check()) * checked

    def varied_keys(self) -> set[str]:
        return super().varied_keys() | {key for v in check_variants(4, 64) for key in v}

    def describe(self, seeds: int) -> list[str]:
        return super().describe(seeds) + [
            "then the check at the estimate r: explicit k = 1 ... 2r+4 and the powers of two "
            f"up to d, and vanilla, {min(seeds, self.check_seeds or seeds)} seeds each"
        ]

    def search(self, trials: Trials, storage_url: str | None, name: str) -> Search:
        return RankEstimateSearch(self, trials)

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        """The answer with its evidence: the ladder and ranks per N, then the knee."""
        answer = trials_answer(trials)
        metrics: dict[str, float] = {}
        for _, _, ladder_metrics in super().outcome(trials):
            metrics |= ladder_metrics
        if answer is not None:
            metrics |= {
                "rank_estimate": answer.rank,
                "rank_low": answer.low,
                "rank_high": answer.high,
                "rank_stable": float(answer.stable),
            }
        knee = knee_table(trials, answer)
        return [
            (f"latent-rank estimate: {verdict(trials)}", per_depth_table(trials), metrics),
            ("the check: explicit bottleneck d -> k -> d and vanilla", knee, {}),
        ]


class RankEstimateSearch(EscalationSearch):
    """The escalation, then, once every ladder has ended, the check at its estimate (found by
    the report's own rule, `analysis.rank_estimate.trials_answer`)."""

    plan: RankEstimate

    def __init__(self, plan: RankEstimate, trials: Trials) -> None:
        self.rows: list[dict[str, Any]] = []  # the ladder's runs so far (`run_row`)
        self.check_queued = False
        super().__init__(plan, trials)

    def after_trial(
        self, config: dict[str, Any], result: dict[str, Any] | None, error: bool
    ) -> None:
        runs = trial_runs(config)
        if runs[0].bottleneck != "linear_net":
            return  # the check's runs change nothing in the plan
        members = zip(runs, member_results(config, result), strict=True)
        self.rows += [run_row(run, metrics, error) for run, metrics in members]
        super().after_trial(config, result, error)

    def answer(self) -> RankAnswer | None:
        """The estimate from the ladder's runs so far."""
        return trials_answer(tidy_trials([dict(row) for row in self.rows])) if self.rows else None

    def suggest(self, trial_id: str) -> Suggestion:
        if not self.queue and not self.live and not self.check_queued:
            self.check_queued = True
            answer = self.answer()
            if answer is not None:
                self.queue.extend(self.check(answer.rank))
        return super().suggest(trial_id)

    def check(self, rank: int) -> list[dict[str, Any]]:
        """The check's trials at `rank`: its lr and epochs derived from the estimate's own
        settings (`check_budget`), so a `--set` of those carries over."""
        estimate = self.trials.run_config({}, self.trials.seeds[0])
        groups = self.plan.check_groups(self.trials.seed_groups)
        variants = check_variants(rank, estimate.latent_dim, check_budget(estimate))
        return [config for variant in variants for config in self.trials.per_group(variant, groups)]
