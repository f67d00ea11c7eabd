"""Fig. 2: MNIST, vanilla and standard init over depth N, judged downstream.

With PyTorch's default ("standard") init the rank the sub-network finds depends on N,
and the best N differs between classification and FID: the problem the paper fixes.

    python -m study.run mnist_depth_sweep  # GPU(s): 10 seeds x 6 configs
    python -m study.run mnist_depth_sweep --smoke  # CPU: ~1.5 min

MNIST from the data root.
"""

from search_spaces import Grid, depth_sweep, vanilla
from study.spec import StudySpec

from ._presets import MNIST_SEEDS, images

DEPTHS = (2, 4, 8, 16, 32)


PRESETS = ("full", "smoke")


def get_config(preset: str = "full") -> StudySpec:
    smoke = preset == "smoke"
    return StudySpec(
        name="mnist_depth_sweep",
        preset=preset,
        figure="Fig. 2",
        base=images("mnist", preset),
        plan=Grid(vanilla() + depth_sweep("standard", (2, 8) if smoke else DEPTHS)),
        seeds=(0,) if smoke else MNIST_SEEDS,
    )
