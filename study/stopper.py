"""Stop a diverging trial instead of letting it crash or burn compute.

A trial stopped here ends TERMINATED in Ray (not ERROR); it is recorded as diverged through
its `diverged` metric (set by the engine with the same criterion, `rankae.records.is_diverged`)
and the MLflow tag the tracking callback sets from it.
"""

from __future__ import annotations

from typing import Any

from ray import tune

from rankae.records import is_diverged

from .members import MEMBERS_KEY


class DivergenceStopper(tune.Stopper):
    """NaN/inf loss, or loss above `factor` times the trial's first reported loss."""

    def __init__(self, factor: float = 1e3) -> None:
        self.factor = factor
        self.first_loss: dict[str, float] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if "loss" not in result:
            return False
        if MEMBERS_KEY in result:  # a vectorised group: members judge their own divergence
            return bool(result.get("diverged"))
        loss = float(result["loss"])
        first = self.first_loss.setdefault(trial_id, loss)
        return bool(result.get("diverged")) or is_diverged(loss, first, self.factor)

    def stop_all(self) -> bool:
        return False
