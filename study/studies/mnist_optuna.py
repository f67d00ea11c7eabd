"""Beyond the paper: Optuna searches explicit k or orthogonal (N, alpha) on MNIST for the
best honestly selected low-label accuracy (validation-selected, never test-selected).

    python -m study.run mnist_optuna  # GPU(s): 40 trials
    python -m study.run mnist_optuna --smoke              # CPU: ~1.5 min
"""

from search_spaces import OptunaSpace
from study.spec import StudySpec

from ._presets import images

PRESETS = ("full", "smoke")


def get_config(preset: str = "full") -> StudySpec:
    smoke = preset == "smoke"
    return StudySpec(
        name="mnist_optuna",
        preset=preset,
        figure="beyond the paper (Fig. 4's question, answered by search)",
        base=images("mnist", preset, two_stage=False),
        plan=OptunaSpace(metric="acc_selected", mode="max", num_samples=3 if smoke else 40),
        seeds=(0,),
    )
