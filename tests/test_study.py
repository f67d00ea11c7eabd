"""The study service end to end on a local Ray instance: CLI, plans, stopper, MLflow, resume."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from rankae.config import linear_synthetic
from study.adapters.stopper import DivergenceStopper
from study.plans import AlphaEscalation, alpha_ladder
from study.service.launch import run_study
from study.spec import StudySpec
from study.studies import config

REPO = Path(__file__).resolve().parents[1]
SMOKE_EPOCHS = config("linear_depth_sweep", "smoke").base.epochs  # records per trial


def trial_runs(db: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{db}")
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    return [r for r in runs if r.data.tags.get("role") == "trial"]


def parent_runs(db: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r for r in runs if r.data.tags.get("role") == "study"]


# -- CLI without Ray ---------------------------------------------------------------------
def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "study.run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_list_names_every_study(tmp_path):
    from study.studies import names

    out = run_cli("--list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in rows] == names()  # one line per study
    assert {"linear_depth_sweep", "mnist_alpha_sweep", "cifar10_explicit"} <= set(names())
    assert "Fig. 3" in out.stdout and "GPU" in header and "smoke" in header


def test_list_into_a_reader_that_stopped_reading_ends_quietly(tmp_path):
    """`--list | head -n 1`: the reader may be gone before the list is written."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "study.run", "--list"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # fmt: skip
    child.stdout.close()  # before the child has imported anything: its writes find no reader
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_dry_run_prints_the_grid_and_writes_nothing(tmp_path):
    out = run_cli("linear_depth_sweep", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for depth in (4, 8, 12, 16, 20, 24, 28, 32):
        assert f"'depth': {depth}" in out.stdout
    assert "17 configs x 3 seeds" in out.stdout
    assert "51 runs" in out.stdout and "GB of checkpoints" in out.stdout
    escalation = run_cli("mnist_alpha_sweep", "--dry-run", "--smoke", cwd=tmp_path)
    assert "alpha escalation per N in [4, 16]: alpha = 50, 100" in escalation.stdout
    assert list(tmp_path.iterdir()) == []


def test_stopper_follows_the_engines_verdict_and_keeps_no_state():
    """The engine judges divergence (with --set values, checkpointed); the stopper only reads it."""
    stopper = DivergenceStopper()
    assert not stopper("a", {"loss": 1.0, "diverged": 0.0})
    assert not stopper("a", {"loss": 1e9, "diverged": 0.0})  # a spike the engine forgave
    assert stopper("c", {"loss": 1.0, "diverged": 1.0})
    assert vars(stopper) == {}  # nothing a --resume could forget
    assert not stopper.stop_all()


# -- studies through Ray -----------------------------------------------------------------
@pytest.fixture(scope="module")
def linear_smoke(smoke_studies):
    """`python -m study.run linear_depth_sweep --smoke`, once, in the session's smoke folder."""
    return smoke_studies.folder, smoke_studies.run("linear_depth_sweep")


def test_linear_smoke_logs_one_finished_run_per_trial(linear_smoke):
    folder, code = linear_smoke
    assert code == 0
    runs = trial_runs(folder / "mlflow.db", "linear_depth_sweep")
    assert len(runs) == 5  # vanilla + standard N=4,16 + orthogonal N=4,16
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert [r.info.status for r in parent_runs(folder / "mlflow.db", "linear_depth_sweep")] == [
        "FINISHED"
    ]
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(1, SMOKE_EPOCHS + 1))
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"spectra.json", "final.json", "spectrum_trajectory.png"} <= artifacts
        assert run.data.params["dataset"] == "synthetic"


def test_linear_smoke_finds_rank_8_with_orthogonal_init(linear_smoke):
    folder, _ = linear_smoke
    runs = trial_runs(folder / "mlflow.db", "linear_depth_sweep")
    orthogonal = [r for r in runs if r.data.tags["method"] == "orthogonal"]
    assert len(orthogonal) == 2
    assert all(r.data.metrics["latent_rank"] == 8 for r in orthogonal)
    vanilla = [r for r in runs if r.data.tags["method"] == "vanilla"]
    assert vanilla[0].data.metrics["latent_rank"] > 16
    assert "we_rank" not in vanilla[0].data.metrics
    # a vanilla run shows no sub-network settings, in params or tags
    for key in ("depth", "alpha", "init", "init_scale", "k"):
        assert key not in vanilla[0].data.params and key not in vanilla[0].data.tags
    assert {"depth", "alpha", "init", "init_scale"} <= set(orthogonal[0].data.params)
    assert orthogonal[0].data.tags["depth"] in ("4", "16") and "k" not in orthogonal[0].data.params


def test_escalation_stops_at_the_first_diverging_alpha(ray_local, tmp_path, capsys):
    """On this tiny linear model alpha = 2, 4, 6 train and alpha = 8 diverges (NaN)."""
    base = linear_synthetic(synth_dim=64, latent_dim=32, depth=4, epochs=3, gd_steps_per_epoch=50)
    spec = StudySpec(
        name="test_escalation",
        figure="test",
        base=base,
        plan=AlphaEscalation(depths=(4,), alphas=alpha_ladder(2.0, 2.0, 20.0)),
        seeds=(0,),
    ).validate()
    db = tmp_path / "mlflow.db"
    options = {
        "mlflow_uri": f"sqlite:///{db}",
        "storage": str(tmp_path / "ray"),
        "preset": "full",
        "max_failures": 0,
    }
    assert run_study(spec, options, None) == 0
    runs = trial_runs(db, "test_escalation")
    alphas = sorted(float(r.data.params["alpha"]) for r in runs)
    assert alphas == [2.0, 4.0, 6.0, 8.0]  # nothing launched after the divergence
    by_alpha = {float(r.data.params["alpha"]): r for r in runs}
    assert by_alpha[8.0].data.tags["diverged"] == "true"
    assert by_alpha[8.0].info.status == "FINISHED"
    assert all(by_alpha[a].data.tags["diverged"] == "false" for a in (2.0, 4.0, 6.0))
    parent = parent_runs(db, "test_escalation")[0]
    assert parent.data.metrics["largest_stable_alpha_N4"] == 6.0
    assert parent.data.metrics["divergence_alpha_N4"] == 8.0
    out = capsys.readouterr().out
    assert "alpha escalation" in out and "2, 4, 6, 8" in out


# -- a user's own sweep: --grid, and a study file outside the package ----------------------
def test_grid_replaces_the_plan_with_the_product_of_its_values(tmp_path):
    out = run_cli("linear_alpha_sweep", "--smoke", "--dry-run", "--grid", "depth=4,8",
                  "--grid", "alpha=1,2", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "grid: 4 configs x 1 seeds" in out.stdout and "4 runs" in out.stdout
    variants = [line.strip() for line in out.stdout.splitlines() if line.startswith("  {")]
    assert variants == [f"{{'depth': {n}, 'alpha': {a}}}" for n in (4, 8) for a in (1.0, 2.0)]
    assert "--grid depth=4,8 alpha=1.0,2.0: replaces the plan of linear_alpha_sweep" in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_study_file_outside_the_package_runs_resumes_and_reports(ray_local, tmp_path):
    """README's example study file, copied where a user keeps their own: --dry-run, --smoke
    end to end (its runs named apart by the setting it varies), --resume (finished: nothing
    to run; the file changed: refused), the report."""
    from analysis.report import main as report_main
    from study.run import main

    study_file = tmp_path / "init_scale.py"
    study_file.write_text((REPO / "examples" / "init_scale.py").read_text())
    plan = run_cli("init_scale.py", "--smoke", "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "study init_scale" in plan.stdout and "grid: 2 configs x 1 seeds" in plan.stdout
    with contextlib.chdir(tmp_path):
        assert main(["init_scale.py", "--smoke"]) == 0
        runs = trial_runs(tmp_path / "mlflow.db", "init_scale")
        assert sorted(float(r.data.params["init_scale"]) for r in runs) == [1e-3, 1.0]
        assert all(r.info.status == "FINISHED" for r in runs)
        names = sorted(r.info.run_name for r in runs)  # the label alone would name both alike
        assert names == [
            "orthogonal-N16-a2-s0 init_scale=0.001",
            "orthogonal-N16-a2-s0 init_scale=1",
        ]
        assert main(["init_scale.py", "--resume"]) == 0  # the plan was done: nothing more
        assert len(trial_runs(tmp_path / "mlflow.db", "init_scale")) == 2
        assert report_main(["init_scale", "--out", "report", "--no-log"]) == 0
        assert (tmp_path / "report" / "report.md").exists()
    study_file.write_text(study_file.read_text() + "\n# edited\n")
    changed = run_cli("init_scale.py", "--resume", cwd=tmp_path)
    assert changed.returncode == 2 and "init_scale.py changed since" in changed.stderr
