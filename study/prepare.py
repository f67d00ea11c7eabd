"""A user's data, read once per invocation and prepared for its trials (nanoGPT's `prepare.py`).

`read_data` is the one read of a `--data` source (and its `--labels`): it decodes and checks
it (`rankae.userdata.load_user_data`) and says what a study's config needs of it, its
shape (`StudyData`), with the place of its prepared file. `write_prepared` writes that file
once every check has passed; every trial and the report load it instead of decoding the
source again. The file is named by the source's content (its digest, which `--resume`
also compares), so an unchanged source is decoded once (a later invocation or `--resume`
loads the prepared file) and a changed one never reuses the old file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rankae.userdata import TORCHVISION_PREFIX, UserData, load_user_data, save_prepared

PREPARED_DIR = Path(".rankstudy") / "prepared"


@dataclass(frozen=True)
class StudyData:
    """What a study's config knows of a user's data: its shape and where its prepared file
    is (`path`, absolute: trials run in folders of their own)."""

    path: str  # the prepared file every trial and the report load
    source: str  # what the user gave (--data), absolute
    labels: str | None  # --labels, absolute
    kind: str  # "vectors" (n, D) or "images" (n, C, S, S)
    n: int
    width: int  # D, or the images' channels
    labelled: bool
    values: int  # input values it holds (n x D, or n x C x S x S)


def absolute(path: str) -> str:
    """A path made absolute (trials run elsewhere); a torchvision:NAME source as it is."""
    if path.startswith(TORCHVISION_PREFIX):
        return path
    return str(Path(path).expanduser().absolute())


def read_data(
    source: str, labels: str | None, digests: dict[str, str]
) -> tuple[UserData, StudyData]:
    """The data and its `StudyData`: the source decoded and checked, or, when this content
    was prepared before (an earlier invocation, or the one `--resume` continues), its
    prepared file loaded instead. `digests`: each input's content digest by its absolute
    path (`study.service.invocations.content_digests`); a torchvision dataset has none and is
    named by its name."""
    source, labels = absolute(source), labels and absolute(labels)
    identity = [[path, digests.get(path)] for path in (source, labels) if path]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:20]
    prepared = (PREPARED_DIR / f"{key}.npz").absolute()
    user = load_user_data(prepared) if prepared.is_file() else load_user_data(source, labels)
    data = StudyData(
        path=str(prepared),
        source=source,
        labels=labels,
        kind=user.kind,
        n=len(user),
        width=user.x.shape[1],
        labelled=user.labels is not None,
        values=user.x.numel(),
    )
    return user, data


def write_prepared(user: UserData, data: StudyData) -> None:
    """The prepared file, unless an earlier invocation of the same content wrote it."""
    if not Path(data.path).is_file():
        save_prepared(user, data.path)
