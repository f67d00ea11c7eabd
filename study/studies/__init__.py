"""The named studies: one module each, `get_config(preset, data=None) -> StudySpec`.

A module lists the tiers it offers in `PRESETS` (`full` and `smoke` always; `laptop` where
a CPU-hour result means something, `desktop` where a few CPU-hours let the rank settle);
`config(name, preset, data)` is the one way in. `data` is a user's data (`--data`, read
once: `study.prepare.StudyData`, its shape and its prepared file); a study whose base reads
`dataset='user'` (`rank_of`) builds its config from it, every other one gets None. Its
`DEFAULT_PRESET` may differ from `full`.

A study file outside the package (`python -m study.run ./my_study.py`) has the same shape
and is loaded the same way: its name is the file's name without `.py`, and its spec must
carry that name (`--resume` and the report find its invocations by it).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from rankae.config import ConfigError

from ..kinds import NAME
from ..prepare import StudyData
from ..spec import StudySpec

TIERS = ("full", "desktop", "laptop", "smoke")


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def is_study_file(name: str) -> bool:
    """Whether a study is named by its file (`./my_study.py`) rather than by its module."""
    return name.endswith(".py")


def study_name(name: str) -> str:
    """The name a study's invocations and MLflow runs carry: a file's stem, or the name."""
    return Path(name).stem if is_study_file(name) else name


def load(name: str) -> ModuleType:
    if is_study_file(name):
        return _load_file(Path(name).resolve())
    if name not in names():
        raise ConfigError(
            f"unknown study {name!r}; known studies: {', '.join(names())}, or a study file "
            "path/to/NAME.py"
        )
    return importlib.import_module(f"{__name__}.{name}")


def _load_file(path: Path) -> ModuleType:
    """A study file, imported once per process (as a module named after its path)."""
    module_name = f"rankstudy_study_file_{abs(hash(str(path)))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if not path.is_file():
        raise ConfigError(f"study file {str(path)!r} does not exist (or is not a file)")
    if not NAME.fullmatch(path.stem):
        raise ConfigError(
            f"study file {path.name!r}: its name {path.stem!r} names the study, so it must be "
            "letters, digits and ._- starting with a letter, digit or _"
        )
    found = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(found)
    sys.modules[module_name] = module  # dataclasses in the file look their module up here
    try:
        found.loader.exec_module(module)
    except Exception as err:  # the user's code: its error in one line, where it came from
        del sys.modules[module_name]
        raise ConfigError(
            f"study file {path.name} failed to load: {type(err).__name__}: {err}"
        ) from None
    missing = [attr for attr in ("get_config", "PRESETS") if not hasattr(module, attr)]
    offered = tuple(getattr(module, "PRESETS", ()))
    if missing or not offered or not set(offered) <= set(TIERS):
        del sys.modules[module_name]
        raise ConfigError(
            f"study file {path.name} must define get_config(preset, data=None) -> StudySpec "
            f"and PRESETS, a tuple of tiers from {', '.join(TIERS)} (it has "
            f"PRESETS={offered!r}; missing: {', '.join(missing) or 'nothing'})"
        )
    return module


def presets(name: str) -> tuple[str, ...]:
    return tuple(load(name).PRESETS)


def default_preset(name: str) -> str:
    return getattr(load(name), "DEFAULT_PRESET", "full")


def reads_user_data(name: str) -> bool:
    """Whether the study trains on a user's data (`--data`): its base says dataset='user'."""
    return config(name).base.dataset == "user"


def config(name: str, preset: str | None = None, data: StudyData | None = None) -> StudySpec:
    """The study's spec at one tier (None: its default) for `data` (None: none given); a
    tier it does not offer is refused by name, and so is data given to a study that reads
    none."""
    preset = preset or default_preset(name)
    offered = presets(name)
    if preset not in offered:
        raise ConfigError(
            f"preset {preset!r} is not offered by {name}: use one of {', '.join(offered)}"
        )
    spec = load(name).get_config(preset, data)
    if not isinstance(spec, StudySpec):
        raise ConfigError(f"{name}: get_config({preset!r}) returned {type(spec).__name__}, "
                          "not a StudySpec")  # fmt: skip
    if spec.name != study_name(name):
        raise ConfigError(
            f"{name}: its StudySpec is named {spec.name!r}; name it {study_name(name)!r} (the "
            "study's name, which --resume and the report find its invocations by)"
        )
    if data is not None:
        check_data_given(name, True)
        spec = replace(spec, data=data)
    return spec


def check_data_given(name: str, given: bool) -> None:
    """A study of a user's data needs it (`--data`); every other study takes none."""
    reads = reads_user_data(name)
    if given and not reads:
        readers = ", ".join(n for n in names() if reads_user_data(n))
        raise ConfigError(
            f"--data/--labels are for the studies of a user's data ({readers}), not {name}"
        )
    if reads and not given:
        raise ConfigError(
            f"{name} needs --data PATH: a .npy/.npz file, an image folder or torchvision:NAME"
        )
