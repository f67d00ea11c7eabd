"""Fig. 3: MNIST, orthogonal init + alpha + lr / N, two-stage training, alpha escalated.

For each N: alpha climbs a ladder (all seeds per rung) until a run diverges (Sec. 3.2);
each run trains the N-layer sub-network until W_e's rank is unchanged for
`patience_steps`, then continues with an explicit bottleneck of that rank. The paper
finds behaviour alike for N > 8, improving with alpha up to ~100 and then flat until
divergence.

    python -m study.run mnist_alpha_sweep                  # GPU(s): see LADDERS, 10 seeds
    python -m study.run mnist_alpha_sweep --preset laptop  # CPU: ~45 min on 2 cores (46 measured)
    python -m study.run mnist_alpha_sweep --smoke          # CPU: ~1 min (measured 69 s)

MNIST from the data root.
"""

from search_spaces import AlphaEscalation
from study.spec import StudySpec

from ._presets import LAPTOP_SEEDS, MNIST_SEEDS, images

PRESETS = ("full", "laptop", "smoke")
DEPTHS = (4, 8, 16, 32)
LOW_RUNGS = (1.0, 10.0, 50.0)  # Fig. 3 rises with alpha up to ~100: rungs below it
LADDERS = {  # preset -> depths, low rungs, start, step, max alpha
    "full": (DEPTHS, LOW_RUNGS, 100.0, 100.0, 1000.0),
    # one N (the paper: alike for N > 8), one rung per decade: 6 runs, ~45 min on 2 cores
    "laptop": ((16,), (10.0,), 100.0, 900.0, 1000.0),
    "smoke": ((4, 16), (50.0,), 100.0, 100.0, 100.0),
}
SEEDS = {"full": MNIST_SEEDS, "laptop": LAPTOP_SEEDS, "smoke": (0,)}


def get_config(preset: str = "full") -> StudySpec:
    depths, low_rungs, start, step, max_alpha = LADDERS[preset]
    return StudySpec(
        name="mnist_alpha_sweep",
        preset=preset,
        figure="Fig. 3",
        base=images("mnist", preset, two_stage=True, init="orthogonal", init_scale=1.0),
        plan=AlphaEscalation(
            depths=depths, start=start, step=step, max_alpha=max_alpha, low_rungs=low_rungs
        ),
        seeds=SEEDS[preset],
    )
