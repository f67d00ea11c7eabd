"""The named studies: one module each, `get_config(preset) -> StudySpec`.

A module lists the tiers it offers in `PRESETS` (`full` and `smoke` always; `laptop` where
a CPU-hour result means something); `config(name, preset)` is the one way in.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from rankae.config import ConfigError

from ..spec import StudySpec

TIERS = ("full", "laptop", "smoke")


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    if name not in names():
        raise ConfigError(f"unknown study {name!r}; known studies: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}")


def presets(name: str) -> tuple[str, ...]:
    return tuple(load(name).PRESETS)


def config(name: str, preset: str = "full") -> StudySpec:
    """The study's spec at one tier; a tier it does not offer is refused by name."""
    offered = presets(name)
    if preset not in offered:
        raise ConfigError(
            f"preset {preset!r} is not offered by {name}: use one of {', '.join(offered)}"
        )
    return load(name).get_config(preset)
