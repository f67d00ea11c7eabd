"""A user's own data as a RunConfig dataset (dataset='user'): one run trains on it, the method
finds a known rank on vectors in seconds on a CPU, downstream metrics are the ones that
apply, and the combinations that cannot work are refused in one line.

The rank recipe (`RANK_RECIPE`) is what was measured to settle for model seeds 0-2 in under
a third of its 30 epochs (the test docstring says how robust it is beyond that).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rankae.config import ConfigError, RunConfig
from rankae.downstream import select_labelled
from rankae.engine import Trainer, load_run_data
from rankae.evaluate import evaluate_downstream, save_reconstructions

N, D, R = 2000, 32, 4
SIGNAL_SCALE, NOISE_SD = 3.0, 0.05
# orthogonal init with W_e = 0.05 x orthogonal, alpha 300 and lr / N (lr 1e-4) on an
# 8-layer sub-network: settled (latent rank and W_e rank 4 from then on) by epoch 5 for
# seeds 0-2 on this data; see test_mlp_finds_the_rank_of_linear_rank_4_vectors
RANK_RECIPE: dict[str, Any] = dict(
    dataset="user",
    architecture="mlp",
    bottleneck="linear_net",
    init="orthogonal",
    init_scale=0.05,
    depth=8,
    alpha=300.0,
    lr=1e-4,
    optimizer="adam",
    batch_size=32,
    latent_dim=32,
    two_stage=False,
    dtype="float32",
    epochs=30,
)


def rank_r_vectors(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x = z A + noise: z ~ N(0, I_r), A (r x D) with orthonormal rows times SIGNAL_SCALE;
    labels: the sign of z's first coordinate."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, R))
    basis, _ = np.linalg.qr(rng.standard_normal((D, R)))
    x = z @ (basis.T * SIGNAL_SCALE) + NOISE_SD * rng.standard_normal((N, D))
    return x.astype(np.float32), (z[:, 0] > 0).astype(np.int64)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> tuple[str, str]:
    """(x.npy, y.npy) of the rank-4 vectors."""
    folder = tmp_path_factory.mktemp("vectors")
    x, y = rank_r_vectors()
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return str(folder / "x.npy"), str(folder / "y.npy")


def train(config: RunConfig) -> tuple[Trainer, list]:
    trainer = Trainer(config, device="cpu")
    return trainer, list(trainer.run())


# --- (a) the method finds the rank -------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_finds_the_rank_of_linear_rank_4_vectors(vectors, seed: int) -> None:
    """Latent rank and W_e rank both 4 at the end of 30 epochs (~2.5 s a run on one core).

    Measured (data draw 0 unless said; 'settled' = 4 and 4 from that epoch to the end):
    depth 8, init_scale 0.05, lr 1e-4: alpha 300 settles at epochs 3-5 for seeds 0-2
    (float32 and float64 alike) and 10-16 on a second data draw; alpha 100 and 1000 settle
    too (epochs 3-8); alpha 30 ends with W_e rank 5 for 2 of 3 seeds, alpha 10 with W_e rank
    32 (the sub-network's unused directions stay above 1% of the top one), alpha 3000
    diverges. Depth 16 with the same init_scale, alpha 100 and 300: 4/4 for seeds 0-2 by
    epoch 60 (settling at epochs 12-51). Some seeds (seed 3 here) sit at rank 3 (loss
    ~0.1) until epoch ~80 before the fourth direction is learned: greedy learning's plateau.
    """
    config = RunConfig(**RANK_RECIPE, data_path=vectors[0], seed=seed).validate()
    _, records = train(config)
    last = records[-1]
    assert not last.diverged
    assert (last.latent_rank, last.we_rank) == (R, R)
    assert last.loss < 0.02  # the four directions are reconstructed, not just counted


def test_without_the_sub_network_the_mlp_codes_are_not_rank_4(vectors) -> None:
    """The same MLP, vanilla: its codes spread over ~20 directions (so rank 4 above is the
    bottleneck's doing, not the data's or the MLP's)."""
    config = RunConfig(**RANK_RECIPE, data_path=vectors[0]).replace(bottleneck="vanilla")
    _, records = train(config.validate())
    assert records[-1].we_rank is None
    assert records[-1].latent_rank > 2 * R


# --- (b) downstream: what applies ----------------------------------------------------------


def test_labelled_vectors_give_accuracies_and_no_fid(vectors, tmp_path) -> None:
    from trainables.autoencoder import write_artifacts

    config = RunConfig(
        **RANK_RECIPE,
        data_path=vectors[0],
        labels_path=vectors[1],
        downstream=True,
        classifier_labels=200,
        classifier_epochs=30,
    ).validate()
    trainer, records = train(config)
    assert trainer.data.has_labels and trainer.data.kind == "vectors"
    metrics = evaluate_downstream(trainer, tmp_path / "direct")
    assert set(metrics) == {
        "acc_best", "acc_selected", "val_acc_selected",
        "acc_pre_best", "acc_pre_selected", "val_acc_pre_selected",
    }  # fmt: skip
    assert metrics["acc_best"] > 0.85  # the sign of z_1 is linear in the rank-4 code
    assert not (tmp_path / "direct" / "gmm_samples.png").exists()

    final = {"diverged": False, "latent_rank": records[-1].latent_rank}
    downstream = write_artifacts(trainer, final, tmp_path / "trial")
    assert set(downstream) == {*metrics, "eval_loss"}  # the held-out loss the check reads
    assert downstream["eval_loss"] == pytest.approx(trainer.eval_loss())
    written = json.loads((tmp_path / "trial" / "final.json").read_text())
    assert "fid" not in written and written["acc_best"] == downstream["acc_best"]
    assert not (tmp_path / "trial" / "reconstructions.png").exists()


def test_unlabelled_vectors_have_no_downstream_metrics(vectors) -> None:
    config = RunConfig(**RANK_RECIPE, data_path=vectors[0], downstream=True).replace(epochs=1)
    trainer, _ = train(config.validate())
    assert not trainer.data.has_labels
    assert evaluate_downstream(trainer) == {}


def test_select_labelled_caps_at_the_pool_and_keeps_the_balance_it_can() -> None:
    labels = torch.tensor([0] * 30 + [1] * 6 + [2] * 30)
    capped = select_labelled(labels, 1000, seed=0, cap=True)  # more than the 66 there are
    assert torch.bincount(labels[capped]).tolist() == [30, 6, 30]
    short = select_labelled(labels, 30, seed=0, cap=True)  # class 1 cannot give 10
    assert torch.bincount(labels[short]).tolist() == [12, 6, 12]
    balanced = select_labelled(labels, 15, seed=4, cap=True)  # every class can: unchanged
    assert torch.equal(balanced, select_labelled(labels, 15, seed=4))
    with pytest.raises(ValueError, match="class 1 has 6 examples"):
        select_labelled(labels, 30, seed=0)  # uncapped, as before


# --- the split -----------------------------------------------------------------------------


def test_the_split_is_seeded_by_data_seed_and_capped_by_n_train(vectors) -> None:
    base = RunConfig(**RANK_RECIPE, data_path=vectors[0], labels_path=vectors[1])
    data = load_run_data(base.validate())
    assert (len(data.train), len(data.test), data.n_eval) == (1600, 400, 400)
    x, y = rank_r_vectors()
    assert data.has_labels and int(data.train.labels.sum() + data.test.labels.sum()) == y.sum()
    standardised = (x - x.mean(axis=0)) / x.std(axis=0)  # rankae.userdata's, for vectors
    both = torch.cat([data.train.images, data.test.images]).double()
    assert torch.allclose(both.sum(dim=0), torch.zeros(D, dtype=torch.float64), atol=1e-2)
    assert np.isclose(float((both**2).sum()), float((standardised**2).sum()), rtol=1e-4)
    again = load_run_data(base.replace(n_train=500, n_eval=100).validate())
    assert (len(again.train), len(again.test), again.n_eval) == (500, 400, 100)
    assert torch.equal(again.train.images, data.train.images[:500])
    assert torch.equal(again.test.images, data.test.images)  # n_train never moves the test set
    other = load_run_data(base.replace(data_seed=1, eval_fraction=0.5).validate())
    assert len(other.test) == 1000
    assert not torch.equal(other.test.images[:400], data.test.images)


def test_a_split_too_small_to_evaluate_is_refused(vectors) -> None:
    config = RunConfig(**RANK_RECIPE, data_path=vectors[0], eval_fraction=0.0002).validate()
    with pytest.raises(ConfigError, match=r"^eval_fraction=0.0002 is invalid .* each needs"):
        load_run_data(config)


# --- (c) images ------------------------------------------------------------------------------


def images(tmp_path: Path, channels: int, n: int = 64) -> str:
    rng = np.random.default_rng(channels)
    path = tmp_path / f"images{channels}.npy"
    np.save(path, rng.random((n, channels, 28, 28), dtype=np.float32))
    return str(path)


def test_gray_images_train_an_epoch_with_mnist_conv(tmp_path) -> None:
    config = RunConfig(
        dataset="user", data_path=images(tmp_path, 1), epochs=1, dtype="float32", depth=4
    ).validate()
    trainer, records = train(config)
    assert trainer.data.kind == "images" and trainer.data.train.images.shape[1:] == (1, 32, 32)
    assert len(records) == 1 and np.isfinite(records[0].loss) and not records[0].diverged
    save_reconstructions(trainer, tmp_path / "reconstructions.png")
    assert (tmp_path / "reconstructions.png").stat().st_size > 0


def test_rgb_images_are_refused_for_mnist_conv_in_one_line(tmp_path) -> None:
    path = images(tmp_path, 3)
    config = RunConfig(dataset="user", data_path=path, architecture="mnist_conv").validate()
    with pytest.raises(ConfigError) as info:
        Trainer(config, device="cpu")
    message = str(info.value)
    assert f"data_path={path!r} holds 3-channel images: use architecture='cifar_conv'" in message
    assert "\n" not in message
    vectors_as_conv = RunConfig(dataset="user", data_path=path, architecture="mlp").validate()
    with pytest.raises(ConfigError, match="holds 3-channel images: use architecture='cifar_conv'"):
        load_run_data(vectors_as_conv)


def test_vectors_are_refused_for_a_conv_architecture(vectors) -> None:
    config = RunConfig(dataset="user", data_path=vectors[0], architecture="cifar_conv")
    with pytest.raises(ConfigError, match=r"holds vectors of 32 features: use architecture='mlp'"):
        load_run_data(config.validate())


# --- (d) the cross-field rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"dataset": "user", "architecture": "mlp"},
         "data_path=None is invalid for dataset='user'"),
        ({"dataset": "mnist", "data_path": "x.npy"},
         "data_path='x.npy' is only for dataset='user'"),
        ({"dataset": "cifar10", "architecture": "cifar_conv", "labels_path": "y.npy"},
         "labels_path='y.npy' is only for dataset='user'"),
        ({"dataset": "mnist", "architecture": "mlp"}, "architecture='mlp' is for a user's vectors"),
        ({"dataset": "synthetic", "architecture": "mlp"}, "architecture='mlp' is for a user's"),
        ({"dataset": "user", "data_path": "x.npy", "architecture": "linear"},
         "architecture='linear' is for dataset='synthetic', not 'user': use 'mlp'"),
        ({"dataset": "user", "data_path": "x.npy", "eval_fraction": 1.0},
         "eval_fraction=1.0 is invalid: must lie strictly between 0 and 1"),
    ],
)  # fmt: skip
def test_user_data_rules_are_one_line_config_errors(changes: dict[str, Any], named: str) -> None:
    for build in (lambda: RunConfig(**changes).validate(), lambda: RunConfig.from_dict(changes)):
        with pytest.raises(ConfigError) as info:
            build()
        assert named in str(info.value) and "\n" not in str(info.value)


def test_the_command_line_trains_a_user_npy(vectors, capsys) -> None:
    from rankae.train import build_parser, main

    argv = ["--dataset", "user", "--data-path", vectors[0], "--architecture", "mlp"]
    assert main([*argv, "--epochs", "2", "--latent-dim", "16", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"latent rank: \d+", out) and "steps: 100" in out  # 1,600 / 32 x 2
    assert main(["--dataset", "user", "--data-path", vectors[0], "--epochs", "1"]) == 2
    assert "use architecture='mlp'" in capsys.readouterr().err
    help_text = " ".join(build_parser().format_help().split())
    for flag in ("--data-path", "--labels-path", "--eval-fraction"):
        assert flag in help_text


def test_a_seed_group_of_mlps_trains_as_separate_runs_do(vectors) -> None:
    """rankae.vectorized stacks MLP members as it does conv ones (a study's seed groups)."""
    from rankae.vectorized import VectorizedTrainer

    configs = [
        RunConfig(
            **{**RANK_RECIPE, "dtype": "float64", "epochs": 2}, data_path=vectors[0], seed=seed
        )
        for seed in (0, 1)
    ]
    stacked = list(VectorizedTrainer(configs, device="cpu").run())
    for k, config in enumerate(configs):
        _, alone = train(config.validate())
        assert np.allclose([r[k].loss for r in stacked], [r.loss for r in alone], rtol=1e-9)
        assert [r[k].latent_rank for r in stacked] == [r.latent_rank for r in alone]
