"""Bad input: one line naming the value and what is allowed, exit code 2,
and nothing written to MLflow or the results storage. Checked before Ray starts."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import get_type_hints

import pytest

from rankae.config import RunConfig
from study.run import main

from .conftest import cli_env, run_cli

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
        # non-finite, out of range, cross-field, duplicate
        (["linear_alpha_sweep", "--set", "lr=inf"], "lr=inf is invalid"),
        (["linear_depth_sweep", "--set", "synth_rank=300"], "synth_rank=300 is invalid"),
        (["linear_depth_sweep", "--max-failures", "-1"], "--max-failures -1 is invalid"),
        (["linear_depth_sweep", "--max-concurrent", "-3"], "--max-concurrent -3 is invalid"),
        (["linear_depth_sweep", "--cpus-per-trial", "1000"], "--cpus-per-trial 1000 exceeds"),
        (["linear_depth_sweep", "--cpus-per-trial", "nan"], "--cpus-per-trial nan is invalid"),
        (["linear_depth_sweep", "--gpus-per-trial", "inf"], "--gpus-per-trial inf is invalid"),
        (["linear_depth_sweep", "--seeds", "0,0"], "--seeds '0,0' repeats seed(s) 0"),
        (["linear_depth_sweep", "--preset", "laptop"], "preset 'laptop' is not offered"),
        (["mnist_explicit", "--smoke", "--preset", "laptop"], "--smoke contradicts --preset"),
        (
            ["linear_depth_sweep", "--resume", "--set", "epochs=3", "--seeds", "2"],
            "--seeds, --set cannot change it",
        ),
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
    assert list(tmp_path.iterdir()) == []  # not even the data root's MNIST/raw folders


def bad_values(hint: str) -> list[str]:
    """A bad raw --set value of each kind that applies to a field of this type."""
    if "bool" in hint:
        return ["maybe"]
    if "int" in hint:
        return ["-1", "1.5"]  # below every lower bound (all are >= 0); not an integer
    if "float" in hint:
        return ["nan", "inf", "-inf"]
    return ["nonsense"]  # the string fields are choices


FREE_TEXT = {"data_root"}  # any path is a valid value; a missing one: the offline test below


@pytest.mark.parametrize(
    "item",
    [
        f"{f.name}={raw}"
        for f in fields(RunConfig)
        if f.name not in FREE_TEXT
        for raw in bad_values(str(get_type_hints(RunConfig)[f.name]))
    ],
)
def test_every_config_field_refuses_each_kind_of_bad_value(item, tmp_path, capsys):
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert main(["linear_depth_sweep", "--smoke", "--set", item]) == 2, item
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip()
    key, raw = item.split("=")
    assert len(err.splitlines()) == 1 and key in err and raw.lower() in err.lower(), err
    assert list(tmp_path.iterdir()) == []  # nothing written


def in_folder(folder: Path, *args: str) -> int:
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        return main(list(args))
    finally:
        os.chdir(cwd)


def test_a_storage_path_that_is_a_file_asks_for_a_folder(tmp_path, capsys):
    (tmp_path / "results").write_text("not a folder")
    assert in_folder(tmp_path, "linear_depth_sweep", "--storage", "results") == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "must be a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [(os.urandom(4096), "is not an MLflow store"), (None, "without MLflow's tables")],
    ids=["random_bytes", "another_sqlite_database"],
)
def test_a_store_that_is_not_an_mlflow_store_is_refused_before_ray(
    tmp_path, capsys, content, needle
):
    store = tmp_path / "store.db"
    if content is None:
        with sqlite3.connect(store) as db:
            db.execute("CREATE TABLE notes (x)")
    else:
        store.write_bytes(content)
    before = store.read_bytes()
    uri = f"sqlite:///{store}"
    assert in_folder(tmp_path, "linear_depth_sweep", "--mlflow-uri", uri) == 2
    assert needle in capsys.readouterr().err
    assert store.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "store.db"
    ]


def test_two_invocations_creating_one_new_store_at_once_both_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = "import sys; from study.store import prepare_store; prepare_store(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", script, uri], env=cli_env(), stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    from mlflow.tracking import MlflowClient

    assert MlflowClient(uri).search_experiments()  # the schema is whole: Default exists


def test_resume_without_a_name_takes_the_latest_started_invocation(tmp_path, monkeypatch):
    from study import invocations as run

    monkeypatch.chdir(tmp_path)
    older, newer = (
        "linear_depth_sweep-20261201-100000-aaaa",
        "linear_depth_sweep-20261202-100000-bbbb",
    )
    run.save_invocation(newer, {"run_name": newer})
    run.save_invocation(older, {"run_name": older})  # written last, e.g. resumed by name
    assert run.find_invocation("linear_depth_sweep", "latest")["run_name"] == newer
    assert run.find_invocation("linear_depth_sweep", older)["run_name"] == older
