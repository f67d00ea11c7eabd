"""Train K runs of one config in one vectorised step: seeds (and alpha, init scale) side by side.

Why: the paper's studies repeat one small model over 10 seeds and an alpha ladder. One model
per optimiser step leaves a GPU launch-bound (docs/benchmarks.md); stacking K members'
parameters and running their forward, backward and optimiser step as one batched computation
(`torch.func.stack_module_state` + `functional_call` + `vmap`) does K models' work per launch.

What stays exactly as K separate `Trainer` runs (tests/test_vectorized.py checks it):
- Each member is a plain `Trainer` built from its own config, so its initial weights are
  `build_autoencoder(config_k)`'s, its data order is its own seeded generator (the same
  `torch.randperm` per epoch a separate run draws), and its records, bookkeeping and
  checkpoint format are Trainer's. The stacked tensors are the source of truth while
  training; a member's own model is refreshed from them once per epoch, for the SVDs.
- One optimiser over the stacked parameters, with the member optimiser's class, defaults
  and param groups (so the sub-network keeps lr / N). Adam and SGD act elementwise, so
  members do not interact; per-member alpha enters the forward as W_i = alpha_k * What_i.
- Divergence is judged per member from its epoch loss. A diverged member leaves the stack
  at the end of that epoch with its final parameters and optimiser state, which then stay
  frozen; the others continue. Within the epoch its NaNs stay in its own slice (vmap keeps
  members' arithmetic separate and the summed loss's backward gives each member gradient 1).
- A group of one is never stacked: its member trains as its own `Trainer`, bit for bit a
  separate run.
- Two-stage training: once a member switches to the explicit bottleneck (a different shape
  per member), it leaves the stack and trains on as its own Trainer.

Hot path: data on the device, per-step losses summed on the device and read once per epoch,
SVDs once per epoch. With `cuda_graph=True` (CUDA and Adam only) the whole step is captured
in a CUDA graph after a few eager warm-up steps (Adam then runs with `capturable=True`); it
is compared with the eager path only where a GPU runs the tests.

Where it pays: on a GPU, where one small model cannot fill the device. On a CPU the step is
bound by the convolution kernels (fp64 goes through ATen's per-sample im2col + GEMM), and K
members cost K times one member: see benchmarks/README.md.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from .bottleneck import LinearSubnetwork
from .config import ConfigError, RunConfig
from .engine import RunData, Trainer, load_run_data, pick_device
from .records import EpochRecord

MEMBER_FIELDS = ("seed", "alpha", "init_scale")  # the only config values members may differ in
GRAPH_WARMUP_STEPS = 3  # eager steps (on a side stream) before a CUDA graph is captured
MEMORY_HEADROOM = 0.8  # share of a trial's GPU memory that a stack may plan to fill


class VectorizedTrainer:
    """Trains one `Trainer` per config, all stage-1 members in one vectorised step.

    `run()` yields, per epoch, a list with one `EpochRecord` per member (in config order),
    or None for a member that stopped earlier (it diverged). A stacked member's `steps_per_s`
    is its own rate (the stack's model-steps/s is that times the members stacked) and its
    `elapsed_s` counts the shared epoch plus its own evaluation. `member_state(k)` is member k's
    checkpoint in `Trainer.state_dict()` form and `member_trainer(k)` a separate `Trainer`
    that continues exactly where member k is (for downstream evaluation or further training).
    """

    def __init__(
        self,
        configs: Sequence[RunConfig],
        device: torch.device | str | None = None,
        data: RunData | None = None,
        cuda_graph: bool = False,
    ) -> None:
        if not configs:
            raise ConfigError("VectorizedTrainer needs at least one config")
        self.configs = [config.validate() for config in configs]
        _check_members_agree(self.configs)
        base = self.configs[0]
        self.device = pick_device(str(device) if device is not None else None)
        if cuda_graph and (self.device.type != "cuda" or base.optimizer != "adam"):
            raise ConfigError(
                f"cuda_graph=True needs a CUDA device and optimizer='adam' "
                f"(got device={self.device.type!r}, optimizer={base.optimizer!r}); "
                f"leave it off to train eagerly"
            )
        self.cuda_graph = cuda_graph
        self.dtype = getattr(torch, base.dtype)
        self.data = (data or load_run_data(base)).to(self.device, self.dtype)
        self.members = [Trainer(config, self.device, self.data) for config in self.configs]
        # A lone member gains nothing from a stack of one: it trains as its own Trainer.
        self.stacks = len(self.members) > 1
        self.rows = list(range(len(self.members))) if self.stacks else []  # rows[r]: row r
        self.detached = [] if self.stacks else [0]  # members trained as their own Trainer

        template = self.members[0]
        if next(template.model.buffers(), None) is not None:
            raise ConfigError("VectorizedTrainer supports models without buffers only")
        names = {id(p): name for name, p in template.model.named_parameters()}
        self._groups = [
            ([names[id(p)] for p in group["params"]], group["lr"])
            for group in template.optimizer.param_groups
        ]
        self._optimizer_class = type(template.optimizer)
        self._optimizer_defaults = dict(template.optimizer.defaults)
        if cuda_graph:
            self._optimizer_defaults["capturable"] = True

        # The forward runs on a parameter-free copy. If the members' alphas differ, they are
        # applied in _member_loss and the copy's own alpha is 1: W_i = 1 * (alpha_k * What_i),
        # bit for bit Trainer's alpha_k * What_i (and the same gradient).
        self._skeleton = copy.deepcopy(template.model).to("meta")
        self._hat_names: tuple[str, ...] = ()
        alphas_differ = len({c.alpha for c in self.configs}) > 1
        if alphas_differ and isinstance(self._skeleton.bottleneck, LinearSubnetwork):
            self._skeleton.bottleneck.alpha = 1.0
            self._hat_names = tuple(
                f"bottleneck.{name}" for name, _ in self._skeleton.bottleneck.named_parameters()
            )
        if self.rows:
            self._stack(self.rows)

    # ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while some member has budget left and has not stopped (`Trainer.stopped`)."""
        return any(member.running for member in self.members)

    def run(self) -> Iterator[list[EpochRecord | None]]:
        """Train every member to its budget; a diverged member's entries are None afterwards."""
        while self.running:
            yield self.train_one_epoch()

    def train_one_epoch(self) -> list[EpochRecord | None]:
        """One epoch of every running member: the stack in one vectorised loop, stage 2 alone."""
        records: list[EpochRecord | None] = [None] * len(self.members)
        detached = [k for k in self.detached if self.members[k].running]
        if self.rows:
            start = time.perf_counter()
            mean_losses, steps = self._train_stacked_epoch()
            losses = mean_losses.tolist()  # the one host sync of the epoch
            train_time = time.perf_counter() - start
            for row, k in enumerate(self.rows):
                records[k] = self._finish_epoch(k, row, losses[row], steps, train_time)
            self._release_stopped()
        for k in detached:
            records[k] = self.members[k].train_one_epoch()
        return records

    def member_state(self, k: int) -> dict:
        """Member k's checkpoint: what a separate `Trainer.state_dict()` holds (timings aside)."""
        if k in self.rows:
            row = self.rows.index(k)
            self._export_parameters(k, row)
            self._export_optimizer(k, row)
        return self.members[k].state_dict()

    def load_member_states(self, states: Sequence[dict]) -> None:
        """Continue from `member_state(k)` checkpoints, one per member in config order.

        Members still in stage 1 and not diverged are stacked again with their optimiser
        state; members in stage 2 train on alone, as they did before the checkpoint.
        """
        if len(states) != len(self.members):
            raise ValueError(f"{len(states)} member states for {len(self.members)} members")
        for member, state in zip(self.members, states, strict=True):
            member.load_state_dict(state)
        stacked = [k for k, m in enumerate(self.members) if m.stage == 1 and not m.stopped]
        self.rows = stacked if self.stacks else []
        self.detached = [k for k, m in enumerate(self.members) if m.stage == 2 or not self.stacks]
        if self.rows:
            self._stack(self.rows)

    def member_trainer(self, k: int) -> Trainer:
        """A separate `Trainer` holding member k's state; training it leaves this one alone."""
        trainer = Trainer(self.configs[k], self.device, self.data)
        trainer.load_state_dict(self.member_state(k))
        return trainer

    # ----------------------------------------------------------------------------------
    def _stack(self, rows: list[int]) -> None:
        """Stack members `rows`' parameters and their optimisers' state (empty when fresh)."""
        models = [self.members[k].model for k in rows]
        params, _ = stack_module_state(models)
        alphas = [self.configs[k].alpha for k in rows]
        self._install(params, torch.tensor(alphas, dtype=self.dtype, device=self.device))
        capturable = self._optimizer_defaults.get("capturable", False)
        for name, stacked in params.items():
            states = [
                self.members[k].optimizer.state.get(dict(m.named_parameters())[name], {})
                for k, m in zip(rows, models, strict=True)
            ]
            if not states[0]:
                continue
            self.optimizer.state[stacked] = {
                key: torch.stack([state[key] for state in states])
                if _per_member(value, stacked[0])
                else _shared_scalar(value, self.device, self.dtype)
                if capturable
                else value.clone()
                for key, value in states[0].items()
            }

    def _install(self, params: dict[str, torch.Tensor], alphas: torch.Tensor) -> None:
        """Make `params` the stack, with a fresh optimiser (and no captured graph) over it."""
        self.params, self.alphas = params, alphas
        groups = [{"params": [params[n] for n in names], "lr": lr} for names, lr in self._groups]
        self.optimizer = self._optimizer_class(groups, **self._optimizer_defaults)
        if self._optimizer_defaults.get("capturable", False):
            self._start_capturable_state()
        self._graph: torch.cuda.CUDAGraph | None = None
        self._warmup_left = GRAPH_WARMUP_STEPS

    def _start_capturable_state(self) -> None:
        """Adam's fresh state, with its step counter in the model's dtype.

        Capturable Adam keeps the counter on the device and computes its bias corrections
        from it; Adam makes it float32 unless torch's default dtype is float64, and
        1 - 0.999 in float32 is 1.3e-5 off. In float64 runs the graphed step then differed
        from the eager one (which corrects in Python floats) by 1e-7 in the first epoch's
        loss on an H200 (docs/benchmarks.md); a counter in the model's dtype removes that.
        """
        amsgrad = self._optimizer_defaults.get("amsgrad", False)
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                moments = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
                self.optimizer.state[p] = {
                    "step": torch.zeros((), dtype=self.dtype, device=self.device),
                    **{name: torch.zeros_like(p) for name in moments},
                }

    def _member_loss(
        self, params: dict[str, torch.Tensor], alpha: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """One member's `Trainer.loss` (vmap supplies one member's slice of everything)."""
        params = {**params, **{name: alpha * params[name] for name in self._hat_names}}
        return F.mse_loss(functional_call(self._skeleton, params, (x,)), x)

    def _forward_backward_step(self, idx: torch.Tensor | None) -> torch.Tensor:
        """Every stacked member's loss on its batch (rows of `idx`; None: full batch), stepped."""
        x_all = self.data.train.images
        x, x_dim = (x_all, None) if idx is None else (x_all[idx], 0)
        losses = vmap(self._member_loss, in_dims=(0, 0, x_dim))(self.params, self.alphas, x)
        losses.sum().backward()
        self.optimizer.step()
        return losses.detach()

    def _step(self, idx: torch.Tensor | None) -> torch.Tensor:
        if self.cuda_graph:  # minibatch Adam only (checked in __init__), so idx is a tensor
            return self._graph_step(idx)
        self.optimizer.zero_grad(set_to_none=True)
        return self._forward_backward_step(idx)

    def _graph_step(self, idx: torch.Tensor) -> torch.Tensor:
        """The step replayed from a CUDA graph of a full batch; other steps run eagerly.

        Warm-up steps are real training steps (on the epoch's batches), run on a side stream
        as PyTorch's whole-network capture recipe asks. Capture executes nothing, so the
        capturing step is then replayed to take effect. A short last batch has another shape
        than the captured one and runs eagerly.
        """
        if idx.shape[1] != self.configs[self.rows[0]].batch_size:
            self.optimizer.zero_grad(set_to_none=True)
            return self._forward_backward_step(idx)
        if self._graph is None and self._warmup_left > 0:
            self._warmup_left -= 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.optimizer.zero_grad(set_to_none=True)
                losses = self._forward_backward_step(idx)
            torch.cuda.current_stream().wait_stream(side)
            return losses
        if self._graph is None:
            self._static_idx = idx.clone()
            self.optimizer.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._static_losses = self._forward_backward_step(self._static_idx)
            self._graph = graph
        self._static_idx.copy_(idx)
        self._graph.replay()
        return self._static_losses

    def _train_stacked_epoch(self) -> tuple[torch.Tensor, int]:
        """`Trainer._train_epoch` for every stacked member: mean losses (on device), steps."""
        config = self.configs[self.rows[0]]
        total = torch.zeros(len(self.rows), device=self.device, dtype=self.dtype)
        if config.optimizer == "gd":
            steps = config.gd_steps_per_epoch
            for _ in range(steps):
                total += self._step(None)
            return total / steps, steps
        n, batch = len(self.data.train), config.batch_size
        orders = [self.members[k].epoch_order() for k in self.rows]
        order = torch.stack(orders).to(self.device)
        steps = 0
        for start in range(0, n, batch):
            idx = order[:, start : start + batch]
            total += self._step(idx) * idx.shape[1]
            steps += 1
        return total / n, steps

    def _finish_epoch(
        self, k: int, row: int, loss: float, steps: int, train_time: float
    ) -> EpochRecord:
        """Member k's bookkeeping and record: `Trainer.finish_epoch` on its exported state.

        The stack's epoch time is shared by all members; each adds its own evaluation.
        """
        member = self.members[k]
        self._export_parameters(k, row)
        if self.configs[k].two_stage:
            self._export_optimizer(k, row)  # a switch carries encoder/decoder Adam state over
        return member.finish_epoch(loss, steps, train_time)

    def _release_stopped(self) -> None:
        """Members that stopped (diverged, or settled where the config asks) or switched to
        stage 2 leave the stack (with their state)."""
        keep = []
        for row, k in enumerate(self.rows):
            member = self.members[k]
            if member.stopped:
                self._export_optimizer(k, row)  # parameters were exported by _finish_epoch
            elif member.stage == 2:
                self.detached.append(k)
            else:
                keep.append(row)
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[row] for row in keep]
        if not keep:
            return
        index = torch.tensor(keep, device=self.device)
        old_params, old_optimizer = self.params, self.optimizer
        params = {name: p.detach()[index].requires_grad_() for name, p in old_params.items()}
        self._install(params, self.alphas[index])
        for name, p in params.items():
            old = old_params[name]
            self.optimizer.state[p] = {
                key: value[index] if _per_member(value, old) else value.clone()
                for key, value in old_optimizer.state.get(old, {}).items()
            }

    def _export_parameters(self, k: int, row: int) -> None:
        """Copy member k's slice of the stack into its own model."""
        with torch.no_grad():
            for name, p in self.members[k].model.named_parameters():
                p.copy_(self.params[name][row])

    def _export_optimizer(self, k: int, row: int) -> None:
        """Load member k's slice of the stacked optimiser state into its own optimiser."""
        member = self.members[k]
        names = {id(p): name for name, p in member.model.named_parameters()}
        params = [p for group in member.optimizer.param_groups for p in group["params"]]
        state = {}
        for index, p in enumerate(params):  # state_dict numbers parameters in group order
            stacked = self.params[names[id(p)]]
            source = self.optimizer.state.get(stacked, {})
            if source:
                # Per-parameter scalars (Adam's step) live on the CPU, as Trainer keeps them.
                state[index] = {
                    key: value[row].clone()
                    if _per_member(value, stacked)
                    else value.to("cpu", copy=True)
                    for key, value in source.items()
                }
        groups = member.optimizer.state_dict()["param_groups"]
        member.optimizer.load_state_dict({"state": state, "param_groups": groups})


def _per_member(value: object, stacked: torch.Tensor) -> bool:
    """True for optimiser state with one slice per member (moments), not shared scalars."""
    return isinstance(value, torch.Tensor) and value.shape == stacked.shape


def _shared_scalar(value: object, device: torch.device, dtype: torch.dtype) -> object:
    """A capturable optimiser's copy of a scalar state entry (Adam's step): on the device,
    in the model's dtype (see `VectorizedTrainer._start_capturable_state`)."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(device=device, dtype=dtype, copy=True)
    return value


def _check_members_agree(configs: list[RunConfig]) -> None:
    """Members share data, shapes and schedule: they may differ only in MEMBER_FIELDS."""
    neutral = dict.fromkeys(MEMBER_FIELDS, 1)
    base = configs[0].replace(**neutral).to_dict()
    for i, config in enumerate(configs[1:], start=1):
        other = config.replace(**neutral).to_dict()
        differ = sorted(name for name, value in other.items() if base[name] != value)
        if differ:
            raise ConfigError(
                f"config {i} differs from config 0 in {', '.join(differ)}; vectorised members "
                f"may differ only in {', '.join(MEMBER_FIELDS)}: train the others separately"
            )


# -- how many members fit on a GPU --------------------------------------------------------
def members_that_fit(fixed_bytes: int, per_member_bytes: int, budget_bytes: int) -> int:
    """The largest K with fixed + K x per_member <= budget; at least 1 (one member always runs)."""
    if per_member_bytes <= 0:
        raise ValueError(f"per_member_bytes={per_member_bytes} must be > 0")
    return max(1, (budget_bytes - fixed_bytes) // per_member_bytes)


def measure_member_bytes(
    config: RunConfig, device: torch.device, steps: int = 2
) -> tuple[int, int]:
    """Peak CUDA memory of stacks of two and three members: (fixed bytes, bytes per member).

    Each stack takes `steps` real optimiser steps on random batches, so activations, gradients
    and optimiser moments are all counted; the data on the device is in the fixed part. (A
    group of one is not a stack: it trains as its own Trainer, so two is the smallest stack.)
    """
    if device.type != "cuda":
        raise ConfigError(f"measuring member memory needs a CUDA device, got {device.type!r}")
    data = load_run_data(config)
    peaks = []
    sizes = (2, 3)
    for size in sizes:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        stack = VectorizedTrainer(
            [config.replace(seed=config.seed + i) for i in range(size)], device, data
        )
        n = len(stack.data.train)
        for _ in range(steps):
            idx = None
            if config.optimizer != "gd":
                idx = torch.randint(n, (size, min(config.batch_size, n)), device=device)
            stack._step(idx)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - start)
        del stack
    per_member = max(peaks[1] - peaks[0], 1)
    return max(peaks[0] - sizes[0] * per_member, 0), per_member


def group_size_for_gpu(
    config: RunConfig, members: int, gpu_share: float, device: torch.device
) -> int:
    """How many of `members` seeds one trial stacks on its `gpu_share` of this GPU's memory."""
    total = torch.cuda.get_device_properties(device).total_memory
    budget = int(MEMORY_HEADROOM * min(gpu_share, 1.0) * total)
    fixed, per_member = measure_member_bytes(config, device)
    return min(members, members_that_fit(fixed, per_member, budget))
