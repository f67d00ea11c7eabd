"""Run a named study on Ray Tune, tracked in MLflow.

    python -m study.run --list
    python -m study.run linear_depth_sweep [--smoke] [--seeds 0,1,2] [--set key=value ...]
    python -m study.run mnist_explicit --preset laptop      # the CPU-hour tier
    python -m study.run mnist_explicit --preset desktop     # a few CPU-hours: the rank settles
    python -m study.run mnist_alpha_sweep --dry-run
    python -m study.run mnist_alpha_sweep --resume          # continue the latest invocation
    python -m study.run mnist_depth_sweep --gpus-per-trial 0.5   # seeds side by side per trial
    python -m study.run rank_of --data x.npy [--labels y.npy]     # the latent rank of your data

Every invocation gets its own Ray experiment folder `<storage>/<study>-<UTC time>` and its
own MLflow parent run, so two invocations never overwrite each other. Misuse is reported
in one line with exit code 2 before Ray starts or anything is written.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rankae.config import ConfigError

from .cost import estimate
from .invocations import find_invocation
from .spec import StudySpec, parse_override
from .studies import TIERS, config, load, names, presets, takes_data
from .table import aligned

log = logging.getLogger("rankstudy")  # the service's own messages (tables are printed)


class UsageError(Exception):
    """CLI misuse: reported in one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m study.run", description=__doc__.split("\n")[0])
    p.add_argument("name", nargs="?", help="a study name (see --list)")
    p.add_argument("--list", action="store_true", help="list the named studies and exit")
    p.add_argument("--keys", action="store_true", help="list the --set keys and exit")
    p.add_argument(
        "--preset",
        choices=TIERS,
        default=None,
        help="full (the paper's protocol; the default, except rank_of: laptop), laptop (an "
        "hour or so on 2 CPU cores, where the study offers it) or smoke (minutes: the code "
        "path only)",
    )
    p.add_argument("--smoke", action="store_true", help="short for --preset smoke")
    p.add_argument("--data", metavar="PATH",
                   help="rank_of: your data, a .npy/.npz file, an image folder or "
                   "torchvision:NAME")  # fmt: skip
    p.add_argument("--labels", metavar="PATH", help="rank_of: a .npy of integer labels")
    p.add_argument("--seeds", help="comma-separated seeds, or a count n for 0..n-1")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run-config value in every trial (repeatable)")  # fmt: skip
    p.add_argument("--cpus-per-trial", type=float)
    p.add_argument("--gpus-per-trial", type=float, help="fractions pack trials on one GPU")
    p.add_argument("--seeds-per-trial", metavar="K|auto",
                   help="seeds trained side by side in one trial (default auto: 1 on CPU, "
                   "as many as fit in a GPU trial's memory)")  # fmt: skip
    p.add_argument("--max-concurrent", type=int, default=0, help="0: as resources allow")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a crashed trial")
    p.add_argument("--storage", help="Ray results location (absolute path or URI)")
    p.add_argument(
        "--mlflow-uri",
        help="tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)",
    )
    p.add_argument("--experiment", help="MLflow experiment name (default: the study name)")
    p.add_argument("--address", help="join a running Ray cluster (default: start a local one)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN",
                   help="continue the latest (or the named) invocation of this study")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the plan and its cost, then exit")
    return p


# -- resolving the CLI into a validated study -------------------------------------------
def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        if "," not in text and int(text) >= 1:
            return tuple(range(int(text)))
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UsageError(
            f"--seeds {text!r} is invalid: give a count n or integers like 0,1,2"
        ) from None
    if not seeds or any(s < 0 for s in seeds):
        raise UsageError(f"--seeds {text!r} is invalid: seeds must be integers >= 0")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise UsageError(
            f"--seeds {text!r} repeats seed(s) {', '.join(map(str, repeated))}: each seed is one "
            "run, give it once"
        )
    return seeds


def preset_of(options: dict[str, Any]) -> str | None:
    """--preset, or smoke for --smoke (None: the study's default); the two disagreeing is
    misuse."""
    preset, smoke = options.get("preset"), options.get("smoke")
    if smoke and preset not in (None, "smoke"):
        raise UsageError(f"--smoke contradicts --preset {preset}: give one of them")
    return "smoke" if smoke else preset


def check_counts(options: dict[str, Any]) -> None:
    """The integer options: --max-failures and --max-concurrent are counts (0 = no limit for
    --max-concurrent); Ray would read a negative --max-failures as "retry forever"."""
    for flag, key in (("--max-failures", "max_failures"), ("--max-concurrent", "max_concurrent")):
        value = options.get(key)
        if value is not None and value < 0:
            raise UsageError(f"{flag} {value} is invalid: must be an integer >= 0")


def resolve_spec(options: dict[str, Any]) -> StudySpec:
    """Study module preset -> CLI changes -> validated spec (every trial config built once)."""
    check_counts(options)
    name = options["name"]
    if takes_data(name) and not options.get("data"):
        raise UsageError(
            f"{name} needs --data PATH: a .npy/.npz file, an image folder or torchvision:NAME"
        )
    spec = config(name, preset_of(options), options.get("data"), options.get("labels"))
    if options.get("seeds"):
        spec = replace(spec, seeds=parse_seeds(options["seeds"]))
    overrides = dict(parse_override(item) for item in options.get("set", []))
    spec = spec.with_overrides(overrides)
    per_trial = options.get("seeds_per_trial")
    if per_trial not in (None, "auto"):
        if not str(per_trial).isdigit() or int(per_trial) < 1:
            raise UsageError(
                f"--seeds-per-trial {per_trial!r} is invalid: use an integer >= 1 or auto"
            )
        spec = replace(spec, seeds_per_trial=int(per_trial))
    gpus = options.get("gpus_per_trial")
    cpus = options.get("cpus_per_trial")
    if cpus is not None:
        if not (math.isfinite(cpus) and cpus > 0):
            raise UsageError(f"--cpus-per-trial {cpus:g} is invalid: must be a finite number > 0")
        cores = os.cpu_count() or 1
        if not options.get("address") and cpus > cores:
            raise UsageError(
                f"--cpus-per-trial {cpus:g} exceeds the {cores} CPU(s) of this machine "
                "(the local Ray instance has no more)"
            )
        spec = replace(spec, cpus_per_trial=cpus)
    if gpus is not None:
        if not math.isfinite(gpus) or gpus < 0 or (gpus > 1 and gpus != int(gpus)):
            raise UsageError(
                f"--gpus-per-trial {gpus:g} is invalid: use a fraction in [0, 1] or a whole number"
            )
        spec = replace(spec, gpus_per_trial=gpus)
    return spec.validate()


def check_gpus(gpus_per_trial: float, available: float) -> None:
    if gpus_per_trial > available:
        raise UsageError(
            f"--gpus-per-trial {gpus_per_trial:g} exceeds the {available:g} GPU(s) available"
        )


def check_storage(storage: str) -> str:
    """Absolute path whose nearest existing folder is writable, or a URI (taken as given).

    Nothing is created here: a rejected invocation leaves no trace.
    """
    if "://" in storage:
        return storage
    path = Path(storage).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(
            f"--storage {storage!r} is invalid: {existing} is a file, and the results storage "
            "must be a folder (created if missing)"
        )
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--storage {storage!r} is not writable ({existing} is read-only)")
    if existing.is_relative_to("/proc") or existing.is_relative_to("/sys"):
        raise UsageError(f"--storage {storage!r} is not writable ({existing} is a kernel folder)")
    return str(path)


def check_data(spec: StudySpec) -> None:
    """Load the test split once on the driver: a missing dataset fails here, not in every trial.

    With internet this is also where torchvision downloads it, once.
    """
    from rankae.data import DataNotFoundError, load_images

    base = spec.base.replace(**spec.overrides)
    if base.dataset == "synthetic":
        return
    try:
        if base.dataset == "user":
            from rankae.userdata import load_user_data

            load_user_data(base.data_path, base.labels_path, min_samples=base.batch_size)
        else:
            load_images(base.dataset, "test", base.data_root, limit=1)
    except DataNotFoundError as err:
        raise UsageError(str(err).replace("\n", " ")) from None


# -- printing ---------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """A wall time as a reader plans with it: ~40 s, ~12 min, ~3.5 h, ~84 days."""
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"~{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"~{seconds / 3600:.1f} h"
    return f"~{seconds / 86400:,.0f} days"


def list_studies() -> None:
    """One line per study: what it reproduces and each tier's estimated wall time."""
    cores = os.cpu_count() or 1
    header = ["study", "reproduces", "smoke", "laptop", "desktop", f"full ({cores} CPU cores)",
              "full (1 GPU)"]  # fmt: skip
    rows = [header]
    for name in names():
        specs = {preset: config(name, preset) for preset in presets(name)}
        times = {preset: duration(estimate(spec).wall_s(cores)) for preset, spec in specs.items()}
        gpu = estimate(specs["full"]).gpu_hours
        gpu_text = "as on CPU" if gpu is None else duration(gpu * 3600)
        rows.append([name, specs["full"].figure, times["smoke"], times.get("laptop", "-"),
                     times.get("desktop", "-"), times["full"], gpu_text])  # fmt: skip
    print("\n".join(aligned(rows)))
    print("\nestimates from study.cost (one trial per core); details: python -m study.run NAME "
          "[--preset TIER] --dry-run")  # fmt: skip


def print_keys() -> None:
    """The `--set` keys: every RunConfig field, its default (the full tier's may differ:
    `--dry-run` shows a study's) and what it allows."""
    from rankae.config import describe_settings

    print("\n".join(aligned([list(row) for row in describe_settings()])))


def describe_plan(spec: StudySpec) -> str:
    lines = [f"study {spec.name} ({spec.figure}), preset {spec.preset}; seeds {list(spec.seeds)}"]
    base = spec.base.replace(**spec.overrides)
    data = f"n_train={base.n_train or 'all'} n_eval={base.n_eval or 'all'}"
    if base.dataset == "user":
        labels = f" labels_path={base.labels_path}" if base.labels_path else ""
        data = f"data_path={base.data_path}{labels} architecture={base.architecture} {data}"
    lines.append(
        f"base: dataset={base.dataset} {data} epochs={base.epochs} optimizer={base.optimizer} "
        f"lr={base.lr:g} (divided by N where depth_lr_scaling) dtype={base.dtype} "
        f"init_scale={base.init_scale:g} two_stage={base.two_stage} "
        f"patience_steps={base.patience_steps}"
    )
    if base.downstream:
        lines.append(
            f"downstream: {base.classifier_labels} labels x {base.classifier_epochs} classifier "
            f"epochs; FID from {base.fid_samples} samples vs {base.fid_reference or 'all'} "
            "training images"
        )
    if spec.overrides:
        lines.append(f"--set overrides: {spec.overrides}")
    lines += spec.plan.describe(len(spec.seeds))
    if spec.plan.groups_seeds:
        per_trial = spec.seeds_per_trial or "auto (1 on CPU; on a GPU, as many as fit)"
        lines.append(f"seeds per trial: {per_trial}")
    cost = estimate(spec)
    cores = os.cpu_count() or 1
    gpu = "n/a (CPU is as fast)" if cost.gpu_hours is None else f"{cost.gpu_hours:.2f} GPU-h"
    lines.append(
        f"work: {'up to ' if spec.plan.at_most else ''}{cost.trials} runs, "
        f"{cost.steps:,} optimiser steps; estimate {cost.cpu_hours:.2f} CPU-core-h "
        f"({duration(cost.wall_s(cores))} on this machine's {cores} cores, downstream and "
        f"start-up included), {gpu}; disk ~{cost.disk_gb:.2f} GB of checkpoints"
    )
    return "\n".join(lines)


def check_resume_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--resume continues an invocation as it was started: any other flag is refused by name
    (applying it would change the plan or the resources of trials already checkpointed)."""
    defaults = vars(parser.parse_args([args.name]))
    kept = ("name", "resume", "dry_run")
    changed = [k for k, v in vars(args).items() if k not in kept and v != defaults[k]]
    if changed:
        flags = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise UsageError(
            f"--resume continues an invocation with the options it was started with; "
            f"{flags} cannot change it (start a new invocation instead)"
        )


def setup_logging() -> None:
    """The CLI's messages on stderr as `rankstudy: ...` (INFO and up); idempotent."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rankstudy: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    setup_logging()
    args = parser.parse_args(argv)
    if args.keys:
        print_keys()
        return 0
    if args.list:
        try:
            list_studies()
            sys.stdout.flush()  # a closed pipe fails here, not at interpreter exit
        except BrokenPipeError:  # `--list | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if not args.name:
        parser.error("a study NAME is required (see --list)")
    try:
        options = vars(args).copy()
        invocation = None
        if args.resume:
            load(args.name)
            check_resume_flags(parser, args)
            invocation = find_invocation(args.name, args.resume)
            options = {**invocation["options"], "resume": args.resume}
        spec = resolve_spec(options)
        if args.dry_run:
            print(describe_plan(spec))
            return 0
        from analysis.load import default_tracking_uri

        from .store import check_tracking_uri

        options["mlflow_uri"] = options.get("mlflow_uri") or default_tracking_uri()
        check_tracking_uri(options["mlflow_uri"])
        if not options.get("address"):
            import torch

            check_gpus(spec.gpus_per_trial, torch.cuda.device_count())
        check_data(spec)
        options["storage"] = check_storage(options.get("storage") or "ray_results")
    except (UsageError, ConfigError, ValueError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    from .launch import start_ray

    start_ray(options.get("address"), spec.cpus_per_trial)
    if options.get("address"):
        import ray

        from .cluster_check import autoscaling_config_path, check_trial_fits, node_shapes

        try:  # against what the cluster can scale to, not what is up now
            shapes = node_shapes(ray.nodes(), autoscaling_config_path())
            check_trial_fits(spec.gpus_per_trial, spec.cpus_per_trial, shapes)
        except ValueError as err:
            print(f"{parser.prog}: error: {err}", file=sys.stderr)
            return 2
    from .grouping import resolve_seeds_per_trial
    from .launch import run_study
    from .store import prepare_store

    prepare_store(options["mlflow_uri"])  # every check passed: the first write
    return run_study(resolve_seeds_per_trial(spec), options, invocation)


if __name__ == "__main__":
    sys.exit(main())
