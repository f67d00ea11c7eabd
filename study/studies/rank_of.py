"""What latent rank does my data have? The paper's method as an estimator on a user's data.

    python -m study.run rank_of --data x.npy [--labels y.npy]  # laptop tier (the default)
    python -m study.run rank_of --data x.npy --smoke           # ~1 min: the code path only
    python -m study.run rank_of --data x.npy --preset full     # more depths, seeds, epochs
    python -m study.run rank_of --data images/ --dry-run       # the plan and its cost here

The laptop tier takes ~2-3 min on 2 cores for 3,000 vectors of 64 features
(docs/benchmarks.md; docs/results.md has each benchmark dataset's time); `--dry-run` prices
yours.

`--data` is a `.npy`/`.npz` file, an image folder or `torchvision:NAME`
(`rankae.userdata`). Vectors go through the MLP autoencoder, 1- and 3-channel images
through the paper's MNIST and CIFAR-10 conv autoencoders. Per depth N, alpha climbs its
ladder (every seed per rung, each seed on its own bootstrap resample of the training split)
until a run diverges (Sec. 3.2); each run stops once its W_e rank has settled
(`rankae.settle`, else at its epochs, and the answer says "not converged"). The runs at each
N's largest stable alpha give the estimate, how often each rank occurred and a verdict
(`analysis.rank_estimate`). Then the check: explicit bottlenecks at k = 1 ... 2r + 4 and
the powers of two up to d, and vanilla, on the held-out loss (and accuracy on the codes,
with labels). The settings, plan and rule are the ones `analysis.latent_rank.LatentRank`
applies in a notebook without Ray (`run_settings` there holds the constants below).

Measured choices (docs/results.md, "Estimating the latent rank of a user's data"; chosen on
`tools.example_data`'s equal-strength linear sets, never on the benchmark's datasets):
- vectors: d = min(D, 128), so the answer is not capped by the code width; W_e starts at
  0.15 x orthogonal (`VECTOR_INIT_SCALE`): on the 3,000 x 32 rank-8 set, 0.05 left seeds
  at 6-7 for hundreds of epochs (greedy learning's plateaus grow) and its 6s looked settled,
  0.3 and 1.0 let W_e keep noise directions (ranks 9-13) and never settle, 0.15 settled at
  8 for every seed within 52-92 epochs;
- vectors: one alpha, 300, no ladder: on standardised vectors no rung up to 300 ever
  diverged (the loss is bounded), so the lower rungs only cost time, and at 1000 an N = 16
  net on rank-4 vectors dropped a learned direction for 2 of 4 seeds;
- single-stage training, stopped when settled: greedy learning can sit a rank short for
  100+ epochs before the last direction appears, so a two-stage switch after any patience
  that fits the budget would freeze that plateau.
"""

from __future__ import annotations

from dataclasses import replace

from analysis.latent_rank import DEPTHS, LADDERS, SEEDS, run_settings
from analysis.rank_estimate import CHECK_SEEDS
from study.plans import RankEstimate
from study.prepare import StudyData
from study.spec import StudySpec

PRESETS = ("laptop", "full", "smoke")
DEFAULT_PRESET = "laptop"  # the default budget finishes on a laptop; --preset full for more
REFERENCE_SHAPE = ("vectors", 2000, 32)  # what `--list` prices without --data


def get_config(preset: str = DEFAULT_PRESET, data: StudyData | None = None) -> StudySpec:
    """The estimate's plan for the user's data (`--data`, read once by `study.prepare`: the
    config takes its shape, and its trials load the prepared file); without data, priced on
    `REFERENCE_SHAPE` for `--list`."""
    if data is None:
        kind, n, width = REFERENCE_SHAPE
        path, labelled = "YOUR_DATA.npy", False
    else:
        kind, n, width, path, labelled = data.kind, data.n, data.width, data.path, data.labelled
    base = run_settings(kind, n, width, labelled, preset).replace(data_path=path)
    plan = RankEstimate(DEPTHS[kind][preset], LADDERS[kind][preset], check_seeds=CHECK_SEEDS)
    spec = StudySpec(
        "rank_of", "a user's data: its latent rank", base.validate(), plan, SEEDS[kind][preset]
    )
    return replace(spec, preset=preset, checkpoint_every=10)
