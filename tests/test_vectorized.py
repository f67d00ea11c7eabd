"""VectorizedTrainer: K members in one vectorised step equal K separate Trainer runs.

Everything runs in float64 on the CPU, where the vectorised and the separate arithmetic
differ only in summation order (batched vs single matrix products): losses agree to ~1e-15
and parameters to ~1e-14, so the tolerances below (1e-10) leave room without hiding bugs.
The CUDA-graph path is compared with the eager vectorised path on a GPU when one is present.
"""

from __future__ import annotations

import pytest
import torch

from rankae.config import ConfigError, RunConfig, linear_synthetic
from rankae.engine import Trainer
from rankae.records import EpochRecord
from rankae.vectorized import (
    VectorizedTrainer,
    group_size_for_gpu,
    measure_member_bytes,
    members_that_fit,
)

RTOL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: at these sizes OpenMP threads only add overhead, and on a shared
    2-core machine they oversubscribe it (this file took 5 min with 2 threads at load 10,
    under 1 min with 1). Vectorised and separate runs share the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Adam moves every What entry by ~lr per step whatever its scale, so W_i = alpha * What jumps
# by ~alpha * lr / N: at this alpha W_e overflows and the loss is NaN within the first epoch.
ADAM_DIVERGES = 1e150


def separate(config: RunConfig) -> tuple[list[EpochRecord], Trainer]:
    trainer = Trainer(config, device="cpu")
    return list(trainer.run()), trainer


def member_records(records: list[list[EpochRecord | None]], k: int) -> list[EpochRecord]:
    """Member k's records; None may only follow its last real record (it stopped)."""
    column = [epoch[k] for epoch in records]
    real = [r for r in column if r is not None]
    assert column[: len(real)] == real
    return real


def assert_records_match(mine: list[EpochRecord], reference: list[EpochRecord]) -> None:
    assert [(r.epoch, r.step, r.stage, r.diverged, r.k) for r in mine] == [
        (r.epoch, r.step, r.stage, r.diverged, r.k) for r in reference
    ]
    for a, b in zip(mine, reference, strict=True):
        assert a.loss == pytest.approx(b.loss, rel=RTOL, nan_ok=True)
        assert (a.we_rank, a.latent_rank) == (b.we_rank, b.latent_rank)
        for ours, theirs in (
            (a.we_singular_values, b.we_singular_values),
            (a.latent_singular_values, b.latent_singular_values),
        ):
            assert (ours is None) == (theirs is None)
            if ours is not None:
                torch.testing.assert_close(
                    torch.tensor(ours), torch.tensor(theirs), rtol=1e-8, atol=1e-12
                )
        assert (a.switch is None) == (b.switch is None)
        if a.switch is not None:
            assert (a.switch.epoch, a.switch.k, a.switch.forced) == (
                b.switch.epoch,
                b.switch.k,
                b.switch.forced,
            )
            assert a.switch.loss_after == pytest.approx(b.switch.loss_after, rel=RTOL)


def assert_parameters_match(state: dict, trainer: Trainer) -> None:
    for name, reference in trainer.model.state_dict().items():
        torch.testing.assert_close(
            state["model"][name], reference, rtol=RTOL, atol=1e-13, equal_nan=True
        )


def assert_vectorised_equals_separate(
    configs: list[RunConfig],
) -> tuple[VectorizedTrainer, list[list[EpochRecord | None]]]:
    vectorised = VectorizedTrainer(configs, device="cpu")
    records = list(vectorised.run())
    for k, config in enumerate(configs):
        reference, trainer = separate(config)
        assert_records_match(member_records(records, k), reference)
        assert_parameters_match(vectorised.member_state(k), trainer)
    return vectorised, records


# ---------------------------------------------------------------------------------------
def test_linear_gd_members_equal_separate_runs_and_a_diverged_one_is_masked() -> None:
    """App. B's full-batch GD (small): three seeds, another alpha and init scale, one blow-up."""
    base = linear_synthetic(synth_dim=64, latent_dim=32, depth=4, epochs=3)  # 300 GD steps
    configs = [
        base.replace(seed=0),
        base.replace(seed=1),
        base.replace(seed=2),
        base.replace(seed=0, alpha=2.0, init_scale=1e-2),
        base.replace(seed=1, alpha=1e4),  # diverges in its first epoch
    ]
    vectorised, records = assert_vectorised_equals_separate(configs)
    assert [m.diverged for m in vectorised.members] == [False] * 4 + [True]
    assert [epoch[4] is None for epoch in records] == [False, True, True]
    assert vectorised.rows == [0, 1, 2, 3]  # the diverged member left the stack


def test_conv_adam_members_equal_separate_runs_and_a_diverged_one_is_masked() -> None:
    """The MNIST conv AE with Adam on digits: seeds 0, 1, 2 agree; a seed-3 blow-up is masked."""
    base = RunConfig(dataset="digits", n_train=64, n_eval=64, batch_size=16, epochs=2)
    configs = [base.replace(seed=s) for s in (0, 1, 2)] + [
        base.replace(seed=3, alpha=ADAM_DIVERGES)
    ]
    vectorised, records = assert_vectorised_equals_separate(configs)
    assert records[0][3].diverged and records[1][3] is None
    assert vectorised.rows == [0, 1, 2]


def test_bootstrap_members_equal_separate_runs_each_on_its_own_resample() -> None:
    """With bootstrap=True each seed trains on its own resample of the split, stacked or not."""
    base = RunConfig(dataset="digits", n_train=64, n_eval=64, batch_size=16, epochs=2)
    configs = [base.replace(seed=s, bootstrap=True) for s in (0, 1)]
    vectorised, _ = assert_vectorised_equals_separate(configs)
    first, second = (member.rows.tolist() for member in vectorised.members)
    assert first != second


def test_two_stage_members_switch_and_train_on_alone() -> None:
    """At the switch each member swaps in d -> k -> d (its own k) and continues as a Trainer."""
    base = RunConfig(dataset="digits", n_train=32, n_eval=32, batch_size=16, epochs=3)
    base = base.replace(two_stage=True, patience_steps=1, force_switch_epoch=2)
    configs = [base.replace(seed=0), base.replace(seed=1, alpha=300.0)]
    vectorised = VectorizedTrainer(configs, device="cpu")
    records = list(vectorised.run())
    for k, config in enumerate(configs):
        reference, _ = separate(config)
        mine = member_records(records, k)
        assert_records_match(mine, reference)
        assert [r.stage for r in mine] == [1, 1, 2]  # switched at epoch 2, trained on in stage 2
    assert vectorised.rows == [] and vectorised.detached == [0, 1]


def test_member_trainer_continues_exactly_where_the_member_is() -> None:
    """Split after one epoch of minibatch Adam: the rest equals an uninterrupted run."""
    base = linear_synthetic(synth_dim=64, latent_dim=32, depth=4, alpha=2.0, optimizer="adam")
    base = base.replace(lr=1e-3, batch_size=16, epochs=2)
    configs = [base.replace(seed=0), base.replace(seed=1)]
    vectorised = VectorizedTrainer(configs, device="cpu")
    first = vectorised.train_one_epoch()
    trainer = vectorised.member_trainer(1)
    rest = list(trainer.run())
    reference, uninterrupted = separate(configs[1])
    assert_records_match([first[1], *rest], reference)
    assert_parameters_match(trainer.state_dict(), uninterrupted)
    vectorised.train_one_epoch()  # the split left the vectorised member untouched
    assert_parameters_match(vectorised.member_state(1), uninterrupted)


def test_members_may_differ_only_in_seed_alpha_and_init_scale() -> None:
    configs = [linear_synthetic(seed=0), linear_synthetic(seed=1, lr=0.01, data_seed=3)]
    with pytest.raises(ConfigError, match="config 1 differs from config 0 in data_seed, lr"):
        VectorizedTrainer(configs, device="cpu")


def test_cuda_graph_needs_a_cuda_device() -> None:
    config = RunConfig(dataset="digits", n_train=32, n_eval=32)
    with pytest.raises(ConfigError, match="cuda_graph=True needs a CUDA device"):
        VectorizedTrainer([config], device="cpu", cuda_graph=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_step_equals_eager_step() -> None:
    """Warm-up, capture, replay and the eager short last batch (72 = 4 x 16 + 8) all agree."""
    base = RunConfig(dataset="digits", n_train=72, n_eval=64, batch_size=16, epochs=2)
    configs = [base.replace(seed=0), base.replace(seed=1)]
    eager = VectorizedTrainer(configs, device="cuda")
    graphed = VectorizedTrainer(configs, device="cuda", cuda_graph=True)
    for ours, theirs in zip(graphed.run(), eager.run(), strict=True):
        assert_records_match(ours, theirs)
    assert graphed._graph is not None
    for k in range(len(configs)):
        for name, p in graphed.member_state(k)["model"].items():
            torch.testing.assert_close(
                p, eager.member_state(k)["model"][name], rtol=1e-9, atol=1e-12
            )


def test_restored_from_member_states_continues_like_an_uninterrupted_stack() -> None:
    """Checkpoint after one epoch (stacked Adam moments, one member diverged), restore into
    a fresh stack: the rest equals the uninterrupted stack."""
    base = linear_synthetic(synth_dim=64, latent_dim=32, depth=4, alpha=2.0, optimizer="adam")
    base = base.replace(lr=1e-3, batch_size=16, epochs=3)
    configs = [base.replace(seed=s) for s in range(3)] + [base.replace(seed=3, alpha=ADAM_DIVERGES)]
    uninterrupted = VectorizedTrainer(configs, device="cpu")
    first = uninterrupted.train_one_epoch()
    assert first[3].diverged
    states = [uninterrupted.member_state(k) for k in range(len(configs))]
    restored = VectorizedTrainer(configs, device="cpu")
    restored.load_member_states(states)
    assert restored.rows == [0, 1, 2] and restored.members[3].diverged
    for ours, theirs in zip(restored.run(), uninterrupted.run(), strict=True):
        for k in range(3):
            assert_records_match([ours[k]], [theirs[k]])
        assert ours[3] is None and theirs[3] is None
    for k in range(len(configs)):
        ours, theirs = restored.member_state(k), uninterrupted.member_state(k)
        for name, reference in theirs["model"].items():
            torch.testing.assert_close(ours["model"][name], reference, equal_nan=True)
        assert ours["epoch"] == theirs["epoch"] and ours["diverged"] == theirs["diverged"]


def test_restored_stage_two_member_trains_on_alone() -> None:
    base = linear_synthetic(synth_dim=64, latent_dim=32, depth=4, alpha=2.0, epochs=3)
    base = base.replace(two_stage=True, force_switch_epoch=1)  # switch after epoch 1
    configs = [base.replace(seed=s) for s in (0, 1)]
    uninterrupted = VectorizedTrainer(configs, device="cpu")
    uninterrupted.train_one_epoch()
    restored = VectorizedTrainer(configs, device="cpu")
    restored.load_member_states([uninterrupted.member_state(k) for k in (0, 1)])
    assert restored.rows == [] and restored.detached == [0, 1]
    for ours, theirs in zip(restored.run(), uninterrupted.run(), strict=True):
        assert_records_match(ours, theirs)


def test_members_that_fit_the_memory_budget() -> None:
    assert members_that_fit(fixed_bytes=100, per_member_bytes=30, budget_bytes=400) == 10
    assert members_that_fit(fixed_bytes=100, per_member_bytes=30, budget_bytes=129) == 1
    assert members_that_fit(fixed_bytes=500, per_member_bytes=30, budget_bytes=400) == 1
    with pytest.raises(ValueError, match="per_member_bytes=0"):
        members_that_fit(fixed_bytes=0, per_member_bytes=0, budget_bytes=400)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_group_size_follows_the_gpu_share() -> None:
    config = RunConfig(dataset="digits", n_train=256, n_eval=64)
    device = torch.device("cuda")
    fixed, per_member = measure_member_bytes(config, device)
    assert per_member > 0 and fixed >= 0
    whole = group_size_for_gpu(config, 10_000, 1.0, device)
    quarter = group_size_for_gpu(config, 10_000, 0.25, device)
    assert 1 <= quarter < whole
    assert group_size_for_gpu(config, 3, 1.0, device) == 3
