"""Has a run's W_e rank settled? The rule, from the run's own rank history and spectrum.

A rank read at a fixed budget is the budget's, not the method's: greedy learning adds
directions after ever longer plateaus (docs/results.md), so a rank that has merely held for
a while may be mid-plateau. Settled (written before the desktop runs; the transit factor
added on 2026-12-04 from the 10-seed GPU runs in docs/results.md):

- W_e's rank unchanged for at least SETTLED_STEPS optimiser steps, and for at least
  TRANSIT_FACTOR times the longest wait between two earlier changes (a plateau as long as
  the last one is not yet evidence that no direction is still in transit);
- a clear spectral gap at that rank, sigma_r / sigma_r+1 >= SETTLED_GAP (a rank sitting on
  a value that is still crossing the threshold has none).

One implementation for the Trainer (which logs the holds every epoch) and the analysis
(which reads them back from logged spectra: `analysis/settle.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SETTLED_STEPS = 3000
SETTLED_GAP = 10.0
TRANSIT_FACTOR = 5.0

SETTLED_RULE = (
    f"settled: W_e's rank unchanged over the last {SETTLED_STEPS:,} steps or more and over at "
    f"least {TRANSIT_FACTOR:g}x the longest wait between two earlier changes, with "
    f"sigma_r / sigma_(r+1) >= {SETTLED_GAP:g} at its rank r"
)


def spectral_gap(singular_values: Sequence[float], rank: int) -> float:
    """sigma_r / sigma_{r+1} of a descending spectrum; inf when nothing follows sigma_r."""
    values = sorted((float(v) for v in singular_values), reverse=True)
    if rank < 1:
        return math.nan
    if rank >= len(values) or values[rank] <= 0:
        return math.inf
    return values[rank - 1] / values[rank]


def rank_holds(steps: Sequence[int], ranks: Sequence[int]) -> tuple[int, int]:
    """(steps the last rank has held, the longest wait between two earlier changes).

    Records are (step, rank) pairs in order. The first record opens the first wait; each
    change of rank closes one and opens the next; the last one is still open (the hold).
    """
    if not steps:
        return 0, 0
    opened, longest = steps[0], 0
    for i in range(1, len(ranks)):
        if ranks[i] != ranks[i - 1]:
            longest = max(longest, steps[i] - opened)
            opened = steps[i]
    return int(steps[-1] - opened), int(longest)


def emergence_steps(steps: Sequence[int], ranks: Sequence[int]) -> tuple[int, ...]:
    """The step at which each of the final rank's directions emerged for good: for i = 1 ...
    ranks[-1], the first record's step from which the rank never fell below i again.

    Records are (step, rank) pairs in order, one per epoch, so a step is known to within an
    epoch; a direction present from the first record (e.g. a scaled orthogonal init's full
    rank that never collapsed below it) gets the first record's step.
    """
    if not ranks:
        return ()
    emerged, floor = [0] * int(ranks[-1]), math.inf  # floor: the lowest rank from here on
    for i in range(len(ranks) - 1, -1, -1):
        floor = min(floor, ranks[i])
        for direction in range(1, min(int(floor), len(emerged)) + 1):
            emerged[direction - 1] = int(steps[i])
    return tuple(emerged)


def is_settled(held: int, longest_wait: int, gap: float) -> bool:
    """The rule above, from `rank_holds` and `spectral_gap`."""
    return held >= max(SETTLED_STEPS, TRANSIT_FACTOR * longest_wait) and gap >= SETTLED_GAP
