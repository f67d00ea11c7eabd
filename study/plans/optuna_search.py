"""Optuna over the bottleneck, selected on a validation metric, then the chosen configuration
re-trained on fresh seeds (its test numbers there are the search's result)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.search import confirmation
from rankae.config import ConfigError
from rankae.records import SELECTABLE_METRICS
from search_spaces import Variant
from trainables.contract import Completed, trial_runs

from .base import FINISHED, Outcome, Search, Suggestion, Trials


@dataclass(frozen=True)
class OptunaSpace:
    """Optuna over the bottleneck (explicit k, or orthogonal N and alpha) for a metric that
    may be selected on (`rankae.records.SELECTABLE_METRICS`: validation or training numbers,
    never a test one), then the chosen configuration re-trained on `confirm_runs` fresh seeds
    (the ones after the search's seed): its test accuracy there is the search's result.

    `conditional` maps a config key to (low, high) for a number, sampled only when
    `bottleneck` takes that value. At most `max_concurrent` trials run at once (unless
    --max-concurrent says otherwise), so TPE samples from results instead of guessing.
    """

    metric: str = "val_acc_selected"
    mode: str = "max"
    num_samples: int = 40
    confirm_runs: int = 3
    max_concurrent: int | None = 4
    bottlenecks: tuple[str, ...] = ("explicit", "linear_net")
    conditional: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "explicit": {"k": (2, 128)},
            "linear_net": {"depth": (2, 32), "alpha": (1.0, 500.0)},
        }
    )
    fixed: Variant = field(default_factory=lambda: {"init": "orthogonal"})
    at_most = False
    groups_seeds = False  # a trial is one sampled config with one seed

    def __post_init__(self) -> None:
        if self.metric not in SELECTABLE_METRICS:
            raise ConfigError(
                f"optuna metric {self.metric!r} is not allowed: select on one of "
                f"{', '.join(SELECTABLE_METRICS)} (a test metric is reported, never optimised)"
            )

    def all_variants(self) -> list[Variant]:
        """Each bottleneck at its ranges' low ends (what validation builds)."""
        return [
            {**self.fixed, "bottleneck": choice}
            | {key: low for key, (low, _) in self.conditional.get(choice, {}).items()}
            for choice in self.bottlenecks
        ]

    def runs(self, seeds: Sequence[int]) -> list[tuple[Variant, int]]:
        """`num_samples` runs of the first seed, then the confirmation's, priced as the first
        bottleneck (the autoencoder around it costs the same for every sample)."""
        variant = self.all_variants()[0]
        search = [(variant, seeds[0])] * self.num_samples
        return search + [(variant, seed) for seed in self.confirm_seeds(seeds[0])]

    def confirm_seeds(self, search_seed: int) -> list[int]:
        """Fresh seeds for the confirmation: the `confirm_runs` seeds after the search's."""
        return list(range(search_seed + 1, search_seed + 1 + self.confirm_runs))

    def trial_count(self, seed_groups: int) -> int:
        return self.num_samples + self.confirm_runs

    def in_flight(self, runs: int, seeds: int) -> int:
        return min(runs, self.max_concurrent or runs)

    def varied_keys(self) -> set[str]:
        return {"bottleneck"} | {key for space in self.conditional.values() for key in space}

    def named_keys(self) -> tuple[str, ...]:
        return ()  # a sample differs in the bottleneck's settings, which the label carries

    def describe(self, seeds: int) -> list[str]:
        return [
            f"optuna: {self.num_samples} trials over {self.bottlenecks} "
            f"{self.conditional}, {self.mode} {self.metric} (at most {self.max_concurrent} at "
            f"once); then the chosen configuration on {self.confirm_runs} fresh seed(s)"
        ]

    def define_by_run(self, trial: Any) -> Variant:
        """Optuna define-by-run function: sample a bottleneck, then its own parameters."""
        choice = trial.suggest_categorical("bottleneck", list(self.bottlenecks))
        out: Variant = {**self.fixed, "bottleneck": choice}
        for key, bounds in self.conditional.get(choice, {}).items():
            low, high = bounds
            if isinstance(low, int) and isinstance(high, int):
                out[key] = trial.suggest_int(key, low, high, log=True)
            else:
                out[key] = trial.suggest_float(key, low, high, log=True)
        return out

    def search(self, trials: Trials, storage_url: str | None, name: str) -> Search:
        return FinalMetricOptuna(
            functools.partial(_sampled_trial, self, trials), self.metric, self.mode,
            trials.seeds[0], storage_url, name, num_samples=self.num_samples,
            confirmations=functools.partial(_confirmation_trials, self, trials),
        )  # fmt: skip

    def tune_samples(self) -> int:
        return self.num_samples + self.confirm_runs

    def complete(self, trials: Trials, completed: Completed) -> bool:
        return len(completed) >= self.tune_samples()

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        """The configuration chosen on the validation metric and its fresh-seed results."""
        table = confirmation(trials, self.metric, self.mode)
        if table.empty:
            return []
        metrics = {"confirmed_acc_selected_mean": float(table["acc_selected"].mean())}
        return [("chosen on validation, re-trained on fresh seeds (test accuracy)", table, metrics)]


def _sampled_trial(plan: OptunaSpace, trials: Trials, trial: Any) -> dict[str, Any]:
    return trials.trial(plan.define_by_run(trial), trials.seeds[:1])


def _confirmation_trials(
    plan: OptunaSpace, trials: Trials, chosen: dict[str, Any]
) -> list[dict[str, Any]]:
    """The chosen search trial's configuration once per confirmation seed."""
    run = trial_runs(chosen)[0]
    variant = {key: getattr(run, key) for key in plan.varied_keys() | set(plan.fixed)}
    return [trials.trial(variant, (seed,)) for seed in plan.confirm_seeds(trials.seeds[0])]


class FinalMetricOptuna:
    """An Optuna study (TPE, seeded) told only each trial's final objective; then the
    confirmation.

    The objective (a validation metric such as `val_acc_selected`) is computed once, after
    the last epoch, so only a finished trial has it: Optuna hears the objective and nothing
    else (no test number ever reaches the sampler); a trial without a finite one (a
    diverged run) is recorded as pruned, an errored one as failed. Once `num_samples` search
    trials have finished, the best one's configuration is queued on fresh seeds
    (`confirmations`): those runs are the search's reported result, and Optuna never hears
    of them.

    The Optuna study lives in `storage_url` (an sqlite file beside the invocation record),
    so its history survives a crash and can be opened with `optuna.load_study`; what this
    object keeps (the sampler's state, which Optuna trial each of Tune's is) pickles, so
    `--resume` continues the same search.
    """

    def __init__(
        self,
        space: Callable[[Any], dict[str, Any]],
        metric: str,
        mode: str,
        seed: int,
        storage_url: str | None = None,
        study_name: str = "optuna",
        num_samples: int | None = None,
        confirmations: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None,
    ) -> None:
        import optuna

        self.space, self.objective, self.direction = space, metric, mode
        self.storage_url, self.study_name = storage_url, study_name
        self.sampler = optuna.samplers.TPESampler(seed=seed)
        self.num_samples, self.confirmations = num_samples, confirmations
        self.asked: dict[str, int] = {}  # search trial id -> its Optuna trial number
        self.searched: dict[str, dict[str, Any]] = {}  # search trial id -> its config
        self.scores: dict[str, float] = {}  # finished search trial id -> objective (or nan)
        self.queue: list[dict[str, Any]] = []
        self.confirm_queued = False
        self.study.set_user_attr("objective", metric)  # what the report reads it as

    @functools.cached_property
    def study(self) -> Any:
        import optuna

        return optuna.create_study(
            storage=self.storage_url, sampler=self.sampler, study_name=self.study_name,
            direction="maximize" if self.direction == "max" else "minimize",
            load_if_exists=True,
        )  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "study"}

    def suggest(self, trial_id: str) -> Suggestion:
        if self.num_samples is None or len(self.searched) < self.num_samples:
            trial = self.study.ask()
            self.asked[trial_id] = trial.number
            self.searched[trial_id] = self.space(trial)
            return self.searched[trial_id]
        if not self.confirm_queued and len(self.scores) == len(self.searched):
            self.confirm_queued = True
            chosen = self.chosen()
            if chosen is not None and self.confirmations is not None:
                self.queue = self.confirmations(chosen)
        if self.queue:
            return self.queue.pop(0)
        return FINISHED if self.confirm_queued else None

    def chosen(self) -> dict[str, Any] | None:
        """The finished search trial with the best objective (None: none has one)."""
        scored = [(v, t) for t, v in self.scores.items() if math.isfinite(v)]
        if not scored:
            return None
        pick = max if self.direction == "max" else min
        return self.searched[pick(scored)[1]]

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.searched:
            return  # a confirmation run: reported, never told to the sampler
        import optuna

        value = (result or {}).get(self.objective, math.nan)
        self.scores[trial_id] = value
        state = optuna.trial.TrialState
        if error:
            self.study.tell(self.asked[trial_id], state=state.FAIL)
        elif math.isfinite(value):
            self.study.tell(self.asked[trial_id], value)
        else:  # Optuna refuses a NaN value: a non-finite objective is a missing one
            self.study.tell(self.asked[trial_id], state=state.PRUNED)
