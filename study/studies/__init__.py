"""The named studies: one module each, `get_config(smoke: bool) -> StudySpec`."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from rankae.config import ConfigError


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    if name not in names():
        raise ConfigError(f"unknown study {name!r}; known studies: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}")
