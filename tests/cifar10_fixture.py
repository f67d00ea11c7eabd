"""A tiny CIFAR-10 in CIFAR-10's own on-disk format, for running the CIFAR studies offline.

`cifar-10-batches-py/` holds five pickled training batches, a test batch and
`batches.meta`, each a dict as in the official archive (`data`: (n, 3072) uint8, the R, G,
B planes of 32x32 images, row-major; `labels`: n ints). Each class is a smooth random colour
pattern plus pixel noise, so a classifier has something to learn; the numbers a study gets
from it mean nothing beyond "the code path runs".
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from rankae.data import CIFAR10_BATCHES, CIFAR10_FOLDER

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar10(root: Path, per_train_batch: int = 64, n_test: int = 256, seed: int = 0) -> Path:
    """Write the fixture under `root` (as torchvision would extract it); returns its folder."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(len(CLASSES), 3, 4, 4))
    patterns = coarse.repeat(8, axis=2).repeat(8, axis=3)  # (10, 3, 32, 32), blocky but distinct

    def batch(n: int, name: str) -> dict:
        labels = rng.integers(0, len(CLASSES), size=n)
        noisy = patterns[labels] + rng.normal(0, 25, size=(n, 3, 32, 32))
        data = np.clip(noisy, 0, 255).astype(np.uint8).reshape(n, 3072)
        return {"batch_label": name, "labels": labels.tolist(), "data": data,
                "filenames": [f"{name}_{i}.png" for i in range(n)]}  # fmt: skip

    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {name: per_train_batch for name in CIFAR10_BATCHES["train"]}
    sizes.update({name: n_test for name in CIFAR10_BATCHES["test"]})
    for name, n in sizes.items():
        with open(folder / name, "wb") as fh:
            pickle.dump(batch(n, name), fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(CLASSES), "num_vis": 3072}, fh)
    return folder
