"""How much work a study is: trials, optimiser steps, and wall-time estimates from step rates.

The rates are measurements (see docs/benchmarks.md), not guesses: full-batch GD on the
linear model costs ~0.22 ms per sub-network layer per step on one core of the 2-core CI
machine; the MNIST conv AE (fp64, batch 32) runs ~12 steps/s on 2 CPU cores and 164
steps/s with the naive loop on one H100 (issue 6's table). `benchmarks/study_cost.py`
re-measures the CPU rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rankae.config import RunConfig
from search_spaces import AlphaEscalation, Grid, OptunaSpace

from .spec import StudySpec

LINEAR_MS_PER_LAYER_STEP = 0.22
LINEAR_MS_OVERHEAD_STEP = 0.4
CONV_STEPS_PER_S = {"cpu": 12.0, "gpu": 164.0}
TRAIN_SIZE = {"mnist": 60_000, "cifar10": 50_000, "digits": 1_438}


@dataclass(frozen=True)
class Estimate:
    trials: int
    steps: int  # optimiser steps over all trials (upper bound for an escalation)
    cpu_hours: float
    gpu_hours: float | None  # None: the study is not worth a GPU (launch-bound tiny model)


def steps_per_run(config: RunConfig) -> int:
    if config.optimizer == "gd":
        return config.epochs * config.gd_steps_per_epoch
    n = config.n_train or TRAIN_SIZE[config.dataset]
    return config.epochs * math.ceil(n / config.batch_size)


def seconds_per_step(config: RunConfig, device: str) -> float:
    if config.architecture == "linear":
        layers = config.depth if config.bottleneck == "linear_net" else 0
        return (LINEAR_MS_OVERHEAD_STEP + LINEAR_MS_PER_LAYER_STEP * layers) / 1000
    return 1.0 / CONV_STEPS_PER_S[device]


def trial_configs(spec: StudySpec) -> list[RunConfig]:
    """Every trial config the plan can produce (an escalation: every rung up to max_alpha)."""
    plan = spec.plan
    if isinstance(plan, Grid):
        variants = plan.variants
    elif isinstance(plan, AlphaEscalation):
        variants = [plan.rung(n, a) for n in plan.depths for a in plan.ladder()]
    else:
        assert isinstance(plan, OptunaSpace)
        probe = {**plan.fixed, "bottleneck": "explicit", "k": 16}
        return [spec.run_config(probe, 0)] * plan.num_samples
    return [spec.run_config(v, s) for v in variants for s in spec.seeds]


def estimate(spec: StudySpec) -> Estimate:
    configs = trial_configs(spec)
    steps = sum(steps_per_run(c) for c in configs)
    cpu = sum(steps_per_run(c) * seconds_per_step(c, "cpu") for c in configs) / 3600
    linear = all(c.architecture == "linear" for c in configs)
    gpu = None if linear else sum(steps_per_run(c) * seconds_per_step(c, "gpu") for c in configs)
    return Estimate(len(configs), steps, cpu, None if gpu is None else gpu / 3600)
