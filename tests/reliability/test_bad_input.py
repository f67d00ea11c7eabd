"""Bad input (issue 7, item 5): one line naming the value and what is allowed, exit code 2,
and nothing written to MLflow or the results storage. Checked before Ray starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from study.run import main

from .conftest import run_cli

# Offline, for a subprocess: every download goes to a proxy that refuses connections. (Not in
# this process: urllib keeps the proxies of its first request for the rest of the session.)
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["no_such_study"], "unknown study 'no_such_study'"),
        (["linear_depth_sweep", "--set", "nope=1"], "'nope' is not a config value"),
        (["linear_depth_sweep", "--set", "depth=x"], "depth takes a int"),
        (["linear_depth_sweep", "--set", "depth=0"], "depth=0 is invalid"),
        (["linear_alpha_sweep", "--set", "alpha=-1"], "alpha=-1.0 is invalid"),
        (["mnist_explicit", "--set", "k=129"], "k=129 is invalid"),
        (["linear_depth_sweep", "--set", "rank_threshold=1.5"], "rank_threshold=1.5"),
        (["linear_depth_sweep", "--seeds=-1,2"], "--seeds '-1,2' is invalid"),
        (["linear_depth_sweep", "--gpus-per-trial", "1"], "exceeds the 0 GPU(s)"),
        (["linear_depth_sweep", "--gpus-per-trial", "-0.5"], "--gpus-per-trial -0.5 is invalid"),
        (["linear_depth_sweep", "--storage", "/proc/rankstudy"], "is not writable"),
        (["linear_depth_sweep", "--mlflow-uri", "http://127.0.0.1:9"], "is unreachable"),
        (["linear_depth_sweep", "--resume"], "no earlier invocation"),
        (["linear_depth_sweep", "--seeds-per-trial", "0"], "--seeds-per-trial '0' is invalid"),
        (["mnist_explicit", "--set", "k=0"], "k=0 is invalid"),
        # keys the plan varies: an escalation would queue one rung forever, a grid duplicates
        (["mnist_alpha_sweep", "--set", "alpha=50"], "varies alpha, depth, seed"),
        (["mnist_alpha_sweep", "--set", "depth=4"], "--set depth=4 is not allowed"),
        (["mnist_depth_sweep", "--set", "depth=4"], "varies bottleneck, depth, seed"),
        (["mnist_explicit", "--set", "k=8"], "varies bottleneck, k, seed"),
        (["mnist_optuna", "--set", "alpha=3"], "varies alpha, bottleneck, depth, k, seed"),
        (["linear_depth_sweep", "--set", "seed=3"], "(give seeds with --seeds)"),
        (["linear_depth_sweep", "--set", "cuda_graph=true"], "cuda_graph=True needs optimizer"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, needle, tmp_path, capsys):
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert main(args) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert len(err.splitlines()) == 1
    assert "python -m study.run" in err and "error" in err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()


def test_bad_input_exit_code_through_the_real_cli(tmp_path):
    out = run_cli(
        "linear_depth_sweep", "--set", "k=0", "--set", "bottleneck=explicit", cwd=tmp_path
    )
    assert out.returncode == 2
    assert "k=0 is invalid" in out.stderr


def test_missing_data_while_offline_says_where_to_put_it(tmp_path):
    out = run_cli("mnist_explicit", "--set", "data_root=nodata", cwd=tmp_path, **OFFLINE)
    assert out.returncode == 2
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "MNIST is not under data root" in err and "RANKSTUDY_DATA_ROOT" in err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()
