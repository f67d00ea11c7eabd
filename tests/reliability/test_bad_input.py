"""Bad input: one line naming the value and what is allowed, exit code 2,
and nothing written to MLflow or the results storage. Checked before Ray starts."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import get_type_hints

import numpy as np
import pytest

from rankae.config import RunConfig
from study.run import build_parser, main

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
        (["linear_depth_sweep", "--seeds=-1,2"], "argument --seeds: -1 is invalid"),
        (["linear_depth_sweep", "--gpus-per-trial", "1"], "exceeds the 0 GPU(s)"),
        (["linear_depth_sweep", "--gpus-per-trial", "-0.5"], "--gpus-per-trial: -0.5 is invalid"),
        (["linear_depth_sweep", "--storage", "/proc/rankstudy"], "is not writable"),
        (["linear_depth_sweep", "--mlflow-uri", "http://127.0.0.1:9"], "is unreachable"),
        (["linear_depth_sweep", "--resume"], "no earlier invocation"),
        (["linear_depth_sweep", "--seeds-per-trial", "0"], "--seeds-per-trial: 0 is invalid"),
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
        (["linear_depth_sweep", "--max-failures", "-1"], "--max-failures: -1 is invalid"),
        (["linear_depth_sweep", "--max-concurrent", "-3"], "--max-concurrent: -3 is invalid"),
        (["linear_depth_sweep", "--cpus-per-trial", "1000"], "--cpus-per-trial 1000 exceeds"),
        (["linear_depth_sweep", "--cpus-per-trial", "nan"], "--cpus-per-trial: nan is invalid"),
        (["linear_depth_sweep", "--gpus-per-trial", "inf"], "--gpus-per-trial: inf is invalid"),
        (["linear_depth_sweep", "--seeds", "0,0"], "--seeds: '0,0' repeats seed(s) 0"),
        # the ones a new user found past the last list: each refused by its kind's rule
        (["linear_depth_sweep", "--seeds", "0,99999999999999999999"], "must be an integer in"),
        (["linear_depth_sweep", "--seeds", "4294967296"], "--seeds: 4294967296 is invalid"),
        (["linear_depth_sweep", "--experiment", ""], "argument --experiment: '' is invalid"),
        (["linear_depth_sweep", "--mlflow-uri", "file:./mlruns"], "MLFLOW_ALLOW_FILE_STORE"),
        (["linear_depth_sweep", "--address", "127.0.0.1:1"], "--address '127.0.0.1:1'"),
        (["linear_depth_sweep", "--address", "nowhere"], "give HOST:PORT"),
        (["mnist_explicit", "--smoke", "--set", "gmm_components=300"], "gmm_components=300 is"),
        (["linear_depth_sweep", "--preset", "laptop"], "preset 'laptop' is not offered"),
        (["mnist_explicit", "--smoke", "--preset", "laptop"], "--smoke contradicts --preset"),
        # --grid: each value typed and checked as --set's, the product bounded
        (["linear_alpha_sweep", "--grid", "depth=4,x"], "--grid depth='x' is invalid"),
        (["linear_alpha_sweep", "--grid", "depth=4,0"], "depth=0 is invalid"),
        (["linear_alpha_sweep", "--grid", "depth=4,4"], "repeats 4: give each value once"),
        (["linear_alpha_sweep", "--grid", "depth"], "is not key=value1,value2"),
        (["linear_alpha_sweep", "--grid", "depth=,"], "gives no values"),
        (["linear_alpha_sweep", "--grid", "seed=1,2"], "give seeds with --seeds"),
        (["linear_alpha_sweep", "--grid", "depth=2", "--grid", "depth=3"], "is given twice"),
        (["linear_alpha_sweep", "--grid", "depth=2,3", "--set", "depth=3"], "contradict"),
        (
            [
                "linear_alpha_sweep",
                "--grid",
                "lr=" + ",".join(f"0.{i:03d}1" for i in range(101)),
                "--grid",
                "alpha=" + ",".join(str(i) for i in range(1, 101)),
            ],
            "--grid makes 10,100 variants: at most 10,000",
        ),  # fmt: skip
        # a study file: it exists, loads, has the shape of a study module
        (["no_such_study.py"], "study file"),
        (["linear_depth_sweep", "--grid", "nope=1,2"], "'nope' is not a config value"),
        (
            ["linear_depth_sweep", "--resume", "--set", "epochs=3", "--seeds", "2"],
            "--seeds, --set cannot change it",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, needle, tmp_path, capsys):
    assert exit_code(tmp_path, args) == 2
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


def exit_code(folder: Path, args: list[str]) -> int:
    """`main(args)` run from `folder`; argparse's refusals (SystemExit) give their code."""
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        return main(args)
    except SystemExit as stop:
        return int(stop.code)
    finally:
        os.chdir(cwd)


# values at and beyond the bounds of each kind of CLI value (study.kinds), and of the wrong
# type: a new kind fails test_every_option_declares_a_kind_with_bad_values until it is here
BEYOND = {
    "count": ["", "-1", "1.5", "1e3", "nan", "2147483648", "x"],
    "seed_list": ["", ",", "0,-1", "0,4294967296", "10001", "1.5", "0,0", "a,b"],
    "per_trial": ["", "0", "-2", "1.5", "10001", "AUTO"],
    "cpus": ["", "0", "-1", "nan", "inf", "x"],
    "gpus": ["", "-0.5", "1.5", "nan", "-inf", "x"],
    "name": ["", " ", " lead", "trail ", ".hidden", "a/b", "x" * 201, "tab\there"],
    "place": ["", " ", "line\nbreak"],
}


def kind_of(action) -> str:
    return "count" if action.type.__name__.startswith("integer in") else action.type.__name__


def test_every_option_declares_a_kind_with_bad_values():
    from study import kinds

    typed = [a for a in build_parser()._actions if a.type is not None]
    assert {a.dest for a in typed} >= {"seeds", "max_failures", "experiment", "storage"}
    for action in typed:
        assert action.type.__module__ == kinds.__name__, action.dest  # a kind, not a bare int
        assert kind_of(action) in BEYOND, action.dest


OPTION_VALUES = [
    (action.option_strings[-1], value)
    for action in build_parser()._actions
    if action.type is not None
    for value in BEYOND[kind_of(action)]
]


@pytest.mark.parametrize(("option", "value"), OPTION_VALUES)
def test_every_option_refuses_values_beyond_its_kind(option, value, tmp_path, capsys):
    args = ["linear_depth_sweep", f"{option}={value}"]
    if option == "--resume":  # alone: other flags would be refused for being there
        args = ["linear_depth_sweep", f"--resume={value}"]
    assert exit_code(tmp_path, args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"argument {option}" in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def bad_values(hint: str) -> list[str]:
    """Bad raw --set values of each kind that applies to a field of this type: at and beyond
    its bounds, and of the wrong type."""
    if "bool" in hint:
        return ["maybe", ""]
    if "int" in hint:  # below every lower bound (all are >= 0), above every upper one
        return ["-1", "1.5", "", "99999999999999999999"]
    if "float" in hint:
        return ["nan", "inf", "-inf", ""]
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
    assert exit_code(tmp_path, ["linear_depth_sweep", "--smoke", "--set", item]) == 2, item
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
    script = (
        "import sys; from study.adapters.store import prepare_store; prepare_store(sys.argv[1])"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, uri], env=cli_env(), stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    from mlflow.tracking import MlflowClient

    assert MlflowClient(uri).search_experiments()  # the schema is whole: Default exists


def test_resume_without_a_name_takes_the_latest_started_invocation(tmp_path, monkeypatch):
    from study.service import invocations as run

    monkeypatch.chdir(tmp_path)
    older, newer = (
        "linear_depth_sweep-20261201-100000-aaaa",
        "linear_depth_sweep-20261202-100000-bbbb",
    )
    run.save_invocation(newer, {"run_name": newer})
    run.save_invocation(older, {"run_name": older})  # written last, e.g. resumed by name
    assert run.find_invocation("linear_depth_sweep", "latest")["run_name"] == newer
    assert run.find_invocation("linear_depth_sweep", older)["run_name"] == older


def test_unreachable_storage_and_a_closed_cluster_port_are_refused_within_the_probe_timeout(
    tmp_path,
):
    from study.service.probes import check_address, check_storage

    for probe, target, needle in [
        (check_address, "127.0.0.1:1", "--address '127.0.0.1:1' (Ray at 127.0.0.1:1) cannot"),
        (check_storage, "s3://bucket/x?endpoint_override=127.0.0.1:1&scheme=http", "--storage"),
    ]:
        with pytest.raises(ValueError, match=re.escape(needle)) as refused:
            probe(target, timeout=5)
        assert len(str(refused.value).splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_probe_that_does_not_answer_is_refused_at_its_timeout():
    import threading

    from study.service.probes import within

    never = threading.Event()
    with pytest.raises(ValueError, match="the thing did not answer within 0.2 s"):
        within(0.2, "the thing", never.wait)


def test_resume_after_the_data_changed_is_refused_and_writes_nothing(tmp_path, capsys):
    from study.service.invocations import content_digests, save_invocation

    data = tmp_path / "x.npy"
    np.save(data, np.arange(120.0).reshape(40, 3))
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        name = "rank_of-20261204-120000-abcd"
        inputs = content_digests([str(data)])
        options = {"name": "rank_of", "data": str(data), "smoke": True, "inputs": inputs}
        save_invocation(name, {"run_name": name, "parent_run_id": "p", "options": options})
    finally:
        os.chdir(cwd)
    np.save(data, np.arange(120.0).reshape(40, 3) + 1)  # same path, same shape, new content
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    assert exit_code(tmp_path, ["rank_of", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--resume {name}: {data} changed since the invocation started" in err
    assert len(err.splitlines()) == 1
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    data.unlink()
    assert exit_code(tmp_path, ["rank_of", "--resume"]) == 2
    assert f"{data} is gone" in capsys.readouterr().err


def test_a_plan_whose_trials_cannot_fit_in_memory_is_refused(tmp_path):
    import psutil

    from study.run import UsageError, check_memory, resolve_spec

    spec = resolve_spec({"name": "linear_depth_sweep", "smoke": True})
    check_memory(spec, data_values=1000, input_dim=None, at_once=2)  # tiny: fits
    too_much = psutil.virtual_memory().total // 8 + 1  # float64 values beyond all the memory
    with pytest.raises(UsageError, match=r"the plan needs at least .* GB at once \(2 trial"):
        check_memory(spec, data_values=too_much, input_dim=None, at_once=2)
