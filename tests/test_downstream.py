"""Downstream tasks (App. C): labelled-set choice, the MLP classifier, GMM sampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rankae.data import load_images
from rankae.downstream import fit_gmm_and_sample, select_labelled, train_classifier


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", "train"), load_images("digits", "test")


def test_select_labelled_is_balanced_and_seeded(digits):
    labels = digits[0].labels
    idx = select_labelled(labels, 1000, seed=0)
    assert idx.unique().numel() == 1000
    assert torch.bincount(labels[idx]).tolist() == [100] * 10

    odd = select_labelled(labels, 1003, seed=0)
    counts = torch.bincount(labels[odd])
    assert sorted(counts.tolist()) == [100] * 7 + [101] * 3

    assert torch.equal(select_labelled(labels, 1000, seed=3), select_labelled(labels, 1000, 3))
    assert not torch.equal(select_labelled(labels, 1000, seed=3), idx)


def test_select_labelled_refuses_a_class_that_is_too_small():
    labels = torch.tensor([0] * 50 + [1] * 5)
    with pytest.raises(ValueError, match="class 1 has 5 examples"):
        select_labelled(labels, 20, seed=0)


def test_classifier_on_digit_pixels_beats_85_percent(digits):
    train, test = digits
    idx = select_labelled(train.labels, 1000, seed=0)
    result = train_classifier(train.images[idx], train.labels[idx], test.images, test.labels)
    assert result.test_acc.shape == (500,)
    assert result.acc_best > 0.85
    assert result.acc_selected > 0.85
    assert result.acc_best == result.test_acc.max() >= result.acc_selected
    assert result.acc_selected == result.test_acc[result.selected_epoch - 1]
    assert result.val_acc_selected == result.val_acc.max()


def test_selection_never_looks_at_test_labels(digits):
    train, test = digits
    idx = select_labelled(train.labels, 500, seed=1)
    x, y = train.images[idx], train.labels[idx]
    shuffled = test.labels[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))]
    kwargs = {"epochs": 40, "seed": 2}
    honest = train_classifier(x, y, test.images, test.labels, **kwargs)
    corrupted = train_classifier(x, y, test.images, shuffled, **kwargs)
    # What the test labels feed (reported test accuracy) changes completely ...
    assert corrupted.acc_best < 0.5 < honest.acc_best
    # ... while training and selection are identical.
    assert np.array_equal(honest.val_acc, corrupted.val_acc)
    assert np.array_equal(honest.val_loss, corrupted.val_loss)
    assert honest.selected_epoch == corrupted.selected_epoch
    assert corrupted.acc_selected == corrupted.test_acc[corrupted.selected_epoch - 1]


def _two_blobs(n: int = 2000) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    centre = torch.tensor([3.0, -1.0, 0.5, 2.0, 0.0, 1.0])
    mix = torch.randn(6, 6, generator=gen)
    a = torch.randn(n // 2, 6, generator=gen) @ mix + centre
    b = 0.5 * torch.randn(n // 2, 6, generator=gen) - centre
    return torch.cat([a, b])


def test_gmm_samples_have_the_codes_shape_dtype_and_seed():
    codes = _two_blobs().float()
    first = fit_gmm_and_sample(codes, 300, seed=0)
    assert first.shape == (300, 6) and first.dtype == torch.float32
    assert torch.equal(first, fit_gmm_and_sample(codes, 300, seed=0))
    assert not torch.equal(first, fit_gmm_and_sample(codes, 300, seed=1))
    assert fit_gmm_and_sample(codes.double(), 5, n_components=2).dtype == torch.float64


def test_gmm_samples_match_the_codes_mean_and_covariance():
    codes = _two_blobs().double()
    samples = fit_gmm_and_sample(codes, 20_000, seed=0)
    scale = codes.std(dim=0).max()
    assert (samples.mean(dim=0) - codes.mean(dim=0)).abs().max() < 0.05 * scale
    cov_codes, cov_samples = torch.cov(codes.T), torch.cov(samples.T)
    assert torch.linalg.norm(cov_samples - cov_codes) < 0.05 * torch.linalg.norm(cov_codes)
    # sklearn groups samples by component; ours are shuffled, so a prefix is a fair draw.
    head = samples[:2000]
    assert (head.mean(dim=0) - codes.mean(dim=0)).abs().max() < 0.15 * scale


def test_gmm_copes_with_rank_deficient_codes_of_large_scale():
    gen = torch.Generator().manual_seed(0)
    low_rank = torch.randn(1000, 10, generator=gen, dtype=torch.float64)
    codes = low_rank @ torch.randn(10, 64, generator=gen, dtype=torch.float64) * 1e4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = fit_gmm_and_sample(codes, 1000, seed=0)
    assert any("reg_covar" in str(w.message) for w in caught)
    assert torch.isfinite(samples).all() and samples.shape == (1000, 64)
    # The extra regularisation is tiny against the codes' spread: the rank-10 directions
    # carry nearly all the samples' variance.
    spectrum = torch.linalg.svdvals(samples - samples.mean(dim=0))
    assert spectrum[10] < 2e-3 * spectrum[0]
