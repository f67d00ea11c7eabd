"""Fig. 1(a)-(c): the linear autoencoder on synthetic rank-8 data, over sub-network depth N.

Vanilla; standard init (PyTorch's default) with N = 4 ... 32; orthogonal init with
alpha = 2 (App. A) and lr / N over the same N. The paper finds: vanilla codes stay high
rank; standard init keeps a high-rank W_e at N = 4 and nearly stalls for N >= 24;
orthogonal init converges to rank 8 almost independently of N.

    python -m study.run linear_depth_sweep            # CPU: ~6 min per seed on 2 cores
    python -m study.run linear_depth_sweep --smoke    # CPU: ~1 min
"""

from search_spaces import depth_sweep, vanilla
from study.plans import Grid
from study.prepare import StudyData
from study.spec import StudySpec

from ._presets import linear

DEPTHS = (4, 8, 12, 16, 20, 24, 28, 32)
SMOKE_DEPTHS = (4, 16)


PRESETS = ("full", "smoke")


def get_config(preset: str = "full", data: StudyData | None = None) -> StudySpec:
    smoke = preset == "smoke"
    depths = SMOKE_DEPTHS if smoke else DEPTHS
    return StudySpec(
        name="linear_depth_sweep",
        preset=preset,
        figure="Fig. 1(a)-(c)",
        base=linear(preset),
        plan=Grid(
            vanilla()
            + depth_sweep("standard", depths)
            + depth_sweep("orthogonal", depths, alpha=2.0)
        ),
        seeds=(0,) if smoke else (0, 1, 2),
        checkpoint_every=10,
    )
