"""Shared presets of the named studies: the paper's protocols and their smaller tiers.

Three tiers (`python -m study.run NAME --preset full|laptop|smoke`; `--smoke` is short for
`--preset smoke`): `full` is the paper's protocol (GPU-scale for images), `laptop` the same
code path on a training subset with enough steps for W_e's rank to settle (an hour or so
on 2 CPU cores; only the studies whose module lists it), `smoke` a few minutes that only
show the code path runs.
"""

from __future__ import annotations

from rankae.config import RunConfig, linear_synthetic

MNIST_SEEDS = tuple(range(10))  # "All configurations ... were run with 10 random seeds"
LAPTOP_SEEDS = (0, 1)
DESKTOP_SEEDS = (0, 1, 2)
# desktop: 80 epochs of the 6,000-image subset (188 steps each) = 15,040 optimiser steps;
# an independent full-data reference settled at W_e rank ~10 by ~9,000 steps
DESKTOP_EPOCHS = 80


def linear(preset: str) -> RunConfig:
    """App. B: full-batch GD, lr 0.03, 10,000 steps, float64, W_e initialised at c = 1e-3."""
    return linear_synthetic(epochs=60 if preset == "smoke" else 100)  # x 100 steps per record


def images(dataset: str, preset: str, **changes) -> RunConfig:
    """App. C: Adam lr 1e-4, batch 32, 200 epochs, float64; downstream tasks at the end.

    laptop: 6,000 training images x 20 epochs = 3,760 steps in float32 (ranks as in
    float64: docs/results.md), patience 940 steps (5 epochs of the subset; the paper's
    9,375 would exceed the run), 1,000 labels as in App. C, FID from 200 samples against
    1,000 training images. An independent run at this scale (N=16, alpha=300) reached
    latent rank 5 by step 3,750, still growing: the laptop tier shows where the rank is
    heading, not its 200-epoch value.

    desktop: the laptop subset for 15,040 steps (80 epochs; the rank settles: see
    DESKTOP_EPOCHS), single-stage (the two-stage switch for any patience is read from the
    logged per-epoch W_e ranks afterwards: `analysis.settle`), 3 seeds, FID and KID from 500
    samples against 1,000 training images.

    smoke: a few hundred images for a few epochs, the two-stage switch forced at epoch 2 so
    that stage 2 runs too; accuracy on 256 test images, FID from tens of samples. Both small
    tiers' FIDs are biased upwards and comparable only at the same sample count.
    """
    architecture = "cifar_conv" if dataset == "cifar10" else "mnist_conv"
    base = RunConfig(dataset=dataset, architecture=architecture, downstream=True)
    if preset in ("laptop", "desktop"):
        base = base.replace(
            n_train=6000,
            n_eval=1000,
            epochs=20,
            dtype="float32",
            patience_steps=940,
            classifier_labels=1000,
            fid_samples=200,
            fid_reference=1000,
        )
    if preset == "desktop":
        base = base.replace(epochs=DESKTOP_EPOCHS, fid_samples=500)
    elif preset == "smoke":
        base = base.replace(
            n_train=256,
            n_eval=256,
            epochs=3,
            patience_steps=8,  # one epoch of 256 images
            force_switch_epoch=2,  # two-stage studies reach stage 2 within the 3 epochs
            classifier_labels=100,
            classifier_epochs=30,
            classifier_test=256,  # encoding all 10,000 test images was ~5 s of a ~20 s trial
            fid_samples=24,
            fid_reference=48,
        )
    return base.replace(**changes).validate()
