"""Time one trial's FID: Inception features of n decoded samples + the distance to cached stats.

    python benchmarks/fid_timing.py --samples 48        # CPU, smoke size (~20 s)
    python benchmarks/fid_timing.py --samples 10000     # GPU, the paper's size (target < 10 s)

Reference statistics are computed first (and cached, as in a study) and not timed; the timed
part is what every trial pays: features of its samples and the Frechet distance.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from rankae.data import load_images
from rankae.fid import (
    InceptionFeatureExtractor,
    feature_statistics,
    frechet_distance,
    reference_statistics,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=48)
    p.add_argument("--reference", type=int, default=96, help="MNIST training images for stats")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)

    extractor = InceptionFeatureExtractor(args.device)
    reference = load_images("mnist", "train", limit=args.reference)
    stats = reference_statistics(f"mnist-train-{args.reference}", reference.images, extractor)
    samples = torch.rand(args.samples, 1, 32, 32, generator=torch.Generator().manual_seed(0))

    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    features = extractor.features(samples)
    featured = time.perf_counter()
    fid = frechet_distance(feature_statistics(features), stats.stats)
    done = time.perf_counter()

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"# fid_timing: {time.strftime('%Y-%m-%dT%H:%M')}, {device}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads")  # fmt: skip
    print("| samples | features s | images/s | distance s | total s | FID (uniform noise) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.samples} | {featured - start:.2f} | {args.samples / (featured - start):.1f} "
        f"| {done - featured:.2f} | {done - start:.2f} | {fid:.1f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
