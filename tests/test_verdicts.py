"""analysis/verdicts.py and analysis/settle.py: the Fig. 3 / Fig. 4 rules on constructed
trial frames, and the settled / degraded / two-stage rules on constructed histories."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.compare import TASKS
from analysis.settle import degraded, settledness, switch_for_patience
from analysis.verdicts import (
    MAX_TOLERANCE_FRACTION,
    fig3_per_seed,
    fig3_verdicts,
    fig4_verdicts,
    implicit_vs_explicit,
    noise_tolerance,
    paired_noise_sd,
    seed_curve,
)
from rankae.settle import (
    SETTLED_GAP,
    SETTLED_STEPS,
    TRANSIT_FACTOR,
    emergence_steps,
    rank_holds,
    spectral_gap,
)

ACC = TASKS[0]  # acc_best, higher is better, floor 0.01


def run(method, seed, acc, rank, k=None, depth=None, alpha=None, **extra) -> dict:
    bottleneck = {"vanilla": "vanilla", "explicit": "explicit"}.get(method, "linear_net")
    return {"method": method, "bottleneck": bottleneck, "seed": seed, "k": k, "depth": depth,
            "alpha": alpha, "latent_dim": 64, "latent_rank": rank, "acc_best": acc,
            "diverged": False, "status": "FINISHED", **extra}  # fmt: skip


def explicit_curve(seed: int, accs: dict[int, float], offset: float = 0.0) -> list[dict]:
    """One seed's explicit runs (k -> accuracy) plus vanilla at k = d = 64."""
    rows = [run("explicit", seed, a + offset, k, k=k) for k, a in accs.items() if k != 64]
    return rows + [run("vanilla", seed, accs[64] + offset, 60)]


PEAKED = {4: 0.70, 8: 0.895, 12: 0.90, 16: 0.895, 32: 0.80, 64: 0.78}  # near-optimal 8-16


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype({"depth": "Int64", "k": "Int64"})


def study(implicit_ranks: list[int], offsets=(0.0, 0.03, -0.02)) -> pd.DataFrame:
    """Three seeds of one peaked explicit curve, each shifted by its own offset (as FID's
    per-seed bias is), and one implicit configuration at the given ranks."""
    rows = []
    for seed, (rank, offset) in enumerate(zip(implicit_ranks, offsets, strict=True)):
        rows += explicit_curve(seed, PEAKED, offset)
        rows.append(run("orthogonal", seed, 0.88 + offset, rank, depth=16, alpha=300.0))
    return frame(rows)


def fig4(trials: pd.DataFrame) -> pd.Series:
    return fig4_verdicts(implicit_vs_explicit(trials)).iloc[0]


def test_seed_offsets_are_not_noise_paired_differences_remove_them():
    trials = study([12, 12, 12], offsets=(0.0, 0.2, -0.2))
    points = trials[trials["bottleneck"] != "linear_net"].rename(columns={"acc_best": "value"})
    points = points.assign(k=points["k"].fillna(64))
    assert paired_noise_sd(points, "k", "value") == pytest.approx(0.0, abs=1e-12)
    assert fig4(trials)["verdict"] == "reproduced"


def test_implicit_ranks_in_every_seeds_near_optimal_range_are_reproduced():
    verdict = fig4(study([12, 12, 11]))
    assert verdict["verdict"] == "reproduced" and "11, 12, 12" in verdict["reason"]


def test_an_implicit_rank_outside_the_range_at_every_seed_is_not_reproduced():
    table = implicit_vs_explicit(study([4, 5, 4]))
    assert not table["rank_in_range"].any()
    assert fig4_verdicts(table).iloc[0]["verdict"] == "not reproduced"


def test_seeds_that_split_say_so_and_give_no_mean():
    verdict = fig4(study([5, 12, 12]))
    assert verdict["verdict"] == "inconclusive"
    assert verdict["reason"] == "seeds split: ranks 5, 12, 12"
    assert "8.5" not in verdict["reason"] and "9.7" not in verdict["reason"]


def test_seeds_that_agree_on_rank_but_not_on_the_range_are_inconclusive():
    verdict = fig4(study([16, 16, 17]))  # 17 lies between 16 (near-optimal) and 32 (worse)
    assert verdict["verdict"] == "inconclusive" and "seeds disagree" in verdict["reason"]


def test_an_unsettled_rank_makes_the_verdict_inconclusive():
    trials = study([12, 12, 12]).assign(settled=None)
    trials.loc[(trials["bottleneck"] == "linear_net") & (trials["seed"] == 1), "settled"] = False
    verdict = fig4(trials)
    assert verdict["verdict"] == "inconclusive" and "not settled at seed(s) 1" in verdict["reason"]


def test_a_range_that_cannot_fail_is_impossible():
    """A curve whose spread lies below the noise tolerance is 'flat', never a range holding
    every k; and the tolerance never exceeds MAX_TOLERANCE_FRACTION of the spread."""
    points = pd.DataFrame({"k": [4, 8, 16, 32], "value": [0.800, 0.805, 0.802, 0.799]})
    curve = seed_curve(points, ACC, noise_tol=0.05)
    assert curve.flat
    assert curve.tolerance <= MAX_TOLERANCE_FRACTION * (0.805 - 0.799) + 1e-12
    assert curve.segments != ((4, 32),)
    rows = []
    for seed in (0, 1):
        rows += explicit_curve(seed, {4: 0.80, 8: 0.805, 12: 0.802, 16: 0.80, 32: 0.799, 64: 0.8})
        rows.append(run("orthogonal", seed, 0.8, 8, depth=16, alpha=300.0))
    verdict = fig4(frame(rows))
    assert verdict["verdict"] == "inconclusive" and "flat within noise" in verdict["reason"]


def test_noise_tolerance_has_the_tasks_floor():
    assert noise_tolerance(ACC, math.nan, 0.9) == ACC.floor
    assert noise_tolerance(ACC, 0.1, 0.9) == pytest.approx(2.0 * math.sqrt(2) * 0.1)
    fid = next(t for t in TASKS if t.metric == "fid")
    assert noise_tolerance(fid, math.nan, 150.0) == pytest.approx(3.0)  # 2% of the value


def alpha_rows(values_per_seed: dict[int, list[float]], alphas=(10.0, 100.0, 1000.0)):
    rows = []
    for seed, values in values_per_seed.items():
        for alpha, acc in zip(alphas, values, strict=True):
            rows.append(run("orthogonal", seed, acc, 8, depth=16, alpha=alpha))
    return frame(rows)


def test_a_falling_metric_over_alpha_is_never_reported_as_a_rise():
    """Shaped like the laptop tier's seed means over alpha 10, 100, 1000 (0.927 -> 0.862 ->
    0.781), which docs/results.md once called a rise; its per-seed reading is there now."""
    trials = alpha_rows({0: [0.927, 0.862, 0.781], 1: [0.93, 0.87, 0.79]})
    per_seed = fig3_per_seed(trials)
    assert set(per_seed["trend"]) == {"worsens"} and not per_seed["rise"].any()
    verdict = fig3_verdicts(per_seed).iloc[0]
    assert verdict["rise"].startswith("not reproduced") and "rises" not in verdict["rise"]
    assert verdict["plateau"].startswith("not reproduced")
    assert "s0: worsens (0.927 -> 0.862 -> 0.781)" in verdict["trend per seed"]


def test_a_rise_then_a_plateau_at_every_seed_is_reproduced():
    trials = alpha_rows({0: [0.80, 0.90, 0.905], 1: [0.82, 0.91, 0.90]})
    verdict = fig3_verdicts(fig3_per_seed(trials)).iloc[0]
    assert verdict["rise"].startswith("reproduced") and verdict["plateau"].startswith("reproduced")


def test_without_a_rung_below_the_plateau_the_rise_is_untestable():
    trials = alpha_rows({0: [0.90, 0.91, 0.90]}, alphas=(100.0, 300.0, 1000.0))
    verdict = fig3_verdicts(fig3_per_seed(trials)).iloc[0]
    assert verdict["rise"].startswith("inconclusive") and "not testable" in verdict["rise"]


# -- settledness, degradation, the two-stage switch afterwards -----------------------------
def test_the_gap_is_the_ratio_at_the_counted_rank():
    assert spectral_gap([10.0, 5.0, 0.05, 0.01], 2) == pytest.approx(100.0)
    assert spectral_gap([10.0, 5.0], 2) == math.inf


def test_a_rank_holds_from_its_last_change_and_remembers_its_longest_wait():
    steps, ranks = [100, 200, 300, 400, 500], [3, 4, 4, 5, 5]
    assert rank_holds(steps, ranks) == (100, 200)  # 5 since 400; 4 waited 200..400
    assert rank_holds(steps, [3, 4, 4, 5, 6]) == (0, 200)
    assert rank_holds(steps, [7] * 5) == (400, 0) and rank_holds([], []) == (0, 0)


def test_each_direction_emerges_where_the_rank_last_rose_past_it_for_good():
    steps, ranks = [100, 200, 300, 400, 500, 600, 700, 800], [16, 1, 2, 2, 3, 2, 3, 3]
    # the init's full rank collapses to 1; 2 holds from 300; 3 drops back once, holds from 700
    assert emergence_steps(steps, ranks) == (100, 300, 700)
    assert emergence_steps([10, 20], [0, 0]) == () and emergence_steps([], []) == ()


def spectra(ranks: list[int], gap: float = 1000.0, width: int = 16) -> list[dict]:
    """Per-epoch spectra whose rank at threshold 0.01 is `ranks[i]`, each with `gap`."""
    out = []
    for epoch, rank in enumerate(ranks, start=1):
        values = [1.0] * rank + [1.0 / gap] * (width - rank)
        out.append({"epoch": epoch, "stage": 1, "we": values, "latent": values})
    return out


def test_a_rank_that_still_grows_at_the_end_is_not_settled():
    growing = settledness(spectra([2, 3, 4, 5, 6, 7, 8, 9]), 1000, 0.01)
    assert growing.stable_steps == 0 and not growing.settled
    held = settledness(spectra([2, 3, 8, 8, 8, 8, 8, 8]), 1000, 0.01)
    assert held.stable_steps == 5000 >= SETTLED_STEPS and held.settled
    crossing = [1.0] * 7 + [0.05] + [0.05 / (SETTLED_GAP / 2)] * 8  # rank 8, gap 5
    no_gap = [{"epoch": e, "stage": 1, "we": crossing} for e in range(1, 9)]
    state = settledness(no_gap, 1000, 0.01)
    assert state.ranks[-1] == 8 and state.gap == pytest.approx(SETTLED_GAP / 2)
    assert not state.settled  # a rank held long but without a clear gap


def test_a_hold_shorter_than_the_transit_factor_times_the_last_wait_is_not_settled():
    """Greedy plateaus grow: rank 6 held for 3,000 steps after waiting 1,000 at 5 is settled;
    after waiting 3,000 at 5 it is not (a seventh direction may still be in transit)."""
    quick = settledness(spectra([5] + [6] * 4), 1000, 0.01)
    assert quick.longest_wait == 1000 and quick.stable_steps == 3000
    assert not quick.settled  # 3,000 < 5 x 1,000
    settled = settledness(spectra([5] + [6] * 6), 1000, 0.01)
    assert settled.stable_steps == 5000 >= TRANSIT_FACTOR * settled.longest_wait
    assert settled.settled
    slow = settledness(spectra([5] * 3 + [6] * 6), 1000, 0.01)
    assert slow.longest_wait == 3000 and not slow.settled


def test_the_switch_is_read_afterwards_for_any_patience():
    steps, ranks = list(range(188, 188 * 21, 188)), [1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4] + [5] * 8
    assert switch_for_patience(steps, ranks, patience=940) == (6, 2)  # a laptop-like freeze
    assert switch_for_patience(steps, ranks, patience=3000) is None  # never settled that long
    assert switch_for_patience(steps, ranks, patience=188, initial_rank=1) == (2, 2)


def test_degraded_means_a_loss_near_the_trivial_one_without_diverging():
    assert degraded(0.033, 0.067, diverged=False)  # the laptop alpha 1000 seed 1 case
    assert not degraded(0.012, 0.067, diverged=False)
    assert degraded(0.5, 0.067, diverged=True) is False  # diverged is its own verdict
    assert degraded(0.033, math.nan, diverged=False) is None  # not recorded


# -- a search's honest result (analysis/search.py) ------------------------------------------
def test_a_search_reports_test_accuracy_only_for_the_configuration_confirmed_on_fresh_seeds():
    rows = [
        run("explicit", 0, 0.95, 8, k=8, val_acc_selected=0.70, acc_selected=0.95),
        run("explicit", 0, 0.90, 16, k=16, val_acc_selected=0.80, acc_selected=0.90),
        run("explicit", 1, 0.88, 16, k=16, val_acc_selected=0.79, acc_selected=0.88),
        run("explicit", 2, 0.89, 16, k=16, val_acc_selected=0.81, acc_selected=0.89),
    ]
    from analysis.search import confirmation

    table = confirmation(frame(rows), "val_acc_selected")
    assert list(table["configuration"]) == ["explicit k=16"] * 2
    assert list(table["seed"]) == [1, 2] and list(table["acc_selected"]) == [0.88, 0.89]
    assert list(table["search val_acc_selected (seed 0)"]) == [0.80, 0.80]
    assert confirmation(frame(rows[:2]), "val_acc_selected").empty  # not confirmed yet


def test_a_seed_with_one_healthy_alpha_leaves_the_plateau_inconclusive_and_says_why():
    trials = alpha_rows({0: [0.90, 0.905], 1: [0.91, 0.90]}, alphas=(100.0, 300.0))
    lone = run("orthogonal", 2, 0.89, 8, depth=16, alpha=100.0)  # its alpha 300 diverged
    verdict = fig3_verdicts(fig3_per_seed(pd.concat([trials, frame([lone])]))).iloc[0]
    assert verdict["plateau"] == (
        "inconclusive (plateau at 2 of the 2 seeds where it is testable; not testable at 1)"
    )


def test_downstream_findings_compare_configurations_on_the_seeds_they_share():
    """alpha 100 has seeds 0-2 (seed 2 scoring far worse), alpha 300 only 0-1: over all seeds
    alpha 300 would look better; on the shared seeds they are alike."""
    from analysis.findings import downstream_findings

    rows = [run("orthogonal", s, acc, 8, depth=16, alpha=100.0) for s, acc in
            enumerate([0.93, 0.93, 0.50])]  # fmt: skip
    rows += [run("orthogonal", s, 0.92, 8, depth=16, alpha=300.0) for s in (0, 1)]
    [line] = downstream_findings(frame(rows).assign(acc_selected=math.nan))
    assert (
        "best orthogonal N=16 α=100 (0.93)" in line and "worst orthogonal N=16 α=300 (0.92)" in line
    )


def test_the_overview_names_the_scale_the_runs_used_and_fid_only_where_measured():
    from analysis.findings import overview

    rows = [run("orthogonal", s, 0.9, 8, depth=8, alpha=300.0, n_train=n, elapsed_s=1.0)
            for s, n in ((0, 1437), (1, 1437))]  # fmt: skip
    vectors = overview(frame(rows), preset="laptop")[1]
    assert "(1,437 training samples)" in vectors and "FID" not in vectors
    images = overview(frame(rows).assign(n_train=6000, fid=[40.0, 41.0]), preset="desktop")[1]
    assert "(6,000 training samples, FID and KID" in images and "within a seed" in images
