"""The linear sub-network and the paper's equations about it (Sec. 2, App. B), in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rankae.bottleneck import (
    ExplicitBottleneck,
    LinearSubnetwork,
    balance_gap,
    depth_scaled_lr,
    modulation_eigenvalues,
    predicted_effective_update,
)
from rankae.rank import matrix_rank

DIM = 128  # the paper's d


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def svdvals(matrix: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(matrix.detach())


def gd_step(net: nn.Module, loss_fn, lr: float) -> None:
    """One plain gradient-descent step on every parameter of `net`."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn(net).backward()
    optimizer.step()


def balanced_layers(singular_values: torch.Tensor, depth: int, seed: int) -> list[torch.Tensor]:
    """W_i = Q_i S^(1/N) Q_{i-1}^T: satisfies Eq. (1) with a non-uniform W_e spectrum S."""
    dim = len(singular_values)
    bases = []
    for _ in range(depth + 1):
        q = torch.empty(dim, dim, dtype=torch.float64)
        nn.init.orthogonal_(q, generator=gen(seed + len(bases)))
        bases.append(q)
    root = torch.diag(singular_values ** (1.0 / depth))
    return [bases[i + 1] @ root @ bases[i].T for i in range(depth)]


@pytest.mark.parametrize("depth", [1, 4, 16, 32])
@pytest.mark.parametrize("scale", [1e-3, 1.0])
def test_orthogonal_init_gives_every_singular_value_c(depth: int, scale: float) -> None:
    net = LinearSubnetwork(DIM, depth, init="orthogonal", init_scale=scale, generator=gen())
    values = svdvals(net.effective_matrix())
    assert values.dtype == torch.float64
    torch.testing.assert_close(values, torch.full_like(values, scale), rtol=1e-10, atol=0)


def test_standard_init_spectrum_spreads_and_shrinks_with_depth() -> None:
    """Sec. 2.3: the product of N random matrices has an N-dependent, non-uniform spectrum."""
    top, tenth, rank = [], [], []
    for depth in (1, 4, 16, 32):
        effective = LinearSubnetwork(DIM, depth, "standard", generator=gen()).effective_matrix()
        values = svdvals(effective)
        top.append(values[0].item())
        tenth.append((values[9] / values[0]).item())
        rank.append(matrix_rank(effective))
    assert top == sorted(top, reverse=True) and top[-1] < 1e-3 * top[0]
    assert tenth == sorted(tenth, reverse=True) and tenth[-1] < 0.5 * tenth[0]
    assert rank == sorted(rank, reverse=True) and rank[-1] < DIM // 2 < rank[0]


def test_he_normal_is_kaiming_normal_and_differs_from_standard() -> None:
    depth = 8
    he = LinearSubnetwork(DIM, depth, init="he_normal", generator=gen())
    std = LinearSubnetwork(DIM, depth, init="standard", generator=gen())
    he_entries = torch.cat([w.flatten() for w in he.weights()])
    std_entries = torch.cat([w.flatten() for w in std.weights()])
    assert he_entries.std().item() == pytest.approx(math.sqrt(2.0 / DIM), rel=0.02)
    assert std_entries.std().item() == pytest.approx(1.0 / math.sqrt(3 * DIM), rel=0.02)
    assert std_entries.abs().max().item() <= 1.0 / math.sqrt(DIM)
    # gain sqrt 2 makes W_e grow with depth, the standard init makes it shrink
    assert svdvals(he.effective_matrix())[0] > 10 > svdvals(std.effective_matrix())[0]


@pytest.mark.parametrize("init", ["orthogonal", "standard"])
def test_initial_function_is_the_same_for_every_alpha(init: str) -> None:
    z = torch.randn(32, DIM, dtype=torch.float64, generator=gen(5))
    nets = [LinearSubnetwork(DIM, 8, init, alpha=a, generator=gen()) for a in (1, 2, 10, 300)]
    for net in nets[1:]:
        assert net.hat_weights[0].abs().max() < nets[0].hat_weights[0].abs().max()
        for w, w_ref in zip(net.weights(), nets[0].weights(), strict=True):
            torch.testing.assert_close(w, w_ref, rtol=1e-14, atol=0)
        torch.testing.assert_close(net(z), nets[0](z), rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [2.0, 10.0, 300.0])
def test_one_sgd_step_moves_w_i_by_alpha_squared(alpha: float) -> None:
    """Sec. 2.4: W_i = alpha What_i acts like an alpha^2 larger learning rate on W_i."""
    z = torch.randn(16, 16, dtype=torch.float64, generator=gen(1))
    target = torch.randn(16, 16, dtype=torch.float64, generator=gen(2))

    def step(a: float) -> list[torch.Tensor]:
        net = LinearSubnetwork(16, 4, "orthogonal", alpha=a, generator=gen())
        before = [w.detach().clone() for w in net.weights()]
        gd_step(net, lambda m: F.mse_loss(m(z), target), lr=1e-7)
        return [w.detach() - b for w, b in zip(net.weights(), before, strict=True)]

    for moved, moved_ref in zip(step(alpha), step(1.0), strict=True):
        assert moved_ref.abs().max() > 0
        torch.testing.assert_close(moved, alpha**2 * moved_ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("init", ["orthogonal", "standard", "he_normal"])
def test_collapse_equals_the_n_layer_forward(init: str) -> None:
    net = LinearSubnetwork(DIM, 16, init, alpha=3.0, init_scale=1.0, generator=gen())
    z = torch.randn(64, DIM, dtype=torch.float64, generator=gen(3))
    collapsed = net.collapse()
    assert collapsed.weight.dtype == torch.float64 and collapsed.bias is None
    with torch.no_grad():
        torch.testing.assert_close(collapsed(z), net(z), rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [1, 8, 64, DIM])
def test_explicit_bottleneck_from_matrix_is_the_rank_k_truncation(k: int) -> None:
    matrix = torch.randn(DIM, DIM, dtype=torch.float64, generator=gen(4))
    u, s, vh = torch.linalg.svd(matrix)
    truncation = u[:, :k] @ torch.diag(s[:k]) @ vh[:k]
    explicit = ExplicitBottleneck.from_matrix(matrix, k)
    assert explicit.down.weight.shape == (k, DIM) and explicit.up.weight.shape == (DIM, k)
    torch.testing.assert_close(explicit.effective_matrix(), truncation, rtol=0, atol=1e-10)
    z = torch.randn(8, DIM, dtype=torch.float64, generator=gen(5))
    with torch.no_grad():
        torch.testing.assert_close(explicit(z), z @ truncation.T, rtol=0, atol=1e-10)
    assert matrix_rank(explicit.effective_matrix(), threshold=1e-6) == k


def test_orthogonal_init_is_balanced_and_standard_is_not() -> None:
    """Eq. (1): W_{i+1}^T W_{i+1} = W_i W_i^T holds for scaled orthogonal layers."""
    for alpha in (1.0, 300.0):
        net = LinearSubnetwork(DIM, 16, "orthogonal", alpha=alpha, init_scale=1e-3, generator=gen())
        assert balance_gap(net.weights()) < 1e-12
    assert balance_gap(LinearSubnetwork(DIM, 16, "standard", generator=gen()).weights()) > 0.1
    spread = torch.linspace(3, 0.1, 16, dtype=torch.float64)
    assert balance_gap(balanced_layers(spread, 8, 0)) < 1e-12


def test_modulation_eigenvalues_match_sec_2_5() -> None:
    """Eq. (5) on the diagonal: mu_rr = N sigma_r^(2(N-1)/N); for N=1 every mu is 1."""
    sigma = torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64)
    for depth in (1, 4, 16):
        mu = modulation_eigenvalues(sigma, depth)
        expected = depth * sigma ** (2 * (depth - 1) / depth)
        torch.testing.assert_close(mu.diagonal(), expected, rtol=1e-12, atol=0)
        torch.testing.assert_close(mu, mu.T, rtol=1e-12, atol=0)
    torch.testing.assert_close(modulation_eigenvalues(sigma, 1), torch.ones(3, 3).double())
    assert depth_scaled_lr(0.03, 16) == pytest.approx(0.03 / 16)


@pytest.mark.parametrize("depth", [4, 16, 32])
@pytest.mark.parametrize("spectrum", ["orthogonal", "balanced_nonuniform"])
def test_predicted_effective_update_matches_one_gd_step(depth: int, spectrum: str) -> None:
    """Eqs. (2)-(5): from a balanced init, one GD step moves W_e by -lr P_{W_e} dL/dW."""
    dim, lr = 16, 1e-4
    z = torch.randn(32, dim, dtype=torch.float64, generator=gen(1))
    target = torch.randn(32, dim, dtype=torch.float64, generator=gen(2))
    net = LinearSubnetwork(dim, depth, "orthogonal", init_scale=0.5, generator=gen())
    if spectrum == "balanced_nonuniform":
        layers = balanced_layers(torch.logspace(0.5, -1, dim, dtype=torch.float64), depth, 0)
        with torch.no_grad():
            for param, layer in zip(net.hat_weights, layers, strict=True):
                param.copy_(layer)
    assert balance_gap(net.weights()) < 1e-12
    effective = net.effective_matrix().detach().clone()
    leaf = effective.clone().requires_grad_()
    F.mse_loss(z @ leaf.T, target).backward()  # Eq. (6): dL/dW at W_e
    grad = leaf.grad

    gd_step(net, lambda m: F.mse_loss(m(z), target), lr)
    actual = net.effective_matrix().detach() - effective

    def error(prediction: torch.Tensor) -> float:
        return (torch.linalg.norm(actual - prediction) / torch.linalg.norm(actual)).item()

    predicted_error = error(predicted_effective_update(effective, grad, lr, depth))
    naive_error = error(-lr * grad)
    assert predicted_error < 1e-2
    assert naive_error > 0.2 and predicted_error < naive_error / 100
