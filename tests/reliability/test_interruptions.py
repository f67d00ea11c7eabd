"""Killed drivers, Ctrl-C, crashing trials and torn checkpoints lose nothing already recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from study.adapters.store import check_tracking_uri

from .conftest import (
    LINEAR,
    TINY_ESCALATION,
    client,
    epochs_logged,
    held_at,
    run_cli,
    runs,
    start_cli,
    wait_for,
)


def latest_epoch(folder: Path, experiment: str) -> int:
    """The highest epoch any RUNNING trial has logged."""
    live = [r for r in runs(folder, experiment) if r.info.status == "RUNNING"]
    return max((int(r.data.metrics.get("epoch", 0)) for r in live), default=0)


def test_sigkill_then_resume_continues_from_checkpoints(tmp_path):
    """Also: `--resume` by a version with another trial contract is refused, losing nothing."""
    driver = start_cli(*LINEAR, cwd=tmp_path, **held_at(13, "alpha=2.0"))
    # the first trial finished and the second is past its epoch-10 checkpoint
    wait_for(
        lambda: (
            any(r.info.status == "FINISHED" for r in runs(tmp_path, "linear_alpha_sweep"))
            and latest_epoch(tmp_path, "linear_alpha_sweep") >= 13
        ),
        what="a finished trial and a checkpointed running one",
    )
    finished = next(r for r in runs(tmp_path, "linear_alpha_sweep") if r.info.status == "FINISHED")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()

    # a version whose trials have another shape refuses it and changes nothing
    [record] = (tmp_path / ".rankstudy" / "invocations").glob("*.json")
    saved = record.read_text()
    older = json.dumps({**json.loads(saved), "trial_contract": 1})
    record.write_text(older)
    statuses = {r.info.run_id: r.info.status for r in runs(tmp_path, "linear_alpha_sweep")}
    refused = run_cli("linear_alpha_sweep", "--resume", cwd=tmp_path)
    assert refused.returncode == 2 and "version 1 of the trial contract" in refused.stderr
    assert {r.info.run_id: r.info.status for r in runs(tmp_path, "linear_alpha_sweep")} == statuses
    assert record.read_text() == older
    record.write_text(saved)

    resumed = run_cli("linear_alpha_sweep", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert len(trials) == 2
    assert {r.info.status for r in trials} == {"FINISHED"}
    same = next(r for r in trials if r.info.run_id == finished.info.run_id)
    assert same.info.end_time == finished.info.end_time  # not rerun
    for run in trials:
        assert epochs_logged(tmp_path, run) == list(range(1, 31))  # no gaps, no repeats
    other = next(r for r in trials if r.info.run_id != finished.info.run_id)
    history = client(tmp_path).get_metric_history(other.info.run_id, "resumed_from_epoch")
    assert history and min(m.value for m in history) >= 10  # continued, not restarted
    assert [r.info.status for r in runs(tmp_path, "linear_alpha_sweep", "study")] == ["FINISHED"]


# Both trials created at once, each asking for every CPU: one runs, the other is PENDING.
PENDING_LINEAR = [
    "linear_alpha_sweep", "--smoke", "--cpus-per-trial", str(os.cpu_count() or 1),
    "--set", "epochs=30", "--set", "gd_steps_per_epoch=25",
]  # fmt: skip


def stopped(driver, code: int, folder: Path) -> None:
    """The driver ended with `code`, said how to continue, no traceback; no run RUNNING."""
    _, err = driver.communicate(timeout=180)
    assert driver.returncode == code, err[-3000:]
    assert "continue with: python -m study.run linear_alpha_sweep --resume" in err
    assert "Traceback" not in err, err[-3000:]
    statuses = {r.info.status for r in runs(folder, "linear_alpha_sweep")}
    assert "RUNNING" not in statuses and "KILLED" in statuses
    assert [r.info.status for r in runs(folder, "linear_alpha_sweep", "study")] == ["KILLED"]


def resume_finishes_both_trials(folder: Path) -> None:
    """`--resume` trains both trials to epoch 30, every epoch logged once, and ends the plan."""
    resumed = run_cli("linear_alpha_sweep", "--resume", cwd=folder)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = runs(folder, "linear_alpha_sweep")
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        assert epochs_logged(folder, run) == list(range(1, 31))
    assert [r.info.status for r in runs(folder, "linear_alpha_sweep", "study")] == ["FINISHED"]


def test_sigint_with_a_trial_pending_then_sigterm_then_sighup_end_runs_killed_and_resume_finishes(
    tmp_path,
):
    """Ctrl-C (SIGINT to the whole process group) while a trial is still pending, then
    SIGTERM to the resumed driver (as Kubernetes, `scancel` or a spot reclaim send it), then
    SIGHUP (a dropped SSH session): each ends the runs KILLED with 128 + the signal and says
    how to continue; a last `--resume` finishes the plan."""
    driver = start_cli(*PENDING_LINEAR, cwd=tmp_path, **held_at(4))
    wait_for(lambda: latest_epoch(tmp_path, "linear_alpha_sweep") >= 3, what="a running trial")
    os.killpg(driver.pid, signal.SIGINT)
    stopped(driver, 130, tmp_path)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        trials = runs(tmp_path, "linear_alpha_sweep")
        reached = max(int(r.data.metrics.get("epoch", 0)) for r in trials)
        driver = start_cli("linear_alpha_sweep", "--resume", cwd=tmp_path, **held_at(reached + 4))
        wait_for(
            lambda past=reached + 2: latest_epoch(tmp_path, "linear_alpha_sweep") >= past,
            what="the resumed trial running again",
        )
        os.kill(driver.pid, signum)  # the driver only, not its process group
        stopped(driver, 128 + signum, tmp_path)
        assert list(tmp_path.glob("ray_results/*/experiment_state-*.json"))  # Tune saved it

    resume_finishes_both_trials(tmp_path)

    # resuming the finished plan again adds nothing to the parent run's summary
    again = run_cli("linear_alpha_sweep", "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    [parent] = runs(tmp_path, "linear_alpha_sweep", "study")
    assert len(client(tmp_path).get_metric_history(parent.info.run_id, "trials")) == 1


# Both trials of the plan running at once (half a CPU each): none left pending or unasked.
RUNNING_LINEAR = [
    "linear_alpha_sweep", "--smoke", "--cpus-per-trial", "0.5",
    "--set", "epochs=30", "--set", "gd_steps_per_epoch=25",
]  # fmt: skip


def test_sigint_with_every_trial_running_ends_them_killed_and_resume_finishes(tmp_path):
    """Ctrl-C once the plan has no trial left to hand out: Tune stops the running trials the
    way it ends finished ones, but their last result is not a final one, so they count as
    unfinished: exit 130, runs KILLED, and `--resume` trains them to the end."""
    driver = start_cli(*RUNNING_LINEAR, cwd=tmp_path, **held_at(4))
    wait_for(
        lambda: (
            [int(r.data.metrics.get("epoch", 0)) >= 3 for r in runs(tmp_path, "linear_alpha_sweep")]
            == [True, True]
        ),
        what="both trials running",
    )
    os.killpg(driver.pid, signal.SIGINT)
    stopped(driver, 130, tmp_path)

    resume_finishes_both_trials(tmp_path)


# A writer that spills a transaction into the store's file, then is killed before it commits:
# the store is left with a hot journal, as a driver killed mid-write leaves it.
KILLED_MID_WRITE = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size=1")
db.execute("BEGIN IMMEDIATE")
db.execute("CREATE TABLE unfinished (x)")
for _ in range(2000):
    db.execute("INSERT INTO unfinished VALUES (?)", (os.urandom(500),))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_store_left_mid_write_by_a_killed_process_is_accepted_with_its_records(tmp_path):
    store = tmp_path / "mlflow.db"
    uri = f"sqlite:///{store}"
    MlflowClient(uri).create_experiment("recorded")
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(store)])
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "mlflow.db-journal").stat().st_size > 0  # the killed write's journal

    check_tracking_uri(uri)  # was refused as "not an MLflow store"

    assert not (tmp_path / "mlflow.db-journal").exists()  # rolled back, not committed
    assert "recorded" in {e.name for e in MlflowClient(uri).search_experiments()}


def test_crashing_trial_is_retried_from_its_checkpoint(tmp_path):
    """Also: an environment with Ray's new output engine switched on keeps the progress table."""
    faults = tmp_path / "faults"
    faults.mkdir()
    out = run_cli(
        *LINEAR, cwd=tmp_path, RAY_AIR_NEW_OUTPUT="1",
        RANKSTUDY_TEST_FAULT="15:1", RANKSTUDY_TEST_FAULT_DIR=str(faults),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RAY_AIR_NEW_OUTPUT=1 ignored" in out.stderr
    assert "== linear_alpha_sweep (smoke): " in out.stdout  # the progress table
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FINISHED"}
    mlflow = client(tmp_path)
    for run in trials:
        assert epochs_logged(tmp_path, run) == list(range(1, 31))
        resumed = mlflow.get_metric_history(run.info.run_id, "resumed_from_epoch")
        assert [m.value for m in resumed][:1] == [10.0]  # restarted at its epoch-10 checkpoint
    assert out.stderr.count("Ray retries it from its last checkpoint") == 2  # said when it happens
    assert "2 run(s) resumed from a checkpoint after a crash or an interruption" in out.stderr


def test_trial_failing_every_retry_is_recorded_and_the_study_exits_nonzero(tmp_path):
    faults = tmp_path / "faults"
    faults.mkdir()
    out = run_cli(
        *LINEAR, "--max-failures", "1", cwd=tmp_path,
        RANKSTUDY_TEST_FAULT="15:99", RANKSTUDY_TEST_FAULT_DIR=str(faults),
    )  # fmt: skip
    assert out.returncode == 1
    assert "2 trial(s) failed: orthogonal-N16-a1-s" in out.stderr
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FAILED"}
    assert all((faults / name).read_text() == "2" for name in os.listdir(faults))  # 1 + 1 retry


def test_corrupted_checkpoint_restarts_the_trial_from_scratch(tmp_path):
    driver = start_cli(*LINEAR, cwd=tmp_path, **held_at(13))
    wait_for(lambda: latest_epoch(tmp_path, "linear_alpha_sweep") >= 13, what="a checkpoint")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    checkpoints = list(tmp_path.glob("ray_results/*/*/checkpoint_*/trainer.pt"))
    assert checkpoints
    for path in checkpoints:
        path.write_bytes(b"torn write")
    resumed = run_cli("linear_alpha_sweep", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert {r.info.status for r in trials} == {"FINISHED"}
    discarded = [r for r in trials if r.data.tags.get("checkpoint_discarded") == "true"]
    assert len(discarded) == 1
    assert epochs_logged(tmp_path, discarded[0]) == list(range(1, 31))
    # said on the driver's console as it happens, and again in the end-of-study summary
    assert f"run {discarded[0].info.run_name}: its checkpoint was unreadable" in resumed.stderr
    assert "1 run(s) restarted from scratch because their checkpoint was unreadable" in (
        resumed.stderr
    )


def test_escalation_resumes_at_the_right_alpha(tmp_path):
    driver = start_cli(*TINY_ESCALATION, cwd=tmp_path)
    wait_for(
        lambda: sum(r.info.status == "FINISHED" for r in runs(tmp_path, "mnist_alpha_sweep")) >= 2,
        what="two finished rungs",
    )
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    resumed = run_cli("mnist_alpha_sweep", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = runs(tmp_path, "mnist_alpha_sweep")
    keys = [(r.data.params["depth"], float(r.data.params["alpha"])) for r in trials]
    assert len(keys) == len(set(keys))  # no rung ran twice
    assert {r.info.status for r in trials} == {"FINISHED"}
    for depth in ("4", "16"):
        alphas = sorted(a for d, a in keys if d == depth)
        diverged = [
            float(r.data.params["alpha"])
            for r in trials
            if r.data.params["depth"] == depth and r.data.tags["diverged"] == "true"
        ]
        ladder = [50.0, 100.0]  # the smoke ladder: one low rung, then start
        assert alphas == ladder[: len(alphas)]  # a prefix of the ladder: nothing skipped
        if diverged:
            assert alphas[-1] == min(diverged)  # nothing launched after a divergence
        else:
            assert alphas == ladder
