"""One vectorised group of seeds on the full MNIST training set, for a fixed time: the ranks.

    python benchmarks/gpu_seed_group.py --seconds 300 --json OUT/seed_group.json   # GPU
    python benchmarks/gpu_seed_group.py --summarise A.json [B.json] [--figure F.png]

The question (issue 22, item 7): on 6,000 images the desktop tier's seeds split (W_e rank 10
and 11 settled, others not: docs/results.md). Does the split survive on all 60,000 images?
This trains the paper's MNIST model (N = 16, alpha = 300, Adam lr 1e-4 with lr / N on the
sub-network, batch 32, single-stage) for K seeds in one `VectorizedTrainer` step, in float32,
for as many whole epochs as fit in `--seconds`, and records per seed and epoch the loss, W_e's
singular values and the latent codes' singular values (10,000 test images), from which the
ranks and `analysis.settle`'s settledness are read afterwards. Torch only (no Ray, MLflow):
it runs where only torch is installed. The JSON is rewritten after every epoch, so a run cut
short keeps what it measured. `--summarise` reads such a file (on any machine): per seed the
final W_e and latent ranks, whether the rank settled (`analysis.settle`'s rule) and whether
the seeds split (`analysis.compare.seeds_split`), as a markdown table, and optionally the
W_e rank trajectories as a figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from train_throughput import describe, machine_description  # benchmarks/ is on sys.path

from analysis.compare import seeds_split
from analysis.settle import SETTLED_RULE, Settledness
from rankae.config import RunConfig
from rankae.engine import pick_device
from rankae.settle import spectral_gap
from rankae.vectorized import VectorizedTrainer

LATENT_VALUES_KEPT = 32  # of the code spectrum's 128: the rank threshold is far above the 32nd


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="K, seeds 0..K-1 (default 10)")
    parser.add_argument("--depth", type=int, default=16, help="N (default 16)")
    parser.add_argument("--alpha", type=float, default=300.0, help="alpha (default 300)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--n-train", type=int, default=None, help="training images (all)")
    parser.add_argument("--n-eval", type=int, default=10_000, help="test images for codes")
    parser.add_argument("--seconds", type=float, default=300.0, help="training time budget")
    parser.add_argument("--max-epochs", type=int, default=200, help="the paper's 200")
    parser.add_argument("--no-cuda-graph", action="store_true", help="train eagerly")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if any)")
    parser.add_argument("--json", metavar="PATH", help="where the records go")
    parser.add_argument("--summarise", metavar="JSON", nargs="+", help="summarise runs' JSON")
    parser.add_argument("--figure", metavar="PNG", help="with --summarise: W_e rank vs step")
    args = parser.parse_args(argv)
    if (args.json is None) == (args.summarise is None):
        parser.error("give either --json PATH (train) or --summarise JSON (read a run)")
    if args.figure and not args.summarise:
        parser.error("--figure draws a --summarise JSON's trajectories")
    if args.seeds < 2:
        parser.error(f"--seeds {args.seeds}: a group needs at least 2 seeds")
    if args.seconds <= 0:
        parser.error(f"--seconds {args.seconds}: the budget must be positive")
    return args


def member_trajectories(run: dict) -> list[dict]:
    """Per seed: its logged steps, W_e ranks and last W_e spectrum, and the epoch it diverged
    at (None: it did not). A diverged epoch's record has no usable spectrum, so it ends the
    trajectory."""
    out = []
    for k, seed in enumerate(run["config"]["seeds"]):
        steps, ranks, last, diverged_at = [], [], None, None
        for epoch in run["epochs"]:
            member = epoch["members"][k]
            if member is None:
                break
            if member["diverged"]:
                diverged_at = epoch["epoch"]
                break
            steps.append(epoch["step"])
            ranks.append(member["we_rank"])
            last = member
        out.append(
            {"seed": seed, "steps": steps, "ranks": ranks, "last": last, "diverged_at": diverged_at}
        )
    return out


def summarise(run: dict) -> str:
    """A markdown table, one row per seed, then whether the seeds' settled ranks split."""
    config = run["config"]
    lines = [
        f"N = {config['depth']}, alpha = {config['alpha']:g}, {config['dtype']}, "
        f"{config['n_train']:,} training images, batch {config['batch_size']}, "
        f"{run['epochs'][-1]['step']:,} steps; {run['machine']['device']}",
        "",
        "| seed | W_e rank | latent rank | steps unchanged | longest wait | gap | settled |",
        "|---|---|---|---|---|---|---|",
    ]
    settled_ranks = []
    for member in member_trajectories(run):
        if member["last"] is None or member["diverged_at"] is not None:
            lines.append(
                f"| {member['seed']} | diverged at epoch {member['diverged_at']} | | | | | |"
            )
            continue
        last = member["last"]
        state = Settledness(
            epochs=tuple(range(1, len(member["steps"]) + 1)),
            steps=tuple(member["steps"]),
            ranks=tuple(member["ranks"]),
            gap=spectral_gap(last["we_sv"], last["we_rank"]),
        )
        if state.settled:
            settled_ranks.append(last["we_rank"])
        lines.append(
            f"| {member['seed']} | {last['we_rank']} | {last['latent_rank']} "
            f"| {state.stable_steps:,} | {state.longest_wait:,} | {state.gap:.0f} "
            f"| {'yes' if state.settled else 'no'} |"
        )
    listed = ", ".join(map(str, sorted(settled_ranks)))
    if len(settled_ranks) < 2:
        verdict = f"inconclusive: {len(settled_ranks)} settled seed(s)"
    elif seeds_split(settled_ranks):
        verdict = f"seeds split: settled W_e ranks {listed}"
    else:
        verdict = f"seeds agree: settled W_e ranks {listed}"
    return "\n".join([*lines, "", f"Rule: {SETTLED_RULE}.", verdict])


def draw(runs: list[dict], path: str) -> None:
    """W_e rank against optimiser step, one line per seed, one panel per run."""
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        for member in member_trajectories(run):
            end = (
                ""
                if member["diverged_at"] is None
                else f" (diverged, epoch {member['diverged_at']})"
            )
            ax.plot(member["steps"], member["ranks"], label=f"seed {member['seed']}{end}")
        finals = [m["ranks"][-1] for m in member_trajectories(run) if m["ranks"]]
        ax.set_ylim(0, 2 * max(finals, default=1))  # early transients (rank ~120) are cut
        ax.set_title(f"{run['config']['n_train']:,} images, alpha {run['config']['alpha']:g}")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("W_e rank")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarise:
        runs = []
        for path in args.summarise:
            with open(path) as f:
                runs.append(json.load(f))
        print("\n\n".join(summarise(run) for run in runs))
        if args.figure:
            draw(runs, args.figure)
        return 0
    device = pick_device(args.device)
    base = RunConfig(
        dataset="mnist",
        architecture="mnist_conv",
        depth=args.depth,
        alpha=args.alpha,
        dtype=args.dtype,
        n_train=args.n_train,
        n_eval=args.n_eval,
        epochs=args.max_epochs,
    ).validate()
    configs = [base.replace(seed=seed) for seed in range(args.seeds)]
    trainer = VectorizedTrainer(
        configs, device, cuda_graph=device.type == "cuda" and not args.no_cuda_graph
    )
    out: dict[str, object] = {
        "config": {
            "depth": args.depth,
            "alpha": args.alpha,
            "dtype": args.dtype,
            "n_train": len(trainer.data.train),
            "n_eval": trainer.data.n_eval,
            "batch_size": base.batch_size,
            "rank_threshold": base.rank_threshold,
            "seeds": list(range(args.seeds)),
        },
        "epochs": [],
    }
    start = time.perf_counter()
    last_epoch_s = 0.0
    while trainer.running and time.perf_counter() - start + last_epoch_s <= args.seconds:
        epoch_start = time.perf_counter()
        records = trainer.train_one_epoch()
        last_epoch_s = time.perf_counter() - epoch_start
        live = [r for r in records if r is not None]
        out["epochs"].append(
            {
                "epoch": live[0].epoch,
                "step": live[0].step,
                "epoch_s": round(last_epoch_s, 2),
                "group_steps_per_s": round(live[0].steps_per_s, 1),
                "members": [
                    None
                    if r is None
                    else {
                        "loss": r.loss,
                        "diverged": r.diverged,
                        "we_rank": r.we_rank,
                        "latent_rank": r.latent_rank,
                        "we_sv": r.we_singular_values,
                        "latent_sv": (r.latent_singular_values or [])[:LATENT_VALUES_KEPT],
                    }
                    for r in records
                ],
            }
        )
        out["machine"] = machine_description(device)
        with open(args.json, "w") as f:
            json.dump(out, f)
        ranks = " ".join("-" if r is None else f"{r.we_rank}/{r.latent_rank}" for r in records)
        print(
            f"epoch {live[0].epoch:3d} step {live[0].step:6d} {last_epoch_s:6.1f} s "
            f"W_e/latent rank per seed: {ranks}",
            flush=True,
        )
    print(f"# gpu_seed_group: {describe(machine_description(device))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
