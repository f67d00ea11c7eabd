"""One run's configuration: a flat, typed, validated record.

Every value a trial can vary lives here, so the study service, the command line and
MLflow all speak the same names. Defaults are the paper's MNIST protocol (App. C);
the linear synthetic experiment (App. B) overrides them (see `linear_synthetic()`).
Validation happens in `RunConfig.validate()`, with messages a person can act on, once per
config: a config remembers that it passed, so each layer that receives one may ask again
for free.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

DATASETS = ("synthetic", "digits", "mnist", "cifar10", "user")
ARCHITECTURES = ("linear", "mnist_conv", "cifar_conv", "mlp")
CONV_CHANNELS = {"mnist_conv": 1, "cifar_conv": 3}  # input (and output) channels
# the settings that only dataset='user' reads (a value given elsewhere is a mistake)
USER_DATA_SETTINGS = ("data_path", "labels_path")
BOTTLENECKS = ("vanilla", "linear_net", "explicit")
INITS = ("standard", "he_normal", "orthogonal")
OPTIMIZERS = ("gd", "adam")
DTYPES = ("float64", "float32")
# the settings only one bottleneck has: a vanilla run has no depth, alpha or k
SUBNETWORK_SETTINGS = frozenset({"init", "depth", "alpha", "init_scale", "depth_lr_scaling"})
EXPLICIT_SETTINGS = frozenset({"k"})
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})  # parse_value
# The largest value of every integer setting: sizes and step counts past a 32-bit index are
# beyond what a tensor index on a GPU, a DataLoader's sampler or any run here can reach.
INTEGER_MAX = 2**31 - 1
# The paper's deepest sub-network has N = 32 layers; each layer adds three d x d matmuls per
# step, so past this depth no budget the cost model prices (study/cost.py) is reachable.
MAX_DEPTH = 1024
# Seeds: what numpy's and scikit-learn's random states accept (torch.manual_seed takes more).
SEED_MAX = 2**32 - 1


class ConfigError(ValueError):
    """A configuration value is out of its allowed range; the message names both."""


def setting(default: Any, help: str, **check: Any) -> Any:
    """A RunConfig field: its default, a one-line description, and its simple check (one of
    `choices=`, `at_least=` (with `at_most=`, else INTEGER_MAX), `positive=True`,
    `open_unit=True`), which `validate()` applies
    and `describe_settings()` shows. Checks that relate fields live in `validate()`; their
    rule is in the description."""
    return dataclasses.field(default=default, metadata={"help": help, **check})


_VALID = "_validated"  # set on a config once `validate()` has passed


@dataclass(frozen=True)
class RunConfig:
    """Everything one autoencoder run needs. Field names are the `--set` keys."""

    # --- data -------------------------------------------------------------------
    dataset: str = setting("mnist", "the data (user: the data from data_path)", choices=DATASETS)
    data_root: str | None = setting(
        None, "data folder (None: $RANKSTUDY_DATA_ROOT or ~/.cache/rankstudy/data)"
    )
    data_path: str | None = setting(
        None,
        "a user's data for dataset='user': an image folder, a .npy/.npz file or "
        "torchvision:NAME (rankae.userdata)",
    )
    labels_path: str | None = setting(
        None, "dataset='user': a .npy of n integer class labels (optional; overrides the data's)"
    )
    eval_fraction: float = setting(
        0.2,
        "dataset='user': the share held out as the evaluation/test split, drawn with data_seed",
        open_unit=True,
    )
    n_train: int | None = setting(None, "training images used (None: the whole split)", at_least=2)
    n_eval: int = setting(10_000, "test images whose codes give the latent spectrum", at_least=2)
    data_seed: int = setting(
        0,
        "synthetic data draw, and the user data's train/eval split (independent of the model seed)",
        at_least=0,
        at_most=SEED_MAX,
    )
    bootstrap: bool = setting(
        False,
        "train on a bootstrap resample of the training split (n draws with replacement, "
        "seeded by seed), so seeds differ in their data as well as their init",
    )
    synth_samples: int = setting(64, "synthetic: n samples (Sec. 3.1)", at_least=2)
    synth_dim: int = setting(256, "synthetic: input dimension D", at_least=1)
    synth_rank: int = setting(8, "synthetic: rank r of X = X1 X2, <= min(n, D)", at_least=1)
    synth_noise: float = setting(0.2, "synthetic: noise scale s, finite >= 0")

    # --- model ------------------------------------------------------------------
    architecture: str = setting(
        "mnist_conv",
        "the autoencoder (linear: synthetic data; mlp: a user's vectors, "
        "rankae.models.mlp_encoder_decoder, input width from the data)",
        choices=ARCHITECTURES,
    )
    latent_dim: int = setting(128, "d, the latent code's width", at_least=1)
    bottleneck: str = setting(
        "linear_net",
        "vanilla, the N-layer linear sub-network, or explicit d -> k -> d",
        choices=BOTTLENECKS,
    )
    init: str = setting("orthogonal", "the sub-network's initialisation", choices=INITS)
    depth: int = setting(16, "N, the sub-network's layers", at_least=1, at_most=MAX_DEPTH)
    alpha: float = setting(
        1.0, "alpha of the reparameterisation W = alpha W' (Eq. 4)", positive=True
    )
    init_scale: float = setting(
        1.0, "c: W_e starts as c x orthogonal (App. B uses 1e-3)", positive=True
    )
    k: int | None = setting(
        None, "the explicit bottleneck's width, 1 <= k <= latent_dim (explicit only)"
    )
    depth_lr_scaling: bool | None = setting(
        None, "lr / N on the sub-network (None: on for orthogonal init)"
    )

    # --- optimisation -----------------------------------------------------------
    optimizer: str = setting(
        "adam", "gd is full-batch gradient descent (App. B)", choices=OPTIMIZERS
    )
    lr: float = setting(1e-4, "learning rate", positive=True)
    batch_size: int = setting(
        32,
        "minibatch size; one larger than the training set is one full batch per epoch "
        "(ignored by full-batch gd)",
        at_least=1,
    )
    epochs: int = setting(200, "epochs (gd: records of gd_steps_per_epoch steps)", at_least=1)
    gd_steps_per_epoch: int = setting(100, "full-batch gd: steps between two records", at_least=1)
    dtype: str = setting("float64", "floating point precision", choices=DTYPES)
    seed: int = setting(0, "model seed (study.run: use --seeds)", at_least=0, at_most=SEED_MAX)
    # diverged: a NaN/inf loss, or epochs in a row stuck above divergence_factor x the
    # trivial loss (predicting the mean input) covering divergence_steps optimiser steps
    # (rankae/records.py); counted in steps, so the window is the same at every tier
    divergence_factor: float = setting(
        2.0, "diverged above this multiple of the trivial loss; finite > 1"
    )
    divergence_steps: int = setting(
        1000, "diverged after stuck epochs in a row covering this many steps", at_least=1
    )
    # vectorised seed groups on a GPU: replay the step from a CUDA graph (Adam only; equal to
    # the eager step on an H200, 2.2x its fp32 rate at 10 seeds: docs/benchmarks.md)
    cuda_graph: bool = setting(
        False, "GPU seed groups: replay each step from a CUDA graph (adam only)"
    )

    # --- rank -------------------------------------------------------------------
    rank_threshold: float = setting(
        0.01, "rank: singular values above this fraction of the largest", open_unit=True
    )

    stop_when_settled: bool = setting(
        False, "stop once W_e's rank has settled (rankae.settle); epochs is then a ceiling"
    )

    # --- two-stage training (Sec. 3.2) --------------------------------------------
    two_stage: bool = setting(
        False, "switch to an explicit bottleneck at W_e's settled rank (linear_net only)"
    )
    # switch once W_e's rank has been unchanged for this many optimiser steps. Counted in
    # steps, not epochs, so it means the same on a subset: App. C's 5 epochs of 60,000
    # images at batch 32 are 5 x 1,875 steps
    patience_steps: int = setting(
        9375, "two-stage: steps W_e's rank must stay unchanged", at_least=1
    )
    force_switch_epoch: int | None = setting(
        None, "two-stage: switch here if the rank never settles", at_least=1
    )

    # --- downstream evaluation (App. C) -------------------------------------------
    downstream: bool = setting(False, "classifiers, GMM sampling and FID after training")
    classifier_labels: int = setting(1000, "labelled training images, <= n_train", at_least=2)
    classifier_epochs: int = setting(500, "classifier epochs", at_least=1)
    classifier_lr: float = setting(1e-3, "classifier learning rate", positive=True)
    classifier_batch_size: int = setting(32, "classifier minibatch size", at_least=1)
    classifier_hidden: int = setting(128, "classifier hidden width", at_least=1)
    classifier_test: int | None = setting(
        None, "test images the classifiers are scored on (None: the whole test split)", at_least=2
    )
    classifier_val_fraction: float = setting(
        0.2, "held out only for acc_selected's epoch choice", open_unit=True
    )
    gmm_components: int = setting(4, "GMM components fitted to the training codes", at_least=1)
    fid_samples: int = setting(10_000, "GMM samples decoded for FID", at_least=2)
    fid_reference: int | None = setting(
        None, "training images for FID statistics (None: all)", at_least=2
    )
    save_codes: bool = setting(
        False, "keep the training split's final codes (codes.npy) for other estimators to read"
    )

    # ------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """How the latent rank is controlled: vanilla, explicit, or the sub-network's init."""
        return self.init if self.bottleneck == "linear_net" else self.bottleneck

    @property
    def unused_settings(self) -> frozenset[str]:
        """The settings this run's bottleneck does not have (they are not shown or logged)."""
        unused = set()
        if self.bottleneck != "linear_net":
            unused |= SUBNETWORK_SETTINGS
        if self.bottleneck != "explicit":
            unused |= EXPLICIT_SETTINGS
        return frozenset(unused)

    LABELLED = ("bottleneck", "init", "depth", "alpha", "k")  # the settings a label shows

    def bottleneck_settings(self) -> dict[str, Any]:
        """method, depth, alpha, k: what tells configurations apart (None where unused)."""
        unused = self.unused_settings
        return {"method": self.method} | {
            key: None if key in unused else getattr(self, key) for key in ("depth", "alpha", "k")
        }

    def label(self, seeds: Sequence[int] | None = None, shown: Sequence[str] = ()) -> str:
        """This run's name (`label`), with `seeds` for a trial of several, then the settings
        `shown` (`orthogonal-N4-a2-s0 lr=0.01`: a `--grid` axis the label does not carry)."""
        name = label(**self.bottleneck_settings(), seeds=seeds or (self.seed,))
        return " ".join([name, *(setting_text(key, getattr(self, key)) for key in shown)])

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
        """Check every value, once per config (a frozen config that passed stays valid);
        return self so calls chain."""
        if self.__dict__.get(_VALID):
            return self
        for spec in fields(self):
            _check(spec, getattr(self, spec.name))
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
        if self.downstream and self.n_train is not None and self.gmm_components > self.n_train:
            raise ConfigError(
                f"gmm_components={self.gmm_components} is invalid: the GMM is fitted to the "
                f"codes of the n_train={self.n_train} training images, so it must be <= n_train"
            )
        if self.bootstrap and self.optimizer == "gd":
            raise ConfigError(
                "bootstrap=True resamples minibatch training, but optimizer='gd' steps on the "
                "whole split: use optimizer='adam' or bootstrap=False"
            )
        if self.cuda_graph and self.optimizer != "adam":
            raise ConfigError(
                f"cuda_graph=True needs optimizer='adam', got optimizer={self.optimizer!r}"
            )
        if self.two_stage and self.bottleneck != "linear_net":
            raise ConfigError(
                f"two_stage=True needs bottleneck='linear_net', got bottleneck={self.bottleneck!r}"
            )
        self._check_data_and_architecture()
        channels = {"mnist": 1, "digits": 1, "cifar10": 3}.get(self.dataset)
        arch_channels = CONV_CHANNELS.get(self.architecture)
        if channels and arch_channels and channels != arch_channels:
            raise ConfigError(
                f"architecture={self.architecture!r} expects {arch_channels} channel(s) but "
                f"dataset={self.dataset!r} has {channels}"
            )
        object.__setattr__(self, _VALID, True)  # not a field: equality, to_dict ignore it
        return self

    def _check_data_and_architecture(self) -> None:
        """Which dataset goes with which architecture and data settings. A user's data is
        only read by `rankae.rundata.load_run_data`, which checks its kind and channels."""
        if self.dataset == "user" and self.data_path is None:
            raise ConfigError(
                "data_path=None is invalid for dataset='user': give an image folder, a "
                ".npy/.npz file or torchvision:NAME"
            )
        for name in USER_DATA_SETTINGS:
            value = getattr(self, name)
            if value is not None and self.dataset != "user":
                raise ConfigError(
                    f"{name}={value!r} is only for dataset='user', not dataset={self.dataset!r}"
                )
        if self.architecture == "mlp" and self.dataset != "user":
            raise ConfigError(
                f"architecture='mlp' is for a user's vectors (dataset='user'), not "
                f"dataset={self.dataset!r}: use 'mnist_conv' or 'cifar_conv'"
            )
        expected = {"synthetic": "linear"}.get(self.dataset)
        if expected and self.architecture != expected:
            raise ConfigError(
                f"architecture={self.architecture!r} cannot read dataset={self.dataset!r}: "
                f"use architecture='{expected}'"
            )
        if self.dataset == "user" and self.architecture == "linear":
            raise ConfigError(
                "architecture='linear' is for dataset='synthetic', not 'user': use 'mlp' for "
                "vectors, 'mnist_conv' or 'cifar_conv' for 1- or 3-channel images"
            )
        if self.dataset != "synthetic" and self.architecture == "linear":
            raise ConfigError(
                f"architecture='linear' is for dataset='synthetic', not {self.dataset!r}: "
                f"use 'mnist_conv' or 'cifar_conv'"
            )


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


def label(
    method: str,
    depth: Any = None,
    alpha: Any = None,
    k: Any = None,
    seeds: Sequence[int] | None = None,
    prose: bool = False,
) -> str:
    """The one name of a configuration, and of a run with its seeds.

    `orthogonal-N16-a300-s0` names MLflow runs, Ray trials (`-s0+1+2` for a group) and the
    CLI's messages; `prose=True` gives the same parts as `orthogonal N=16 α=300` for report
    tables and figures. Missing parts (None, NaN) are left out; so is an empty method.
    """
    parts = [method] if method else []
    if _given(depth):
        parts.append(f"N={int(depth)}" if prose else f"N{int(depth)}")
    if _given(alpha):
        parts.append(f"α={alpha:g}" if prose else f"a{alpha:g}")
    if _given(k):
        parts.append(f"k={int(k)}" if prose else f"k{int(k)}")
    if seeds is not None:
        parts.append(("seed=" if prose else "s") + "+".join(str(s) for s in seeds))
    return (" " if prose else "-").join(parts)


def setting_text(key: str, value: Any) -> str:
    """`lr=0.01`: one setting as names and the report's variants show it."""
    return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"


def _given(value: Any) -> bool:
    """Not None, NaN or a missing pandas value."""
    try:
        return value is not None and not math.isnan(float(value))
    except TypeError:
        return False


def parse_value(key: str, text: str) -> Any:
    """A RunConfig value from text, typed by the field's annotation: the one coercion of
    `--set key=value`, `rankae.train`'s flags and MLflow's string params. Range checks are
    `validate()`'s."""
    hints = _field_types()
    if key not in hints:
        names = ", ".join(f.name for f in fields(RunConfig))
        raise ConfigError(f"{key!r} is not a config value; allowed: {names}")
    kind = hints[key]
    raw = text.strip()
    if raw.lower() in ("none", "null") and "None" in kind:
        return None
    if "bool" in kind:
        if raw.lower() in TRUE | FALSE:
            return raw.lower() in TRUE
        raise ConfigError(f"{key}={raw!r} is invalid: {key} takes a bool")
    number = int if "int" in kind else float if "float" in kind else None
    if number is None:
        return raw  # a str setting
    try:
        return number(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is invalid: {key} takes a {number.__name__}") from None


@functools.cache
def _field_types() -> dict[str, str]:
    """Each RunConfig field's annotation as text (resolved once: the analysis types every
    param of every run it reads)."""
    return {name: str(hint) for name, hint in typing.get_type_hints(RunConfig).items()}


def describe_settings() -> list[tuple[str, str, str]]:
    """(name, default, "description; allowed values") per RunConfig field: `--help` text."""
    out = []
    for spec in fields(RunConfig):
        meta = spec.metadata
        allowed = ""
        if "choices" in meta:
            allowed = "one of " + ", ".join(meta["choices"])
        elif "at_least" in meta:
            allowed = f"integer in [{meta['at_least']}, {meta.get('at_most', INTEGER_MAX):,}]"
        elif meta.get("positive"):
            allowed = "> 0"
        elif meta.get("open_unit"):
            allowed = "in (0, 1)"
        if allowed and spec.default is None:
            allowed = "None or " + allowed
        text = meta["help"] + (f"; {allowed}" if allowed else "")
        out.append((spec.name, repr(spec.default), text))
    return out


def _check(spec: dataclasses.Field, value: Any) -> None:
    """A field's simple check (its `setting(...)` keywords); None passes where it is the default."""
    meta = spec.metadata
    if value is None and spec.default is None:
        return
    if "choices" in meta:
        _one_of(spec.name, value, meta["choices"])
    elif "at_least" in meta:
        _integer_in(spec.name, value, meta["at_least"], meta.get("at_most", INTEGER_MAX))
    elif meta.get("positive"):
        _positive(spec.name, value)
    elif meta.get("open_unit"):
        _open_unit(spec.name, value)


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not known: allowed are {', '.join(allowed)}")


def _integer_in(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is invalid: must be an integer in [{low}, {high:,}]")


def _positive(name: str, value: Any) -> None:
    if not _finite(value) or not value > 0:
        raise ConfigError(f"{name}={value!r} is invalid: must be a finite number > 0")


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _open_unit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(f"{name}={value!r} is invalid: must lie strictly between 0 and 1")
