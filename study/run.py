"""Run a named study on Ray Tune, tracked in MLflow.

    python -m study.run --list
    python -m study.run linear_depth_sweep [--smoke] [--seeds 0,1,2] [--set key=value ...]
    python -m study.run mnist_explicit --preset laptop      # the CPU-hour tier
    python -m study.run mnist_alpha_sweep --dry-run
    python -m study.run mnist_alpha_sweep --resume          # continue the latest invocation
    python -m study.run mnist_depth_sweep --gpus-per-trial 0.5   # seeds side by side per trial

Every invocation gets its own Ray experiment folder `<storage>/<study>-<UTC time>` and its
own MLflow parent run, so two invocations never overwrite each other. Misuse is reported
in one line with exit code 2 before Ray starts or anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rankae.config import ConfigError
from search_spaces import AlphaEscalation, Grid, OptunaSpace

from .cost import estimate
from .spec import StudySpec, parse_override
from .studies import TIERS, config, load, names, presets
from .table import aligned, escalation_summary, summary_table, trial_rows

STATE_DIR = Path(".rankstudy") / "invocations"  # per invocation: what --resume needs
TRIAL_LOGS = ("stdout", "stderr")  # per trial, beside its checkpoints: <storage>/<run>/<trial>/
log = logging.getLogger("rankstudy")  # the service's own messages (tables are printed)
LOCAL_RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


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
        help="full (the paper's protocol; default), laptop (an hour or so on 2 CPU "
        "cores, where the study offers it) or smoke (minutes: the code path only)",
    )
    p.add_argument("--smoke", action="store_true", help="short for --preset smoke")
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


def preset_of(options: dict[str, Any]) -> str:
    """--preset, or smoke for --smoke; the two disagreeing is misuse."""
    preset, smoke = options.get("preset"), options.get("smoke")
    if smoke and preset not in (None, "smoke"):
        raise UsageError(f"--smoke contradicts --preset {preset}: give one of them")
    return "smoke" if smoke else preset or "full"


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
    spec = config(options["name"], preset_of(options))
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

    dataset = spec.overrides.get("dataset", spec.base.dataset)
    if dataset == "synthetic":
        return
    try:
        load_images(dataset, "test", spec.overrides.get("data_root", spec.base.data_root), limit=1)
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
    header = ["study", "reproduces", "smoke", "laptop", f"full ({cores} CPU cores)", "full (1 GPU)"]
    rows = [header]
    for name in names():
        specs = {preset: config(name, preset) for preset in presets(name)}
        times = {preset: duration(estimate(spec).wall_s(cores)) for preset, spec in specs.items()}
        gpu = estimate(specs["full"]).gpu_hours
        gpu_text = "as on CPU" if gpu is None else duration(gpu * 3600)
        rows.append([name, specs["full"].figure, times["smoke"], times.get("laptop", "-"),
                     times["full"], gpu_text])  # fmt: skip
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
    lines += plan_lines(spec)
    plan = spec.plan
    if not isinstance(plan, OptunaSpace):
        per_trial = spec.seeds_per_trial or "auto (1 on CPU; on a GPU, as many as fit)"
        lines.append(f"seeds per trial: {per_trial}")
    cost = estimate(spec)
    cores = os.cpu_count() or 1
    gpu = "n/a (CPU is as fast)" if cost.gpu_hours is None else f"{cost.gpu_hours:.2f} GPU-h"
    lines.append(
        f"work: {'up to ' if isinstance(plan, AlphaEscalation) else ''}{cost.trials} runs, "
        f"{cost.steps:,} optimiser steps; estimate {cost.cpu_hours:.2f} CPU-core-h "
        f"({duration(cost.wall_s(cores))} on this machine's {cores} cores, downstream and "
        f"start-up included), {gpu}; disk ~{cost.disk_gb:.2f} GB of checkpoints"
    )
    return "\n".join(lines)


def plan_lines(spec: StudySpec) -> list[str]:
    """The plan in words: its first line sums it up (an MLflow param of the study run)."""
    lines, plan = [], spec.plan
    if isinstance(plan, Grid):
        lines.append(f"grid: {len(plan.variants)} configs x {len(spec.seeds)} seeds")
        lines += [f"  {variant}" for variant in plan.variants]
    elif isinstance(plan, AlphaEscalation):
        ladder = ", ".join(f"{a:g}" for a in plan.ladder())
        lines.append(
            f"alpha escalation per N in {list(plan.depths)}: alpha = {ladder} "
            f"(all {len(spec.seeds)} seeds per rung; stop at the first divergence)"
        )
    elif isinstance(plan, OptunaSpace):
        lines.append(
            f"optuna: {plan.num_samples} trials over {plan.bottlenecks} "
            f"{plan.conditional}, {plan.mode} {plan.metric}"
        )
    return lines


# -- running ----------------------------------------------------------------------------
def start_ray(address: str | None, cpus_per_trial: float) -> None:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if not address:
        # Token auth is off only for the loopback-only instance started here; a cluster
        # joined with --address keeps whatever auth mode it was started with.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        # A local instance serves this machine only. With Ray's multi-node mode off (its
        # switch has this name; it is read when ray is imported), Ray takes 127.0.0.1 as the
        # node address, so its GCS, raylet and workers listen on loopback, not on every
        # interface. Set the variable to 1 to let other machines reach it.
        os.environ.setdefault(LOCAL_RAY_CLUSTER_ENV, "0")
    import ray

    if ray.is_initialized():  # a caller (a notebook, the tests) already started Ray
        return
    if address:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        return
    # Ray's daemons inherit an ignored SIGINT, so Ctrl-C in a terminal (which signals the
    # whole foreground process group) reaches only this driver, which stops Tune cleanly.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _init_local_ray(cpus_per_trial)
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_local_ray(cpus_per_trial: float) -> None:
    import ray

    ray.init(
        num_cpus=max(os.cpu_count() or 1, math.ceil(cpus_per_trial)),
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
        logging_level="ERROR",
        _temp_dir=f"/tmp/rs-ray-{os.getuid()}",
    )


@contextlib.contextmanager
def sigterm_as_sigint():
    """While Tune runs, SIGTERM takes Ctrl-C's path; the list it yields is non-empty once one came.

    SIGTERM is what Kubernetes, Slurm's `scancel` and a spot reclaim send. Ray's own handler
    (set by `ray.init`) would tear the local node down under the driver, which then aborts;
    this one hands the signal to whatever handles SIGINT now (Tune's, which stops the trials,
    checkpoints and saves the experiment), so the study ends as after Ctrl-C, exit code 143.
    """
    terminated: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        terminated.append(signum)
        log.warning("SIGTERM received: stopping as on Ctrl-C")
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):  # SIGINT ignored or default: stop all the same
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    if threading.current_thread() is not threading.main_thread():
        yield terminated  # signal handlers can only be set in the main thread
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield terminated
    finally:
        signal.signal(signal.SIGTERM, previous)


def make_searcher(spec: StudySpec, run_name: str | None = None):
    from .searchers import AlphaEscalationSearcher, FinalMetricOptuna, PlanSearcher

    plan = spec.plan
    if isinstance(plan, Grid):
        return PlanSearcher(spec.grid_configs()), -1
    if isinstance(plan, AlphaEscalation):
        return AlphaEscalationSearcher(spec), -1
    storage = None
    if run_name:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{optuna_db(run_name)}"
    space = functools.partial(_optuna_space, spec)
    name = run_name or "optuna"
    searcher = FinalMetricOptuna(space, plan.metric, plan.mode, spec.seeds[0], storage, name)
    return searcher, plan.num_samples


def optuna_db(run_name: str) -> Path:
    """The Optuna study of an invocation (`optuna.load_study(study_name=run_name, ...)`)."""
    return (STATE_DIR / f"{run_name}.optuna.db").absolute()


def _optuna_space(spec: StudySpec, trial: Any) -> dict[str, Any]:
    assert isinstance(spec.plan, OptunaSpace)
    return spec.trial_config(spec.plan.define_by_run(trial), spec.seeds[0])


def save_invocation(run_name: str, record: dict[str, Any]) -> Path:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = STATE_DIR / f"{run_name}.json"
    path.write_text(json.dumps(record, indent=1))
    return path


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


def find_invocation(study: str, which: str) -> dict[str, Any]:
    """The named invocation, or the latest one started: by the UTC start time in its name
    (`<study>-<YYYYmmdd-HHMMSS>-<hex>`), not by when its record was last written, so resuming
    an older invocation does not make it the latest."""
    found = STATE_DIR.glob(f"{study}-*.json") if STATE_DIR.is_dir() else []
    candidates = sorted(found, key=lambda path: path.stem.removeprefix(f"{study}-"))
    if which != "latest":
        candidates = [c for c in candidates if c.stem == which]
    if not candidates:
        raise UsageError(
            f"--resume {which}: no earlier invocation of {study!r} in {STATE_DIR.absolute()}"
        )
    return json.loads(candidates[-1].read_text())


def progress(spec: StudySpec, experiment_path: str) -> Any:
    """The console table while Tune runs (`study.progress`), sized by the plan."""
    from .cost import trial_seconds
    from .progress import PlanProgress

    plan, cost = spec.plan, estimate(spec)
    return PlanProgress(
        title=f"{spec.name} ({spec.preset})",
        total=plan.trial_count(len(spec.seed_groups())),
        at_most=isinstance(plan, AlphaEscalation),
        results_path=experiment_path,
        estimate_s=cost.wall_s(os.cpu_count() or 1),
        work_s=cost.cpu_hours * 3600,
        seconds_of=trial_seconds,
    )


def run_study(spec: StudySpec, options: dict[str, Any], invocation: dict[str, Any] | None) -> int:
    from ray import tune

    from trainables import train_autoencoder

    from .searchers import plan_complete
    from .stopper import DivergenceStopper
    from .store import default_tracking_uri
    from .tracking import MlflowTracker, code_version
    from .tracking import run_name as label_of  # `run_name` below is the invocation's

    started = time.time()
    if invocation is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        run_name = f"{spec.name}-{stamp}-{secrets.token_hex(2)}"  # unique per invocation
        invocation = {"run_name": run_name, "options": options, "parent_run_id": None}
    run_name = invocation["run_name"]
    storage = options["storage"]
    tracker = MlflowTracker(
        options["mlflow_uri"],
        options.get("experiment") or spec.name,
        spec.name,
        run_name,
        parent_run_id=invocation["parent_run_id"],
        study_params={"study": spec.name, "preset": spec.preset, "seeds": spec.seeds,
                      "code_version": code_version(),
                      "plan": plan_lines(spec)[0], "seeds_per_trial": spec.seeds_per_trial,
                      **spec.overrides},
    )  # fmt: skip
    invocation["parent_run_id"] = tracker.parent_run_id
    save_invocation(run_name, invocation)

    trainable = tune.with_resources(
        train_autoencoder, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    )
    experiment_path = f"{storage.rstrip('/')}/{run_name}"
    log.info(
        "%s: invocation %s; MLflow %s; trial checkpoints and logs (stdout, stderr) in "
        "%s/<trial_id>/",
        spec.name, run_name, options["mlflow_uri"], experiment_path,
    )  # fmt: skip
    status = "FAILED"
    try:
        if options.get("resume") and tune.Tuner.can_restore(experiment_path):
            tuner = tune.Tuner.restore(experiment_path, trainable, resume_unfinished=True)
        else:
            searcher, num_samples = make_searcher(spec, run_name)
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    num_samples=num_samples,
                    max_concurrent_trials=options.get("max_concurrent") or None,
                    reuse_actors=True,
                    trial_dirname_creator=lambda trial: trial.trial_id,
                    trial_name_creator=lambda trial: label_of(trial.config),
                ),
                run_config=tune.RunConfig(
                    name=run_name,
                    storage_path=storage,
                    stop=DivergenceStopper(),
                    callbacks=[tracker],
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    # each trial's prints, warnings and tracebacks: files stdout and stderr
                    # in its folder <storage>/<run_name>/<trial_id>/, synced there like
                    # its checkpoints (so also from other nodes, and to s3://)
                    log_to_file=TRIAL_LOGS,
                    sync_config=tune.SyncConfig(sync_artifacts=True),
                    failure_config=tune.FailureConfig(max_failures=options["max_failures"]),
                    progress_reporter=progress(spec, experiment_path),
                    verbose=1,
                ),
            )
        with sigterm_as_sigint() as terminated:
            results = tuner.fit()
        unfinished = len(results) - results.num_terminated - results.num_errors
        completed = [(dict(r.config), r.metrics, r.error is not None) for r in results]
        if not unfinished and not plan_complete(spec, completed):
            unfinished += 1  # trials the searcher still had to hand out
        status = "KILLED" if unfinished else "FINISHED"
    finally:
        tracker.close(status)
    if unfinished:
        log.warning(
            "%s: interrupted before the plan finished; continue with: "
            "python -m study.run %s --resume %s",
            spec.name, spec.name, run_name,
        )  # fmt: skip
        return 143 if terminated else 130  # 128 + the signal, as a shell reports it
    trials = [
        (dict(r.config), dict(r.metrics or {}), r.error is not None) for r in results if r.config
    ]
    where = {
        "mlflow_uri": options["mlflow_uri"],
        "default_uri": default_tracking_uri(),
        "experiment_path": experiment_path,
        "wall_s": time.time() - started,
    }
    return report(spec, trials, tracker, where)


def report(spec: StudySpec, trials: list, tracker: Any, where: dict[str, Any]) -> int:
    """The results table, the escalation's ladder, recoveries, failures, then where it all
    went and what to run next; the same text goes to the MLflow parent run."""
    rows = trial_rows(trials)
    table = summary_table(rows)
    text = table.to_markdown(index=False) if hasattr(table, "to_markdown") else table.to_string()
    print(f"\n== {spec.name} ({spec.preset}): results over {len(rows)} runs ==")
    print(table.to_string(index=False))
    summary: dict[str, float] = {"trials": len(rows), "diverged": int(rows["diverged"].sum())}
    if isinstance(spec.plan, AlphaEscalation):
        ladder = escalation_summary(rows)
        shown = ladder[["depth", "alphas_tried", "divergence", "largest_stable"]].to_string(
            index=False
        )
        print("\nalpha escalation:")
        print(shown)
        text += "\n\n" + shown
        for row in ladder.itertuples():
            if row.largest_stable_alpha is not None:
                summary[f"largest_stable_alpha_N{row.depth}"] = row.largest_stable_alpha
            if row.divergence_alpha is not None:
                summary[f"divergence_alpha_N{row.depth}"] = row.divergence_alpha
    for line in recovery_lines(rows):
        log.warning("%s", line)
        text += "\n\n" + line
    tracker.log_study_summary(summary, text)
    failed = rows[rows["errored"]]
    if len(failed):
        names = [run_label(r) for r in failed.itertuples()]
        log.error(
            "%d trial(s) failed: %s (tracebacks: error.txt and stderr in each trial's folder)",
            len(failed), "; ".join(names),
        )  # fmt: skip
    print("\n" + "\n".join(end_lines(spec, rows, len(trials), tracker, where)))
    return 1 if len(failed) else 0


def end_lines(
    spec: StudySpec, rows: Any, trials: int, tracker: Any, where: dict[str, Any]
) -> list[str]:
    """What ran, how long it took, where everything is, and what to run next."""
    from .progress import clock

    in_trials = f" in {trials} trials" if trials != len(rows) else ""
    uri = where["mlflow_uri"]
    ui_uri = uri
    if uri.startswith("sqlite:///") and Path(uri.removeprefix("sqlite:///")).is_relative_to(
        Path.cwd()
    ):
        ui_uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).relative_to(Path.cwd()))
    report_uri = "" if uri == where["default_uri"] else f" --mlflow-uri {uri}"
    lines = [
        f"== {spec.name} ({spec.preset}) done in {clock(where['wall_s'])} ==",
        f"runs: {len(rows)}{in_trials}, seeds {list(spec.seeds)}; diverged "
        f"{int(rows['diverged'].sum())}, failed {int(rows['errored'].sum())}",
        f"MLflow: {uri}, experiment {tracker.experiment_name!r}, parent run "
        f"{tracker.parent_run_id} ({tracker.invocation})",
        f"Ray results (checkpoints, trial logs): {where['experiment_path']}",
        "next:",
    ]
    if not uri.startswith("http"):
        lines.append(f"  mlflow ui --backend-store-uri {ui_uri}   # then http://127.0.0.1:5000")
    lines.append(f"  python -m analysis.report {spec.name}{report_uri}")
    return lines


def run_label(row: Any) -> str:
    return f"{row.method} N={row.depth} alpha={row.alpha} k={row.k} seed={row.seed}"


def recovery_lines(rows: Any) -> list[str]:
    """Which runs recovered, and how: a reader of the summary sees every restart."""
    lines = []
    scratch = rows[rows["checkpoint_discarded"]]
    if len(scratch):
        names = "; ".join(run_label(r) for r in scratch.itertuples())
        lines.append(
            f"{len(scratch)} run(s) restarted from scratch because their checkpoint was "
            f"unreadable: {names}"
        )
    resumed = rows[rows["resumed_from_epoch"].notna() & ~rows["checkpoint_discarded"]]
    if len(resumed):
        names = "; ".join(
            f"{run_label(r)} (from epoch {int(r.resumed_from_epoch)})" for r in resumed.itertuples()
        )
        lines.append(
            f"{len(resumed)} run(s) resumed from a checkpoint after a crash or an interruption: "
            f"{names}"
        )
    return lines


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
        from .store import check_tracking_uri, default_tracking_uri

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
    from .store import prepare_store

    prepare_store(options["mlflow_uri"])  # every check passed: the first write
    return run_study(resolve_seeds_per_trial(spec), options, invocation)


if __name__ == "__main__":
    sys.exit(main())
