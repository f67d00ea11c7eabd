"""One run's configuration: a flat, typed, validated record.

Every value a trial can vary lives here, so the study service, the command line and
MLflow all speak the same names. Defaults are the paper's MNIST protocol (App. C);
the linear synthetic experiment (App. B) overrides them (see `linear_synthetic()`).
Validation happens once, in `RunConfig.validate()`, with messages a person can act on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

DATASETS = ("synthetic", "digits", "mnist", "cifar10")
ARCHITECTURES = ("linear", "mnist_conv", "cifar_conv")
BOTTLENECKS = ("vanilla", "linear_net", "explicit")
INITS = ("standard", "he_normal", "orthogonal")
OPTIMIZERS = ("gd", "adam")
DTYPES = ("float64", "float32")


class ConfigError(ValueError):
    """A configuration value is out of its allowed range; the message names both."""


@dataclass(frozen=True)
class RunConfig:
    """Everything one autoencoder run needs. Field names are the `--set` keys."""

    # --- data -------------------------------------------------------------------
    dataset: str = "mnist"
    data_root: str | None = None  # None: $RANKSTUDY_DATA_ROOT or ~/.cache/rankstudy/data
    n_train: int | None = None  # training images used (None: the whole split)
    n_eval: int = 10_000  # test images whose codes give the latent spectrum
    data_seed: int = 0  # synthetic data draw (independent of the model seed)
    synth_samples: int = 64  # n in Sec. 3.1
    synth_dim: int = 256  # D
    synth_rank: int = 8  # r
    synth_noise: float = 0.2  # s

    # --- model ------------------------------------------------------------------
    architecture: str = "mnist_conv"
    latent_dim: int = 128  # d
    bottleneck: str = "linear_net"
    init: str = "orthogonal"
    depth: int = 16  # N
    alpha: float = 1.0
    init_scale: float = 1.0  # c: W_e starts as c * orthogonal (App. B uses 1e-3)
    k: int | None = None  # shared dimension of the explicit bottleneck
    depth_lr_scaling: bool | None = None  # lr / N on the sub-network; None: on for orthogonal

    # --- optimisation -----------------------------------------------------------
    optimizer: str = "adam"
    lr: float = 1e-4
    batch_size: int = 32  # ignored by full-batch gradient descent
    epochs: int = 200
    gd_steps_per_epoch: int = 100  # full-batch GD: steps between two records
    dtype: str = "float64"
    seed: int = 0
    # diverged: a NaN/inf loss, or divergence_epochs epochs in a row stuck above
    # divergence_factor x the trivial loss (predicting the mean input; rankae/records.py)
    divergence_factor: float = 2.0
    divergence_epochs: int = 3
    # vectorised seed groups on a GPU: replay the step from a CUDA graph (Adam only). Off
    # until benchmarks/gpu_check.sh has passed on real hardware (docs/benchmarks.md)
    cuda_graph: bool = False

    # --- rank -------------------------------------------------------------------
    rank_threshold: float = 0.01

    # --- two-stage training (Sec. 3.2) --------------------------------------------
    two_stage: bool = False
    # switch once W_e's rank has been unchanged for this many optimiser steps. Counted in
    # steps, not epochs, so it means the same on a subset: App. C's 5 epochs of 60,000
    # images at batch 32 are 5 x 1,875 steps
    patience_steps: int = 9375
    force_switch_epoch: int | None = None  # switch here if W_e's rank never settles

    # --- downstream evaluation (App. C) -------------------------------------------
    downstream: bool = False
    classifier_labels: int = 1000
    classifier_epochs: int = 500
    classifier_lr: float = 1e-3
    classifier_batch_size: int = 32
    classifier_hidden: int = 128
    classifier_val_fraction: float = 0.2  # held out only for acc_selected's epoch choice
    gmm_components: int = 4
    fid_samples: int = 10_000
    fid_reference: int | None = None  # training images for FID statistics (None: all)

    # ------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """How the latent rank is controlled: vanilla, explicit, or the sub-network's init."""
        return self.init if self.bottleneck == "linear_net" else self.bottleneck

    @property
    def lr_scaled_by_depth(self) -> bool:
        if self.depth_lr_scaling is None:
            return self.init == "orthogonal"
        return self.depth_lr_scaling

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from a (trial) dict; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
            )
        return cls(**values).validate()

    def validate(self) -> RunConfig:
        """Check every value; return self so calls chain."""
        _one_of("dataset", self.dataset, DATASETS)
        _one_of("architecture", self.architecture, ARCHITECTURES)
        _one_of("bottleneck", self.bottleneck, BOTTLENECKS)
        _one_of("init", self.init, INITS)
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        _one_of("dtype", self.dtype, DTYPES)
        _at_least("latent_dim", self.latent_dim, 1)
        _at_least("depth", self.depth, 1)
        _at_least("epochs", self.epochs, 1)
        _at_least("batch_size", self.batch_size, 1)
        _at_least("gd_steps_per_epoch", self.gd_steps_per_epoch, 1)
        _at_least("n_eval", self.n_eval, 2)
        _at_least("seed", self.seed, 0)
        _at_least("data_seed", self.data_seed, 0)
        _at_least("patience_steps", self.patience_steps, 1)
        _at_least("divergence_epochs", self.divergence_epochs, 1)
        _at_least("gmm_components", self.gmm_components, 1)
        _at_least("fid_samples", self.fid_samples, 2)
        _at_least("classifier_labels", self.classifier_labels, 2)
        _at_least("classifier_epochs", self.classifier_epochs, 1)
        _at_least("classifier_batch_size", self.classifier_batch_size, 1)
        _at_least("classifier_hidden", self.classifier_hidden, 1)
        _at_least("synth_samples", self.synth_samples, 2)
        _at_least("synth_dim", self.synth_dim, 1)
        _at_least("synth_rank", self.synth_rank, 1)
        if self.n_train is not None:
            _at_least("n_train", self.n_train, 2)
        if self.fid_reference is not None:
            _at_least("fid_reference", self.fid_reference, 2)
        if self.force_switch_epoch is not None:
            _at_least("force_switch_epoch", self.force_switch_epoch, 1)
        _positive("alpha", self.alpha)
        _positive("init_scale", self.init_scale)
        _positive("lr", self.lr)
        _positive("classifier_lr", self.classifier_lr)
        if not (_finite(self.divergence_factor) and self.divergence_factor > 1):
            raise ConfigError(
                f"divergence_factor={self.divergence_factor!r} is invalid: must be a finite "
                "number > 1 "
                "(a multiple of the trivial loss; at or below 1 a stalled run would count)"
            )
        if not (_finite(self.synth_noise) and self.synth_noise >= 0):
            raise ConfigError(f"synth_noise={self.synth_noise!r} is invalid: must be finite, >= 0")
        if self.synth_rank > min(self.synth_samples, self.synth_dim):
            raise ConfigError(
                f"synth_rank={self.synth_rank} is invalid: X = X1 X2 has rank at most "
                f"min(synth_samples={self.synth_samples}, synth_dim={self.synth_dim})"
            )
        _open_unit("rank_threshold", self.rank_threshold)
        _open_unit("classifier_val_fraction", self.classifier_val_fraction)
        if self.bottleneck == "explicit" and self.k is None:
            raise ConfigError(
                f"k=None is invalid for the explicit bottleneck: "
                f"give an integer 1 <= k <= latent_dim={self.latent_dim}"
            )
        if self.k is not None and not (
            isinstance(self.k, int)
            and not isinstance(self.k, bool)
            and 1 <= self.k <= self.latent_dim
        ):  # checked even where unused, so a typo is not silently ignored
            raise ConfigError(
                f"k={self.k!r} is invalid: must be an integer 1 <= k <= "
                f"latent_dim={self.latent_dim}"
            )
        if self.downstream and self.n_train is not None and self.classifier_labels > self.n_train:
            raise ConfigError(
                f"classifier_labels={self.classifier_labels} is invalid: the labelled set comes "
                f"from the n_train={self.n_train} training images, so it must be <= n_train"
            )
        if self.cuda_graph and self.optimizer != "adam":
            raise ConfigError(
                f"cuda_graph=True needs optimizer='adam', got optimizer={self.optimizer!r}"
            )
        if self.two_stage and self.bottleneck != "linear_net":
            raise ConfigError(
                f"two_stage=True needs bottleneck='linear_net', got bottleneck={self.bottleneck!r}"
            )
        expected = {"synthetic": "linear"}.get(self.dataset)
        if expected and self.architecture != expected:
            raise ConfigError(
                f"architecture={self.architecture!r} cannot read dataset={self.dataset!r}: "
                f"use architecture='{expected}'"
            )
        if self.dataset != "synthetic" and self.architecture == "linear":
            raise ConfigError(
                f"architecture='linear' is for dataset='synthetic', not {self.dataset!r}: "
                f"use 'mnist_conv' or 'cifar_conv'"
            )
        channels = {"mnist": 1, "digits": 1, "cifar10": 3}.get(self.dataset)
        arch_channels = {"mnist_conv": 1, "cifar_conv": 3}.get(self.architecture)
        if channels and arch_channels and channels != arch_channels:
            raise ConfigError(
                f"architecture={self.architecture!r} expects {arch_channels} channel(s) but "
                f"dataset={self.dataset!r} has {channels}"
            )
        return self


def linear_synthetic(**changes: Any) -> RunConfig:
    """The paper's linear autoencoder on synthetic data (Sec. 3.1, App. B)."""
    base = RunConfig(
        dataset="synthetic",
        architecture="linear",
        n_eval=64,
        optimizer="gd",
        lr=0.03,
        epochs=100,  # 100 records x 100 steps = the paper's 10,000 steps
        gd_steps_per_epoch=100,
        init_scale=1e-3,
        dtype="float64",
    )
    return base.replace(**changes).validate()


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not known: allowed are {', '.join(allowed)}")


def _at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} is invalid: must be an integer >= {low}")


def _positive(name: str, value: Any) -> None:
    if not _finite(value) or not value > 0:
        raise ConfigError(f"{name}={value!r} is invalid: must be a finite number > 0")


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _open_unit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(f"{name}={value!r} is invalid: must lie strictly between 0 and 1")
