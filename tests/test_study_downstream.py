"""An image study end to end: two-stage training, classification and FID reach MLflow."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from study.studies import config


@pytest.fixture(scope="module")
def alpha_smoke(smoke_studies):
    """`mnist_alpha_sweep --smoke` (tests/conftest.py): N = 4, 16; alpha 50, 100; real MNIST."""
    code = smoke_studies.run("mnist_alpha_sweep")
    client = MlflowClient(f"sqlite:///{smoke_studies.db}")
    experiment = client.get_experiment_by_name("mnist_alpha_sweep")
    runs = client.search_runs([experiment.experiment_id])
    return code, client, [r for r in runs if r.data.tags["role"] == "trial"], runs


def test_every_trial_reports_accuracy_fid_and_sample_grids(alpha_smoke):
    code, client, trials, _ = alpha_smoke
    assert code == 0
    assert trials and {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        metrics = run.data.metrics
        if run.data.tags["diverged"] == "true":
            continue
        # acc_best (every label) and acc_selected (a validation split held out) are two
        # classifiers, on z_N; the acc_pre_* pair reads z
        for name in ("acc_best", "acc_selected", "acc_pre_best", "acc_pre_selected"):
            assert 0.0 <= metrics[name] <= 1.0
        assert math.isfinite(metrics["fid"]) and metrics["fid"] > 0
        assert metrics["fid_samples"] == config("mnist_alpha_sweep", "smoke").base.fid_samples
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"gmm_samples.png", "reconstructions.png", "spectrum_trajectory.png"} <= artifacts


def test_two_stage_switch_is_logged_with_k_equal_to_the_rank(alpha_smoke):
    _, client, trials, _ = alpha_smoke
    switched = [r for r in trials if "switch_k" in r.data.metrics]
    assert switched, "the smoke tier forces the switch at epoch 2"
    for run in switched:
        metrics = run.data.metrics
        assert metrics["k"] == metrics["switch_k"] >= 1
        stages = [m.value for m in client.get_metric_history(run.info.run_id, "stage")]
        assert stages[-1] == 2.0


def test_escalation_per_depth_is_summarised_on_the_parent_run(alpha_smoke):
    _, _, trials, runs = alpha_smoke
    parent = next(r for r in runs if r.data.tags["role"] == "study")
    assert parent.info.status == "FINISHED"
    depths = {r.data.params["depth"] for r in trials}
    assert depths == {"4", "16"}
    for depth in depths:
        assert (
            f"largest_stable_alpha_N{depth}" in parent.data.metrics
            or f"divergence_alpha_N{depth}" in parent.data.metrics
        )
