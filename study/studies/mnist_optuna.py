"""Beyond the paper: Optuna searches explicit k or orthogonal (N, alpha) on MNIST for the
best honestly selected low-label accuracy (validation-selected, never test-selected).

    python -m study.run mnist_optuna  # GPU(s): 40 trials
    python -m study.run mnist_optuna --smoke              # CPU: ~1.5 min
"""

from study.plans import OptunaSpace
from study.spec import StudySpec

from ._presets import images

SAMPLES = {"full": 40, "smoke": 3}
PRESETS = tuple(SAMPLES)
FIGURE = "beyond the paper (Fig. 4's question, answered by search)"


def get_config(preset: str = "full") -> StudySpec:
    base = images("mnist", preset, two_stage=False)
    plan = OptunaSpace(metric="acc_selected", mode="max", num_samples=SAMPLES[preset])
    return StudySpec("mnist_optuna", FIGURE, base, plan, seeds=(0,), preset=preset)
