"""The console progress of a running study: trials done of the plan's total, elapsed, ETA.

Ray's default table names trials by hash, counts a plan of known size as "1/infinite",
shows every parameter of every trial (a vanilla run has no depth or alpha) and points at a
temp folder. This reporter prints the plan's own count, the trials under the names MLflow
gives their runs, the metrics that matter and where the results go.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune import ProgressReporter

from trainables.contract import trial_runs

from .table import aligned

# a vectorised group shows its members' mean loss and how many of them diverged
COLUMNS = ("epoch", "loss", "we_rank", "latent_rank", "stage", "diverged", "members_diverged")
STATES = ("RUNNING", "PENDING", "PAUSED", "TERMINATED", "ERROR")


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlanProgress(ProgressReporter):
    """Every `every_s` seconds (and at the end): one status line and one row per trial.

    `total` is the plan's trial count (`at_most`: an escalation may stop earlier). The ETA
    weighs each trial by its cost-model seconds (`seconds_of(config)`: its epochs' and what
    follows them, `study.cost`; a deep sub-network costs more per epoch than vanilla): work
    done is the finished trials' seconds plus each running trial's epochs-done fraction of
    its epochs' seconds (downstream comes after the last epoch), extrapolated at the
    rate measured in this session to `work_s`, the whole plan's. Until an epoch has
    finished it shows the cost model's estimate of the wall time, `estimate_s`.
    """

    def __init__(
        self,
        title: str,
        total: int,
        at_most: bool,
        results_path: str,
        estimate_s: float,
        work_s: float,
        seconds_of: Callable[[dict[str, Any]], tuple[float, float]],
        every_s: float = 30.0,
    ) -> None:
        self.title, self.total, self.at_most = title, total, at_most
        self.results_path, self.estimate_s, self.every_s = results_path, estimate_s, every_s
        self.work_s, self.seconds_of = work_s, seconds_of
        self.start = time.time()
        self.last_report = 0.0
        self.resumed_work: float | None = None  # work done before this session (--resume)

    def setup(self, start_time: float | None = None, **kwargs: Any) -> None:
        self.start = time.time()  # this session's start: a resumed study's clock restarts

    def should_report(self, trials: list[Any], done: bool = False) -> bool:
        if done or time.time() - self.last_report >= self.every_s:
            self.last_report = time.time()
            return True
        return False

    def report(self, trials: list[Any], done: bool, *sys_info: str) -> None:
        print(self.render(trials, done), flush=True)

    def work_done(self, trials: list[Any]) -> float:
        done = 0.0
        for trial in trials:
            epochs_s, after_s = self.seconds_of(trial.config)
            epochs = trial_runs(trial.config)[0].epochs
            if trial.status in ("TERMINATED", "ERROR"):
                done += epochs_s + after_s  # a trial that stopped early has no work left either
            else:
                done += epochs_s * (trial.last_result or {}).get("epoch", 0) / epochs
        return min(done, self.work_s)

    def eta(self, trials: list[Any]) -> str:
        done = self.work_done(trials)
        if self.resumed_work is None:
            self.resumed_work = done
        elapsed = time.time() - self.start
        if done <= self.resumed_work:
            return f"ETA ~{clock(max(self.estimate_s - elapsed, 0))} (estimate)"
        rate = (done - self.resumed_work) / elapsed
        bound = "at most " if self.at_most else ""
        return f"ETA {bound}~{clock((self.work_s - done) / rate)}"

    def status_line(self, trials: list[Any], done: bool) -> str:
        counts = {s: sum(t.status == s for t in trials) for s in STATES}
        finished = counts["TERMINATED"] + counts["ERROR"]
        total = f"{'up to ' if self.at_most else ''}{self.total}"
        states = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
        elapsed = clock(time.time() - self.start)
        tail = "done" if done else self.eta(trials)
        return f"== {self.title}: {finished}/{total} trials ({states}) | {elapsed} | {tail} =="

    def render(self, trials: list[Any], done: bool) -> str:
        lines = [self.status_line(trials, done)]
        rows = [
            [str(t), t.status.lower()] + [cell(c, (t.last_result or {}).get(c)) for c in COLUMNS]
            for t in trials
        ]
        used = [i for i in range(len(COLUMNS)) if any(row[2 + i] != "" for row in rows)]
        header = ["trial", "status"] + [COLUMNS[i] for i in used]
        table = [header] + [row[:2] + [row[2 + i] for i in used] for row in rows]
        lines += aligned(table)
        lines.append(f"results: {self.results_path}")
        return "\n".join(lines)


def cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or column == "diverged":  # reported as 0/1
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
