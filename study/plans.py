"""A study's plan of trials, each kind knowing everything about itself.

`Grid` (a fixed list of variants, each run once per seed), `AlphaEscalation` (Sec. 3.2: per
N, a ladder of alphas climbed until a run diverges), `RankEstimate` (the escalation on
a user's data, then explicit bottlenecks around the rank it found) and `OptunaSpace` (k / N
/ alpha searched for the best downstream metric). A plan says which variants it can hand out
(every one is built once before Ray starts, so a bad value fails early), how many trials it
takes at most, how many can run at once, which config keys it varies, how it reads in words,
its Ray Tune searcher, whether a finished set of trials completes it, and what its outcome
adds to the results table (`Plan`, the protocol). The rest of the service asks the plan; it
never asks which kind it is.

A variant is a dict of `RunConfig` overrides (`search_spaces` names the paper's);
every trial config is `base | variant | seed | --set overrides`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from rankae.config import ConfigError
from rankae.records import SELECTABLE_METRICS
from search_spaces import Variant

if TYPE_CHECKING:
    from ray.tune.search import Searcher

    from trainables.contract import Completed

    from .spec import StudySpec

Outcome = tuple[str, pd.DataFrame, dict[str, float]]  # title, table, parent-run metrics


class _ReplayedPlan:
    """What the grid and the escalation share: every run of every seed up to the plan's
    bound, a searcher that says itself when it is done, and completion judged by replaying
    that searcher over the finished trials."""

    at_most = False
    groups_seeds = True  # a trial may train several seeds side by side

    def runs(self, seeds: Sequence[int]) -> list[tuple[Variant, int]]:
        """Every run the plan can make: (variant, seed)."""
        return [(variant, seed) for variant in self.all_variants() for seed in seeds]

    def tune_samples(self) -> int:
        return -1  # the searcher says when it is done

    def complete(self, spec: StudySpec, completed: Completed) -> bool:
        from .searchers import replay_complete

        return replay_complete(self.searcher(spec, None, "replay"), completed)

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        return []


@dataclass(frozen=True)
class Grid(_ReplayedPlan):
    """Every variant, once per seed."""

    max_concurrent = None  # no cap of its own: as many trials as the resources allow
    variants: Sequence[Variant]

    def all_variants(self) -> list[Variant]:
        return list(self.variants)

    def trial_count(self, seed_groups: int) -> int:
        return len(self.variants) * seed_groups

    def in_flight(self, runs: int, seeds: int) -> int:
        return runs

    def varied_keys(self) -> set[str]:
        keys = {key for variant in self.variants for key in variant}
        return {k for k in keys if len({repr(v.get(k)) for v in self.variants if k in v}) > 1}

    def describe(self, seeds: int) -> list[str]:
        return [f"grid: {len(self.variants)} configs x {seeds} seeds"] + [
            f"  {variant}" for variant in self.variants
        ]

    def searcher(self, spec: StudySpec, storage_url: str | None, name: str) -> Searcher:
        from .searchers import PlanSearcher

        groups = spec.seed_groups()
        return PlanSearcher([spec.trial_config(v, g) for v in self.variants for g in groups])


def alpha_ladder(
    start: float, step: float, top: float, below: Sequence[float] = ()
) -> tuple[float, ...]:
    """Sec. 3.2's ladder: the `below` alphas under `start` (Fig. 3's "performance improves
    with alpha and converges after ~100" needs alphas under 100), then start, start + step,
    ... up to `top`."""
    alphas, alpha = sorted(a for a in below if a < start), start
    while alpha <= top + 1e-9:
        alphas.append(alpha)
        alpha += step
    return tuple(alphas)


@dataclass(frozen=True)
class AlphaEscalation(_ReplayedPlan):
    """Sec. 3.2: for each N, climb `alphas` until a run diverges.

    A rung (one N, one alpha) runs every seed; the next alpha starts only after the whole
    rung finished without a divergence. The ladder ends at the first diverging rung (its
    alpha is the divergence alpha; the one before is the largest stable alpha) or at its
    top: then no divergence alpha exists, only "no divergence up to" the top.
    """

    depths: Sequence[int]
    alphas: Sequence[float]  # the ladder, ascending (`alpha_ladder` builds Sec. 3.2's)
    variant: Variant = field(
        default_factory=lambda: {"bottleneck": "linear_net", "init": "orthogonal"}
    )
    at_most = True  # the ladder may stop at a divergence before its top
    max_concurrent = None  # one rung per N at a time already (`in_flight`)

    def __post_init__(self) -> None:
        alphas = list(self.alphas)
        if not alphas or alphas != sorted(set(alphas)) or alphas[0] <= 0:
            raise ConfigError(
                f"alphas={alphas!r} is not a ladder: it must be distinct positive values, ascending"
            )

    def ladder(self) -> list[float]:
        return [float(alpha) for alpha in self.alphas]

    def next_alpha(self, alpha: float) -> float | None:
        """The rung after `alpha`, or None at the top of the ladder."""
        return next((a for a in self.ladder() if a > alpha + 1e-9), None)

    def rung(self, depth: int, alpha: float) -> Variant:
        return {**self.variant, "depth": depth, "alpha": alpha}

    def all_variants(self) -> list[Variant]:
        """Every rung of the ladder."""
        return [self.rung(n, a) for n in self.depths for a in self.ladder()]

    def trial_count(self, seed_groups: int) -> int:
        """The most trials the ladder can take (every rung stable up to its top)."""
        return len(self.depths) * len(self.ladder()) * seed_groups

    def in_flight(self, runs: int, seeds: int) -> int:
        return len(self.depths) * seeds  # one rung per N at a time

    def varied_keys(self) -> set[str]:
        return {"depth", "alpha"}  # the searcher keys rungs on the trial's (N, alpha)

    def describe(self, seeds: int) -> list[str]:
        ladder = ", ".join(f"{a:g}" for a in self.ladder())
        return [
            f"alpha escalation per N in {list(self.depths)}: alpha = {ladder} "
            f"(all {seeds} seeds per rung; stop at the first divergence)"
        ]

    def searcher(self, spec: StudySpec, storage_url: str | None, name: str) -> Searcher:
        from .searchers import AlphaEscalationSearcher

        return AlphaEscalationSearcher(spec)

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        """The ladder per N, and its largest stable and divergence alphas as metrics."""
        from analysis.compare import escalation_summary

        ladder = escalation_summary(trials)
        metrics: dict[str, float] = {}
        for row in ladder.itertuples():
            if row.largest_stable_alpha is not None:
                metrics[f"largest_stable_alpha_N{row.depth}"] = row.largest_stable_alpha
            if row.divergence_alpha is not None:
                metrics[f"divergence_alpha_N{row.depth}"] = row.divergence_alpha
        shown = ladder[["depth", "alphas_tried", "divergence", "largest_stable", "failed"]]
        return [("alpha escalation", shown, metrics)]


@dataclass(frozen=True)
class RankEstimate(AlphaEscalation):
    """A user's latent rank (`study.studies.rank_of`): the alpha escalation per N, then the
    check, queued once every ladder has ended: the explicit bottleneck at k around the
    estimate and the vanilla autoencoder, every seed (`analysis.rank_estimate.check_variants`).
    """

    check_seeds: int | None = None  # the check trains the first this many seeds (None: all)

    def knee_variants(
        self, rank: int, latent_dim: int, budget: Variant | None = None
    ) -> list[Variant]:
        """The check's runs; `budget` (their lr and epochs) is derived from the estimate's
        settings by the searcher, so a `--set` of those settings carries over."""
        from analysis.rank_estimate import check_variants

        return check_variants(rank, latent_dim, budget)

    def check_groups(self, groups: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
        """The seed groups of the check: `groups` holding only the first `check_seeds` seeds."""
        keep = {seed for group in groups for seed in group}
        keep = set(sorted(keep)[: self.check_seeds])
        kept = (tuple(seed for seed in group if seed in keep) for group in groups)
        return [group for group in kept if group]

    def all_variants(self) -> list[Variant]:
        """Every rung, and the check's runs at an estimate of 1 (one of each kind)."""
        return super().all_variants() + self.knee_variants(1, 1)

    def largest_check(self) -> list[Variant]:
        """What the plan is priced with before the estimate is known: the check's runs for an
        estimate of 8 at d = 64 (22 widths) and vanilla, each explicit one at k = 1 so it is
        valid at any d (the autoencoder around the bottleneck costs the same at every k)."""
        check = self.knee_variants(8, 64)
        return [{**v, "k": 1} if v["bottleneck"] == "explicit" else v for v in check]

    def runs(self, seeds: Sequence[int]) -> list[tuple[Variant, int]]:
        """Every rung up to the top, and the largest check."""
        check = self.largest_check()
        checked = seeds[: self.check_seeds]
        return super().runs(seeds) + [(variant, seed) for variant in check for seed in checked]

    def trial_count(self, seed_groups: int) -> int:
        """At most: a group of several seeds may hold both of the check's."""
        checked = min(seed_groups, self.check_seeds or seed_groups)
        return super().trial_count(seed_groups) + len(self.largest_check()) * checked

    def varied_keys(self) -> set[str]:
        return super().varied_keys() | {key for v in self.knee_variants(4, 64) for key in v}

    def describe(self, seeds: int) -> list[str]:
        return super().describe(seeds) + [
            "then the check at the estimate r: explicit k = 1 ... 2r+4 and the powers of two "
            f"up to d, and vanilla, {min(seeds, self.check_seeds or seeds)} seeds each"
        ]

    def searcher(self, spec: StudySpec, storage_url: str | None, name: str) -> Searcher:
        from .searchers import RankEstimateSearcher

        return RankEstimateSearcher(spec)

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        """The answer with its evidence: the ladder and ranks per N, then the knee."""
        from analysis.rank_estimate import knee_table, per_depth_table, trials_answer, verdict

        answer = trials_answer(trials)
        metrics: dict[str, float] = {}
        for _, _, ladder_metrics in super().outcome(trials):
            metrics |= ladder_metrics
        if answer is not None:
            metrics |= {
                "rank_estimate": answer.rank,
                "rank_low": answer.low,
                "rank_high": answer.high,
                "rank_stable": float(answer.stable),
            }
        knee = knee_table(trials, answer)
        return [
            (f"latent-rank estimate: {verdict(trials)}", per_depth_table(trials), metrics),
            ("the check: explicit bottleneck d -> k -> d and vanilla", knee, {}),
        ]


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

    def searcher(self, spec: StudySpec, storage_url: str | None, name: str) -> Searcher:
        from .searchers import FinalMetricOptuna

        space = functools.partial(_sampled_trial, spec)
        confirm = functools.partial(_confirmation_trials, spec)
        return FinalMetricOptuna(
            space, self.metric, self.mode, spec.seeds[0], storage_url, name,
            num_samples=self.num_samples, confirmations=confirm,
        )  # fmt: skip

    def tune_samples(self) -> int:
        return self.num_samples + self.confirm_runs

    def complete(self, spec: StudySpec, completed: Completed) -> bool:
        return len(completed) >= self.tune_samples()

    def outcome(self, trials: pd.DataFrame) -> list[Outcome]:
        """The configuration chosen on the validation metric and its fresh-seed results."""
        from analysis.search import confirmation

        table = confirmation(trials, self.metric, self.mode)
        if table.empty:
            return []
        metrics = {"confirmed_acc_selected_mean": float(table["acc_selected"].mean())}
        return [("chosen on validation, re-trained on fresh seeds (test accuracy)", table, metrics)]


def _sampled_trial(spec: StudySpec, trial: Any) -> dict[str, Any]:
    return spec.trial_config(spec.plan.define_by_run(trial), spec.seeds[:1])


def _confirmation_trials(spec: StudySpec, chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """The chosen search trial's configuration once per confirmation seed."""
    variant = {key: chosen[key] for key in spec.plan.varied_keys() | set(spec.plan.fixed)}
    return [spec.trial_config(variant, (seed,)) for seed in spec.plan.confirm_seeds(spec.seeds[0])]


class Plan(Protocol):
    """What the study service asks of a plan, whatever its kind (the four above, or one a
    study file defines): nothing else, and never which kind it is."""

    at_most: bool  # the plan may end before its last trial (the count is an upper bound)
    groups_seeds: bool  # a trial may train several seeds side by side
    max_concurrent: int | None  # a cap of the plan's own on trials at once

    def all_variants(self) -> list[Variant]: ...
    def runs(self, seeds: Sequence[int]) -> list[tuple[Variant, int]]: ...
    def trial_count(self, seed_groups: int) -> int: ...
    def in_flight(self, runs: int, seeds: int) -> int: ...
    def varied_keys(self) -> set[str]: ...
    def describe(self, seeds: int) -> list[str]: ...
    def searcher(self, spec: StudySpec, storage_url: str | None, name: str) -> Searcher: ...
    def tune_samples(self) -> int: ...
    def complete(self, spec: StudySpec, completed: Completed) -> bool: ...
    def outcome(self, trials: pd.DataFrame) -> list[Outcome]: ...
