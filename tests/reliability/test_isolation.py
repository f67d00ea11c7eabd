"""Invocations never share state; cluster files are checked offline; servers stay local."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import LINEAR, REPO, cli_env, held_at, run_cli, runs, start_cli, wait_for

TINY = ["linear_alpha_sweep", "--smoke", "--set", "epochs=2", "--set", "synth_dim=64",
        "--set", "latent_dim=32", "--set", "depth=4"]  # fmt: skip


def test_two_invocations_never_share_state(tmp_path):
    first = run_cli(*TINY, cwd=tmp_path)
    second = run_cli(*TINY, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    folders = sorted(p.name for p in (tmp_path / "ray_results").iterdir() if p.is_dir())
    assert len(folders) == 2 and folders[0] != folders[1]
    parents = runs(tmp_path, "linear_alpha_sweep", "study")
    assert sorted(r.data.tags["invocation"] for r in parents) == folders
    trials = runs(tmp_path, "linear_alpha_sweep")
    assert len(trials) == 4
    for folder in folders:
        assert sum(r.data.tags["invocation"] == folder for r in trials) == 2
    again = run_cli("linear_alpha_sweep", "--resume", folders[0], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(runs(tmp_path, "linear_alpha_sweep")) == 4  # nothing rerun or duplicated
    assert {r.info.status for r in runs(tmp_path, "linear_alpha_sweep", "study")} == {"FINISHED"}


def check(*files: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "study.cluster_check", *files],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=cli_env(),
    )  # fmt: skip


def test_cluster_files_are_checked_offline(tmp_path):
    good = check(str(REPO / "cluster.yaml"), str(REPO / "cluster-onprem.yaml"), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout.count(": ok") == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text((REPO / "cluster.yaml").read_text() + "\nnot_a_ray_key: 1\n")
    bad = check(str(broken), cwd=tmp_path)
    assert bad.returncode == 2
    assert "not_a_ray_key" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_servers_the_cluster_starts_listen_on_loopback_only():
    import yaml

    for name in ("cluster.yaml", "cluster-onprem.yaml"):
        commands = " ".join(yaml.safe_load((REPO / name).read_text())["head_start_ray_commands"])
        assert "mlflow server" in commands and "--host 127.0.0.1" in commands
        assert "--dashboard-host=127.0.0.1" in commands


# -- sockets, as /proc shows them ---------------------------------------------------------
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def listening_sockets() -> dict[str, str]:
    """inode -> local address (hex, as /proc/net/tcp{,6} writes it) of every TCP listener."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                found[fields[9]] = fields[1].split(":")[0]
    return found


def process_tree(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except OSError:
                continue
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= children
        grew = bool(children)
    return tree


def socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        except OSError:
            continue
    return inodes


def test_a_local_study_listens_on_loopback_only(tmp_path):
    """Ray's GCS, raylet and workers and the driver, while a trial runs (held at epoch 2,
    then the study is ended with Ctrl-C)."""
    driver = start_cli(*LINEAR, cwd=tmp_path, **held_at(2))
    try:
        wait_for(
            lambda: any(
                r.data.metrics.get("epoch", 0) >= 2 for r in runs(tmp_path, "linear_alpha_sweep")
            ),
            what="a training trial",
        )
        tree = process_tree(driver.pid)
        listeners = listening_sockets()
        ours = {inode: listeners[inode] for inode in socket_inodes(tree) if inode in listeners}
        names = {(Path(f"/proc/{pid}/comm").read_text().strip()) for pid in tree
                 if Path(f"/proc/{pid}/comm").exists()}  # fmt: skip
        assert {"gcs_server", "raylet"} <= names
        assert len(ours) >= 3  # the GCS, the raylet and at least one worker listen
        assert set(ours.values()) <= LOOPBACK, ours
    finally:
        os.killpg(driver.pid, signal.SIGINT)
        driver.wait(timeout=300)
    assert driver.returncode == 130
