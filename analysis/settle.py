"""Has a run's rank settled, and is it degraded? Read from its logged per-epoch spectra.

The settled rule itself is `rankae.settle`'s (the Trainer logs it live; this module reads
it back from the spectra artifact, for every run and for stores that predate the live
metrics). Also written before the desktop runs:

- degraded: a final loss at or above DEGRADED_LOSS_FRACTION of the trivial loss (predicting
  the mean input, `rankae.records.trivial_loss`), without diverging: the model removes too
  little of the data's variance to be a result (e.g. an over-regularised large-alpha run).
  Reported, never a stop.
- the two-stage switch (Sec. 3.2) a patience would have made, read afterwards from the
  logged ranks (`switch_for_patience`): the same rule as `rankae.engine.Trainer`, so a
  single-stage run answers it for every patience at once and no switch can freeze a growth
  plateau mid-run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from rankae.rank import normalize_spectrum, rank_from_spectrum
from rankae.settle import SETTLED_RULE as RANK_SETTLED_RULE
from rankae.settle import SETTLED_STEPS, emergence_steps, is_settled, rank_holds, spectral_gap

DEGRADED_LOSS_FRACTION = 0.4

SETTLED_RULE = (
    f"{RANK_SETTLED_RULE}; degraded: final loss >= {DEGRADED_LOSS_FRACTION:g} x the trivial "
    "loss (predicting the mean input), not diverged"
)


def switch_for_patience(
    steps: Sequence[int], ranks: Sequence[int], patience: int, initial_rank: int | None = None
) -> tuple[int, int] | None:
    """(record index, k) where a two-stage run with this patience would have switched: the
    first record whose rank has been unchanged for >= patience steps and differs from the
    initial rank; None if it never would have."""
    first = 0
    for i, rank in enumerate(ranks):
        if i and rank != ranks[i - 1]:
            first = i
        if steps[i] - steps[first] >= patience and rank != initial_rank:
            return i, int(rank)
    return None


@dataclass(frozen=True)
class Settledness:
    """A run's W_e rank trajectory (one entry per logged epoch) and what it says."""

    epochs: tuple[int, ...]
    steps: tuple[int, ...]
    ranks: tuple[int, ...]
    gap: float  # sigma_r / sigma_(r+1) of the last spectrum at its rank

    @property
    def stable_steps(self) -> int:
        return rank_holds(self.steps, self.ranks)[0]

    @property
    def longest_wait(self) -> int:
        return rank_holds(self.steps, self.ranks)[1]

    @property
    def settled(self) -> bool:
        return is_settled(*rank_holds(self.steps, self.ranks), self.gap)

    @property
    def emergence(self) -> tuple[int, ...]:
        """The step each of the final rank's directions emerged for good (`emergence_steps`)."""
        return emergence_steps(self.steps, self.ranks)

    def switch(self, patience: int = SETTLED_STEPS) -> tuple[int, int] | None:
        """(epoch, k) of the switch a two-stage run with this patience would have made."""
        found = switch_for_patience(self.steps, self.ranks, patience)
        return None if found is None else (self.epochs[found[0]], found[1])


def settledness(
    spectra: list[dict[str, Any]], steps_per_epoch: int, threshold: float
) -> Settledness | None:
    """A run's W_e settledness from its per-epoch spectra (`analysis.load.load_spectra`);
    None for runs without W_e (vanilla, explicit) or without records."""
    rows = [row for row in spectra if row.get("we")]
    if not rows or steps_per_epoch < 1:
        return None
    ranks = tuple(_rank(row["we"], threshold) for row in rows)
    return Settledness(
        epochs=tuple(int(row["epoch"]) for row in rows),
        steps=tuple(int(row["epoch"]) * steps_per_epoch for row in rows),
        ranks=ranks,
        gap=spectral_gap(rows[-1]["we"], ranks[-1]),
    )


def _rank(values: list[float], threshold: float) -> int:
    return rank_from_spectrum(normalize_spectrum(torch.tensor(values)), threshold)


def degraded(loss: float, trivial: float | None, diverged: bool) -> bool | None:
    """The degraded rule (module docstring); None when the trivial loss was not recorded."""
    if diverged:
        return False
    if trivial is None or math.isnan(trivial):
        return None
    return loss >= DEGRADED_LOSS_FRACTION * trivial


def settledness_table(
    trials: pd.DataFrame, spectra: dict[str, list[dict[str, Any]]]
) -> pd.DataFrame:
    """Per run (run_id): degraded (None where the trivial loss was not recorded), and for
    runs with W_e: we_stable_steps, we_longest_wait, we_gap, settled, the step each direction
    emerged (we_emergence, a tuple), and the switch a SETTLED_STEPS patience would have made
    (switch_epoch_at_patience, switch_k_at_patience)."""
    rows = []
    for run in trials.itertuples():
        trivial = getattr(run, "trivial_loss", math.nan)
        row: dict[str, Any] = {
            "run_id": run.run_id,
            "degraded": degraded(float(run.loss), trivial, bool(run.diverged)),
        }
        per_epoch = int(run.step) // int(run.epoch) if pd.notna(run.step) and run.epoch else 0
        state = settledness(spectra.get(run.run_id, []), per_epoch, float(run.rank_threshold))
        if state is not None:
            switch = state.switch() or (None, None)
            row.update(
                settled=state.settled,
                we_stable_steps=state.stable_steps,
                we_longest_wait=state.longest_wait,
                we_gap=state.gap,
                we_emergence=state.emergence,
                switch_epoch_at_patience=switch[0],
                switch_k_at_patience=switch[1],
            )
        rows.append(row)
    return pd.DataFrame(rows)


def steps_to_rank(history: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Synthetic data of known rank r: per run, the first logged step at which W_e's rank
    and the latent rank reached r (NaN: never within the run), so "learns faster" (Fig.
    1(d)) and "invariant across N" can be read as speeds, not only as end values."""
    known = trials[trials["dataset"].eq("synthetic")].dropna(subset=["synth_rank"])
    rows = []
    for run in known.itertuples():
        steps = history[history["run_id"] == run.run_id].sort_values("epoch")
        row = {"run_id": run.run_id, "run_name": run.run_name, "seed": run.seed}
        for column in ("we_rank", "latent_rank"):
            reached = steps[steps[column] == run.synth_rank]["step"] if column in steps else []
            row[f"steps_to_{column}"] = reached.iloc[0] if len(reached) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
