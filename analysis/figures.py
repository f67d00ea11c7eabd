"""Figures people would rather look at than read: the paper's Figs. 1-5 from a study's frames.

Each function takes the tidy frames of `analysis.load` and returns a matplotlib Figure, or
raises `NotApplicable` with a sentence saying why the study's data cannot show it (a linear
study has no downstream metrics; a depth sweep has one alpha), which the report prints in
the figure's place. Seeds are drawn as separate points where the paper does (Figs. 2, 4)
and as mean ± sd where it summarises (Figs. 1, 3).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from rankae.records import TOP_SINGULAR_VALUES

from .compare import TASKS, alpha_swept, config_label, configurations, healthy
from .load import METHOD_ORDER
from .verdicts import explicit_points

TOP = TOP_SINGULAR_VALUES
METHOD_STYLE = {  # marker and colour per method, the same in every figure
    "vanilla": ("s", "0.35"),
    "explicit": ("D", "k"),
    "standard": ("^", "tab:orange"),
    "he_normal": ("v", "tab:purple"),
    "orthogonal": ("o", "tab:blue"),
}
DIVERGED_COLOUR = "tab:red"
TRAJECTORY_ROWS = (("loss", "loss"), ("we_rank", "W_e rank"), ("latent_rank", "latent rank"))
FIG5_PREFERENCE = ("orthogonal", "standard", "he_normal", "explicit", "vanilla")
FLOOR = 1e-6  # Fig. 5 shows singular values down to this fraction of the largest
ALPHA_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")


class NotApplicable(Exception):
    """This study's data cannot show the figure; the message says why, in one sentence."""


def _methods(frame: pd.DataFrame) -> list[str]:
    present = set(frame["method"])
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def _depth_colours(depths: list[int]) -> dict[int, Any]:
    palette = colormaps["viridis"]
    span = max(len(depths) - 1, 1)
    return {d: palette(0.9 * i / span) for i, d in enumerate(sorted(depths))}


def _panels(count: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, list[Any]]:
    """`count` panels in rows of at most two (readable at a column's width when printed;
    a 1 x 5 strip is not), unused slots removed."""
    columns = min(count, 2)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(width * columns, height * rows))
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for spare in axes[count:]:
        spare.remove()
    return figure, axes[:count]


def _legend_outside(figure: Figure, axes: Any) -> None:
    """One legend right of the panels (they show the same series), never over the data."""
    entries: dict[str, Any] = {}
    for axis in np.ravel(axes):
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), loc="center left",
                      bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)  # fmt: skip


def spectrum_trajectory(
    spectra: list[dict[str, Any]], title: str = "", top: int = TOP, threshold: float = 0.01
) -> Figure:
    """Fig. 5: the top singular values of W_e (left) and of the latent codes (right) per epoch.

    Greedy rank learning shows as singular values leaving the floor one after another. The
    dashed line is the rank threshold (`threshold` x the largest singular value): values
    above it count towards the rank. A dotted line marks a two-stage run's switch to the
    explicit bottleneck. Values far below the threshold (numerical zeros) are cut off at
    `FLOOR` x the largest, so they do not squeeze the informative range.
    """
    figure = Figure(figsize=(10, 3.8))
    axes = figure.subplots(1, 2, sharex=True)
    epochs = [row["epoch"] for row in spectra]
    colours = colormaps["plasma"](np.linspace(0, 0.85, top))
    for axis, key, label in ((axes[0], "we", "W_e"), (axes[1], "latent", "latent codes")):
        rows = [row[key] for row in spectra]
        if all(r is None for r in rows):
            axis.text(0.5, 0.5, f"no {label} in this run", ha="center", transform=axis.transAxes)
        else:
            for i in range(top):
                values = [r[i] if r is not None and len(r) > i else float("nan") for r in rows]
                axis.plot(epochs, values, lw=1.4, color=colours[i], label=f"$\\sigma_{{{i + 1}}}$")
            largest = [r[0] * threshold if r else float("nan") for r in rows]
            axis.plot(epochs, largest, color="0.4", ls="--", lw=1, label="rank threshold")
            axis.set_yscale("log")
            axis.set_ylim(bottom=np.nanmax([r[0] for r in rows if r]) * FLOOR)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel("singular value")
        axis.set_title(f"top {top} singular values of {label}")
        axis.grid(alpha=0.3)
    switches = [row["epoch"] for prev, row in pairwise(spectra) if row["stage"] != prev["stage"]]
    for axis in axes:
        for epoch in switches:
            axis.axvline(epoch - 0.5, color="k", ls=":", lw=1, label="stage switch")
    figure.suptitle(title)
    figure.tight_layout()
    _legend_outside(figure, axes)
    return figure


def rank_trajectories(history: pd.DataFrame, x: str = "step") -> Figure:
    """Fig. 1: loss, W_e rank and latent rank against training progress; one column per method.

    One line per configuration (N, alpha, or k), the mean over its seeds, coloured by N, so
    the effect of depth under each init reads along a row.
    """
    if history.empty:
        raise NotApplicable("no run of this study logged an epoch")
    rows = [
        (metric, label)
        for metric, label in TRAJECTORY_ROWS
        if metric in history and history[metric].notna().any()
    ]
    methods = _methods(history)
    figure = Figure(figsize=(3.6 * len(methods) + 0.6, 2.5 * len(rows) + 0.6))
    axes = figure.subplots(len(rows), len(methods), sharex=True, squeeze=False)
    colours = _depth_colours(sorted({int(d) for d in history["depth"].dropna()}))
    for col, method in enumerate(methods):
        runs = history[history["method"] == method]
        k_colours = _depth_colours(sorted({int(k) for k in runs["k"].dropna()}))
        several_alphas = runs["alpha"].nunique() > 1
        several_variants = "variant" in runs and runs["variant"].nunique() > 1
        groups = runs.groupby(configurations(runs)[1:], dropna=False, sort=True)
        for (depth, alpha, k, *variant), group in groups:  # variant: a swept other setting
            per_epoch = group.groupby("epoch").mean(numeric_only=True)
            spread = group.groupby("epoch").std(numeric_only=True)  # NaN with one seed
            shown_alpha = alpha if several_alphas else None
            label = config_label("", depth, shown_alpha, k, *variant) or method
            colour = (
                colours[int(depth)] if not pd.isna(depth)
                else k_colours[int(k)] if not pd.isna(k)
                else METHOD_STYLE[method][1]
            )  # fmt: skip
            style = (
                "-" if pd.isna(alpha) or not several_alphas else _line_style(runs, "alpha", alpha)
            )
            if several_variants:  # the swept setting tells the lines apart (labels say which)
                style = _line_style(runs, "variant", variant[0])
            for row, (metric, _) in enumerate(rows):
                if per_epoch[metric].notna().any():
                    axes[row, col].plot(
                        per_epoch[x], per_epoch[metric], color=colour, ls=style, lw=1.4,
                        label=label,
                    )  # fmt: skip
                    if spread[metric].notna().any():  # ± sd over seeds, where there are seeds
                        axes[row, col].fill_between(
                            per_epoch[x], per_epoch[metric] - spread[metric],
                            per_epoch[metric] + spread[metric], color=colour, alpha=0.15, lw=0,
                        )  # fmt: skip
        axes[0, col].set_title(method)
        for row, (metric, label) in enumerate(rows):
            axis = axes[row, col]
            axis.grid(alpha=0.3)
            if metric == "loss":
                _plain_log_axis(axis)
            elif axis.lines:
                axis.set_ylim(bottom=0)
            if not axis.lines:
                axis.text(0.5, 0.5, f"no {label} ({method})", ha="center", transform=axis.transAxes)
                axis.set_yticks([])
            if col == 0:
                axis.set_ylabel(label)
        axes[-1, col].set_xlabel("optimiser step" if x == "step" else x)
        axes[0, col].legend(fontsize=7, loc="best")
    figure.suptitle("Fig. 1: rank trajectories per init (mean over seeds, band ± sd)")
    figure.tight_layout()
    return figure


def _plain_log_axis(axis: Any) -> None:
    """Log y with plain numbers (0.3, not 3 x 10^-1); minor ticks labelled only within a decade,
    where they are the only labels, and left bare on wider ranges, where they would crowd."""
    axis.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:.2g}")
    axis.yaxis.set_major_formatter(plain)
    low, high = axis.get_ylim()
    axis.yaxis.set_minor_formatter(plain if high / low < 10 else NullFormatter())


def _line_style(runs: pd.DataFrame, column: str, value: Any) -> str:
    values = sorted(runs[column].dropna().unique())
    return ("-", "--", ":", "-.")[values.index(value) % 4]


def _tasks_with_data(trials: pd.DataFrame) -> list:
    good = healthy(trials)
    return [t for t in TASKS if t.metric in good and good[t.metric].notna().any()]


def downstream_vs_rank(trials: pd.DataFrame) -> Figure:
    """Fig. 2: each downstream metric against the final latent rank, every seed a point.

    Points are annotated with N (sub-network) or k (explicit), so which depth gave which
    rank, and which rank gave which score, reads off one panel.
    """
    tasks = _tasks_with_data(trials)
    if not tasks:
        raise NotApplicable("this study has no downstream metrics (accuracy, FID)")
    good = healthy(trials)
    figure, axes = _panels(len(tasks))
    for axis, task in zip(axes, tasks, strict=True):
        runs = good.dropna(subset=[task.metric, "latent_rank"])
        for method in _methods(runs):
            part = runs[runs["method"] == method]
            marker, colour = METHOD_STYLE.get(method, ("o", "k"))
            axis.scatter(part["latent_rank"], part[task.metric], marker=marker, color=colour,
                         label=method, alpha=0.8)  # fmt: skip
            several_alphas = part["alpha"].nunique() > 1
            for row in part.itertuples():
                alpha = row.alpha if several_alphas else None
                note = config_label("", row.depth, alpha, row.k)
                if note:
                    axis.annotate(note, (row.latent_rank, getattr(row, task.metric)),
                                  textcoords="offset points", xytext=(4, 4), fontsize=7,
                                  color=colour)  # fmt: skip
        axis.margins(0.15)
        axis.set_xlabel("latent rank (final)")
        axis.set_title(task.label)
        axis.grid(alpha=0.3)
    figure.suptitle("Fig. 2: downstream metrics vs latent rank (N or k annotated; one per seed)")
    figure.tight_layout()
    _legend_outside(figure, axes)
    return figure


def metrics_vs_alpha(trials: pd.DataFrame) -> Figure:
    """Fig. 3: latent rank and downstream metrics against alpha, one line per N (mean ± sd).

    Diverged (N, alpha) are marked with a red x on the axis, and the alphas at or beyond
    the first divergence of any N are shaded: the paper's "too large alpha" region.
    """
    net = alpha_swept(trials)
    if net.empty:
        raise NotApplicable("this study has no alpha sweep (each N ran at one alpha)")
    metrics = [("latent_rank", "latent rank (final)")]
    metrics += [(t.metric, t.label) for t in _tasks_with_data(net)]
    depths = sorted({int(d) for d in net["depth"].dropna()})
    colours = _depth_colours(depths)
    good = healthy(net)
    bad = net[net["diverged"]]
    figure, axes = _panels(len(metrics))
    for axis, (metric, label) in zip(axes, metrics, strict=True):
        for depth in depths:
            stats = good[good["depth"] == depth].groupby("alpha")[metric].agg(["mean", "std"])
            stats = stats.dropna(subset=["mean"])
            axis.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                          ms=4, capsize=3, color=colours[depth], label=f"N={depth}")  # fmt: skip
        for depth, alpha in sorted(set(zip(bad["depth"].astype(int), bad["alpha"], strict=True))):
            axis.plot([alpha], [0.04], marker="x", ms=9, mew=2, color=colours[depth],
                      transform=axis.get_xaxis_transform(), ls="none",
                      label=f"diverged (N={depth})")  # fmt: skip
        if not bad.empty:
            axis.axvspan(bad["alpha"].min(), net["alpha"].max(), color=DIVERGED_COLOUR, alpha=0.08)
        axis.set_xlabel("alpha")
        # the panel title names the metric: a y label as long would overlap its neighbour
        axis.set_title(label)
        axis.grid(alpha=0.3)
    shaded = " (shaded: alpha at or past a divergence)" if not bad.empty else ""
    figure.suptitle(f"Fig. 3: metrics vs alpha per N, mean ± sd over seeds{shaded}")
    figure.tight_layout()
    _legend_outside(figure, axes)
    return figure


def implicit_vs_explicit(trials: pd.DataFrame) -> Figure:
    """Fig. 4, per seed: each seed's explicit curve over k (one colour per seed, vanilla at
    k = d) and the ranks and scores its sub-network runs reached (same colour; marker by
    configuration). Seeds are never averaged: a curve's offset is the seed's own.

    `trials` pools the explicit sweep and the sub-network runs (they are often two studies).
    """
    net = healthy(trials)
    net = net[net["bottleneck"] == "linear_net"]
    panels = []
    for task in _tasks_with_data(trials):
        points = explicit_points(trials, task.metric)
        runs = net.dropna(subset=[task.metric, "latent_rank"])
        runs = runs[runs["seed"].isin(points["seed"])]
        if not points.empty and not runs.empty:
            panels.append((task, points, runs))
    if not panels:
        raise NotApplicable(
            "needs both explicit-bottleneck runs and sub-network runs with downstream metrics "
            "at the same seeds (e.g. mnist_explicit with mnist_alpha_sweep)"
        )
    figure, axes = _panels(len(panels), width=5.2, height=4.2)
    seeds = sorted({int(s) for p in panels for s in p[1]["seed"]})
    colours = dict(zip(seeds, colormaps["tab10"].colors, strict=False))
    configs = sorted(
        {
            (m, int(d), float(a))
            for p in panels
            for m, d, a in zip(p[2]["method"], p[2]["depth"], p[2]["alpha"], strict=True)
        }
    )
    for axis, (task, points, runs) in zip(axes, panels, strict=True):
        for seed, curve in points.groupby("seed"):
            curve = curve.sort_values("k")
            axis.plot(curve["k"], curve["value"], color=colours[int(seed)], marker="D", ms=4,
                      label=f"explicit, seed {int(seed)}")  # fmt: skip
        for run in runs.itertuples():
            i = configs.index((run.method, int(run.depth), float(run.alpha)))
            axis.scatter([run.latent_rank], [getattr(run, task.metric)], s=60, zorder=3,
                         marker=ALPHA_MARKERS[i % len(ALPHA_MARKERS)], edgecolor="k",
                         facecolor=colours[int(run.seed)], linewidth=0.8,
                         label=config_label(run.method, run.depth, run.alpha, None))  # fmt: skip
        axis.set_xscale("log", base=2)
        ticks = sorted({*(int(k) for k in points["k"]), *(int(r) for r in runs["latent_rank"])})
        axis.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
        axis.set_xlabel("latent rank (explicit: k; vanilla at k = d)")
        axis.set_title(task.label, fontsize=10)
        axis.grid(alpha=0.3)
    figure.suptitle("Fig. 4 per seed: implicit runs (markers) on their own seed's explicit curve")
    figure.tight_layout()
    _legend_outside(figure, axes)
    return figure


def representative_run(history: pd.DataFrame) -> str:
    """The run Fig. 5 shows by default: a healthy one, orthogonal before the other methods,
    N nearest 16, the largest alpha, the lowest seed (the paper shows N = 16, alpha = 300)."""
    preference = {m: i for i, m in enumerate(FIG5_PREFERENCE)}
    runs = history.groupby("run_id", sort=False).agg(
        diverged=("diverged", "max"), method=("method", "first"), depth=("depth", "first"),
        alpha=("alpha", "first"), seed=("seed", "first"),
    )  # fmt: skip
    runs["method_order"] = runs["method"].map(preference).fillna(len(preference))
    runs["depth_gap"] = (runs["depth"].astype("float64") - 16).abs().fillna(0)
    ranked = runs.sort_values(
        ["diverged", "method_order", "depth_gap", "alpha", "seed"],
        ascending=[True, True, True, False, True],
    )
    return str(ranked.index[0])


def top_singular_values(history: pd.DataFrame, run_id: str | None = None) -> Figure:
    """Fig. 5 for one run (default: `representative_run`) from its logged top singular values."""
    if history.empty:
        raise NotApplicable("no run of this study logged an epoch")
    run_id = run_id or representative_run(history)
    run = history[history["run_id"] == run_id].sort_values("epoch")
    if run.empty:
        raise NotApplicable(f"run {run_id} has no history")
    spectra = []
    for row in run.to_dict("records"):
        entry: dict[str, Any] = {"epoch": row["epoch"], "stage": row["stage"]}
        for key in ("we", "latent"):
            values = [row.get(f"{key}_sv_{i}", math.nan) for i in range(1, TOP + 1)]
            entry[key] = None if all(pd.isna(v) for v in values) else values
        spectra.append(entry)
    first = run.iloc[0]
    label = config_label(first["method"], first["depth"], first["alpha"], first["k"])
    title = f"Fig. 5: {label}, seed {first['seed']} ({first['study']})"
    return spectrum_trajectory(spectra, title=title, threshold=float(first["rank_threshold"]))


def final_code_spectra(source: tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]) -> Figure:
    """The comparison figure of the field: each configuration's final latent-code spectrum,
    normalised by its largest value, on a log scale, with the rank threshold; one panel per
    seed (seeds are never pooled), one line per configuration."""
    trials, spectra = source
    runs = healthy(trials)
    runs = runs[runs["run_id"].isin([r for r, s in spectra.items() if s and s[-1].get("latent")])]
    if runs.empty:
        raise NotApplicable("no healthy run has a logged final code spectrum")
    seeds = sorted({int(s) for s in runs["seed"]})
    figure, axes = _panels(len(seeds), width=5.2, height=4.0)
    labels = [config_label(r.method, r.depth, r.alpha, r.k) for r in runs.itertuples()]
    styles = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    colours = colormaps["tab20"].colors
    for axis, seed in zip(axes, seeds, strict=True):
        for run, label in zip(runs.itertuples(), labels, strict=True):
            if int(run.seed) != seed:
                continue
            values = np.asarray(spectra[run.run_id][-1]["latent"], dtype=float)
            values = values / values[0] if values[0] > 0 else values
            i = styles[label]
            axis.plot(np.arange(1, len(values) + 1), np.clip(values, 1e-8, None),
                      color=colours[i % len(colours)], ls=("-", "--", ":")[i // 10 % 3],
                      label=label, lw=1.2)  # fmt: skip
        axis.axhline(float(runs["rank_threshold"].iloc[0]), color="k", ls=":", lw=1,
                     label="rank threshold")  # fmt: skip
        axis.set_yscale("log")
        axis.set_xlabel("index i")
        axis.set_ylabel("σ_i / σ_1 of the centred codes")
        axis.set_title(f"seed {seed}")
        axis.grid(alpha=0.3)
    figure.suptitle("Final normalised code spectra, per seed (one line per configuration)")
    figure.tight_layout()
    _legend_outside(figure, axes)
    return figure


def rank_knee(trials: pd.DataFrame) -> Figure:
    """A rank estimate's check: the explicit bottleneck's loss over k (mean ± sd; held out
    where logged) with the vanilla autoencoder's, the sub-network runs at their final latent
    rank (one point per seed), the estimate and the check's knee (`loss_knee`)."""
    from .rank_estimate import check_losses, loss_knee, trials_answer

    losses, which = check_losses(trials)
    column = "eval_loss" if which == "held-out" else "loss"
    runs = healthy(trials)
    explicit = runs[runs["bottleneck"] == "explicit"].groupby("k")[column].agg(["mean", "std"])
    net = runs[runs["bottleneck"] == "linear_net"].dropna(subset=["latent_rank", column])
    if explicit.empty:
        raise NotApplicable("needs the explicit-bottleneck runs of a rank estimate (rank_of)")
    figure = Figure(figsize=(6.0, 4.2))
    axis = figure.subplots()
    axis.errorbar(explicit.index, explicit["mean"], yerr=explicit["std"].fillna(0), color="k",
                  marker="D", ms=4, capsize=3, label="explicit k (mean ± sd)")  # fmt: skip
    vanilla = runs[runs["bottleneck"] == "vanilla"][column]
    if len(vanilla):
        axis.axhline(vanilla.mean(), color="0.35", ls="--", label="vanilla (k = d)")
    colours = _depth_colours(sorted({int(d) for d in net["depth"]}))
    for (depth, alpha), group in net.groupby(["depth", "alpha"]):
        axis.scatter(group["latent_rank"], group[column], s=36, zorder=3,
                     color=colours[int(depth)], edgecolor="k", linewidth=0.6,
                     label=config_label("orthogonal", depth, alpha, None))  # fmt: skip
    answer = trials_answer(trials)
    if answer is not None:
        axis.axvline(answer.rank, color="tab:green", alpha=0.6,
                     label=f"estimate: latent rank {answer.rank}")  # fmt: skip
    knee = loss_knee(losses)
    if knee is not None and knee.k is not None:
        axis.axvline(knee.k, color="tab:red", ls=":", label=f"the check's knee: k = {knee.k}")
    axis.set_yscale("log")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("k (sub-network runs: their final latent rank)")
    axis.set_ylabel(f"reconstruction loss ({which}, final epoch)")
    axis.set_title("The check: where the explicit bottleneck's loss has its knee", fontsize=10)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    _legend_outside(figure, axis)
    return figure


def id_by_scale(scales: pd.DataFrame) -> Figure:
    """GRIDE's intrinsic dimension (± its standard error) against the neighbourhood's radius,
    the mean distance to the n2-th neighbour (n2 = 2, 4, ..., log x), one line per source
    (`on`: the inputs, a model's codes); `analysis.intrinsic.Panel.scales`, stacked. Each
    source's radii are in its own units: compare the lines' shapes, not their positions."""
    if scales.empty:
        raise NotApplicable("no source had its intrinsic dimension estimated")
    figure = Figure(figsize=(6.0, 4.2))
    axis = figure.subplots()
    for on, group in scales.groupby("on", sort=False):
        axis.errorbar(group["radius"], group["dimension"], yerr=group["error"], marker="o",
                      ms=4, capsize=3, label=on)  # fmt: skip
    axis.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 6 and 100, not 6 x 10^0, 10^2
    axis.xaxis.set_major_formatter(plain)
    low, high = axis.get_xlim()
    axis.xaxis.set_minor_formatter(plain if high / low < 10 else NullFormatter())
    axis.set_xlabel("radius: mean distance to the n2-th neighbour (n2 = 2, 4, ...)")
    axis.set_ylabel("intrinsic dimension (GRIDE, ± standard error)")
    axis.set_title("Intrinsic dimension by scale (GRIDE)", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
