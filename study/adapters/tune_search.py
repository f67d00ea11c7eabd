"""A plan's search as Ray Tune's `Searcher`: the one place Tune meets a plan.

Tune asks for the next trial and reports each finished one; the plan's search
(`study.plans`) answers. Tune saves and restores searchers with the experiment, so
`Tuner.restore` (`--resume`) continues the plan, and an Optuna search's history, instead of
starting again: the search is pickled whole.
"""

from __future__ import annotations

import pickle
from typing import Any

from ray.tune.search import Searcher

from study.plans.base import FINISHED, Search, Suggestion


class TuneSearch(Searcher):
    """Hands Tune the trials a plan's search suggests; declares no metric, so Tune demands
    none in the per-epoch results (a plan that judges trials reads their final result)."""

    def __init__(self, search: Search) -> None:
        super().__init__(metric=None, mode=None)
        self.search = search

    def suggest(self, trial_id: str) -> Suggestion:
        suggestion = self.search.suggest(trial_id)
        return Searcher.FINISHED if suggestion == FINISHED else suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Per-epoch results change no plan."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.search.on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.search, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.search = pickle.load(f)
