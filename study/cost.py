"""How much work a study is: trials, optimiser steps, disk, and wall-time estimates.

One cost model prices every tier (`--dry-run`, `--list`, the progress ETA): per run,
optimiser steps x seconds per step, per-epoch evaluation on `n_eval` images, the downstream
tasks (encoding the test and training images, Inception features of the FID samples and
reference) and a fixed per-trial cost; per study, a fixed start-up cost; runs share the
cores one per trial. The rates (`StepRates`, one field each) are measurements on the 2-core CI
machine with two trials sharing it (docs/benchmarks.md), not guesses; the GPU rate is the
naive fp64 loop on one H100. `python benchmarks/study_cost.py` re-measures the CPU rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rankae.config import RunConfig
from rankae.data import SPLIT_SIZES
from trainables.contract import trial_runs

from .spec import StudySpec

TRAIN_SIZE = {name: sizes["train"] for name, sizes in SPLIT_SIZES.items()}
TEST_SIZE = {name: sizes["test"] for name, sizes in SPLIT_SIZES.items()}
CHECKPOINT_MB = {"linear": 0.1, "mlp": 1.0, "mnist_conv": 50.0, "cifar_conv": 50.0}  # per trial


@dataclass(frozen=True)
class StepRates:
    """The measured rates every estimate is priced with (docs/benchmarks.md)."""

    # full-batch GD on the linear model, per step: overhead + per sub-network layer
    linear_ms_overhead: float = 0.4
    linear_ms_per_layer: float = 0.36
    # the conv AE (MNIST's and CIFAR-10's cost the same per step), per shared core
    conv_steps_per_s_cpu: float = 3.0
    conv_steps_per_s_cpu_fp32: float = 10.0
    conv_steps_per_s_gpu: float = 164.0  # naive loop, fp64, one H100
    # the MLP on a user's vectors (batch 32, fp32, per-epoch evaluation included), per step
    mlp_ms_overhead: float = 1.2
    mlp_ms_per_layer: float = 0.05
    fid_s_per_image_cpu: float = 0.24  # pytorch-fid's Inception
    encode_ms_per_image_cpu: float = 0.67
    encode_ms_per_image_cpu_fp32: float = 0.15
    classifier_us_per_code_epoch: float = 4.0
    trial_overhead_s: float = 3.0  # a trial's start, checkpoints and MLflow run
    study_overhead_s: float = 25.0  # a study's imports, Ray start and MLflow store

    def seconds_per_step(self, config: RunConfig, device: str = "cpu") -> float:
        layers = config.depth if config.bottleneck == "linear_net" else 0
        if config.architecture == "linear":
            return (self.linear_ms_overhead + self.linear_ms_per_layer * layers) / 1000
        if config.architecture == "mlp":  # launch-bound like the linear model (no GPU measured)
            return (self.mlp_ms_overhead + self.mlp_ms_per_layer * layers) / 1000
        if device == "gpu":
            return 1.0 / self.conv_steps_per_s_gpu
        fp32 = config.dtype == "float32"
        return 1.0 / (self.conv_steps_per_s_cpu_fp32 if fp32 else self.conv_steps_per_s_cpu)

    def encode_seconds_cpu(self, config: RunConfig, images: int) -> float:
        fp32 = config.dtype == "float32"
        ms = self.encode_ms_per_image_cpu_fp32 if fp32 else self.encode_ms_per_image_cpu
        return images * ms / 1000

    def evaluation_seconds_cpu(self, config: RunConfig) -> float:
        """Per-epoch loss and ranks on the eval images (a forward pass ~ 3 encodings)."""
        if config.architecture in ("linear", "mlp"):
            return 0.0  # linear: none; mlp: within its measured step rate
        n_eval = config.n_eval or TEST_SIZE[config.dataset]
        return config.epochs * self.encode_seconds_cpu(config, 3 * n_eval)

    def downstream_seconds_cpu(self, config: RunConfig) -> float:
        """Codes of the test and training images, the classifiers, then the FID samples'
        Inception features (the GMM costs seconds; the reference: `reference_seconds_cpu`)."""
        if not config.downstream:
            return 0.0
        n_train = config.n_train or TRAIN_SIZE[config.dataset]
        test = TEST_SIZE.get(config.dataset, config.n_eval)  # a user's: its evaluation split
        encoded = self.encode_seconds_cpu(config, test + n_train)
        # four classifiers (two code sites x best/selected), each scoring the test codes per epoch
        codes = 4 * config.classifier_epochs * (config.classifier_labels + test)
        classifiers = codes * self.classifier_us_per_code_epoch / 1e6
        fid = 0.0 if config.architecture == "mlp" else config.fid_samples * self.fid_s_per_image_cpu
        return encoded + classifiers + fid

    def reference_seconds_cpu(self, config: RunConfig) -> float:
        """The FID reference's Inception features: once per machine (rankae.fid caches them)."""
        if not config.downstream or config.architecture == "mlp":
            return 0.0
        reference = config.fid_reference or config.n_train or TRAIN_SIZE[config.dataset]
        return reference * self.fid_s_per_image_cpu

    def run_seconds_cpu(self, config: RunConfig) -> float:
        return (
            steps_per_run(config) * self.seconds_per_step(config, "cpu")
            + self.evaluation_seconds_cpu(config)
            + self.downstream_seconds_cpu(config)
            + self.trial_overhead_s
        )


MEASURED = StepRates()


def trial_seconds(config: dict[str, Any]) -> tuple[float, float]:
    """A Tune trial's CPU seconds over all its seeds, split into the epochs (training and
    per-epoch evaluation) and what follows the last one (downstream tasks, the trial's fixed
    cost): the progress ETA's weights."""
    members = trial_runs(config)
    run = members[0]
    total = MEASURED.run_seconds_cpu(run)
    after = MEASURED.downstream_seconds_cpu(run) + MEASURED.trial_overhead_s
    return len(members) * (total - after), len(members) * after


@dataclass(frozen=True)
class Estimate:
    trials: int  # runs (an escalation: every rung up to its cap)
    steps: int  # optimiser steps over all runs (upper bound for an escalation)
    cpu_hours: float  # core-hours of the runs
    gpu_hours: float | None  # None: the study is not worth a GPU (launch-bound tiny model)
    parallel: int  # runs the plan can have in flight at once
    disk_gb: float  # the checkpoints kept (one per trial)
    start_s: float  # the study's fixed start-up, with the FID reference's features

    def wall_s(self, cores: int) -> float:
        """Seconds on `cores` CPU cores, one run per core."""
        return self.start_s + self.cpu_hours * 3600 / max(1, min(cores, self.parallel))


def steps_per_run(config: RunConfig) -> int:
    if config.optimizer == "gd":
        return config.epochs * config.gd_steps_per_epoch
    n = config.n_train or TRAIN_SIZE[config.dataset]
    return config.epochs * math.ceil(n / config.batch_size)


def estimate(spec: StudySpec, rates: StepRates = MEASURED) -> Estimate:
    configs = spec.run_configs()
    steps = sum(steps_per_run(c) for c in configs)
    cpu = sum(rates.run_seconds_cpu(c) for c in configs) / 3600
    launch_bound = all(c.architecture in ("linear", "mlp") for c in configs)
    gpu = None
    if not launch_bound:
        gpu = sum(steps_per_run(c) * rates.seconds_per_step(c, "gpu") for c in configs) / 3600
    parallel = spec.plan.in_flight(len(configs), len(spec.seeds))
    disk = sum(CHECKPOINT_MB[c.architecture] for c in configs) / 1024
    start = rates.study_overhead_s + rates.reference_seconds_cpu(configs[0])
    return Estimate(len(configs), steps, cpu, gpu, parallel, disk, start)
