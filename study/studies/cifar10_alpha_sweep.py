"""App. D, Fig. 7: CIFAR-10, orthogonal init + alpha + lr / N, two-stage training, alpha escalated.

For each N in {4, 8, 16, 32}: alpha = 1, 10, 50, 100, 200, ... (all seeds per rung) until a run
diverges (Sec. 3.2); each run trains the N-layer sub-network until W_e's rank is
unchanged for 5 epochs, then continues with an explicit bottleneck of that rank.
The paper finds behaviour alike for N > 8, improving with alpha up to ~100 and then
flat until divergence.

    python -m study.run cifar10_alpha_sweep  # GPU(s): 10 seeds per rung
    python -m study.run cifar10_alpha_sweep --smoke  # CPU: ~1.5 min

CIFAR-10 is downloaded by torchvision on first use.
"""

import functools

from ._images import alpha_sweep

PRESETS = ("full", "smoke")
get_config = functools.partial(alpha_sweep, "cifar10")
