"""Datasets of known (or well-studied) dimension, written as a `.npz` that `rank_of` reads.

    python -m tools.example_data digits digits.npz          # sklearn's 1,797 8x8 digits, labelled
    python -m tools.example_data linear linear4.npz --rank 4
    python -m tools.example_data curved curved3.npz --rank 3

- `linear`: x = z A + noise, z ~ N(0, I_r), A's r rows orthonormal times `SIGNAL_SCALE`
  (rank r exactly, every direction equally strong; labels: the sign of z's first entry);
- `curved`: x = tanh(`CURVE_SCALE` z B) + noise, B = A scaled so each feature's argument
  has unit variance: an r-dimensional curved manifold, not a subspace (for r = 3 a fourth
  principal direction holds 0.29 of the top singular value, so lPCA counts 4), yet
  invertible, z = B^+ atanh(x), so an autoencoder can unfold it into r numbers;

A's rows are r rows of a Hadamard matrix / sqrt(D) with random signs and order, so every
feature carries the same share of the signal: `rankae.userdata` standardises each feature,
which would turn a feature with almost no signal (a random basis has some) into one more
direction of pure noise.
- `digits`: sklearn's handwritten digits as 64-pixel vectors with their class labels.

The files hold `x` (float32) and `y` (int64 labels), the layout `rankae.userdata` reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SAMPLES, WIDTH = 2000, 32
SIGNAL_SCALE, NOISE_SD = 3.0, 0.05
CURVE_SCALE = 1.5  # tanh's input spread: about half the points sit on its bent part
KINDS = ("linear", "curved", "digits")


def linear(rank: int, n: int = SAMPLES, width: int = WIDTH, seed: int = 0):
    """(x, y): n rank-`rank` vectors of `width` (a power of 2) features (module docstring)."""
    z, basis, rng = _latent(rank, n, width, seed)
    x = z @ (basis * SIGNAL_SCALE) + NOISE_SD * rng.standard_normal((n, width))
    return x.astype(np.float32), (z[:, 0] > 0).astype(np.int64)


def curved(rank: int, n: int = SAMPLES, width: int = WIDTH, seed: int = 0):
    """(x, y): n points of a `rank`-dimensional tanh manifold in `width` features."""
    z, basis, rng = _latent(rank, n, width, seed)
    unit = basis * np.sqrt(width / rank)  # each feature's argument: variance 1
    x = np.tanh(CURVE_SCALE * z @ unit) + NOISE_SD * rng.standard_normal((n, width))
    return x.astype(np.float32), (z[:, 0] > 0).astype(np.int64)


def digits():
    """(x, y): sklearn's 1,797 digits, 64 pixel intensities (0-16) each, labels 0-9."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def _latent(rank: int, n: int, width: int, seed: int):
    """z (n, rank), A (rank, width) with orthonormal rows of equal-magnitude entries, the rng."""
    from scipy.linalg import hadamard

    if not 1 <= rank <= width:
        raise ValueError(f"rank={rank!r} is invalid: must be an integer 1 <= rank <= {width}")
    if width & (width - 1):
        raise ValueError(f"width={width!r} is invalid: must be a power of 2 (a Hadamard basis)")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, rank))
    rows = rng.permutation(width)[:rank]
    basis = hadamard(width)[rows] * rng.choice([-1.0, 1.0], width) / np.sqrt(width)
    return z, basis, rng


def write(kind: str, path: str | Path, rank: int = 4, seed: int = 0) -> Path:
    """Write dataset `kind` to `path` (.npz with x and y); returns the path."""
    x, y = (
        digits()
        if kind == "digits"
        else {"linear": linear, "curved": curved}[kind](rank, seed=seed)
    )
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: give a .npz file name (it holds x and y)")
    np.savez(path, x=x, y=y)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.example_data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("path", help="the .npz to write")
    parser.add_argument("--rank", type=int, default=4, help="linear/curved: the data's dimension r")
    parser.add_argument("--seed", type=int, default=0, help="linear/curved: the draw")
    args = parser.parse_args(argv)
    try:
        path = write(args.kind, args.path, args.rank, args.seed)
    except ValueError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    x = np.load(path)["x"]
    print(f"wrote {path}: {x.shape[0]:,} samples of {x.shape[1]} features with labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
