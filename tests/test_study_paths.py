"""Paths a user takes that the other modules do not cover: an Optuna study through the real
CLI with `--resume`, when a plan counts as finished, MLflow and Ray conventions."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from reliability.conftest import run_cli, runs, start_cli, wait_for

from rankae.config import linear_synthetic
from search_spaces import alpha_sweep
from study.plans import AlphaEscalation, Grid, OptunaSpace
from study.plans.base import FINISHED
from study.spec import StudySpec
from study.studies import config
from trainables.contract import member_seeds, trial_result, trial_runs

BASE = linear_synthetic(synth_dim=16, latent_dim=8, depth=2, epochs=1)


def escalation_spec() -> StudySpec:
    plan = AlphaEscalation(depths=(2, 4), alphas=(2.0, 4.0, 6.0))
    return StudySpec(name="t", figure="t", base=BASE, plan=plan, seeds=(0, 1)).validate()


def plan_complete(spec: StudySpec, completed: list) -> bool:
    return spec.plan.complete(spec.trials(), completed)


def rung(spec: StudySpec, depth: int, alpha: float, diverged_seed: int | None = None) -> list:
    """The completed trials of one rung, as Tune's ResultGrid gives them."""
    configs = spec.plan.search(spec.trials(), None, "t").rung(depth, alpha)
    return [(c, trial_result({str(s): {"diverged": float(s == diverged_seed), "epoch": 1}
                              for s in member_seeds(c)}), False) for c in configs]  # fmt: skip


# -- when a plan is finished (replayed from the completed trials, any storage) -----------
def test_an_escalation_stopped_between_rungs_is_not_finished():
    spec = escalation_spec()
    first_rungs = rung(spec, 2, 2.0) + rung(spec, 4, 2.0, diverged_seed=1)
    assert not plan_complete(spec, first_rungs)  # N=2 still has alpha 4 to run


def test_an_escalation_is_finished_when_every_depth_diverged_or_reached_its_top():
    spec = escalation_spec()
    done = rung(spec, 2, 2.0) + rung(spec, 4, 2.0, diverged_seed=1)
    done += rung(spec, 2, 4.0) + rung(spec, 2, 6.0)
    assert plan_complete(spec, done)
    assert not plan_complete(spec, done[:-1])  # one seed of the last rung missing


def test_an_errored_trial_is_failed_not_diverged_and_the_ladder_goes_on():
    spec = escalation_spec()
    searcher = spec.plan.search(spec.trials(), None, "t")
    first = [searcher.suggest(str(i)) for i in range(4)]  # N = 2 and 4 at alpha 2, 2 seeds
    runs = [run for trial in first for run in trial_runs(trial)]  # one seed per trial
    assert {(run.depth, run.alpha) for run in runs} == {(2, 2.0), (4, 2.0)}
    for i, run in enumerate(runs):
        errored = run.depth == 2 and run.seed == 1
        metrics = {"diverged": 0.0, "epoch": 1}
        result = None if errored else trial_result({str(run.seed): metrics})
        searcher.on_trial_complete(str(i), result, error=errored)
    assert searcher.rung_outcomes[(2, 2.0)] == [False, None]  # None: failed
    queued = {(run.depth, run.alpha) for c in searcher.queue for run in trial_runs(c)}
    assert queued == {(2, 4.0), (4, 4.0)}  # the failure ended no ladder


def test_a_grid_is_finished_only_with_every_trial_and_an_errored_trial_counts():
    spec = StudySpec(
        name="t", figure="t", base=BASE, plan=Grid(alpha_sweep(2, (1.0, 2.0))), seeds=(0, 1)
    ).validate()
    trials = [
        (c, {"diverged": 0.0}, False)
        for c in [config for v in spec.plan.variants for config in spec.trials().per_group(v)]
    ]
    assert not plan_complete(spec, trials[:3])
    assert plan_complete(spec, trials[:3] + [(trials[3][0], None, True)])


def test_an_optuna_plan_is_finished_after_its_samples_and_the_confirmation():
    plan = OptunaSpace(num_samples=2, bottlenecks=("explicit",), confirm_runs=1)
    spec = StudySpec(name="t", figure="t", base=BASE.replace(latent_dim=8), plan=plan)
    one = [({"k": 2}, {"val_acc_selected": 0.5}, False)]
    assert not plan_complete(spec, one * 2) and plan_complete(spec, one * 3)


def test_plan_finished_no_longer_reads_tunes_private_searcher_file():
    import study.service.launch

    source = Path(study.service.launch.__file__).read_text()
    assert "pickle" not in source and "SearchGenerator" not in source


def test_an_optuna_trial_with_a_nan_objective_is_told_as_pruned_not_left_running(tmp_path):
    import optuna

    from study.plans.optuna_search import FinalMetricOptuna

    def space(trial):
        return {"x": trial.suggest_float("x", 0.0, 1.0)}

    storage = f"sqlite:///{tmp_path / 'o.db'}"
    searcher = FinalMetricOptuna(space, "acc", "max", seed=0, storage_url=storage, study_name="s")
    for trial_id, acc in (("a", float("nan")), ("b", 0.5)):
        searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, result={"acc": acc, "loss": 0.1})
    assert searcher.scores["b"] == 0.5
    trials = optuna.load_study(study_name="s", storage=storage).trials
    state = optuna.trial.TrialState
    assert [t.state for t in trials] == [state.PRUNED, state.COMPLETE]
    assert trials[1].value == 0.5


def optuna_searcher(tmp_path, num_samples=None, confirmations=None):
    from study.plans.optuna_search import FinalMetricOptuna

    def space(trial):
        return {"x": trial.suggest_float("x", 0.0, 1.0)}

    storage = f"sqlite:///{tmp_path / 'o.db'}"
    return FinalMetricOptuna(space, "val_acc_selected", "max", seed=0, storage_url=storage,
                             study_name="s", num_samples=num_samples,
                             confirmations=confirmations)  # fmt: skip


def test_the_optuna_sampler_never_sees_a_test_metric(tmp_path, monkeypatch):
    import optuna

    told = []
    tell = optuna.study.Study.tell
    monkeypatch.setattr(optuna.study.Study, "tell",
                        lambda study, trial, values=None, **kw: told.append(values)
                        or tell(study, trial, values, **kw))  # fmt: skip
    searcher = optuna_searcher(tmp_path)
    searcher.suggest("a")
    final = {"val_acc_selected": 0.7, "acc_selected": 0.9, "acc_best": 0.95, "fid": 80.0}
    searcher.on_trial_complete("a", result=final)
    assert told == [0.7]


def test_a_search_chosen_on_validation_is_retrained_on_fresh_seeds(tmp_path):
    chosen = []

    def confirmations(config):
        chosen.append(config)
        return [{**config, "seed": s} for s in (1, 2)]

    searcher = optuna_searcher(tmp_path, num_samples=3, confirmations=confirmations)
    configs = {tid: searcher.suggest(tid) for tid in "abc"}
    assert searcher.suggest("d") is None  # the search is still running: wait
    for tid, score in zip("abc", (0.5, 0.8, 0.6), strict=True):
        searcher.on_trial_complete(tid, result={"val_acc_selected": score, "acc_selected": 0.1})
    first, second = searcher.suggest("d"), searcher.suggest("e")
    assert chosen == [configs["b"]]  # the best validation score
    assert (first["seed"], second["seed"]) == (1, 2) and first["x"] == configs["b"]["x"]
    searcher.on_trial_complete("d", result={"val_acc_selected": 0.9})  # never told to Optuna
    assert searcher.suggest("f") == FINISHED
    import optuna

    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}")
    assert len(study.trials) == 3 and study.user_attrs["objective"] == "val_acc_selected"


def test_a_search_on_a_test_metric_is_refused():
    from rankae.config import ConfigError

    with pytest.raises(ConfigError, match="'acc_selected' is not allowed: select on one of"):
        OptunaSpace(metric="acc_selected")


# -- an Optuna study through the real CLI, interrupted and resumed -----------------------
TINY_OPTUNA = [
    "mnist_optuna", "--smoke", "--max-concurrent", "1",
    "--set", "dataset=digits", "--set", "n_train=96", "--set", "n_eval=64",
    "--set", "epochs=2", "--set", "classifier_labels=20", "--set", "classifier_epochs=5",
    "--set", "fid_samples=16", "--set", "fid_reference=32",
]  # fmt: skip


def finished_trials(folder: Path) -> list:
    return [r for r in runs(folder, "mnist_optuna") if r.info.status == "FINISHED"]


@pytest.mark.slow
def test_mnist_optuna_smoke_runs_and_resume_keeps_the_searchers_history(tmp_path):
    import optuna

    driver = start_cli(*TINY_OPTUNA, cwd=tmp_path)
    wait_for(lambda: finished_trials(tmp_path), timeout=300, what="a finished Optuna trial")
    os.killpg(driver.pid, signal.SIGINT)
    _, err = driver.communicate(timeout=180)
    assert driver.returncode == 130, err[-3000:]
    first = {r.info.run_id for r in finished_trials(tmp_path)}

    resumed = run_cli("mnist_optuna", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = runs(tmp_path, "mnist_optuna")
    assert len(trials) == 4 and {r.info.status for r in trials} == {"FINISHED"}  # 3 + 1 fresh
    assert first <= {r.info.run_id for r in trials}  # finished trials were not run again
    [parent] = runs(tmp_path, "mnist_optuna", "study")
    assert parent.info.status == "FINISHED"

    # Optuna's own record: one study, three trials told once each, none left running
    invocation = parent.data.tags["invocation"]
    db = tmp_path / ".rankstudy" / "invocations" / f"{invocation}.optuna.db"
    study = optuna.load_study(study_name=invocation, storage=f"sqlite:///{db}")
    assert [t.number for t in study.trials] == [0, 1, 2]
    states = {t.state for t in study.trials}
    told = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert states <= told, (err[-3000:], resumed.stderr[-3000:])
    values = sorted(t.value for t in study.trials if t.value is not None)
    searched = [r for r in trials if r.data.params["seed"] == "0"]
    logged = sorted(
        r.data.metrics["val_acc_selected"] for r in searched if "val_acc_selected" in r.data.metrics
    )
    assert values == pytest.approx(logged) and values  # the metric Optuna saw is MLflow's
    [fresh] = [r for r in trials if r.data.params["seed"] == "1"]  # the confirmation run
    best = max(searched, key=lambda r: r.data.metrics.get("val_acc_selected", -1.0))
    for key in ("bottleneck", "k", "depth", "alpha"):
        assert fresh.data.params.get(key) == best.data.params.get(key)
    for trial in study.trials:  # each Optuna trial is one MLflow run with its parameters
        matches = [
            r
            for r in searched
            if all(
                r.data.params.get(key) is not None
                and float(r.data.params[key]) == pytest.approx(float(value))
                for key, value in trial.params.items()
                if key != "bottleneck"
            )
            and r.data.params["bottleneck"] == trial.params["bottleneck"]
        ]
        assert len(matches) == 1, trial.params


# -- MLflow and Ray conventions -----------------------------------------------------------
TINY_LINEAR = ["linear_alpha_sweep", "--smoke", "--set", "epochs=2", "--set", "synth_dim=64",
               "--set", "latent_dim=32", "--set", "depth=4"]  # fmt: skip


def test_mlflow_tracking_uri_is_honoured_and_each_trial_keeps_its_own_log(tmp_path, monkeypatch):
    elsewhere = tmp_path / "store"
    elsewhere.mkdir()
    uri = f"sqlite:///{elsewhere / 'mlflow.db'}"
    work = tmp_path / "work"
    work.mkdir()
    out = run_cli(
        *TINY_LINEAR, cwd=work, MLFLOW_TRACKING_URI=uri,
        RANKSTUDY_TEST_FAULT="1:1", RANKSTUDY_TEST_FAULT_DIR=str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (work / "mlflow.db").exists()  # the study wrote to MLFLOW_TRACKING_URI
    trials = runs(elsewhere, "linear_alpha_sweep")
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FINISHED"}
    # the service's own messages go through logging, and say where the trial logs are
    [line] = [x for x in out.stderr.splitlines() if x.startswith("rankstudy: linear_alpha_sweep")]
    assert uri in line and "logs (stdout, stderr)" in line
    [experiment] = (work / "ray_results").iterdir()
    assert str(experiment) in line
    for run in trials:  # each trial's output in its own folder, even the retried one's
        folder = experiment / run.data.tags["trial_id"]
        stderr = (folder / "stderr").read_text()
        assert (folder / "stdout").is_file() and str(folder / "checkpoint_") in stderr
    tracebacks = [p.read_text() for p in experiment.glob("*/error.txt")]  # one fault each
    assert len(tracebacks) == 2 and all("injected test fault at epoch 1" in t for t in tracebacks)

    # analysis (report, notebook) reads the same default
    from analysis.load import study_names

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert study_names() == ["linear_alpha_sweep"]


def test_ray_auth_is_turned_off_only_for_the_local_instance(ray_local, monkeypatch):
    from study.service.launch import start_ray

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    start_ray("auto", 1.0)  # joining a cluster: its auth mode is left alone
    assert "RAY_AUTH_MODE" not in os.environ
    start_ray(None, 1.0)  # the local, loopback-only instance
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


# -- the CUDA-graph step is opt-in until it has passed on a GPU ----------------------------
def test_cuda_graph_is_off_in_every_study_and_opt_in_with_set():
    from study.run import resolve_spec
    from study.studies import config, names, presets

    for name in names():
        for preset in presets(name):
            spec = config(name, preset)
            variant = spec.plan.variants[0] if hasattr(spec.plan, "variants") else {}
            assert spec.run_config(variant, 0).cuda_graph is False, (name, preset)
    options = {"name": "mnist_explicit", "smoke": True, "set": ["cuda_graph=true"]}
    spec = resolve_spec(options)
    trials = [config for v in spec.plan.variants for config in spec.trials().per_group(v)]
    assert {run.cuda_graph for config in trials for run in trial_runs(config)} == {True}


# -- a driver killed between creating a trial's MLflow run and logging its params ----------
def test_a_run_left_without_params_by_a_killed_driver_gets_them_on_resume(tmp_path, monkeypatch):
    """The resumed driver finds the run by its trial id (Ray knew the trial) or as an orphan
    (Ray restarts it under a new id), and logs the params it never got."""
    from study.adapters.tracking import MlflowTracker, run_params

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = escalation_spec()
    trials = spec.plan.search(spec.trials(), None, "t").rung(2, 2.0)
    killed = MlflowTracker(uri, "t", "t", "inv")
    monkeypatch.setattr(killed.client, "log_batch", lambda *args, **kwargs: None)  # the kill
    runs = {}
    for trial_id, trial in zip(("known", "forgotten"), trials, strict=True):
        [run] = trial_runs(trial)
        runs[trial_id] = killed._run_for(trial_id, run, trial)
        assert killed.client.get_run(runs[trial_id]).data.params == {}
    resumed = MlflowTracker(uri, "t", "t", "inv", parent_run_id=killed.parent_run_id)
    for trial_id, trial in zip(("known", "restarted"), trials, strict=True):
        [run] = trial_runs(trial)
        run_id = resumed._run_for(trial_id, run, trial)
        assert run_id == runs["known" if trial_id == "known" else "forgotten"]
        assert resumed.client.get_run(run_id).data.params == run_params(run, spec.checkpoint_every)


# -- one setting's walk: built and validated once per run, in the driver ------------------
def test_set_alpha_reaches_the_trainer_built_and_validated_once_per_run_in_the_driver(
    monkeypatch,
):
    """`--set alpha=...` from the CLI to the trainers: the plan builds and validates each
    member's RunConfig once; the worker gets those objects (pickled, as Ray ships them), and
    neither it, the trainers, nor the driver's readers of the trial (its name, MLflow params,
    progress ETA, results table) build or check one again."""
    import pickle

    import rankae.config
    from rankae.vectorized import VectorizedTrainer
    from study.adapters.table import trials_frame
    from study.adapters.tracking import run_params
    from study.cost import trial_seconds
    from study.run import resolve_spec
    from trainables.contract import trial_name

    options = {"name": "linear_depth_sweep", "smoke": True, "set": ["alpha=1.5"],
               "grid": ["depth=4"], "seeds": (0, 1), "seeds_per_trial": 2}  # fmt: skip
    spec = resolve_spec(options)
    checked: list[str] = []
    check = rankae.config._check
    monkeypatch.setattr(
        rankae.config,
        "_check",
        lambda field, value: checked.append(field.name) or check(field, value),
    )
    trial = spec.plan.search(spec.trials(), None, "walk").suggest("t0")
    runs = trial_runs(trial)
    assert [(run.seed, run.alpha) for run in runs] == [(0, 1.5), (1, 1.5)]
    assert checked.count("alpha") == 2  # the driver: once per member
    VectorizedTrainer(trial_runs(pickle.loads(pickle.dumps(trial))))  # the worker's
    trial_name(trial)
    run_params(runs[0], spec.checkpoint_every)
    trial_seconds(trial)
    trials_frame([(trial, None, False)])
    assert checked.count("alpha") == 2


def test_a_trial_config_comes_back_from_tunes_saved_state_equal_to_the_plans():
    """`--resume` judges a plan complete by comparing the configs Tune saved (as JSON, with a
    pickle for what JSON cannot hold) with the ones the plan's search makes again."""
    import json

    from ray.tune.utils.serialization import TuneFunctionEncoder, _loads_with_cloudpickle

    spec = escalation_spec()
    for trial in spec.plan.search(spec.trials(), None, "t").rung(2, 2.0):
        saved = _loads_with_cloudpickle(json.dumps(trial, cls=TuneFunctionEncoder))
        assert saved == trial and trial_runs(saved)[0].__dict__.get("_validated")


# -- joining an autoscaling cluster whose GPU nodes start at zero ---------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def autoscaling_cluster(tmp_path):
    """A Ray cluster on this machine (loopback only) with Ray's fake multi-node provider:
    a head without CPUs or GPUs and a GPU node type with min_workers 0, like cluster.yaml.

    Yields (address, home): home holds the config as `~/ray_bootstrap_config.yaml`, where
    `ray up` leaves it on a real head. Every process of this cluster is ended by pid.
    """
    import subprocess
    import tempfile

    import yaml

    port = _free_port()
    address = f"127.0.0.1:{port}"
    config = {
        "cluster_name": "fake", "max_workers": 1, "upscaling_speed": 1.0,
        "idle_timeout_minutes": 1,
        "provider": {"type": "fake_multinode", "gcs_address": address,
                     "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "gpu_worker": {"resources": {"CPU": 1, "GPU": 1}, "node_config": {},
                           "min_workers": 0, "max_workers": 1},
        },
        "head_node_type": "ray.head.default", "auth": {"ssh_user": "nobody"}, "docker": {},
        "file_mounts": {}, "cluster_synced_files": [], "rsync_exclude": [], "rsync_filter": [],
        "file_mounts_sync_continuously": False, "initialization_commands": [],
        "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [],
        "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }  # fmt: skip
    home = tmp_path / "home"
    home.mkdir()
    (home / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump(config))
    temp = tempfile.mkdtemp(prefix="rsf-", dir="/tmp")  # short: Ray's socket paths
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # fmt: skip
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=0",
         "--include-dashboard=false", f"--temp-dir={temp}",
         f"--autoscaling-config={home / 'ray_bootstrap_config.yaml'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: Path(temp, "ray_current_cluster").exists() or list(Path(temp).glob(
            "session_*/logs/monitor*")), timeout=120, what="the fake cluster's head")  # fmt: skip
        yield address, home
    finally:
        head.terminate()
        head.wait(timeout=60)
        for pid in _processes_mentioning(address) + _processes_mentioning(temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_gpus_per_trial_is_checked_against_what_the_cluster_can_scale_to(
    autoscaling_cluster, tmp_path
):
    address, home = autoscaling_cluster
    env = {"HOME": str(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    args = [*TINY_LINEAR, "--address", address, "--seeds-per-trial", "1"]
    too_big = run_cli(*args, "--gpus-per-trial", "2", cwd=tmp_path, **env)
    assert too_big.returncode == 2, too_big.stderr[-2000:]
    [line] = [x for x in too_big.stderr.strip().splitlines() if "error" in x]
    assert "--gpus-per-trial 2" in line and "node type gpu_worker: 1 GPU" in line
    assert not (tmp_path / "mlflow.db").exists()

    # the README's command: fractional GPUs on a cluster with no GPU node up yet
    out = run_cli(*args, "--gpus-per-trial", "0.25", cwd=tmp_path, timeout=300, **env)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FINISHED"}


# -- cluster files that install on the machines they name ----------------------------------
def _cluster_file(name: str) -> dict:
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[1] / name).read_text())


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-onprem.yaml"])
def test_cluster_files_install_python_3_11_and_the_drivers_ray_on_every_node(name):
    import ray

    config = _cluster_file(name)
    setup = " ".join(config["setup_commands"])  # run on the head and on every worker
    assert "python3.11 -m venv ~/rankstudy-venv" in setup
    assert "sys.version_info >= (3, 11)" in setup  # pyproject: requires-python >= 3.11
    assert f"RAY_VERSION={ray.__version__}" in setup and '"ray[default]==$RAY_VERSION"' in setup
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert not [c for c in config[key] if c.startswith("ray ")]  # the venv's ray only
        assert any("~/rankstudy-venv/bin/ray start" in c for c in config[key])


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-onprem.yaml"])
def test_cluster_files_upload_no_local_results_and_keep_mlflow_outside_the_head(name):
    config = _cluster_file(name)
    assert {"mlflow.db", "mlruns", "ray_results", ".data"} <= set(config["rsync_exclude"])
    assert config["rsync_filter"] == [".gitignore"]  # and whatever else git ignores
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().split()
    assert {"mlflow.db", "mlruns/", "ray_results/", ".data/"} <= set(ignored)
    head = " ".join(config["head_setup_commands"] + config["head_start_ray_commands"])
    assert "MLFLOW_BACKEND_STORE_URI=" in head and "MLFLOW_ARTIFACTS_DESTINATION=" in head
    assert '--backend-store-uri "${MLFLOW_BACKEND_STORE_URI:-sqlite:' in head  # the fallback
    assert '--artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-' in head


def test_rays_private_cluster_file_validator_is_still_where_cluster_check_imports_it():
    """study.cluster_check uses Ray's private validator (no public one exists): fail loudly
    here, not at a user's `python -m study.cluster_check`, if a Ray release moves it."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    from study.cluster_check import check_cluster_file

    assert callable(prepare_config) and callable(validate_config)
    root = Path(__file__).resolve().parents[1]
    check_cluster_file(root / "cluster.yaml")
    check_cluster_file(root / "cluster-onprem.yaml")


# -- pins and CI: a fresh machine passes what CI passes -------------------------------------
def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def test_runtime_pins_cap_only_where_a_break_is_recorded_and_scipy_is_capped_for_tests_only():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    project = _pyproject()["project"]
    runtime = project["dependencies"]
    assert not [d for d in runtime if d.startswith("scipy") and "<" in d]
    assert any(d.startswith("scipy<1.18") for d in project["optional-dependencies"]["dev"])
    lines = text.splitlines()
    for requirement in [d for d in runtime if "<" in d]:
        [at] = [i for i, line in enumerate(lines) if f'"{requirement}"' in line]
        assert "#" in lines[at] or lines[at - 1].strip().startswith("#"), requirement
    [ray] = [d for d in runtime if d.startswith("ray[tune]")]
    assert ray == "ray[tune]>=2.41"  # 2.40 lacks ray.tune.RunConfig / report / get_checkpoint


def test_ci_installs_into_a_new_venv_with_the_dev_tools_pinned_and_runs_the_readme_tests():
    root = Path(__file__).resolve().parents[1]
    script = (root / ".ci" / "run").read_text()
    assert 'rm -rf "$venv"' in script and 'python3 -m venv "$venv"' in script
    assert '"torch==2.14.1" "torchvision==0.29.1"' in script
    assert 'pip install --quiet -e ".[dev]" -c constraints-dev.txt' in script
    assert script.rstrip().splitlines()[-1] == "pytest"  # the README's test command, last
    assert ".venv-ci/" in (root / ".gitignore").read_text().split()
    pins = {}
    for line in (root / "constraints-dev.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    dev = {d.split(">")[0].split("<")[0].split("=")[0] for d in _pyproject()["project"][
        "optional-dependencies"]["dev"]} - {"scipy"}  # fmt: skip
    assert set(pins) == dev and all(pins.values())


# -- the three tiers, as the README and --list describe them -------------------------------
def test_list_shows_every_study_with_its_tiers(capsys):
    from study.run import main
    from study.studies import names, presets

    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in names():
        [line] = [x for x in out.splitlines() if x.startswith(name + " ")]
        _, _, smoke, laptop, desktop, full, gpu = re.split(r"\s{2,}", line)
        assert smoke.startswith("~") and full.startswith("~")
        assert (laptop == "-") == ("laptop" not in presets(name)), line
        assert (desktop == "-") == ("desktop" not in presets(name)), line
    assert {"full", "smoke"} <= set(presets("linear_depth_sweep"))
    tiers = ("full", "desktop", "laptop", "smoke")
    assert presets("mnist_explicit") == presets("mnist_alpha_sweep") == tiers


def test_every_tier_of_every_study_dry_runs_with_its_estimate(capsys, tmp_path):
    from study.run import main
    from study.studies import names, presets, reads_user_data
    from tools.example_data import write

    data = ["--data", str(write("linear", tmp_path / "linear.npz"))]
    for name in names():
        for preset in presets(name):
            args = [name, "--preset", preset, "--dry-run", *(data if reads_user_data(name) else [])]
            assert main(args) == 0, (name, preset)
            out = capsys.readouterr().out
            assert f"preset {preset};" in out and "CPU-core-h (~" in out, out
    laptop = [config("mnist_explicit", "laptop").base, config("mnist_alpha_sweep", "laptop").base]
    for base in laptop:  # the laptop tier: float32, 1,000 labels, patience in steps
        assert base.dtype == "float32" and base.classifier_labels == 1000
        assert base.patience_steps < base.epochs * base.n_train // base.batch_size
    desktop = [config("mnist_explicit", "desktop"), config("mnist_alpha_sweep", "desktop")]
    for spec in desktop:  # about 15,000 steps on the laptop subset, 3 seeds, single-stage
        steps = spec.base.epochs * math.ceil(spec.base.n_train / spec.base.batch_size)
        assert 14_000 <= steps <= 16_000 and spec.seeds == (0, 1, 2)
        assert not spec.base.two_stage and spec.base.dtype == "float32"


def test_nodes_sharing_a_host_each_count_in_the_cluster_check(tmp_path):
    """A head with no CPU and a worker on the same machine (one IP): the worker fits a trial
    whichever order `ray.nodes()` lists them in."""
    from study.cluster_check import check_trial_fits, node_shapes

    head = {"Alive": True, "NodeManagerAddress": "10.0.0.1", "NodeID": "aa" * 14,
            "Resources": {}}  # fmt: skip
    worker = {"Alive": True, "NodeManagerAddress": "10.0.0.1", "NodeID": "bb" * 14,
              "Resources": {"CPU": 1.0}}  # fmt: skip
    for nodes in ([head, worker], [worker, head]):
        shapes = node_shapes(nodes, tmp_path / "no-autoscaling-config.yaml")
        assert len(shapes) == 2
        check_trial_fits(0, 1, shapes)  # raises if the worker was hidden
