"""Named search spaces over N, alpha, init scheme, explicit k and seeds.

A space is a plan of trials, not a Ray object: `Grid` (a fixed list of variants, each run
once per seed), `AlphaEscalation` (Sec. 3.2: per N, alpha = start, start + step, ... until a
run diverges) or `OptunaSpace` (k / N / alpha searched for the best downstream metric).
The study service turns a plan into a Ray Tune searcher (`study.searchers`).

A variant is a dict of `RunConfig` overrides; seeds are added last, then the user's
`--set` overrides, so every trial config is `base | variant | seed | overrides`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Variant = dict[str, Any]


def vanilla() -> list[Variant]:
    """The autoencoder without a sub-network: latent codes stay full rank (Fig. 1(a))."""
    return [{"bottleneck": "vanilla"}]


def depth_sweep(init: str, depths: Iterable[int], alpha: float = 1.0) -> list[Variant]:
    """The N-layer sub-network with one init scheme over several depths (Figs. 1(b)(c), 2)."""
    return [{"bottleneck": "linear_net", "init": init, "depth": n, "alpha": alpha} for n in depths]


def alpha_sweep(depth: int, alphas: Iterable[float], init: str = "orthogonal") -> list[Variant]:
    """Orthogonal init at one depth over several alpha (Fig. 1(d))."""
    return [{"bottleneck": "linear_net", "init": init, "depth": depth, "alpha": a} for a in alphas]


def explicit_sweep(ks: Iterable[int]) -> list[Variant]:
    """The explicit d -> k -> d baseline over shared dimensions k (Fig. 4)."""
    return [{"bottleneck": "explicit", "k": k} for k in ks]


@dataclass(frozen=True)
class Grid:
    """Every variant, once per seed."""

    variants: Sequence[Variant]
    kind: str = "grid"

    def trial_count(self, n_seeds: int) -> int:
        return len(self.variants) * n_seeds


@dataclass(frozen=True)
class AlphaEscalation:
    """Sec. 3.2: for each N, alpha = start, start + step, ... until a run diverges.

    `low_rungs` (below `start`) come first: Fig. 3's finding "performance improves with
    alpha and converges after ~100" needs alphas under 100. A rung (one N, one alpha) runs
    every seed; the next alpha starts only after the whole rung finished without a
    divergence. The ladder ends at the first diverging rung (its alpha is the divergence
    alpha; the one before is the largest stable alpha) or at `max_alpha`: then no
    divergence alpha exists, only "no divergence up to max_alpha".
    """

    depths: Sequence[int]
    start: float = 100.0
    step: float = 100.0
    max_alpha: float = 1000.0
    low_rungs: tuple[float, ...] = ()
    variant: Variant = field(
        default_factory=lambda: {"bottleneck": "linear_net", "init": "orthogonal"}
    )
    kind: str = "escalation"

    def ladder(self) -> list[float]:
        alphas, alpha = sorted(a for a in self.low_rungs if a < self.start), self.start
        while alpha <= self.max_alpha + 1e-9:
            alphas.append(alpha)
            alpha += self.step
        return alphas

    def next_alpha(self, alpha: float) -> float | None:
        """The rung after `alpha`, or None at the top of the ladder."""
        return next((a for a in self.ladder() if a > alpha + 1e-9), None)

    def rung(self, depth: int, alpha: float) -> Variant:
        return {**self.variant, "depth": depth, "alpha": alpha}

    def trial_count(self, n_seeds: int) -> int:
        """The most trials the ladder can take (every rung stable up to max_alpha)."""
        return len(self.depths) * len(self.ladder()) * n_seeds


@dataclass(frozen=True)
class OptunaSpace:
    """Optuna over the bottleneck (explicit k, or orthogonal N and alpha) for a downstream metric.

    `ranges` maps a config key to (low, high) for a number or a tuple of choices for a
    category; `conditional` keys are sampled only when `bottleneck` takes that value.
    """

    metric: str = "acc_selected"
    mode: str = "max"
    num_samples: int = 40
    bottlenecks: tuple[str, ...] = ("explicit", "linear_net")
    conditional: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "explicit": {"k": (2, 128)},
            "linear_net": {"depth": (2, 32), "alpha": (1.0, 500.0)},
        }
    )
    fixed: Variant = field(default_factory=lambda: {"init": "orthogonal"})
    kind: str = "optuna"

    def trial_count(self, n_seeds: int) -> int:
        return self.num_samples

    def define_by_run(self, trial: Any) -> Variant:
        """Optuna define-by-run function: sample a bottleneck, then its own parameters."""
        choice = trial.suggest_categorical("bottleneck", list(self.bottlenecks))
        out: Variant = {**self.fixed, "bottleneck": choice}
        for key, bounds in self.conditional.get(choice, {}).items():
            low, high = bounds
            if isinstance(low, int) and isinstance(high, int):
                out[key] = trial.suggest_int(key, low, high, log=True)
            else:
                out[key] = trial.suggest_float(key, low, high, log=True)
        return out


Plan = Grid | AlphaEscalation | OptunaSpace
