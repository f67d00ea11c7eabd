"""Fig. 4 baseline: MNIST, the explicit d -> k -> d bottleneck over k, plus vanilla.

The explicit bottleneck caps the latent rank at k; sweeping k with downstream tasks finds
the best rank by supervision. The implicit method should land in that optimal range.

    python -m study.run mnist_explicit                  # GPU(s): 10 seeds x 11 configs
    python -m study.run mnist_explicit --preset laptop  # CPU: 2 x 6 runs, ~1 h (67 min measured)
    python -m study.run mnist_explicit --smoke          # CPU: ~1 min (measured 73 s)

MNIST from the data root.
"""

import functools

from ._images import explicit

PRESETS = ("full", "desktop", "laptop", "smoke")
get_config = functools.partial(explicit, "mnist")
