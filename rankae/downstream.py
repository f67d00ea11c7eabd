"""The paper's downstream tasks (App. C): low-label classification and GMM sampling.

Classification: a frozen autoencoder's codes of `n` labelled training images (chosen by
`select_labelled`, class-balanced and seeded) train a small MLP; the paper reports the
best TEST accuracy seen during 500 epochs of a classifier trained on all n labels
(`acc_best`, optimistic because the test labels pick the epoch: `val_fraction=0`). We
also report `acc_selected`: a second classifier fits on the labelled set less a
validation split, and its test accuracy is read at the epoch with the best validation
accuracy, so test labels never choose anything.

Sampling: a Gaussian mixture fitted to training-set codes; decoded samples go to FID
(`rankae.fid`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from torch import nn


def select_labelled(labels: torch.Tensor, n: int, seed: int, cap: bool = False) -> torch.Tensor:
    """Indices of n class-balanced training examples, the same for the same seed.

    Each of the C classes gets n // C examples, drawn uniformly without replacement;
    the n % C left over go one each to classes picked by the same seeded generator.
    Returned sorted (dataset order). Without `cap`, n larger than the pool or a class with
    too few examples for its quota raises.

    With `cap=True` (a user's small or unbalanced data) n is capped at the pool's size and
    the balance is kept as far as the pool allows: a class with fewer examples than its
    quota gives all it has, and the shortfall is shared out evenly (same rule) among the
    classes that have more. While every class can fill n // C + 1 the result is exactly the
    uncapped one.
    """
    labels = labels.detach().cpu()
    if cap:
        n = min(n, labels.numel())
    if not 0 < n <= labels.numel():
        raise ValueError(f"n={n} is invalid: need 1 <= n <= {labels.numel()} (labelled pool)")
    classes = torch.unique(labels)
    sizes = torch.stack([(labels == cls).sum() for cls in classes])
    gen = torch.Generator().manual_seed(seed)
    quota = torch.full((len(classes),), n // len(classes), dtype=torch.long)
    quota[torch.randperm(len(classes), generator=gen)[: n % len(classes)]] += 1
    if cap:
        quota = _fill_quotas(quota, sizes, n, gen)
    chosen = []
    for cls, k in zip(classes.tolist(), quota.tolist(), strict=True):
        members = torch.nonzero(labels == cls).flatten()
        if k > members.numel():
            raise ValueError(
                f"class {cls} has {members.numel()} examples but n={n} needs {k} per class"
            )
        chosen.append(members[torch.randperm(members.numel(), generator=gen)[:k]])
    return torch.sort(torch.cat(chosen)).values


def _fill_quotas(
    quota: torch.Tensor, sizes: torch.Tensor, n: int, gen: torch.Generator
) -> torch.Tensor:
    """Quotas capped at the class sizes, the shortfall shared out evenly (n <= sizes.sum())."""
    quota = torch.minimum(quota, sizes)
    while (missing := n - int(quota.sum())) > 0:
        room = torch.nonzero(quota < sizes).flatten()
        extra = torch.full((len(room),), missing // len(room), dtype=torch.long)
        extra[torch.randperm(len(room), generator=gen)[: missing % len(room)]] += 1
        quota[room] = torch.minimum(quota[room] + extra, sizes[room])
    return quota


def _stratified_split(
    labels: torch.Tensor, fraction: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit, val) indices; each class gives round(fraction * size) to val, but keeps one.

    With fraction > 0 a class of two or more gives at least one, so a small labelled set
    (e.g. 2 per class) still has a validation split and acc_selected is a number.
    """
    fit, val = [], []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(members.numel(), generator=gen)]
        share = round(fraction * members.numel())
        k = min(max(share, 1) if fraction > 0 else 0, members.numel() - 1)
        val.append(members[:k])
        fit.append(members[k:])
    return torch.cat(fit), torch.cat(val)


@dataclass(frozen=True)
class ClassifierResult:
    """Accuracies of one classifier run; epochs count from 1 (after the first pass)."""

    acc_best: float  # best test accuracy over all epochs: the paper's number (optimistic)
    acc_selected: float  # test accuracy at selected_epoch (chosen on validation only; nan
    # when val_fraction=0, which trains on every label and selects nothing)
    best_epoch: int
    selected_epoch: int
    val_acc_selected: float
    test_acc: np.ndarray  # (epochs,) test accuracy after each epoch
    val_acc: np.ndarray  # (epochs,) validation accuracy after each epoch
    val_loss: np.ndarray  # (epochs,) validation cross-entropy after each epoch


@contextmanager
def _single_threaded_on_cpu(dev: torch.device) -> Iterator[None]:
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_classifier(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    hidden: int = 128,
    epochs: int = 500,
    lr: float = 1e-3,
    batch_size: int = 32,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> ClassifierResult:
    """Train the paper's "2-layer ReLU MLP" on labelled codes and measure test accuracy.

    The network is Linear(d, hidden) -> ReLU -> Linear(hidden, classes): two linear
    layers, one hidden ReLU layer, no dropout; float32; Adam, cross-entropy, minibatches
    reshuffled every epoch (the last one may be short); classes = max(train_y) + 1. A
    stratified, seeded `val_fraction` of the labelled set is held out for selection;
    inputs (flattened) are standardised with mean and std of the remaining fitting part
    only (constant features are left unscaled). The selected epoch has the best
    validation accuracy, ties going to the lower validation loss, then the earlier epoch.

    Everything stays on the device: per-epoch permutations come from a seeded device
    generator, and accuracies are collected in device tensors that reach the host once,
    at the end (no per-batch synchronisation). On a CPU the loop runs single-threaded:
    at this size thread synchronisation costs more than it saves, and much more when
    other processes (e.g. parallel trials) share the cores.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} is invalid: need 0 <= val_fraction < 1")
    if epochs < 1 or batch_size < 1 or hidden < 1:
        raise ValueError(f"epochs={epochs}, batch_size={batch_size}, hidden={hidden}: need >= 1")
    dev = torch.device(device) if device is not None else train_x.device
    fit_idx, val_idx = _stratified_split(
        train_y.detach().cpu(), val_fraction, torch.Generator().manual_seed(seed)
    )
    selects = val_idx.numel() > 0
    x_all = train_x.detach().flatten(1).to(dev, torch.float32)
    y_all = train_y.detach().to(dev, torch.long)
    x_fit, y_fit = x_all[fit_idx.to(dev)], y_all[fit_idx.to(dev)]
    x_val, y_val = x_all[val_idx.to(dev)], y_all[val_idx.to(dev)]
    x_test = test_x.detach().flatten(1).to(dev, torch.float32)
    y_test = test_y.detach().to(dev, torch.long)
    mean, std = x_fit.mean(dim=0), x_fit.std(dim=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    x_fit, x_val, x_test = ((x - mean) / std for x in (x_fit, x_val, x_test))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(x_fit.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, int(y_fit.max()) + 1)
        ).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    perm_gen = torch.Generator(device=dev).manual_seed(seed)
    n_fit = x_fit.shape[0]
    history = torch.empty(3, epochs, device=dev)  # test accuracy, val accuracy, val loss

    with _single_threaded_on_cpu(dev):
        for epoch in range(epochs):
            perm = torch.randperm(n_fit, generator=perm_gen, device=dev)
            for start in range(0, n_fit, batch_size):
                idx = perm[start : start + batch_size]
                loss = loss_fn(model(x_fit[idx]), y_fit[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                history[0, epoch] = (model(x_test).argmax(dim=1) == y_test).float().mean()
                if selects:
                    val_logits = model(x_val)
                    history[1, epoch] = (val_logits.argmax(dim=1) == y_val).float().mean()
                    history[2, epoch] = loss_fn(val_logits, y_val)

    test_acc, val_acc, val_loss = history.cpu().double().numpy()
    best = int(np.argmax(test_acc))
    if selects:
        selected = int(np.lexsort((np.arange(epochs), val_loss, -val_acc))[0])
        acc_selected, val_acc_selected = float(test_acc[selected]), float(val_acc[selected])
    else:
        selected, acc_selected, val_acc_selected = -1, math.nan, math.nan
        val_acc = val_loss = np.full(epochs, math.nan)
    return ClassifierResult(
        acc_best=float(test_acc[best]),
        acc_selected=acc_selected,
        best_epoch=best + 1,
        selected_epoch=selected + 1,
        val_acc_selected=val_acc_selected,
        test_acc=test_acc,
        val_acc=val_acc,
        val_loss=val_loss,
    )


def fit_gmm_and_sample(
    train_codes: torch.Tensor, n_samples: int, n_components: int = 4, seed: int = 0
) -> torch.Tensor:
    """Fit GaussianMixture(n_components, full covariance) to codes and draw n_samples.

    Fitted in float64 with sklearn's default reg_covar (1e-6 added to the covariance
    diagonals), which copes with the low-rank codes the method produces at ordinary
    scales. If the fit still fails (rank-deficient codes of a large scale: 1e-6 is then
    below float64 round-off of the covariance), it is retried with reg_covar scaled to
    the codes' mean variance (1e-6, 1e-5, 1e-4 of it), with a warning. sklearn returns
    samples grouped by component; they are shuffled (seeded) so any prefix is a fair
    draw. Returned with the input's dtype and device.
    """
    codes = train_codes.detach().flatten(1).cpu().double().numpy()
    scale = max(float(codes.var(axis=0).mean()), 1.0)
    regs = (1e-6, 1e-6 * scale, 1e-5 * scale, 1e-4 * scale)
    for reg in regs:
        gmm = GaussianMixture(
            n_components, covariance_type="full", reg_covar=reg, random_state=seed
        )
        try:
            gmm.fit(codes)
        except ValueError as err:
            error = err
            continue
        if reg != regs[0]:
            warnings.warn(
                f"GaussianMixture needed reg_covar={reg:.3g}: the default 1e-6 failed "
                "(rank-deficient codes of a large scale)",
                RuntimeWarning,
                stacklevel=2,
            )
        samples, _ = gmm.sample(n_samples)
        samples = samples[np.random.default_rng(seed).permutation(n_samples)]
        return torch.as_tensor(samples, dtype=train_codes.dtype, device=train_codes.device)
    raise ValueError(f"GaussianMixture could not be fitted to the codes: {error}")
