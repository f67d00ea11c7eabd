"""What one run trains and evaluates on: the config's data, loaded and split (`RunData`).

Outside the engine, so a caller that already holds the data (a notebook's array, a seed
group) passes it to `Trainer(data=...)` instead of loading it again. A user's data comes in
through `rankae.userdata` (read once, or a prepared file the study service wrote once);
here it is only split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import CONV_CHANNELS, ConfigError, RunConfig
from .data import ImageSet, load_images, synthetic_low_rank
from .userdata import UserData, load_user_data


@dataclass(frozen=True)
class RunData:
    """Inputs for one run. For synthetic data train == test and there are no labels.

    `has_labels` is False where the labels are placeholders (zeros): synthetic data and a
    user's data without labels; downstream classification then does not apply. `kind` says
    whether the inputs are images (n, C, 32, 32) or vectors (n, D).
    """

    train: ImageSet
    test: ImageSet
    n_eval: int
    has_labels: bool = True

    @property
    def eval_inputs(self) -> torch.Tensor:
        return self.test.images[: self.n_eval]

    @property
    def kind(self) -> str:
        """ "images" (n, C, H, W) or "vectors" (n, D)."""
        return "images" if self.train.images.dim() == 4 else "vectors"

    def to(self, device: torch.device, dtype: torch.dtype) -> RunData:
        return RunData(
            self.train.to(device, dtype), self.test.to(device, dtype), self.n_eval, self.has_labels
        )


def load_run_data(config: RunConfig) -> RunData:
    """The training inputs and the evaluation set the config asks for (on the CPU)."""
    if config.dataset == "synthetic":
        x = synthetic_low_rank(
            config.synth_samples,
            config.synth_dim,
            config.synth_rank,
            config.synth_noise,
            seed=config.data_seed,
        )
        data = ImageSet(x, torch.zeros(len(x), dtype=torch.long))
        return RunData(data, data, min(config.n_eval, len(x)), has_labels=False)
    if config.dataset == "user":
        user = load_user_data(config.data_path, config.labels_path, min_samples=config.batch_size)
        return split_user_data(config, user)
    train = load_images(config.dataset, "train", config.data_root, limit=config.n_train)
    test = load_images(config.dataset, "test", config.data_root)
    return RunData(train, test, min(config.n_eval, len(test)))


def split_user_data(config: RunConfig, user: UserData) -> RunData:
    """dataset='user': the user's data (`rankae.userdata.load_user_data`), split by a
    permutation seeded with `data_seed`: the last `eval_fraction` (rounded) is the
    test/evaluation split, the rest the training split, of which the first `n_train` are used
    (the test split does not depend on n_train). Labels are the user's, or zeros with
    `has_labels=False`. Raises ConfigError if the data's kind or channels do not fit
    `config.architecture`.
    """
    check_architecture_fits(config, user.kind, user.x.shape[1])
    n = len(user)
    n_test = round(n * config.eval_fraction)
    if n_test < 2 or n - n_test < 2:
        raise ConfigError(
            f"eval_fraction={config.eval_fraction!r} is invalid for data_path="
            f"{config.data_path!r}: its {n:,} samples would split into {n - n_test:,} training "
            f"and {n_test:,} evaluation samples; each needs at least 2"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.data_seed))
    labels = user.labels if user.labels is not None else torch.zeros(n, dtype=torch.long)
    train_idx, test_idx = order[: n - n_test][: config.n_train], order[n - n_test :]
    train = ImageSet(user.x[train_idx], labels[train_idx])
    test = ImageSet(user.x[test_idx], labels[test_idx])
    return RunData(train, test, min(config.n_eval, n_test), has_labels=user.labels is not None)


def check_architecture_fits(config: RunConfig, kind: str, width: int) -> None:
    """A user's data (`kind` "images" with `width` channels, or "vectors" of `width`
    features) against `config.architecture`; a one-line ConfigError naming the fix."""
    if kind == "vectors":
        needed, what = "mlp", f"vectors of {width:,} features"
    else:
        needed = next((a for a, c in CONV_CHANNELS.items() if c == width), None)
        what = f"{width}-channel images"
    if config.architecture != needed:
        raise ConfigError(
            f"data_path={config.data_path!r} holds {what}: use architecture='{needed}' "
            f"(got architecture={config.architecture!r})"
        )
