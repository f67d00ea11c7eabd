"""Node loss: a study joined to a two-node Ray cluster survives its worker node vanishing.

The cluster is `ray start` nodes on this machine, shaped like `cluster.yaml`'s: a head with
no CPUs (it schedules, trains nothing) and a worker with one CPU, so the trial surely runs
on the worker. Mid-trial the worker vanishes: every process of that node (`ray start`, its
raylet, agents and trial workers) is frozen and then killed with SIGKILL at once, and a
fresh worker joins, as an autoscaler replaces a lost spot node. `--storage` is a folder
every node reaches, as on a cluster with NFS.

A node's processes are found by process tree plus a marker in their environment: the
raylet puts each worker in a process group of its own, and an agent whose raylet died can
linger (it blocks reporting to a GCS that is gone), so killing process groups is not enough.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .conftest import SLOW_LINEAR, cli_env, client, epochs_logged, runs

MARK = "RANKSTUDY_TEST_RAY_NODE"  # in the environment of the processes a node starts
# A killed raylet is declared dead after ~3 s instead of ~15 s. The health-check timeout
# keeps its default (10 s), so a busy but live node on a loaded machine is never declared dead.
FAST_NODE_DEATH = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_failure_threshold": 3,
}
NODE_ARGS = ["--object-store-memory", str(100 * 1024**2), "--disable-usage-stats"]
# Children started through this die with the test process, even if it is SIGKILLed (a CI
# timeout): `ray start --block` then takes its raylet and GCS with it.
DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGKILL); "  # PDEATHSIG
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


# -- processes, as /proc shows them -----------------------------------------------------
class Proc(NamedTuple):
    ppid: int
    cmdline: str
    environ: list[bytes]
    cwd: str


def snapshot() -> dict[int, Proc]:
    """Every live process (zombies left out: they are dead, waiting to be reaped)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        folder = Path(entry.path)
        try:
            state, ppid = (folder / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if state in ("Z", "X"):
                continue
            cmdline = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode("latin-1")
            environ = (folder / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(folder / "cwd")
        except OSError:  # gone meanwhile
            continue
        found[int(entry.name)] = Proc(int(ppid), cmdline, environ, cwd)
    return found


def with_descendants(procs: dict[int, Proc], roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        children.setdefault(proc.ppid, []).append(pid)
    found, todo = set(), [pid for pid in roots if pid in procs]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def ancestors_of_this_process() -> set[int]:
    found, pid = set(), os.getpid()
    while pid > 1:
        found.add(pid)
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return found


def kill_at_once(find: Callable[[dict[int, Proc]], set[int]], timeout: float = 30) -> set[int]:
    """Freeze (SIGSTOP) what `find` selects until nothing new appears, then SIGKILL it all.

    Frozen processes spawn nothing and notice nothing: they vanish together, like a machine.
    """
    frozen, spare = set(), ancestors_of_this_process()
    while new := find(snapshot()) - frozen - spare:
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= new
    deadline = time.time() + timeout
    while left := frozen & set(snapshot()):
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert time.time() < deadline, f"processes survive SIGKILL: {sorted(left)}"
        time.sleep(0.1)
    return frozen


# -- a Ray cluster on this machine ------------------------------------------------------
class LocalCluster:
    """Ray nodes started with `ray start --block`, each in its own session, all marked."""

    def __init__(self, logs: Path) -> None:
        # short: Ray puts unix sockets under it (108-byte limit); pytest's tmp_path is long
        self.temp_dir = tempfile.mkdtemp(prefix="rs-nl-", dir="/tmp")
        self.tag = Path(self.temp_dir).name
        self.logs = logs
        self.started: dict[str, subprocess.Popen] = {}
        self.address = ""

    def _popen(self, name: str, args: list[str], cwd: Path, out: Path, err: Path | None = None):
        """Output to files, not pipes: a long traceback cannot block anyone."""
        cwd.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(open(out, "w"))
            stderr = files.enter_context(open(err, "w")) if err else subprocess.STDOUT
            process = subprocess.Popen(
                [sys.executable, "-c", DIE_WITH_PARENT, *args],
                cwd=cwd,
                env=cli_env(RAY_AUTH_MODE="disabled", **{MARK: f"{self.tag}/{name}"}),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        self.started[name] = process
        return process

    def _start_node(self, name: str, args: list[str], ready: str) -> re.Match:
        log = self.logs / f"{name}.log"
        process = self._popen(
            name, ["-m", "ray.scripts.scripts", "start", "--block", *args, *NODE_ARGS],
            cwd=self.logs / name, out=log,
        )  # fmt: skip
        deadline = time.time() + 180
        while not (found := re.search(ready, log.read_text())):
            if process.poll() is not None or time.time() > deadline:
                raise AssertionError(f"Ray node {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        return found

    def start_head(self) -> str:
        args = ["--head", "--port=0", "--num-cpus=0", "--include-dashboard=false",
                f"--temp-dir={self.temp_dir}",
                f"--system-config={json.dumps(FAST_NODE_DEATH)}"]  # fmt: skip
        self.address = self._start_node("head", args, r"ray start --address='([^']+)'")[1]
        return self.address

    def start_worker(self, name: str) -> None:
        self._start_node(name, [f"--address={self.address}", "--num-cpus=1"], "Ray runtime started")
        self.wait_for_alive_cpus(1)

    def wait_for_alive_cpus(self, cpus: int) -> None:
        """`ray start` returns before the GCS lists the node; the driver's cluster check reads
        `ray.nodes()`, so wait until the node is there, as a real cluster's would be."""
        probe = (
            f"import ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
            "cpus = sum(n['Resources'].get('CPU', 0) for n in ray.nodes() if n['Alive']); "
            "print('alive_cpus=', cpus)"
        )  # Ray may print its own notices to stdout around ours: read only the marked line
        deadline = time.time() + 120
        while time.time() < deadline:
            out = subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                env=cli_env(RAY_AUTH_MODE="disabled"),
            )  # fmt: skip
            found = re.search(r"alive_cpus= ([0-9.]+)", out.stdout)
            if out.returncode == 0 and found and float(found[1]) >= cpus:
                return
            time.sleep(1)
        raise AssertionError(f"the cluster never listed {cpus} alive CPU(s)")

    def start_driver(self, *args: str, cwd: Path) -> subprocess.Popen:
        """The study CLI in its own session; output in `cwd/driver.out`, `cwd/driver.err`."""
        return self._popen(
            "driver", ["-m", "study.run", *args],
            cwd=cwd, out=cwd / "driver.out", err=cwd / "driver.err",
        )  # fmt: skip

    def node(self, name: str, procs: dict[int, Proc]) -> set[int]:
        marker = f"{MARK}={self.tag}/{name}".encode()
        roots = {pid for pid, proc in procs.items() if marker in proc.environ}
        return with_descendants(procs, roots | {self.started[name].pid})

    def lose(self, name: str) -> set[int]:
        """The node vanishes: all of its processes at the same instant."""
        killed = kill_at_once(lambda procs: self.node(name, procs))
        self.started.pop(name).wait(timeout=30)
        return killed

    def everything(self, procs: dict[int, Proc]) -> set[int]:
        """Whatever this cluster started, wherever it ended up in the process tree."""
        marker = f"{MARK}={self.tag}/".encode()
        roots = {process.pid for process in self.started.values() if process.poll() is None}
        for pid, proc in procs.items():
            if (
                any(item.startswith(marker) for item in proc.environ)
                or self.temp_dir in proc.cmdline  # gcs_server, raylet, agents
                or proc.cwd.startswith((str(self.logs), self.temp_dir))  # nodes, trials
            ):
                roots.add(pid)
        return with_descendants(procs, roots)

    def shutdown(self) -> None:
        kill_at_once(self.everything)
        for process in self.started.values():
            process.wait(timeout=30)
        procs = snapshot()
        left = [f"{pid}: {procs[pid].cmdline[:150]}" for pid in self.everything(procs)]
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        assert not left, f"processes of the test's Ray cluster are left: {left}"


@pytest.fixture
def cluster(tmp_path):
    nodes = LocalCluster(tmp_path / "ray-nodes")
    try:
        yield nodes
    finally:
        nodes.shutdown()


def wait_while_running(driver: subprocess.Popen, err: Path, condition: Callable, what: str) -> Any:
    """Wait for `condition` to hold; fail at once if the driver exits meanwhile."""
    deadline = time.time() + 300
    while True:
        with contextlib.suppress(Exception):  # e.g. the store is busy
            if found := condition():
                return found
        assert driver.poll() is None, f"the driver exited before {what}:\n{err.read_text()[-3000:]}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def is_trial(proc: Proc) -> bool:
    return proc.cmdline.startswith("ray::ImplicitFunc")  # Ray retitles a trial's worker


def test_a_lost_worker_node_s_trial_resumes_elsewhere_from_its_checkpoint(tmp_path, cluster):
    address = cluster.start_head()
    cluster.start_worker("worker-1")
    shared = tmp_path / "shared"  # --storage: every node reaches it (here: the same disk)
    driver = cluster.start_driver(*SLOW_LINEAR, "--address", address, "--storage", str(shared),
                                  cwd=tmp_path)  # fmt: skip

    # a trial runs on worker-1 (the only node with a CPU); only then is MLflow's store read,
    # so that this test never races the driver creating it
    def trial_on_worker() -> bool:
        procs = snapshot()
        return any(is_trial(procs[pid]) for pid in cluster.node("worker-1", procs))

    def past_checkpoint() -> list:
        trials = runs(tmp_path, "linear_alpha_sweep")
        return [r for r in trials if r.data.metrics.get("epoch", 0) >= 11]

    err = tmp_path / "driver.err"
    wait_while_running(driver, err, trial_on_worker, "a trial on worker-1")
    running = wait_while_running(driver, err, past_checkpoint, "the trial past its checkpoint")
    assert trial_on_worker()
    cluster.lose("worker-1")
    killed_at = max(epochs_logged(tmp_path, running[0]))
    assert killed_at < 30, "the trial finished before its node was lost: nothing was tested"
    cluster.start_worker("worker-2")  # the autoscaler's replacement

    returncode = driver.wait(timeout=300)
    assert returncode == 0, err.read_text()[-3000:]
    trials = runs(tmp_path, "linear_alpha_sweep")
    configs = [(r.data.params["alpha"], r.data.params["seed"]) for r in trials]
    assert len(configs) == len(set(configs)) == 2  # one run per trial: nothing duplicated
    assert {r.info.status for r in trials} == {"FINISHED"}
    mlflow = client(tmp_path)
    resumed = {}
    for run in trials:
        assert epochs_logged(tmp_path, run) == list(range(1, 31))  # no gaps, no repeats
        artifacts = {a.path for a in mlflow.list_artifacts(run.info.run_id)}
        assert {"final.json", "spectra.json"} <= artifacts
        history = mlflow.get_metric_history(run.info.run_id, "resumed_from_epoch")
        resumed[run.info.run_id] = {m.value for m in history}
    # the lost trial continued from its last checkpoint (epoch 10, or 20), not from scratch
    restart = resumed.pop(running[0].info.run_id)
    assert len(restart) == 1 and 10 <= min(restart) <= killed_at, (restart, killed_at)
    assert list(resumed.values()) == [set()]  # the other trial ran once, on worker-2
    assert [r.info.status for r in runs(tmp_path, "linear_alpha_sweep", "study")] == ["FINISHED"]
