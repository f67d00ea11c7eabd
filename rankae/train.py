"""One training run from the command line, without Ray.

    python -m rankae.train --dataset synthetic --bottleneck orthogonal --depth 16 --alpha 2 \
        --steps 10000
    python -m rankae.train --dataset user --data-path X.npy --architecture mlp --epochs 2

Every `RunConfig` field is a flag (`--field-name`), so a notebook, a trial and this command
name values the same way. `--dataset synthetic` starts from the paper's App. B settings
(`linear_synthetic()`: full-batch GD, lr 0.03, c = 1e-3, float64); other datasets start from
the `RunConfig` defaults (App. C); `--dataset user` reads `--data-path` (an image folder,
.npy/.npz or torchvision:NAME; vectors need `--architecture mlp`, images the conv AE with
their channels). `--bottleneck orthogonal|standard|he_normal` is shorthand
for `--bottleneck linear_net --init ...`. `--steps` counts full-batch GD steps
(= epochs * gd_steps_per_epoch). Bad values exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import typing
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

import torch
from tqdm import tqdm

from .config import (
    INITS,
    ConfigError,
    RunConfig,
    describe_settings,
    linear_synthetic,
    parse_value,
)
from .data import DataNotFoundError
from .engine import Trainer
from .records import EpochRecord


def _parser_of(name: str, kind: type) -> Callable[[str], Any]:
    """argparse's type for field `name`: `parse_value` (a bad value is argparse's error)."""

    def parse(text: str) -> Any:
        return parse_value(name, text)

    parse.__name__ = kind.__name__  # argparse names the type in its error
    return parse


def _device(text: str) -> torch.device:
    try:
        return torch.device(text)
    except RuntimeError as err:
        raise argparse.ArgumentTypeError(
            f"--device {text!r} is not a device: use e.g. cpu, cuda, cuda:1"
        ) from err


def build_parser() -> argparse.ArgumentParser:
    """A flag per RunConfig field, typed from its annotation, plus --steps/--device/--json."""
    parser = argparse.ArgumentParser(
        prog="python -m rankae.train",
        description="Train one autoencoder (no Ray). Flags are the fields of rankae.config."
        "RunConfig; unset flags keep the dataset's defaults. --bottleneck orthogonal|standard|"
        "he_normal means --bottleneck linear_net with that --init.",
    )
    hints = typing.get_type_hints(RunConfig)
    described = {name: (default, text) for name, default, text in describe_settings()}
    for field in fields(RunConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        args = typing.get_args(kind)  # (int, NoneType) for `int | None`; () for `int`
        base = next((a for a in args if a is not type(None)), kind)
        default, text = described[field.name]
        help_text = f"{text} (default {default})".replace("%", "%%")
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parse = _parser_of(field.name, base)
            parser.add_argument(flag, type=parse, metavar=base.__name__.upper(), help=help_text)
    parser.add_argument("--steps", type=int, help="full-batch GD steps (gd optimizer only)")
    parser.add_argument("--device", type=_device, help="default: cuda if available, else cpu")
    parser.add_argument("--json", metavar="PATH", help="write the config and records here")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The validated RunConfig the flags describe; raises ConfigError on a bad value."""
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig)}
    given = {name: value for name, value in given.items() if value is not None}
    if given.get("bottleneck") in INITS:  # shorthand: --bottleneck orthogonal
        init = given.pop("bottleneck")
        if given.get("init", init) != init:
            raise ConfigError(
                f"--bottleneck {init} conflicts with --init {given['init']}: give one of them"
            )
        given.update(bottleneck="linear_net", init=init)
    if given.get("dataset") == "synthetic":
        config = linear_synthetic(**given)
    else:
        config = RunConfig(**given).validate()
    if args.steps is None:
        return config
    if config.optimizer != "gd":
        raise ConfigError(f"--steps is for optimizer='gd', not {config.optimizer!r}: use --epochs")
    per_epoch = config.gd_steps_per_epoch
    if args.steps < 1 or args.steps % per_epoch:
        raise ConfigError(
            f"--steps {args.steps} is invalid: must be a positive multiple of "
            f"gd_steps_per_epoch={per_epoch}"
        )
    if "epochs" in given and given["epochs"] * per_epoch != args.steps:
        raise ConfigError(f"--steps {args.steps} contradicts --epochs {given['epochs']}")
    return config.replace(epochs=args.steps // per_epoch)


def summary(records: list[EpochRecord], wall_s: float) -> str:
    """The final lines a person reads (and benchmarks/linear_run.py parses)."""
    last = records[-1]

    def show(rank: int | None) -> str:
        return "n/a" if rank is None else str(rank)

    lines = [
        f"final loss: {last.loss:.6g}",
        f"W_e rank: {show(last.we_rank)}",
        f"latent rank: {show(last.latent_rank)}",
        f"steps: {last.step}",
        f"wall time: {wall_s:.1f} s",
    ]
    if last.diverged:
        lines.append(f"diverged: at epoch {last.epoch}")
    switch = next((r.switch for r in records if r.switch is not None), None)
    if switch is not None:
        lines.append(
            f"stage switch: epoch {switch.epoch}, k={switch.k}, forced={switch.forced}, "
            f"loss {switch.loss_before:.6g} -> {switch.loss_after:.6g}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        config = config_from_args(args)
        trainer = Trainer(config, device=args.device)
    except (ConfigError, ValueError, DataNotFoundError) as err:
        one_line = " ".join(str(err).split())  # torchvision's download errors span lines
        print(f"{parser.prog}: error: {one_line}", file=sys.stderr)
        return 2
    records: list[EpochRecord] = []
    with tqdm(trainer.run(), total=config.epochs, unit="epoch") as bar:
        for record in bar:
            records.append(record)
            bar.set_postfix(loss=f"{record.loss:.4g}", we=record.we_rank, z=record.latent_rank)
    print(summary(records, time.perf_counter() - start))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"config": config.to_dict(), "records": [asdict(r) for r in records]}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
