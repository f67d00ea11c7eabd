"""App. D, Fig. 7: CIFAR-10, orthogonal init + alpha + lr / N, two-stage training, alpha escalated.

For each N in {4, 8, 16, 32}: alpha = 1, 10, 50, 100, 200, ... (all seeds per rung) until a run
diverges (Sec. 3.2); each run trains the N-layer sub-network until W_e's rank is
unchanged for 5 epochs, then continues with an explicit bottleneck of that rank.
The paper finds behaviour alike for N > 8, improving with alpha up to ~100 and then
flat until divergence.

    python -m study.run cifar10_alpha_sweep  # GPU(s): 10 seeds per rung
    python -m study.run cifar10_alpha_sweep --smoke  # CPU: ~1.5 min

CIFAR-10 is downloaded by torchvision on first use.
"""

from search_spaces import AlphaEscalation
from study.spec import StudySpec

from ._presets import MNIST_SEEDS, images

DEPTHS = (4, 8, 16, 32)
LOW_RUNGS = (1.0, 10.0, 50.0)  # Fig. 3 rises with alpha up to ~100: rungs below it


PRESETS = ("full", "smoke")


def get_config(preset: str = "full") -> StudySpec:
    smoke = preset == "smoke"
    return StudySpec(
        name="cifar10_alpha_sweep",
        preset=preset,
        figure="App. D, Fig. 7",
        base=images("cifar10", preset, two_stage=True, init="orthogonal", init_scale=1.0),
        plan=AlphaEscalation(
            depths=(4, 16) if smoke else DEPTHS,
            start=100.0,
            step=100.0,
            max_alpha=100.0 if smoke else 1000.0,
            low_rungs=(50.0,) if smoke else LOW_RUNGS,
        ),
        seeds=(0,) if smoke else MNIST_SEEDS,
    )
