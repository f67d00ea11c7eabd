"""Estimated CPU- and GPU-hours of every named study's full preset, from study.cost's rates.

    python benchmarks/study_cost.py            # measures the CPU rates now (~1 min on 2 cores)
    python benchmarks/study_cost.py --quick    # fewer timed steps: a smoke test of the script
    python benchmarks/study_cost.py --smoke-studies   # each study's smoke tier through the
                                               # CLI vs its estimate (~12 min on 2 cores)

Why: `study.cost` prices a study (`--list`, `--dry-run`, the progress ETA) from rates stored
in the module; this script re-measures the CPU rates on the machine at hand and prints both
estimates side by side, so a stale or foreign constant shows up as a gap between columns.

Rates:
- measured now, on this CPU: full-batch GD with `rankae.engine.Trainer` on the linear model
  of App. B, vanilla (the per-step overhead) and with an N=16 sub-network (the cost per
  layer); Adam steps of the MNIST and the CIFAR-10 conv AE, fp64 and fp32, batch 32, on one
  idle core (study.cost stores per-core rates with two trials sharing the machine, lower);
  the encoder's ms per image without gradients, fp64 and fp32.
- kept from study.cost (measured in whole studies, docs/benchmarks.md): the classifiers',
  FID features', per-trial and per-study costs.
- taken from the H100 table in docs/benchmarks.md, not measured here (no GPU needed): the
  naive loop at 164 fp64 model-steps/s (study.cost's GPU rate) and K=40 vmap + CUDA graph at 735.
Linear studies get no GPU estimate (study.cost: launch-bound, CPU is as fast).

`--smoke-studies` compares whole invocations instead: each named study on real data (the
CIFAR-10 ones need the dataset) runs `python -m study.run NAME --smoke` in a fresh folder,
start-up included, timed against `estimate(spec).wall_s(cores)`, with the load average
before and after (a shared machine is slower; no test asserts a time).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from train_throughput import describe, machine_description, naive_rate

from rankae.config import RunConfig, linear_synthetic
from rankae.data import IMAGE_SIZE
from rankae.engine import Trainer
from rankae.models import build_autoencoder
from study import cost
from study.studies import config, names

ISSUE_6_GPU_FP64 = {"naive": cost.MEASURED.conv_steps_per_s_gpu, "vectorised": 735.0}
PROBE_DEPTH = 16


def linear_ms_per_step(config: RunConfig, steps: int) -> float:
    """Full-batch GD: a warm-up block of `steps` steps, then a timed block."""
    trainer = Trainer(config.replace(epochs=2, gd_steps_per_epoch=steps), device="cpu")
    *_, timed = trainer.run()
    return 1000.0 / timed.steps_per_s


def conv_steps_per_s(architecture: str, dtype: str, steps: int) -> float:
    """Adam steps/s of one conv AE on random images of its input shape, batch 32 (the H100 table's
    naive loop; study.cost uses MNIST's rate for both architectures, as measured alike)."""
    dataset = "cifar10" if architecture == "cifar_conv" else "mnist"
    config = RunConfig(dataset=dataset, architecture=architecture, dtype=dtype).validate()
    return naive_rate(config, torch.device("cpu"), steps)


def encode_ms_per_image(dtype: str, images: int) -> float:
    """The encoder alone, no gradients: the downstream codes of the test and training sets."""
    model = build_autoencoder(RunConfig(dtype=dtype).validate()).to(getattr(torch, dtype))
    x = torch.rand(images, 1, IMAGE_SIZE, IMAGE_SIZE, dtype=getattr(torch, dtype))
    with torch.no_grad():
        model.encode(x[:8])
        start = time.perf_counter()
        model.encode(x)
    return 1000 * (time.perf_counter() - start) / images


def measure_cpu(steps_linear: int, steps_conv: int, images: int) -> tuple[cost.StepRates, dict]:
    """study.cost's CPU rates measured now, and each architecture's step rate beside them."""
    overhead = linear_ms_per_step(linear_synthetic(bottleneck="vanilla"), steps_linear)
    deep = linear_ms_per_step(linear_synthetic(depth=PROBE_DEPTH, alpha=2.0), steps_linear)
    conv = {
        (arch, dtype): conv_steps_per_s(arch, dtype, steps_conv)
        for arch in ("mnist_conv", "cifar_conv")
        for dtype in ("float64", "float32")
    }
    rates = dataclasses.replace(
        cost.MEASURED,
        linear_ms_overhead=overhead,
        linear_ms_per_layer=max(deep - overhead, 0.0) / PROBE_DEPTH,
        conv_steps_per_s_cpu=conv["mnist_conv", "float64"],
        conv_steps_per_s_cpu_fp32=conv["mnist_conv", "float32"],
        encode_ms_per_image_cpu=encode_ms_per_image("float64", images),
        encode_ms_per_image_cpu_fp32=encode_ms_per_image("float32", images),
    )
    return rates, conv


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


def time_smoke_studies() -> str:
    """Each real-data study's smoke tier through the CLI, in a fresh folder, against its
    estimate (a markdown table)."""
    from tools.example_data import write

    cores = os.cpu_count() or 1
    rows = ["| study | estimate (s) | measured (s) | ratio | exit | load before / after |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for name in names():
        if name.startswith("cifar10_"):
            continue
        with tempfile.TemporaryDirectory() as folder:
            data = []
            if name == "rank_of":  # the README's worked example
                data = ["--data", str(write("digits", Path(folder) / "digits.npz"))]
            estimated = cost.estimate(config(name, "smoke", *data[1:])).wall_s(cores)
            before, start = os.getloadavg()[0], time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "study.run", name, "--smoke", *data],
                                  cwd=folder, capture_output=True, text=True)  # fmt: skip
            measured = time.perf_counter() - start
        rows.append(f"| {name} | {estimated:.0f} | {measured:.0f} | {measured / estimated:.2f} | "
                    f"{done.returncode} | {before:.1f} / {os.getloadavg()[0]:.1f} |")  # fmt: skip
        print(rows[-1], flush=True)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="time a few steps only")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--smoke-studies", action="store_true",
                        help="time each study's smoke tier through the CLI")  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke_studies:
        print(f"# study_cost --smoke-studies: {describe(machine_description(torch.device('cpu')))}")
        print(time_smoke_studies())
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    rates, conv = measure_cpu(steps_linear=20 if args.quick else 300,
                              steps_conv=1 if args.quick else 10,
                              images=64 if args.quick else 1024)  # fmt: skip
    meta = machine_description(torch.device("cpu"))
    stored = cost.MEASURED
    print(f"# study_cost: {describe(meta)}")
    steps = "; ".join(f"{arch} {dtype} {rate:.2f}" for (arch, dtype), rate in conv.items())
    print(
        f"CPU rates measured now (study.cost's in brackets): linear GD "
        f"{rates.linear_ms_overhead:.3f} ms/step + {rates.linear_ms_per_layer:.3f} ms per "
        f"sub-network layer ({stored.linear_ms_overhead} + {stored.linear_ms_per_layer}); "
        f"conv AE steps/s, batch 32, one idle core: {steps} ({stored.conv_steps_per_s_cpu} fp64, "
        f"{stored.conv_steps_per_s_cpu_fp32} fp32, per core with two trials sharing the machine); "
        f"encoding {rates.encode_ms_per_image_cpu:.2f} / {rates.encode_ms_per_image_cpu_fp32:.2f} "
        f"ms per image fp64 / fp32 ({stored.encode_ms_per_image_cpu} / "
        f"{stored.encode_ms_per_image_cpu_fp32})."
    )
    print("GPU rates from the H100 table in docs/benchmarks.md (not measured here).\n")
    print(table(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
