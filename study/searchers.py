"""Ray Tune searchers that hand out a study's trials (each plan builds its own: `study.plans`).

`PlanSearcher` serves a fixed list (a grid: every variant for every seed group). Its
subclass `AlphaEscalationSearcher` grows the list as rungs finish (Sec. 3.2: for each N,
alpha += step until a run diverges). `FinalMetricOptuna` runs Optuna on each trial's final
result (the downstream metric exists only there). All save and restore their state, so
`Tuner.restore` (`--resume`) continues the plan, and Optuna's history, instead of starting
again. `replay_complete` replays a searcher over finished trials to tell whether its plan
is done; `plan_complete` asks a study's plan.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from analysis.load import run_row, tidy_trials
from analysis.rank_estimate import RankAnswer, check_budget, trials_answer
from trainables.contract import Completed, member_results, member_run_configs

if TYPE_CHECKING:  # annotations only: at run time searchers import no other study module
    from .spec import StudySpec


class PickledState:
    """A searcher's save/restore for `Tuner.restore`: its whole state, pickled."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


class PlanSearcher(PickledState, Searcher):
    """Suggests queued configs in order; FINISHED once the queue is empty and nothing runs."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__(metric="loss", mode="min")
        self.queue = list(configs)
        self.live: dict[str, dict[str, Any]] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.queue:
            config = self.queue.pop(0)
            self.live[trial_id] = config
            return config
        return None if self.live else Searcher.FINISHED

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        config = self.live.pop(trial_id, None)
        if config is None:
            return
        self.after_trial(config, result, error)

    def after_trial(self, config: dict[str, Any], result: dict[str, Any] | None, error: bool):
        """Hook for plans that depend on outcomes."""


def trial_diverged(result: dict[str, Any] | None) -> bool:
    return bool(result and result.get("diverged"))


class AlphaEscalationSearcher(PlanSearcher):
    """Per depth N: run every seed at alpha; all stable -> the next rung; any diverged -> stop."""

    def __init__(self, spec: StudySpec) -> None:
        plan = spec.plan
        self.spec, self.plan = spec, plan
        # diverged per member (None: the trial failed)
        self.rung_outcomes: dict[tuple[int, float], list[bool | None]] = {}
        super().__init__([c for n in plan.depths for c in self._rung(n, plan.ladder()[0])])

    def _rung(self, depth: int, alpha: float) -> list[dict[str, Any]]:
        rung = self.plan.rung(depth, alpha)
        return [self.spec.trial_config(rung, seeds) for seeds in self.spec.seed_groups()]

    def after_trial(self, config: dict[str, Any], result: dict[str, Any] | None, error: bool):
        depth, alpha = config["depth"], config["alpha"]
        outcomes = self.rung_outcomes.setdefault((depth, alpha), [])
        # an errored trial (after its retries) failed: it says nothing about alpha, so it is
        # recorded as failed (None), never as a divergence that would end the ladder
        outcomes.extend(
            None if error else trial_diverged(r) for r in member_results(config, result)
        )
        if len(outcomes) < len(self.spec.seeds) or any(outcomes):
            return  # the rung is still running, or it diverged: this N's ladder ends
        next_alpha = self.plan.next_alpha(alpha)
        if next_alpha is not None:
            self.queue.extend(self._rung(depth, next_alpha))


class RankEstimateSearcher(AlphaEscalationSearcher):
    """The escalation, then, once every ladder has ended, the check at its estimate: explicit
    k around it and vanilla (`study.plans.RankEstimate`)."""

    def __init__(self, spec: StudySpec) -> None:
        self.rows: list[dict[str, Any]] = []  # the ladder's runs so far (`run_row`)
        self.check_queued = False
        super().__init__(spec)

    def after_trial(self, config: dict[str, Any], result: dict[str, Any] | None, error: bool):
        if config["bottleneck"] != "linear_net":
            return  # the check's runs change nothing in the plan
        members = zip(member_run_configs(config), member_results(config, result), strict=True)
        self.rows += [run_row(run, metrics, error) for run, metrics in members]
        super().after_trial(config, result, error)

    def answer(self) -> RankAnswer | None:
        """The estimate from the ladder's runs so far, by the report's own rule."""
        return trials_answer(tidy_trials([dict(row) for row in self.rows])) if self.rows else None

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if not self.queue and not self.live and not self.check_queued:
            self.check_queued = True
            answer = self.answer()
            if answer is not None:
                estimate = self.spec.run_config({}, self.spec.seeds[0])
                budget = check_budget(estimate)
                for variant in self.plan.knee_variants(answer.rank, estimate.latent_dim, budget):
                    self.queue.extend(
                        self.spec.trial_config(variant, seeds)
                        for seeds in self.plan.check_groups(self.spec.seed_groups())
                    )
        return super().suggest(trial_id)


class FinalMetricOptuna(PickledState, Searcher):
    """Ray's `OptunaSearch`, told only each trial's final objective; then the confirmation.

    The objective (a validation metric such as `val_acc_selected`) is computed once, after
    the last epoch, so the per-epoch results do not carry it. Given to Tune directly,
    `OptunaSearch` makes Tune demand the metric in every result (and feeds each one to
    Optuna's pruner). This wrapper declares no metric to Tune and hands Optuna the final
    objective and nothing else (no test number ever reaches the sampler): a trial without
    it (a diverged run) is recorded as pruned. Once `num_samples` search trials have
    finished, the best one's configuration is queued on fresh seeds (`confirmations`):
    those runs are the search's reported result, and Optuna never hears of them.

    The Optuna study lives in `storage_url` (an sqlite file beside the invocation record),
    so its history survives a crash and can be opened with `optuna.load_study`.
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
        from ray.tune.search.optuna import OptunaSearch

        super().__init__(metric=None, mode=None)
        storage = None
        if storage_url:
            import optuna

            storage = optuna.storages.RDBStorage(storage_url)
            direction = "maximize" if mode == "max" else "minimize"
            record = optuna.create_study(
                storage=storage, study_name=study_name, direction=direction, load_if_exists=True
            )
            record.set_user_attr("objective", metric)  # what the report reads it as
        self.objective, self.direction = metric, mode
        self.inner = OptunaSearch(
            space=space, metric=metric, mode=mode, seed=seed, storage=storage, study_name=study_name
        )
        self.num_samples, self.confirmations = num_samples, confirmations
        self.searched: dict[str, dict[str, Any]] = {}  # search trial id -> its config
        self.scores: dict[str, float] = {}  # finished search trial id -> objective (or nan)
        self.queue: list[dict[str, Any]] = []
        self.confirm_queued = False

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.num_samples is None or len(self.searched) < self.num_samples:
            config = self.inner.suggest(trial_id)
            if isinstance(config, dict):
                self.searched[trial_id] = config
            return config
        if not self.confirm_queued and len(self.scores) == len(self.searched):
            self.confirm_queued = True
            chosen = self.chosen()
            if chosen is not None and self.confirmations is not None:
                self.queue = self.confirmations(chosen)
        if self.queue:
            return self.queue.pop(0)
        return Searcher.FINISHED if self.confirm_queued else None

    def chosen(self) -> dict[str, Any] | None:
        """The finished search trial with the best objective (None: none has one)."""
        scored = [(v, t) for t, v in self.scores.items() if math.isfinite(v)]
        if not scored:
            return None
        pick = max if self.direction == "max" else min
        return self.searched[pick(scored)[1]]

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Per-epoch results have no objective: nothing to tell Optuna."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.searched:
            return  # a confirmation run: reported, never told to the sampler
        value = (result or {}).get(self.objective, math.nan)
        self.scores[trial_id] = value
        # Optuna refuses a NaN value and Ray's OptunaSearch only logs that, leaving the
        # Optuna trial RUNNING forever: a non-finite objective is a missing one (pruned)
        told = {self.objective: value} if math.isfinite(value) else {}
        self.inner.on_trial_complete(trial_id, result=told, error=error)


def plan_complete(spec: StudySpec, completed: Completed) -> bool:
    """Whether the study's plan has nothing left to hand out, given its completed trials
    ((config, final metrics, errored) per finished trial, as Tune's `ResultGrid` gives them).
    Works the same for local and remote (`s3://`) storage."""
    return spec.plan.complete(spec, completed)


def replay_complete(searcher: PlanSearcher, completed: Completed) -> bool:
    """Replay a fresh searcher over the completed trials: every config it suggests must be
    among them until it answers FINISHED (so an escalation stopped between two rungs is not
    done)."""
    pool = list(completed)
    for step in range(len(pool) + 1):
        suggestion = searcher.suggest(f"replay-{step}")
        if suggestion == Searcher.FINISHED:
            return True
        match = next((t for t in pool if t[0] == suggestion), None)
        if match is None:
            return False  # a trial the plan still has to run
        pool.remove(match)
        config, result, error = match
        searcher.on_trial_complete(f"replay-{step}", None if error else result, error)
    return False
