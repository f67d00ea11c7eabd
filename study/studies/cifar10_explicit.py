"""App. D, Fig. 8 baseline: CIFAR-10, the explicit d -> k -> d bottleneck over k, plus vanilla.

The explicit bottleneck caps the latent rank at k; sweeping k with downstream tasks finds
the best rank by supervision. The implicit method should land in that optimal range.

    python -m study.run cifar10_explicit  # GPU(s): 10 seeds x 11 configs
    python -m study.run cifar10_explicit --smoke  # CPU: ~1.5 min

CIFAR-10 is downloaded by torchvision on first use.
"""

from search_spaces import Grid, explicit_sweep, vanilla
from study.spec import StudySpec

from ._presets import MNIST_SEEDS, images

KS = (2, 4, 8, 12, 16, 24, 32, 48, 64, 96)


PRESETS = ("full", "smoke")


def get_config(preset: str = "full") -> StudySpec:
    smoke = preset == "smoke"
    return StudySpec(
        name="cifar10_explicit",
        preset=preset,
        figure="App. D, Fig. 8 (explicit baseline)",
        base=images("cifar10", preset),
        plan=Grid(vanilla() + explicit_sweep((4, 16) if smoke else KS)),
        seeds=(0,) if smoke else MNIST_SEEDS,
    )
