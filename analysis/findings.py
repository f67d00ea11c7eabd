"""Findings in words, generated from a study's numbers (no canned claims).

Every sentence here is assembled from the trial and comparison tables, so the report says
what this study measured, including when that contradicts the paper or when the data are
too thin (one seed, a smoke preset) to say anything.
"""

from __future__ import annotations

import pandas as pd

from .compare import TASKS, alpha_swept, config_label, escalation_summary, healthy, mean_sd

TASK_BY_METRIC = {t.metric: t for t in TASKS}


def _fmt(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.3g}"


def overview(trials: pd.DataFrame, preset: str = "full") -> list[str]:
    """How much was run, how much of it is usable, and how long it took."""
    configs = trials.groupby(["method", "depth", "alpha", "k"], dropna=False).ngroups
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
    elif preset == "laptop":
        lines.append(
            "This is a --preset laptop invocation (a training subset for a few thousand "
            "steps, FID from a few hundred samples): it shows where each method heads at that "
            "scale, not the paper's 200-epoch values, and its FIDs compare only with runs "
            "at the same sample count."
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
        ranks = runs.groupby(["depth", "alpha", "k"], dropna=False)[["latent_rank", "we_rank"]]
        parts = []
        for (depth, alpha, k), mean in ranks.mean().iterrows():
            text = f"{config_label('', depth, alpha, k)}: {_fmt(mean['latent_rank'])}".lstrip(": ")
            if not pd.isna(mean["we_rank"]):
                text += f" (W_e {_fmt(mean['we_rank'])})"
            parts.append(text)
        line = f"{method}: final latent rank {'; '.join(parts)}"
        if method == "vanilla":
            line += f" of d = {int(runs['latent_dim'].iloc[0])}"
        for alpha, part in runs.groupby("alpha"):
            by_depth = part.groupby("depth")["latent_rank"].mean()
            if len(by_depth) > 1:
                line += (
                    f" — at α={alpha:g} it varies by {_fmt(by_depth.max() - by_depth.min())} "
                    f"across N={', '.join(str(int(d)) for d in by_depth.index)}"
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
    """Per task, the best and the worst configuration of this study (means over seeds).

    The selected-epoch accuracy joins the best-epoch one in a single statement when both
    rank the same configurations first and last (the numbers side by side), so a reader is
    not told the same thing twice.
    """
    good = healthy(trials)
    found = {}  # metric -> (best config, its value, worst config, its value, configurations)
    for task in TASKS:
        if task.metric not in good or good[task.metric].isna().all():
            continue
        keys = ["method", "depth", "alpha", "k"]
        means = good.groupby(keys, dropna=False)[task.metric].mean().dropna()
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


def comparison_findings(table: pd.DataFrame) -> list[str]:
    """Per task: the explicit optimum, how many implicit configurations landed in its range,
    and how far their scores are from the explicit best."""
    lines = []
    for metric, rows in table.groupby("task", sort=False):
        task = TASK_BY_METRIC[metric]
        first = rows.iloc[0]
        inside = rows[rows["rank_in_optimal_range"]]
        line = (
            f"{task.label}: the explicit sweep is best at k={first['best_explicit_k']} "
            f"({mean_sd(first['best_explicit_metric'], first['best_explicit_sd'])}); within "
            f"{_fmt(first['tolerance'])} of it (or better) are k = {first['optimal_k']}. "
            f"{len(inside)} of {len(rows)} sub-network configurations landed their latent "
            "rank inside (each one's rank and gap: the table above)"
        )
        within = int(rows["as_good_as_explicit"].sum())
        scores = rows["implicit_metric"]
        top = rows.loc[scores.idxmax() if task.higher_is_better else scores.idxmin()]
        line += (
            f". {within} of {len(rows)} score as well as the explicit best (within tolerance); "
            f"the best of them: {config_label(top['method'], top['depth'], top['alpha'])} "
            f"(gap {top['gap']:+.3g})."
        )
        lines.append(line)
    return lines
