"""Fig. 1(d): the linear autoencoder with orthogonal init at N = 16 over alpha.

Larger alpha makes W_e learn faster (Sec. 2.4); App. A shows N = 16, alpha = 2. Too
large an alpha diverges, which the study records rather than crashes on.

    python -m study.run linear_alpha_sweep            # CPU: ~5 min on 2 cores
    python -m study.run linear_alpha_sweep --smoke    # CPU: ~1 min
"""

from search_spaces import Grid, alpha_sweep
from study.spec import StudySpec

from ._presets import linear

ALPHAS = (1.0, 2.0, 4.0, 8.0)


PRESETS = ("full", "smoke")


def get_config(preset: str = "full") -> StudySpec:
    smoke = preset == "smoke"
    return StudySpec(
        name="linear_alpha_sweep",
        preset=preset,
        figure="Fig. 1(d)",
        base=linear(preset),
        plan=Grid(alpha_sweep(16, ALPHAS[:2] if smoke else ALPHAS)),
        seeds=(0,) if smoke else (0, 1, 2),
        checkpoint_every=10,
    )
