"""A study of one's own, outside the package: does W_e's starting scale c change the rank
the linear autoencoder finds (App. B starts it at c = 1e-3)?

The same shape as the named studies in `study/studies/`: `PRESETS` and
`get_config(preset, data=None) -> StudySpec`, whose name is this file's name (`data`, a
user's `--data`, is None: this study reads none).

    python -m study.run examples/init_scale.py --dry-run   # the plan and its cost
    python -m study.run examples/init_scale.py --smoke     # CPU: ~1 min
    python -m study.run examples/init_scale.py             # CPU: ~7 min on 2 cores (estimate)
    python -m analysis.report init_scale                   # its report
"""

from rankae.config import linear_synthetic
from study.plans import Grid
from study.prepare import StudyData
from study.spec import StudySpec

SCALES = {"full": (1e-3, 1e-2, 1e-1, 1.0), "smoke": (1e-3, 1.0)}
PRESETS = tuple(SCALES)


def get_config(preset: str = "full", data: StudyData | None = None) -> StudySpec:
    smoke = preset == "smoke"
    sub_network = {"bottleneck": "linear_net", "init": "orthogonal", "depth": 16, "alpha": 2.0}
    return StudySpec(
        name="init_scale",
        figure="W_e's init scale (App. B's c)",
        base=linear_synthetic(epochs=20 if smoke else 100),  # x 100 full-batch steps
        plan=Grid([{**sub_network, "init_scale": c} for c in SCALES[preset]]),
        seeds=(0,) if smoke else (0, 1, 2),
        preset=preset,
        checkpoint_every=10,
    )
