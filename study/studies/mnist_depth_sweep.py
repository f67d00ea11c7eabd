"""Fig. 2: MNIST, vanilla and standard init over depth N, judged downstream.

With PyTorch's default ("standard") init the rank the sub-network finds depends on N,
and the best N differs between classification and FID: the problem the paper fixes.

    python -m study.run mnist_depth_sweep  # GPU(s): 10 seeds x 6 configs
    python -m study.run mnist_depth_sweep --smoke  # CPU: ~1.5 min

MNIST from the data root.
"""

import functools

from ._images import depth_sweep

PRESETS = ("full", "smoke")
get_config = functools.partial(depth_sweep, "mnist")
