"""The paper's three image studies, parameterised by dataset (MNIST: Sec. 3; CIFAR-10: App. D).

Each named module (`mnist_depth_sweep`, `cifar10_explicit`, ...) is one of these with its
dataset bound, its own docstring giving the command and how long it takes. They read no
user's data (`data`, the argument every study's `get_config` takes, is None).
"""

from __future__ import annotations

from rankae.config import RunConfig
from search_spaces import alpha_sweep as orthogonal_over_alpha
from search_spaces import depth_sweep as standard_over_depth
from search_spaces import explicit_sweep, vanilla
from study.plans import AlphaEscalation, Grid, Plan, alpha_ladder
from study.prepare import StudyData
from study.spec import StudySpec

from ._presets import DESKTOP_SEEDS, LAPTOP_SEEDS, MNIST_SEEDS, images

FIGURES = {  # study kind -> dataset -> the figure it reproduces
    "depth_sweep": {"mnist": "Fig. 2", "cifar10": "App. D, Fig. 6"},
    "alpha_sweep": {"mnist": "Fig. 3", "cifar10": "App. D, Fig. 7"},
    "explicit": {
        "mnist": "Fig. 4 (explicit baseline)",
        "cifar10": "App. D, Fig. 8 (explicit baseline)",
    },
}
SEEDS = {"full": MNIST_SEEDS, "desktop": DESKTOP_SEEDS, "laptop": LAPTOP_SEEDS, "smoke": (0,)}
DEPTHS = {"full": (2, 4, 8, 16, 32), "smoke": (2, 8)}
KS = {
    "full": (2, 4, 8, 12, 16, 24, 32, 48, 64, 96),
    "desktop": (4, 8, 12, 16, 32),  # around the ~10 a full-data reference settled at
    "laptop": (2, 4, 8, 16, 32),  # brackets the ranks the laptop alpha sweep finds
    "smoke": (4, 16),
}
LADDERS = {  # preset -> (depths, the alphas each N climbs)
    # Fig. 3 rises with alpha up to ~100: rungs below it, then +100 until a divergence
    "full": ((4, 8, 16, 32), alpha_ladder(100.0, 100.0, 1000.0, below=(1.0, 10.0, 50.0))),
    # one N (the paper: alike for N > 8), one rung per decade: 6 runs, ~45 min on 2 cores
    "laptop": ((16,), (10.0, 100.0, 1000.0)),
    "smoke": ((4, 16), (50.0, 100.0)),
}
# desktop: a fixed grid at N = 16, alpha 300 first (where the full-data reference ran), not an
# escalation: on 2 cores an escalation's 3-seed rung leaves one of two trial slots idle, and
# the laptop tier saw no divergence up to alpha 1000
DESKTOP_ALPHAS = (300.0, 100.0, 1000.0)


def depth_sweep(dataset: str, preset: str = "full", data: StudyData | None = None) -> StudySpec:
    """Vanilla and standard (PyTorch default) init over depth N, judged downstream."""
    plan = Grid(vanilla() + standard_over_depth("standard", DEPTHS[preset]))
    return _spec("depth_sweep", dataset, preset, images(dataset, preset), plan)


def explicit(dataset: str, preset: str = "full", data: StudyData | None = None) -> StudySpec:
    """The explicit d -> k -> d bottleneck over k, plus vanilla."""
    plan = Grid(vanilla() + explicit_sweep(KS[preset]))
    return _spec("explicit", dataset, preset, images(dataset, preset), plan)


def alpha_sweep(dataset: str, preset: str = "full", data: StudyData | None = None) -> StudySpec:
    """Orthogonal init + alpha + lr / N, two-stage, alpha escalated per N (Sec. 3.2).

    desktop: single-stage on a fixed alpha grid (DESKTOP_ALPHAS); the switch a patience
    would have made is read from the logged W_e ranks afterwards, so no switch can freeze a
    growth plateau (docs/results.md: the laptop switch did, at epoch 19 of 20).
    """
    if preset == "desktop":
        plan: Plan = Grid(orthogonal_over_alpha(16, DESKTOP_ALPHAS))
        base = images(dataset, preset, init="orthogonal", init_scale=1.0)
        return _spec("alpha_sweep", dataset, preset, base, plan)
    depths, alphas = LADDERS[preset]
    plan = AlphaEscalation(depths, alphas)
    base = images(dataset, preset, two_stage=True, init="orthogonal", init_scale=1.0)
    return _spec("alpha_sweep", dataset, preset, base, plan)


def _spec(kind: str, dataset: str, preset: str, base: RunConfig, plan: Plan) -> StudySpec:
    name, figure = f"{dataset}_{kind}", FIGURES[kind][dataset]
    return StudySpec(name, figure, base, plan, seeds=SEEDS[preset], preset=preset)
