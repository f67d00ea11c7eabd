"""Fig. 4 baseline: MNIST, the explicit d -> k -> d bottleneck over k, plus vanilla.

The explicit bottleneck caps the latent rank at k; sweeping k with downstream tasks finds
the best rank by supervision. The implicit method should land in that optimal range.

    python -m study.run mnist_explicit                  # GPU(s): 10 seeds x 11 configs
    python -m study.run mnist_explicit --preset laptop  # CPU: 2 x 6 runs, ~1 h (67 min measured)
    python -m study.run mnist_explicit --smoke          # CPU: ~1 min (measured 73 s)

MNIST from the data root.
"""

from search_spaces import Grid, explicit_sweep, vanilla
from study.spec import StudySpec

from ._presets import LAPTOP_SEEDS, MNIST_SEEDS, images

PRESETS = ("full", "laptop", "smoke")
KS = {
    "full": (2, 4, 8, 12, 16, 24, 32, 48, 64, 96),
    "laptop": (2, 4, 8, 16, 32),  # brackets the ranks the laptop alpha sweep finds
    "smoke": (4, 16),
}
SEEDS = {"full": MNIST_SEEDS, "laptop": LAPTOP_SEEDS, "smoke": (0,)}


def get_config(preset: str = "full") -> StudySpec:
    return StudySpec(
        name="mnist_explicit",
        preset=preset,
        figure="Fig. 4 (explicit baseline)",
        base=images("mnist", preset),
        plan=Grid(vanilla() + explicit_sweep(KS[preset])),
        seeds=SEEDS[preset],
    )
