"""Sec. 3.2's alpha escalation: per N, a ladder of alphas climbed until a run diverges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.compare import escalation_summary
from rankae.config import ConfigError
from search_spaces import Variant
from trainables.contract import member_results, trial_runs

from .base import Outcome, QueueSearch, ReplayedPlan, Search, Trials


def alpha_ladder(
    start: float, step: float, top: float, below: Sequence[float] = ()
) -> tuple[float, ...]:
    """Sec. 3.2's ladder: the `below` alphas under `start` (Fig. 3's "performance improves
    with alpha and converges after ~100" needs alphas under 100), then start, start + step,
    ... up to `top`."""
    alphas, alpha = sorted(a for a in below if a < start), start
    while alpha <= top + 1e-9:
        alphas.append(alpha)
        alpha += step
    return tuple(alphas)


@dataclass(frozen=True)
class AlphaEscalation(ReplayedPlan):
    """Sec. 3.2: for each N, climb `alphas` until a run diverges.

    A rung (one N, one alpha) runs every seed; the next alpha starts only after the whole
    rung finished without a divergence. The ladder ends at the first diverging rung (its
    alpha is the divergence alpha; the one before is the largest stable alpha) or at its
    top: then no divergence alpha exists, only "no divergence up to" the top.
    """

    depths: Sequence[int]
    alphas: Sequence[float]  # the ladder, ascending (`alpha_ladder` builds Sec. 3.2's)
    variant: Variant = field(
        default_factory=lambda: {"bottleneck": "linear_net", "init": "orthogonal"}
    )
    at_most = True  # the ladder may stop at a divergence before its top
    max_concurrent = None  # one rung per N at a time already (`in_flight`)

    def __post_init__(self) -> None:
        alphas = list(self.alphas)
        if not alphas or alphas != sorted(set(alphas)) or alphas[0] <= 0:
            raise ConfigError(
                f"alphas={alphas!r} is not a ladder: it must be distinct positive values, ascending"
            )

    def ladder(self) -> list[float]:
        return [float(alpha) for alpha in self.alphas]

    def next_alpha(self, alpha: float) -> float | None:
        """The rung after `alpha`, or None at the top of the ladder."""
        return next((a for a in self.ladder() if a > alpha + 1e-9), None)

    def rung(self, depth: int, alpha: float) -> Variant:
        return {**self.variant, "depth": depth, "alpha": alpha}

    def all_variants(self) -> list[Variant]:
        """Every rung of the ladder."""
        return [self.rung(n, a) for n in self.depths for a in self.ladder()]

    def trial_count(self, seed_groups: int) -> int:
        """The most trials the ladder can take (every rung stable up to its top)."""
        return len(self.depths) * len(self.ladder()) * seed_groups

    def in_flight(self, runs: int, seeds: int) -> int:
        return len(self.depths) * seeds  # one rung per N at a time

    def varied_keys(self) -> set[str]:
        return {"depth", "alpha"}  # the search keys rungs on the trial's (N, alpha)

    def describe(self, seeds: int) -> list[str]:
        ladder = ", ".join(f"{a:g}" for a in self.ladder())
        return [
            f"alpha escalation per N in {list(self.depths)}: alpha = {ladder} "
            f"(all {seeds} seeds per rung; stop at the first divergence)"
        ]

    def search(self, trials: Trials, storage_url: str | None, name: str) -> Search:
        return EscalationSearch(self, trials)

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        """The ladder per N, and its largest stable and divergence alphas as metrics."""
        ladder = escalation_summary(trials)
        metrics: dict[str, float] = {}
        for row in ladder.itertuples():
            if row.largest_stable_alpha is not None:
                metrics[f"largest_stable_alpha_N{row.depth}"] = row.largest_stable_alpha
            if row.divergence_alpha is not None:
                metrics[f"divergence_alpha_N{row.depth}"] = row.divergence_alpha
        shown = ladder[["depth", "alphas_tried", "divergence", "largest_stable", "failed"]]
        return [("alpha escalation", shown, metrics)]


def trial_diverged(result: dict[str, Any] | None) -> bool:
    return bool(result and result.get("diverged"))


class EscalationSearch(QueueSearch):
    """Per depth N: run every seed at alpha; all stable -> the next rung; any diverged -> stop."""

    def __init__(self, plan: AlphaEscalation, trials: Trials) -> None:
        self.plan, self.trials = plan, trials
        # diverged per member (None: the trial failed)
        self.rung_outcomes: dict[tuple[int, float], list[bool | None]] = {}
        super().__init__([c for n in plan.depths for c in self.rung(n, plan.ladder()[0])])

    def rung(self, depth: int, alpha: float) -> list[dict[str, Any]]:
        return self.trials.per_group(self.plan.rung(depth, alpha))

    def after_trial(
        self, config: dict[str, Any], result: dict[str, Any] | None, error: bool
    ) -> None:
        run = trial_runs(config)[0]
        depth, alpha = run.depth, run.alpha
        outcomes = self.rung_outcomes.setdefault((depth, alpha), [])
        # an errored trial (after its retries) failed: it says nothing about alpha, so it is
        # recorded as failed (None), never as a divergence that would end the ladder
        outcomes.extend(
            None if error else trial_diverged(r) for r in member_results(config, result)
        )
        if len(outcomes) < len(self.trials.seeds) or any(outcomes):
            return  # the rung is still running, or it diverged: this N's ladder ends
        next_alpha = self.plan.next_alpha(alpha)
        if next_alpha is not None:
            self.queue.extend(self.rung(depth, next_alpha))
