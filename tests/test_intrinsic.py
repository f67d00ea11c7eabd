"""Intrinsic-dimension estimates (analysis.intrinsic) on data whose dimension is known, the
samples they use, the ID-vs-scale figure, and the report's inputs beside a model's codes."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import figures, intrinsic
from analysis.intrinsic import Panel, estimate_intrinsic_dimension, sample_indices

NEIGHBOUR_ESTIMATORS = ("TwoNN", "MLE", "GRIDE", "DANCo")


def linear_rank(r: int = 4, dim: int = 16, n: int = 1000, noise: float = 1e-3, seed: int = 0):
    """n points on an r-dimensional subspace of R^dim, plus isotropic noise.

    The subspace's basis is orthonormal, so each of the r directions carries 1/r of the
    variance: with Gaussian mixing the weakest of 5 directions can hold under 5% of it,
    and "95% of the variance" would then honestly be 4 components.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, r)))
    return rng.normal(size=(n, r)) @ basis.T + noise * rng.normal(size=(n, dim))


def by_estimator(panel: Panel, column: str = "dimension") -> dict[str, float]:
    return dict(zip(panel.table["estimator"], panel.table[column], strict=True))


def test_a_rank_4_subspace_is_4_dimensional_to_every_estimator() -> None:
    """Linear estimators exactly, the neighbour-based ones within their small-sample bias
    (measured: TwoNN 4.4, MLE 4.0, GRIDE 4.0, DANCo 4.7)."""
    panel = estimate_intrinsic_dimension(linear_rank())
    table = panel.table
    assert list(table.columns) == ["estimator", "dimension", "error", "seconds", "notes"]
    assert table["dimension"].dtype == float and (table["seconds"] >= 0).all()
    dims = by_estimator(panel)
    assert list(dims) == [*NEIGHBOUR_ESTIMATORS, "lPCA GD", "PCA 95%"]
    assert dims["lPCA GD"] == 4 and dims["PCA 95%"] == 4
    assert all(3.5 <= dims[name] <= 5.0 for name in NEIGHBOUR_ESTIMATORS), dims
    assert not table["notes"].str.contains("samples \\(seed").any()  # 1,000 < 5,000: all used


def test_gride_alone_has_an_error_bar_and_its_scales_reach_the_64th_neighbour() -> None:
    panel = estimate_intrinsic_dimension(linear_rank(n=500, seed=1))
    errors = by_estimator(panel, "error")
    assert 0 < errors["GRIDE"] < 0.5
    assert all(math.isnan(e) for name, e in errors.items() if name != "GRIDE")
    scales = panel.scales
    assert list(scales.columns) == ["n1", "n2", "radius", "dimension", "error"]
    assert (
        scales["n1"].tolist() == [1, 2, 4, 8, 16, 32] and (scales["n2"] == 2 * scales["n1"]).all()
    )
    assert scales["radius"].is_monotonic_increasing and np.isfinite(scales["error"]).all()
    # the reported row is the scale the notes state
    reported = scales.loc[scales["n1"] == intrinsic.GRIDE_N1, "dimension"].item()
    assert by_estimator(panel)["GRIDE"] == reported
    notes = by_estimator(panel, "notes")["GRIDE"]
    assert f"n1 = {intrinsic.GRIDE_N1}, n2 = {2 * intrinsic.GRIDE_N1}" in notes


def test_lpca_gd_finds_the_signal_rank_under_noise_and_0_without_any() -> None:
    """Gavish-Donoho sets its threshold from the median eigenvalue: on a noiseless rank-5
    set that is a signal eigenvalue, and nothing clears it (the row's notes say so)."""
    noisy = estimate_intrinsic_dimension(linear_rank(r=5, dim=30, n=300, noise=0.1))
    noiseless = estimate_intrinsic_dimension(linear_rank(r=5, dim=30, n=300, noise=0.0))
    assert by_estimator(noisy)["lPCA GD"] == 5 and by_estimator(noiseless)["lPCA GD"] == 0
    assert "0 if noiseless" in by_estimator(noiseless, "notes")["lPCA GD"]


def test_twonn_finds_about_3_dimensions_on_a_curved_3d_manifold() -> None:
    """x = tanh(A z), z ~ N(0, I_3), A 20 x 3: a curved 3-manifold in R^20.

    The window [2, 4.5] is wide on purpose: TwoNN and MLE are biased low on curved
    manifolds and small samples (n = 1,000 here; they read about 2.9), while the linear
    (PCA) counts over-count curvature, which is why only TwoNN is held to 3 here.
    """
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 3))
    x = np.tanh(rng.normal(size=(1000, 3)) @ a.T)
    dims = by_estimator(estimate_intrinsic_dimension(x))
    assert 2.0 <= dims["TwoNN"] <= 4.5
    assert dims["PCA 95%"] >= 3  # a linear count never sees fewer directions than the manifold


def test_sample_indices_are_all_rows_or_a_seeded_sorted_subsample() -> None:
    assert sample_indices(300, 400, seed=7).tolist() == list(range(300))
    first, again = sample_indices(3000, 400, seed=7), sample_indices(3000, 400, seed=7)
    assert first.tolist() == again.tolist() and len(set(first.tolist())) == 400
    assert (np.diff(first) > 0).all() and first[-1] < 3000
    assert first.tolist() != sample_indices(3000, 400, seed=8).tolist()


def test_the_panel_reads_only_the_sampled_rows_so_two_sources_share_them() -> None:
    """Rows outside `sample_indices` replaced by other points change no estimate: what the
    report relies on to set the inputs and a model's codes of them on the same samples."""
    x = linear_rank(r=2, dim=4, n=3000, seed=2)
    kept = sample_indices(len(x), 400, seed=7)
    other = np.random.default_rng(3).normal(size=x.shape) * 5
    other[kept] = x[kept]
    first = estimate_intrinsic_dimension(x, seed=7, max_samples=400)
    same = estimate_intrinsic_dimension(other, seed=7, max_samples=400)
    reseeded = estimate_intrinsic_dimension(x, seed=8, max_samples=400)
    assert first.table["notes"].str.startswith("on 400 of 3,000 samples (seed 7)").all()
    assert first.table["dimension"].tolist() == same.table["dimension"].tolist()
    assert by_estimator(first)["TwoNN"] != by_estimator(reseeded)["TwoNN"]


def test_danco_past_its_cap_runs_on_a_subsample_its_notes_state(monkeypatch) -> None:
    monkeypatch.setattr(intrinsic, "DANCO_MAX_SAMPLES", 300)
    panel = estimate_intrinsic_dimension(linear_rank(r=3, dim=8, n=1000, seed=5), max_samples=400)
    notes = by_estimator(panel, "notes")
    assert notes["DANCo"].startswith("on 400 of 1,000 samples (seed 0)")
    assert "on 300 of them" in notes["DANCo"] and "of them" not in notes["TwoNN"]


def test_images_are_flattened() -> None:
    flat = linear_rank(r=3, dim=16, n=300, seed=3)
    images = flat.reshape(300, 1, 4, 4)
    assert (
        estimate_intrinsic_dimension(images).table["dimension"].tolist()
        == estimate_intrinsic_dimension(flat).table["dimension"].tolist()
    )


def test_duplicates_are_dropped_for_the_neighbour_estimators() -> None:
    """Zero neighbour distances would make TwoNN drop points and MLE divide by log 0."""
    x = linear_rank(r=3, dim=10, n=200, seed=4)
    panel = estimate_intrinsic_dimension(np.concatenate([x, x[:20]]))
    notes = by_estimator(panel, "notes")
    assert all("20 duplicate samples dropped" in notes[name] for name in NEIGHBOUR_ESTIMATORS)
    assert "duplicate" not in notes["lPCA GD"] + notes["PCA 95%"]
    assert np.isfinite(panel.table["dimension"]).all()


def test_the_library_pca_count_is_the_fewest_components_past_the_share() -> None:
    """Four orthonormal mean-zero columns scaled to variances 4:3:2:1: the cumulative shares
    are exactly 0.4, 0.7, 0.9, 1.0, and sklearn keeps the fewest components whose share
    exceeds the one asked for."""
    centred = np.random.default_rng(6).normal(size=(100, 4))
    columns, _ = np.linalg.qr(centred - centred.mean(axis=0))
    x = columns * np.sqrt([4.0, 3.0, 2.0, 1.0])
    counts = {
        share: by_estimator(estimate_intrinsic_dimension(x, variance=share))[f"PCA {share:.0%}"]
        for share in (0.35, 0.45, 0.65, 0.75, 0.85, 0.95)
    }
    assert counts == {0.35: 1, 0.45: 2, 0.65: 2, 0.75: 3, 0.85: 3, 0.95: 4}


@pytest.mark.parametrize(
    ("x", "options", "says"),
    [
        (np.zeros(10), {}, "shape (10,)"),
        (np.zeros((2, 5)), {}, "at least 20 samples"),
        (np.zeros((30, 1)), {}, "2 features"),
        (np.full((30, 3), np.nan), {}, "90 NaN or inf"),
        (np.zeros((30, 3)), {}, "1 distinct samples"),
        (linear_rank(n=30), {"variance": 1.0}, "variance=1.0 is invalid"),
        (linear_rank(n=30), {"max_samples": 10}, "max_samples=10 is invalid"),
    ],
)
def test_unusable_input_is_a_one_line_value_error(
    x: np.ndarray, options: dict[str, float], says: str
) -> None:
    with pytest.raises(ValueError) as caught:
        estimate_intrinsic_dimension(x, **options)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_id_by_scale_figure_draws_one_line_per_source(tmp_path) -> None:
    x = linear_rank(n=300, seed=7)
    scales = pd.concat(
        [
            estimate_intrinsic_dimension(x).scales.assign(on="the inputs"),
            estimate_intrinsic_dimension(x[:, :8]).scales.assign(on="codes"),
        ]
    )
    figure = figures.id_by_scale(scales)
    [axis] = figure.axes
    assert axis.get_xscale() == "log" and axis.get_legend_handles_labels()[1] == [
        "the inputs",
        "codes",
    ]
    figure.savefig(tmp_path / "scale.png")
    assert (tmp_path / "scale.png").stat().st_size > 0
    with pytest.raises(figures.NotApplicable):
        figures.id_by_scale(pd.DataFrame())


def test_the_report_sets_the_training_split_beside_the_vanilla_codes(tmp_path, monkeypatch) -> None:
    """`training_inputs`: the run's training split, row i the input of its codes' row i (the
    split `rankae.rundata.load_run_data` makes from the run's settings); `estimators_table` reads it
    and the codes from one run, the first healthy vanilla seed."""
    from analysis import report
    from rankae.userdata import load_user_data

    data = linear_rank(r=3, dim=6, n=100, seed=8)
    np.save(tmp_path / "x.npy", data)
    params = {"data_path": str(tmp_path / "x.npy"), "labels_path": "None",
              "architecture": "mlp", "batch_size": "32", "eval_fraction": "0.2",
              "n_train": "60", "data_seed": "3", "checkpoint_every": "5"}  # fmt: skip
    read = []

    def client(_uri: str) -> SimpleNamespace:
        def get_run(run_id: str) -> SimpleNamespace:
            read.append(run_id)
            return SimpleNamespace(data=SimpleNamespace(params=params))

        return SimpleNamespace(get_run=get_run)

    monkeypatch.setattr(report, "MlflowClient", client)
    inputs = report.training_inputs("vanilla-seed-0", "uri")
    order = torch.randperm(100, generator=torch.Generator().manual_seed(3))[:80][:60]
    assert np.array_equal(inputs, load_user_data(params["data_path"], None).x[order].numpy())

    trials = pd.DataFrame(
        {
            "run_id": ["net-0", "vanilla-seed-1", "vanilla-seed-0", "diverged-vanilla"],
            "bottleneck": ["linear_net", "vanilla", "vanilla", "vanilla"],
            "seed": [0, 1, 0, -1],
            "status": ["FINISHED"] * 4,
            "diverged": [False, False, False, True],
            "data_path": [params["data_path"]] * 4,
            "depth": [8, None, None, None],
            "alpha": [300.0, None, None, None],
            "epoch": [30, 30, 30, 2],
        }
    )
    mixing = np.random.default_rng(9).normal(size=(6, 8))
    # rank 3 as well, row for row; the orthogonal run's codes keep two of the three
    codes = {"vanilla-seed-0": inputs @ mixing, "net-0": inputs @ mixing[:, :2] @ mixing[:2]}
    monkeypatch.setattr(report, "trials_answer", lambda _trials: None)
    monkeypatch.setattr(report, "load_codes", lambda run_id, _uri: codes.get(run_id))
    table, scales = report.estimators_table(trials, "uri")
    assert read[-1] == "vanilla-seed-0"
    assert list(table.columns) == ["estimator", "on", "dimension", "error", "seconds", "notes"]
    sources = ["the inputs", "vanilla codes", "orthogonal codes (N = 8, α = 300, seed 0)"]
    assert table["on"].unique().tolist() == sources
    assert scales["on"].unique().tolist() == sources
    assert table["notes"].str.startswith("the training split's 60 samples; ").all()
    assert table[table["estimator"] == "PCA 95%"]["dimension"].tolist() == ["3.0", "3.0", "2.0"]
