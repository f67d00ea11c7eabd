"""How much work a study is: trials, optimiser steps, and wall-time estimates from step rates.

The rates are measurements (see docs/benchmarks.md), not guesses: full-batch GD on the
linear model costs ~0.22 ms per sub-network layer per step on one core of the 2-core CI
machine; the MNIST conv AE (fp64, batch 32) runs ~3 steps/s on one such core and 164
steps/s with the naive loop on one H100 (issue 6's table, measured elsewhere); in float32
~10 steps/s per core (a 6,000-image laptop run, one thread, per-epoch evaluation included);
pytorch-fid's Inception features ~0.24 s per image on such a core.
`python benchmarks/study_cost.py` re-measures the CPU rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rankae.config import RunConfig
from search_spaces import AlphaEscalation, Grid, OptunaSpace

from .spec import StudySpec

TRAIN_SIZE = {"mnist": 60_000, "cifar10": 50_000, "digits": 1_438}


@dataclass(frozen=True)
class StepRates:
    """Linear GD: ms per step = overhead + per_layer * N; conv AE: optimiser steps per second."""

    linear_ms_overhead: float = 0.4
    linear_ms_per_layer: float = 0.22
    conv_steps_per_s_cpu: float = 3.0
    conv_steps_per_s_cpu_fp32: float = 10.0
    conv_steps_per_s_gpu: float = 164.0  # naive loop, fp64, one H100 (issue 6's table)
    fid_s_per_image_cpu: float = 0.24

    def seconds_per_step(self, config: RunConfig, device: str = "cpu") -> float:
        if config.architecture == "linear":
            layers = config.depth if config.bottleneck == "linear_net" else 0
            return (self.linear_ms_overhead + self.linear_ms_per_layer * layers) / 1000
        if device == "gpu":
            return 1.0 / self.conv_steps_per_s_gpu
        fp32 = config.dtype == "float32"
        return 1.0 / (self.conv_steps_per_s_cpu_fp32 if fp32 else self.conv_steps_per_s_cpu)

    def downstream_seconds_cpu(self, config: RunConfig) -> float:
        """The FID features of one run's samples (the classifiers cost seconds)."""
        return config.fid_samples * self.fid_s_per_image_cpu if config.downstream else 0.0


MEASURED = StepRates()


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


def estimate(spec: StudySpec, rates: StepRates = MEASURED) -> Estimate:
    configs = trial_configs(spec)
    steps = sum(steps_per_run(c) for c in configs)
    cpu = (
        sum(
            steps_per_run(c) * rates.seconds_per_step(c, "cpu") + rates.downstream_seconds_cpu(c)
            for c in configs
        )
        / 3600
    )
    linear = all(c.architecture == "linear" for c in configs)
    gpu = None
    if not linear:
        gpu = sum(steps_per_run(c) * rates.seconds_per_step(c, "gpu") for c in configs)
    return Estimate(len(configs), steps, cpu, None if gpu is None else gpu / 3600)
