"""Comparison tables: per-configuration mean ± sd over seeds, the downstream tasks, the
alpha escalation's ladder, dtype pairs.

The paper's Fig. 3 and Fig. 4 claims are judged per seed in `analysis.verdicts`; a mean ±
sd here describes a configuration, and is never a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rankae.config import label

from .load import CONFIG, order_configs

SPLIT_RANKS = 2  # seeds agree when their ranks lie within this many of each other
RANK_METRICS = ("latent_rank", "we_rank", "switch_k")  # never averaged over split seeds
SUMMARY_METRICS = (
    "latent_rank",
    "we_rank",
    "switch_k",
    "switch_epoch",
    "loss",
    "acc_best",
    "acc_selected",
    "val_acc_selected",
    "acc_pre_best",
    "acc_pre_selected",
    "latent_rank_cov",
    "fid",
    "kid",
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
    "kid": "KID",
    "elapsed_s": "train s",
}


@dataclass(frozen=True)
class Task:
    """A downstream metric and which direction is better."""

    metric: str
    label: str
    higher_is_better: bool
    floor: float  # smallest tolerance: absolute, or relative to the value when `relative`
    relative: bool = False

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


TASKS = (
    Task("acc_best", "classification accuracy on z_N (best epoch)", True, 0.01),
    Task("acc_selected", "classification accuracy on z_N (selected epoch)", True, 0.01),
    # FID is biased at small sample counts and a seed's bias is shared across its runs:
    # verdicts compare it within seed only; KID is unbiased (rankae/fid.py)
    Task("fid", "FID (lower is better)", False, 0.02, relative=True),
    Task("kid", "KID (lower is better)", False, 0.001),
    Task("acc_pre_best", "classification accuracy on z, before the bottleneck (best)", True, 0.01),
)


def config_label(
    method: str, depth: Any = None, alpha: Any = None, k: Any = None, variant: str = ""
) -> str:
    """'orthogonal N=16 α=300', 'explicit k=16', 'vanilla': the prose form of the one label
    of a configuration (`rankae.config.label`), then its `variant` ('... init_scale=0.001')."""
    return f"{label(method, depth, alpha, k, prose=True)} {variant}".strip()


def configurations(trials: pd.DataFrame) -> list[str]:
    """The columns that tell a frame's configurations apart: the bottleneck settings and,
    where the frame has them, the other settings its runs were swept over (`variant`)."""
    return [*CONFIG, *(["variant"] if "variant" in trials else [])]


def escalation_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per N of an alpha escalation's trials: alphas tried, where the ladder diverged (seeds
    and epochs), the largest stable alpha, and the failed (errored) runs.

    A failed run is not a divergence: it says nothing about alpha (the searcher goes on
    past it too); a rung with a failed run is not counted as stable either. A ladder that
    never diverged has no divergence alpha: it reads "none up to <top alpha>", and its
    largest stable alpha is only a lower bound on the true one.
    """
    out = []
    for depth, group in rows.groupby("depth", sort=True):
        failed = group["status"] != "FINISHED"
        bad = group["diverged"] & ~failed
        by_alpha = bad.groupby(group["alpha"]).any()
        incomplete = failed.groupby(group["alpha"]).any()
        diverging = sorted(a for a, failed in by_alpha.items() if failed)
        first_bad = diverging[0] if diverging else None
        below = by_alpha[by_alpha.index < first_bad] if first_bad is not None else by_alpha
        stable = [a for a, diverged in below.items() if not diverged and not incomplete[a]]
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
                "failed": int(failed.sum()),
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
    """Per configuration: seeds, diverged, failed, and mean and sd of each metric present;
    for a rank whose seeds split (`seeds_split`), also `<rank>_split` naming every value.

    Means are over the healthy seeds only (a diverged run's rank or loss is not a result);
    the counts say how many were left out.
    """
    present = [m for m in SUMMARY_METRICS if m in trials and trials[m].notna().any()]
    trials = trials if "variant" in trials else trials.assign(variant="")  # built by hand
    keys = configurations(trials)
    rows = []
    for values, group in trials.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, values, strict=True))
        good = healthy(group)
        row.update(
            seeds=len(group),
            diverged=int(group["diverged"].sum()),
            failed=int((group["status"] != "FINISHED").sum()),
        )
        for metric in present:
            row[f"{metric}_mean"] = good[metric].mean()
            row[f"{metric}_sd"] = good[metric].std(ddof=1)
            values = good[metric].dropna().tolist()
            if metric in RANK_METRICS and seeds_split(values):  # no mean describes them
                row[f"{metric}_split"] = "split: " + ", ".join(f"{v:g}" for v in values)
        rows.append(row)
    frame = pd.DataFrame(rows).astype({"depth": "Int64", "k": "Int64"})
    return order_configs(frame).reset_index(drop=True)


def seeds_split(ranks: list[float]) -> bool:
    """Seeds whose ranks lie more than SPLIT_RANKS apart: no mean or median describes them."""
    return len(ranks) > 1 and max(ranks) - min(ranks) > SPLIT_RANKS


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    """'m ± s' with `digits` significant digits; one seed (sd NaN) prints the value alone."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if sd is None or math.isnan(sd):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {sd:.2g}"


def summary_table(trials: pd.DataFrame) -> pd.DataFrame:
    """The per-configuration table as the reader sees it: mean ± sd strings over the healthy
    seeds, except ranks of seeds that split (`seeds_split`): those read "split: 5, 12". The
    one results table: the report's, the CLI's end of a study and the MLflow parent run's
    `results_table.md`."""
    summary = summarise(trials)
    out = pd.DataFrame(
        {
            "configuration": [
                config_label(r.method, r.depth, r.alpha, r.k, r.variant)
                for r in summary.itertuples()
            ],
            "seeds": summary["seeds"],
            "diverged": summary["diverged"],
            "failed": summary["failed"],
        }
    )
    for metric, title in SUMMARY_COLUMNS.items():
        if f"{metric}_mean" in summary:
            cells = [
                mean_sd(m, s)
                for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_sd"], strict=True)
            ]
            if f"{metric}_split" in summary:
                split = summary[f"{metric}_split"]
                cells = [c if pd.isna(x) else x for c, x in zip(cells, split, strict=True)]
            out[title] = cells
    return out


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
