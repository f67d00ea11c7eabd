"""Rank measures (Sec. 3.1): singular values normalised by the largest, counted above a threshold.

Spectra are returned alongside the counts so other rank definitions can be recomputed later.
The latent-code spectrum is that of the centred code matrix (n x d), not of its covariance
(whose singular values are the squares of these, so the same threshold would count fewer).
"""

from __future__ import annotations

import torch

DEFAULT_THRESHOLD = 0.01
# normalised singular values below this are numerical zeros, not directions: float32 codes
# and products of 32 matrices leave ~1e-6 of the largest where there is nothing
GAP_FLOOR = 1e-4


def normalize_spectrum(singular_values: torch.Tensor) -> torch.Tensor:
    """Divide descending singular values by the largest (all zeros for a zero matrix)."""
    top = singular_values[0] if singular_values.numel() else singular_values.new_zeros(())
    return singular_values / top if top > 0 else torch.zeros_like(singular_values)


def normalized_singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values of `matrix` divided by the largest."""
    return normalize_spectrum(torch.linalg.svdvals(matrix.detach()))


def centred_code_singular_values(codes: torch.Tensor) -> torch.Tensor:
    """Raw singular values of the centred code matrix (samples x latent dims)."""
    codes = codes.detach()
    return torch.linalg.svdvals(codes - codes.mean(dim=0, keepdim=True))


def code_singular_values(codes: torch.Tensor) -> torch.Tensor:
    """Normalised singular values of the centred code matrix."""
    return normalize_spectrum(centred_code_singular_values(codes))


def rank_from_spectrum(normalized: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> int:
    """Sec. 3.1: the number of normalised singular values that exceed the threshold."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold={threshold!r} is invalid: must lie strictly between 0 and 1")
    return int((normalized > threshold).sum())


def rank_at_gap(normalized: torch.Tensor, floor: float = GAP_FLOOR) -> tuple[int, float]:
    """The rank read where the spectrum has its largest gap, and that gap's size.

    Over the normalised values above `floor`, the r with the largest sigma_r / sigma_r+1
    (a value below the floor counts as the floor, so a spectrum that ends in numerical zeros
    has its gap at its last real direction). A threshold count can land inside a smooth
    decay; a large gap says the code really has r directions and a small one (~1) that it
    has no clear rank. (d, 1.0) when every value is above the floor with no gap among them.
    """
    if not 0 < floor < 1:
        raise ValueError(f"floor={floor!r} is invalid: must lie strictly between 0 and 1")
    values = [float(v) for v in normalized]
    best, gap = len(values), 1.0
    for r in range(1, len(values)):
        if values[r - 1] < floor:
            break
        ratio = values[r - 1] / max(values[r], floor)
        if ratio > gap:
            best, gap = r, ratio
    return best, gap


def matrix_rank(matrix: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> int:
    return rank_from_spectrum(normalized_singular_values(matrix), threshold)


def code_rank(codes: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> int:
    return rank_from_spectrum(code_singular_values(codes), threshold)
