"""A search's honest result: the configuration chosen on a validation metric, and its
test accuracy from re-training on fresh seeds the search never saw (`study.plans.OptunaSpace`).

The search trials run at one seed; the confirmation runs repeat the chosen configuration
at other seeds. So the confirmed configuration is the one that ran at more than one seed.
"""

from __future__ import annotations

import pandas as pd

from .compare import CONFIG, config_label

REPORTED = ("acc_selected", "acc_best", "kid", "fid", "latent_rank")


def confirmation(trials: pd.DataFrame, objective: str, mode: str = "max") -> pd.DataFrame:
    """Per confirmation run: the chosen configuration, its seed, the search's validation
    score for it, and the test numbers of the fresh-seed run. Empty before the confirmation
    ran (or for a study that searched nothing)."""
    if trials.empty or objective not in trials:
        return pd.DataFrame()
    seeds = trials.groupby(list(CONFIG), dropna=False, sort=False)["seed"].nunique()
    confirmed = seeds[seeds > 1]
    if len(confirmed) != 1:
        return pd.DataFrame()
    key = dict(zip(CONFIG, confirmed.index[0], strict=True))
    runs = trials
    for column, value in key.items():
        runs = runs[runs[column].isna()] if pd.isna(value) else runs[runs[column] == value]
    search_seed = int(trials["seed"].value_counts().idxmax())
    searched = runs[runs["seed"] == search_seed][objective]
    fresh = runs[runs["seed"] != search_seed].sort_values("seed")
    out = pd.DataFrame(
        {
            "configuration": config_label(key["method"], key["depth"], key["alpha"], key["k"]),
            "seed": fresh["seed"].astype(int),
            f"search {objective} (seed {search_seed})": float(searched.iloc[0])
            if len(searched)
            else float("nan"),
        }
    )
    for metric in REPORTED:
        if metric in fresh and fresh[metric].notna().any():
            out[metric] = fresh[metric].to_numpy()
    return out.reset_index(drop=True)
