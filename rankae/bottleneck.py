"""Bottlenecks between encoder and decoder, and the paper's equations about them.

- `LinearSubnetwork`: N bias-free d x d layers, z_N = W_N ... W_1 z (Sec. 2), with the
  `standard`, `he_normal` or scaled `orthogonal` init (Sec. 2.3, App. B) and the alpha
  reparameterisation W_i = alpha * What_i (Sec. 2.4).
- `ExplicitBottleneck`: d -> k -> d, bias-free, the explicit rank baseline (Sec. 3.2); it
  can be built from a matrix by truncated SVD (the stage-2 replacement).
- vanilla: `torch.nn.Identity()`.

Inits, as this project defines them:
- `standard`: PyTorch's nn.Linear default, kaiming_uniform(a=sqrt 5) = U(-1/sqrt d, 1/sqrt d).
  This is what the IRMAE code uses and what reproduces the paper's "standard He init"
  behaviour on the linear experiment.
- `he_normal`: Kaiming normal with gain sqrt(2) (std sqrt(2/d)); W_e's scale grows with N
  and diverges quickly at the paper's learning rates. Offered for comparison.
- `orthogonal`: each W_i an independent random orthogonal matrix times c^(1/N), so
  W_e = c * orthogonal; c is `init_scale`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def effective_matrix(weights: list[torch.Tensor]) -> torch.Tensor:
    """Sec. 2: W_e = W_N W_{N-1} ... W_1 for weights given in order [W_1, ..., W_N]."""
    product = weights[0]
    for w in weights[1:]:
        product = w @ product
    return product


def balance_gap(weights: list[torch.Tensor]) -> float:
    """Eq. (1): max_i ||W_{i+1}^T W_{i+1} - W_i W_i^T||_F; zero for balanced initialisation."""
    gaps = [
        torch.linalg.norm(nxt.T @ nxt - cur @ cur.T).item()
        for cur, nxt in zip(weights[:-1], weights[1:], strict=True)
    ]
    return max(gaps, default=0.0)


def modulation_eigenvalues(singular_values: torch.Tensor, depth: int) -> torch.Tensor:
    """Eq. (5): mu_{r,r'} = sum_{j=1..N} sigma_r^{2(N-j)/N} sigma_{r'}^{2(j-1)/N} (a matrix)."""
    j = torch.arange(1, depth + 1, dtype=singular_values.dtype, device=singular_values.device)
    row = singular_values[:, None, None] ** (2 * (depth - j) / depth)
    col = singular_values[None, :, None] ** (2 * (j - 1) / depth)
    return (row * col).sum(dim=-1)


def predicted_effective_update(
    effective: torch.Tensor, grad: torch.Tensor, lr: float, depth: int
) -> torch.Tensor:
    """Eqs. (2)-(4): Delta W_e = -lr * P_{W_e} dL/dW, with P's eigenvectors u_r v_r'^T.

    Writing G = dL/dW(W_e) in W_e's singular bases, P scales its (r, r') entry by
    mu_{r,r'}: Delta W_e = -lr * U (mu * (U^T G V)) V^T. Valid to first order in lr
    from a balanced initialisation (Eq. 1).
    """
    u, s, vh = torch.linalg.svd(effective)
    mu = modulation_eigenvalues(s, depth)
    return -lr * u @ (mu * (u.T @ grad @ vh.T)) @ vh


def depth_scaled_lr(lr: float, depth: int) -> float:
    """Sec. 2.5: mu_11 = N sigma_1^{2(N-1)/N} grows linearly in N, so use lr / N."""
    return lr / depth


def orthogonal_layers(
    depth: int, dim: int, scale: float, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Sec. 2.3 / App. B: independent random orthogonal W_i times scale^(1/N)."""
    per_layer = scale ** (1.0 / depth)
    layers = []
    for _ in range(depth):
        w = torch.empty(dim, dim, dtype=torch.float64)
        nn.init.orthogonal_(w, generator=generator)
        layers.append(per_layer * w)
    return layers


def standard_layers(
    depth: int, dim: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """PyTorch's nn.Linear default: U(-1/sqrt(d), 1/sqrt(d)) (kaiming_uniform, a=sqrt 5)."""
    bound = 1.0 / math.sqrt(dim)
    return [
        torch.empty(dim, dim, dtype=torch.float64).uniform_(-bound, bound, generator=generator)
        for _ in range(depth)
    ]


def he_normal_layers(
    depth: int, dim: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Kaiming normal, gain sqrt(2): N(0, 2/d) entries."""
    std = math.sqrt(2.0 / dim)
    return [
        torch.empty(dim, dim, dtype=torch.float64).normal_(0.0, std, generator=generator)
        for _ in range(depth)
    ]


class LinearSubnetwork(nn.Module):
    """N bias-free d x d layers with W_i = alpha * What_i; What_i is the learnable weight."""

    def __init__(
        self,
        dim: int,
        depth: int,
        init: str = "orthogonal",
        alpha: float = 1.0,
        init_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth={depth!r} is invalid: must be an integer >= 1")
        if not alpha > 0:
            raise ValueError(f"alpha={alpha!r} is invalid: must be > 0")
        if not init_scale > 0:
            raise ValueError(f"init_scale={init_scale!r} is invalid: must be > 0")
        builders = {
            "orthogonal": lambda: orthogonal_layers(depth, dim, init_scale, generator),
            "standard": lambda: standard_layers(depth, dim, generator),
            "he_normal": lambda: he_normal_layers(depth, dim, generator),
        }
        if init not in builders:
            raise ValueError(f"init={init!r} is not known: allowed are {', '.join(builders)}")
        self.dim, self.depth, self.alpha, self.init = dim, depth, float(alpha), init
        # Sec. 2.4: What_i starts at init / alpha, so W_i = alpha * What_i starts at init.
        self.hat_weights = nn.ParameterList(nn.Parameter(w / alpha) for w in builders[init]())

    def weights(self) -> list[torch.Tensor]:
        """[W_1, ..., W_N] with W_i = alpha * What_i (Sec. 2.4)."""
        return [self.alpha * w for w in self.hat_weights]

    def effective_matrix(self) -> torch.Tensor:
        return effective_matrix(self.weights())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for w in self.weights():
            z = z @ w.T
        return z

    def collapse(self) -> nn.Linear:
        """The single d x d layer W_e used at inference; identical outputs."""
        layer = nn.Linear(self.dim, self.dim, bias=False)
        effective = self.effective_matrix().detach()
        layer = layer.to(dtype=effective.dtype, device=effective.device)
        layer.weight.data.copy_(effective)
        return layer


class ExplicitBottleneck(nn.Module):
    """Two bias-free layers d -> k -> d: the latent rank is at most k by construction."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        if not 1 <= k <= dim:
            raise ValueError(f"k={k!r} is invalid: must be an integer 1 <= k <= d={dim}")
        self.dim, self.k = dim, k
        self.down = nn.Linear(dim, k, bias=False)
        self.up = nn.Linear(k, dim, bias=False)

    @classmethod
    def from_matrix(cls, matrix: torch.Tensor, k: int) -> ExplicitBottleneck:
        """Rank-k truncated SVD of `matrix`, split as (U_k S_k^1/2)(S_k^1/2 V_k^T).

        The balanced split keeps both factors the same scale, which is what gradient
        descent on a two-layer product prefers; the product equals the truncation exactly.
        """
        dim = matrix.shape[0]
        module = cls(dim, k).to(dtype=matrix.dtype, device=matrix.device)
        u, s, vh = torch.linalg.svd(matrix.detach())
        root = s[:k].sqrt()
        module.down.weight.data.copy_(root[:, None] * vh[:k])
        module.up.weight.data.copy_(u[:, :k] * root[None, :])
        return module

    def effective_matrix(self) -> torch.Tensor:
        return self.up.weight @ self.down.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(z))
