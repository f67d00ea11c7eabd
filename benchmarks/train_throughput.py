"""Model-steps per second: the naive loop vs the Trainer vs the VectorizedTrainer.

    python benchmarks/train_throughput.py                  # GPU: K in 1, 10, 40; 200 steps
    python benchmarks/train_throughput.py --small          # CPU: K in 1, 4, 10; 3 steps
    python benchmarks/train_throughput.py --json out.json  # also write the rows as JSON

A model-step is one model taking one optimiser step: a vectorised step of K members counts K.
Every variant trains the same model in the same process: the MNIST conv AE (N=16, d=128,
orthogonal init, Adam lr 1e-4 with lr / N on the sub-network), batch 32, on random
MNIST-shaped images (the rate does not depend on pixel values, and no download is needed).

- naive: the obvious loop: a torch DataLoader over a CPU TensorDataset,
  `.to(device)` per batch, nn.Module + Adam, `loss.item()` per step.
- Trainer: `rankae.engine.Trainer`'s epoch (data on the device, one host sync per epoch).
- vectorised: `rankae.vectorized.VectorizedTrainer` with K seeds; on CUDA also with the
  whole step captured in a CUDA graph.

Each variant runs one untimed warm-up pass of the timed length first (for the Trainers, a
warm-up epoch: their rate is the timed epoch's `steps_per_s`, which excludes the per-epoch
SVDs). CUDA is synchronised around every timer.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from linear_run import cpu_model  # benchmarks/ is on sys.path when run as a script
from torch.utils.data import DataLoader, TensorDataset

from rankae.config import CONV_CHANNELS, RunConfig
from rankae.data import IMAGE_SIZE, ImageSet
from rankae.engine import RunData, Trainer, pick_device
from rankae.models import build_autoencoder
from rankae.vectorized import VectorizedTrainer

DTYPES = ("float64", "float32")
EVAL_IMAGES = 64  # per-epoch latent spectrum of the Trainers: kept small, it is not timed
NAIVE = "naive loop (DataLoader, .to(device), .item() per step)"
TRAINER = "Trainer epoch"
VECTORISED = "VectorizedTrainer"
GRAPHED = "VectorizedTrainer + CUDA graph"


@dataclass(frozen=True)
class Row:
    variant: str
    k: int
    dtype: str
    model_steps_per_s: float
    vs_naive: float


def machine_description(device: torch.device) -> dict[str, object]:
    """Where and when a rate was measured: enough to compare it with another machine's."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "device": f"{device.type}: {name}",
        "torch": torch.__version__,
        "cpu_count": cores,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
    }


def describe(meta: dict[str, object]) -> str:
    load = " / ".join(str(x) for x in meta["load_average"])
    return (
        f"{meta['date']}, {meta['device']}, torch {meta['torch']}, {meta['cpu_count']} CPUs, "
        f"{meta['torch_threads']} torch threads, load average {load}"
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_images(n: int, channels: int = 1) -> torch.Tensor:
    """MNIST-shaped (or, with 3 channels, CIFAR-10-shaped) inputs in [0, 1], fixed by a seed."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, channels, IMAGE_SIZE, IMAGE_SIZE, generator=generator)


def run_data(n: int) -> RunData:
    train = ImageSet(random_images(n), torch.zeros(n, dtype=torch.long))
    return RunData(train, train.head(EVAL_IMAGES), min(EVAL_IMAGES, n))


def naive_rate(config: RunConfig, device: torch.device, steps: int) -> float:
    """Issue 6's reference loop: a warm-up pass of `steps` steps, then `steps` timed steps."""
    loader = DataLoader(
        TensorDataset(
            random_images(2 * steps * config.batch_size, CONV_CHANNELS[config.architecture]).to(
                getattr(torch, config.dtype)
            )
        ),
        batch_size=config.batch_size,
        shuffle=True,
    )
    model = build_autoencoder(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start = 0.0
    for i, (x,) in enumerate(loader):
        if i == steps:
            synchronize(device)
            start = time.perf_counter()
        x = x.to(device)
        loss = F.mse_loss(model(x), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()
    synchronize(device)
    return steps / (time.perf_counter() - start)


def trainer_rate(config: RunConfig, device: torch.device, steps: int) -> float:
    trainer = Trainer(config.replace(epochs=2), device, run_data(steps * config.batch_size))
    *_, timed = trainer.run()
    return timed.steps_per_s


def vectorised_rate(
    config: RunConfig, device: torch.device, steps: int, k: int, cuda_graph: bool
) -> float:
    configs = [config.replace(epochs=2, seed=seed) for seed in range(k)]
    data = run_data(steps * config.batch_size)
    trainer = VectorizedTrainer(configs, device, data, cuda_graph=cuda_graph)
    *_, timed = trainer.run()
    return k * timed[0].steps_per_s


def measure(args: argparse.Namespace, device: torch.device) -> list[Row]:
    rows: list[Row] = []
    for dtype in args.dtypes:
        config = RunConfig(
            dataset="mnist", depth=args.depth, batch_size=args.batch_size, dtype=dtype
        ).validate()
        naive = naive_rate(config, device, args.steps)
        rates = [(NAIVE, 1, naive), (TRAINER, 1, trainer_rate(config, device, args.steps))]
        graph_options = (False, True) if device.type == "cuda" else (False,)
        for cuda_graph in graph_options:
            for k in args.ks:
                rate = vectorised_rate(config, device, args.steps, k, cuda_graph)
                rates.append((GRAPHED if cuda_graph else VECTORISED, k, rate))
        rows += [Row(name, k, dtype, rate, rate / naive) for name, k, rate in rates]
    return rows


def markdown(rows: list[Row], dtypes: list[str]) -> str:
    """One line per (variant, K); per dtype its model-steps/s and its ratio to the naive loop."""
    short = {"float64": "fp64", "float32": "fp32"}
    head = ["variant", "K"]
    for dtype in dtypes:
        head += [f"{short[dtype]} model-steps/s", f"{short[dtype]} vs naive"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = list(dict.fromkeys((r.variant, r.k) for r in rows))
    by_key = {(r.variant, r.k, r.dtype): r for r in rows}
    for variant, k in keys:
        cells = [variant, str(k)]
        for dtype in dtypes:
            row = by_key[(variant, k, dtype)]
            cells += [f"{row.model_steps_per_s:.1f}", f"{row.vs_naive:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    parser.add_argument("--small", action="store_true", help="CPU sizes: 3 steps, K in 1 4 10")
    parser.add_argument("--steps", type=int, help="timed steps per variant (default 200; small 3)")
    parser.add_argument("--ks", type=int, nargs="+", help="members K (default 1 10 40)")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--depth", type=int, default=16, help="N, the sub-network's depth")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", metavar="PATH", help="also write machine and rows as JSON")
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.small else 200)
    args.ks = args.ks or ([1, 4, 10] if args.small else [1, 10, 40])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rows = measure(args, device)
    meta = machine_description(device)  # after measuring: the load average covers the run
    print(f"# train_throughput: {describe(meta)}")
    print(
        f"MNIST conv AE (N={args.depth}, d=128), batch {args.batch_size}, "
        f"{args.steps} timed steps per variant after a warm-up pass of the same length\n"
    )
    print(markdown(rows, args.dtypes))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": meta, "rows": [asdict(r) for r in rows]}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
