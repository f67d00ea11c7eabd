"""Fig. 3: MNIST, orthogonal init + alpha + lr / N, two-stage training, alpha escalated.

For each N: alpha climbs a ladder (all seeds per rung) until a run diverges (Sec. 3.2);
each run trains the N-layer sub-network until W_e's rank is unchanged for
`patience_steps`, then continues with an explicit bottleneck of that rank. The paper
finds behaviour alike for N > 8, improving with alpha up to ~100 and then flat until
divergence.

    python -m study.run mnist_alpha_sweep                  # GPU(s): see LADDERS, 10 seeds
    python -m study.run mnist_alpha_sweep --preset laptop  # CPU: ~45 min on 2 cores (46 measured)
    python -m study.run mnist_alpha_sweep --smoke          # CPU: ~1 min (measured 69 s)

MNIST from the data root.
"""

import functools

from ._images import alpha_sweep

PRESETS = ("full", "desktop", "laptop", "smoke")
get_config = functools.partial(alpha_sweep, "mnist")
