"""The MNIST studies measure what the paper measures (Figs. 3 and 4).

Divergence fires on the bounded image losses and never on a healthy run or a one-epoch
spike; the classifier reads the rank-limited codes z_N (and z as the secondary); the alpha
ladder has rungs below 100 and a capped ladder has no divergence alpha; a rank that never
left its initial value is not "settled". Real MNIST slices, CPU, float32 where it is fast.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from reliability.conftest import run_cli, runs

from analysis.compare import escalation_summary
from rankae.config import ConfigError, RunConfig, linear_synthetic
from rankae.downstream import _stratified_split, train_classifier
from rankae.engine import Trainer
from rankae.evaluate import classifier_inputs, classify
from rankae.rank import GAP_FLOOR, rank_at_gap, rank_from_spectrum
from rankae.records import (
    EPOCH_METRICS,
    SWITCH_METRICS,
    BlownUp,
    EpochRecord,
    StageSwitch,
    blown_up,
    is_diverged,
    trivial_loss,
)
from rankae.vectorized import VectorizedTrainer
from study.adapters.tracking import LOGGED_METRICS
from study.plans import AlphaEscalation, alpha_ladder
from study.studies import mnist_alpha_sweep

TINY_MNIST = RunConfig(
    dataset="mnist",
    n_train=512,
    n_eval=256,
    epochs=6,
    depth=16,
    init="orthogonal",
    dtype="float32",
    divergence_steps=32,  # 2 epochs of 16 steps
)


def losses(records: list[EpochRecord]) -> list[float]:
    return [r.loss for r in records]


# -- divergence ---------------------------------------------------------------------------
def test_trivial_loss_is_the_mse_of_the_mean_input() -> None:
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert trivial_loss(x) == pytest.approx(1.0)  # each value is 1 from its column mean


def verdicts(series: list[float], steps: int = 100, window: int = 250) -> list[bool]:
    """The divergence rule over a loss series, `steps` optimiser steps per epoch."""
    state, out = BlownUp(), []
    for loss in series:
        state = blown_up(loss, steps, state, trivial=0.067, factor=2.0)
        out.append(is_diverged(loss, state, window))
    return out


def test_a_one_epoch_spike_is_not_divergence_but_a_plateau_above_trivial_is() -> None:
    """The reference spike 0.057 -> 0.150 -> 0.06 recovers; a saturated 1.3 plateau does not."""
    assert not any(verdicts([0.26, 0.095, 0.057, 0.150, 0.06, 0.150, 0.150, 0.05]))
    # a small-data run still coming down from its initialisation, far above 2 x trivial
    assert not any(verdicts([0.385, 0.227, 0.139, 0.09, 0.07]))
    # saturated (alpha 3000) and a slowly sinking plateau (alpha 30000): 3 stuck epochs of
    # 100 steps pass the 250-step window
    assert verdicts([1.19, 1.34, 1.34, 1.34, 1.34]) == [False, False, False, True, True]
    assert verdicts([1.21, 1.30, 1.31, 1.31, 1.29]) == [False, False, False, True, True]
    assert verdicts([0.05, float("nan")]) == [False, True]


def test_a_steady_recovery_from_a_three_epoch_spike_is_not_divergence() -> None:
    """Judged against the run's best before the spike (0.05) every epoch of it looked stuck;
    against the spike's own minimum it is recovering."""
    assert not any(verdicts([0.06, 0.05, 0.5, 0.4, 0.3, 0.2, 0.06], window=100))


def test_the_window_is_the_same_number_of_steps_at_every_tier() -> None:
    """1,000 steps: 6 stuck epochs of 188 steps (laptop), 2 of 1,875 (full data), never
    fewer than 2 records."""
    plateau = [1.19] + [1.34] * 12
    for steps_per_epoch, stuck_epochs in ((188, 6), (1875, 2), (8, 125)):
        first = verdicts(plateau + [1.34] * 120, steps_per_epoch, window=1000).index(True)
        assert first == stuck_epochs  # epoch 0 starts the streak; 1.. are stuck
        assert stuck_epochs * steps_per_epoch >= 1000


def test_too_large_alpha_diverges_within_a_few_epochs_and_a_healthy_alpha_never_does() -> None:
    """alpha = 3000 saturates the Tanh output (loss ~1.3, 20x trivial); alpha = 100 learns."""
    too_large = list(Trainer(TINY_MNIST.replace(alpha=3000.0), device="cpu").run())
    assert too_large[-1].diverged and len(too_large) <= 4  # 2 stuck epochs of 16 steps
    assert all(loss > 2 * 0.05 for loss in losses(too_large))
    healthy = list(Trainer(TINY_MNIST.replace(alpha=100.0), device="cpu").run())
    assert len(healthy) == TINY_MNIST.epochs and not any(r.diverged for r in healthy)
    assert healthy[-1].loss < healthy[0].loss


def test_vectorised_members_judge_divergence_by_the_same_rule() -> None:
    configs = [TINY_MNIST.replace(alpha=100.0), TINY_MNIST.replace(alpha=3000.0, seed=1)]
    stack = VectorizedTrainer(configs, device="cpu")
    history = list(stack.run())
    healthy, too_large = stack.members
    assert not healthy.diverged and healthy.epoch == TINY_MNIST.epochs
    assert too_large.diverged and too_large.epoch <= 4
    assert history[too_large.epoch - 1][1].diverged  # the verdict is in the member's record


@pytest.mark.slow
def test_through_the_cli_a_diverging_first_rung_ends_the_escalation_there(tmp_path):
    """On digits, Adam at lr 0.01 saturates the Tanh output at alpha 50 (loss ~1.8, flat):
    the first rung diverges at every N, nothing above it runs, and the summary says so."""
    out = run_cli(
        "mnist_alpha_sweep", "--smoke", "--max-concurrent", "1",
        "--set", "dataset=digits", "--set", "n_train=96", "--set", "n_eval=64",
        "--set", "epochs=6", "--set", "downstream=false", "--set", "lr=0.01",
        "--set", "divergence_steps=6",  # 2 epochs of 3 steps
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    trials = runs(tmp_path, "mnist_alpha_sweep")
    assert sorted(float(r.data.params["alpha"]) for r in trials) == [50.0, 50.0]  # N = 4, 16
    assert all(r.data.tags["diverged"] == "true" for r in trials)
    assert all(r.data.metrics["epoch"] <= 4 for r in trials)
    assert "α=50: 1/1 seeds (epoch" in out.stdout
    [parent] = runs(tmp_path, "mnist_alpha_sweep", "study")
    assert parent.data.metrics["divergence_alpha_N4"] == 50.0
    assert parent.data.metrics["divergence_alpha_N16"] == 50.0


def test_the_divergence_streak_survives_a_checkpoint() -> None:
    """Restart-safe: a run resumed mid-streak diverges at the same epoch as one straight through."""
    config = TINY_MNIST.replace(alpha=3000.0)
    straight = list(Trainer(config, device="cpu").run())
    first = Trainer(config, device="cpu")
    for _ in range(2):  # the first epoch never counts: it starts the streak
        first.train_one_epoch()
    assert first.blown_up.stuck_records == 1 and not first.diverged
    resumed = Trainer(config, device="cpu")
    resumed.load_state_dict(first.state_dict())
    rest = list(resumed.run())
    assert rest[-1].epoch == straight[-1].epoch and rest[-1].diverged


# -- downstream codes ---------------------------------------------------------------------
def test_the_classifier_reads_rank_limited_codes_after_an_explicit_k2_bottleneck() -> None:
    config = TINY_MNIST.replace(bottleneck="explicit", k=2, classifier_labels=100)
    trainer = Trainer(config, device="cpu")
    sites = classifier_inputs(trainer)
    post, _, post_test, _ = sites[""]
    pre, _, _, _ = sites["pre_"]

    def rank(codes: torch.Tensor) -> int:  # float32 round-off sits ~1e-7 below the top
        return int(torch.linalg.matrix_rank(codes.double(), rtol=1e-4))

    assert rank(post) <= 2 and rank(post_test) <= 2
    assert rank(pre) > 2
    # z_N from the one encoder pass is the model's own codes (encoder, then bottleneck)
    torch.testing.assert_close(post_test, trainer.codes(trainer.data.test.images))


def test_acc_best_trains_on_every_label_and_acc_selected_holds_some_out() -> None:
    labels = torch.arange(10).repeat(10)
    fit, val = _stratified_split(labels, 0.0, torch.Generator().manual_seed(0))
    assert len(fit) == 100 and len(val) == 0
    two_per_class = torch.arange(10).repeat(2)  # round(0.2 x 2) = 0, yet one is held out
    fit, val = _stratified_split(two_per_class, 0.2, torch.Generator().manual_seed(0))
    assert sorted(two_per_class[val].tolist()) == list(range(10)) and len(fit) == 10
    config = TINY_MNIST.replace(
        bottleneck="explicit", k=4, classifier_labels=100, classifier_epochs=5, epochs=1
    )
    trainer = Trainer(config, device="cpu")
    metrics = classify(trainer)
    assert set(metrics) == {
        "acc_best", "acc_selected", "val_acc_selected",
        "acc_pre_best", "acc_pre_selected", "val_acc_pre_selected",
    }  # fmt: skip
    every_label = train_classifier(*classifier_inputs(trainer)[""], epochs=5, val_fraction=0.0)
    assert metrics["acc_best"] == every_label.acc_best
    assert every_label.acc_selected != every_label.acc_selected  # nan: nothing to select on


# -- the alpha ladder ---------------------------------------------------------------------
def test_the_mnist_ladder_starts_below_100() -> None:
    plan = mnist_alpha_sweep.get_config().plan
    assert plan.ladder()[:5] == [1.0, 10.0, 50.0, 100.0, 200.0]
    assert plan.next_alpha(50.0) == 100.0 and plan.next_alpha(plan.ladder()[-1]) is None
    assert alpha_ladder(2.0, 2.0, 6.0, below=(1.0, 3.0)) == (1.0, 2.0, 4.0, 6.0)


@pytest.mark.parametrize("alphas", [(), (2.0, 1.0), (1.0, 1.0), (0.0, 1.0)])
def test_a_ladder_that_is_not_ascending_positive_and_distinct_is_refused(alphas) -> None:
    with pytest.raises(ConfigError, match="is not a ladder"):
        AlphaEscalation(depths=(4,), alphas=alphas)


def test_a_capped_ladder_reports_no_divergence_alpha() -> None:
    rows = pd.DataFrame(
        {
            "depth": [4, 4, 8, 8],
            "alpha": [1.0, 10.0, 1.0, 10.0],
            "diverged": [False, False, False, True],
            "status": ["FINISHED"] * 4,
            "epoch": [6, 6, 6, 3],
        }
    )
    ladder = escalation_summary(rows).set_index("depth")
    assert ladder.loc[4, "divergence"] == "none up to α=10"
    assert ladder.loc[4, "divergence_alpha"] is None or pd.isna(ladder.loc[4, "divergence_alpha"])
    assert ladder.loc[8, "divergence"] == "α=10: 1/1 seeds (epoch 3)"
    assert ladder.loc[8, "largest_stable_alpha"] == 1.0


# -- two-stage switch and rank definitions ----------------------------------------------------
def test_a_rank_still_at_its_initial_value_is_not_settled() -> None:
    """With a learning rate too small to move W_e, its rank stays d: no switch, or a forced one."""
    frozen = linear_synthetic(
        synth_dim=64, latent_dim=32, depth=4, init_scale=1.0, lr=1e-9, epochs=6,
        gd_steps_per_epoch=2, two_stage=True, patience_steps=1,
    )  # fmt: skip
    records = list(Trainer(frozen, device="cpu").run())
    assert all(r.we_rank == 32 and r.switch is None and r.stage == 1 for r in records)
    forced = list(Trainer(frozen.replace(force_switch_epoch=3), device="cpu").run())
    switch = next(r.switch for r in forced if r.switch is not None)
    assert switch.forced and switch.epoch == 3 and switch.k == 32


def test_the_covariance_rank_counts_squared_singular_values() -> None:
    record = EpochRecord(
        epoch=1, step=1, stage=1, loss=0.1, diverged=False, elapsed_s=0.0, steps_per_s=1.0,
        rank_threshold=0.01, latent_singular_values=[1.0, 0.5, 0.05, 0.005],
    )  # fmt: skip
    assert record.latent_rank == 3  # 0.05 > 0.01
    assert record.latent_rank_cov == 2  # 0.05^2 = 0.0025 < 0.01
    assert record.metrics()["latent_rank_cov"] == 2


def test_the_rank_at_the_gap_is_where_the_spectrum_drops_most() -> None:
    """Numerical zeros count as the floor, so a spectrum ending in them has its gap at its
    last real direction; a smooth decay has only small gaps; one dominant direction can
    outweigh a later, smaller drop (the gap's size says how clear the reading is)."""
    exact = torch.tensor([1.0, 0.5, 0.3, 1e-7, 1e-8])
    assert rank_at_gap(exact) == (3, pytest.approx(0.3 / GAP_FLOOR))
    smooth = torch.tensor([0.9**i for i in range(12)])
    rank, gap = rank_at_gap(smooth)
    assert gap == pytest.approx(1 / 0.9) and rank_from_spectrum(smooth) == 12
    dominant = torch.tensor([1.0, 0.03, 0.02, 1e-3, 9e-4])
    assert rank_at_gap(dominant) == (1, pytest.approx(1 / 0.03))
    assert rank_at_gap(torch.tensor([1.0, 1.0])) == (2, 1.0)  # no gap: every value counts
    with pytest.raises(ValueError, match="floor=0"):
        rank_at_gap(exact, floor=0)


def test_a_record_logs_the_rank_at_the_gap_beside_the_threshold_count() -> None:
    record = EpochRecord(
        epoch=1, step=1, stage=1, loss=0.1, diverged=False, elapsed_s=0.0, steps_per_s=1.0,
        rank_threshold=0.01, latent_singular_values=[2.0, 1.0, 0.6, 0.019, 0.018],
    )  # fmt: skip
    metrics = record.metrics()
    assert metrics["latent_rank"] == 3  # 0.0095 / 0.009 are under the 0.01 threshold
    assert metrics["latent_gap_rank"] == 3 and metrics["latent_gap"] == pytest.approx(0.6 / 0.019)


def test_a_full_record_reports_exactly_the_named_metrics_and_all_are_logged() -> None:
    """EPOCH_METRICS and SWITCH_METRICS are the names a record reports, no more, no fewer,
    and the MLflow callback logs every one of them."""
    spectrum = [2.0 / (i + 1) for i in range(12)]
    switch = StageSwitch(epoch=1, k=4, forced=False, loss_before=0.2, loss_after=0.1)
    record = EpochRecord(
        epoch=1, step=1, stage=2, loss=0.1, diverged=False, elapsed_s=0.0, steps_per_s=1.0,
        rank_threshold=0.01, trivial_loss=1.0, k=4, we_singular_values=spectrum,
        latent_singular_values=spectrum, switch=switch, we_held_steps=5, we_longest_wait=2,
    )  # fmt: skip
    assert set(record.metrics()) == set(EPOCH_METRICS) | set(SWITCH_METRICS)
    assert set(EPOCH_METRICS) | set(SWITCH_METRICS) <= LOGGED_METRICS
    assert record.metrics()["switch_forced"] == 0.0 and record.metrics()["settled"] in (0.0, 1.0)
