"""Beyond the paper: Optuna searches explicit k or orthogonal (N, alpha) on MNIST for the
best low-label accuracy on *validation* labels (the classifier's held-out split, at its
validation-chosen epoch); the chosen configuration is then re-trained on fresh seeds, and
their test accuracy is the search's result. No test number reaches the sampler.

    python -m study.run mnist_optuna  # GPU(s): 40 trials + 3 confirmation runs
    python -m study.run mnist_optuna --smoke              # CPU: ~2 min (3 trials + 1)
"""

from study.plans import OptunaSpace
from study.prepare import StudyData
from study.spec import StudySpec

from ._presets import images

SAMPLES = {"full": 40, "smoke": 3}
CONFIRM_RUNS = {"full": 3, "smoke": 1}
PRESETS = tuple(SAMPLES)
FIGURE = "beyond the paper (Fig. 4's question, answered by search)"


def get_config(preset: str = "full", data: StudyData | None = None) -> StudySpec:
    base = images("mnist", preset, two_stage=False)
    plan = OptunaSpace(
        metric="val_acc_selected",
        mode="max",
        num_samples=SAMPLES[preset],
        confirm_runs=CONFIRM_RUNS[preset],
    )
    return StudySpec("mnist_optuna", FIGURE, base, plan, seeds=(0,), preset=preset)
