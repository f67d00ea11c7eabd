"""What a named study is: a base run config, a plan of trials, seeds and resources.

Study modules in `study/studies/` return a `StudySpec` from `get_config(preset)`. Config
values flow one way: CLI -> StudySpec -> plan -> trial config -> `rankae` objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_type_hints

from rankae.config import ConfigError, RunConfig
from search_spaces import AlphaEscalation, Grid, OptunaSpace, Plan, Variant

from .members import GROUP_SEEDS_KEY

CHECKPOINT_EVERY_KEY = "checkpoint_every"  # carried in each trial config, read by the trainable


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

    def with_overrides(self, overrides: dict[str, Any]) -> StudySpec:
        return replace(self, overrides={**self.overrides, **overrides})

    def run_config(self, variant: Variant, seed: int) -> RunConfig:
        """base | variant | seed | --set overrides, validated."""
        values = {**self.base.to_dict(), **variant, "seed": seed, **self.overrides}
        return RunConfig.from_dict(values)

    def seed_groups(self) -> list[tuple[int, ...]]:
        """The seeds split into trials of `seeds_per_trial` (one each until it is resolved)."""
        size = self.seeds_per_trial or 1
        return [self.seeds[i : i + size] for i in range(0, len(self.seeds), size)]

    def trial_config(self, variant: Variant, seeds: int | Sequence[int]) -> dict[str, Any]:
        """What a Ray trial receives: the run config plus the study's checkpoint cadence.

        Several seeds make a vectorised group: the config carries the first seed and the
        whole list under `group_seeds` (see `study.members`).
        """
        seeds = (seeds,) if isinstance(seeds, int) else tuple(seeds)
        config = {
            **self.run_config(variant, seeds[0]).to_dict(),
            CHECKPOINT_EVERY_KEY: self.checkpoint_every,
        }
        if len(seeds) > 1:
            config[GROUP_SEEDS_KEY] = list(seeds)
        return config

    def grid_configs(self) -> list[dict[str, Any]]:
        """Every trial of a grid plan, seed-major so each config's seeds start together."""
        return [self.trial_config(v, g) for v in self.plan.variants for g in self.seed_groups()]

    def validate(self) -> StudySpec:
        """Build every config the plan could produce once, so bad values fail before Ray starts."""
        if isinstance(self.plan, Grid):
            self.grid_configs()
        elif isinstance(self.plan, AlphaEscalation):
            for depth in self.plan.depths:
                for alpha in self.plan.ladder():
                    self.run_config(self.plan.rung(depth, alpha), self.seeds[0])
        elif isinstance(self.plan, OptunaSpace):
            for choice in self.plan.bottlenecks:
                probe = {**self.plan.fixed, "bottleneck": choice}
                for key, (low, _high) in self.plan.conditional.get(choice, {}).items():
                    probe[key] = low
                self.run_config(probe, self.seeds[0])
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
        plan, keys = self.plan, {"seed"}
        if isinstance(plan, Grid):
            for key in {key for variant in plan.variants for key in variant}:
                values = {repr(variant[key]) for variant in plan.variants if key in variant}
                if len(values) > 1:
                    keys.add(key)
        elif isinstance(plan, AlphaEscalation):
            keys |= {"depth", "alpha"}  # the searcher keys rungs on the trial's (N, alpha)
        elif isinstance(plan, OptunaSpace):
            keys |= {"bottleneck"} | {k for space in plan.conditional.values() for k in space}
        return tuple(sorted(keys))

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
    """`key=value` -> (key, typed value) using RunConfig's annotations; one-line errors."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} is not key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    hints = get_type_hints(RunConfig)
    names = [f.name for f in fields(RunConfig)]
    if key not in hints:
        raise ConfigError(
            f"--set key {key!r} is not a config value; allowed: {', '.join(names)} "
            "(python -m study.run --keys describes each)"
        )
    return key, _coerce(key, raw, hints[key])


def _coerce(key: str, raw: str, hint: Any) -> Any:
    text = str(hint)
    if raw.lower() in ("none", "null") and "None" in text:
        return None
    try:
        if "bool" in text:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if "int" in text:
            return int(raw)
        if "float" in text:
            return float(raw)
    except ValueError:
        kind = "bool" if "bool" in text else "int" if "int" in text else "float"
        raise ConfigError(f"--set {key}={raw!r} is invalid: {key} takes a {kind}") from None
    return raw
