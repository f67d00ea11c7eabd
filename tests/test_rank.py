"""Rank measures (Sec. 3.1): normalised singular values counted above a threshold."""

from __future__ import annotations

import pytest
import torch

from rankae.rank import (
    DEFAULT_THRESHOLD,
    code_rank,
    code_singular_values,
    matrix_rank,
    normalized_singular_values,
    rank_from_spectrum,
)


def with_spectrum(values: list[float], rows: int = 50, cols: int = 40, seed: int = 0):
    """A rows x cols matrix whose singular values are exactly `values` (then zeros)."""
    gen = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(rows, len(values), dtype=torch.float64, generator=gen))
    v, _ = torch.linalg.qr(torch.randn(cols, len(values), dtype=torch.float64, generator=gen))
    return u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T


SIGNAL = [10.0, 7.0, 4.0, 2.0, 0.5]  # rank 5; smallest normalised value 0.05


@pytest.mark.parametrize(
    ("noise_level", "expected"),
    [(0.0, 5), (0.005, 5), (0.009, 5), (0.011, 40), (0.05, 40)],
)
def test_matrix_rank_counts_values_above_one_percent_of_the_largest(
    noise_level: float, expected: int
) -> None:
    """Noise singular values just below / above 0.01 x the top one are left out / counted."""
    values = SIGNAL + [noise_level * SIGNAL[0]] * 35 if noise_level else SIGNAL
    matrix = with_spectrum(values)
    assert DEFAULT_THRESHOLD == 0.01
    assert matrix_rank(matrix) == expected


@pytest.mark.parametrize("std", [1e-4, 1.0])
def test_matrix_rank_with_gaussian_noise(std: float) -> None:
    """Known rank 5 plus i.i.d. noise: small noise keeps rank 5, large noise gives full rank."""
    gen = torch.Generator().manual_seed(1)
    noise = std * torch.randn(50, 40, dtype=torch.float64, generator=gen)
    assert matrix_rank(with_spectrum(SIGNAL) + noise) == (5 if std < 1e-2 else 40)


def test_normalized_spectrum_is_descending_and_starts_at_one() -> None:
    spectrum = normalized_singular_values(with_spectrum(SIGNAL))
    assert spectrum.shape == (40,)
    torch.testing.assert_close(spectrum[:5], torch.tensor(SIGNAL, dtype=torch.float64) / 10)
    assert torch.all(spectrum[5:] < 1e-12)
    assert torch.all(spectrum[:-1] >= spectrum[1:])
    zero = normalized_singular_values(torch.zeros(4, 3))
    assert torch.equal(zero, torch.zeros(3)) and rank_from_spectrum(zero) == 0


def test_threshold_is_configurable() -> None:
    spectrum = normalized_singular_values(with_spectrum(SIGNAL))  # 1, .7, .4, .2, .05
    assert [rank_from_spectrum(spectrum, t) for t in (0.01, 0.1, 0.3, 0.5, 0.9)] == [5, 4, 3, 2, 1]


def test_code_rank_centres_the_codes() -> None:
    """A constant offset shared by every code is not a latent direction."""
    codes = with_spectrum([5.0, 3.0, 1.0], rows=200, cols=16)
    codes = codes - codes.mean(dim=0, keepdim=True)
    shifted = codes + 0.5 * torch.ones(16, dtype=torch.float64)
    assert code_rank(codes) == 3
    assert code_rank(shifted) == 3
    assert matrix_rank(shifted) == 4  # without centring the offset would count
    torch.testing.assert_close(code_singular_values(shifted), code_singular_values(codes))


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_threshold_outside_the_open_unit_interval_is_rejected(threshold: float) -> None:
    with pytest.raises(ValueError, match=rf"threshold={threshold!r}.*between 0 and 1"):
        rank_from_spectrum(torch.ones(3), threshold)
