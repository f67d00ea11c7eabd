"""What a named study is: a base run config, a plan of trials, seeds and resources.

Study modules in `study/studies/` return a `StudySpec` from `get_config(preset, data)`. Config
values flow one way: CLI -> StudySpec -> its `Trials` -> the plan's search -> trial config
(`trainables.contract`) -> `rankae` objects.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rankae.config import ConfigError, RunConfig, parse_value

from .plans import Grid, Plan, Trials, Variant
from .prepare import StudyData

# Variants one --grid may make: each is a trial config built in the driver's memory (and
# validated) before anything starts, as the seeds are (`study.kinds.SEEDS_MAX`).
GRID_MAX = 10_000
GridAxes = tuple[tuple[str, tuple[Any, ...]], ...]  # (key, its values) per --grid


@dataclass(frozen=True)
class StudySpec:
    name: str
    figure: str  # which figure of the paper it reproduces
    base: RunConfig
    plan: Plan
    seeds: tuple[int, ...] = (0,)
    preset: str = "full"  # the tier: full, laptop or smoke (study/studies/_presets.py)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    checkpoint_every: int = 1  # epochs between checkpoints (1: resume loses nothing)
    seeds_per_trial: int | None = None  # seeds trained side by side per trial; None: auto
    overrides: dict[str, Any] = field(default_factory=dict)  # the user's --set values
    grid: GridAxes = ()  # the user's --grid axes, which replaced the study's own plan
    data: StudyData | None = None  # a user's data (--data), which its trials load prepared

    def with_overrides(self, overrides: dict[str, Any]) -> StudySpec:
        return replace(self, overrides={**self.overrides, **overrides})

    def with_grid(self, axes: Sequence[tuple[str, Sequence[Any]]]) -> StudySpec:
        """`--grid key=v1,v2 ...`: the cartesian product of the axes, on the study's base
        settings (and `--set`), replaces its plan; every seed runs every variant."""
        axes = tuple((key, tuple(values)) for key, values in axes)
        keys = [key for key, _ in axes]
        for key in keys:
            if keys.count(key) > 1:
                raise ConfigError(f"--grid {key}=... is given twice: list its values in one")
            if key == "seed":
                raise ConfigError("--grid seed=... is not allowed: give seeds with --seeds")
            if key in self.overrides:
                raise ConfigError(
                    f"--grid {key}=... and --set {key}={self.overrides[key]!r} contradict "
                    "each other: give one of them"
                )
        size = math.prod(len(values) for _, values in axes)
        if size > GRID_MAX:
            raise ConfigError(
                f"--grid makes {size:,} variants: at most {GRID_MAX:,} in one invocation"
            )
        combos = itertools.product(*(values for _, values in axes))
        variants = [dict(zip(keys, combo, strict=True)) for combo in combos]
        return replace(self, plan=Grid(variants), grid=axes)

    def trials(self) -> Trials:
        """How this study turns a variant into trials (what its plan's search is given):
        base | --set overrides, then the variant and the seeds."""
        values = {**self.base.to_dict(), **self.overrides}
        return Trials(values, tuple(self.seed_groups()), self.checkpoint_every)

    def run_config(self, variant: Variant, seed: int) -> RunConfig:
        """base | --set overrides | variant | seed, validated. `--set` may not name a key the
        plan varies (`plan_keys`); a variant derived from the overridden base (rank_of's
        check budget) follows the user's value."""
        return self.trials().run_config(variant, seed)

    def seed_groups(self) -> list[tuple[int, ...]]:
        """The seeds split into trials of `seeds_per_trial` (one each until it is resolved)."""
        size = self.seeds_per_trial or 1
        return [self.seeds[i : i + size] for i in range(0, len(self.seeds), size)]

    def run_configs(self) -> list[RunConfig]:
        """Every run the plan can make (an escalation: every rung up to its top)."""
        trials = self.trials()  # the study's values gathered once, not once per run
        return [trials.run_config(variant, seed) for variant, seed in self.plan.runs(self.seeds)]

    def validate(self) -> StudySpec:
        """Build every config the plan could produce once, so bad values fail before Ray starts."""
        self.base.replace(**self.overrides).validate()  # the user's values, before a variant
        trials = self.trials()
        for variant in self.plan.all_variants():
            trials.run_config(variant, self.seeds[0])
        for seed in self.seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ConfigError(f"seed={seed!r} is invalid: seeds must be integers >= 0")
        size = self.seeds_per_trial
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(f"seeds_per_trial={size!r} is invalid: use an integer >= 1 or auto")
        self._check_overrides_keep_the_plan()
        return self

    def plan_keys(self) -> tuple[str, ...]:
        """The config keys the plan varies from trial to trial (sorted), plus `seed`.

        A `--set` on one of them would pin every trial to one value: an escalation would
        queue the same rung forever, a grid would run duplicates.
        """
        return tuple(sorted(self.plan.varied_keys() | {"seed"}))

    def _check_overrides_keep_the_plan(self) -> None:
        varied = self.plan_keys()
        clash = [key for key in self.overrides if key in varied]
        if clash:
            key = clash[0]
            raise ConfigError(
                f"--set {key}={self.overrides[key]!r} is not allowed: the plan of {self.name} "
                f"varies {', '.join(varied)} (give seeds with --seeds); set any other key"
            )


def parse_override(text: str) -> tuple[str, Any]:
    """`--set key=value` -> (key, typed value) (`rankae.config.parse_value`); one-line errors."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} is not key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    try:
        return key, parse_value(key, raw)
    except ConfigError as err:
        raise ConfigError(f"--set {err} (python -m study.run --keys describes each)") from None


def parse_grid(text: str) -> tuple[str, tuple[Any, ...]]:
    """`--grid key=v1,v2,...` -> (key, typed values), each typed as `--set` types it; a value
    given twice would run the same trials twice, so it is refused."""
    if "=" not in text:
        raise ConfigError(f"--grid {text!r} is not key=value1,value2,...")
    key, raw = (part.strip() for part in text.split("=", 1))
    parts = [part for part in raw.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"--grid {text!r} gives no values: key=value1,value2,...")
    try:
        values = tuple(parse_value(key, part) for part in parts)
    except ConfigError as err:
        raise ConfigError(f"--grid {err} (python -m study.run --keys describes each)") from None
    repeated = sorted({repr(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ConfigError(f"--grid {text!r} repeats {', '.join(repeated)}: give each value once")
    return key, values
