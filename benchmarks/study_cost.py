"""Estimated CPU- and GPU-hours of every named study's full preset, from step rates.

    python benchmarks/study_cost.py            # measures the CPU rates now (~1 min on 2 cores)
    python benchmarks/study_cost.py --quick    # fewer timed steps: a smoke test of the script

Why: `study.cost` prices a study as (optimiser steps) x (seconds per step) with rates stored
in the module; this script re-measures the CPU rates on the machine at hand and prints both
estimates side by side, so a stale or foreign constant shows up as a gap between columns.

Rates:
- measured now, on this CPU, with `rankae.engine.Trainer` (what a trial runs): full-batch GD
  on the linear model of App. B, vanilla (the per-step overhead) and with an N=16 sub-network
  (the cost per layer); the MNIST conv AE, fp64, batch 32 (steps/s).
- taken from issue 6's H100 table, not measured here (no GPU needed): the naive loop at
  164 fp64 model-steps/s (study.cost's GPU rate) and K=40 vmap + CUDA graph at 735.
Linear studies get no GPU estimate (study.cost: launch-bound, CPU is as fast).
"""

from __future__ import annotations

import argparse
import sys

import torch
from train_throughput import describe, machine_description, trainer_rate

from rankae.config import RunConfig, linear_synthetic
from rankae.engine import Trainer
from study import cost
from study.studies import config, names

ISSUE_6_GPU_FP64 = {"naive": cost.MEASURED.conv_steps_per_s_gpu, "vectorised": 735.0}
PROBE_DEPTH = 16


def linear_ms_per_step(config: RunConfig, steps: int) -> float:
    """Full-batch GD: a warm-up block of `steps` steps, then a timed block."""
    trainer = Trainer(config.replace(epochs=2, gd_steps_per_epoch=steps), device="cpu")
    *_, timed = trainer.run()
    return 1000.0 / timed.steps_per_s


def measure_cpu(steps_linear: int, steps_conv: int) -> cost.StepRates:
    overhead = linear_ms_per_step(linear_synthetic(bottleneck="vanilla"), steps_linear)
    deep = linear_ms_per_step(linear_synthetic(depth=PROBE_DEPTH, alpha=2.0), steps_linear)
    conv = RunConfig(dataset="mnist", batch_size=32, dtype="float64").validate()
    conv_rate = trainer_rate(conv, torch.device("cpu"), steps_conv)
    return cost.StepRates(overhead, max(deep - overhead, 0.0) / PROBE_DEPTH, conv_rate)


def table(rates: cost.StepRates) -> str:
    head = (
        "| study | trials | optimiser steps | CPU-h (study.cost rates) | CPU-h (measured now) "
        f"| GPU-h naive fp64 ({ISSUE_6_GPU_FP64['naive']:g}/s) "
        f"| GPU-h K=40 vmap + graph fp64 ({ISSUE_6_GPU_FP64['vectorised']:g}/s) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for name in names():
        spec = config(name)
        estimate = cost.estimate(spec)
        measured = cost.estimate(spec, rates).cpu_hours
        if estimate.gpu_hours is None:
            gpu = ("-", "-")
        else:
            speedup = ISSUE_6_GPU_FP64["vectorised"] / ISSUE_6_GPU_FP64["naive"]
            gpu = (f"{estimate.gpu_hours:.1f}", f"{estimate.gpu_hours / speedup:.1f}")
        lines.append(
            f"| {name} | {estimate.trials} | {estimate.steps:,} | {estimate.cpu_hours:.2f} "
            f"| {measured:.2f} | {gpu[0]} | {gpu[1]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="time a few steps only")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rates = measure_cpu(steps_linear=20 if args.quick else 300, steps_conv=1 if args.quick else 10)
    meta = machine_description(torch.device("cpu"))
    print(f"# study_cost: {describe(meta)}")
    print(
        f"CPU rates measured now: linear GD {rates.linear_ms_overhead:.3f} ms/step + "
        f"{rates.linear_ms_per_layer:.3f} ms per sub-network layer "
        f"(study.cost: {cost.MEASURED.linear_ms_overhead} + {cost.MEASURED.linear_ms_per_layer}); "
        f"conv AE fp64 batch 32 {rates.conv_steps_per_s_cpu:.2f} steps/s "
        f"(study.cost: {cost.MEASURED.conv_steps_per_s_cpu})."
    )
    print("GPU rates from issue 6's H100 table (not measured here).\n")
    print(table(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
