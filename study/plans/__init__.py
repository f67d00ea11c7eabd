"""A study's plan of trials: one module per kind, holding the plan and its search.

- `grid.py`: `Grid`, a fixed list of variants, each run once per seed
- `escalation.py`: `AlphaEscalation` (Sec. 3.2: per N, a ladder of alphas climbed until a run
  diverges) and `alpha_ladder`
- `rank_estimate.py`: `RankEstimate`, the escalation on a user's data, then explicit
  bottlenecks around the rank it found
- `optuna_search.py`: `OptunaSpace`, k / N / alpha searched on a validation metric, then the
  chosen configuration re-trained on fresh seeds
- `base.py`: the `Plan` and `Search` protocols, `Trials` (how a variant becomes trials)

A plan says which variants it can hand out (every one is built once before Ray starts, so a
bad value fails early), how many trials it takes at most, how many can run at once, which
config keys it varies, how it reads in words, its search, whether a finished set of trials
completes it, and what its outcome adds to the results table. The rest of the service asks
the plan; it never asks which kind it is. A variant is a dict of `RunConfig` overrides
(`search_spaces` names the paper's); every trial config is `base | --set | variant | seed`.
"""

from search_spaces import Variant

from .base import Plan, Search, Trials
from .escalation import AlphaEscalation, alpha_ladder
from .grid import Grid
from .optuna_search import OptunaSpace
from .rank_estimate import RankEstimate

__all__ = [
    "AlphaEscalation", "Grid", "OptunaSpace", "Plan", "RankEstimate", "Search", "Trials",
    "Variant", "alpha_ladder",
]  # fmt: skip
