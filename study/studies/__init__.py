"""The named studies: one module each, `get_config(preset) -> StudySpec`.

A module lists the tiers it offers in `PRESETS` (`full` and `smoke` always; `laptop` where
a CPU-hour result means something, `desktop` where a few CPU-hours let the rank settle);
`config(name, preset)` is the one way in. A study of
a user's own data (`rank_of`) says `TAKES_DATA = True` and gets `--data` / `--labels` as
`get_config(preset, data_path, labels_path)`; its `DEFAULT_PRESET` may differ from `full`.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from rankae.config import ConfigError

from ..spec import StudySpec

TIERS = ("full", "desktop", "laptop", "smoke")


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    if name not in names():
        raise ConfigError(f"unknown study {name!r}; known studies: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}")


def presets(name: str) -> tuple[str, ...]:
    return tuple(load(name).PRESETS)


def default_preset(name: str) -> str:
    return getattr(load(name), "DEFAULT_PRESET", "full")


def takes_data(name: str) -> bool:
    """Whether the study reads a user's data (`--data`)."""
    return getattr(load(name), "TAKES_DATA", False)


def config(
    name: str,
    preset: str | None = None,
    data_path: str | None = None,
    labels_path: str | None = None,
) -> StudySpec:
    """The study's spec at one tier (None: its default); a tier it does not offer is refused
    by name, and so is data given to a study that reads none."""
    preset = preset or default_preset(name)
    offered = presets(name)
    if preset not in offered:
        raise ConfigError(
            f"preset {preset!r} is not offered by {name}: use one of {', '.join(offered)}"
        )
    if not takes_data(name):
        if data_path or labels_path:
            readers = ", ".join(n for n in names() if takes_data(n))
            raise ConfigError(
                f"--data/--labels are for the studies of a user's data ({readers}), not {name}"
            )
        return load(name).get_config(preset)
    return load(name).get_config(preset, data_path, labels_path)
