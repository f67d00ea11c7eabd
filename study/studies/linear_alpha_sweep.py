"""Fig. 1(d): the linear autoencoder with orthogonal init at N = 16 over alpha.

Larger alpha makes W_e learn faster (Sec. 2.4); App. A shows N = 16, alpha = 2. Too
large an alpha diverges, which the study records rather than crashes on.

    python -m study.run linear_alpha_sweep            # CPU: ~5 min on 2 cores
    python -m study.run linear_alpha_sweep --smoke    # CPU: ~1 min
"""

from dataclasses import replace

from search_spaces import alpha_sweep
from study.plans import Grid
from study.prepare import StudyData
from study.spec import StudySpec

from ._presets import linear

ALPHAS = {"full": (1.0, 2.0, 4.0, 8.0), "smoke": (1.0, 2.0)}
SEEDS = {"full": (0, 1, 2), "smoke": (0,)}
PRESETS = tuple(ALPHAS)


def get_config(preset: str = "full", data: StudyData | None = None) -> StudySpec:
    plan = Grid(alpha_sweep(16, ALPHAS[preset]))
    spec = StudySpec("linear_alpha_sweep", "Fig. 1(d)", linear(preset), plan, SEEDS[preset])
    return replace(spec, preset=preset, checkpoint_every=10)
