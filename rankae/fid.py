"""FID with pytorch-fid's InceptionV3 (2048-d pool3 features), offline, with cached statistics.

Preprocessing (fixed, recorded in `PREPROCESSING` and in every cache key): images are
float tensors (n, c, 32, 32) with c in {1, 3} and values in [0, 1]; values outside are
clipped, as writing them to image files would (the decoder ends in Tanh); grayscale is
repeated to 3 channels; then pytorch-fid's own default preprocessing inside
`InceptionV3(resize_input=True, normalize_input=True)`: bilinear resize to 299x299
(`F.interpolate`, align_corners=False) and scaling [0, 1] -> [-1, 1]. This is the paper's
"pytorch-fid", not the TF-style resize of the original TTUR code, which gives slightly
different numbers. The network always runs in float32, whatever the autoencoder's dtype.

FID is biased upwards at small n and only comparable between runs with equal sample
counts (and the same reference set): CPU smoke runs use a few hundred samples, and
their FIDs must never be compared with full 10,000-sample ones. With fewer samples than
feature dimensions (2048) the covariances are singular; pytorch-fid's
`calculate_frechet_distance` still returns a number, but it is noisier still.

Reference statistics (e.g. of the training set) are computed once and cached on disk,
keyed by the images' bytes, the preprocessing and the weights file, so a change in any
of them can never reuse a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pytorch_fid.inception import InceptionV3
from tqdm.auto import tqdm

from tools.fid_weights import cache_root, ensure_inception_weights, file_sha256

FEATURE_DIM = 2048
PREPROCESSING = (
    "v1 pytorch-fid-0.3.0 InceptionV3 pool3 2048-d float32; input [0,1] clipped; "
    "gray repeated to RGB; bilinear resize to 299 align_corners=False; [0,1]->[-1,1]"
)
PROGRESS_MIN_IMAGES = 1000  # show a progress bar from this many images on
# KID's subsets: the common choice (torch-fidelity, clean-fid) is 100 subsets of 1,000
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


@dataclass(frozen=True)
class Stats:
    """Mean and covariance of Inception features, and how many images they came from."""

    mu: np.ndarray  # (2048,) float64
    sigma: np.ndarray  # (2048, 2048) float64
    n: int
    # sigma = factor.T @ factor when kept (centred features / sqrt(n - 1)); lets FID work in
    # n x n instead of 2048 x 2048 when a set has fewer images than feature dimensions
    factor: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ReferenceStats:
    """Cached reference statistics and features; cache_hit: whether they were read from disk."""

    stats: Stats
    cache_hit: bool
    path: Path
    features: np.ndarray  # (n, 2048) float32: KID needs the samples, not only the moments


class InceptionFeatureExtractor:
    """pytorch-fid's InceptionV3 in eval mode, float32, returning 2048-d pool3 features.

    Builds the offline weights first (`ensure_inception_weights`), so pytorch-fid finds
    them in torch.hub's cache and never downloads. `preprocessing` (= PREPROCESSING) and
    `weights_sha256` go into every reference-statistics cache key: bump PREPROCESSING's
    version whenever the pipeline changes.
    """

    def __init__(self, device: torch.device | str | None = None, batch_size: int = 50) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid: must be >= 1")
        weights = ensure_inception_weights()
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.batch_size = batch_size
        self.preprocessing = PREPROCESSING
        self.weights_sha256 = file_sha256(weights)
        block = InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]
        self.model = InceptionV3([block], resize_input=True, normalize_input=True)
        self.model.to(self.device, torch.float32).eval()

    def features(self, images: torch.Tensor, progress: bool | None = None) -> np.ndarray:
        """(n, 2048) float32 features; progress None shows a bar from 1,000 images on."""
        _check_images(images)
        n = images.shape[0]
        show = n >= PROGRESS_MIN_IMAGES if progress is None else progress
        out = []
        with torch.inference_mode():
            for start in tqdm(range(0, n, self.batch_size), desc="FID features", disable=not show):
                batch = images[start : start + self.batch_size]
                batch = batch.to(self.device, torch.float32).clamp(0.0, 1.0)
                if batch.shape[1] == 1:
                    batch = batch.expand(-1, 3, -1, -1)
                out.append(self.model(batch)[0].flatten(1))
        return torch.cat(out).cpu().numpy()


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] < 2:
        raise ValueError(
            f"images of shape {tuple(images.shape)} are invalid: need (n >= 2, 1 or 3, h, w)"
        )
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf: FID is undefined (did the model diverge?)")


def feature_statistics(features: np.ndarray) -> Stats:
    """Mean and covariance (rows are samples), as pytorch-fid computes them, in float64."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"features of shape {feats.shape} are invalid: need (n >= 2, dim)")
    n = feats.shape[0]
    mu = feats.mean(axis=0)
    factor = (feats - mu) / np.sqrt(n - 1) if n <= feats.shape[1] else None
    return Stats(mu=mu, sigma=np.cov(feats, rowvar=False), n=n, factor=factor)


def frechet_distance(stats_a: Stats, stats_b: Stats, device: torch.device | str = "cpu") -> float:
    """d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2), as pytorch-fid defines it.

    tr((S_a S_b)^1/2) is the sum of square roots of the eigenvalues of S_a S_b, which are
    those of a symmetric PSD matrix: F S_b F^T (n x n) when S_a = F^T F is known from fewer
    than 2048 images, else S_a^1/2 S_b S_a^1/2 (2048 x 2048). Exact (tested against
    pytorch-fid's `calculate_frechet_distance`), but symmetric eigendecompositions in torch
    replace scipy's general `sqrtm`: milliseconds for smoke-size sets on a CPU, and fast on a
    GPU for the paper's 10,000 samples. Tiny negative eigenvalues (round-off) count as zero.
    Only comparable between sets of equal sample counts.
    """
    if stats_a.factor is None and stats_b.factor is not None:
        stats_a, stats_b = stats_b, stats_a
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
    sigma_a, sigma_b = as_tensor(stats_a.sigma), as_tensor(stats_b.sigma)
    if stats_a.factor is not None:
        factor = as_tensor(stats_a.factor)
        middle = factor @ sigma_b @ factor.T
    else:
        values, vectors = torch.linalg.eigh(sigma_a)
        root = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
        middle = root @ sigma_b @ root
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    mean_gap = float(np.sum((stats_a.mu - stats_b.mu) ** 2))
    return mean_gap + float(sigma_a.trace() + sigma_b.trace() - 2 * cross)


def images_sha256(images: torch.Tensor) -> str:
    """Hash of the exact float32 data the extractor would see (shape included)."""
    data = images.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.sha256(str(tuple(data.shape)).encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def default_stats_dir() -> Path:
    return cache_root() / "fid_stats"


def reference_statistics(
    name: str,
    images: torch.Tensor,
    extractor: InceptionFeatureExtractor,
    cache_dir: str | Path | None = None,
) -> ReferenceStats:
    """Statistics and features of a reference set, computed once and cached as npz.

    The key hashes the image data, `extractor.preprocessing` and the weights file's
    sha256; name only makes the file findable. A stored file is used only if its
    recorded key matches in full.
    """
    key_fields = {
        "images": images_sha256(images),
        "preprocessing": extractor.preprocessing,
        "weights_sha256": extractor.weights_sha256,
    }
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_stats_dir()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    path = folder / f"{safe}-{key[:16]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            if str(stored["key"]) == key and "features" in stored:
                stats = Stats(mu=stored["mu"], sigma=stored["sigma"], n=int(stored["n"]))
                features = stored["features"]
                return ReferenceStats(stats, cache_hit=True, path=path, features=features)
    features = extractor.features(images)
    stats = feature_statistics(features)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.name + ".", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is meant to be shared
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                mu=stats.mu,
                sigma=stats.sigma,
                n=stats.n,
                features=features,
                key=key,
                key_fields=json.dumps(key_fields, sort_keys=True),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ReferenceStats(stats, cache_hit=False, path=path, features=features)


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / dim + 1)^3, the kernel of KID (Binkowski et al. 2018, Sec. 3)."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimator of MMD^2 (Gretton et al. 2012, Eq. 3) with the KID kernel:
    mean off-diagonal k(x, x') + mean off-diagonal k(y, y') - 2 mean k(x, y)."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kernel_inception_distance(
    samples: np.ndarray, reference: np.ndarray, subsets: int, seed: int = 0
) -> tuple[float, float]:
    """KID: the unbiased MMD^2 over `subsets` random subset pairs (each of the smaller set's
    size, at most KID_SUBSET_SIZE), mean and sd. Unlike FID it has no small-sample bias, so
    values from a few hundred samples can be compared across runs."""
    x = np.asarray(samples, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    size = min(len(x), len(y), KID_SUBSET_SIZE)
    if size < 2:
        raise ValueError(f"KID needs >= 2 samples per set, got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    values = [
        unbiased_mmd2(x[rng.choice(len(x), size, replace=False)],
                      y[rng.choice(len(y), size, replace=False)])
        for _ in range(subsets)
    ]  # fmt: skip
    return float(np.mean(values)), float(np.std(values, ddof=1)) if subsets > 1 else 0.0


def image_scores(
    samples: torch.Tensor, reference: ReferenceStats, extractor: InceptionFeatureExtractor
) -> dict[str, float]:
    """FID (compare only at equal len(samples)) and KID with its sd over subsets."""
    features = extractor.features(samples)
    fid = frechet_distance(feature_statistics(features), reference.stats, extractor.device)
    kid, kid_sd = kernel_inception_distance(features, reference.features, KID_SUBSETS)
    return {"fid": fid, "kid": kid, "kid_sd": kid_sd}
