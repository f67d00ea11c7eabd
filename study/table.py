"""The results table printed at the end of a study: one row per configuration, over seeds."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .members import member_configs, member_results, method_of

CONFIG_KEYS = ("method", "depth", "alpha", "k")
SUMMARISED = (
    "latent_rank",
    "we_rank",
    "switch_k",
    "loss",
    "acc_best",
    "acc_selected",
    "acc_pre_best",
    "fid",
)


def trial_rows(trials: list[tuple[dict[str, Any], dict[str, Any] | None, bool]]) -> pd.DataFrame:
    """(config, last result, errored) per trial -> one tidy row per run (a group: per seed)."""
    rows = [
        _run_row(config, result or {}, errored)
        for group_config, group_result, errored in trials
        for config, result in zip(
            member_configs(group_config), member_results(group_config, group_result), strict=True
        )
    ]
    frame = pd.DataFrame(rows)
    for column in ("depth", "k", "epochs"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _run_row(config: dict[str, Any], result: dict[str, Any], errored: bool) -> dict[str, Any]:
    linear_net = config["bottleneck"] == "linear_net"
    row = {
        "method": method_of(config),
        "depth": config["depth"] if linear_net else None,
        "alpha": config["alpha"] if linear_net else None,
        "k": config["k"] if config["bottleneck"] == "explicit" else None,
        "seed": config["seed"],
        "diverged": bool(result.get("diverged", False)),
        "errored": errored,
        "epochs": result.get("epoch"),
        # recoveries: restarted from scratch (unreadable checkpoint) / resumed from epoch e
        "checkpoint_discarded": bool(result.get("checkpoint_discarded", False)),
        "resumed_from_epoch": result.get("resumed_from_epoch"),
    }
    row.update({key: result.get(key) for key in SUMMARISED})
    return row


def _mean_sd(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.4g}"
    return f"{values.mean():.4g} ± {values.std(ddof=1):.2g}"


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: seeds, mean ± sd of ranks, loss and downstream metrics, divergences."""
    keys = [k for k in CONFIG_KEYS if k in rows]
    labels = rows.astype({k: object for k in keys}).fillna({k: "-" for k in keys})
    grouped = labels.groupby(keys, sort=False, dropna=False)
    out = []
    for values, group in grouped:
        row = dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=True))
        row["seeds"] = len(group)
        row["diverged"] = int(group["diverged"].sum())
        row["failed"] = int(group["errored"].sum())
        healthy = group[~group["diverged"] & ~group["errored"]]
        for metric in SUMMARISED:
            if metric in group and group[metric].notna().any():
                row[metric] = _mean_sd(healthy[metric])
        out.append(row)
    return pd.DataFrame(out).fillna("-")


def escalation_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per N: alphas tried, where the ladder diverged (seeds and epochs), the largest stable alpha.

    A ladder that never diverged has no divergence alpha: it reads "none up to <top alpha>",
    and its largest stable alpha is only a lower bound on the true one.
    """
    out = []
    for depth, group in rows.groupby("depth", sort=True):
        bad = group["diverged"] | group["errored"]
        by_alpha = bad.groupby(group["alpha"]).any()
        diverging = sorted(a for a, failed in by_alpha.items() if failed)
        first_bad = diverging[0] if diverging else None
        below = by_alpha[by_alpha.index < first_bad] if first_bad is not None else by_alpha
        stable = [a for a, failed in below.items() if not failed]
        if first_bad is None:
            divergence = f"none up to α={max(by_alpha.index):g}"
        else:
            rung = group[(group["alpha"] == first_bad) & bad]
            reached = rung["epoch" if "epoch" in rung else "epochs"]  # analysis / CLI rows
            epochs = ", ".join(str(e) for e in reached.dropna().astype(int))
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


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows of text cells as lines with left-aligned columns two spaces apart (console tables)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
