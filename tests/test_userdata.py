"""A user's own data: every source loads into one form; every bad input is one clear error.

Also the MLP autoencoder that such vectors train (rankae.models.mlp_encoder_decoder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import rankae.userdata as userdata
from rankae.bottleneck import LinearSubnetwork
from rankae.data import DataNotFoundError
from rankae.models import MLP_HIDDEN, Autoencoder, mlp_encoder_decoder
from rankae.userdata import UserData, UserDataError, load_user_data, save_prepared


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def gray(value: int, size: int = 28) -> np.ndarray:
    return np.full((size, size), value, dtype=np.uint8)


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


# --- every source loads ------------------------------------------------------------------


def test_class_subfolders_give_labels_by_sorted_folder_name(tmp_path: Path) -> None:
    for i in range(20):
        write_png(tmp_path / "pets" / "dog" / f"{i}.png", gray(200))
        write_png(tmp_path / "pets" / "cat" / f"{i}.png", gray(100))
    data = load_user_data(str(tmp_path / "pets"))
    assert data.kind == "images" and data.x.shape == (40, 1, 32, 32)
    assert data.x.dtype == torch.float32 and data.labels.dtype == torch.int64
    assert data.classes == ("cat", "dog")  # ImageFolder's order: sorted names
    assert data.labels.tolist() == [0] * 20 + [1] * 20
    # a constant image stays constant through the resize: cat 100/255, dog 200/255
    assert torch.allclose(data.x[:20], torch.full((20, 1, 32, 32), 100 / 255), atol=1e-6)
    assert torch.allclose(data.x[20:], torch.full((20, 1, 32, 32), 200 / 255), atol=1e-6)
    assert any("resized from 28x28 to 32x32" in note for note in data.notes)
    assert data.mean is None and data.scale is None
    assert data.describe() == "40 images of 1x32x32 from pets, 2 classes"


def test_flat_folder_has_no_labels_and_keeps_32px_pixels_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 32), dtype=np.uint8)
    for i, image in enumerate(pixels):
        write_png(tmp_path / "flat" / f"img{i:02d}.png", image)
    (tmp_path / "flat" / "README.txt").write_text("not an image")
    data = load_user_data(str(tmp_path / "flat"))
    assert data.labels is None and data.classes == ()
    assert torch.equal(data.x[:, 0], torch.from_numpy(pixels).float() / 255.0)
    assert not any("resized" in note for note in data.notes)
    assert "ignored 1 non-image files" in data.notes
    assert data.describe().endswith(", no labels")


def test_a_folder_with_any_rgb_image_is_rgb_and_gray_images_are_replicated(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mixed"
    for i in range(16):
        write_png(folder / f"g{i}.png", gray(60, size=32))
    for i in range(16):
        rgb = np.zeros((32, 32, 3), dtype=np.uint8)
        rgb[..., 0] = 255
        Image.fromarray(rgb).save(folder / f"c{i}.bmp")
    data = load_user_data(str(folder))
    assert data.x.shape == (32, 3, 32, 32)
    order = sorted(p.name for p in folder.iterdir())
    first_gray, first_rgb = order.index("g0.png"), order.index("c0.bmp")
    assert torch.allclose(data.x[first_gray], torch.full((3, 32, 32), 60 / 255))
    assert data.x[first_rgb, 0].min() == 1.0 and data.x[first_rgb, 1:].max() == 0.0
    assert any("converted 16 grayscale images to RGB" in note for note in data.notes)


def test_npy_images_n_h_w_are_one_channel_and_resized(tmp_path: Path) -> None:
    images = np.zeros((40, 16, 16), dtype=np.uint8)
    images[1] = 51
    np.save(tmp_path / "small.npy", images)
    data = load_user_data(str(tmp_path / "small.npy"))
    assert data.x.shape == (40, 1, 32, 32) and data.kind == "images"
    assert torch.allclose(data.x[1], torch.full((1, 32, 32), 0.2))  # 51 / 255
    assert "uint8 divided by 255" in data.notes
    assert "resized from 16x16 to 32x32 (bilinear, antialiased)" in data.notes


def test_npy_images_n_c_h_w_in_unit_range_are_kept_and_resized_down(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (36, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "big.npy", images)
    data = load_user_data(str(tmp_path / "big.npy"), image_size=16)
    assert data.x.shape == (36, 3, 16, 16)
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0
    # antialiased: each output pixel averages a 4x4 patch, so the mean is kept
    assert data.x.mean().item() == pytest.approx(images.mean(), abs=0.01)
    assert "values already in [0, 1]: kept" in data.notes


def test_float_images_outside_unit_range_are_min_max_scaled(tmp_path: Path) -> None:
    images = np.linspace(-3.0, 5.0, 32 * 32 * 32).reshape(32, 1, 32, 32)
    np.save(tmp_path / "wide.npy", images)
    data = load_user_data(str(tmp_path / "wide.npy"))
    assert data.x.min().item() == 0.0 and data.x.max().item() == pytest.approx(1.0)
    assert any("min-max scaled" in note and "[-3, 5]" in note for note in data.notes)


def test_npy_vectors_are_standardised_and_take_labels_from_a_npy(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    raw = rng.normal(loc=[5.0, -2.0, 0.0, 0.0], scale=[3.0, 0.5, 1.0, 1.0], size=(100, 4))
    raw[:, 3] = 1 / 3  # constant, yet its float mean is 1 ulp off: raw - mean is not 0
    np.save(tmp_path / "v.npy", raw)
    np.save(tmp_path / "y.npy", np.arange(100) % 3)
    data = load_user_data(str(tmp_path / "v.npy"), labels=str(tmp_path / "y.npy"))
    assert data.kind == "vectors" and data.x.dtype == torch.float32 and data.x.shape == (100, 4)
    assert torch.allclose(data.x[:, :3].mean(dim=0), torch.zeros(3), atol=1e-6)
    assert torch.allclose(data.x[:, :3].std(dim=0, correction=0), torch.ones(3), atol=1e-5)
    assert torch.equal(data.x[:, 3], torch.zeros(100))
    assert torch.allclose(data.unstandardise(data.x), torch.from_numpy(raw), atol=1e-5)
    assert torch.allclose(data.mean[:3], torch.from_numpy(raw[:, :3].mean(axis=0)))
    assert data.labels.tolist() == (np.arange(100) % 3).tolist()
    assert data.describe() == "100 vectors of 4 features from v.npy (standardised), 3 classes"


def test_digits_npz_describes_itself_in_one_line(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=digits.data, y=digits.target)
    data = load_user_data(str(tmp_path / "digits.npz"))
    assert (
        data.describe() == "1,797 vectors of 64 features from digits.npz (standardised), 10 classes"
    )
    assert "array 'x', labels 'y'" in data.notes


def test_npz_data_and_labels_keys_load_images(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "alt.npz",
        data=np.full((32, 3, 32, 32), 255, dtype=np.uint8),
        labels=np.zeros(32, dtype=np.int32),
    )
    data = load_user_data(str(tmp_path / "alt.npz"))
    assert data.x.shape == (32, 3, 32, 32) and torch.equal(data.x, torch.ones(32, 3, 32, 32))
    assert data.labels.dtype == torch.int64 and data.n_classes == 1


def test_a_labels_file_overrides_the_class_subfolders(tmp_path: Path) -> None:
    for i in range(16):
        write_png(tmp_path / "two" / "a" / f"{i}.png", gray(0, 32))
        write_png(tmp_path / "two" / "b" / f"{i}.png", gray(0, 32))
    np.save(tmp_path / "own.npy", np.arange(32) % 4)
    data = load_user_data(str(tmp_path / "two"), labels=str(tmp_path / "own.npy"))
    assert data.labels.tolist() == (np.arange(32) % 4).tolist() and data.classes == ()
    assert "labels from own.npy (replacing the source's)" in data.notes


def test_a_torchvision_dataset_is_read_from_the_data_root(monkeypatch, tmp_path: Path) -> None:
    """Offline here, so torchvision itself is stood in for; what is checked is the
    conversion of its `.data` / `.targets` (MNIST's (n, H, W), CIFAR's (n, H, W, 3))."""
    calls = []

    def fake(name: str, split: str, root: Path, how: str) -> SimpleNamespace:
        calls.append((name, split))
        shape = (40, 32, 32, 3) if name == "CIFAR10" else (40, 28, 28)
        data = np.zeros(shape, dtype=np.uint8)
        data[..., 0] = 255 if name == "CIFAR10" else 0
        return SimpleNamespace(data=data, targets=[i % 10 for i in range(40)], classes=list("abc"))

    monkeypatch.setattr(userdata, "_torchvision_dataset", fake)
    mnist = load_user_data("torchvision:fashionmnist")
    assert calls == [("FashionMNIST", "train")]
    assert mnist.x.shape == (40, 1, 32, 32) and mnist.n_classes == 10
    assert mnist.describe() == "40 images of 1x32x32 from torchvision:fashionmnist, 10 classes"
    cifar = load_user_data("torchvision:CIFAR10")
    assert cifar.x.shape == (40, 3, 32, 32)
    assert cifar.x[:, 0].min() == 1.0 and cifar.x[:, 1:].max() == 0.0  # red stays channel 0


def test_a_torchvision_dataset_that_cannot_be_had_is_a_one_line_user_error(monkeypatch) -> None:
    def missing(*args: object) -> None:
        raise DataNotFoundError("MNIST is not under data root /x and could not be downloaded.\n")

    monkeypatch.setattr(userdata, "_torchvision_dataset", missing)
    with pytest.raises(UserDataError, match="MNIST is not under data root") as caught:
        load_user_data("torchvision:MNIST")
    assert "\n" not in str(caught.value)


def test_min_samples_is_a_parameter(tmp_path: Path) -> None:
    np.save(tmp_path / "ten.npy", np.random.default_rng(3).normal(size=(10, 3)))
    assert len(load_user_data(str(tmp_path / "ten.npy"), min_samples=8)) == 10


# --- every bad input is a one-line UserDataError naming the file -------------------------


def _good_pngs(folder: Path, n: int = 4) -> None:
    for i in range(n):
        write_png(folder / f"ok{i}.png", gray(10, 32))


def _broken_png(tmp: Path) -> str:
    _good_pngs(tmp / "imgs")
    (tmp / "imgs" / "broken.png").write_bytes(b"\x89PNG not really")
    return str(tmp / "imgs")


def _save(name: str, array: np.ndarray, **kwargs: object) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        if name.endswith(".npz"):
            np.savez(tmp / name, **{"a": array, "b": array[:1]})
        else:
            np.save(tmp / name, array, **kwargs)
        return str(tmp / name)

    return make


def _with_nans(tmp: Path) -> str:
    x = np.zeros((40, 5))
    x[0, :2], x[3, 1] = np.nan, np.inf
    np.save(tmp / "holes.npy", x)
    return str(tmp / "holes.npy")


def _empty_folder(tmp: Path) -> str:
    (tmp / "nothing").mkdir()
    (tmp / "nothing" / "notes.txt").write_text("no images here")
    return str(tmp / "nothing")


def _files_and_folders(tmp: Path) -> str:
    _good_pngs(tmp / "both")
    _good_pngs(tmp / "both" / "cls")
    return str(tmp / "both")


def _empty_class(tmp: Path) -> str:
    _good_pngs(tmp / "classes" / "full")
    (tmp / "classes" / "hollow").mkdir()
    return str(tmp / "classes")


def _csv(tmp: Path) -> str:
    (tmp / "table.csv").write_text("1,2\n3,4\n")
    return str(tmp / "table.csv")


BAD_SOURCES: dict[str, tuple[Callable[[Path], str], str, str]] = {
    # case: (make the source, the name the message must hold, what else it must say)
    "missing path": (lambda tmp: str(tmp / "gone.npy"), "gone.npy", "no such file or folder"),
    "empty folder": (_empty_folder, "nothing", "holds no image files (.png"),
    "unreadable image": (_broken_png, "broken.png", "cannot read this image file"),
    "NaN and inf": (_with_nans, "holes.npy", "holds 3 NaN or inf values"),
    "too few samples": (
        _save("few.npy", np.zeros((10, 4))),
        "few.npy",
        "has 10 samples: needs at least 32 samples (one batch)",
    ),
    "1-D array": (_save("flat.npy", np.zeros(50)), "flat.npy", "shape (50,)"),
    "4-D, 5 channels": (
        _save("five.npy", np.zeros((40, 5, 8, 8))),
        "five.npy",
        "shape (40, 5, 8, 8): allowed are",
    ),
    "channels last": (
        _save("last.npy", np.zeros((40, 8, 8, 3))),
        "last.npy",
        "channels last? transpose to (n, C, H, W)",
    ),
    "5-D array": (_save("deep.npy", np.zeros((40, 1, 2, 4, 4))), "deep.npy", "(40, 1, 2, 4, 4)"),
    "object array": (
        _save("objects.npy", np.array([{}] * 40), allow_pickle=True),
        "objects.npy",
        "cannot read a numeric array",
    ),
    "npz without x or data": (_save("keys.npz", np.zeros((40, 3))), "keys.npz", "keys are a, b"),
    "unknown extension": (_csv, "table.csv", "allowed are a folder of images, a .npy or .npz"),
    "unknown torchvision name": (
        lambda tmp: "torchvision:NoSuchSet",
        "torchvision:NoSuchSet",
        "allowed are torchvision:MNIST, torchvision:FashionMNIST",
    ),
    "image files beside class folders": (_files_and_folders, "both", "holds both image files"),
    "empty class folder": (_empty_class, "hollow", "class folder holds no image files"),
}


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_a_bad_source_is_a_one_line_error_naming_it_and_writes_nothing(
    case: str, tmp_path: Path
) -> None:
    make, name, says = BAD_SOURCES[case]
    source = make(tmp_path)
    before = files_under(tmp_path)
    with pytest.raises(UserDataError) as caught:
        load_user_data(source)
    message = str(caught.value)
    assert "\n" not in message and name in message and says in message, message
    assert files_under(tmp_path) == before


BAD_LABELS: dict[str, tuple[np.ndarray, str]] = {
    "wrong length": (np.zeros(39, dtype=int), "39 labels for 40 samples"),
    "floats": (np.zeros(40), "labels must be integers, got float64"),
    "2-D": (np.zeros((40, 1), dtype=int), "must be 1-D"),
    "negative": (np.full(40, -1), "labels must be >= 0"),
}


@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_bad_labels_are_a_one_line_error_naming_the_labels_file(case: str, tmp_path: Path) -> None:
    labels, says = BAD_LABELS[case]
    np.save(tmp_path / "x.npy", np.zeros((40, 3)))
    np.save(tmp_path / "lab.npy", labels)
    before = files_under(tmp_path)
    with pytest.raises(UserDataError) as caught:
        load_user_data(str(tmp_path / "x.npy"), labels=str(tmp_path / "lab.npy"))
    message = str(caught.value)
    assert "\n" not in message and "lab.npy" in message and says in message, message
    assert files_under(tmp_path) == before


def test_bad_npz_labels_name_the_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((40, 3)), y=np.zeros(40))
    with pytest.raises(UserDataError, match=r"d\.npz: labels must be integers"):
        load_user_data(str(tmp_path / "d.npz"))


def test_user_data_is_frozen(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.random.default_rng(4).normal(size=(32, 2)))
    data = load_user_data(str(tmp_path / "v.npy"))
    assert isinstance(data, UserData)
    with pytest.raises(AttributeError):
        data.kind = "images"  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["vectors with labels", "images of a folder"])
def test_a_prepared_file_reads_back_as_the_data_it_was_written_from(tmp_path: Path, kind) -> None:
    """Arrays, labels, the standardisation, the class names and the notes, unchanged and
    not standardised again; labels given beside it, or another image size, are refused."""
    if kind == "vectors with labels":
        rng = np.random.default_rng(6)
        np.save(tmp_path / "v.npy", rng.normal(3.0, 2.0, size=(40, 5)))
        np.save(tmp_path / "y.npy", np.arange(40) % 4)
        data = load_user_data(tmp_path / "v.npy", tmp_path / "y.npy")
    else:
        for label in ("cat", "dog"):
            (tmp_path / "img" / label).mkdir(parents=True)
            for i in range(16):
                Image.new("L", (8, 8), color=i * 8).save(tmp_path / "img" / label / f"{i}.png")
        data = load_user_data(tmp_path / "img")
    path = save_prepared(data, tmp_path / "prepared.npz")
    back = load_user_data(path)
    assert torch.equal(back.x, data.x) and torch.equal(back.labels, data.labels)
    for field in ("mean", "scale"):
        mine, theirs = getattr(back, field), getattr(data, field)
        assert (mine is None and theirs is None) or torch.equal(mine, theirs)
    assert (back.kind, back.source, back.notes, back.classes) == (
        data.kind, data.source, data.notes, data.classes
    )  # fmt: skip
    assert back.describe() == data.describe()
    with pytest.raises(UserDataError, match="prepared data and holds its labels"):
        load_user_data(path, tmp_path / "y.npy")
    if kind == "images of a folder":
        with pytest.raises(UserDataError, match="prepared at 32x32: image_size=16"):
            load_user_data(path, image_size=16)


# --- the MLP autoencoder these vectors train --------------------------------------------


def test_mlp_autoencoder_reconstructs_vectors_through_a_linear_subnetwork(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    np.save(tmp_path / "v.npy", rng.normal(size=(64, 3)) @ rng.normal(size=(3, 20)))
    data = load_user_data(str(tmp_path / "v.npy"))
    torch.manual_seed(0)
    encoder, decoder = mlp_encoder_decoder(20, 16)
    bottleneck = LinearSubnetwork(16, 4, generator=torch.Generator().manual_seed(1))
    model = Autoencoder(encoder, bottleneck, decoder).to(torch.float32)

    linears = [m for m in encoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 256), (256, 128), (128, 16)]
    assert MLP_HIDDEN == (256, 128) and all(m.bias is not None for m in linears)
    assert isinstance(decoder[-1], torch.nn.Linear) and decoder[-1].out_features == 20
    assert all(not isinstance(m, (torch.nn.ReLU, torch.nn.Tanh)) for m in decoder[-1:])
    assert model.codes(data.x).shape == (64, 16) and model.effective_matrix().shape == (16, 16)

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(data.x), data.x)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model(data.x).shape == data.x.shape
    assert losses[-1] < 0.5 * losses[0]  # it trains: no output activation caps the range


def test_mlp_widths_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every width must be an integer >= 1"):
        mlp_encoder_decoder(10, 4, hidden=(0,))
    encoder, decoder = mlp_encoder_decoder(10, 4, hidden=())
    assert len(encoder) == 1 and len(decoder) == 1  # one layer each way, no ReLU
