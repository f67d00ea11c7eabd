"""The latent rank against the field's intrinsic-dimension estimators, on data nobody here tuned on.

    python benchmarks/intrinsic_dimension.py --json id.json --threads 1  # all (~1 h, 2 cores)
    python benchmarks/intrinsic_dimension.py --only linear      # the sets whose name has this
    python benchmarks/intrinsic_dimension.py --smoke            # two tiny sets, smoke preset
    python benchmarks/intrinsic_dimension.py --speed [--baseline CHECKOUT]  # the 3,000 x 64 time

Datasets (n = 2,000 each, seeded; none was used to choose `rank_of`'s settings, which were
measured on `tools.example_data`'s equal-strength linear sets):
- scikit-dimension's `BenchmarkManifolds` (Hein & Audibert 2005; Campadelli et al. 2015),
  the five that fit 2 cores (affine 3 in 5, nonlinear 4 in 6 and 4 in 8, nonlinear 6 in
  36, the Swiss roll 2 in 3), at noise sd 0 and 0.05;
- linear data with power-law direction strengths (the i-th of r directions has strength
  3 i^-0.5, plus noise sd 0.05 in every feature) at r in {8, 16, 24}, D in {64, 256};
- a circle and a 2-sphere (unit radius, rotated into R^16, noise sd 0.05): closed manifolds,
  where the intrinsic dimension (1, 2) and the fewest linear code directions an autoencoder
  needs to encode them continuously (2, 3) differ by design;
- rendered images of one Gaussian blob on a 16 x 16 canvas at a random (x, y) position
  (two generative factors), as 256-pixel vectors.

Scoring, written before the first run: each estimator's number is compared with the
truth it targets. The field's estimators (TwoNN, MLE, GRIDE, DANCo, lPCA GD, PCA 95%) target
the intrinsic dimension. `rank_of` (`analysis.latent_rank.LatentRank`, the default laptop
preset) targets the latent code rank: the intrinsic dimension for linear sets and open
manifolds (a graph, a roll, a blob's position), one more for the circle and the sphere.
Per dataset and estimator: exact (the estimate rounded to an integer equals the target),
within +-1 (after rounding), within 10% (|estimate - target| <= 0.1 target), and the wall
time. A `rank_of` answer of "no single rank" (runs split) counts as a miss on all three;
"not converged" answers count with their rank and are flagged. The summary counts each
estimator's hits over all datasets; wins and losses are reported as they fall.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.intrinsic import estimate_intrinsic_dimension
from analysis.latent_rank import LatentRank

SAMPLES = 2000
NOISES = (0.0, 0.05)
MANIFOLDS = ("M2_Affine_3to5", "M3_Nonlinear_4to6", "M4_Nonlinear", "M6_Nonlinear", "M7_Roll")
POWER_RANKS, POWER_WIDTHS = (8, 16, 24), (64, 256)
STRENGTH, DECAY, NOISE_SD = 3.0, 0.5, 0.05  # direction i of r: STRENGTH * i^-DECAY
AMBIENT = 16  # the circle's and the sphere's embedding dimension
CANVAS, BLOB_SD = 16, 1.5  # the blob images: side in pixels, the blob's sd in pixels
SPEED_SHAPE = (3000, 64, 8)  # the speed target: n, D, and r of a power-law set
RANK_OF = "rank_of"


# -- the datasets: name -> (x, intrinsic dimension, code rank) -------------------------------
def manifold(name: str, noise: float, seed: int) -> np.ndarray:
    import skdim

    bench = skdim.datasets.BenchmarkManifolds(random_state=seed)
    d, dim = (int(v) for v in bench.truth.loc[name, ["Intrinsic Dimension", "Number of variables"]])
    x = bench.generate(name=name, n=SAMPLES, dim=dim, d=d)
    return x + noise * np.random.default_rng(seed).standard_normal(x.shape)


def power_law(rank: int, width: int, seed: int, n: int = SAMPLES) -> np.ndarray:
    """Rank-`rank` vectors whose i-th direction has strength STRENGTH * i^-DECAY, in a random
    orthonormal basis of R^width, plus noise NOISE_SD in every feature."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((width, rank)))[0].T
    strengths = STRENGTH * np.arange(1, rank + 1) ** -DECAY
    z = rng.standard_normal((n, rank)) * strengths
    return z @ basis + NOISE_SD * rng.standard_normal((n, width))


def sphere(dimension: int, seed: int) -> np.ndarray:
    """The unit `dimension`-sphere (1: a circle) rotated into R^AMBIENT, plus noise."""
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((SAMPLES, dimension + 1))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    rotation = np.linalg.qr(rng.standard_normal((AMBIENT, AMBIENT)))[0][: dimension + 1]
    return points @ rotation + NOISE_SD * rng.standard_normal((SAMPLES, AMBIENT))


def blobs(seed: int) -> np.ndarray:
    """One Gaussian blob per image at a uniform (x, y) inside the canvas, 256 pixels each."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(3, CANVAS - 4, size=(SAMPLES, 2))
    grid = np.arange(CANVAS)
    dy = (grid[None, :] - centres[:, :1]) ** 2
    dx = (grid[None, :] - centres[:, 1:]) ** 2
    images = np.exp(-(dy[:, :, None] + dx[:, None, :]) / (2 * BLOB_SD**2))
    return images.reshape(SAMPLES, -1)


def datasets(seed: int = 0) -> dict[str, Callable[[], tuple[np.ndarray, int, int]]]:
    """Every dataset, built on demand: name -> () -> (x, intrinsic dimension, code rank)."""
    import skdim

    truth = skdim.datasets.BenchmarkManifolds(random_state=seed).truth["Intrinsic Dimension"]
    out: dict[str, Callable[[], tuple[np.ndarray, int, int]]] = {}
    for width in POWER_WIDTHS:
        for rank in POWER_RANKS:
            out[f"linear power-law r={rank} D={width}"] = lambda r=rank, w=width: (
                power_law(r, w, seed),
                r,
                r,
            )
    out["circle in R^16"] = lambda: (sphere(1, seed), 1, 2)
    out["2-sphere in R^16"] = lambda: (sphere(2, seed), 2, 3)
    out["blob images 16x16 (x, y)"] = lambda: (blobs(seed), 2, 2)
    for name in MANIFOLDS:
        d = int(truth[name])
        for noise in NOISES:
            out[f"{name} noise {noise:g}"] = lambda n=name, s=noise, d=d: (
                manifold(n, s, seed),
                d,
                d,
            )
    return out


def smoke_datasets() -> dict[str, Callable[[], tuple[np.ndarray, int, int]]]:
    return {
        "linear power-law r=2 D=16 (smoke)": lambda: (power_law(2, 16, 0, n=300), 2, 2),
        "circle in R^16 (smoke)": lambda: (sphere(1, 0)[:300], 1, 2),
    }


# -- scoring --------------------------------------------------------------------------------
def scores(estimate: float, target: int) -> dict[str, bool]:
    """exact / within +-1 / within 10% of `target` (module docstring); NaN misses all three."""
    if math.isnan(estimate):
        return {"exact": False, "within 1": False, "within 10%": False}
    rounded = round(estimate)
    return {
        "exact": rounded == target,
        "within 1": abs(rounded - target) <= 1,
        "within 10%": abs(estimate - target) <= 0.1 * target,
    }


def score_dataset(
    name: str, x: np.ndarray, dimension: int, code_rank: int, preset: str
) -> list[dict[str, object]]:
    """Every estimator's row for one dataset: its estimate, target, scores and seconds."""
    rows = []
    for row in estimate_intrinsic_dimension(x).table.itertuples():
        rows.append(
            {
                "dataset": name,
                "estimator": row.estimator,
                "estimate": row.dimension,
                "error": row.error,
                "target": dimension,
                "seconds": row.seconds,
                "note": "",
                **scores(row.dimension, dimension),
            }
        )
    start = time.perf_counter()
    fitted = LatentRank(preset=preset).fit(x)
    seconds = time.perf_counter() - start
    answer = fitted.answer_
    note = fitted.verdict_
    rows.append(
        {
            "dataset": name,
            "estimator": RANK_OF,
            "estimate": fitted.dimension_,
            "error": math.nan,
            "target": code_rank,
            "seconds": seconds,
            "note": note,
            "converged": None if answer is None else answer.converged,
            "runs": "" if answer is None else answer.tally(),
            **scores(fitted.dimension_, code_rank),
        }
    )
    return rows


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per estimator: hits of each score over the datasets, and the median seconds."""
    grouped = rows.groupby("estimator", sort=False)
    return pd.DataFrame(
        {
            "datasets": grouped.size(),
            "exact": grouped["exact"].sum(),
            "within 1": grouped["within 1"].sum(),
            "within 10%": grouped["within 10%"].sum(),
            "median seconds": grouped["seconds"].median().round(1),
        }
    ).reset_index()


def estimates_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Datasets x estimators: each estimate (rank_of: its rank, or 'split'), the targets."""

    def shown(row: pd.Series) -> str:
        if math.isnan(row["estimate"]):
            return "split" if row["estimator"] == RANK_OF else "-"
        mark = "" if row["estimator"] != RANK_OF or row.get("converged") is not False else " nc"
        return (
            f"{row['estimate']:.0f}{mark}"
            if row["estimator"] == RANK_OF
            else f"{row['estimate']:.1f}"
        )

    table = rows.assign(shown=rows.apply(shown, axis=1)).pivot(
        index="dataset", columns="estimator", values="shown"
    )
    targets = rows.groupby("dataset")[["target"]].agg(list)
    table.insert(
        0, "ID / code rank", [f"{t[0]} / {t[-1]}" for t in targets.loc[table.index, "target"]]
    )
    return table.loc[list(dict.fromkeys(rows["dataset"]))].reset_index()


def header() -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{datetime.date.today()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {load}"
    )


# -- the speed target -------------------------------------------------------------------------
SPEED_SCRIPT = """
import sys, time, numpy as np
from analysis.latent_rank import LatentRank
x = np.load(sys.argv[1])
start = time.perf_counter()
fitted = LatentRank().fit(x)
print(f"{time.perf_counter() - start:.1f}", fitted.dimension_, "|", fitted.verdict_)
"""


def time_recipe(checkout: Path, data: Path) -> tuple[float, str]:
    """LatentRank's default fit of `data` with the package at `checkout`, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = (
        subprocess.run(
            [sys.executable, "-c", SPEED_SCRIPT, str(data)],
            env=env,
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    seconds, answer = out.split(" ", 1)
    return float(seconds), answer


def speed(baseline: Path | None) -> pd.DataFrame:
    """The 3,000 x 64 (rank 8, power law) answer's wall time: this checkout, and `baseline`
    (another checkout, e.g. the previous recipe's) in the same run."""
    n, width, rank = SPEED_SHAPE
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "x.npy"
        np.save(data, power_law(rank, width, 0, n=n).astype(np.float32))
        rows = []
        for label, checkout in (("this checkout", here), ("baseline", baseline)):
            if checkout is None:
                continue
            print(f"timing {label} ({checkout}) ...", file=sys.stderr, flush=True)
            seconds, answer = time_recipe(checkout, data)
            rows.append({"recipe": label, "seconds": seconds, "answer": answer})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write every row as JSON here")
    parser.add_argument("--only", help="only the datasets whose name contains this")
    parser.add_argument("--smoke", action="store_true", help="two tiny sets, smoke preset")
    parser.add_argument("--speed", action="store_true", help="time the 3,000 x 64 answer")
    parser.add_argument("--baseline", type=Path, help="--speed: a checkout to time as well")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# intrinsic-dimension benchmark: {header()}\n")
    if args.speed:
        timed = speed(args.baseline)
        print(timed.to_markdown(index=False))
        if args.json:
            args.json.write_text(json.dumps({"header": header(), "rows": timed.to_dict("records")}))
        return 0
    chosen = smoke_datasets() if args.smoke else datasets()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if args.only in k}
    preset = "smoke" if args.smoke else "laptop"
    rows: list[dict[str, object]] = []
    for i, (name, make) in enumerate(chosen.items(), start=1):
        x, dimension, code_rank = make()
        start = time.perf_counter()
        rows += score_dataset(name, x.astype(np.float32), dimension, code_rank, preset)
        print(
            f"[{i}/{len(chosen)}] {name}: rank_of {rows[-1]['estimate']} "
            f"(target {code_rank}) in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        if args.json:
            args.json.write_text(json.dumps({"header": header(), "rows": rows}, default=str))
    frame = pd.DataFrame(rows)
    print(estimates_table(frame).to_markdown(index=False))
    print()
    print(summary(frame).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
