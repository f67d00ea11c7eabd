"""Tune's results as the analysis' trial frame, and console columns.

At the end of a study the CLI prints, and logs to the MLflow parent run, the same
per-configuration table `analysis.report` shows (`analysis.report.summary_table`); this
module turns Tune's (config, last result, errored) per trial into the frame it reads, one
row per run (a trial of several seeds: a row per seed), as `analysis.load` reads MLflow.
"""

from __future__ import annotations

import pandas as pd

from analysis.load import run_row, tidy_trials
from trainables.contract import Completed, member_results, trial_runs


def trials_frame(trials: Completed) -> pd.DataFrame:
    """One row per run (`analysis.load.run_row`): a trial of several seeds gives one per seed."""
    return tidy_trials(
        [
            run_row(run, result, errored)
            for trial_config, trial_result, errored in trials
            for run, result in zip(
                trial_runs(trial_config),
                member_results(trial_config, trial_result),
                strict=True,
            )
        ]
    )


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows of text cells as lines with left-aligned columns two spaces apart (console tables)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
