"""Comparison tables: per-configuration mean ± sd over seeds, and implicit vs explicit rank.

The paper's claim (Fig. 4) is that the latent rank the orthogonal + alpha sub-network finds
without supervision lands in the range of ranks that a supervised sweep of the explicit
d -> k -> d bottleneck finds best for each downstream task. `implicit_vs_explicit` answers
that per N and alpha in one table, so nobody has to read it off a plot.

"Explicit-optimal range": the explicit curve's mean per k over seeds; the best k; every k
whose mean is within a tolerance of the best (or better). The range is made of the runs of
neighbouring such k on the tested grid ("4-8, 128" when k = 16 between them was worse),
and an implicit rank is "in range" when it lies within one of those runs: between grid
points that are both near-optimal, never across a worse one. The tolerance is the best k's
sd over seeds, but at least `Task.floor` (1 accuracy point, or 2% of the best FID), so one
seed, or seeds that agree exactly, do not shrink it to nothing. The vanilla autoencoder is
the explicit curve's uncapped end: it sits at k = d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import pandas as pd

from rankae.config import label

from .load import order_configs

CONFIG = ("method", "depth", "alpha", "k")
SUMMARY_METRICS = (
    "latent_rank",
    "we_rank",
    "switch_k",
    "switch_epoch",
    "loss",
    "acc_best",
    "acc_selected",
    "acc_pre_best",
    "acc_pre_selected",
    "latent_rank_cov",
    "fid",
    "elapsed_s",
)

SUMMARY_COLUMNS = {  # summary metric -> column title in the report
    "latent_rank": "latent rank",
    "we_rank": "W_e rank",
    "switch_k": "switch k",
    "loss": "loss",
    "acc_best": "acc (best)",
    "acc_selected": "acc (selected)",
    "fid": "FID",
    "elapsed_s": "train s",
}


@dataclass(frozen=True)
class Task:
    """A downstream metric and which direction is better."""

    metric: str
    label: str
    higher_is_better: bool
    floor: float  # smallest tolerance: absolute, or relative to the best when `relative`
    relative: bool = False

    def tolerance(self, best: float, best_sd: float) -> float:
        floor = self.floor * abs(best) if self.relative else self.floor
        return max(0.0 if math.isnan(best_sd) else best_sd, floor)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


TASKS = (
    Task("acc_best", "classification accuracy on z_N (best epoch)", True, 0.01),
    Task("acc_selected", "classification accuracy on z_N (selected epoch)", True, 0.01),
    Task("fid", "FID (lower is better)", False, 0.02, relative=True),
    Task("acc_pre_best", "classification accuracy on z, before the bottleneck (best)", True, 0.01),
)


def config_label(method: str, depth: Any = None, alpha: Any = None, k: Any = None) -> str:
    """'orthogonal N=16 α=300', 'explicit k=16', 'vanilla': the prose form of the one label
    of a configuration (`rankae.config.label`)."""
    return label(method, depth, alpha, k, prose=True)


def escalation_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per N of an alpha escalation's trials: alphas tried, where the ladder diverged (seeds
    and epochs), the largest stable alpha (a failed run counts as a divergence).

    A ladder that never diverged has no divergence alpha: it reads "none up to <top alpha>",
    and its largest stable alpha is only a lower bound on the true one.
    """
    out = []
    for depth, group in rows.groupby("depth", sort=True):
        bad = group["diverged"] | (group["status"] != "FINISHED")
        by_alpha = bad.groupby(group["alpha"]).any()
        diverging = sorted(a for a, failed in by_alpha.items() if failed)
        first_bad = diverging[0] if diverging else None
        below = by_alpha[by_alpha.index < first_bad] if first_bad is not None else by_alpha
        stable = [a for a, failed in below.items() if not failed]
        if first_bad is None:
            divergence = f"none up to α={max(by_alpha.index):g}"
        else:
            rung = group[(group["alpha"] == first_bad) & bad]
            epochs = ", ".join(str(e) for e in rung["epoch"].dropna().astype(int))
            seeds = (group["alpha"] == first_bad).sum()
            divergence = f"α={first_bad:g}: {len(rung)}/{seeds} seeds (epoch {epochs or '-'})"
        top = max(stable) if stable else None
        if top is None:
            largest = "none"
        elif first_bad is None:
            largest = f">= {top:g} (the ladder's top)"
        else:
            largest = f"{top:g}"
        out.append(
            {
                "depth": int(depth),
                "alphas_tried": ", ".join(f"{a:g}" for a in sorted(by_alpha.index)),
                "divergence": divergence,
                "divergence_alpha": first_bad,
                "largest_stable_alpha": top,
                "largest_stable": largest,  # in words: a capped ladder gives only a lower bound
            }
        )
    return pd.DataFrame(out)


def healthy(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials whose numbers mean something: finished and not diverged."""
    return trials[~trials["diverged"] & (trials["status"] == "FINISHED")]


def alpha_swept(trials: pd.DataFrame) -> pd.DataFrame:
    """The sub-network trials of the methods run at more than one alpha for some N (Fig. 3)."""
    net = trials[trials["bottleneck"] == "linear_net"]
    alphas = net.groupby(["method", "depth"])["alpha"].nunique()
    swept = alphas[alphas > 1].index.get_level_values("method").unique()
    return net[net["method"].isin(swept)]


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: seeds, diverged, failed, and mean and sd of each metric present.

    Means are over the healthy seeds only (a diverged run's rank or loss is not a result);
    the counts say how many were left out.
    """
    present = [m for m in SUMMARY_METRICS if m in trials and trials[m].notna().any()]
    rows = []
    for values, group in trials.groupby(list(CONFIG), sort=False, dropna=False):
        row = dict(zip(CONFIG, values, strict=True))
        good = healthy(group)
        row.update(
            seeds=len(group),
            diverged=int(group["diverged"].sum()),
            failed=int((group["status"] != "FINISHED").sum()),
        )
        for metric in present:
            row[f"{metric}_mean"] = good[metric].mean()
            row[f"{metric}_sd"] = good[metric].std(ddof=1)
        rows.append(row)
    frame = pd.DataFrame(rows).astype({"depth": "Int64", "k": "Int64"})
    return order_configs(frame).reset_index(drop=True)


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """'m ± s' with `digits` significant digits; one seed (sd NaN) prints the value alone."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if sd is None or math.isnan(sd):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {sd:.2g}"


def summary_table(trials: pd.DataFrame) -> pd.DataFrame:
    """The per-configuration table as the reader sees it: mean ± sd strings over the healthy
    seeds. The one results table: the report's, the CLI's end of a study and the MLflow
    parent run's `results_table.md`."""
    summary = summarise(trials)
    out = pd.DataFrame(
        {
            "configuration": [
                config_label(r.method, r.depth, r.alpha, r.k) for r in summary.itertuples()
            ],
            "seeds": summary["seeds"],
            "diverged": summary["diverged"],
            "failed": summary["failed"],
        }
    )
    for metric, title in SUMMARY_COLUMNS.items():
        if f"{metric}_mean" in summary:
            out[title] = [
                mean_sd(m, s)
                for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_sd"], strict=True)
            ]
    return out


def explicit_curve(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The supervised baseline: `metric` per explicit k (mean, sd, seeds), vanilla at k = d."""
    good = healthy(trials).dropna(subset=[metric])
    explicit = good[good["method"] == "explicit"].assign(baseline="explicit")
    vanilla = good[good["method"] == "vanilla"]
    vanilla = vanilla.assign(k=vanilla["latent_dim"], baseline="vanilla")
    both = pd.concat([explicit, vanilla])
    if both.empty:
        return pd.DataFrame(columns=["k", "baseline", "seeds", "mean", "sd"])
    curve = both.groupby(["k", "baseline"])[metric].agg(seeds="count", mean="mean", sd="std")
    return curve.reset_index().astype({"k": int}).sort_values("k").reset_index(drop=True)


@dataclass(frozen=True)
class Optimum:
    """Where the explicit curve is best for one task, and the range within tolerance."""

    task: Task
    best_k: int
    best: float
    best_sd: float
    tolerance: float
    segments: tuple[tuple[int, int], ...]  # runs of neighbouring near-optimal k, ascending
    ks: tuple[int, ...]  # every k on the curve
    vanilla_k: int | None = None  # where vanilla sits on the curve (k = d), if it ran

    def contains(self, rank: float) -> bool:
        return any(low <= rank <= high for low, high in self.segments)

    def matches(self, value: float) -> bool:
        """At least as good as the explicit best, up to the tolerance."""
        return self.task.better(value, self.best) or abs(value - self.best) <= self.tolerance

    def describe(self) -> str:
        """The near-optimal k as a reader says them: "4-8, 128 (vanilla)"."""

        def name(k: int) -> str:
            return f"{k} (vanilla)" if k == self.vanilla_k else str(k)

        return ", ".join(name(a) if a == b else f"{a}-{name(b)}" for a, b in self.segments)


def explicit_optimum(curve: pd.DataFrame, task: Task) -> Optimum | None:
    """The best k and the explicit-optimal range (see the module docstring); None: no curve."""
    if curve.empty:
        return None
    per_k = curve.sort_values("k").reset_index(drop=True)
    means = per_k["mean"]
    best_row = per_k.loc[means.idxmax() if task.higher_is_better else means.idxmin()]
    tolerance = task.tolerance(best_row["mean"], best_row["sd"])
    near = [
        task.better(m, best_row["mean"]) or abs(m - best_row["mean"]) <= tolerance for m in means
    ]
    segments = []
    for good, run in groupby(zip(per_k["k"], near, strict=True), key=lambda pair: pair[1]):
        if good:
            ks = [int(k) for k, _ in run]
            segments.append((ks[0], ks[-1]))
    return Optimum(
        task=task,
        best_k=int(best_row["k"]),
        best=float(best_row["mean"]),
        best_sd=float(best_row["sd"]),
        tolerance=float(tolerance),
        segments=tuple(segments),
        ks=tuple(int(k) for k in per_k["k"]),
        vanilla_k=next((int(r.k) for r in per_k.itertuples() if r.baseline == "vanilla"), None)
        if "baseline" in per_k
        else None,
    )


def implicit_vs_explicit(trials: pd.DataFrame) -> pd.DataFrame:
    """Per task and sub-network configuration (method, N, alpha): rank found vs explicit optimum.

    `trials` holds both the explicit sweep and the sub-network runs (concatenate studies
    when they were run separately). Empty when either side is missing for every task.
    The implicit rank is the final latent-code rank (two-stage runs: after the switch).
    """
    rows = []
    net = healthy(trials)[healthy(trials)["bottleneck"] == "linear_net"]
    for task in TASKS:
        if task.metric not in trials:
            continue
        optimum = explicit_optimum(explicit_curve(trials, task.metric), task)
        runs = net.dropna(subset=[task.metric, "latent_rank"])
        if optimum is None or runs.empty:
            continue
        for (method, depth, alpha), group in runs.groupby(["method", "depth", "alpha"]):
            rank, value = group["latent_rank"].mean(), group[task.metric].mean()
            rows.append(
                {
                    "task": task.metric,
                    "method": method,
                    "depth": depth,
                    "alpha": alpha,
                    "seeds": len(group),
                    "implicit_rank": rank,
                    "implicit_rank_sd": group["latent_rank"].std(ddof=1),
                    "implicit_metric": value,
                    "implicit_metric_sd": group[task.metric].std(ddof=1),
                    "best_explicit_k": optimum.best_k,
                    "best_explicit_metric": optimum.best,
                    "best_explicit_sd": optimum.best_sd,
                    "tolerance": optimum.tolerance,
                    "optimal_k": optimum.describe(),
                    "gap": value - optimum.best,
                    "rank_in_optimal_range": optimum.contains(rank),
                    "as_good_as_explicit": optimum.matches(value),
                }
            )
    if not rows:
        return pd.DataFrame()
    table = order_configs(pd.DataFrame(rows))
    order = {t.metric: i for i, t in enumerate(TASKS)}
    return table.sort_values("task", key=lambda t: t.map(order), kind="stable").reset_index(
        drop=True
    )


def partner_studies(study: str, available: list[str]) -> list[str]:
    """Studies on the same dataset (same name prefix, e.g. mnist_*), for the Fig. 4 comparison.

    The explicit sweep and the sub-network sweeps are separate named studies
    (mnist_explicit vs mnist_alpha_sweep / mnist_depth_sweep; likewise cifar10_*).
    """
    prefix = study.split("_")[0] + "_"
    return [name for name in available if name.startswith(prefix) and name != study]


PRECISION_METRICS = ("latent_rank", "we_rank", "loss")


def dtype_pairs(
    trials: pd.DataFrame,
    reference: str = "float64",
    other: str = "float32",
    metrics: tuple[str, ...] = PRECISION_METRICS,
) -> pd.DataFrame:
    """One row per configuration and seed run in both dtypes: each metric in both, and the
    difference `other - reference` (`<metric>_diff`). Runs of only one dtype are left out.

    `trials` holds both dtypes (a `dtype` column, as `analysis.load` gives), e.g. two
    invocations of a study loaded with `invocation="all"`. A configuration and seed run
    twice in one dtype is an error: which of the two to pair would be a guess.
    """
    keys = [*CONFIG, "seed"]
    sides = []
    for dtype in (reference, other):
        side = trials[trials["dtype"] == dtype]
        if side.duplicated(keys).any():
            raise ValueError(f"a configuration and seed was run more than once in {dtype}")
        columns = {m: f"{m}_{dtype}" for m in (*metrics, "diverged")}
        sides.append(side[[*keys, *columns]].rename(columns=columns))
    pairs = sides[0].merge(sides[1], on=keys)  # NaN keys (vanilla's depth) pair with NaN
    for metric in metrics:
        pairs[f"{metric}_diff"] = pairs[f"{metric}_{other}"] - pairs[f"{metric}_{reference}"]
    return order_configs(pairs).reset_index(drop=True)


def dtype_comparison(
    trials: pd.DataFrame,
    reference: str = "float64",
    other: str = "float32",
    metrics: tuple[str, ...] = PRECISION_METRICS,
) -> pd.DataFrame:
    """Per configuration: seeds paired, how many diverged in either dtype, and for each
    metric mean and sd over seeds in both dtypes and of the paired difference; for ranks,
    also in how many seeds the two dtypes found a different rank (`<rank>_changed`).
    """
    pairs = dtype_pairs(trials, reference, other, metrics)
    rows = []
    for values, group in pairs.groupby(list(CONFIG), sort=False, dropna=False):
        row = dict(zip(CONFIG, values, strict=True))
        row["seeds"] = len(group)
        row["diverged"] = int((group[f"diverged_{reference}"] | group[f"diverged_{other}"]).sum())
        for metric in metrics:
            for column in (f"{metric}_{reference}", f"{metric}_{other}", f"{metric}_diff"):
                row[f"{column}_mean"] = group[column].mean()
                row[f"{column}_sd"] = group[column].std(ddof=1)
            if metric.endswith("_rank"):
                changed = group[f"{metric}_diff"].fillna(0) != 0
                row[f"{metric}_changed"] = int(changed.sum())
        rows.append(row)
    return pd.DataFrame(rows).astype({"depth": "Int64", "k": "Int64"})


SETTINGS = (
    "dataset",
    "latent_dim",
    "epochs",
    "n_train",
    "classifier_labels",
    "rank_threshold",
    "dtype",
)


def setting_differences(trials: pd.DataFrame) -> list[str]:
    """Settings that differ between the studies pooled in `trials` (e.g. smoke vs full)."""
    notes = []
    for setting in SETTINGS:
        per_study = trials.groupby("study")[setting].agg(lambda s: sorted(set(s.dropna())))
        if len({tuple(v) for v in per_study}) > 1:
            values = "; ".join(f"{study}: {v}" for study, v in per_study.items())
            notes.append(f"{setting} differs ({values})")
    return notes
