"""Shared presets of the named studies: the paper's protocols and their smoke versions."""

from __future__ import annotations

from rankae.config import RunConfig, linear_synthetic

MNIST_SEEDS = tuple(range(10))  # "All configurations ... were run with 10 random seeds"


def linear(smoke: bool) -> RunConfig:
    """App. B: full-batch GD, lr 0.03, 10,000 steps, float64, W_e initialised at c = 1e-3."""
    return linear_synthetic(epochs=60 if smoke else 100)  # x 100 steps per record


def images(dataset: str, smoke: bool, **changes) -> RunConfig:
    """App. C: Adam lr 1e-4, batch 32, 200 epochs, float64; downstream tasks at the end.

    The smoke preset keeps the code path (same model, optimiser, downstream tasks) on a
    few hundred images for a few epochs; its FID uses tens of samples, so it is biased and
    only comparable with other runs at the same sample count.
    """
    architecture = "cifar_conv" if dataset == "cifar10" else "mnist_conv"
    base = RunConfig(dataset=dataset, architecture=architecture, downstream=True)
    if smoke:
        base = base.replace(
            n_train=256,
            n_eval=256,
            epochs=3,
            patience=1,
            classifier_labels=100,
            classifier_epochs=30,
            fid_samples=48,
            fid_reference=96,
        )
    return base.replace(**changes).validate()
