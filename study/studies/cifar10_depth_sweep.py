"""App. D, Fig. 6: CIFAR-10, vanilla and standard init over depth N, judged downstream.

With PyTorch's default ("standard") init the rank the sub-network finds depends on N,
and the best N differs between classification and FID: the problem the paper fixes.

    python -m study.run cifar10_depth_sweep  # GPU(s): 10 seeds x 6 configs
    python -m study.run cifar10_depth_sweep --smoke  # CPU: ~1.5 min

CIFAR-10 is downloaded by torchvision on first use.
"""

import functools

from ._images import depth_sweep

PRESETS = ("full", "smoke")
get_config = functools.partial(depth_sweep, "cifar10")
