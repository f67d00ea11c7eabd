"""Bad configuration values fail once, at the edge, naming the value and what is allowed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rankae.config import ConfigError, RunConfig, linear_synthetic

# (changes to a valid config, text the message must contain besides the bad value)
BAD_VALUES = [
    ({"depth": 0}, "integer in [1, 1,024]"),
    ({"depth": -3}, "integer in [1, 1,024]"),
    ({"depth": 2.5}, "integer in [1, 1,024]"),
    ({"depth": 1025}, "integer in [1, 1,024]"),
    ({"seed": 2**32}, "integer in [0, 4,294,967,295]"),
    ({"alpha": 0.0}, "number > 0"),
    ({"alpha": -2.0}, "number > 0"),
    ({"init_scale": 0.0}, "number > 0"),
    ({"init_scale": -1e-3}, "number > 0"),
    ({"bottleneck": "explicit", "k": 0}, "1 <= k <= latent_dim=128"),
    ({"bottleneck": "explicit", "k": 129}, "1 <= k <= latent_dim=128"),
    ({"bottleneck": "explicit", "latent_dim": 16, "k": 17}, "1 <= k <= latent_dim=16"),
    ({"bottleneck": "explicit", "k": None}, "1 <= k <= latent_dim=128"),
    ({"rank_threshold": 0.0}, "strictly between 0 and 1"),
    ({"rank_threshold": 1.0}, "strictly between 0 and 1"),
    ({"rank_threshold": 1.5}, "strictly between 0 and 1"),
    ({"dataset": "imagenet"}, "allowed are synthetic, digits, mnist, cifar10"),
    ({"init": "xavier"}, "allowed are standard, he_normal, orthogonal"),
    ({"bottleneck": "deep"}, "allowed are vanilla, linear_net, explicit"),
    ({"architecture": "resnet"}, "allowed are linear, mnist_conv, cifar_conv"),
    ({"optimizer": "sgd"}, "allowed are gd, adam"),
    ({"dtype": "float16"}, "allowed are float64, float32"),
    ({"lr": 0.0}, "number > 0"),
    ({"patience_steps": 0}, "integer in [1, 2,147,483,647]"),
]


def bad_value(changes: dict[str, Any]) -> tuple[str, Any]:
    """The field the case is about: the last one listed."""
    name = list(changes)[-1]
    return name, changes[name]


@pytest.mark.parametrize(("changes", "allowed"), BAD_VALUES)
def test_bad_value_names_itself_and_the_allowed_range(
    changes: dict[str, Any], allowed: str
) -> None:
    name, value = bad_value(changes)
    for build in (lambda: RunConfig(**changes).validate(), lambda: RunConfig.from_dict(changes)):
        with pytest.raises(ConfigError) as info:
            build()
        message = str(info.value)
        assert f"{name}={value!r}" in message
        assert allowed in message


@pytest.mark.parametrize(("changes", "allowed"), BAD_VALUES[:14])
def test_linear_synthetic_validates_its_overrides(changes: dict[str, Any], allowed: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(allowed)):
        linear_synthetic(**changes)


def test_unknown_key_is_named_with_the_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"depht": 4, "alpha": 2.0})
    message = str(info.value)
    assert "depht" in message and "depth" in message and "init_scale" in message


@pytest.mark.parametrize(
    "changes",
    [
        {"bottleneck": "vanilla", "two_stage": True},
        {"dataset": "synthetic", "architecture": "mnist_conv"},
        {"dataset": "mnist", "architecture": "linear"},
        {"dataset": "cifar10", "architecture": "mnist_conv"},
    ],
)
def test_inconsistent_combinations_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(list(changes.values())[-1]))):
        RunConfig(**changes).validate()


def test_valid_configs_pass_and_round_trip() -> None:
    paper = linear_synthetic()
    assert (paper.optimizer, paper.lr, paper.dtype) == ("gd", 0.03, "float64")
    assert paper.init_scale == 1e-3 and paper.latent_dim == 128
    assert paper.epochs * paper.gd_steps_per_epoch == 10_000
    assert paper.lr_scaled_by_depth  # orthogonal: lr / N on the sub-network (Sec. 2.5)
    assert not paper.replace(init="standard").lr_scaled_by_depth
    for config in (RunConfig(), paper, RunConfig(bottleneck="explicit", k=128)):
        assert RunConfig.from_dict(config.to_dict()) == config.validate()


def test_every_setting_is_described_with_its_default_and_allowed_values(capsys):
    """One source (rankae.config.setting) for `rankae.train --help` and `study.run --keys`."""
    from dataclasses import fields

    from rankae.config import describe_settings
    from rankae.train import build_parser
    from study.run import main

    described = {name: (default, text) for name, default, text in describe_settings()}
    assert list(described) == [f.name for f in fields(RunConfig)]
    assert described["alpha"] == (
        "1.0",
        "alpha of the reparameterisation W = alpha W' (Eq. 4); > 0",
    )
    assert described["dataset"][1].endswith("one of synthetic, digits, mnist, cifar10, user")
    assert described["n_train"][1].endswith("None or integer in [2, 2,147,483,647]")
    help_text = " ".join(build_parser().format_help().split())
    assert main(["--keys"]) == 0
    keys = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in keys] == list(described)
    for name, (default, text) in described.items():
        assert " ".join(f"{text} (default {default})".split()) in help_text, name
        assert text in next(line for line in keys if line.startswith(name + " "))


def test_a_settings_check_rejects_what_its_description_excludes():
    with pytest.raises(ConfigError, match=r"^rank_threshold=1.5 is invalid: must lie strictly"):
        RunConfig(rank_threshold=1.5).validate()
    with pytest.raises(
        ConfigError, match=r"^n_train=1 is invalid: must be an integer in \[2, 2,147,483,647\]"
    ):
        RunConfig(n_train=1).validate()
    assert RunConfig(n_train=None, fid_reference=None).validate().n_train is None
