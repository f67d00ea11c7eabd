"""Vectorised seed groups (`--seeds-per-trial`) under failure: a member that diverges is
masked and recorded while the others go on, and a killed group resumes every member from
the group's checkpoint, one MLflow run per seed throughout."""

from __future__ import annotations

import math
import os
import signal

import pytest

from .conftest import (
    LINEAR,
    client,
    epochs_logged,
    held_at,
    run_cli,
    runs,
    start_cli,
    wait_for,
)

GROUPED_LINEAR = [
    "linear_depth_sweep", "--smoke", "--seeds", "3", "--seeds-per-trial", "3",
    "--set", "epochs=6", "--set", "gd_steps_per_epoch=20",
]  # fmt: skip


def test_a_diverging_member_is_masked_and_recorded(tmp_path):
    # seed 1's weights turn NaN before its epoch 3, in every group (one per config)
    out = run_cli(*GROUPED_LINEAR, cwd=tmp_path, RANKSTUDY_TEST_DIVERGE="1:3")
    assert out.returncode == 0, out.stderr[-3000:]
    trials = runs(tmp_path, "linear_depth_sweep")
    assert len(trials) == 15  # 5 configs x 3 seeds, each its own run
    assert {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        seed = int(run.data.tags["seed"])
        losses = client(tmp_path).get_metric_history(run.info.run_id, "loss")
        if seed == 1:
            assert run.data.tags["diverged"] == "true"
            assert epochs_logged(tmp_path, run) == [1, 2, 3]  # stopped at the divergence
            assert math.isnan(max(losses, key=lambda m: m.step).value)
        else:
            assert run.data.tags["diverged"] == "false"
            assert epochs_logged(tmp_path, run) == list(range(1, 7))
            assert all(math.isfinite(m.value) for m in losses)
    # the printed table counts one divergence per config and keeps the healthy seeds' means
    assert "runs: 15 in 5 trials" in out.stdout  # the end summary
    table = out.stdout.split("== linear_depth_sweep (smoke): results over 15 runs ==")[1]
    rows = [line.split() for line in table.strip().splitlines()[1:6]]
    counts = [[cell for cell in row if cell.isdigit()][:2] for row in rows]
    assert counts == [["3", "1"]] * 5  # seeds, diverged (after the configuration's name)


def test_killed_group_resumes_every_member_from_its_checkpoint(tmp_path):
    grouped = [*LINEAR, "--seeds", "2", "--seeds-per-trial", "2"]  # 2 trials x 2 seeds
    driver = start_cli(*grouped, cwd=tmp_path, **held_at(13, "alpha=2.0"))

    def progress() -> tuple[int, int]:
        trials = runs(tmp_path, "linear_alpha_sweep")
        finished = sum(r.info.status == "FINISHED" for r in trials)
        live = [r for r in trials if r.info.status == "RUNNING"]
        return finished, min((int(r.data.metrics.get("epoch", 0)) for r in live), default=0)

    wait_for(lambda: progress()[0] == 2 and progress()[1] >= 13, what="a group past epoch 10")
    finished = {r.info.run_id: r.info.end_time for r in runs(tmp_path, "linear_alpha_sweep")
                if r.info.status == "FINISHED"}  # fmt: skip
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()

    resumed = run_cli("linear_alpha_sweep", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert sorted((r.data.params["alpha"], r.data.params["seed"]) for r in trials) == [
        (alpha, seed) for alpha in ("1.0", "2.0") for seed in ("0", "1")
    ]  # one run per seed, none duplicated
    assert {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        assert epochs_logged(tmp_path, run) == list(range(1, 31))  # no gaps, no repeats
        if run.info.run_id in finished:
            assert run.info.end_time == finished[run.info.run_id]  # not rerun
            continue
        history = client(tmp_path).get_metric_history(run.info.run_id, "resumed_from_epoch")
        assert history and min(m.value for m in history) >= 10  # continued, not restarted


TWO_STAGE = [
    "linear_alpha_sweep", "--smoke", "--set", "two_stage=true", "--set", "force_switch_epoch=2",
    "--set", "epochs=6", "--set", "gd_steps_per_epoch=20",
]  # fmt: skip


@pytest.mark.parametrize("grouped", [False, True], ids=["one_seed_per_trial", "vectorised"])
def test_divergence_in_stage_two_is_recorded(tmp_path, grouped):
    """Seed 1's weights turn NaN at epoch 4, two epochs after its switch to the explicit
    bottleneck (in a group, it trains alone by then)."""
    seeds = ["--seeds", "2", "--seeds-per-trial", "2" if grouped else "1"]
    out = run_cli(*TWO_STAGE, *seeds, cwd=tmp_path, RANKSTUDY_TEST_DIVERGE="1:4")
    assert out.returncode == 0, out.stderr[-3000:]
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert len(trials) == 4 and {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        assert run.data.metrics["switch_epoch"] == 2
        if run.data.tags["seed"] == "1":
            assert run.data.tags["diverged"] == "true"
            assert epochs_logged(tmp_path, run) == [1, 2, 3, 4]
            assert run.data.metrics["stage"] == 2 and math.isnan(run.data.metrics["loss"])
        else:
            assert run.data.tags["diverged"] == "false"
            assert epochs_logged(tmp_path, run) == list(range(1, 7))
