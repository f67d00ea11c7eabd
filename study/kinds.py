"""What each command-line value may be: one rule per kind of value.

Every option of `python -m study.run` declares its kind as its argparse `type`, so a new
option gets its check by naming a kind here; the `--set` keys get theirs from their
RunConfig field's type and bounds (`rankae.config`, whose integer bounds these share).
A refusal names the option, the value and what is allowed, in one line with exit code 2,
before Ray starts or anything is written (`OneLineParser`).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import NoReturn

from rankae.config import INTEGER_MAX, SEED_MAX

# Seeds in one invocation: each seed is at least one MLflow run and one trial's member, and
# the plan (every trial's config) is built in the driver's memory before anything starts.
SEEDS_MAX = 10_000
# A name that MLflow (experiment names) and the file system (invocation records under
# .rankstudy/) both take as given: printable, no path separator, no leading dot or space.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9 ._-]*")
NAME_MAX = 200


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a misuse is one line (`prog: error: ...`, exit 2) without the usage
    block: the line names the option and the value, `--help` shows the usage."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _named(rule: str, check: Callable[[str], object]) -> Callable[[str], object]:
    check.__name__ = rule  # argparse names the type in some of its own messages
    return check


def _integer(text: str, low: int, high: int) -> int:
    """An integer written as one (not 1.5, 1e3 or True), within [low, high]."""
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is invalid: must be an integer in [{low}, {high:,}]"
        )
    value = int(text)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"{value} is invalid: must be an integer in [{low}, {high:,}]"
        )
    return value


def count(low: int, high: int = INTEGER_MAX) -> Callable[[str], int]:
    """A count of things: an integer in [low, high]."""
    return _named(f"integer in [{low}, {high}]", lambda text: _integer(text, low, high))


def seed_list(text: str) -> tuple[int, ...]:
    """`--seeds`: a count n (seeds 0..n-1, n <= SEEDS_MAX; 0 alone is seed 0) or distinct
    seeds in [0, SEED_MAX] separated by commas."""
    parts = [part for part in text.split(",") if part.strip()]
    if "," not in text:
        return tuple(range(max(_integer(text, 0, SEEDS_MAX), 1)))
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: give a count n or seeds like 0,1,2")
    if len(parts) > SEEDS_MAX:
        raise argparse.ArgumentTypeError(
            f"{len(parts)} seeds are too many: at most {SEEDS_MAX:,} in one invocation"
        )
    seeds = tuple(_integer(part, 0, SEED_MAX) for part in parts)
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"{text!r} repeats seed(s) {', '.join(map(str, repeated))}: each seed is one run, "
            "give it once"
        )
    return seeds


def per_trial(text: str) -> int | str:
    """`--seeds-per-trial`: auto, or a count of seeds trained side by side."""
    return "auto" if text.strip() == "auto" else _integer(text, 1, SEEDS_MAX)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is invalid: must be a finite number")
    return value


def cpus(text: str) -> float:
    """A trial's CPUs: a finite number > 0 (this machine's count is checked with the plan)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} is invalid: must be a finite number > 0")
    return value


def gpus(text: str) -> float:
    """A trial's GPUs: a fraction in [0, 1] (trials share a GPU) or a whole number."""
    value = _number(text)
    if value < 0 or (value > 1 and value != int(value)):
        raise argparse.ArgumentTypeError(
            f"{value:g} is invalid: use a fraction in [0, 1] or a whole number"
        )
    return value


def name(text: str) -> str:
    """An MLflow experiment or an invocation's name: 1-200 printable characters, letters,
    digits, spaces and `._-`, not starting with a dot or a space."""
    if len(text) > NAME_MAX or not NAME.fullmatch(text) or text != text.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is invalid: a name is 1-{NAME_MAX} characters of letters, digits, "
            "spaces and ._- that starts with a letter, digit or _ and ends without a space"
        )
    return text


def place(text: str) -> str:
    """A path or URI: non-empty, one line; where it leads is probed before use."""
    if not text.strip() or any(c in text for c in "\n\r\0"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is invalid: give a path or URI (non-empty, one line)"
        )
    return text
