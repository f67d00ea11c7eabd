"""The training engine: one autoencoder, one config, a record per epoch.

`Trainer(config).run()` is a plain iterator of `EpochRecord`s; nothing here knows about Ray.
Full-batch gradient descent (the synthetic experiment) counts `gd_steps_per_epoch` steps as
one "epoch"; minibatch Adam (images) walks a seeded permutation of the training set.

Two-stage training (Sec. 3.2): while `stage == 1` the N-layer sub-network trains; once W_e's
rank has been unchanged for `patience_steps` steps (or at `force_switch_epoch`), the
sub-network is replaced by an explicit d -> k -> d bottleneck with k = that rank, set from
W_e's truncated SVD so the function barely moves (only singular values below the rank
threshold are dropped). The encoder and decoder keep their Adam state; the new bottleneck
starts with fresh Adam moments (its parameters are new tensors of a different shape).

Hot path: the whole dataset sits on the device; the epoch loss is accumulated on the device
and read once per epoch; SVDs run once per epoch, outside the step loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import asdict

import torch
import torch.nn.functional as F

from .bottleneck import ExplicitBottleneck, LinearSubnetwork, depth_scaled_lr
from .config import RunConfig
from .models import Autoencoder, build_autoencoder
from .rank import (
    centred_code_singular_values,
    matrix_rank,
    normalize_spectrum,
    rank_from_spectrum,
)
from .records import BlownUp, EpochRecord, StageSwitch, blown_up, is_diverged, trivial_loss
from .rundata import RunData, load_run_data
from .settle import rank_holds

EVAL_BATCH = 2048  # codes are computed in chunks of this many inputs


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Trainer:
    """Trains one autoencoder; `run()` yields a record per epoch until the budget or divergence."""

    def __init__(
        self,
        config: RunConfig,
        device: torch.device | str | None = None,
        data: RunData | None = None,
    ) -> None:
        self.config = config.validate()
        self.device = pick_device(str(device) if device is not None else None)
        self.dtype = getattr(torch, config.dtype)
        self.data = (data or load_run_data(config)).to(self.device, self.dtype)
        input_dim = self.data.train.images.shape[-1]
        self.model: Autoencoder = build_autoencoder(config, input_dim=input_dim).to(self.device)
        if self.device.type == "cpu" and self.data.train.images.dim() == 4:
            # ATen's CPU convolutions (the only ones for float64) run ~1.6x faster with
            # channels-last weights, equal to rounding (docs/benchmarks.md)
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = self._make_optimizer()
        self.order = torch.Generator().manual_seed(config.seed)
        self.rows = self._training_rows()
        self.epoch = 0
        self.step = 0
        self.stage = 1
        self.elapsed_s = 0.0
        self.trivial_loss = trivial_loss(self.data.train.images)
        self.blown_up = BlownUp()  # the run of epochs stuck above divergence_factor x trivial
        self.diverged = False
        self.settled = False  # W_e's rank settled at the last record (rankae.settle)
        self.stable_steps = 0  # steps since W_e's rank last changed (checked once per epoch)
        self.last_we_rank: int | None = None
        self.initial_we_rank = self._we_rank_now()  # a rank still here has not settled
        self.switch: StageSwitch | None = None
        self.spectra: list[dict] = []  # per-epoch raw spectra, for the spectrum artifact

    # ----------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        bottleneck = self.model.bottleneck
        sub_lr = cfg.lr
        if isinstance(bottleneck, LinearSubnetwork) and cfg.lr_scaled_by_depth:
            sub_lr = depth_scaled_lr(cfg.lr, bottleneck.depth)
        outer = [*self.model.encoder.parameters(), *self.model.decoder.parameters()]
        groups = [{"params": outer, "lr": cfg.lr}]
        inner = list(bottleneck.parameters())
        if inner:
            groups.append({"params": inner, "lr": sub_lr})
        if cfg.optimizer == "gd":
            return torch.optim.SGD(groups, lr=cfg.lr)
        return torch.optim.Adam(groups, lr=cfg.lr)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.model(x), x)

    def _training_rows(self) -> torch.Tensor | None:
        """The bootstrap resample's rows of the training split (None: every row, once),
        drawn before any epoch's order from the run's own generator."""
        if not self.config.bootstrap:
            return None
        n = len(self.data.train)
        return torch.randint(n, (n,), generator=self.order)

    def epoch_order(self) -> torch.Tensor:
        """This epoch's minibatch order: a permutation of the training rows (or of the
        bootstrap resample's)."""
        n = len(self.data.train)
        order = torch.randperm(n, generator=self.order)
        return order if self.rows is None else self.rows[order]

    def _train_epoch(self) -> tuple[torch.Tensor, int]:
        """One epoch of optimiser steps; returns the mean loss (on device) and the step count."""
        model, opt, x_all = self.model, self.optimizer, self.data.train.images
        model.train()
        total = torch.zeros((), device=self.device, dtype=self.dtype)
        if self.config.optimizer == "gd":
            steps = self.config.gd_steps_per_epoch
            for _ in range(steps):
                loss = self.loss(x_all)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
            return total / steps, steps
        n, batch = len(x_all), self.config.batch_size
        order = self.epoch_order().to(self.device)
        steps = 0
        for start in range(0, n, batch):
            x = x_all[order[start : start + batch]]
            loss = self.loss(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(x)
            steps += 1
        return total / n, steps

    @torch.no_grad()
    def codes(self, inputs: torch.Tensor, before_bottleneck: bool = False) -> torch.Tensor:
        """Latent codes z_N (or z, before the bottleneck) of `inputs`, in chunks."""
        self.model.eval()
        fn = self.model.encode if before_bottleneck else self.model.codes
        return torch.cat([fn(chunk) for chunk in inputs.split(EVAL_BATCH)])

    @torch.no_grad()
    def eval_loss(self) -> float:
        self.model.eval()
        x = self.data.eval_inputs
        total = sum(F.mse_loss(self.model(c), c, reduction="sum") for c in x.split(EVAL_BATCH))
        return float(total) / x.numel()

    @torch.no_grad()
    def spectra_now(self) -> tuple[list[float] | None, list[float]]:
        """Raw singular values of W_e (None for vanilla) and of the centred eval codes."""
        effective = self.model.effective_matrix()
        we = None if effective is None else torch.linalg.svdvals(effective).tolist()
        latent = centred_code_singular_values(self.codes(self.data.eval_inputs)).tolist()
        return we, latent

    def _we_rank_now(self) -> int | None:
        effective = self.model.effective_matrix()
        if effective is None:
            return None
        return matrix_rank(effective, self.config.rank_threshold)

    def current_k(self) -> int | None:
        bottleneck = self.model.bottleneck
        return bottleneck.k if isinstance(bottleneck, ExplicitBottleneck) else None

    # ----------------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """Stopped before its budget: diverged, or settled where the config asks."""
        return self.diverged or (self.config.stop_when_settled and self.settled)

    @property
    def running(self) -> bool:
        return not self.stopped and self.epoch < self.config.epochs

    def run(self) -> Iterator[EpochRecord]:
        """Train from the current epoch to the budget; stop early (after a record) on
        divergence, or once settled where the config asks."""
        while self.running:
            yield self.train_one_epoch()

    def train_one_epoch(self) -> EpochRecord:
        start = time.perf_counter()
        mean_loss, steps = self._train_epoch()
        loss = float(mean_loss)  # the one host sync of the epoch
        return self.finish_epoch(loss, steps, time.perf_counter() - start)

    def finish_epoch(self, loss: float, steps: int, train_time: float) -> EpochRecord:
        """After an epoch's steps: divergence check, spectra, two-stage switch, the record.

        Separate from the steps so a vectorised trainer can run the steps of many models
        at once and keep each model's bookkeeping here.
        """
        cfg = self.config
        start = time.perf_counter()
        self.epoch += 1
        self.step += steps
        self.blown_up = blown_up(
            loss, steps, self.blown_up, self.trivial_loss, cfg.divergence_factor
        )
        self.diverged = is_diverged(loss, self.blown_up, cfg.divergence_steps)
        we_sv, latent_sv = (None, None) if self.diverged else self.spectra_now()
        held, longest = (None, None) if we_sv is None else self._we_holds(we_sv)
        stage, switch = self.stage, None
        record = EpochRecord(
            epoch=self.epoch,
            step=self.step,
            stage=stage,
            loss=loss,
            diverged=self.diverged,
            elapsed_s=0.0,
            steps_per_s=steps / train_time if train_time > 0 else float("nan"),
            rank_threshold=cfg.rank_threshold,
            trivial_loss=self.trivial_loss,
            k=self.current_k(),
            we_singular_values=we_sv,
            latent_singular_values=latent_sv,
            we_held_steps=held,
            we_longest_wait=longest,
        )
        self.settled = bool(record.settled)
        if cfg.two_stage and self.stage == 1 and not self.diverged:
            switch = self._maybe_switch(record.we_rank, steps)
        self.elapsed_s += train_time + time.perf_counter() - start
        self.spectra.append(
            {
                "epoch": self.epoch,
                "step": self.step,
                "stage": stage,
                "we": we_sv,
                "latent": latent_sv,
            }
        )
        return dataclasses.replace(record, elapsed_s=self.elapsed_s, switch=switch)

    def _we_holds(self, we_sv: list[float]) -> tuple[int, int]:
        """`rankae.settle.rank_holds` over this run's W_e ranks so far, this epoch's included
        (rows of checkpoints written before spectra kept their step get epoch x steps/epoch)."""
        per_epoch = self.step // self.epoch
        rows = [
            (row.get("step", row["epoch"] * per_epoch), row["we"])
            for row in self.spectra
            if row.get("we") is not None
        ]
        rows.append((self.step, we_sv))
        ranks = [
            rank_from_spectrum(normalize_spectrum(torch.tensor(v)), self.config.rank_threshold)
            for _, v in rows
        ]
        return rank_holds([step for step, _ in rows], ranks)

    def _maybe_switch(self, we_rank: int, steps: int) -> StageSwitch | None:
        cfg = self.config
        self.stable_steps = self.stable_steps + steps if we_rank == self.last_we_rank else 0
        self.last_we_rank = we_rank
        # a rank that never left its initial value (e.g. still d) has regularised nothing
        settled = self.stable_steps >= cfg.patience_steps and we_rank != self.initial_we_rank
        forced = not settled and cfg.force_switch_epoch is not None
        if not settled and not (forced and self.epoch >= cfg.force_switch_epoch):
            return None
        if self.epoch >= cfg.epochs:
            return None  # no budget left for stage 2
        return self.switch_to_explicit(max(we_rank, 1), forced=not settled)

    def switch_to_explicit(self, k: int, forced: bool = False) -> StageSwitch:
        """Replace the sub-network by d -> k -> d from W_e's truncated SVD (Sec. 3.2)."""
        loss_before = self.eval_loss()
        effective = self.model.effective_matrix()
        old_optimizer = self.optimizer
        self.model.bottleneck = ExplicitBottleneck.from_matrix(effective, k)
        self.optimizer = self._make_optimizer()
        for group in self.optimizer.param_groups[:1]:  # encoder + decoder keep their state
            for p in group["params"]:
                if p in old_optimizer.state:
                    self.optimizer.state[p] = old_optimizer.state[p]
        self.stage = 2
        self.switch = StageSwitch(self.epoch, k, forced, loss_before, self.eval_loss())
        return self.switch

    # ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly where training stopped."""
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "order": self.order.get_state(),
            "epoch": self.epoch,
            "step": self.step,
            "stage": self.stage,
            "elapsed_s": self.elapsed_s,
            "blown_up": asdict(self.blown_up),
            "diverged": self.diverged,
            "settled": self.settled,
            "stable_steps": self.stable_steps,
            "last_we_rank": self.last_we_rank,
            "initial_we_rank": self.initial_we_rank,
            "switch": None if self.switch is None else asdict(self.switch),
            "spectra": self.spectra,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["config"] != self.config.to_dict():
            raise ValueError("checkpoint was written by a different config; refusing to load it")
        if state["stage"] == 2:
            k = state["switch"]["k"]
            bottleneck = ExplicitBottleneck(self.config.latent_dim, k)
            self.model.bottleneck = bottleneck.to(self.device, self.dtype)
            self.optimizer = self._make_optimizer()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.order.set_state(state["order"])
        for name in ("epoch", "step", "stage", "elapsed_s", "diverged"):
            setattr(self, name, state[name])
        self.settled = state.get("settled", False)  # checkpoints before 2026-12-04 lack it
        self.blown_up = BlownUp(**state["blown_up"])
        self.stable_steps, self.last_we_rank = state["stable_steps"], state["last_we_rank"]
        self.initial_we_rank = state["initial_we_rank"]
        self.switch = StageSwitch(**state["switch"]) if state["switch"] else None
        self.spectra = list(state["spectra"])
