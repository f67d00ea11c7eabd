"""A user's own dataset, loaded once and validated at the edge, for latent-rank estimation.

`load_user_data(source)` reads one of:
- a folder of images: one subfolder per class (torchvision's ImageFolder layout; labels are
  the sorted subfolder names' indices) or a flat folder of image files (no labels);
- a NumPy file: `.npy` (one array) or `.npz` (array `x` or `data`, labels `y` or `labels`),
  holding images (n, C, H, W) with C 1 or 3, images (n, H, W), or vectors (n, D);
- `torchvision:NAME`, a torchvision dataset's train split under `rankae.data`'s data root.

Everything downstream (training, rank estimation, reports) then sees one shape of data:
images as float32 (n, C, S, S) in [0, 1] like `rankae.data`'s, or vectors standardised per
feature. Every problem is a `UserDataError` with a one-line message that names the file and
what is allowed, raised before any work starts. The loader only reads: nothing is written
(except torchvision's own download of a named dataset into the data root).

`save_prepared` writes loaded data as one `.npz` that `load_user_data` reads back as it is
(no decoding, resizing or standardising again): the study service decodes a user's source
once per invocation, and its trials and report load that file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import DATA_ROOT_ENV, DataNotFoundError, _torchvision_dataset, default_data_root

IMAGE_SIZE = 32  # as rankae.data: the conv autoencoders expect 32 x 32
MIN_SAMPLES = 32  # one batch
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_EXTENSIONS = (".npy", ".npz")
NPZ_DATA_KEYS = ("x", "data")
NPZ_LABEL_KEYS = ("y", "labels")
TORCHVISION_PREFIX = "torchvision:"
# torchvision datasets that take (root, train=, download=) and expose uint8 `.data` and
# `.targets`, so one code path reads them all
TORCHVISION_DATASETS = ("MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "CIFAR100", "USPS")
# PIL modes read as one channel; every other mode is read as RGB
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
ALLOWED_SOURCES = (
    "a folder of images, a .npy or .npz file, or torchvision:NAME "
    f"(NAME one of {', '.join(TORCHVISION_DATASETS)})"
)
ARRAY_SHAPES = "vectors (n, D), images (n, H, W) or images (n, C, H, W) with C 1 or 3"


class UserDataError(ValueError):
    """The user's data cannot be used as given; the one-line message names the file and
    what is wrong and what is allowed."""


def _one_line(text: object) -> str:
    """The first line of an exception's text: the messages here stay one line."""
    lines = str(text).strip().splitlines()
    return lines[0].strip() if lines else ""


@dataclass(frozen=True)
class UserData:
    """A user's dataset in the one form the rest of the project reads.

    `x` is float32: images (n, C, S, S) in [0, 1], or vectors (n, D) standardised per
    feature (mean 0, sd 1; constant features are 0). For vectors `mean` and `scale` record
    that standardisation, x = (raw - mean) / scale (scale is 1 for constant features), so it
    can be logged and inverted (`unstandardise`); both are None for images. `notes` says
    what was done to the data on the way in.
    """

    x: torch.Tensor
    labels: torch.Tensor | None  # (n,) int64, or None when the source has none
    kind: str  # "images" | "vectors"
    source: str
    mean: torch.Tensor | None = None  # (D,) float64, vectors only
    scale: torch.Tensor | None = None  # (D,) float64, vectors only
    notes: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()  # class names by label index, where the source names them

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def n_classes(self) -> int:
        """Distinct labels present (0 when unlabelled)."""
        return 0 if self.labels is None else int(self.labels.unique().numel())

    def unstandardise(self, x: torch.Tensor) -> torch.Tensor:
        """Vectors (e.g. reconstructions) back in the user's original units, float64."""
        if self.mean is None or self.scale is None:
            raise ValueError(f"{self.source} holds images: there is no standardisation to invert")
        return x.to(torch.float64) * self.scale + self.mean

    def describe(self) -> str:
        """One line for logs and reports, e.g. '1,797 vectors of 64 features from digits.npy
        (standardised), 10 classes'."""
        name = self.source if self.source.startswith(TORCHVISION_PREFIX) else Path(self.source).name
        if self.kind == "vectors":
            what = (
                f"{len(self):,} vectors of {self.x.shape[1]:,} features from {name} (standardised)"
            )
        else:
            c, h, w = self.x.shape[1:]
            what = f"{len(self):,} images of {c}x{h}x{w} from {name}"
        labels = f"{self.n_classes:,} classes" if self.labels is not None else "no labels"
        return f"{what}, {labels}"


def load_user_data(
    source: str | Path,
    labels: str | Path | None = None,
    image_size: int = IMAGE_SIZE,
    min_samples: int = MIN_SAMPLES,
) -> UserData:
    """Read `source` (a folder of images, .npy, .npz or torchvision:NAME) once, validated.

    `labels`: a .npy file of n integer labels, which overrides any the source has (class
    subfolders, an .npz's `y`). Images are resized to `image_size` x `image_size`; fewer
    than `min_samples` samples (one batch) is an error.
    """
    if not isinstance(image_size, int) or image_size < 1:
        raise UserDataError(f"image_size={image_size!r} is invalid: must be an integer >= 1")
    source, labels = str(source), None if labels is None else str(labels)
    if source.startswith(TORCHVISION_PREFIX):
        raw = _read_torchvision(source[len(TORCHVISION_PREFIX) :], image_size)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise UserDataError(f"{source}: no such file or folder; allowed are {ALLOWED_SOURCES}")
        if path.is_dir():
            raw = _read_image_folder(path, image_size)
        elif path.suffix.lower() in ARRAY_EXTENSIONS:
            prepared = _read_prepared(path, labels, image_size)
            if prepared is not None:
                _check_count(len(prepared), source, min_samples)
                return prepared
            raw = _read_array_file(path, image_size)
        else:
            suffix = path.suffix.lower() or "(none)"
            raise UserDataError(
                f"{source}: unknown file type {suffix!r}; allowed are {ALLOWED_SOURCES}"
            )
    return _finish(raw, source, labels, min_samples)


@dataclass(frozen=True)
class _Raw:
    """What a source reader found, before labels are checked and vectors standardised."""

    x: torch.Tensor  # images (n, C, S, S) in [0, 1], or vectors (n, D) as given
    kind: str
    labels: np.ndarray | None
    classes: tuple[str, ...]
    notes: list[str]


# --- sources ---------------------------------------------------------------------------


def _read_torchvision(name: str, image_size: int) -> _Raw:
    known = {n.lower(): n for n in TORCHVISION_DATASETS}
    if name.lower() not in known:
        allowed = ", ".join(TORCHVISION_PREFIX + n for n in TORCHVISION_DATASETS)
        raise UserDataError(
            f"{TORCHVISION_PREFIX}{name} is not a known torchvision dataset; allowed are {allowed}"
        )
    name = known[name.lower()]
    root = default_data_root()
    try:
        dataset = _torchvision_dataset(
            name, "train", root, f"Download it once where online (into {root})"
        )
    except DataNotFoundError as err:
        raise UserDataError(_one_line(err)) from err
    x = np.asarray(dataset.data)
    if x.ndim == 4 and x.shape[-1] == 3:  # CIFAR's (n, H, W, 3)
        x = x.transpose(0, 3, 1, 2)
    images, kind, notes = _from_array(x, TORCHVISION_PREFIX + name, image_size)
    classes = tuple(str(c) for c in getattr(dataset, "classes", None) or ())
    notes = [f"{name} train split from {root} (${DATA_ROOT_ENV})", *notes]
    return _Raw(images, kind, np.asarray(dataset.targets), classes, notes)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:  # object arrays need pickle, which is never loaded
        raise UserDataError(
            f"{path}: cannot read a numeric array ({_one_line(err)}); save plain numbers"
        ) from err
    except (OSError, EOFError) as err:
        raise UserDataError(f"{path}: not a readable .npy file ({_one_line(err)})") from err


def _read_array_file(path: Path, image_size: int) -> _Raw:
    y, notes = None, []
    if path.suffix.lower() == ".npy":
        x = _load_npy(path)
    else:
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                data_key = next((k for k in NPZ_DATA_KEYS if k in keys), None)
                if data_key is None:
                    raise UserDataError(
                        f"{path} has no array named {' or '.join(NPZ_DATA_KEYS)}: its keys are "
                        f"{', '.join(keys) or '(none)'}"
                    )
                label_key = next((k for k in NPZ_LABEL_KEYS if k in keys), None)
                x = archive[data_key]
                y = archive[label_key] if label_key else None
        except ValueError as err:
            if isinstance(err, UserDataError):
                raise
            raise UserDataError(
                f"{path}: cannot read a numeric array ({_one_line(err)}); save plain numbers"
            ) from err
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise UserDataError(f"{path}: not a readable .npz file ({_one_line(err)})") from err
        notes.append(f"array {data_key!r}" + (f", labels {label_key!r}" if label_key else ""))
    images, kind, array_notes = _from_array(x, str(path), image_size)
    return _Raw(images, kind, y, (), [*notes, *array_notes])


def _read_image_folder(folder: Path, image_size: int) -> _Raw:
    """ImageFolder layout (class subfolders) or a flat folder; one common channel count."""

    def visible(p: Path) -> bool:
        return not p.name.startswith(".")

    def images_in(paths: Sequence[Path]) -> tuple[list[Path], int]:
        files = [p for p in paths if p.is_file() and visible(p)]
        kept = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        return kept, len(files) - len(kept)

    entries = sorted(folder.iterdir())
    subfolders = [p for p in entries if p.is_dir() and visible(p)]
    files, ignored = images_in(entries)
    allowed = ", ".join(IMAGE_EXTENSIONS)
    labels: list[int] = []
    classes: tuple[str, ...] = ()
    notes: list[str] = []
    if subfolders and files:
        raise UserDataError(
            f"{folder} holds both image files and subfolders: use class subfolders only "
            "(ImageFolder layout) or image files only"
        )
    if subfolders:
        classes = tuple(p.name for p in subfolders)
        for index, sub in enumerate(subfolders):
            found, skipped = images_in(sorted(p for p in sub.rglob("*") if visible(p)))
            ignored += skipped
            if not found:
                raise UserDataError(f"{sub}: class folder holds no image files ({allowed})")
            files += found
            labels += [index] * len(found)
        notes.append(f"labels from {len(classes)} class subfolders")
    if not files:
        raise UserDataError(f"{folder}: folder holds no image files ({allowed})")
    if ignored:
        notes.append(f"ignored {ignored:,} non-image files")

    pixels, sizes, gray_count = [], set(), 0
    for file in files:
        image, size, is_gray = _read_image(file, image_size)
        pixels.append(image)
        sizes.add(size)
        gray_count += is_gray
    if 0 < gray_count < len(files):  # any RGB image makes the folder RGB
        notes.append(f"converted {gray_count:,} grayscale images to RGB (the folder has RGB ones)")
        pixels = [np.repeat(p, 3, axis=0) if p.shape[0] == 1 else p for p in pixels]
    resized = sorted(s for s in sizes if s != (image_size, image_size))
    if resized:
        shown = ", ".join(f"{h}x{w}" for h, w in resized[:3]) + (
            ", ..." if len(resized) > 3 else ""
        )
        notes.append(f"resized from {shown} to {image_size}x{image_size} (PIL bilinear)")
    y = np.asarray(labels, dtype=np.int64) if subfolders else None
    return _Raw(torch.from_numpy(np.stack(pixels)), "images", y, classes, notes)


def _read_image(file: Path, image_size: int) -> tuple[np.ndarray, tuple[int, int], bool]:
    """One image file as float32 (C, S, S) in [0, 1]; its original (H, W); whether gray."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image.load()
            size = (image.height, image.width)
            is_gray = image.mode in GRAY_MODES
            if image.mode in SIXTEEN_BIT_MODES:
                values = np.asarray(image.convert("I"), dtype=np.float32) / 65535.0
                converted = Image.fromarray(values)  # mode "F"
            elif image.mode == "F":
                raise UserDataError(
                    f"{file}: 32-bit float image files are not supported; allowed are 8- or "
                    "16-bit grayscale, RGB(A) and palette images"
                )
            else:
                converted = image.convert("L" if is_gray else "RGB")
            if size != (image_size, image_size):
                converted = converted.resize((image_size, image_size), Image.BILINEAR)
            array = np.asarray(converted, dtype=np.float32)
    except UserDataError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise UserDataError(f"{file}: cannot read this image file ({_one_line(err)})") from err
    if converted.mode != "F":
        array = array / 255.0
    array = np.clip(array, 0.0, 1.0)
    return (array[None] if array.ndim == 2 else array.transpose(2, 0, 1)), size, is_gray


def _from_array(x: np.ndarray, source: str, image_size: int) -> tuple[torch.Tensor, str, list[str]]:
    """Validate an array's shape and values; images to (n, C, S, S) in [0, 1]."""
    if x.dtype.kind not in "biuf":
        raise UserDataError(
            f"{source} holds {x.dtype} values: allowed are numbers (bool, int, uint or float)"
        )
    if x.ndim < 2 or x.ndim > 4 or (x.ndim == 4 and x.shape[1] not in (1, 3)):
        hint = ""
        if x.ndim == 4 and x.shape[-1] in (1, 3):
            hint = " (channels last? transpose to (n, C, H, W))"
        raise UserDataError(
            f"{source} holds an array of shape {tuple(x.shape)}{hint}: allowed are {ARRAY_SHAPES}"
        )
    if 0 in x.shape[1:]:
        raise UserDataError(
            f"{source} holds an array of shape {tuple(x.shape)} with an empty axis: "
            f"allowed are {ARRAY_SHAPES}"
        )
    if x.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise UserDataError(
                f"{source} holds {bad:,} NaN or inf values: remove or impute them first"
            )
    if x.ndim == 2:  # float64 here: any numeric dtype or byte order, standardised later
        return torch.from_numpy(np.asarray(x, dtype=np.float64)), "vectors", []
    notes: list[str] = []
    if x.ndim == 3:
        x = x[:, None]
    if x.dtype == np.uint8:
        images = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
        notes.append("uint8 divided by 255")
    else:
        images = torch.from_numpy(np.asarray(x, dtype=np.float32))  # native byte order
        lo, hi = (images.min().item(), images.max().item()) if images.numel() else (0.0, 1.0)
        if lo < 0.0 or hi > 1.0:
            images = (images - lo) / ((hi - lo) or 1.0)  # all equal: all 0
            notes.append(f"values in [{lo:g}, {hi:g}], not [0, 1]: min-max scaled to [0, 1]")
        else:
            notes.append("values already in [0, 1]: kept")
    h, w = images.shape[-2:]
    if (h, w) != (image_size, image_size):
        images = F.interpolate(
            images, size=(image_size, image_size), mode="bilinear", antialias=True
        ).clamp_(0.0, 1.0)
        notes.append(f"resized from {h}x{w} to {image_size}x{image_size} (bilinear, antialiased)")
    return images, "images", notes


# --- labels and the final record ---------------------------------------------------------


def _check_labels(y: np.ndarray, n: int, where: str) -> torch.Tensor:
    if y.ndim != 1:
        raise UserDataError(f"{where}: labels must be 1-D of length n={n:,}, got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise UserDataError(
            f"{where}: labels must be integers, got {y.dtype} (convert with .astype(int))"
        )
    if len(y) != n:
        raise UserDataError(f"{where}: {len(y):,} labels for {n:,} samples; need one per sample")
    if len(y) and y.min() < 0:
        raise UserDataError(f"{where}: labels must be >= 0, got {y.min()}")
    return torch.from_numpy(y.astype(np.int64))


def _standardise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-feature (x - mean) / sd in float64; constant features are exactly 0 (scale 1)."""
    raw = x.to(torch.float64)
    constant = raw.amax(dim=0) == raw.amin(dim=0)  # exact: a rounded sd may not be 0
    mean = torch.where(constant, raw[0], raw.mean(dim=0))
    scale = torch.where(constant, torch.ones_like(mean), raw.std(dim=0, correction=0))
    return ((raw - mean) / scale).to(torch.float32), mean, scale


def _check_count(n: int, source: str, min_samples: int) -> None:
    if n < min_samples:
        raise UserDataError(
            f"{source} has {n:,} samples: needs at least {min_samples:,} samples (one batch)"
        )


def _finish(raw: _Raw, source: str, labels_file: str | None, min_samples: int) -> UserData:
    """The checks every source shares (sample count, labels), then standardised vectors."""
    n = raw.x.shape[0]
    _check_count(n, source, min_samples)
    notes, classes = list(raw.notes), raw.classes
    if labels_file is not None:
        path = Path(labels_file).expanduser()
        if not path.is_file():
            raise UserDataError(f"{labels_file}: no such labels file; allowed is a .npy file")
        if path.suffix.lower() != ".npy":
            raise UserDataError(
                f"{labels_file}: unknown labels file type {path.suffix or '(none)'!r}; "
                "allowed is a .npy file of n integers"
            )
        labels = _check_labels(_load_npy(path), n, labels_file)
        classes = ()  # the names were the replaced labels'
        notes.append(
            f"labels from {path.name}"
            + (" (replacing the source's)" if raw.labels is not None else "")
        )
    else:
        labels = None if raw.labels is None else _check_labels(raw.labels, n, source)
    x, mean, scale = raw.x, None, None
    if raw.kind == "vectors":
        x, mean, scale = _standardise(x)
        notes.append("standardised per feature (mean 0, sd 1; constant features 0)")
    return UserData(
        x=x.contiguous(),
        labels=labels,
        kind=raw.kind,
        source=source,
        mean=mean,
        scale=scale,
        notes=tuple(notes),
        classes=classes,
    )


# --- the prepared file -----------------------------------------------------------------
PREPARED_MARK = "rankstudy_prepared"  # the key (holding the kind) of a `save_prepared` file
OPTIONAL_ARRAYS = ("labels", "mean", "scale")  # a prepared file holds those the data has


def save_prepared(data: UserData, path: str | Path) -> Path:
    """`data` as one uncompressed .npz that `load_user_data` reads back as it is: the arrays,
    the labels, the standardisation, the source's name and what was done on the way in.
    Written under a temporary name and renamed, so no reader sees half a file."""
    path = Path(path)
    arrays = {
        PREPARED_MARK: np.array(data.kind),
        "x": data.x.numpy(),
        "source": np.array(data.source),
        "notes": np.array(data.notes, dtype=str),
        "classes": np.array(data.classes, dtype=str),
    }
    present = {key: getattr(data, key) for key in OPTIONAL_ARRAYS}
    arrays |= {key: value.numpy() for key, value in present.items() if value is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as stream:
        np.savez(stream, **arrays)
    partial.replace(path)
    return path


def _read_prepared(path: Path, labels: str | None, image_size: int) -> UserData | None:
    """The data of a `save_prepared` file, or None when `path` is not one."""
    if path.suffix.lower() != ".npz":
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if PREPARED_MARK not in archive.files:
                return None
            stored = {key: archive[key] for key in archive.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        return None  # not a readable archive: the array reader says why
    if labels is not None:
        raise UserDataError(f"{path} is prepared data and holds its labels: give no labels file")
    x = torch.from_numpy(stored["x"])
    if x.dim() == 4 and tuple(x.shape[2:]) != (image_size, image_size):
        raise UserDataError(
            f"{path} holds images prepared at {x.shape[2]}x{x.shape[3]}: "
            f"image_size={image_size} needs them prepared again from their source"
        )
    optional = {key: torch.from_numpy(stored[key]) for key in OPTIONAL_ARRAYS if key in stored}
    return UserData(
        x=x,
        kind=str(stored[PREPARED_MARK]),
        source=str(stored["source"]),
        notes=tuple(str(note) for note in stored["notes"]),
        classes=tuple(str(name) for name in stored["classes"]),
        labels=optional.get("labels"),
        mean=optional.get("mean"),
        scale=optional.get("scale"),
    )
