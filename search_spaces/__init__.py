"""The paper's search spaces as data: variants over N, alpha, init scheme and explicit k.

A variant is a dict of `RunConfig` overrides. A study's plan (`study.plans`) runs a list
of them once per seed, or builds its own (an alpha ladder, Optuna's samples); seeds are
added last, then the user's `--set` overrides, so every trial config is
`base | variant | seed | overrides`.
"""

from __future__ import annotations

from collections.abc import Iterable
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
