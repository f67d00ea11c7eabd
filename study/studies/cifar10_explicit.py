"""App. D, Fig. 8 baseline: CIFAR-10, the explicit d -> k -> d bottleneck over k, plus vanilla.

The explicit bottleneck caps the latent rank at k; sweeping k with downstream tasks finds
the best rank by supervision. The implicit method should land in that optimal range.

    python -m study.run cifar10_explicit  # GPU(s): 10 seeds x 11 configs
    python -m study.run cifar10_explicit --smoke  # CPU: ~1.5 min

CIFAR-10 is downloaded by torchvision on first use.
"""

import functools

from ._images import explicit

PRESETS = ("full", "smoke")
get_config = functools.partial(explicit, "cifar10")
