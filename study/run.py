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
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rankae.config import USER_DATA_SETTINGS, ConfigError

from . import kinds
from .adapters.table import aligned
from .cost import estimate
from .kinds import OneLineParser
from .prepare import StudyData, absolute, read_data, write_prepared
from .service.invocations import check_unchanged, content_digests, find_invocation
from .spec import StudySpec, parse_grid, parse_override
from .studies import (
    TIERS,
    check_data_given,
    config,
    is_study_file,
    load,
    names,
    presets,
    study_name,
)

if TYPE_CHECKING:
    from rankae.userdata import UserData

log = logging.getLogger("rankstudy")  # the service's own messages (tables are printed)


class UsageError(Exception):
    """CLI misuse: reported in one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Every option declares its kind (`study.kinds`), which is its check."""
    p = OneLineParser(prog="python -m study.run", description=__doc__.split("\n")[0])
    p.add_argument("name", nargs="?", help="a study name (see --list) or a study file NAME.py")
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
    p.add_argument("--data", metavar="PATH", type=kinds.place,
                   help="rank_of: your data, a .npy/.npz file, an image folder or "
                   "torchvision:NAME")  # fmt: skip
    p.add_argument("--labels", metavar="PATH", type=kinds.place,
                   help="rank_of: a .npy of integer labels")  # fmt: skip
    p.add_argument("--seeds", type=kinds.seed_list,
                   help="comma-separated seeds, or a count n for 0..n-1")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run-config value in every trial (repeatable)")  # fmt: skip
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="sweep a run-config value (repeatable): the product of the --grid "
                   "values replaces the study's plan, on its base settings")  # fmt: skip
    p.add_argument("--cpus-per-trial", type=kinds.cpus)
    p.add_argument("--gpus-per-trial", type=kinds.gpus, help="fractions pack trials on one GPU")
    p.add_argument("--seeds-per-trial", metavar="K|auto", type=kinds.per_trial,
                   help="seeds trained side by side in one trial (default auto: 1 on CPU, "
                   "as many as fit in a GPU trial's memory)")  # fmt: skip
    p.add_argument("--max-concurrent", type=kinds.count(0), default=0,
                   help="0: as resources allow")  # fmt: skip
    p.add_argument("--max-failures", type=kinds.count(0), default=2,
                   help="retries of a crashed trial")  # fmt: skip
    p.add_argument("--storage", type=kinds.place,
                   help="Ray results location (absolute path or URI)")  # fmt: skip
    p.add_argument(
        "--mlflow-uri",
        type=kinds.place,
        help="tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)",
    )
    p.add_argument("--experiment", type=kinds.name,
                   help="MLflow experiment name (default: the study name)")  # fmt: skip
    p.add_argument("--address", type=kinds.place,
                   help="join a running Ray cluster (default: start a local one)")  # fmt: skip
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN", type=kinds.name,
                   help="continue the latest (or the named) invocation of this study")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the plan and its cost, then exit")
    return p


# -- resolving the CLI into a validated study -------------------------------------------
def preset_of(options: dict[str, Any]) -> str | None:
    """--preset, or smoke for --smoke (None: the study's default); the two disagreeing is
    misuse."""
    preset, smoke = options.get("preset"), options.get("smoke")
    if smoke and preset not in (None, "smoke"):
        raise UsageError(f"--smoke contradicts --preset {preset}: give one of them")
    return "smoke" if smoke else preset


def resolve_spec(options: dict[str, Any], data: StudyData | None = None) -> StudySpec:
    """Study module preset -> CLI changes -> validated spec (every trial config built once);
    `data`: the user's data (`--data`), read once (`study.prepare.read_data`)."""
    spec = config(options["name"], preset_of(options), data)
    seeds = options.get("seeds")
    if isinstance(seeds, str):  # an invocation recorded before --seeds was parsed on entry
        seeds = kinds.seed_list(seeds)
    if seeds:
        spec = replace(spec, seeds=tuple(seeds))
    overrides = dict(parse_override(item) for item in options.get("set", []))
    given = [key for key in USER_DATA_SETTINGS if key in overrides]
    if given:
        raise UsageError(
            f"--set {given[0]}={overrides[given[0]]!r} is not allowed: give a user's data "
            "with --data PATH (and --labels PATH), which is read once and prepared for the trials"
        )
    spec = spec.with_overrides(overrides)
    axes = [parse_grid(item) for item in options.get("grid", [])]
    if axes:
        spec = spec.with_grid(axes)
    per_trial = options.get("seeds_per_trial")
    if per_trial not in (None, "auto"):
        spec = replace(spec, seeds_per_trial=int(per_trial))
    gpus = options.get("gpus_per_trial")
    cpus = options.get("cpus_per_trial")
    if cpus is not None:
        cores = os.cpu_count() or 1
        if not options.get("address") and cpus > cores:
            raise UsageError(
                f"--cpus-per-trial {cpus:g} exceeds the {cores} CPU(s) of this machine "
                "(the local Ray instance has no more)"
            )
        spec = replace(spec, cpus_per_trial=cpus)
    if gpus is not None:
        spec = replace(spec, gpus_per_trial=gpus)
    return spec.validate()


def check_gpus(gpus_per_trial: float, available: float) -> None:
    if gpus_per_trial > available:
        raise UsageError(
            f"--gpus-per-trial {gpus_per_trial:g} exceeds the {available:g} GPU(s) available"
        )


def check_data(spec: StudySpec) -> tuple[int, int | None]:
    """The data checked once on the driver: a missing or unreadable dataset fails here, not in
    every trial (with internet this is also where torchvision downloads it, once); a user's
    data was read already, and its shape is checked here.

    Returns what a trial will hold in memory: the number of input values of its training
    data, and the vectors' width D where the model takes it from the data (else None).
    """
    from rankae.data import DataNotFoundError, load_images

    from .cost import TRAIN_SIZE

    base = spec.base.replace(**spec.overrides)
    if base.dataset == "synthetic":
        return base.synth_samples * base.synth_dim, base.synth_dim
    if spec.data is not None:  # read already (`study.prepare.read_data`)
        if spec.data.n < base.batch_size:
            raise UsageError(
                f"{spec.data.source} has {spec.data.n:,} samples: needs at least "
                f"batch_size={base.batch_size:,} (one batch)"
            )
        return spec.data.values, spec.data.width if spec.data.kind == "vectors" else None
    try:
        sample = load_images(base.dataset, "test", base.data_root, limit=1).images
    except DataNotFoundError as err:
        raise UsageError(str(err).replace("\n", " ")) from None
    images = min(base.n_train or TRAIN_SIZE[base.dataset], TRAIN_SIZE[base.dataset])
    return images * sample[0].numel(), None


# A trial's peak memory holds its model about six times: weights, gradients, Adam's two
# moments and the step's temporaries (5.95 measured for the vector MLP, float32, on the CPU,
# 2026-12-04), on top of its process (Python, torch, numpy and MLflow imported: 0.65 GB).
MODEL_COPIES = 6
TRIAL_PROCESS_BYTES = 650_000_000


def check_memory(spec: StudySpec, data_values: int, input_dim: int | None, at_once: int) -> None:
    """The trials that run at once must fit in this machine's available memory, each holding
    its largest model MODEL_COPIES times and its data, in the run's dtype, in a process of
    its own. Activations come on top, so this is a floor: what it refuses could not run."""
    import psutil
    import torch

    from rankae.models import build_autoencoder

    sizes = []
    for variant in spec.plan.all_variants():
        with torch.device("meta"):  # shapes only: nothing is allocated
            model = build_autoencoder(spec.run_config(variant, spec.seeds[0]), input_dim)
        sizes.append(sum(p.numel() for p in model.parameters()))
    base = spec.base.replace(**spec.overrides)
    itemsize = torch.finfo(getattr(torch, base.dtype)).bits // 8
    members = spec.seeds_per_trial or 1
    per_trial = (MODEL_COPIES * max(sizes) * members + data_values) * itemsize
    per_trial += TRIAL_PROCESS_BYTES
    available = psutil.virtual_memory().available
    if per_trial * at_once > available:
        raise UsageError(
            f"the plan needs at least {per_trial * at_once / 1e9:.1f} GB at once ({at_once} "
            f"trial(s) x {per_trial / 1e9:.1f} GB: a {max(sizes):,}-parameter model x "
            f"{MODEL_COPIES * members}, {data_values:,} input values in {base.dtype} and the "
            "trial's process), more "
            f"than the {available / 1e9:.1f} GB available here; lower --max-concurrent or the "
            "model's or data's size"
        )


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
    if spec.data is not None:  # the user's (its trials load it prepared)
        labels = f" labels_path={spec.data.labels}" if spec.data.labels else ""
        data = f"data_path={spec.data.source}{labels} architecture={base.architecture} {data}"
    lines.append(
        f"base: dataset={base.dataset} {data} bottleneck={base.bottleneck} init={base.init} "
        f"epochs={base.epochs} optimizer={base.optimizer} "
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
    if spec.grid:
        axes = " ".join(f"{key}={','.join(map(str, values))}" for key, values in spec.grid)
        lines.append(f"--grid {axes}: replaces the plan of {spec.name}")
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
    """The CLI's messages on stderr as `rankstudy: ...` (INFO and up); idempotent. Each
    call points the handler at the current stderr: `main` may run several times in one
    process (a notebook, the tests), each time with its own stream."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rankstudy: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    log.handlers[0].stream = sys.stderr  # not setStream: it flushes the old one, maybe closed


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
        options, spec, invocation, user = checked_invocation(parser, args)
        if args.dry_run:
            print(describe_plan(spec))
            return 0
        check_places(options, spec)
    except (UsageError, ConfigError, ValueError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while checking: nothing was started or written
        log.warning("interrupted before the study started; nothing was written")
        return 130
    return launch(parser, options, spec, invocation, user)


def checked_invocation(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[dict[str, Any], StudySpec, dict[str, Any] | None, UserData | None]:
    """The options (a resumed invocation's own), the validated spec, the invocation to
    resume (None: a new one) and the user's data, read once (None: the study reads none);
    the inputs' content hashes recorded or compared."""
    options = vars(args).copy()
    invocation, digests = None, {}  # each input's content digest, computed once
    if args.resume:
        load(args.name)
        check_resume_flags(parser, args)
        invocation = find_invocation(study_name(args.name), args.resume)
        options = {**invocation["options"], "resume": args.resume}
        recorded = options.get("inputs", {})  # before anything reads them again
        digests = content_digests(path for path in recorded if Path(path).exists())
        check_unchanged(recorded, digests, invocation["run_name"])
    name, source, labels = options["name"], options.get("data"), options.get("labels")
    check_data_given(name, bool(source or labels))
    study_file = name if is_study_file(name) else None
    inputs = [absolute(p) for p in (source, labels) if p] + [study_file]
    new = [p for p in inputs if p and p not in digests and Path(p).exists()]
    digests |= content_digests(new)
    options["inputs"] = {p: digests[p] for p in inputs if p in digests}
    user, data = read_data(source, labels, options["inputs"]) if source else (None, None)
    return options, resolve_spec(options, data), invocation, user


def check_places(options: dict[str, Any], spec: StudySpec) -> None:
    """Every external thing the study will use, probed (nothing written): the MLflow store,
    the cluster to join, the GPUs, the data and the memory its trials need, the storage."""
    from analysis.load import default_tracking_uri

    from .adapters.store import check_tracking_uri
    from .service.probes import check_address, check_storage

    options["mlflow_uri"] = options.get("mlflow_uri") or default_tracking_uri()
    check_tracking_uri(options["mlflow_uri"])
    data_values, input_dim = check_data(spec)
    if options.get("address"):
        check_address(options["address"])
    else:  # this machine is where the trials run
        import torch

        check_gpus(spec.gpus_per_trial, torch.cuda.device_count())
        if not spec.gpus_per_trial:
            slots = int((os.cpu_count() or 1) // spec.cpus_per_trial)
            trials = spec.plan.trial_count(len(spec.seed_groups()))
            at_once = min(trials, slots, options.get("max_concurrent") or trials)
            check_memory(spec, data_values, input_dim, max(at_once, 1))
    options["storage"] = check_storage(options.get("storage") or "ray_results")


def launch(
    parser: argparse.ArgumentParser,
    options: dict[str, Any],
    spec: StudySpec,
    invocation: dict[str, Any] | None,
    user: UserData | None,
) -> int:
    """Start (or join) Ray and run the study; every check has passed."""
    from .adapters.store import prepare_store
    from .service.grouping import resolve_seeds_per_trial
    from .service.launch import start_ray

    address, uri = options.get("address"), options["mlflow_uri"]

    def first_writes() -> None:
        """The MLflow store, and the user's data prepared for the trials."""
        prepare_store(uri)
        if user is not None and spec.data is not None:
            write_prepared(user, spec.data)

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # the first writes: a local study has passed every check, so they are made
            # while Ray starts; a cluster's trial shape is checked against it first
            writes = None if address else pool.submit(first_writes)
            start_ray(address, spec.cpus_per_trial)
            if writes is not None:
                writes.result()
            elif not fits_the_cluster(parser, spec):
                return 2
            else:
                first_writes()
        spec = resolve_seeds_per_trial(spec)
    except KeyboardInterrupt:  # before the invocation was recorded: nothing to resume
        log.warning("interrupted before the study started; start it again to run it")
        return 130
    from .service.launch import run_study

    return run_study(spec, options, invocation)


def fits_the_cluster(parser: argparse.ArgumentParser, spec: StudySpec) -> bool:
    """A trial's CPUs and GPUs against what the joined cluster can scale to (not what is up
    now); an error line when they do not fit."""
    import ray

    from .cluster_check import autoscaling_config_path, check_trial_fits, node_shapes

    try:
        shapes = node_shapes(ray.nodes(), autoscaling_config_path())
        check_trial_fits(spec.gpus_per_trial, spec.cpus_per_trial, shapes)
    except ValueError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return False
    return True


def exit_now(code: int) -> NoReturn:
    """End the process with `code` once everything is written: Ray stopped, the streams and
    logs flushed. The interpreter's own teardown after Ray then takes ~2.5 s and writes
    nothing (MLflow's calls are synchronous, every file is closed), so it is skipped."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        pass
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
