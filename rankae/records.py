"""The trial record schema: what one run reports, defined once.

The training engine yields `EpochRecord`s; the Ray trainable reports `record.metrics()`;
the MLflow callback logs those names; the analysis reads them back. Downstream results
(`DOWNSTREAM_METRICS`) join a run's last metrics once, after its last epoch
(`trainables.autoencoder.write_artifacts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cached_property

import torch

from .rank import normalize_spectrum, rank_at_gap, rank_from_spectrum
from .settle import is_settled, spectral_gap

TOP_SINGULAR_VALUES = 10  # raw singular values reported per epoch (Fig. 5)

# An epoch's scalar metrics, each an `EpochRecord` field or property of that name (None: not
# reported), then its top singular values: `EpochRecord.metrics()` reports exactly these
# names, so a new per-epoch metric is a property plus its name here.
SCALAR_METRICS = (
    "epoch",
    "step",
    "stage",
    "loss",
    "diverged",
    "elapsed_s",
    "steps_per_s",
    "trivial_loss",
    "we_rank",
    "latent_rank",
    "latent_rank_cov",
    "latent_gap_rank",
    "latent_gap",
    "we_held_steps",
    "we_longest_wait",
    "we_gap",
    "settled",
    "k",
)
SPECTRA = ("we", "latent")  # each epoch reports <name>_sv_1 .. of <name>_singular_values
EPOCH_METRICS = (
    *SCALAR_METRICS,
    *(f"{name}_sv_{i}" for name in SPECTRA for i in range(1, TOP_SINGULAR_VALUES + 1)),
)
# classifier on z_N (the rank-limited codes: primary) and on z (pre-bottleneck, as IRMAE)
# val_acc_selected: the validation accuracy at acc_selected's epoch (searches select on it);
# kid / kid_sd: unbiased at small sample counts, unlike fid (rankae/fid.py)
# eval_loss: the reconstruction loss on the evaluation split (held out for a user's data;
# the rank check reads it: analysis/rank_estimate.py)
DOWNSTREAM_METRICS = (
    "eval_loss",
    "acc_best",
    "acc_selected",
    "val_acc_selected",
    "acc_pre_best",
    "acc_pre_selected",
    "val_acc_pre_selected",
    "fid",
    "kid",
    "kid_sd",
    "fid_samples",
)
# what a search may select on: validation and training numbers; a test number is reported,
# never optimised (the acc_* metrics are accuracies on the test split)
SELECTABLE_METRICS = ("val_acc_selected", "val_acc_pre_selected", "loss")
# the training split's final codes of a run with `save_codes` (the report's estimators read them)
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


# an epoch above the trivial level still "recovers" while it improves on the lowest loss of
# its own streak above that level by more than this fraction (healthy early epochs on small
# data do, by ~40%)
RECOVERING_IMPROVEMENT = 0.1
# one record cannot tell a spike from a plateau: a divergence needs at least this many
STREAK_MIN_RECORDS = 2


@dataclass(frozen=True)
class BlownUp:
    """The state of the divergence rule: the current run of epochs above the trivial level."""

    stuck_steps: int = 0  # steps of the consecutive stuck epochs (this one included)
    stuck_records: int = 0
    streak_min: float = math.inf  # lowest loss of the current epochs above the level


def blown_up(loss: float, steps: int, state: BlownUp, trivial: float, factor: float) -> BlownUp:
    """The divergence state after an epoch of `steps` steps with mean loss `loss`.

    Stuck: a non-finite loss, or a loss above `factor` x the trivial loss that does not
    improve by RECOVERING_IMPROVEMENT on the lowest loss of its own streak above that level
    (a run coming down from its initialisation, or steadily recovering from a spike, keeps
    improving on it). A healthy epoch (at or below the level) ends the streak.
    """
    if not math.isfinite(loss):
        return BlownUp(state.stuck_steps + steps, state.stuck_records + 1, state.streak_min)
    if loss <= factor * trivial:
        return BlownUp()
    stuck = loss > (1 - RECOVERING_IMPROVEMENT) * state.streak_min
    if not stuck:
        return BlownUp(0, 0, min(state.streak_min, loss))
    return BlownUp(state.stuck_steps + steps, state.stuck_records + 1, state.streak_min)


def is_diverged(loss: float, state: BlownUp, window_steps: int) -> bool:
    """Divergence: a non-finite loss, or stuck epochs covering >= `window_steps` optimiser
    steps (the same window at every tier), at least STREAK_MIN_RECORDS of them.

    A single spike that recovers (seen in healthy runs with large alpha) never counts.
    """
    if not math.isfinite(loss):
        return True
    return state.stuck_steps >= window_steps and state.stuck_records >= STREAK_MIN_RECORDS


def _number(value: float | int | bool) -> float | int:
    """A metric's value as reported: a flag as 0.0 / 1.0."""
    return float(value) if isinstance(value, bool) else value


@dataclass(frozen=True)
class StageSwitch:
    """Where two-stage training replaced the N-layer sub-network (Sec. 3.2)."""

    epoch: int
    k: int
    forced: bool  # True: W_e's rank never settled; switched at force_switch_epoch
    loss_before: float  # evaluation-set loss just before and just after the swap
    loss_after: float

    def metrics(self) -> dict[str, float]:
        """Each field as `switch_<field>` (SWITCH_METRICS)."""
        return {f"switch_{f.name}": _number(getattr(self, f.name)) for f in fields(self)}


SWITCH_METRICS = tuple(f"switch_{field.name}" for field in fields(StageSwitch))


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
    trivial_loss: float | None = None  # predicting the mean input (`trivial_loss`): the scale
    k: int | None = None  # shared dimension of an explicit bottleneck, if any
    we_singular_values: list[float] | None = None  # raw, descending; None for vanilla
    latent_singular_values: list[float] | None = None  # raw, of the centred eval codes
    switch: StageSwitch | None = None  # set on the epoch the switch happened
    # `rankae.settle.rank_holds` of W_e's rank history up to this epoch (None without W_e)
    we_held_steps: int | None = None
    we_longest_wait: int | None = None

    @cached_property
    def we_rank(self) -> int | None:
        return self._rank(self.we_singular_values)

    @cached_property
    def latent_rank(self) -> int | None:
        return self._rank(self.latent_singular_values)

    @cached_property
    def we_gap(self) -> float | None:
        """sigma_r / sigma_r+1 of W_e at its rank (`rankae.settle.spectral_gap`)."""
        values, rank = self.we_singular_values, self.we_rank
        return None if values is None or rank is None else spectral_gap(values, rank)

    @property
    def settled(self) -> bool | None:
        """W_e's rank settled by `rankae.settle`'s rule (None without W_e)."""
        if self.we_held_steps is None or self.we_longest_wait is None or self.we_gap is None:
            return None
        return is_settled(self.we_held_steps, self.we_longest_wait, self.we_gap)

    @property
    def latent_gap_rank(self) -> int | None:
        """The rank at which the code spectrum has its largest gap (`latent_gap_at`)."""
        found = self.latent_gap_at
        return None if found is None else found[0]

    @property
    def latent_gap(self) -> float | None:
        """sigma_r / sigma_r+1 at `latent_gap_rank`."""
        found = self.latent_gap_at
        return None if found is None else found[1]

    @cached_property
    def latent_gap_at(self) -> tuple[int, float] | None:
        """(rank, sigma_r / sigma_r+1) where the code spectrum has its largest gap
        (`rankae.rank.rank_at_gap`)."""
        values = self.latent_singular_values
        return None if values is None else rank_at_gap(normalize_spectrum(torch.tensor(values)))

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
        """Flat numeric metrics: the EPOCH_METRICS that are not None, and SWITCH_METRICS on
        the epoch of the switch."""
        values = {name: getattr(self, name) for name in SCALAR_METRICS}
        out = {name: _number(value) for name, value in values.items() if value is not None}
        for name in SPECTRA:
            spectrum = getattr(self, f"{name}_singular_values") or []
            for i, value in enumerate(spectrum[:TOP_SINGULAR_VALUES], start=1):
                out[f"{name}_sv_{i}"] = value
        if self.switch is not None:
            out.update(self.switch.metrics())
        return out
