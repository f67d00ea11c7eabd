"""Established intrinsic-dimension estimates of a dataset, to set beside the latent rank.

The autoencoder's implicit rank is one answer to "how many dimensions does this data
have?"; these are the field's, run with scikit-dimension (`skdim`) and scikit-learn as
their authors run them. Each is one row of the panel:
- `TwoNN` (Facco et al. 2017): the ratios of 2nd to 1st nearest-neighbour distances follow
  Pareto(d); a line fitted to their distribution, the 10% largest ratios discarded. The
  manifold's dimension at the smallest scale: noise at that scale fills every direction and
  pushes it up; curvature, small samples and large d (>~10) pull it down.
- `MLE` (Levina & Bickel 2005), 20 neighbours, the per-point estimates pooled as
  MacKay & Ghahramani's harmonic mean: the same quantity over 20 neighbours, so less
  sensitive to noise than TwoNN and, like it, biased low for large d and small samples.
- `GRIDE` (Denti et al. 2022): the likelihood of the ratio of the 2 n1-th to the n1-th
  neighbour distance, at n1 = 4 (n2 = 8), with its standard error from the Fisher
  information (statistical only, not the bias). The dimension as a function of scale:
  n1 = 1, 2, ..., 32 are kept for the ID-vs-scale figure (n1 = 1 is TwoNN's likelihood);
  small scales over-count noise, large ones see curvature and changes of density.
- `DANCo` (Ceruti et al. 2014): the norms and angles of 10 neighbours compared (KL) with
  those of uniform balls of each dimension 1..min(D, 100), the balls' statistics from
  skdim's precomputed calibration table (`ver="DANCoFit"`: the simulated calibration takes
  10-20 s at 1,000 samples, the table ~1 s at 5,000; it covers 20..5,000 samples and
  dimensions up to 100). Less biased low for large d than TwoNN and MLE; noise in every
  direction pushes it up more than them.
- `lPCA GD` (Gavish & Donoho 2014): PCA eigenvalues above the optimal hard threshold for a
  low-rank signal in white noise, the noise level from the median eigenvalue. A linear
  signal rank, not a manifold's dimension: it counts a curved manifold's directions above
  the noise, drops directions weaker than about the noise, and reads 0 on noiseless
  low-rank data (the median eigenvalue is then a signal one); it assumes iid noise.
- `PCA 95%` (scikit-learn `PCA(n_components=0.95)`): the fewest principal components that
  explain more than 95% of the variance. Linear too: over-counts curved manifolds, counts
  noise directions when noise holds more than 5% of the variance, depends on the features'
  scales.

Every row uses the same samples: all, or `max_samples` drawn with the seed
(`sample_indices`), so two sources of as many rows (inputs and their codes) get the same
rows; DANCo at most `DANCO_MAX_SAMPLES` of them. Duplicate samples are dropped for the
neighbour-based four (a zero distance has no ratio). The first DANCo of a process also
compiles skdim's numba helper (~2.5 s, in its `seconds`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

MAX_SAMPLES = 5000  # every estimator stays seconds on 2 cores at this size (see DANCo's)
# DANCo's calibration table covers 20..5,000 samples, so 5,000 is its cap; no smaller one is
# needed. Measured on 2 cores (a curved 10-manifold plus noise, skdim 0.5, numba compiled):
# with the table 0.1-0.3 / 0.2-0.4 / 0.4-0.5 s at 1,000 / 2,000 / 5,000 samples in D = 64 and
# 0.1-0.4 / 0.3-0.6 / 1.3-1.5 s in D = 784; the simulated calibration (ver="DANCo") took
# 11.5 s at 1,000 samples and 19.5 s at 2,000 in D = 64, 19.6 s at 1,000 in D = 784.
DANCO_MAX_SAMPLES = 5000
DANCO_MAX_DIMENSION = 100  # the table's largest dimension
MIN_SAMPLES = 20  # DANCo's table starts at 20 samples; fewer say little about a dimension
MLE_NEIGHBOURS = 20
GRIDE_N1 = 4  # the reported scale (n2 = 8): past the nearest pairs, where noise weighs most
GRIDE_RANGE = 64  # the largest neighbour order of the per-scale estimates (skdim's default)
PCA_VARIANCE = 0.95
NO_ERROR = math.nan  # the error of an estimator that gives none
COLUMNS = ("estimator", "dimension", "error", "seconds", "notes")
SCALE_COLUMNS = ("n1", "n2", "radius", "dimension", "error")


@dataclass(frozen=True)
class Panel:
    """The estimators' rows (`COLUMNS`) and GRIDE's estimate per scale (`SCALE_COLUMNS`:
    neighbour orders, mean distance to the n2-th neighbour, dimension, standard error)."""

    table: pd.DataFrame
    scales: pd.DataFrame


def sample_indices(n: int, max_samples: int = MAX_SAMPLES, seed: int = 0) -> np.ndarray:
    """The rows the panel uses of `n` samples, in their order: all of them, or `max_samples`
    drawn without replacement with `seed`. The same (n, max_samples, seed) give the same rows,
    which is how the inputs and a model's codes of them are estimated on the same samples."""
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))


def _distinct(data: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The rows without their repeats, in order, and the note saying how many went:
    duplicates give zero neighbour distances, which the ratio estimators cannot use."""
    _, first = np.unique(data, axis=0, return_index=True)
    dropped = len(data) - len(first)
    return data[np.sort(first)], [f"{dropped:,} duplicate samples dropped"] if dropped else []


def _danco_input(data: np.ndarray, seed: int) -> tuple[np.ndarray, list[str]]:
    """DANCo's samples: at most `DANCO_MAX_SAMPLES` of the panel's (seeded), without repeats,
    and the notes that say so."""
    rows = sample_indices(len(data), DANCO_MAX_SAMPLES, seed)
    distinct, dropped = _distinct(data[rows])
    cap = [f"on {len(rows):,} of them (the calibration table's limit)"]
    return distinct, [*(cap if len(rows) < len(data) else []), *dropped]


def _with_error(fitted: Any) -> tuple[float, float]:
    return fitted.dimension_, fitted.error_


def _lpca_gd(skdim: ModuleType, data: np.ndarray) -> tuple[float, float]:
    """lPCA's Gavish-Donoho rank. Its eigenvalue gaps, unused by this rule, divide by the zero
    eigenvalues of constant features (digits' blank corners): that warning is noise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return skdim.id.lPCA(ver="GD").fit(data).dimension_, NO_ERROR


def _pca_count(data: np.ndarray, variance: float) -> tuple[float, float]:
    from sklearn.decomposition import PCA

    return PCA(n_components=variance).fit(data).n_components_, NO_ERROR


def _check(data: np.ndarray, max_samples: int, variance: float) -> None:
    """One-line ValueErrors for input the estimators cannot use."""
    n, dim = data.shape
    if n < MIN_SAMPLES or dim < 2:
        raise ValueError(
            f"x has shape {data.shape}: needs at least {MIN_SAMPLES} samples and 2 features"
        )
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise ValueError(f"x holds {bad:,} NaN or inf values: remove or impute them first")
    if not 0 < variance < 1:
        raise ValueError(f"variance={variance!r} is invalid: must lie in (0, 1)")
    if max_samples < MIN_SAMPLES:
        raise ValueError(
            f"max_samples={max_samples!r} is invalid: must be an integer >= {MIN_SAMPLES}"
        )


def _timed(estimate: Callable[[], tuple[float, float]]) -> tuple[float, float, float, list[str]]:
    """(dimension, error, wall seconds, the first line of each warning it raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        dimension, error = estimate()
        seconds = time.perf_counter() - start
    said = {str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()}
    return float(dimension), float(error), seconds, sorted(said)


def estimate_intrinsic_dimension(
    x: np.ndarray, seed: int = 0, max_samples: int = MAX_SAMPLES, variance: float = PCA_VARIANCE
) -> Panel:
    """TwoNN, MLE, GRIDE, DANCo, lPCA GD and the PCA variance count on `x` (n, ...),
    flattened to (n, D), on the rows `sample_indices(n, max_samples, seed)`.

    Returns the `Panel`: one row per estimator (`estimator`, `dimension`, `error`: GRIDE's
    standard error, NaN for the others, `seconds`: wall time, `notes`: the samples used, the
    setting, any warning raised) and GRIDE's per-scale estimates.
    """
    import skdim  # imported here: numba's start-up is seconds, only this needs it

    data = np.asarray(x, dtype=np.float64)
    if data.ndim < 2:
        raise ValueError(f"x has shape {data.shape}: allowed is (n, D) or (n, ...) images")
    data = data.reshape(len(data), -1)
    _check(data, max_samples, variance)
    n, dim = data.shape
    data = data[sample_indices(n, max_samples, seed)]
    common = [f"on {len(data):,} of {n:,} samples (seed {seed})"] if len(data) < n else []
    distinct, dropped = _distinct(data)
    if len(distinct) < MIN_SAMPLES:
        raise ValueError(f"x has {len(distinct)} distinct samples: needs at least {MIN_SAMPLES}")
    danco_data, danco_notes = _danco_input(data, seed)
    danco_dimension = min(dim, DANCO_MAX_DIMENSION)
    gride = skdim.id.GRIDE(n1=GRIDE_N1, multiscale=True, range_max=GRIDE_RANGE)

    estimators: list[tuple[str, Callable[[], tuple[float, float]], list[str]]] = [
        (
            "TwoNN",
            lambda: (skdim.id.TwoNN().fit(distinct).dimension_, NO_ERROR),
            ["linear fit, 10% largest ratios discarded", *dropped],
        ),
        (
            "MLE",
            lambda: (
                skdim.id.MLE().fit(distinct, n_neighbors=MLE_NEIGHBOURS).dimension_,
                NO_ERROR,
            ),
            [f"{MLE_NEIGHBOURS} neighbours, harmonic mean of the local estimates", *dropped],
        ),
        (
            "GRIDE",
            lambda: _with_error(gride.fit(distinct)),
            [
                f"at n1 = {GRIDE_N1}, n2 = {2 * GRIDE_N1} neighbours; error: its standard error",
                *dropped,
            ],
        ),
        (
            "DANCo",
            lambda: (
                skdim.id.DANCo(ver="DANCoFit", D=danco_dimension).fit(danco_data).dimension_,
                NO_ERROR,
            ),
            [
                f"10 neighbours, dimensions 1-{danco_dimension} from skdim's calibration table",
                *danco_notes,
            ],
        ),
        (
            "lPCA GD",
            lambda: _lpca_gd(skdim, data),
            ["Gavish-Donoho threshold, noise from the median eigenvalue (0 if noiseless)"],
        ),
        (
            f"PCA {variance:.0%}",
            lambda: _pca_count(data, variance),
            [f"fewest components explaining more than {variance:.0%} of the variance"],
        ),
    ]
    rows = []
    for name, estimate, notes in estimators:
        dimension, error, seconds, said = _timed(estimate)
        rows.append(
            {
                "estimator": name,
                "dimension": dimension,
                "error": error,
                "seconds": seconds,
                "notes": "; ".join([*common, *notes, *said]),
            }
        )
    scales = pd.DataFrame(
        {
            "n1": gride.scales_,
            "n2": 2 * gride.scales_,
            "radius": gride.radius_scales_,
            "dimension": gride.dimension_scales_,
            "error": gride.error_scales_,
        },
        columns=list(SCALE_COLUMNS),
    )
    return Panel(pd.DataFrame(rows, columns=list(COLUMNS)), scales)
