"""Intrinsic-dimension estimates (analysis.intrinsic) on data whose dimension is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.intrinsic import estimate_intrinsic_dimension, pca_count


def linear_rank(r: int = 5, dim: int = 30, n: int = 1000, noise: float = 1e-3, seed: int = 0):
    """n points on an r-dimensional subspace of R^dim, plus tiny isotropic noise.

    The subspace's basis is orthonormal, so each of the r directions carries 1/r of the
    variance: with Gaussian mixing the weakest of 5 directions can hold under 5% of it,
    and "95% of the variance" would then honestly be 4 components.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, r)))
    return rng.normal(size=(n, r)) @ basis.T + noise * rng.normal(size=(n, dim))


def by_estimator(table: pd.DataFrame) -> dict[str, float]:
    return dict(zip(table["estimator"], table["dimension"], strict=True))


def test_a_rank_5_subspace_is_5_dimensional_to_every_estimator() -> None:
    table = estimate_intrinsic_dimension(linear_rank())
    assert list(table.columns) == ["estimator", "dimension", "seconds", "notes"]
    assert table["dimension"].dtype == float and (table["seconds"] >= 0).all()
    dims = by_estimator(table)
    assert set(dims) == {"TwoNN", "MLE", "lPCA", "PCA 95%"}
    assert dims["lPCA"] == 5 and dims["PCA 95%"] == 5
    assert 3.5 <= dims["TwoNN"] <= 6.5 and 3.5 <= dims["MLE"] <= 6.5
    assert not table["notes"].str.contains("samples \\(seed").any()  # 1,000 < 5,000: all used


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


def test_more_than_max_samples_are_subsampled_with_the_seed() -> None:
    x = linear_rank(r=2, dim=4, n=3000, seed=2)
    first = estimate_intrinsic_dimension(x, seed=7, max_samples=400)
    again = estimate_intrinsic_dimension(x, seed=7, max_samples=400)
    other = estimate_intrinsic_dimension(x, seed=8, max_samples=400)
    assert first["notes"].str.startswith("on 400 of 3,000 samples (seed 7)").all()
    assert first["dimension"].tolist() == again["dimension"].tolist()
    assert by_estimator(first)["TwoNN"] != by_estimator(other)["TwoNN"]


def test_images_are_flattened() -> None:
    flat = linear_rank(r=3, dim=16, n=300, seed=3)
    images = flat.reshape(300, 1, 4, 4)
    assert (
        estimate_intrinsic_dimension(images)["dimension"].tolist()
        == estimate_intrinsic_dimension(flat)["dimension"].tolist()
    )


def test_duplicates_are_dropped_for_the_neighbour_estimators() -> None:
    """Zero neighbour distances would make TwoNN drop points and MLE divide by log 0."""
    x = linear_rank(r=3, dim=10, n=200, seed=4)
    table = estimate_intrinsic_dimension(np.concatenate([x, x[:20]]))
    notes = dict(zip(table["estimator"], table["notes"], strict=True))
    assert "20 duplicate samples dropped" in notes["TwoNN"] and "duplicate" in notes["MLE"]
    assert "duplicate" not in notes["lPCA"]
    assert np.isfinite(table["dimension"]).all()


def test_pca_count_is_the_fewest_components_reaching_the_share() -> None:
    """Four orthogonal mean-zero columns (of a Hadamard matrix) with variances 4:3:2:1, so
    the cumulative shares are exactly 0.4, 0.7, 0.9, 1.0."""
    h = np.array([[1]])
    for _ in range(3):
        h = np.block([[h, h], [h, -h]])
    x = h[:, 1:5] * np.sqrt([4.0, 3.0, 2.0, 1.0])
    assert [pca_count(x, share) for share in (0.4, 0.41, 0.7, 0.9, 0.95, 1.0)] == [1, 2, 2, 3, 4, 4]
    table = estimate_intrinsic_dimension(np.tile(x, (10, 1)), variance=0.9)
    assert by_estimator(table)["PCA 90%"] == 3


@pytest.mark.parametrize(
    ("x", "says"),
    [
        (np.zeros(10), "shape (10,)"),
        (np.zeros((2, 5)), "at least 3 samples"),
        (np.full((10, 3), np.nan), "30 NaN or inf"),
        (np.zeros((10, 3)), "1 distinct samples"),
    ],
)
def test_unusable_input_is_a_one_line_value_error(x: np.ndarray, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        estimate_intrinsic_dimension(x)
    assert says in str(caught.value) and "\n" not in str(caught.value)
