"""App. D, Fig. 6: CIFAR-10, vanilla and standard init over depth N, judged downstream.

With PyTorch's default ("standard") init the rank the sub-network finds depends on N,
and the best N differs between classification and FID: the problem the paper fixes.

    python -m study.run cifar10_depth_sweep  # GPU(s): 10 seeds x 6 configs
    python -m study.run cifar10_depth_sweep --smoke  # CPU: ~1.5 min

CIFAR-10 is downloaded by torchvision on first use.
"""

from search_spaces import Grid, depth_sweep, vanilla
from study.spec import StudySpec

from ._presets import MNIST_SEEDS, images

DEPTHS = (2, 4, 8, 16, 32)


PRESETS = ("full", "smoke")


def get_config(preset: str = "full") -> StudySpec:
    smoke = preset == "smoke"
    return StudySpec(
        name="cifar10_depth_sweep",
        preset=preset,
        figure="App. D, Fig. 6",
        base=images("cifar10", preset),
        plan=Grid(vanilla() + depth_sweep("standard", (2, 8) if smoke else DEPTHS)),
        seeds=(0,) if smoke else MNIST_SEEDS,
    )
