"""The latent rank of a dataset without Ray or MLflow: `LatentRank().fit(x)` in a notebook.

    from analysis.latent_rank import LatentRank
    estimate = LatentRank(preset="smoke").fit(x)          # x: an (n, D) array, or images
    estimate.dimension_, estimate.verdict_, estimate.runs_

One implementation with `python -m study.run rank_of` (`study/studies/rank_of.py`, whose
docstring gives the measured choices behind the settings here): the same run settings
(`run_settings`), the same plan (per depth N, alpha up the ladder, every seed per rung,
until a rung diverges; then the check at the estimate, `check_variants`) and the same rule
on the runs' final metrics (`trials_answer`, `verdict`). Only where the runs execute
differs: here one after another in this process, each rung's seeds side by side
(`rankae.vectorized`); there as Ray trials tracked in MLflow (larger data, a cluster,
`--resume`).

What it measures: the number of linear code directions a reconstruction-trained
autoencoder uses. On data on a curved, closed manifold that is not the intrinsic
dimension (a noisy circle has latent rank 2, intrinsic dimension 1).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from rankae.config import CONV_CHANNELS, ConfigError, RunConfig
from rankae.rundata import RunData, split_user_data
from rankae.userdata import UserData, UserDataError, load_user_data
from rankae.vectorized import VectorizedTrainer

from .load import run_row, tidy_trials
from .rank_estimate import (
    CHECK_SEEDS,
    RankAnswer,
    check_budget,
    check_variants,
    emergence_table,
    trials_answer,
    verdict,
)
from .settle import settledness

PRESETS = ("laptop", "full", "smoke")
DEPTHS = {  # kind -> preset -> the depths N
    "vectors": {"full": (8, 16), "laptop": (8,), "smoke": (8,)},
    "images": {"full": (8, 16, 32), "laptop": (8, 16), "smoke": (8,)},
}
SEEDS = {  # kind -> preset -> the seeds (each also draws its own bootstrap resample)
    "vectors": {"full": tuple(range(10)), "laptop": (0, 1, 2, 3, 4), "smoke": (0,)},
    "images": {"full": (0, 1, 2), "laptop": (0, 1), "smoke": (0,)},
}
LADDERS = {  # kind -> preset -> the alphas climbed per N
    "vectors": dict.fromkeys(PRESETS, (300.0,)),
    "images": {"full": (30.0, 100.0, 300.0), "laptop": (100.0, 300.0), "smoke": (300.0,)},
}
EPOCHS = {  # kind -> preset -> the epochs a run may train (it stops once settled)
    "vectors": {"full": 400, "laptop": 200, "smoke": 30},
    "images": {"full": 200, "laptop": 20, "smoke": 2},
}
TRAIN_CAP = {"images": {"laptop": 3000, "smoke": 256}}  # training samples used, at most
EVAL_CAP = {"images": {"laptop": 1000, "smoke": 256}}  # evaluation samples for the spectra
VECTOR_INIT_SCALE = 0.15
VECTOR_LATENT_DIM = 128  # d: min(D, this), so the answer is never capped below the data's
CLASSIFIER_LABELS = 1000  # App. C's low-label protocol, fewer when the data is smaller


def run_settings(kind: str, n: int, width: int, labelled: bool, preset: str) -> RunConfig:
    """The run settings for `n` samples of `kind` ("vectors" of `width` features, or images
    of `width` channels) at `preset` (its data_path is a placeholder the caller replaces)."""
    if preset not in PRESETS:
        raise ConfigError(f"preset={preset!r} is not known: allowed are {', '.join(PRESETS)}")
    base = RunConfig(
        dataset="user",
        data_path="-",
        bottleneck="linear_net",
        init="orthogonal",
        epochs=EPOCHS[kind][preset],
        dtype="float64" if preset == "full" else "float32",
        two_stage=False,
        stop_when_settled=True,
        bootstrap=True,
        save_codes=True,  # the report runs the established estimators on the codes too
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


def data_kind(config: RunConfig) -> str:
    """ "vectors" (the MLP autoencoder's) or "images" (a conv autoencoder's)."""
    return "vectors" if config.architecture == "mlp" else "images"


class LatentRank:
    """A scikit-dimension-style estimator of the latent rank (`fit(x).dimension_`).

    preset: the budget, as the study's tiers (smoke ~ a minute, laptop, full); epochs and
    seeds override the preset's; check=False skips the explicit check (the estimate alone,
    for loops over many datasets). After `fit`:
      dimension_  the rank most runs found, or NaN when they split ("no single rank")
      answer_     the `RankAnswer` (every rank's count, how many runs settled), or None
      verdict_    the sentence the study's report gives, with what the check says
      runs_       every run's final metrics (the trial frame the report reads), with the
                  step each of its W_e directions emerged (we_emergence)
      emergence_  per run of the estimate: when each direction emerged (`emergence_table`)
    """

    def __init__(
        self,
        preset: str = "laptop",
        epochs: int | None = None,
        seeds: int | None = None,
        check: bool = True,
    ) -> None:
        if preset not in PRESETS:
            raise ConfigError(f"preset={preset!r} is not known: allowed are {', '.join(PRESETS)}")
        self.preset, self.epochs, self.seeds, self.check = preset, epochs, seeds, check

    def fit(self, x: np.ndarray, y: object = None) -> LatentRank:
        """Estimate the latent rank of `x` ((n, D) vectors, or (n, C, H, W) / (n, H, W)
        images); `y` is ignored (scikit-learn's signature). Bad data raises the CLI's
        one-line errors (`rankae.userdata.UserDataError`, `ConfigError`)."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "x.npy"
            np.save(path, np.asarray(x))
            try:  # read and standardised once, as the study service reads a user's file
                user = load_user_data(path, None)
            except UserDataError as err:  # about the caller's array, not this temporary file
                raise UserDataError(str(err).replace(str(path), "x")) from None
        base = self.settings(user, "x")
        data = split_user_data(base, user)  # split once, as in a trial
        depths = DEPTHS[data_kind(base)][self.preset]
        rows = [row for n in depths for row in self._ladder(base, n, data)]
        answer = trials_answer(tidy_trials(rows))
        if answer is not None and self.check:
            budget = check_budget(base)
            for variant in check_variants(answer.rank, base.latent_dim, budget):
                rows += self._rung(base.replace(**variant), data, CHECK_SEEDS)
        self.runs_ = tidy_trials(rows)
        self.answer_: RankAnswer | None = trials_answer(self.runs_)
        stable = self.answer_ is not None and self.answer_.stable
        self.dimension_ = float(self.answer_.rank) if stable else math.nan
        self.verdict_ = verdict(self.runs_)
        self.emergence_ = emergence_table(self.runs_)
        return self

    def settings(self, user: UserData, data_path: str) -> RunConfig:
        """The study's run settings for the user's data (unlabelled: `fit` ignores `y`),
        named `data_path`, with this estimator's epochs."""
        base = run_settings(user.kind, len(user), user.x.shape[1], False, self.preset)
        base = base.replace(data_path=data_path)
        return (base.replace(epochs=self.epochs) if self.epochs else base).validate()

    def _seeds(self, kind: str) -> tuple[int, ...]:
        return tuple(range(self.seeds)) if self.seeds else SEEDS[kind][self.preset]

    def _ladder(self, base: RunConfig, depth: int, data: object) -> list[dict]:
        """Depth N's rungs up the ladder, every seed per rung, until a rung diverges."""
        rows: list[dict] = []
        for alpha in LADDERS[data_kind(base)][self.preset]:
            rung = self._rung(base.replace(depth=depth, alpha=alpha), data)
            rows += rung
            if any(row["diverged"] for row in rung):
                break
        return rows

    def _rung(self, config: RunConfig, data: RunData, seeds: int | None = None) -> list[dict]:
        """`config` for every seed (the first `seeds`), side by side (`train_rung`)."""
        chosen = self._seeds(data_kind(config))[:seeds]
        return train_rung([config.replace(seed=seed).validate() for seed in chosen], data)


def train_rung(configs: list[RunConfig], data: RunData) -> list[dict]:
    """Runs of one config that differ in seed, side by side (`rankae.vectorized`); each run's
    final metrics as a frame row, with its held-out loss and when its directions emerged."""
    group = VectorizedTrainer(configs, "cpu", data=data)
    final: list[dict] = [{} for _ in configs]
    for records in group.run():
        for k, record in enumerate(records):
            if record is not None:
                final[k] = record.metrics()
    rows = []
    for k, (run, metrics) in enumerate(zip(configs, final, strict=True)):
        trainer = group.member_trainer(k)
        if not metrics["diverged"]:
            metrics["eval_loss"] = trainer.eval_loss()
        rows.append(run_row(run, metrics, False))
        per_epoch = trainer.step // max(trainer.epoch, 1)
        state = settledness(trainer.spectra, per_epoch, run.rank_threshold)
        if state is not None:  # as the study's report reads it (`settledness_table`)
            rows[-1]["we_emergence"] = state.emergence
    return rows
