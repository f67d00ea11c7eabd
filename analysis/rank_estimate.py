"""The latent rank of a user's data, read off a `rank_of` study (`study.studies.rank_of`).

The rule, in one place for the study's searcher (which queues the knee at the estimate) and
for the report: per depth N, the runs at the largest alpha whose every seed stayed stable
(Sec. 3.2's escalation) give one final latent rank each; the estimate is the rank most of
them found (the mode; a tie goes to the larger rank: greedy learning's plateaus only ever
stop a run short), reported with how often it occurred. When fewer than MODE_SHARE of the
runs found it, the answer is "no single rank" with every rank's count: a median or mean of
runs that disagree (e.g. 2-3 and 10-12) is a rank no run produced, and is never given.

The check is the explicit bottleneck d -> k -> d at k around the estimate (`knee_ks`): its
reconstruction loss should fall steeply up to the data's rank and little after it. The
verdict reads it (`knee_reading`): k = r + 1 still `KNEE_GAIN` times better than k = r says
the estimate is short (a run stopped on a plateau; the check's own knee, `check_knee`, is
then named); a fall under `KNEE_GAIN` on both sides
of r says the data has no sharp rank at this scale; otherwise the knee is at the estimate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import pandas as pd

from .compare import escalation_summary, healthy, mean_sd

RANK_STUDY = "rank_of"
MODE_SHARE = 0.6  # the most frequent rank is "the" rank when at least this share found it
KNEE_GAIN = 2.0  # explicit loss(k = r) / loss(k = r + 1) above this: the estimate is short


@dataclass(frozen=True)
class RankAnswer:
    rank: int  # the mode over (depth, seed) runs; a tie goes to the larger rank
    counts: tuple[tuple[int, int], ...]  # (rank, runs that found it), most frequent first
    depths: tuple[int, ...]

    @property
    def runs(self) -> int:
        return sum(n for _, n in self.counts)

    @property
    def low(self) -> int:
        return min(r for r, _ in self.counts)

    @property
    def high(self) -> int:
        return max(r for r, _ in self.counts)

    @property
    def share(self) -> float:
        return dict(self.counts)[self.rank] / self.runs

    @property
    def stable(self) -> bool:
        """One rank: at least MODE_SHARE of the runs found the mode."""
        return self.share >= MODE_SHARE

    def tally(self) -> str:
        return ", ".join(f"{r} in {n}/{self.runs}" for r, n in self.counts)

    def sentence(self) -> str:
        """'latent rank 4 (4 in 5/6, 3 in 1/6 runs over 3 seed(s) x N in [8, 16])' or
        'no single rank (5 in 2/6, 12 in 2/6, ...): train longer (...) or give more data'."""
        seeds = self.runs // max(1, len(self.depths))
        where = f"{seeds} seed(s) x N in {list(self.depths)}"
        if self.stable:
            return f"latent rank {self.rank} ({self.tally()} runs over {where})"
        return (
            f"no single rank ({self.tally()} runs over {where}): train longer "
            "(--preset full) or give more data"
        )


def rank_answer(ranks: Mapping[int, Sequence[float | None]]) -> RankAnswer | None:
    """Depth -> the final latent ranks of its largest stable rung -> the estimate (None when
    no depth has a stable rung)."""
    pooled = {n: [int(r) for r in rs if r is not None] for n, rs in ranks.items()}
    pooled = {n: rs for n, rs in pooled.items() if rs}
    counts = Counter(r for rs in pooled.values() for r in rs)
    if not counts:
        return None
    ordered = tuple(sorted(counts.items(), key=lambda rc: (-rc[1], -rc[0])))
    return RankAnswer(ordered[0][0], ordered, tuple(sorted(pooled)))


def knee_ks(rank: int, latent_dim: int) -> list[int]:
    """The explicit widths that show the knee: half the estimate, one below, the estimate,
    one and two above, and twice it (within 1..latent_dim)."""
    wanted = {rank // 2, rank - 1, rank, rank + 1, rank + 2, 2 * rank}
    return sorted(k for k in wanted if 1 <= k <= latent_dim)


def largest_stable_rungs(trials: pd.DataFrame) -> list[tuple[object, pd.DataFrame]]:
    """Per N: its escalation summary row and the runs (by seed) at its largest stable alpha
    (empty where no alpha was stable)."""
    implicit = trials[trials["bottleneck"] == "linear_net"]
    if implicit.empty:
        return []
    return [
        (
            row,
            implicit[
                (implicit["depth"] == row.depth) & (implicit["alpha"] == row.largest_stable_alpha)
            ].sort_values("seed"),
        )
        for row in escalation_summary(implicit).itertuples()
    ]


def trials_answer(trials: pd.DataFrame) -> RankAnswer | None:
    ranks = {
        int(row.depth): list(rung["latent_rank"].dropna())
        for row, rung in largest_stable_rungs(trials)
    }
    return rank_answer(ranks)


def per_depth_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per N: the ladder's outcome and the ranks its largest stable rung found, per seed."""

    def per_seed(values: pd.Series) -> str:
        return ", ".join(f"{v:.0f}" for v in values.dropna()) or "-"

    rows = [
        {
            "N": row.depth,
            "alphas tried": row.alphas_tried,
            "divergence": row.divergence,
            "largest stable α": row.largest_stable,
            "latent rank per seed": per_seed(rung["latent_rank"]),
            "W_e rank per seed": per_seed(rung["we_rank"]),
            "loss": mean_sd(rung["loss"].mean(), rung["loss"].std(), 4) if len(rung) else "-",
        }
        for row, rung in largest_stable_rungs(trials)
    ]
    return pd.DataFrame(rows)


def knee_table(trials: pd.DataFrame, answer: RankAnswer | None) -> pd.DataFrame:
    """The explicit bottleneck at each k, and vanilla: final loss (and accuracy on the codes,
    where the data has labels), mean ± sd over seeds, and the loss ratio to the next k."""
    runs = healthy(trials)
    explicit = runs[runs["bottleneck"] == "explicit"]
    rows = []
    for k, group in explicit.groupby("k", sort=True):
        rows.append(_knee_row(f"{int(k)}", group, answer is not None and int(k) == answer.rank))
    vanilla = runs[runs["bottleneck"] == "vanilla"]
    if len(vanilla):
        rows.append(_knee_row("d (vanilla)", vanilla, False))
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    losses = table["_loss"].tolist()
    table["loss / next k's"] = [
        f"{a / b:.2f}" if b and i < len(losses) - 1 and table["k"][i + 1] != "d (vanilla)" else "-"
        for i, (a, b) in enumerate(zip(losses, [*losses[1:], math.nan], strict=True))
    ]
    return table.drop(columns="_loss")


def _knee_row(k: str, group: pd.DataFrame, is_estimate: bool) -> dict[str, object]:
    row: dict[str, object] = {
        "k": k,
        "": "<- estimate" if is_estimate else "",
        "seeds": len(group),
        "loss": mean_sd(group["loss"].mean(), group["loss"].std(), 4),
        "_loss": group["loss"].mean(),
    }
    if group["acc_selected"].notna().any():
        row["accuracy (codes)"] = mean_sd(group["acc_selected"].mean(), group["acc_selected"].std())
    return row


def knee_gain(trials: pd.DataFrame, k: int) -> float | None:
    """Explicit loss at k over the loss at k + 1 (None when either is missing)."""
    explicit = healthy(trials)
    explicit = explicit[explicit["bottleneck"] == "explicit"]
    at = {int(width): g["loss"].mean() for width, g in explicit.groupby("k")}
    if k not in at or k + 1 not in at or not at[k + 1] > 0:
        return None
    return float(at[k] / at[k + 1])


def check_knee(trials: pd.DataFrame) -> int | None:
    """The k after the check's last fall of more than `KNEE_GAIN` from one k to the next (None
    when the explicit loss never falls that fast)."""
    explicit = healthy(trials)
    explicit = explicit[explicit["bottleneck"] == "explicit"]
    losses = explicit.groupby("k")["loss"].mean().sort_index()
    falls = [int(k) for (_, a), (k, b) in pairwise(losses.items()) if b > 0 and a / b > KNEE_GAIN]
    return falls[-1] if falls else None


def knee_reading(trials: pd.DataFrame, rank: int) -> str:
    """What the explicit check says of the estimate: a knee at it, none at all (a smooth
    fall: the data has no sharp rank at this scale), or more directions above it."""
    below, above = knee_gain(trials, rank - 1), knee_gain(trials, rank)
    if above is None:
        return ""
    falls = (
        f"the explicit loss falls {below:.1f}x from k = {rank - 1} to {rank} and "
        if below
        else "the explicit loss falls "
    )
    falls += f"{above:.1f}x from k = {rank} to {rank + 1}"
    if above > KNEE_GAIN:
        knee = check_knee(trials)
        at = f"; the check's knee is at k = {knee}" if knee is not None and knee > rank else ""
        return (
            f"but {falls}: the data likely has more directions than the runs found (greedy "
            f"learning can stall one short for hundreds of epochs){at}"
        )
    if below is not None and below < KNEE_GAIN:
        return (
            f"{falls}: no sharp knee, so the data has no clear rank at this scale and the "
            "estimate is where this budget's greedy learning stopped (longer training may "
            "add directions)"
        )
    return f"{falls}: the knee is at the estimate"


def answer_table(trials: pd.DataFrame) -> pd.DataFrame:
    """The answer as one row: the rank (or none), how many runs found each rank, the check."""
    answer = trials_answer(trials)
    if answer is None:
        return pd.DataFrame([{"latent rank": "no estimate", "runs": "-", "the check": "-"}])
    return pd.DataFrame(
        [
            {
                "latent rank": str(answer.rank) if answer.stable else "no single rank",
                "runs": answer.tally(),
                "the check": knee_reading(trials, answer.rank) or "-",
            }
        ]
    )


def verdict(trials: pd.DataFrame) -> str:
    """The answer in one sentence, with what the explicit check says of it."""
    answer = trials_answer(trials)
    if answer is None:
        return "no estimate: no depth had a stable run (every rung diverged or failed)"
    reading = knee_reading(trials, answer.rank)
    return answer.sentence() + (f"; {reading}" if reading else "")
