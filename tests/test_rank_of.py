"""`rank_of`: the method as an estimate of a user's data's latent rank, through the real CLI.

The estimate's rule and its check (`analysis.rank_estimate`, `study.plans.rank_estimate`) on
their own, then the study end to end on data of known dimension (`tools.example_data`), on
each kind of source, and each bad input refused before anything is written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from test_userdata import BAD_SOURCES, files_under

from analysis.rank_estimate import (
    check_budget,
    check_variants,
    knee_ks,
    knee_outcome,
    knee_reading,
    loss_knee,
    rank_answer,
    run_rank,
)
from rankae import userdata
from rankae.config import RunConfig
from rankae.records import CODES_ARTIFACT
from study.plans.base import FINISHED, replay_complete
from study.prepare import read_data
from study.run import main
from study.studies import config
from tools import example_data
from trainables.contract import member_seeds, trial_runs


def runs_of(folder: Path) -> tuple[object, list]:
    """(the parent run, the trial runs) of the folder's rank_of invocation."""
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rank_of")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags["role"] == "study"]
    return parent, [r for r in runs if r.data.tags["role"] == "trial"]


def run_rank_of(folder: Path, monkeypatch, *args: str) -> int:
    folder.mkdir(exist_ok=True)
    monkeypatch.chdir(folder)
    return main(["rank_of", *args])


# --- the rule ------------------------------------------------------------------------------


def test_the_estimate_is_the_rank_most_runs_found_and_a_tie_goes_up():
    assert rank_answer({8: [4, 4, 5], 16: [4, 3, 4]}).rank == 4
    assert rank_answer({8: [3, 4]}).rank == 4  # a plateau only ever stops a run short
    assert rank_answer({8: [None, 6], 16: [None]}).runs == 1  # diverged members do not count
    assert rank_answer({8: [None]}) is None


def test_a_frequent_rank_is_the_answer_with_its_count():
    answer = rank_answer({8: [4, 5, 4], 16: [3, 4, 4]})
    assert answer.stable and answer.share == pytest.approx(4 / 6)
    assert answer.sentence().startswith("latent rank 4 (4 in 4/6, 5 in 1/6, 3 in 1/6 runs")


def test_a_split_ensemble_says_no_single_rank_and_never_a_median():
    """MNIST at the laptop budget: seeds at 2-3 and at 10-12; the median would be 7."""
    answer = rank_answer({8: [2, 12, 3], 16: [3, 10, 12]})
    assert not answer.stable
    sentence = answer.sentence()
    assert sentence.startswith("no single rank (12 in 2/6, 3 in 2/6, 10 in 1/6, 2 in 1/6")
    assert " 7 " not in sentence and "7." not in sentence
    digits = rank_answer({8: [4, 4, 4], 16: [3, 3, 3]})  # a depth systematic, not +-1 noise
    assert not digits.stable and "4 in 3/6, 3 in 3/6" in digits.sentence()


def test_the_check_is_contiguous_to_2r_plus_4_then_log_spaced_within_the_latent_width():
    assert knee_ks(4, 32) == [*range(1, 13), 16, 32]
    assert knee_ks(1, 128) == [1, 2, 3, 4, 5, 6, 8, 16, 32, 64, 128]
    assert knee_ks(20, 24) == list(range(1, 25))


def test_the_checks_budget_is_about_check_steps_at_ten_times_the_lr_within_the_estimates():
    base = RunConfig(n_train=2400, batch_size=32, lr=1e-4, epochs=200)  # 75 steps per epoch
    assert check_budget(base) == {"lr": 1e-3, "epochs": 14}  # 1,050 steps
    assert check_budget(base.replace(epochs=2))["epochs"] == 2
    variants = check_variants(3, 16, check_budget(base))
    assert all(v["lr"] == 1e-3 and v["stop_when_settled"] is False for v in variants)


STRENGTHS = (1.0, 0.6, 0.4, 0.25)  # four directions' shares of the loss; a floor after them


def rank_4_losses(k: int) -> float:
    """Held-out loss of an explicit k on rank-4 data: it falls until k = 4, then stays."""
    return 0.01 + sum(STRENGTHS[k:]) if k <= 4 else 0.01 * (1 - 0.002 * k)


@pytest.mark.parametrize(
    "estimate, outcome",
    [(6, "estimate too high"), (2, "estimate too low"), (4, "agrees")],
)
def test_the_check_disagrees_in_either_direction(estimate, outcome):
    """The knee at 4, read on the grid the estimate would queue and vanilla's k = d = 32."""
    knee = loss_knee({k: [rank_4_losses(k)] for k in [*knee_ks(estimate, 32), 32]})
    assert knee.k == 4 and knee_outcome(knee, estimate) == outcome


def test_a_knee_at_2_needs_only_k_1_before_it():
    """Rank-2 vectors' held-out losses (LatentRank's smoke check on example_data.linear(2)):
    a 45x fall from k = 1 to 2, flat after: a first segment of one width reads it."""
    losses = {1: 0.2076, 2: 0.00463, 3: 0.00464, 4: 0.00463, 5: 0.00506, 6: 0.00455, 8: 0.00483}
    knee = loss_knee({k: [v] for k, v in losses.items()})
    assert knee.k == 2 and knee_outcome(knee, 2) == "agrees"


def test_a_knee_after_a_concave_fall_is_read_at_the_rank():
    """Rank-8 vectors of 8 equally strong directions (LatentRank's laptop check on
    example_data.linear(8), 2 seeds, means): the loss falls slowly, then 25x from k = 7 to 8,
    then stays flat. A line through k = 1..8 would bend; the knee opens the flat segment."""
    falling = [0.763, 0.638, 0.521, 0.403, 0.319, 0.200, 0.109]
    flat = [0.0045, 0.0042, 0.0041, 0.0040, 0.0039, 0.0046, 0.0041, 0.0038, 0.0043, 0.0040]
    losses = dict(zip(range(1, 18), falling + flat, strict=True)) | {32: 0.0040}
    knee = loss_knee({k: [v] for k, v in losses.items()})
    assert knee.k == 8 and knee_outcome(knee, 8) == "agrees"


def test_a_power_law_or_a_geometric_fall_has_no_knee():
    """Smooth falls with no rank: 1 / k^2 (a line in log-log, noisy or not) and exp(-k / 3)
    (curved in log-log but falling faster after, not slower)."""
    ks = range(1, 13)
    assert loss_knee({k: [k**-2.0] for k in ks}).k is None
    assert loss_knee({k: [k**-2.0 * (1 + 0.03 * (-1) ** k)] for k in ks}).k is None
    assert loss_knee({k: [math.exp(-k / 3)] for k in ks}).k is None


def test_the_seeds_spread_is_the_knees_noise():
    """A fall of 15% per k up to 5 is a knee when the seeds agree (the 5% floor is then the
    noise), not when they spread by 30%."""

    def losses(spread: float) -> dict[int, list[float]]:
        fall = {k: 0.85 ** min(k, 5) for k in range(1, 11)}
        return {k: [v * (1 - spread), v, v * (1 + spread)] for k, v in fall.items()}

    assert loss_knee(losses(0.001)).k == 5
    assert loss_knee(losses(0.3)).k is None


def check_frame(losses: dict[int, float], vanilla: float) -> pd.DataFrame:
    """Finished explicit-bottleneck rows with these held-out losses and a vanilla row (the
    check's frame; d = 32)."""
    rows = [
        {"bottleneck": "explicit", "k": k, "loss": 2 * loss, "eval_loss": loss}
        for k, loss in losses.items()
    ] + [{"bottleneck": "vanilla", "k": math.nan, "loss": 2 * vanilla, "eval_loss": vanilla}]
    return pd.DataFrame(rows).assign(diverged=False, status="FINISHED", latent_dim=32)


def test_the_verdict_reads_the_held_out_loss_and_names_its_knee():
    frame = check_frame({k: rank_4_losses(k) for k in knee_ks(6, 32)}, rank_4_losses(32))
    says = knee_reading(frame, 6)
    assert says.startswith("the check says estimate too high: its knee is at k = 4")
    assert "the held-out explicit loss" in says
    assert knee_reading(frame.drop(columns="eval_loss"), 6).count("the training explicit loss")
    smooth = check_frame({k: k**-2.0 for k in range(1, 9)}, 32**-2.0)
    assert knee_reading(smooth, 4).startswith("the check finds no knee")


def test_a_loss_still_falling_to_vanilla_is_no_knee():
    """Flat from 5 to 8 among the explicit widths, but vanilla (k = d = 32) is 3x better:
    the loss had not stopped falling (sklearn's digits at the laptop budget look like this)."""
    losses = {1: 0.77, 2: 0.55, 3: 0.43, 4: 0.36, 5: 0.33, 8: 0.31}
    assert loss_knee({k: [v] for k, v in losses.items()}) is not None  # 5 widths, vanilla aside
    assert knee_reading(check_frame(losses, vanilla=0.116), 3).startswith("the check finds no knee")


def test_the_check_is_queued_at_the_estimate_once_every_ladder_has_ended(tmp_path):
    """The searcher climbs each N's ladder, then hands out explicit k around the estimate and
    vanilla; replayed over those trials it says the plan is done."""
    x, y = example_data.linear(4)
    np.save(tmp_path / "x.npy", x)
    spec = config("rank_of", "laptop", read_data(str(tmp_path / "x.npy"), None, {})[1])
    searcher = spec.plan.search(spec.trials(), None, "t")
    finished, step = [], 0

    def member_result(config: dict, rank: int) -> dict:
        seeds = member_seeds(config)
        return {"members": {str(s): {"latent_rank": rank, "diverged": False} for s in seeds}}

    while (config_ := searcher.suggest(f"t{step}")) not in (FINISHED, None):
        rank = 4
        result = member_result(config_, rank)
        searcher.on_trial_complete(f"t{step}", result)
        finished.append((config_, result, False))
        step += 1
    assert searcher.suggest("last") == FINISHED
    first_runs = [trial_runs(c)[0] for c, _, _ in finished]
    rungs = [(r.depth, r.alpha) for r in first_runs if r.bottleneck == "linear_net"]
    assert rungs == [(8, 300.0)] * len(spec.seed_groups())  # vectors: one rung, every seed
    check = [c for c, _, _ in finished if trial_runs(c)[0].bottleneck != "linear_net"]
    check_runs = [run for c in check for run in trial_runs(c)]
    assert sorted({r.k for r in check_runs if r.bottleneck == "explicit"}) == knee_ks(4, 32)
    vanilla = [r.seed for r in check_runs if r.bottleneck == "vanilla"]
    assert sorted(vanilla) == [0, 1]  # the first two seeds
    assert all(r.two_stage is False for r in check_runs)
    assert spec.plan.complete(spec.trials(), finished)
    assert not replay_complete(spec.plan.search(spec.trials(), None, "t"), finished[:-1])


# --- end to end ------------------------------------------------------------------------------


@pytest.mark.slow
def test_linear_rank_4_vectors_with_labels_are_estimated_as_rank_4(
    ray_local, tmp_path, monkeypatch, capsys
):
    """`.npy` vectors with a `.npy` of labels, the smoke tier (N = 8, alpha 300, one seed)
    for 100 epochs instead of 30: the codes hold rank 4 (gap 478x) while W_e's 1% count
    keeps a fifth, weak direction, so the answer says the rank had not converged. The
    held-out check's knee is at 4, and `--resume` of the finished invocation runs nothing.
    (`LatentRank` runs the same settings: tests/test_latent_rank.py.)

    The source is decoded once: it is moved away as soon as it has been read, and every
    trial still trains on the prepared file; `--resume` loads that file, and a changed
    source is refused."""
    x, y = example_data.linear(4)
    source, hidden = tmp_path / "x.npy", tmp_path / "x.hidden"
    np.save(source, x)
    np.save(tmp_path / "y.npy", y)
    reads = []

    def read_once(path: Path, image_size: int):
        reads.append(path)
        raw = read_array_file(path, image_size)
        path.rename(hidden)  # a second read, in the driver or a trial, would find nothing
        return raw

    read_array_file = userdata._read_array_file
    monkeypatch.setattr(userdata, "_read_array_file", read_once)
    folder = tmp_path / "run"
    data = ["--data", str(source), "--labels", str(tmp_path / "y.npy")]
    assert run_rank_of(folder, monkeypatch, *data, "--smoke", "--set", "epochs=100") == 0
    assert reads == [source]
    hidden.rename(source)
    out = capsys.readouterr().out
    assert "latent-rank estimate: latent rank 4, not converged (4 in 1/1 runs" in out
    assert "0 of the 1 at 4 settled" in out and "the check agrees: its knee is at k = 4" in out
    parent, trials = runs_of(folder)
    assert parent.data.metrics["rank_estimate"] == 4 and parent.data.metrics["rank_stable"] == 1
    explicit = {
        int(r.data.params["k"]): r for r in trials if r.data.params["bottleneck"] == "explicit"
    }
    assert sorted(explicit) == knee_ks(4, 32)
    assert loss_knee({k: [r.data.metrics["eval_loss"]] for k, r in explicit.items()}).k == 4
    assert all("acc_selected" in r.data.metrics and "fid" not in r.data.metrics for r in trials)
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    saved = {r.info.run_id: {a.path for a in client.list_artifacts(r.info.run_id)} for r in trials}
    kept = {r.data.params["bottleneck"] for r in trials if CODES_ARTIFACT in saved[r.info.run_id]}
    assert kept == {"linear_net", "vanilla"}  # the check's explicit widths keep no codes

    assert run_rank_of(folder, monkeypatch, "--resume") == 0
    assert len(runs_of(folder)[1]) == len(trials)  # a finished plan has nothing left to run
    assert reads == [source]  # the resume loaded the prepared file
    np.save(source, x[::-1])
    capsys.readouterr()
    assert run_rank_of(folder, monkeypatch, "--resume") == 2
    assert f"{source} changed since the invocation started" in capsys.readouterr().err


@pytest.mark.slow
def test_a_curved_3_dimensional_manifold_is_estimated_as_3_or_4(
    ray_local, tmp_path, monkeypatch, capsys
):
    """x = tanh(1.5 z B) + noise with z in R^3 is curved (lPCA counts 4 linear directions),
    yet the smoke estimate must lie in [r, r + 1]: the latent rank counts the codes' linear
    directions, and a finite MLP may spend one more on the curvature. At d = 8 (a check of 8
    widths, not 12)."""
    example_data.write("curved", tmp_path / "curved.npz", rank=3)
    folder = tmp_path / "run"
    data = ("--data", str(tmp_path / "curved.npz"))
    assert run_rank_of(folder, monkeypatch, *data, "--smoke", "--set", "latent_dim=8") == 0
    parent, _ = runs_of(folder)
    assert parent.data.metrics["rank_estimate"] in (3, 4)
    assert "latent-rank estimate: latent rank" in capsys.readouterr().out


def rank_3_images(n: int = 80, size: int = 28, seed: int = 0) -> np.ndarray:
    """n grey images, each a non-negative mix of 3 fixed smooth patterns, in [0, 1]."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, np.pi, size)
    patterns = [np.outer(np.sin(f * grid), np.sin(g * grid)) for f, g in ((1, 1), (2, 1), (1, 3))]
    mix = rng.uniform(0.1, 1.0, (n, 3))
    images = np.einsum("nk,khw->nhw", mix, np.abs(np.stack(patterns)))
    return (images / images.max()).astype(np.float32)


def png_folder(tmp_path: Path) -> str:
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(rank_3_images()):
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return str(folder)


def npy_images(tmp_path: Path) -> str:
    np.save(tmp_path / "images.npy", rank_3_images())
    return str(tmp_path / "images.npy")


@pytest.mark.slow
@pytest.mark.parametrize("source", [png_folder, npy_images], ids=["png folder", "npy images"])
def test_images_from_a_folder_or_an_array_give_a_smoke_estimate(
    ray_local, tmp_path, monkeypatch, capsys, source
):
    """Through the MNIST conv autoencoder for 2 epochs at d = 4 (a check of 4 widths): the
    code path, not a rank."""
    folder = tmp_path / "run"
    smoke = ("--smoke", "--set", "latent_dim=4")
    assert run_rank_of(folder, monkeypatch, "--data", source(tmp_path), *smoke) == 0
    parent, trials = runs_of(folder)
    rank = int(parent.data.metrics["rank_estimate"])
    assert {r.data.params["architecture"] for r in trials} == {"mnist_conv"}
    explicit = {
        int(r.data.params["k"]) for r in trials if r.data.params["bottleneck"] == "explicit"
    }
    assert explicit == set(knee_ks(rank, 4)) == {1, 2, 3, 4}
    assert "the check: explicit bottleneck" in capsys.readouterr().out


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_bad_data_is_one_line_exit_2_and_nothing_is_written(case, tmp_path, monkeypatch, capsys):
    make, name, says = BAD_SOURCES[case]
    source = make(tmp_path)
    folder = tmp_path / "project"
    folder.mkdir()
    before = files_under(tmp_path)
    assert run_rank_of(folder, monkeypatch, "--data", source, "--smoke") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and name in err and says in err, err
    assert files_under(tmp_path) == before and not any(folder.iterdir())


def test_rank_of_needs_data_and_other_studies_take_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["rank_of", "--smoke"]) == 2
    assert "rank_of needs --data PATH" in capsys.readouterr().err
    assert main(["mnist_explicit", "--data", "x.npy", "--dry-run"]) == 2
    assert (
        "--data/--labels are for the studies of a user's data (rank_of)" in capsys.readouterr().err
    )
    assert not any(tmp_path.iterdir())


def test_the_dry_run_prices_the_users_data(tmp_path, capsys):
    example_data.write("digits", tmp_path / "digits.npz")
    assert main(["rank_of", "--data", str(tmp_path / "digits.npz"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "preset laptop" in out and "architecture=mlp n_train=1438 n_eval=359" in out
    assert "per N in [8]: alpha = 300 (all 5 seeds per rung" in out
    assert "then the check at the estimate r: explicit k = 1 ... 2r+4" in out and "2 seeds" in out


def test_a_run_s_rank_is_read_at_its_gap_and_at_its_threshold_count_only_before_that():
    assert run_rank({"latent_gap_rank": 4.0, "latent_rank": 6.0}) == 4.0
    assert run_rank({"latent_gap_rank": math.nan, "latent_rank": 6.0}) == 6.0  # an older store
    assert run_rank({"latent_rank": 6}) == 6 and run_rank({}) is None


def test_an_answer_whose_runs_had_not_settled_says_not_converged():
    """r = 8 data at 200 epochs: every run at 7, but W_e's last change came late (a plateau
    as long as the one before it may end in another direction)."""
    ranks = {8: [7, 7, 7], 16: [7, 7, 7]}
    early = rank_answer(ranks, {8: [False, False, True], 16: [False, False, False]})
    assert early.stable and early.converged is False and early.settled == 1
    assert early.sentence().startswith("latent rank 7, not converged (7 in 6/6 runs")
    assert "1 of the 6 at 7 settled" in early.sentence() and "train longer" in early.sentence()
    done = rank_answer(ranks, {8: [True] * 3, 16: [True, True, False]})
    assert done.converged and done.sentence().startswith("latent rank 7 (7 in 6/6")
    assert rank_answer(ranks).converged is None  # a store from before settledness was logged
    assert rank_answer(ranks, {8: [True] * 3, 16: [True, None, True]}).converged is None
