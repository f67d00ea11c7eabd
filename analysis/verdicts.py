"""Verdicts that can fail, per seed: Fig. 4 (does the implicit rank land where a supervised
sweep of explicit bottlenecks is best?) and Fig. 3 (does the metric rise with alpha, then
stay flat?).

Each verdict is one of VERDICTS, generated from the numbers by the rules below; the report
prints the rule beside it (`FIG4_RULE`, `FIG3_RULE`). The rules were written before the
desktop runs they judge, and they never average seeds that disagree.

Noise. A task's noise sd is read from the seeds' paired differences: at each x (k, or
alpha) that every seed ran, each seed's value minus that seed's mean over those x (this
removes the offset a seed carries through every configuration: shared initialisation, and
FID's small-sample bias, docs/results.md), then the sd over seeds, pooled over x as an RMS.
Two values of one seed differ beyond noise when their difference exceeds NOISE_SIGMAS
standard deviations of a difference (sqrt(2) x the sd), and never by less than the task's
floor (`Task.floor`). With one seed there are no pairs: the floor alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .compare import SPLIT_RANKS, TASKS, Task, config_label, healthy, seeds_split

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
NOISE_SIGMAS = 2.0
# a near-optimal range may hold at most this fraction of the explicit curve's spread: a
# tolerance as wide as the curve would put every k in range, and the verdict could not fail
MAX_TOLERANCE_FRACTION = 0.25
PLATEAU_ALPHA = 100.0  # Fig. 3: "improves with alpha up to ~100 and then flat"

FIG4_RULE = (
    "Per seed: that seed's explicit curve (k, vanilla at k = d); near-optimal k are within "
    f"a tolerance of its best (noise from paired seed differences, {NOISE_SIGMAS:g} sd of a "
    "difference, at least the task's floor, at most "
    f"{MAX_TOLERANCE_FRACTION:g} x the curve's spread); a curve whose spread is within noise "
    "has no optimum (inconclusive). In range: the implicit run's final latent rank lies "
    "between neighbouring near-optimal k. Per configuration: reproduced if every seed is in "
    "range, not reproduced if none is; inconclusive if the seeds disagree, if their ranks "
    f"lie more than {SPLIT_RANKS} apart (seeds split), or if a run's rank had not settled."
)
FIG3_RULE = (
    "Per N and seed, over the alphas that trained without divergence: rise = the lowest "
    f"alpha >= {PLATEAU_ALPHA:g} beats the lowest alpha below it by more than noise; plateau "
    f"= every alpha >= {PLATEAU_ALPHA:g} within noise of the best of them. Each is "
    "reproduced if it holds for every seed, not reproduced if for none, else inconclusive; "
    f"no alpha below {PLATEAU_ALPHA:g} (or one alpha at or above it) leaves that part "
    "inconclusive. The trend column says, per seed, which way the metric moved."
)


def paired_noise_sd(frame: pd.DataFrame, x: str, metric: str) -> float:
    """The noise sd of `metric` from seed-paired values over `x` (module docstring); NaN
    with fewer than 2 seeds or fewer than 2 shared x."""
    table = frame.pivot_table(index=x, columns="seed", values=metric, aggfunc="first")
    table = table.loc[:, table.notna().sum() >= 2].dropna()  # seeds with pairs; shared x
    if table.shape[0] < 2 or table.shape[1] < 2:
        return math.nan
    residuals = table - table.mean(axis=0)
    return float(np.sqrt(residuals.var(axis=1, ddof=1).mean()))


def noise_tolerance(task: Task, noise_sd: float, reference: float) -> float:
    """The smallest difference beyond noise: NOISE_SIGMAS sd of a difference, floored."""
    floor = task.floor * abs(reference) if task.relative else task.floor
    if math.isnan(noise_sd):
        return floor
    return max(NOISE_SIGMAS * math.sqrt(2.0) * noise_sd, floor)


@dataclass(frozen=True)
class SeedCurve:
    """One seed's explicit curve for one task, and where it is near-optimal."""

    ks: tuple[int, ...]
    values: tuple[float, ...]
    best_k: int
    best: float
    tolerance: float  # after the cap at MAX_TOLERANCE_FRACTION x spread
    flat: bool  # the curve's spread is within noise: no optimum to land in
    segments: tuple[tuple[int, int], ...]  # runs of neighbouring near-optimal k

    def contains(self, rank: float) -> bool:
        return any(low <= rank <= high for low, high in self.segments)

    def nearest(self, rank: float) -> tuple[int, float]:
        """The grid k nearest `rank` on a log scale, and the curve's value there."""
        i = int(np.argmin([abs(math.log(k) - math.log(max(rank, 1.0))) for k in self.ks]))
        return self.ks[i], self.values[i]

    def describe(self) -> str:
        return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in self.segments)


def seed_curve(points: pd.DataFrame, task: Task, noise_tol: float) -> SeedCurve:
    """`points`: one seed's (k, value) rows. Near-optimal k are those within the tolerance
    of the best: the noise tolerance, capped at MAX_TOLERANCE_FRACTION x the curve's spread."""
    points = points.sort_values("k")
    ks = tuple(int(k) for k in points["k"])
    values = tuple(float(v) for v in points["value"])
    best_i = int(np.argmax(values) if task.higher_is_better else np.argmin(values))
    spread = max(values) - min(values)
    tolerance = min(noise_tol, MAX_TOLERANCE_FRACTION * spread)
    near = [abs(v - values[best_i]) <= tolerance for v in values]
    segments, start = [], None
    for i, good in enumerate([*near, False]):
        if good and start is None:
            start = i
        elif not good and start is not None:
            segments.append((ks[start], ks[i - 1]))
            start = None
    return SeedCurve(
        ks, values, ks[best_i], values[best_i], tolerance, spread <= noise_tol, tuple(segments)
    )


def explicit_points(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The explicit baseline's (seed, k, value) rows; vanilla at k = d (its uncapped end)."""
    good = healthy(trials).dropna(subset=[metric])
    explicit = good[good["method"] == "explicit"]
    vanilla = good[good["method"] == "vanilla"]
    both = pd.concat([explicit, vanilla.assign(k=vanilla["latent_dim"])])
    return both[["seed", "k", metric]].rename(columns={metric: "value"}).astype({"k": int})


def implicit_vs_explicit(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per task, sub-network configuration and seed: where the implicit run's final
    latent rank lies on the same seed's explicit curve, and its metric gap there.

    Columns: task, method, depth, alpha, seed, implicit_rank, settled (when known),
    implicit_metric, best_explicit_k, best_explicit, near_optimal_k, tolerance, flat_curve,
    rank_in_range, nearest_k, explicit_at_nearest, gap, within_noise. Empty when either side
    is missing. `trials` holds both sides (studies pooled when run separately).
    """
    rows = []
    net = healthy(trials)[healthy(trials)["bottleneck"] == "linear_net"]
    for task in TASKS:
        if task.metric not in trials:
            continue
        points = explicit_points(trials, task.metric)
        runs = net.dropna(subset=[task.metric, "latent_rank"])
        if points.empty or runs.empty:
            continue
        noise = paired_noise_sd(points, "k", "value")
        curves = {}
        for seed, part in points.groupby("seed"):
            tol = noise_tolerance(task, noise, part["value"].abs().median())
            curves[int(seed)] = seed_curve(part, task, tol)
        for run in runs.itertuples():
            curve = curves.get(int(run.seed))
            if curve is None:
                continue  # no same-seed explicit curve: nothing to pair with
            value, rank = float(getattr(run, task.metric)), float(run.latent_rank)
            nearest_k, at_nearest = curve.nearest(rank)
            gap = value - at_nearest
            rows.append(
                {
                    "task": task.metric,
                    "method": run.method,
                    "depth": run.depth,
                    "alpha": run.alpha,
                    "seed": int(run.seed),
                    "implicit_rank": rank,
                    "settled": getattr(run, "settled", None),
                    "implicit_metric": value,
                    "best_explicit_k": curve.best_k,
                    "best_explicit": curve.best,
                    "near_optimal_k": curve.describe(),
                    "tolerance": curve.tolerance,
                    "flat_curve": curve.flat,
                    "rank_in_range": curve.contains(rank),
                    "nearest_k": nearest_k,
                    "explicit_at_nearest": at_nearest,
                    "gap": gap,
                    "within_noise": abs(gap) <= curve.tolerance or task.better(value, at_nearest),
                }
            )
    if not rows:
        return pd.DataFrame()
    order = {t.metric: i for i, t in enumerate(TASKS)}
    table = pd.DataFrame(rows).astype({"depth": "Int64"})
    keys = table["task"].map(order)
    return (
        table.assign(_t=keys)
        .sort_values(["_t", "method", "depth", "alpha", "seed"])
        .drop(columns="_t")
        .reset_index(drop=True)
    )


def _ranks(ranks: pd.Series) -> str:
    return ", ".join(f"{r:g}" for r in sorted(ranks))


def fig4_verdicts(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per task and configuration: the verdict and its reason, from `implicit_vs_explicit`."""
    rows = []
    if per_seed.empty:
        return pd.DataFrame(columns=["task", "configuration", "seeds", "verdict", "reason"])
    for (metric, method, depth, alpha), group in per_seed.groupby(
        ["task", "method", "depth", "alpha"], sort=False
    ):
        ranks = group["implicit_rank"]
        inside = group[group["rank_in_range"]]["seed"].tolist()
        outside = group[~group["rank_in_range"]]["seed"].tolist()
        unsettled = group[group["settled"].eq(False)]["seed"].tolist()
        flat = group[group["flat_curve"]]["seed"].tolist()
        if unsettled:
            verdict = "inconclusive"
            reason = f"rank not settled at seed(s) {_seeds(unsettled)} (ranks {_ranks(ranks)})"
        elif seeds_split(ranks.tolist()):
            verdict, reason = "inconclusive", f"seeds split: ranks {_ranks(ranks)}"
        elif flat:
            verdict = "inconclusive"
            reason = f"explicit curve flat within noise at seed(s) {_seeds(flat)}"
        elif not outside:
            verdict = "reproduced"
            reason = f"ranks {_ranks(ranks)} in the near-optimal range at every seed"
        elif not inside:
            verdict = "not reproduced"
            reason = f"ranks {_ranks(ranks)} outside the near-optimal range at every seed"
        else:
            verdict = "inconclusive"
            reason = f"seeds disagree: in range at {_seeds(inside)}, not at {_seeds(outside)}"
        rows.append(
            {
                "task": metric,
                "configuration": config_label(method, depth, alpha),
                "seeds": len(group),
                "verdict": verdict,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows)


def _seeds(seeds: list) -> str:
    return ", ".join(str(int(s)) for s in sorted(seeds))


def _trend(values: list[float]) -> str:
    return " -> ".join(f"{v:.3g}" for v in values)


def fig3_per_seed(trials: pd.DataFrame) -> pd.DataFrame:
    """Per task, sub-network method, N and seed: the metric over alpha (healthy runs), the
    direction it moved, and the rise and plateau tests (FIG3_RULE)."""
    net = healthy(trials)[healthy(trials)["bottleneck"] == "linear_net"]
    rows = []
    for task in TASKS:
        if task.metric not in net or net[task.metric].isna().all():
            continue
        for (method, depth), group in net.groupby(["method", "depth"]):
            group = group.dropna(subset=[task.metric])
            if group["alpha"].nunique() < 2:
                continue
            noise = paired_noise_sd(group, "alpha", task.metric)
            for seed, runs in group.groupby("seed"):
                runs = runs.sort_values("alpha")
                alphas, values = runs["alpha"].tolist(), runs[task.metric].tolist()
                tol = noise_tolerance(task, noise, float(np.median(np.abs(values))))
                low = [v for a, v in zip(alphas, values, strict=True) if a < PLATEAU_ALPHA]
                high = [v for a, v in zip(alphas, values, strict=True) if a >= PLATEAU_ALPHA]
                rise = (
                    None if not low or not high
                    else task.better(high[0], low[0]) and abs(high[0] - low[0]) > tol
                )  # fmt: skip
                best_high = (max if task.higher_is_better else min)(high, default=math.nan)
                plateau = None if len(high) < 2 else all(abs(v - best_high) <= tol for v in high)
                change = values[-1] - values[0]
                direction = (
                    "flat" if abs(change) <= tol
                    else "improves" if task.better(values[-1], values[0]) else "worsens"
                )  # fmt: skip
                rows.append(
                    {
                        "task": task.metric,
                        "method": method,
                        "depth": int(depth),
                        "seed": int(seed),
                        "alphas": ", ".join(f"{a:g}" for a in alphas),
                        "values": _trend(values),
                        "trend": direction,
                        "tolerance": tol,
                        "rise": rise,
                        "plateau": plateau,
                    }
                )
    return pd.DataFrame(rows)


def _part_verdict(flags: pd.Series, what: str) -> tuple[str, str]:
    known = flags.dropna()
    if known.empty:
        return "inconclusive", f"{what}: not testable on these alphas"
    held = known.astype(bool)
    if len(known) < len(flags):
        return "inconclusive", (
            f"{what} at {int(held.sum())} of the {len(known)} seeds where it is testable; "
            f"not testable at {len(flags) - len(known)}"
        )
    if held.all():
        return "reproduced", f"{what} at every seed"
    if not held.any():
        return "not reproduced", f"no {what} at any seed"
    return "inconclusive", f"{what} at {int(held.sum())} of {len(held)} seeds"


def fig3_verdicts(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per task, method and N: the rise and plateau verdicts, and each seed's trend."""
    rows = []
    if per_seed.empty:
        return pd.DataFrame(columns=["task", "configuration", "trend per seed", "rise", "plateau"])
    for (metric, method, depth), group in per_seed.groupby(["task", "method", "depth"], sort=False):
        rise, rise_reason = _part_verdict(group["rise"], "rise")
        plateau, plateau_reason = _part_verdict(group["plateau"], "plateau")
        trends = "; ".join(
            f"s{r.seed}: {r.trend} ({r.values})" for r in group.itertuples()
        )  # α in the order of the alphas column
        rows.append(
            {
                "task": metric,
                "configuration": f"{method} N={depth} α={group['alphas'].iloc[0]}",
                "trend per seed": trends,
                "rise": f"{rise} ({rise_reason})",
                "plateau": f"{plateau} ({plateau_reason})",
            }
        )
    return pd.DataFrame(rows)
