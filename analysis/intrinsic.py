"""Established intrinsic-dimension estimates of a dataset, to set beside the latent rank.

The autoencoder's implicit rank is one answer to "how many dimensions does this data
have?"; these are the textbook ones, from scikit-dimension (`skdim`) and PCA:
- `TwoNN` (Facco et al. 2017): ratios of 2nd to 1st nearest-neighbour distances.
- `MLE` (Levina & Bickel 2005, skdim's defaults: 20 neighbours): local likelihood, pooled.
- `lPCA` (global, Fukunaga-Olsen): PCA eigenvalues above 5% of the largest.
- `PCA 95%`: the fewest principal components that explain 95% of the variance.

The neighbour-based two measure a manifold's dimension and are biased low on curved data
and small samples; the PCA-based two count linear directions and over-count curved
manifolds. Their spread is part of the answer.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pandas as pd

MAX_SAMPLES = 5000  # kNN and PCA stay seconds on 2 cores at this size
PCA_VARIANCE = 0.95
COLUMNS = ("estimator", "dimension", "seconds", "notes")


def pca_count(x: np.ndarray, variance: float = PCA_VARIANCE) -> int:
    """The fewest principal components whose explained variance reaches `variance`."""
    centred = x - x.mean(axis=0)
    eigenvalues = np.linalg.svd(centred, compute_uv=False) ** 2
    total = eigenvalues.sum()
    if total == 0:
        return 0  # every sample the same: no direction varies
    explained = np.cumsum(eigenvalues) / total
    # the tolerance keeps a count whose share is `variance` up to rounding
    return min(int(np.searchsorted(explained, variance - 1e-12)) + 1, len(explained))


def _lpca(skdim: ModuleType, data: np.ndarray) -> float:
    """Global lPCA (Fukunaga-Olsen). Its eigenvalue gaps, unused by this rule, divide by the
    zero eigenvalues of constant features (digits' blank corners): that warning is noise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return skdim.id.lPCA().fit(data).dimension_


def estimate_intrinsic_dimension(
    x: np.ndarray, seed: int = 0, max_samples: int = MAX_SAMPLES, variance: float = PCA_VARIANCE
) -> pd.DataFrame:
    """TwoNN, MLE, lPCA and the PCA variance count on `x` (n, ...), flattened to (n, D).

    More than `max_samples` samples are subsampled without replacement (seeded by `seed`),
    the same subsample for every estimator, so their differences are the estimators'.
    Returns one row per estimator: `estimator`, `dimension` (float), `seconds` (wall time),
    `notes` (the subsample, the method's setting, any warning it raised).
    """
    import skdim  # imported here: numba's start-up is seconds, only this needs it

    data = np.asarray(x, dtype=np.float64)
    if data.ndim < 2:
        raise ValueError(f"x has shape {data.shape}: allowed is (n, D) or (n, ...) images")
    data = data.reshape(len(data), -1)
    n, dim = data.shape
    if n < 3 or dim < 2:
        raise ValueError(f"x has shape {data.shape}: needs at least 3 samples and 2 features")
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise ValueError(f"x holds {bad:,} NaN or inf values: remove or impute them first")
    if not 0 < variance <= 1:
        raise ValueError(f"variance={variance!r} is invalid: must lie in (0, 1]")
    if max_samples < 3:
        raise ValueError(f"max_samples={max_samples!r} is invalid: must be an integer >= 3")

    common = []
    if n > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
        data = data[keep]
        common.append(f"on {max_samples:,} of {n:,} samples (seed {seed})")
    # duplicates give zero neighbour distances, which TwoNN drops and MLE turns into inf
    distinct = np.unique(data, axis=0)
    dropped = len(data) - len(distinct)
    if len(distinct) < 3:
        raise ValueError(f"x has {len(distinct)} distinct samples: needs at least 3")
    neighbour_notes = [f"{dropped:,} duplicate samples dropped"] if dropped else []

    estimators: list[tuple[str, Callable[[], float], list[str]]] = [
        (
            "TwoNN",
            lambda: skdim.id.TwoNN().fit(distinct).dimension_,
            ["10% largest ratios discarded", *neighbour_notes],
        ),
        (
            "MLE",
            lambda: skdim.id.MLE().fit(distinct).dimension_,
            ["20 neighbours", *neighbour_notes],
        ),
        ("lPCA", lambda: _lpca(skdim, data), ["eigenvalues > 5% of the largest"]),
        (
            f"PCA {variance:.0%}",
            lambda: pca_count(data, variance),
            [f"components explaining {variance:.0%} of the variance"],
        ),
    ]
    rows = []
    for name, estimate, notes in estimators:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            dimension = float(estimate())
            seconds = time.perf_counter() - start
        said = {str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()}
        rows.append(
            {
                "estimator": name,
                "dimension": dimension,
                "seconds": seconds,
                "notes": "; ".join([*common, *notes, *sorted(said)]),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))
