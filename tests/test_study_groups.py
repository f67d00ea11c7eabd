"""Vectorised seed groups through the study service: one trial trains several seeds side by
side, and MLflow, the results table and the alpha escalation still see one run per seed,
with the same numbers as separate trials."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from mlflow.tracking import MlflowClient

from rankae.config import linear_synthetic
from search_spaces import depth_sweep, vanilla
from study.plans import AlphaEscalation, Grid, OptunaSpace, alpha_ladder
from study.service.grouping import choose_seeds_per_trial, largest_config
from study.service.launch import run_study
from study.spec import StudySpec
from trainables.contract import member_results, member_seeds, trial_runs

SEEDS = (0, 1, 2)
TINY = linear_synthetic(synth_dim=64, latent_dim=32, epochs=4, gd_steps_per_epoch=50)


def tiny_grid(seeds_per_trial: int) -> StudySpec:
    return StudySpec(
        name=f"groups_{seeds_per_trial}",
        figure="test",
        base=TINY,
        plan=Grid(vanilla() + depth_sweep("orthogonal", (4,), alpha=2.0)),
        seeds=SEEDS,
        seeds_per_trial=seeds_per_trial,
    ).validate()


def options(tmp_path) -> dict:
    return {
        "mlflow_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "storage": str(tmp_path / "ray"),
        "preset": "full",
        "max_failures": 0,
    }


def mlflow_runs(tmp_path, experiment: str) -> dict[tuple[str, int], object]:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    runs = [
        r for r in client.search_runs([found.experiment_id]) if r.data.tags.get("role") == "trial"
    ]
    return {(r.data.tags["method"], int(r.data.tags["seed"])): r for r in runs}


def history(tmp_path, run, key: str) -> list[tuple[int, float]]:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def test_group_configs_split_into_members() -> None:
    spec = tiny_grid(2)
    configs = [config for v in spec.plan.variants for config in spec.trials().per_group(v)]
    assert [member_seeds(c) for c in configs] == [[0, 1], [2], [0, 1], [2]]
    first, second = trial_runs(configs[0])
    assert first.replace(seed=1) == second  # the members differ in their seed only
    result = {"members": {"0": {"loss": 1.0}, "1": {"loss": 2.0}}}
    assert member_results(configs[0], result) == [{"loss": 1.0}, {"loss": 2.0}]
    assert member_results(configs[1], {"members": {"2": {"loss": 3.0}}}) == [{"loss": 3.0}]
    flat = {"loss": 1.5, "members/0/loss": 1.0, "members/1/loss": 2.0, "members/1/epoch": 4}
    assert member_results(configs[0], flat) == [{"loss": 1.0}, {"loss": 2.0, "epoch": 4}]


def test_seeds_per_trial_is_one_on_cpu_and_capped_by_the_seeds() -> None:
    auto = replace(tiny_grid(1), seeds_per_trial=None)
    assert choose_seeds_per_trial(auto) == 1  # CPU trial: stacking does not pay
    assert choose_seeds_per_trial(replace(auto, seeds_per_trial=10)) == len(SEEDS)
    optuna = replace(auto, plan=OptunaSpace(), seeds_per_trial=4)
    assert choose_seeds_per_trial(optuna) == 1
    deepest = Grid(vanilla() + depth_sweep("orthogonal", (4, 12, 8)))
    assert largest_config(replace(auto, plan=deepest)).depth == 12


@pytest.fixture(scope="module")
def grouped_and_separate(ray_local, tmp_path_factory):
    folders = {}
    for size in (3, 1):
        folder = tmp_path_factory.mktemp(f"groups_{size}")
        assert run_study(tiny_grid(size), options(folder), None) == 0
        folders[size] = folder
    return folders


def test_each_seed_of_a_group_is_its_own_finished_mlflow_run(grouped_and_separate) -> None:
    folder = grouped_and_separate[3]
    runs = mlflow_runs(folder, "groups_3")
    assert sorted(runs) == [(m, s) for m in ("orthogonal", "vanilla") for s in SEEDS]
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    for (_, seed), run in runs.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["group_seeds"] == "0,1,2"
        assert run.data.params["seed"] == str(seed) and "group_seeds" not in run.data.params
        assert [step for step, _ in history(folder, run, "loss")] == [1, 2, 3, 4]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"spectra.json", "final.json", "spectrum_trajectory.png"} <= artifacts
    assert len({r.data.tags["trial_id"] for r in runs.values()}) == 2  # two trials, six runs


def test_grouped_runs_equal_separate_runs(grouped_and_separate) -> None:
    grouped = mlflow_runs(grouped_and_separate[3], "groups_3")
    separate = mlflow_runs(grouped_and_separate[1], "groups_1")
    assert sorted(grouped) == sorted(separate)
    for key, run in grouped.items():
        reference = separate[key]
        assert "group_seeds" not in reference.data.tags
        for metric in ("loss", "latent_rank", "we_rank", "latent_sv_1"):
            ours = history(grouped_and_separate[3], run, metric)
            theirs = history(grouped_and_separate[1], reference, metric)
            assert [s for s, _ in ours] == [s for s, _ in theirs]
            for (_, a), (_, b) in zip(ours, theirs, strict=True):
                assert a == pytest.approx(b, rel=1e-10), (key, metric)


def test_escalation_counts_every_member_of_a_group(ray_local, tmp_path) -> None:
    """As tests/test_study.py's escalation (alpha 8 diverges), with both seeds in one trial."""
    base = linear_synthetic(synth_dim=64, latent_dim=32, depth=4, epochs=3, gd_steps_per_epoch=50)
    spec = StudySpec(
        name="group_escalation",
        figure="test",
        base=base,
        plan=AlphaEscalation(depths=(4,), alphas=alpha_ladder(2.0, 2.0, 20.0)),
        seeds=(0, 1),
        seeds_per_trial=2,
    ).validate()
    assert run_study(spec, options(tmp_path), None) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("group_escalation").experiment_id
    runs = [r for r in client.search_runs([experiment]) if r.data.tags["role"] == "trial"]
    alphas = sorted((float(r.data.params["alpha"]), int(r.data.params["seed"])) for r in runs)
    assert alphas == [(a, s) for a in (2.0, 4.0, 6.0, 8.0) for s in (0, 1)]
    for run in runs:
        diverged = float(run.data.params["alpha"]) == 8.0
        assert run.data.tags["diverged"] == str(diverged).lower()
        assert math.isfinite(run.data.metrics["loss"]) != diverged
    parent = next(r for r in client.search_runs([experiment]) if r.data.tags["role"] == "study")
    assert parent.data.metrics["largest_stable_alpha_N4"] == 6.0
