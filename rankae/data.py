"""Datasets as whole tensors: the synthetic low-rank data, MNIST, CIFAR-10, sklearn digits.

Images come back as float32 tensors of shape (n, channels, 32, 32) in [0, 1] with int64
labels; callers move them to the training device and dtype once (no per-batch host copies).

MNIST and CIFAR-10 are downloaded by torchvision, which checks their md5 sums; CIFAR-10's
extracted python batches are then read here, in their own on-disk format. The data root is
`$RANKSTUDY_DATA_ROOT`, or `~/.cache/rankstudy/data`. torchvision finds the official MNIST
.gz files already placed in `<root>/MNIST/raw/` and does not go online (that is how CI runs
offline).
"""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

IMAGE_SIZE = 32
DATA_ROOT_ENV = "RANKSTUDY_DATA_ROOT"
SPLITS = ("train", "test")
# Images per split of each named dataset, what the cost model prices without loading them:
# the official splits, and sklearn's 1,797 digits with every 5th image as the test split
# (`_load_digits`; tests/test_data.py checks each against what its loader returns)
SPLIT_SIZES = {
    "mnist": {"train": 60_000, "test": 10_000},
    "cifar10": {"train": 50_000, "test": 10_000},
    "digits": {"train": 1_437, "test": 360},
}


class DataNotFoundError(RuntimeError):
    """A dataset is neither on disk nor downloadable; the message says how to get it."""


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # (n, c, 32, 32), values in [0, 1]; or a user's vectors (n, D)
    labels: torch.Tensor  # (n,), int64

    def __len__(self) -> int:
        return self.images.shape[0]

    def head(self, n: int | None) -> ImageSet:
        return self if n is None else ImageSet(self.images[:n], self.labels[:n])

    def to(self, device: torch.device | str, dtype: torch.dtype) -> ImageSet:
        return ImageSet(self.images.to(device=device, dtype=dtype), self.labels.to(device))


def synthetic_low_rank(
    n: int = 64,
    dim: int = 256,
    rank: int = 8,
    noise: float = 0.2,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """X = X1 X2 + eps (Sec. 3.1): X1 (n x r), X2 (r x D) standard Gaussian, eps ~ N(0, s^2)."""
    gen = torch.Generator().manual_seed(seed)
    x1 = torch.randn(n, rank, generator=gen, dtype=torch.float64)
    x2 = torch.randn(rank, dim, generator=gen, dtype=torch.float64)
    eps = noise * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return (x1 @ x2 + eps).to(dtype)


def default_data_root() -> Path:
    root = os.environ.get(DATA_ROOT_ENV)
    return Path(root) if root else Path.home() / ".cache" / "rankstudy" / "data"


def load_images(
    name: str, split: str = "train", root: str | Path | None = None, limit: int | None = None
) -> ImageSet:
    """Load an image dataset by name as 32x32 tensors in [0, 1]."""
    loaders = {"mnist": _load_mnist, "cifar10": _load_cifar10, "digits": _load_digits}
    if name not in loaders:
        raise ValueError(
            f"dataset={name!r} is not an image dataset: allowed are {', '.join(loaders)}"
        )
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not known: allowed are {', '.join(SPLITS)}")
    return loaders[name](split, Path(root) if root else default_data_root(), limit)


def upsample_to_32(images: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of (n, c, h, w) images in [0, 1] to 32x32 (as torchvision's Resize(32))."""
    if images.shape[-1] == IMAGE_SIZE:
        return images
    out = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return out.clamp_(0.0, 1.0)


def _torchvision_dataset(cls_name: str, split: str, root: Path, how_to_get: str):
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    # the topmost folder the download would create: removed again if it fails, so a
    # rejected command leaves nothing behind
    created = next((p for p in reversed((root, *root.parents)) if not p.exists()), None)
    try:
        return cls(str(root), train=split == "train", download=True)
    except (RuntimeError, OSError) as err:  # URLError is an OSError
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataNotFoundError(
            f"{cls_name} is not under data root {root} and could not be downloaded "
            f"({reason.rstrip(':')}). "
            f"{how_to_get} or set ${DATA_ROOT_ENV} to a root that has it."
        ) from err


def _load_mnist(split: str, root: Path, limit: int | None) -> ImageSet:
    ds = _torchvision_dataset(
        "MNIST",
        split,
        root,
        f"Put the four official MNIST .gz files in {root / 'MNIST' / 'raw'}",
    )
    # the first `limit` images only are converted and resized (a subset is the usual case)
    images = ds.data[:limit].unsqueeze(1).float().div_(255.0)
    return ImageSet(upsample_to_32(images), ds.targets[:limit].long())


CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


def _load_cifar10(split: str, root: Path, limit: int | None) -> ImageSet:
    files = [root / CIFAR10_FOLDER / name for name in CIFAR10_BATCHES[split]]
    if not all(f.is_file() for f in files):  # torchvision downloads, md5-checks, extracts
        _torchvision_dataset(
            "CIFAR10",
            split,
            root,
            f"Put cifar-10-python.tar.gz (or its extracted {CIFAR10_FOLDER}/) in {root}",
        )
    return read_cifar10_batches(files).head(limit)


def read_cifar10_batches(files: list[Path]) -> ImageSet:
    """CIFAR-10's python format: pickled dicts, `data` (n, 3072) uint8 as R, G, B planes."""
    images, labels = [], []
    for path in files:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")
        images.append(torch.as_tensor(batch["data"], dtype=torch.uint8).reshape(-1, 3, 32, 32))
        labels.append(torch.as_tensor(batch["labels"], dtype=torch.long))
    return ImageSet(torch.cat(images).float().div_(255.0), torch.cat(labels))


def _load_digits(split: str, root: Path, limit: int | None) -> ImageSet:
    """sklearn's 1,797 8x8 digits (ships with sklearn); every 5th image is the test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    is_test = torch.arange(len(labels)) % 5 == 0
    keep = is_test if split == "test" else ~is_test
    return ImageSet(upsample_to_32(images[keep][:limit]), labels[keep][:limit])
