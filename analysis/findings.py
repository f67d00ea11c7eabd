"""Findings in words, generated from a study's numbers (no canned claims).

Every sentence here is assembled from the trial and comparison tables, so the report says
what this study measured, including when that contradicts the paper or when the data are
too thin (one seed, a smoke preset) to say anything.
"""

from __future__ import annotations

import pandas as pd

from .compare import (
    TASKS,
    alpha_swept,
    config_label,
    configurations,
    escalation_summary,
    healthy,
    seeds_split,
)


def _fmt(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.3g}"


def overview(trials: pd.DataFrame, preset: str = "full") -> list[str]:
    """How much was run, how much of it is usable, and how long it took."""
    configs = trials.groupby(configurations(trials), dropna=False).ngroups
    seeds = sorted(int(s) for s in trials["seed"].dropna().unique())
    lines = [
        f"{len(trials)} trials: {configs} configurations x seeds {seeds}; "
        f"{int(trials['diverged'].sum())} diverged, "
        f"{int((trials['status'] != 'FINISHED').sum())} did not finish; "
        f"training time {trials['elapsed_s'].sum() / 60:.1f} trial-minutes in total."
    ]
    if preset == "smoke":
        lines.append(
            "This is a --smoke invocation (few images, few epochs): its numbers exercise the "
            "pipeline and are not evidence for or against the paper."
        )
    elif preset in ("laptop", "desktop"):
        sizes = sorted({int(n) for n in trials.get("n_train", pd.Series()).dropna()})
        split = "/".join(f"{n:,}" for n in sizes) or "a subset of the"
        fid = "fid" in trials and trials["fid"].notna().any()
        lines.append(
            f"This is a --preset {preset} invocation ({split} training samples"
            + (", FID and KID from a few hundred samples" if fid else "")
            + "): it shows what that scale finds, not what the full tier's whole training "
            "set and epochs would"
            + (
                "; its FIDs compare only within a seed and at the same sample count (KID has "
                "no small-sample bias)."
                if fid
                else "."
            )
        )
    if len(seeds) == 1:
        lines.append("One seed per configuration: no spread is known; ± columns are empty.")
    return lines


def rank_findings(trials: pd.DataFrame) -> list[str]:
    """Where each method's latent (and W_e) rank ended, how much it moved with N, and how it
    compares with the data's rank when that is known (synthetic data)."""
    good = healthy(trials)
    lines = []
    for method, runs in good.groupby("method", sort=False):
        keys = configurations(runs)[1:]  # within the method
        parts = []
        for values, group in runs.groupby(keys, dropna=False, sort=False):
            text = f"{config_label('', *values)}: {_per_seed(group['latent_rank'])}"
            if group["we_rank"].notna().any():
                text += f" (W_e {_per_seed(group['we_rank'])})"
            parts.append(text.lstrip(": "))
        line = f"{method}: final latent rank per seed {'; '.join(parts)}"
        if method == "vanilla":
            line += f" of d = {int(runs['latent_dim'].iloc[0])}"
        for alpha, part in runs.groupby("alpha"):
            if part["depth"].nunique() > 1:
                line += (
                    f" — at α={alpha:g} the ranks over N="
                    f"{', '.join(str(int(d)) for d in sorted(part['depth'].unique()))} and "
                    f"seeds span {_fmt(part['latent_rank'].min())}-"
                    f"{_fmt(part['latent_rank'].max())}"
                )
        if method == "explicit":
            capped = (runs["latent_rank"] <= runs["k"]).sum()
            line += f" — rank ≤ k in {capped} of {len(runs)} runs"
        lines.append(line + ".")
    if good["dataset"].eq("synthetic").all() and good["synth_rank"].notna().all():
        true_rank = int(good["synth_rank"].iloc[0])
        hits = good.assign(hit=good["latent_rank"] == true_rank).groupby("method", sort=False)
        counts = ", ".join(f"{m} {int(g['hit'].sum())}/{len(g)}" for m, g in hits)
        lines.append(
            f"The synthetic data have rank {true_rank}; runs ending at exactly that latent rank: "
            f"{counts}."
        )
    return lines


def escalation_findings(trials: pd.DataFrame) -> list[str]:
    """Per N: alphas tried, the first divergence and the largest stable alpha."""
    net = alpha_swept(trials)
    if net.empty:
        return []
    ladder = escalation_summary(net)
    lines = []
    for row in ladder.itertuples():
        end = (
            f"no divergence ({row.divergence}: the ladder ended at its maximum)"
            if pd.isna(row.divergence_alpha)
            else f"first divergence at {row.divergence}"
        )
        stable = (
            "none stable" if pd.isna(row.largest_stable_alpha)
            else f"largest stable α={row.largest_stable_alpha:g}"
        )  # fmt: skip
        lines.append(f"N={row.depth}: α tried {row.alphas_tried}; {end}; {stable}.")
    return lines


def downstream_findings(trials: pd.DataFrame) -> list[str]:
    """Per task, the best and the worst configuration of this study (means over the seeds
    that every configuration has: a seed carries an offset through all its runs, so means
    over different seeds would compare seeds, not configurations).

    The selected-epoch accuracy joins the best-epoch one in a single statement when both
    rank the same configurations first and last (the numbers side by side), so a reader is
    not told the same thing twice.
    """
    good = shared_seeds(healthy(trials))
    found = {}  # metric -> (best config, its value, worst config, its value, configurations)
    for task in TASKS:
        if task.metric not in good or good[task.metric].isna().all():
            continue
        means = good.groupby(configurations(good), dropna=False)[task.metric].mean().dropna()
        if means.empty:
            continue
        ranked = means.sort_values(ascending=not task.higher_is_better)
        found[task.metric] = (
            ranked.index[0],
            ranked.iloc[0],
            ranked.index[-1],
            ranked.iloc[-1],
            len(ranked),
        )
    joined = "acc_best" in found and "acc_selected" in found
    joined = joined and [found["acc_best"][i] for i in (0, 2)] == [
        found["acc_selected"][i] for i in (0, 2)
    ]
    lines = []
    for task in TASKS:
        if task.metric not in found or (joined and task.metric == "acc_selected"):
            continue
        best, best_value, worst, worst_value, count = found[task.metric]
        label, values = task.label, (_fmt(best_value), _fmt(worst_value))
        if joined and task.metric == "acc_best":
            label = "classification accuracy on z_N (best epoch / selected epoch)"
            other = found["acc_selected"]
            values = tuple(
                f"{v} / {_fmt(o)}" for v, o in zip(values, (other[1], other[3]), strict=True)
            )
        line = f"{label}: best {config_label(*best)} ({values[0]})"
        if count > 1:
            line += f", worst {config_label(*worst)} ({values[1]})"
        lines.append(line + f" over {count} configurations.")
    return lines


def two_stage_findings(trials: pd.DataFrame) -> list[str]:
    """When the two-stage runs switched to the explicit bottleneck, at which k, forced or not."""
    switched = trials.dropna(subset=["switch_epoch"])
    if switched.empty:
        return []
    forced = int(switched["switch_forced"].fillna(0).sum())
    return [
        f"{len(switched)} of {len(trials)} runs switched to the explicit bottleneck (two-stage) "
        f"at epoch {_span(switched['switch_epoch'])} with k = {_span(switched['switch_k'])} "
        f"(W_e's rank at the switch); {forced} switch(es) forced because the rank never settled."
    ]


def _span(values: pd.Series) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}-{high}"


def _per_seed(ranks: pd.Series) -> str:
    """Each seed's rank, in seed order; "(seeds split)" when they lie too far apart to
    summarise (`analysis.compare.SPLIT_RANKS`)."""
    values = [v for v in ranks.dropna()]
    text = ", ".join(_fmt(v) for v in values) or "-"
    return text + (" (seeds split)" if len(values) > 1 and seeds_split(values) else "")


def shared_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the seeds that every configuration of `runs` has."""
    seeds = [set(g["seed"]) for _, g in runs.groupby(configurations(runs), dropna=False)]
    common = set.intersection(*seeds) if seeds else set()
    return runs[runs["seed"].isin(common)]
