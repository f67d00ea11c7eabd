"""What latent rank does my data have? The paper's method as an estimator on a user's data.

    python -m study.run rank_of --data x.npy [--labels y.npy]  # laptop tier (the default)
    python -m study.run rank_of --data x.npy --smoke           # ~1 min: the code path only
    python -m study.run rank_of --data x.npy --preset full     # more depths, seeds, epochs
    python -m study.run rank_of --data images/ --dry-run       # the plan and its cost here

The laptop tier takes ~6 min on 2 cores for 2,000 vectors (docs/results.md has the wall
times measured on each dataset there); `--dry-run` prices yours.

`--data` is a `.npy`/`.npz` file, an image folder or `torchvision:NAME`
(`rankae.userdata`). Vectors go through the MLP autoencoder, 1- and 3-channel images
through the paper's MNIST and CIFAR-10 conv autoencoders. Per depth N, alpha climbs a short
ladder (every seed per rung) until a run diverges (Sec. 3.2); the runs at each N's largest
stable alpha give the estimate, its spread and a verdict (`analysis.rank_estimate`). Then
the check: explicit bottlenecks at k around the estimate and the vanilla autoencoder, so
the report shows the reconstruction loss's knee (and accuracy on the codes, with labels).

Measured choices (docs/results.md, "Estimating the latent rank of a user's data"):
- vectors start W_e at 0.05 x orthogonal (`VECTOR_INIT_SCALE`): from 1.0 the MLP's codes
  keep one direction too many;
- the ladder stops at alpha 300: at 1000 an N = 16 net on rank-4 vectors dropped a learned
  direction for 2 of 4 seeds (the loss is bounded, so nothing diverges);
- single-stage training: greedy learning can sit a rank short for 100+ epochs before the
  last direction appears (N = 16), so a two-stage switch after any patience that fits the
  budget would freeze that plateau; at alpha <= 300 the rank did not creep past the data's
  over 200 epochs, which is what the switch guards against.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rankae.config import CONV_CHANNELS, RunConfig
from rankae.userdata import TORCHVISION_PREFIX, load_user_data
from study.plans import RankEstimate
from study.spec import StudySpec

PRESETS = ("laptop", "full", "smoke")
DEFAULT_PRESET = "laptop"  # the default budget finishes on a laptop; --preset full for more
TAKES_DATA = True  # study.run's --data / --labels go to get_config

DEPTHS = {"full": (8, 16, 32), "laptop": (8, 16), "smoke": (8,)}
SEEDS = {
    "vectors": {"full": (0, 1, 2, 3, 4), "laptop": (0, 1, 2), "smoke": (0,)},
    "images": {"full": (0, 1, 2), "laptop": (0, 1), "smoke": (0,)},
}
LADDERS = {  # preset -> the alphas climbed per N
    "full": (30.0, 100.0, 300.0),
    "laptop": (100.0, 300.0),
    "smoke": (300.0,),
}
EPOCHS = {
    "vectors": {"full": 400, "laptop": 200, "smoke": 30},
    "images": {"full": 200, "laptop": 20, "smoke": 2},
}
TRAIN_CAP = {"images": {"laptop": 3000, "smoke": 256}}  # training samples used, at most
EVAL_CAP = {"images": {"laptop": 1000, "smoke": 256}}  # evaluation samples for the spectra
VECTOR_INIT_SCALE = 0.05
VECTOR_LATENT_DIM = 32  # d; never wider than the vectors themselves
CLASSIFIER_LABELS = 1000  # App. C's low-label protocol, fewer when the data is smaller
REFERENCE_SHAPE = ("vectors", 2000, 32)  # what `--list` prices without --data


def get_config(
    preset: str = DEFAULT_PRESET, data_path: str | None = None, labels_path: str | None = None
) -> StudySpec:
    """The estimate's plan for the data at `data_path` (read once here, so a bad file fails
    before anything starts); without data, priced on `REFERENCE_SHAPE` for `--list`."""
    if data_path is None:
        kind, n, width = REFERENCE_SHAPE
        source, labels, labelled = "YOUR_DATA.npy", None, False
    else:
        source, labels = absolute(data_path), labels_path and absolute(labels_path)
        data = load_user_data(source, labels)
        kind, n, width = data.kind, len(data), data.x.shape[1]
        labelled = data.labels is not None
    base = data_settings(kind, n, width, labelled, preset).replace(
        data_path=source, labels_path=labels
    )
    ladder = LADDERS[preset]
    plan = RankEstimate(DEPTHS[preset], ladder[-1], ladder[-1], ladder[-1], ladder[:-1])
    spec = StudySpec(
        "rank_of", "a user's data: its latent rank", base.validate(), plan, SEEDS[kind][preset]
    )
    return replace(spec, preset=preset, checkpoint_every=10)


def absolute(path: str) -> str:
    """Trials run in their own folders: a relative path is made absolute here."""
    if path.startswith(TORCHVISION_PREFIX):
        return path
    return str(Path(path).expanduser().absolute())


def data_settings(kind: str, n: int, width: int, labelled: bool, preset: str) -> RunConfig:
    """The run settings for `n` samples of `kind` ("vectors" of `width` features, or images
    of `width` channels) at `preset`."""
    base = RunConfig(
        dataset="user",
        data_path="-",  # replaced by the caller
        bottleneck="linear_net",
        init="orthogonal",
        epochs=EPOCHS[kind][preset],
        dtype="float64" if preset == "full" else "float32",
        two_stage=False,
    )
    n_eval = round(n * base.eval_fraction)
    n_train = min(n - n_eval, TRAIN_CAP.get(kind, {}).get(preset, n))
    if kind == "vectors":
        base = base.replace(
            architecture="mlp",
            init_scale=VECTOR_INIT_SCALE,
            latent_dim=min(VECTOR_LATENT_DIM, width),
        )
    else:
        architecture = next(a for a, c in CONV_CHANNELS.items() if c == width)
        base = base.replace(architecture=architecture, fid_samples=100, fid_reference=500)
        if preset == "smoke":
            base = base.replace(fid_samples=24, fid_reference=48)
    n_eval = min(n_eval, EVAL_CAP.get(kind, {}).get(preset, base.n_eval))
    base = base.replace(n_train=n_train, n_eval=n_eval)
    if labelled:
        labels = min(CLASSIFIER_LABELS, n_train // 2)
        epochs = 30 if preset == "smoke" else 200
        base = base.replace(downstream=True, classifier_labels=labels, classifier_epochs=epochs)
    return base
