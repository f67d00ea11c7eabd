"""Ray Tune searchers that hand out a study's trials.

`PlanSearcher` serves a fixed list (a grid: every variant for every seed). Its subclass
`AlphaEscalationSearcher` grows the list as rungs finish (Sec. 3.2: for each N, alpha +=
step until a run diverges). Both save and restore their state, so `Tuner.restore`
(`--resume`) continues the plan instead of starting it again.
"""

from __future__ import annotations

import pickle
from typing import Any

from ray.tune.search import Searcher

from search_spaces import AlphaEscalation

from .members import member_results
from .spec import StudySpec


class PlanSearcher(Searcher):
    """Suggests queued configs in order; FINISHED once the queue is empty and nothing runs."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__(metric="loss", mode="min")
        self.queue = list(configs)
        self.live: dict[str, dict[str, Any]] = {}
        self.finished: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = []

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.queue:
            config = self.queue.pop(0)
            self.live[trial_id] = config
            return config
        return None if self.live else Searcher.FINISHED

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        config = self.live.pop(trial_id, None)
        if config is None:
            return
        self.finished.append((config, result, error))
        self.after_trial(config, result, error)

    def after_trial(self, config: dict[str, Any], result: dict[str, Any] | None, error: bool):
        """Hook for plans that depend on outcomes."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def trial_diverged(result: dict[str, Any] | None) -> bool:
    return bool(result and result.get("diverged"))


class AlphaEscalationSearcher(PlanSearcher):
    """Per depth N: run every seed at alpha; all stable -> alpha + step; any diverged -> stop."""

    def __init__(self, spec: StudySpec) -> None:
        plan = spec.plan
        assert isinstance(plan, AlphaEscalation)
        self.spec, self.plan = spec, plan
        # per depth: alphas whose rung finished stable, and the divergence alpha (if any)
        self.stable: dict[int, list[float]] = {n: [] for n in plan.depths}
        self.diverged_at: dict[int, float | None] = {n: None for n in plan.depths}
        self.rung_outcomes: dict[tuple[int, float], list[bool]] = {}
        super().__init__([c for n in plan.depths for c in self._rung(n, plan.start)])

    def _rung(self, depth: int, alpha: float) -> list[dict[str, Any]]:
        rung = self.plan.rung(depth, alpha)
        return [self.spec.trial_config(rung, seeds) for seeds in self.spec.seed_groups()]

    def after_trial(self, config: dict[str, Any], result: dict[str, Any] | None, error: bool):
        depth, alpha = config["depth"], config["alpha"]
        outcomes = self.rung_outcomes.setdefault((depth, alpha), [])
        outcomes.extend(error or trial_diverged(r) for r in member_results(config, result))
        if len(outcomes) < len(self.spec.seeds):
            return
        if any(outcomes):
            self.diverged_at[depth] = alpha
            return
        self.stable[depth].append(alpha)
        next_alpha = alpha + self.plan.step
        if next_alpha <= self.plan.max_alpha + 1e-9:
            self.queue.extend(self._rung(depth, next_alpha))
