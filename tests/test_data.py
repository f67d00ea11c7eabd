"""Datasets: the synthetic low-rank generator (Sec. 3.1), MNIST offline, sklearn digits."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
import torch
from cifar10_fixture import write_cifar10

from rankae.data import (
    DATA_ROOT_ENV,
    SPLIT_SIZES,
    DataNotFoundError,
    ImageSet,
    load_images,
    synthetic_low_rank,
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_synthetic_shapes_and_defaults_are_the_papers() -> None:
    x = synthetic_low_rank()
    assert x.shape == (64, 256) and x.dtype == torch.float64  # n = 64, D = 256
    assert synthetic_low_rank(n=10, dim=20, rank=3, dtype=torch.float32).shape == (10, 20)
    assert synthetic_low_rank(dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("rank", [1, 8, 20])
def test_synthetic_signal_has_exactly_rank_r(rank: int) -> None:
    signal = synthetic_low_rank(rank=rank, noise=0.0, seed=3)
    assert torch.linalg.matrix_rank(signal).item() == rank
    assert torch.linalg.matrix_rank(synthetic_low_rank(rank=rank, seed=3)).item() == 64


def test_synthetic_noise_std_is_s() -> None:
    """eps = X - X1 X2 (same seed, s = 0) has standard deviation s and mean 0."""
    for s in (0.2, 1.0):
        eps = synthetic_low_rank(noise=s, seed=5) - synthetic_low_rank(noise=0.0, seed=5)
        assert eps.std().item() == pytest.approx(s, rel=0.03)
        assert abs(eps.mean().item()) < 0.03 * s


def test_synthetic_is_seeded() -> None:
    assert torch.equal(synthetic_low_rank(seed=7), synthetic_low_rank(seed=7))
    assert not torch.allclose(synthetic_low_rank(seed=7), synthetic_low_rank(seed=8))


@pytest.fixture(scope="module")
def mnist() -> dict[str, ImageSet]:
    return {split: load_images("mnist", split) for split in ("train", "test")}


@pytest.mark.parametrize(
    ("split", "counts"), [("train", MNIST_TRAIN_COUNTS), ("test", MNIST_TEST_COUNTS)]
)
def test_mnist_from_the_official_files(
    mnist: dict[str, ImageSet], split: str, counts: list[int]
) -> None:
    data = mnist[split]
    assert len(data) == sum(counts) == SPLIT_SIZES["mnist"][split]  # what the cost model prices
    assert data.images.shape == (len(data), 1, 32, 32) and data.images.dtype == torch.float32
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert data.images.max() > 0.99  # scaled to [0, 1], not left at [0, 255] or shrunk
    assert data.labels.dtype == torch.int64
    assert torch.bincount(data.labels, minlength=10).tolist() == counts


def test_mnist_limit_takes_the_first_images(mnist: dict[str, ImageSet]) -> None:
    head = load_images("mnist", "test", limit=512)
    assert len(head) == 512
    assert torch.equal(head.images, mnist["test"].images[:512])


def test_digits_need_no_download() -> None:
    train, test = load_images("digits", "train"), load_images("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 360  # every 5th image
    assert {"train": len(train), "test": len(test)} == SPLIT_SIZES["digits"]
    for data in (train, test):
        assert data.images.shape[1:] == (1, 32, 32)
        assert data.images.min() >= 0.0 and data.images.max() <= 1.0
        assert set(data.labels.tolist()) == set(range(10))


def test_cifar10_batches_are_read_in_their_own_on_disk_format(tmp_path) -> None:
    """(n, 3072) uint8 rows are R, G, B planes of 32x32, row-major: pixel (c, y, x) of image i."""
    import pickle

    folder = write_cifar10(tmp_path, per_train_batch=7, n_test=5)
    train, test = (
        load_images("cifar10", "train", tmp_path),
        load_images("cifar10", "test", tmp_path),
    )
    assert train.images.shape == (35, 3, 32, 32) and test.images.shape == (5, 3, 32, 32)
    with open(folder / "data_batch_2", "rb") as fh:
        second = pickle.load(fh, encoding="latin1")
    i, c, y, x = 3, 2, 17, 5
    assert train.images[7 + i, c, y, x] == second["data"][i, c * 1024 + y * 32 + x] / 255.0
    assert train.labels[7:14].tolist() == second["labels"]
    assert train.images.min() >= 0.0 and train.images.max() <= 1.0


@pytest.mark.parametrize(("name", "split"), [("imagenet", "train"), ("mnist", "validation")])
def test_unknown_dataset_or_split_is_named(name: str, split: str) -> None:
    bad = name if name == "imagenet" else split
    with pytest.raises(ValueError, match=rf"'{bad}'.*allowed are"):
        load_images(name, split)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every network attempt fails, so a test can never download anything."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("via", ["env", "argument"])
@pytest.mark.usefixtures("offline")
def test_missing_mnist_offline_says_where_to_put_it(
    tmp_path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    if via == "env":
        monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    with pytest.raises(DataNotFoundError) as info:
        load_images("mnist", "train", root=root if via == "argument" else None)
    message = str(info.value)
    assert f"data root {root}" in message
    assert str(root / "MNIST" / "raw") in message and DATA_ROOT_ENV in message
