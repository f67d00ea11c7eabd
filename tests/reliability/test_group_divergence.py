"""A member that diverges inside a vectorised seed group is masked and recorded; the study
and the other members go on as if it had been a separate trial."""

from __future__ import annotations

import math

from .conftest import client, epochs_logged, run_cli, runs

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
    table = out.stdout.split("== linear_depth_sweep: 15 trials ==")[1]
    rows = [line.split() for line in table.strip().splitlines()[1:6]]
    assert [row[4:6] for row in rows] == [["3", "1"]] * 5  # seeds, diverged
