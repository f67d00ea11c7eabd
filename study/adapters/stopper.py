"""Stop a diverging trial instead of letting it crash or burn compute.

The engine decides divergence (`rankae.records.is_diverged`, with the run's own
`divergence_factor` and `divergence_steps`, its state checkpointed with the model), and
every result carries the verdict as `diverged`; for a vectorised group it is set once every
member has diverged. The stopper only reads that flag, so it holds nothing that a
`--resume` could lose and cannot disagree with the engine or with `--set`. A trial stopped
here ends TERMINATED in Ray (not ERROR); the tracking callback tags its run diverged.
"""

from __future__ import annotations

from typing import Any

from ray import tune


class DivergenceStopper(tune.Stopper):
    """Stop the trial whose latest result says `diverged`."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(result.get("diverged"))

    def stop_all(self) -> bool:
        return False
