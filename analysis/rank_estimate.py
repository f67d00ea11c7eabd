"""The latent rank of a user's data, read off a `rank_of` study (`study.studies.rank_of`).

The rule, in one place for the study's searcher (which queues the knee at the estimate) and
for the report: per depth N, the runs at the largest alpha whose every seed stayed stable
(Sec. 3.2's escalation) give one final latent rank each, read where the code spectrum has
its largest gap (`run_rank`; the gap's size and the threshold count are shown beside it);
the estimate is the rank most of them found (the mode; a tie goes to the larger rank:
greedy learning's plateaus only ever stop a run short), reported with how often it
occurred. When fewer than MODE_SHARE of the
runs found it, the answer is "no single rank" with every rank's count: a median or mean of
runs that disagree (e.g. 2-3 and 10-12) is a rank no run produced, and is never given.

The check is the explicit bottleneck d -> k -> d at every k from 1 to 2r + 4, then the
powers of two up to d (`knee_ks`), and vanilla, read on its held-out reconstruction loss
(`eval_loss`, the evaluation split). Its runs train the first CHECK_SEEDS seeds at
CHECK_LR_FACTOR x the estimate's lr for about CHECK_STEPS steps (`check_budget`): with no
sub-network there is no greedy plateau to wait out. On the 3,000 x 32 rank-8 vectors of
`tools.example_data` (2 seeds), 1,125 steps at lr 1e-3 gave the knee 6,750 steps at 1e-4
gave (held-out loss 24x lower at k = 8 than at 7, flat after; 30x at 1e-4) in a fifth of
the time, with losses past the knee 1.3-3x higher (less converged, which the reading
tolerates). Its knee (`loss_knee`) is a change point: the best two-segment fit of log
loss against log k. A power law (loss ~ 1/k^a, a smooth fall with no rank) is a straight
line there, so a knee must beat a single line by KNEE_EVIDENCE noise
sd (the noise from the seeds' spread, at least LOSS_NOISE_FLOOR) and fall at least
KNEE_SLOPE_RATIO times faster before it than after. The check can then disagree in both
directions (`knee_outcome`): agrees / estimate too high / estimate too low / no knee.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rankae.config import RunConfig
from rankae.settle import SETTLED_RULE

from .compare import escalation_summary, healthy, mean_sd

RANK_STUDY = "rank_of"
MODE_SHARE = 0.6  # the most frequent rank is "the" rank when at least this share found it
KNEE_EVIDENCE = 3.0  # a knee beats a straight line in log-log by this many noise sd
KNEE_SLOPE_RATIO = 3.0  # and the loss falls this many times faster before it than after
KNEE_TIE = 2.0  # splits fitting within this many noise sd of the best tie: the smallest k wins
LOSS_NOISE_FLOOR = 0.05  # sd of a run's log loss (5%) assumed where seeds show less or none
CHECK_SEEDS = 2  # the check trains the first two seeds (their spread is its noise)
CHECK_LR_FACTOR = 10.0  # and 10x the estimate's lr
CHECK_STEPS = 1000  # for about this many steps


@dataclass(frozen=True)
class RankAnswer:
    rank: int  # the mode over (depth, seed) runs; a tie goes to the larger rank
    counts: tuple[tuple[int, int], ...]  # (rank, runs that found it), most frequent first
    depths: tuple[int, ...]
    settled: int | None = None  # runs at the mode whose W_e rank settled (None: not logged)

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

    @property
    def converged(self) -> bool | None:
        """At least MODE_SHARE of the mode's runs settled (`rankae.settle`); None: unknown."""
        if self.settled is None:
            return None
        return self.settled >= MODE_SHARE * dict(self.counts)[self.rank]

    def tally(self) -> str:
        return ", ".join(f"{r} in {n}/{self.runs}" for r, n in self.counts)

    def sentence(self) -> str:
        """'latent rank 4 (4 in 5/6, 3 in 1/6 runs over 3 seed(s) x N in [8, 16])' or
        'no single rank (5 in 2/6, 12 in 2/6, ...): train longer (...) or give more data'."""
        seeds = self.runs // max(1, len(self.depths))
        where = f"{seeds} seed(s) x N in {list(self.depths)}"
        if self.stable and self.converged is False:
            return (
                f"latent rank {self.rank}, not converged ({self.tally()} runs over {where}; "
                f"{self.settled} of the {dict(self.counts)[self.rank]} at {self.rank} settled: "
                f"{SETTLED_RULE}): more directions may still appear, so train longer "
                "(--set epochs=...) before reading it as the data's rank"
            )
        if self.stable:
            return f"latent rank {self.rank} ({self.tally()} runs over {where})"
        return (
            f"no single rank ({self.tally()} runs over {where}): train longer "
            "(--preset full) or give more data"
        )


def run_rank(metrics: Mapping[str, object]) -> float | None:
    """A sub-network run's latent rank for the estimate: read where its code spectrum has
    its largest gap (`latent_gap_rank`, `rankae.rank.rank_at_gap`); the threshold count
    for a store logged before the gap was."""
    value = metrics.get("latent_gap_rank")
    if _missing(value):
        value = metrics.get("latent_rank")
    return None if _missing(value) else value


def _missing(value: object) -> bool:
    """None, or the NaN pandas gives a metric a run did not log."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def rank_answer(
    ranks: Mapping[int, Sequence[float | None]],
    settled: Mapping[int, Sequence[bool | None]] | None = None,
) -> RankAnswer | None:
    """Depth -> the final latent ranks of its largest stable rung -> the estimate (None when
    no depth has a stable rung). `settled`, in the same order, says which runs' W_e ranks
    had settled; the answer then counts those at the mode (unknown if any is None)."""
    pooled = {n: [int(r) for r in rs if r is not None] for n, rs in ranks.items()}
    pooled = {n: rs for n, rs in pooled.items() if rs}
    counts = Counter(r for rs in pooled.values() for r in rs)
    if not counts:
        return None
    ordered = tuple(sorted(counts.items(), key=lambda rc: (-rc[1], -rc[0])))
    mode = ordered[0][0]
    at_mode = [
        flag
        for n, rs in ranks.items()
        for r, flag in zip(rs, (settled or {}).get(n, [None] * len(rs)), strict=True)
        if r is not None and int(r) == mode
    ]
    known = settled is not None and all(flag is not None for flag in at_mode)
    return RankAnswer(
        mode, ordered, tuple(sorted(pooled)), sum(map(bool, at_mode)) if known else None
    )


def knee_ks(rank: int, latent_dim: int) -> list[int]:
    """The explicit widths of the check: every k from 1 to 2r + 4, then the powers of two up
    to d, so a knee well below the estimate and one well above it both show."""
    top = min(2 * rank + 4, latent_dim)
    beyond = (2**i for i in range(latent_dim.bit_length()))
    return sorted({*range(1, top + 1), *(k for k in beyond if top < k <= latent_dim)})


def check_budget(config: RunConfig) -> dict[str, object]:
    """The check's training: CHECK_LR_FACTOR x the estimate's lr for about CHECK_STEPS steps,
    never more epochs than the estimate's runs may train (`config`: the estimate's settings,
    with its n_train). Its runs have no sub-network, so none has a plateau to wait out."""
    steps_per_epoch = math.ceil(config.n_train / config.batch_size)
    epochs = min(math.ceil(CHECK_STEPS / steps_per_epoch), config.epochs)
    return {"lr": config.lr * CHECK_LR_FACTOR, "epochs": epochs}


def check_variants(
    rank: int, latent_dim: int, budget: Mapping[str, object] | None = None
) -> list[dict[str, object]]:
    """The check's runs at an estimate `rank` (what each changes of the estimate's settings):
    the explicit bottleneck at every `knee_ks` width, and the vanilla autoencoder, each with
    the check's `budget` (`check_budget`). None has a sub-network, so none switches stage or
    stops as settled; the vanilla run keeps its codes for the established estimators."""
    fixed = {"two_stage": False, "stop_when_settled": False, **(budget or {})}
    explicit = [
        {**fixed, "bottleneck": "explicit", "k": k, "save_codes": False}  # k bounds their rank
        for k in knee_ks(rank, latent_dim)
    ]
    return [*explicit, {**fixed, "bottleneck": "vanilla"}]


@dataclass(frozen=True)
class Knee:
    """The check's change point: the best two-line fit of log loss against log k."""

    k: int | None  # None: no knee (one line, a power law, fits within the noise)
    slope_before: float  # d log loss / d log k of each segment
    slope_after: float
    evidence: float  # how much better than one line, in noise sd


def loss_knee(losses: Mapping[int, Sequence[float]]) -> Knee | None:
    """k -> the seeds' losses at k -> the knee (None with fewer than 5 widths).

    Each segment is its own line: the first over the widths before the knee (one width is
    a segment too, its slope the chord to the knee), the second (the flat one, which must
    show it) from the knee on, over at least three. Splits whose fit is within KNEE_TIE
    noise sd of the best (in root squared residual) are equally good, and the knee is the
    smallest of them: the smallest k whose loss has stopped falling fast, where a rank-r
    code has every direction. The noise is the pooled sd of the seeds' log losses at a k (at least
    LOSS_NOISE_FLOOR), divided by sqrt(seeds) for a mean."""
    points = {k: [v for v in vs if v > 0 and math.isfinite(v)] for k, vs in losses.items()}
    ks = sorted(k for k, vs in points.items() if vs)
    if len(ks) < 5:
        return None
    x = np.log(np.array(ks, dtype=float))
    y = np.array([np.mean(np.log(points[k])) for k in ks])
    spreads = [np.var(np.log(points[k]), ddof=1) for k in ks if len(points[k]) > 1]
    seeds = min(len(points[k]) for k in ks)
    noise = max(math.sqrt(np.mean(spreads)) if spreads else 0.0, LOSS_NOISE_FLOOR)
    noise /= math.sqrt(seeds)
    line_sse = _line(x, y)[0]
    splits = []
    for j in range(1, len(ks) - 2):  # the knee ks[j] opens the second segment
        if j == 1:  # one width before the knee: no residual, the chord's slope
            sse_before, before = 0.0, float((y[1] - y[0]) / (x[1] - x[0]))
        else:
            sse_before, before = _line(x[:j], y[:j])
        sse_after, after = _line(x[j:], y[j:])
        splits.append((sse_before + sse_after, ks[j], before, after))
    good_enough = min(split[0] for split in splits) + (KNEE_TIE * noise) ** 2
    sse, k, before, after = next(split for split in splits if split[0] <= good_enough)
    evidence = math.sqrt(max(line_sse - sse, 0.0)) / noise
    steep = before < 0 and (after >= 0 or before / after >= KNEE_SLOPE_RATIO)
    return Knee(k if evidence >= KNEE_EVIDENCE and steep else None, before, after, evidence)


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(sum of squared residuals, slope) of the least-squares line through the points."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(((slope * x + intercept - y) ** 2).sum()), float(slope)


def knee_outcome(knee: Knee, rank: int) -> str:
    """What the check says of the estimate r: agrees / estimate too high / too low / no knee."""
    if knee.k is None:
        return "no knee"
    if knee.k == rank:
        return "agrees"
    return "estimate too high" if knee.k < rank else "estimate too low"


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
    rungs = [
        (int(row.depth), rung.to_dict("records")) for row, rung in largest_stable_rungs(trials)
    ]
    ranks = {n: [run_rank(run) for run in runs] for n, runs in rungs}
    settled = {n: [_flag(run.get("settled")) for run in runs] for n, runs in rungs}
    return rank_answer(ranks, settled)


def _flag(value: object) -> bool | None:
    return None if _missing(value) else bool(value)


def per_depth_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per N: the ladder's outcome and the ranks its largest stable rung found, per seed."""

    def per_seed(values: pd.Series) -> str:
        return ", ".join(f"{v:.0f}" for v in values.dropna()) or "-"

    def at_gap(rung: pd.DataFrame) -> str:
        if "latent_gap_rank" not in rung or rung["latent_gap_rank"].isna().all():
            return "-"
        return ", ".join(
            f"{r:.0f} ({g:.0f}x)"
            for r, g in zip(rung["latent_gap_rank"], rung["latent_gap"], strict=True)
        )

    rows = [
        {
            "N": row.depth,
            "alphas tried": row.alphas_tried,
            "divergence": row.divergence,
            "largest stable α": row.largest_stable,
            "latent rank at the gap (its size) per seed": at_gap(rung),
            "latent rank (threshold) per seed": per_seed(rung["latent_rank"]),
            "W_e rank per seed": per_seed(rung["we_rank"]),
            "loss": mean_sd(rung["loss"].mean(), rung["loss"].std(), 4) if len(rung) else "-",
        }
        for row, rung in largest_stable_rungs(trials)
    ]
    return pd.DataFrame(rows)


def emergence_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per run of the estimate (each N's largest stable rung, by seed): the step at which each
    of its W_e directions emerged for good (`rankae.settle.emergence_steps`), the longest
    wait between two emergences, and how long its last rank then held, beside whether it
    settled. Greedy learning's plateaus grow; a hold short of the longest wait is why a run
    is not settled. Empty where no run logged W_e's spectra."""
    rows = []
    for row, rung in largest_stable_rungs(trials):
        if "we_emergence" not in rung:
            continue
        for run in rung.itertuples():
            emerged = run.we_emergence
            if not isinstance(emerged, tuple) or not emerged:
                continue
            waits = [b - a for a, b in itertools.pairwise(emerged)]
            rows.append(
                {
                    "N": row.depth,
                    "α": run.alpha,
                    "seed": run.seed,
                    "W_e rank": len(emerged),
                    "directions emerged at step": ", ".join(f"{s:,}" for s in emerged),
                    "longest wait between two": f"{max(waits):,}" if waits else "-",
                    "held after the last": f"{int(run.step) - emerged[-1]:,}",
                    "settled": "-" if _missing(run.settled) else ("yes" if run.settled else "no"),
                }
            )
    return pd.DataFrame(rows)


def knee_table(trials: pd.DataFrame, answer: RankAnswer | None) -> pd.DataFrame:
    """The explicit bottleneck at each k, and vanilla: training and held-out loss (and the
    accuracy on the codes, where the data has labels), mean ± sd over seeds; the estimate's
    row and the check's knee (`loss_knee`) are marked."""
    runs = healthy(trials)
    explicit = runs[runs["bottleneck"] == "explicit"]
    knee = loss_knee(check_losses(trials)[0])
    rows = []
    for k, group in explicit.groupby("k", sort=True):
        marks = [
            name
            for name, here in (
                ("estimate", answer is not None and int(k) == answer.rank),
                ("knee", knee is not None and knee.k == int(k)),
            )
            if here
        ]
        rows.append(_knee_row(f"{int(k)}", group, "<- " + ", ".join(marks) if marks else ""))
    vanilla = runs[runs["bottleneck"] == "vanilla"]
    if len(vanilla):
        rows.append(_knee_row("d (vanilla)", vanilla, ""))
    return pd.DataFrame(rows)


def _knee_row(k: str, group: pd.DataFrame, mark: str) -> dict[str, object]:
    row: dict[str, object] = {
        "k": k,
        "": mark,
        "seeds": len(group),
        "loss": mean_sd(group["loss"].mean(), group["loss"].std(), 4),
    }
    if "eval_loss" in group and group["eval_loss"].notna().all():
        row["held-out loss"] = mean_sd(group["eval_loss"].mean(), group["eval_loss"].std(), 4)
    if group["acc_selected"].notna().any():
        row["accuracy (codes)"] = mean_sd(group["acc_selected"].mean(), group["acc_selected"].std())
    return row


def check_losses(trials: pd.DataFrame) -> tuple[dict[int, list[float]], str]:
    """The check's losses per k: the healthy explicit runs', and the vanilla runs' at k = d
    (no bottleneck is the widest one: a loss still falling from the largest explicit k to d
    is no knee). Which loss: the held-out one where every run logged it (`eval_loss`), else
    the training loss (stores from before it was)."""
    runs = healthy(trials)
    check = runs[runs["bottleneck"].isin(["explicit", "vanilla"])]
    held_out = "eval_loss" in check and check["eval_loss"].notna().all()
    column = "eval_loss" if held_out else "loss"
    widths = check["k"].where(check["bottleneck"] == "explicit", check["latent_dim"])
    losses = {int(k): list(g[column]) for k, g in check.groupby(widths, sort=True)}
    return losses, "held-out" if held_out else "training"


def knee_reading(trials: pd.DataFrame, rank: int) -> str:
    """What the explicit check says of the estimate, with the numbers it read."""
    losses, which = check_losses(trials)
    knee = loss_knee(losses)
    if knee is None:
        return ""
    fit = (
        f"the {which} explicit loss against k (log-log) falls with slope "
        f"{knee.slope_before:.2f} then {knee.slope_after:.2f}, {knee.evidence:.1f} noise sd "
        "better than one line"
    )
    outcome = knee_outcome(knee, rank)
    if outcome == "no knee":
        return (
            f"the check finds no knee ({fit}; {KNEE_EVIDENCE:g} and a {KNEE_SLOPE_RATIO:g}x "
            "steeper fall are needed): the data has no clear rank at this scale, and the "
            "estimate is where this budget's greedy learning stopped"
        )
    if outcome == "agrees":
        return f"the check agrees: its knee is at k = {knee.k} ({fit})"
    why = (
        "greedy learning can stall short of a direction for hundreds of epochs"
        if outcome == "estimate too low"
        else "the runs kept directions the explicit loss does not need"
    )
    return f"the check says {outcome}: its knee is at k = {knee.k} ({fit}; {why})"


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
