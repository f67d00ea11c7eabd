"""Run a resolved study: boot Ray, build the Tuner from the plan, fit, then report.

`run_study` is what `python -m study.run NAME` calls once every check has passed. It gives
the invocation its Ray experiment folder `<storage>/<run_name>/` and its MLflow parent run,
runs the plan's searcher with the divergence stopper and the tracking callback, turns
SIGTERM into Ctrl-C's clean stop, and ends with the results table (`analysis`'s), the
plan's outcome and where everything went.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from analysis.compare import summary_table
from analysis.load import SEARCH_ARTIFACT_DIR
from trainables.contract import CONTRACT_VERSION, trial_ended

from ..adapters.table import trials_frame
from ..cost import estimate
from ..spec import StudySpec
from .invocations import new_invocation, optuna_db, save_invocation

TRIAL_LOGS = ("stdout", "stderr")  # per trial, beside its checkpoints: <storage>/<run>/<trial>/
log = logging.getLogger("rankstudy")  # the service's own messages (tables are printed)
LOCAL_RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
NEW_OUTPUT_ENV = "RAY_AIR_NEW_OUTPUT"


def start_ray(address: str | None, cpus_per_trial: float) -> None:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # the study's progress table is a reporter of Ray's classic output engine, which the new
    # engine (RAY_AIR_NEW_OUTPUT=1) would drop without a word: the study keeps the classic one
    if os.environ.get(NEW_OUTPUT_ENV, "0") != "0":
        log.warning("%s=%s ignored: the study shows its own progress table (Ray's classic "
                    "output)", NEW_OUTPUT_ENV, os.environ[NEW_OUTPUT_ENV])  # fmt: skip
    os.environ[NEW_OUTPUT_ENV] = "0"
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


# The stop signals other than Ctrl-C's SIGINT: SIGTERM (Kubernetes, Slurm's `scancel`, a spot
# reclaim) and SIGHUP (a dropped SSH session, a closed terminal)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_signals_as_sigint():
    """While the study runs, SIGTERM and SIGHUP take Ctrl-C's path; the list it yields holds
    the signals that came.

    Ray's own SIGTERM handler (set by `ray.init`) would tear the local node down under the
    driver, which then aborts, and SIGHUP's default ends the driver without a word. This
    handler hands either to whatever handles SIGINT now (Tune's, which stops the trials,
    checkpoints and saves the experiment; else Python's KeyboardInterrupt), so the study
    ends as after Ctrl-C, with exit code 128 + the signal. After a hang-up the terminal is
    gone: output that went to it goes nowhere instead of failing.
    """
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        if signum == signal.SIGHUP:
            silence_terminal()
        log.warning("%s received: stopping as on Ctrl-C", signal.Signals(signum).name)
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):  # SIGINT ignored or default: stop all the same
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set in the main thread
        return
    previous = {  # a signal the user chose to ignore stays ignored (`nohup` ignores SIGHUP)
        signum: signal.signal(signum, on_signal)
        for signum in STOP_SIGNALS
        if signal.getsignal(signum) != signal.SIG_IGN
    }
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def silence_terminal() -> None:
    """Point stdout and stderr that are a terminal at /dev/null (files and pipes stay)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        if os.isatty(fd):
            os.dup2(devnull, fd)
    os.close(devnull)


def progress(spec: StudySpec, experiment_path: str) -> Any:
    """The console table while Tune runs (`study.adapters.progress`), sized by the plan."""
    from ..adapters.progress import PlanProgress
    from ..cost import trial_seconds

    plan, cost = spec.plan, estimate(spec)
    return PlanProgress(
        title=f"{spec.name} ({spec.preset})",
        total=plan.trial_count(len(spec.seed_groups())),
        at_most=plan.at_most,
        results_path=experiment_path,
        estimate_s=cost.wall_s(os.cpu_count() or 1),
        work_s=cost.cpu_hours * 3600,
        seconds_of=trial_seconds,
    )


def restore(
    options: dict[str, Any], experiment_path: str, trainable: Any, invocation: dict[str, Any]
) -> Any:
    """`--resume`: the invocation's own Tuner, restored (None when there is none to restore:
    it never got as far as Tune's first save, and starts as a new fit)."""
    from ray import tune

    if not (options.get("resume") and tune.Tuner.can_restore(experiment_path)):
        return None
    run_name = invocation["run_name"]
    saved_under = invocation.get("trial_contract", 1)  # records before version 2 have none
    if saved_under != CONTRACT_VERSION:
        raise SavedByAnotherVersion(
            f"--resume {run_name}: its trials were made under version {saved_under} of the "
            f"trial contract (trainables/contract.py) and this rankstudy reads version "
            f"{CONTRACT_VERSION}; finish it with the version that started it (the "
            "code_version of its MLflow parent run), or start the study again"
        )
    try:
        return tune.Tuner.restore(experiment_path, trainable, resume_unfinished=True)
    except (ModuleNotFoundError, AttributeError) as err:  # a class Tune saved has moved
        raise SavedByAnotherVersion(
            f"--resume {run_name}: its saved Tune state names code this version of "
            f"rankstudy does not have ({err}); finish it with the version that started it "
            "(the code_version of its MLflow parent run), or start the study again"
        ) from None


class SavedByAnotherVersion(Exception):
    """An invocation whose saved Tune state this code cannot load: its trials have another
    shape (the trial contract's version), or it names classes that have moved."""


def run_study(spec: StudySpec, options: dict[str, Any], invocation: dict[str, Any] | None) -> int:
    from ray import tune

    from analysis.load import default_tracking_uri
    from trainables.autoencoder import train_autoencoder

    from ..adapters.tracking import MlflowTracker, code_version

    started = time.time()
    invocation = invocation or new_invocation(spec.name, options)
    run_name = invocation["run_name"]
    experiment_path = f"{options['storage'].rstrip('/')}/{run_name}"
    trainable = tune.with_resources(
        train_autoencoder, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    )
    try:  # before MLflow is touched: a refused --resume leaves the invocation as it was
        restored = restore(options, experiment_path, trainable, invocation)
    except SavedByAnotherVersion as err:
        log.error("%s", err)
        return 2
    invocation["trial_contract"] = CONTRACT_VERSION  # what Tune saves from here on
    with stop_signals_as_sigint() as received:
        tracker = MlflowTracker(
            options["mlflow_uri"],
            options.get("experiment") or spec.name,
            spec.name,
            run_name,
            parent_run_id=invocation["parent_run_id"],
            shown=spec.plan.named_keys(),
            study_params={"study": spec.name, "preset": spec.preset, "seeds": spec.seeds,
                          "code_version": code_version(),
                          "plan": spec.plan.describe(len(spec.seeds))[0],
                          "plan_kind": type(spec.plan).__name__,  # the report's sections
                          "seeds_per_trial": spec.seeds_per_trial,
                          **spec.overrides},
        )  # fmt: skip
        invocation["parent_run_id"] = tracker.parent_run_id
        save_invocation(run_name, invocation)
        log.info(
            "%s: invocation %s; MLflow %s; trial checkpoints and logs (stdout, stderr) in "
            "%s/<trial_id>/",
            spec.name, run_name, options["mlflow_uri"], experiment_path,
        )  # fmt: skip
        status, unfinished = "KILLED", 1  # until the plan is known to be done
        try:
            results = (
                restored.fit()
                if restored is not None
                else fit(spec, options, tracker, trainable, run_name, experiment_path)
            )
            # ended: failed after its retries, or its last result says so (not a trial an
            # interrupt stopped, though Tune marks it terminated, nor a pending one)
            ended = [r for r in results if r.error is not None or trial_ended(r.metrics)]
            reported = [(dict(r.config), dict(r.metrics or {}), r.error is not None) for r in ended]
            unfinished = len(results) - len(ended)
            if not unfinished and not spec.plan.complete(spec.trials(), reported):
                unfinished += 1  # trials the searcher still had to hand out
            status = "KILLED" if unfinished else "FINISHED"
        except KeyboardInterrupt:  # a stop outside Tune's own handling: before or after fit
            pass
        except BaseException:
            status = "FAILED"
            raise
        finally:
            tracker.close(status)
    if unfinished:
        log.warning(
            "%s: interrupted before the plan finished; continue with: "
            "python -m study.run %s --resume %s",
            spec.name, options.get("name", spec.name), run_name,  # a study file by its path
        )  # fmt: skip
        return 128 + received[0] if received else 130  # as a shell reports the signal
    where = {
        "mlflow_uri": options["mlflow_uri"],
        "default_uri": default_tracking_uri(),
        "experiment_path": experiment_path,
        "wall_s": time.time() - started,
    }
    search_record = optuna_db(run_name)
    if search_record.exists():  # the report draws the search's history from it
        tracker.log_artifact(search_record, SEARCH_ARTIFACT_DIR)
    return report(spec, reported, tracker, where)


def fit(
    spec: StudySpec,
    options: dict[str, Any],
    tracker: Any,
    trainable: Any,
    run_name: str,
    experiment_path: str,
) -> Any:
    """Tune's fit of the plan on a new Tuner."""
    from ray import tune

    from trainables.contract import trial_name

    from ..adapters.stopper import DivergenceStopper
    from ..adapters.tune_search import TuneSearch

    storage_url = f"sqlite:///{optuna_db(run_name)}"  # used by an Optuna plan only
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=TuneSearch(spec.plan.search(spec.trials(), storage_url, run_name)),
            num_samples=spec.plan.tune_samples(),
            max_concurrent_trials=options.get("max_concurrent") or spec.plan.max_concurrent,
            reuse_actors=True,
            trial_dirname_creator=lambda trial: trial.trial_id,
            trial_name_creator=lambda trial: trial_name(trial.config, spec.plan.named_keys()),
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=options["storage"],
            stop=DivergenceStopper(),
            callbacks=[tracker],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            # each trial's prints, warnings and tracebacks: files stdout and stderr in its
            # folder <storage>/<run_name>/<trial_id>/, synced there like its checkpoints
            # (so also from other nodes, and to s3://)
            log_to_file=TRIAL_LOGS,
            sync_config=tune.SyncConfig(sync_artifacts=True),
            failure_config=tune.FailureConfig(max_failures=options["max_failures"]),
            progress_reporter=progress(spec, experiment_path),
            verbose=1,
        ),
    )
    return tuner.fit()


def report(spec: StudySpec, trials: list, tracker: Any, where: dict[str, Any]) -> int:
    """The results table, the plan's outcome (an escalation's ladder), recoveries, failures,
    then where it all went and what to run next; the same text goes to the MLflow parent run."""
    rows = trials_frame(trials)
    table = summary_table(rows)
    text = table.to_markdown(index=False)
    print(f"\n== {spec.name} ({spec.preset}): results over {len(rows)} runs ==")
    print(table.to_string(index=False))
    summary: dict[str, float] = {"trials": len(rows), "diverged": int(rows["diverged"].sum())}
    for title, outcome, metrics in spec.plan.outcome(rows):
        shown = outcome.to_string(index=False)
        print(f"\n{title}:\n{shown}")
        text += "\n\n" + shown
        summary.update(metrics)
    for line in recovery_lines(rows):
        log.warning("%s", line)
        text += "\n\n" + line
    tracker.log_study_summary(summary, text)
    failed = rows[rows["status"] != "FINISHED"]
    if len(failed):
        names = list(failed["run_name"])
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
    from ..adapters.progress import clock

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
        f"{int(rows['diverged'].sum())}, failed {int((rows['status'] != 'FINISHED').sum())}",
        f"MLflow: {uri}, experiment {tracker.experiment_name!r}, parent run "
        f"{tracker.parent_run_id} ({tracker.invocation})",
        f"Ray results (checkpoints, trial logs): {where['experiment_path']}",
        "next:",
    ]
    if not uri.startswith("http"):
        lines.append(f"  mlflow ui --backend-store-uri {ui_uri}   # then http://127.0.0.1:5000")
    lines.append(f"  python -m analysis.report {spec.name}{report_uri}")
    return lines


def recovery_lines(rows: Any) -> list[str]:
    """Which runs recovered, and how: a reader of the summary sees every restart."""
    lines = []
    scratch = rows[rows["checkpoint_discarded"]]
    if len(scratch):
        names = "; ".join(scratch["run_name"])
        lines.append(
            f"{len(scratch)} run(s) restarted from scratch because their checkpoint was "
            f"unreadable: {names}"
        )
    resumed = rows[rows["resumed_from_epoch"].notna() & ~rows["checkpoint_discarded"]]
    if len(resumed):
        names = "; ".join(
            f"{r.run_name} (from epoch {int(r.resumed_from_epoch)})" for r in resumed.itertuples()
        )
        lines.append(
            f"{len(resumed)} run(s) resumed from a checkpoint after a crash or an interruption: "
            f"{names}"
        )
    return lines
