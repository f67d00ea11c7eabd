"""The trial record schema: what one run reports, defined once.

The training engine yields `EpochRecord`s; the Ray trainable reports `record.metrics()`;
the MLflow callback logs those names; the analysis reads them back. Downstream results
(`DOWNSTREAM_METRICS`) join a run's last metrics once, after its last epoch
(`trainables.autoencoder.write_artifacts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .rank import normalize_spectrum, rank_from_spectrum

TOP_SINGULAR_VALUES = 10  # raw singular values reported per epoch (Fig. 5)

EPOCH_METRICS = (
    "epoch",
    "step",
    "stage",
    "loss",
    "diverged",
    "elapsed_s",
    "steps_per_s",
    "we_rank",
    "latent_rank",
    "latent_rank_cov",
    "k",
    *(f"we_sv_{i}" for i in range(1, TOP_SINGULAR_VALUES + 1)),
    *(f"latent_sv_{i}" for i in range(1, TOP_SINGULAR_VALUES + 1)),
)
SWITCH_METRICS = (
    "switch_epoch",
    "switch_k",
    "switch_forced",
    "switch_loss_before",
    "switch_loss_after",
)
# classifier on z_N (the rank-limited codes: primary) and on z (pre-bottleneck, as IRMAE)
DOWNSTREAM_METRICS = (
    "acc_best",
    "acc_selected",
    "acc_pre_best",
    "acc_pre_selected",
    "fid",
    "fid_samples",
)
# a vanilla run on a user's data also keeps its training codes (the report's estimators)
CODES_ARTIFACT = "codes.npy"
# checkpoint_discarded: 1 if the trial's checkpoint was unreadable and it started over;
# resumed_from_epoch: the epoch of the checkpoint a restarted trial continued from
RECOVERY_METRICS = ("checkpoint_discarded", "resumed_from_epoch")


def trivial_loss(inputs: torch.Tensor) -> float:
    """The MSE of predicting the mean input for every input: a model that learned nothing.

    The image losses are bounded (a Tanh output against [0, 1] pixels), so a too-large
    alpha does not blow the loss up to infinity: it saturates or collapses the model onto
    a plateau at or above this level. That makes it the scale divergence is judged on.
    """
    x = inputs.flatten(1).double()
    return float(((x - x.mean(dim=0)) ** 2).mean())


# an epoch above the trivial level still "recovers" while it improves on the run's best
# so far by more than this fraction (healthy early epochs on small data do, by ~40%)
RECOVERING_IMPROVEMENT = 0.1


def blown_up_streak(loss: float, streak: int, best: float, trivial: float, factor: float) -> int:
    """Consecutive epochs (this one included) that are blown up; 0 after a healthy epoch.

    Blown up: a non-finite loss, or a loss above `factor` x the trivial loss that is not
    recovering (not at least RECOVERING_IMPROVEMENT below `best`, the run's lowest loss of
    the epochs before). A run still coming down from its initialisation never counts.
    """
    if not math.isfinite(loss):
        return streak + 1
    stuck = loss > factor * trivial and loss > (1 - RECOVERING_IMPROVEMENT) * best
    return streak + 1 if stuck else 0


def is_diverged(loss: float, streak: int, epochs: int) -> bool:
    """Divergence: a non-finite loss, or `epochs` blown-up epochs in a row.

    A single spike that recovers (seen in healthy runs with large alpha) never counts.
    """
    return not math.isfinite(loss) or streak >= epochs


@dataclass(frozen=True)
class StageSwitch:
    """Where two-stage training replaced the N-layer sub-network (Sec. 3.2)."""

    epoch: int
    k: int
    forced: bool  # True: W_e's rank never settled; switched at force_switch_epoch
    loss_before: float  # evaluation-set loss just before and just after the swap
    loss_after: float

    def metrics(self) -> dict[str, float]:
        return {
            "switch_epoch": self.epoch,
            "switch_k": self.k,
            "switch_forced": float(self.forced),
            "switch_loss_before": self.loss_before,
            "switch_loss_after": self.loss_after,
        }


@dataclass(frozen=True)
class EpochRecord:
    """One epoch (or one block of full-batch GD steps) of one run."""

    epoch: int
    step: int
    stage: int
    loss: float
    diverged: bool
    elapsed_s: float
    steps_per_s: float
    rank_threshold: float
    k: int | None = None  # shared dimension of an explicit bottleneck, if any
    we_singular_values: list[float] | None = None  # raw, descending; None for vanilla
    latent_singular_values: list[float] | None = None  # raw, of the centred eval codes
    switch: StageSwitch | None = None  # set on the epoch the switch happened

    @property
    def we_rank(self) -> int | None:
        return self._rank(self.we_singular_values)

    @property
    def latent_rank(self) -> int | None:
        return self._rank(self.latent_singular_values)

    @property
    def latent_rank_cov(self) -> int | None:
        """The rank IRMAE plots: eigenvalues of the code covariance (squared singular values)."""
        values = self.latent_singular_values
        return None if values is None else self._rank([v * v for v in values])

    def _rank(self, values: list[float] | None) -> int | None:
        if values is None:
            return None
        return rank_from_spectrum(normalize_spectrum(torch.tensor(values)), self.rank_threshold)

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics (the names in EPOCH_METRICS and friends); None is left out."""
        out: dict[str, float] = {
            "epoch": self.epoch,
            "step": self.step,
            "stage": self.stage,
            "loss": self.loss,
            "diverged": float(self.diverged),
            "elapsed_s": self.elapsed_s,
            "steps_per_s": self.steps_per_s,
        }
        ranks = (
            ("we_rank", self.we_rank),
            ("latent_rank", self.latent_rank),
            ("latent_rank_cov", self.latent_rank_cov),
        )
        for name, value in ranks:
            if value is not None:
                out[name] = value
        if self.k is not None:
            out["k"] = self.k
        for prefix, values in (
            ("we", self.we_singular_values),
            ("latent", self.latent_singular_values),
        ):
            for i, v in enumerate((values or [])[:TOP_SINGULAR_VALUES], start=1):
                out[f"{prefix}_sv_{i}"] = v
        if self.switch is not None:
            out.update(self.switch.metrics())
        return out
