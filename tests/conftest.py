"""Shared fixtures: the data root, one local Ray (started as the CLI does), smoke studies."""

from __future__ import annotations

import compileall
import contextlib
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pytest
import torch
from cifar10_fixture import write_cifar10
from xdist.scheduler import LoadScopeScheduling

from rankae.data import DATA_ROOT_ENV, SPLITS, DataNotFoundError, default_data_root, load_images

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Before any test: in the first process, the project's packages compiled and MNIST
    extracted, once; in each of the suite's workers (`-n 2` in pyproject.toml), torch on one
    thread.

    Where PYTHONDONTWRITEBYTECODE is set (as on the machine docs/benchmarks.md timed the suite
    on), every CLI subprocess and Ray worker would otherwise compile the packages from source
    again (~0.4 s a process). Two workers extracting the same MNIST file at once could read it
    half-written. Two workers share two cores: torch's default of a thread per core would
    put four spinning threads on them (and OMP_NUM_THREADS carries it to subprocesses; Ray's
    trials get one thread each from Ray already)."""
    if hasattr(config, "workerinput"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
        return
    for package in sorted(init.parent for init in REPO.glob("*/__init__.py")):
        compileall.compile_dir(package, quiet=1)
    for split in SPLITS:
        with contextlib.suppress(DataNotFoundError):  # the tests that need it say so
            load_images("mnist", split, limit=1)


class ByModule(LoadScopeScheduling):
    """How the suite's two workers (`-n 2` in pyproject.toml) share it: each test module
    whole on one worker (its module fixtures are built once), and the modules that read the
    smoke studies together on one (the studies run once a session). The rest is
    pytest-xdist's own: the next module to whichever worker is free."""

    smoke_readers = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "tests").rglob("test_*.py")
        if "smoke_studies" in path.read_text()
    }

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return "smoke studies" if module in self.smoke_readers else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> ByModule:
    return ByModule(config, log)


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory) -> str:
    """Real MNIST (the configured root's, linked) beside a generated CIFAR-10 fixture.

    Set for the whole session before Ray starts, so its workers and every CLI subprocess
    read the same root; the user's own data root gets no fake CIFAR-10 written into it.
    """
    mnist = default_data_root() / "MNIST"
    mnist.mkdir(parents=True, exist_ok=True)  # where torchvision would download it anyway
    root = tmp_path_factory.mktemp("data")
    (root / "MNIST").symlink_to(mnist, target_is_directory=True)
    write_cifar10(root)
    previous = os.environ.get(DATA_ROOT_ENV)
    os.environ[DATA_ROOT_ENV] = str(root)
    yield str(root)
    if previous is None:
        os.environ.pop(DATA_ROOT_ENV)
    else:
        os.environ[DATA_ROOT_ENV] = previous


@pytest.fixture(scope="session")
def ray_local(data_root):
    """A quiet local Ray (2 CPUs), shared by every test that runs a study in-process."""
    import ray

    from study.service.launch import start_ray

    start_ray(None, 1.0)
    yield ray
    ray.shutdown()


class Tee(io.TextIOBase):
    """Writes to several text streams: a study's output is both shown and kept."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


class SmokeStudies:
    """`python -m study.run NAME --smoke`, as typed, each study at most once per session.

    All in one folder (its `mlflow.db`, `ray_results/`, `.rankstudy/`), as a user running
    them one after another in one project folder would have it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "mlflow.db"
        self.codes: dict[str, int] = {}
        self.printed: dict[str, str] = {}  # what it printed (progress, results, end summary)

    def run(self, name: str, *data: str) -> int:
        """`data`: the `--data ...` a study of a user's data (rank_of) needs."""
        from study.run import main

        if name not in self.codes:
            printed = io.StringIO()
            with contextlib.redirect_stdout(Tee(sys.stdout, printed)):
                self.codes[name] = self.in_folder(main, [name, "--smoke", *data])
            self.printed[name] = printed.getvalue()
        return self.codes[name]

    def in_folder(self, command: Callable[[list[str]], int], argv: list[str]) -> int:
        """A CLI's `main(argv)` run from this folder, as a user in it would type it."""
        with contextlib.chdir(self.folder):
            return command(argv)


@pytest.fixture(scope="session")
def smoke_studies(ray_local, tmp_path_factory) -> SmokeStudies:
    return SmokeStudies(tmp_path_factory.mktemp("smoke_studies"))
