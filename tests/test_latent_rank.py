"""`LatentRank`: the rank_of estimator in-process, one implementation with the CLI study."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.latent_rank import LatentRank
from analysis.rank_estimate import knee_ks
from rankae.config import ConfigError
from rankae.userdata import UserDataError
from study.prepare import read_data
from study.studies.rank_of import get_config
from tools import example_data


@pytest.mark.parametrize("rank", [2, 4, 8])
def test_linear_rank_r_vectors_give_exactly_r(rank):
    """One seed at N = 8 for 100 epochs (5,000 steps), no check: ~10 s each on one core."""
    x, _ = example_data.linear(rank)
    estimate = LatentRank(preset="smoke", epochs=100, check=False).fit(x)
    assert estimate.dimension_ == rank and estimate.answer_.counts == ((rank, 1),)
    assert set(estimate.runs_["bottleneck"]) == {"linear_net"}
    run = estimate.runs_.iloc[0]  # when each of W_e's directions emerged, in order, in the run
    emerged = list(run["we_emergence"])
    assert len(emerged) == run["we_rank"] >= rank
    assert emerged == sorted(emerged) and emerged[-1] <= run["step"]
    assert list(estimate.emergence_["seed"]) == [0]


def test_the_check_runs_beside_the_estimate_on_held_out_loss():
    x, _ = example_data.linear(2)
    estimate = LatentRank(preset="smoke").fit(x)
    assert estimate.dimension_ == 2 and estimate.verdict_.startswith("latent rank 2")
    runs = estimate.runs_
    assert sorted(runs.loc[runs["bottleneck"] == "explicit", "k"]) == knee_ks(2, 32)
    assert (runs["bottleneck"] == "vanilla").sum() == 1 and runs["eval_loss"].notna().all()
    assert "the check agrees: its knee is at k = 2" in estimate.verdict_


def test_a_split_answer_is_nan_never_a_median():
    """Three seeds at N = 8 on rank-8 data stopped at epoch 2 reach ranks 5, 4 and 3 (this
    draw, on the CPU): their median is 4, a rank most runs did not find."""
    x, _ = example_data.linear(8)
    estimate = LatentRank(preset="smoke", epochs=2, seeds=3, check=False).fit(x)
    assert math.isnan(estimate.dimension_)
    assert estimate.verdict_.startswith("no single rank (5 in 1/3, 4 in 1/3, 3 in 1/3 runs")


def test_the_api_and_the_cli_study_run_the_same_settings(tmp_path):
    x, _ = example_data.linear(4)
    path = tmp_path / "x.npy"
    np.save(path, x)
    user, data = read_data(str(path), None, {})
    for preset in ("smoke", "laptop", "full"):
        assert LatentRank(preset).settings(user, data.path) == get_config(preset, data).base


@pytest.mark.parametrize(
    ("make", "error", "needle"),
    [
        (lambda: LatentRank("huge"), ConfigError, "preset='huge' is not known"),
        (lambda: LatentRank("smoke").fit(np.zeros((5, 3))), UserDataError, "x has 5 samples"),
        (lambda: LatentRank("smoke").fit(np.full((40, 3), np.nan)), UserDataError, "x holds 120"),
    ],
)
def test_bad_input_through_the_api_raises_the_clis_one_line_errors(make, error, needle):
    with pytest.raises(error, match=needle) as raised:
        make()
    assert len(str(raised.value).splitlines()) == 1
