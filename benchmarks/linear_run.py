"""Time the linear study's acceptance run (rank 8 at every N) and print it as a row for
docs/benchmarks.md.

    python benchmarks/linear_run.py

Runs `python -m rankae.train --dataset synthetic --bottleneck orthogonal --depth 16 --alpha 2
--steps 10000` (the paper's App. B linear experiment, N=16, alpha=2) on the CPU in a fresh
process and times the whole command, start-up included, because that is what a user waits
for. The acceptance bar is latent rank 8 in under a minute on 2 CPU cores.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time

import torch

COMMAND = [
    *(sys.executable, "-m", "rankae.train", "--dataset", "synthetic"),
    *("--bottleneck", "orthogonal", "--depth", "16", "--alpha", "2", "--steps", "10000"),
    "--device=cpu",
]
HEADER = (
    "| date | machine | torch | wall time (s) | final latent rank | final loss |\n"
    "|---|---|---|---|---|---|"
)


def cpu_model() -> str:
    """The CPU's marketing name (Linux), else whatever the platform reports."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_summary(stdout: str) -> dict[str, str]:
    """The `key: value` lines that rankae.train prints at the end."""
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def main() -> int:
    start = time.perf_counter()
    result = subprocess.run(COMMAND, capture_output=True, text=True)
    wall_s = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return result.returncode
    summary = parse_summary(result.stdout)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = f"{cpu_model()}, {cores} cores"
    print(HEADER)
    print(
        f"| {datetime.date.today()} | {machine} | {torch.__version__} | {wall_s:.1f} "
        f"| {summary['latent rank']} | {summary['final loss']} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
