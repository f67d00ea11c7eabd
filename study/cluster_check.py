"""Check a Ray cluster file offline, the way `ray up` would, without touching any cloud.

    python -m study.cluster_check cluster.yaml cluster-onprem.yaml

Uses Ray's own schema validator (`prepare_config` + `validate_config`); prints one line per
file and exits 2 if any file is invalid.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

# Where `ray up` leaves the cluster file on the head (our cluster files also start the
# autoscaler with it); override with RANKSTUDY_AUTOSCALING_CONFIG.
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
AUTOSCALING_CONFIG_ENV = "RANKSTUDY_AUTOSCALING_CONFIG"


def autoscaling_config_path() -> Path:
    return Path(os.environ.get(AUTOSCALING_CONFIG_ENV) or BOOTSTRAP_CONFIG).expanduser()


def node_shapes(nodes: list[dict[str, Any]], config_path: Path) -> dict[str, dict[str, float]]:
    """What one node of the cluster has, or can get: name -> {"CPU": n, "GPU": n}.

    The nodes alive now (`ray.nodes()`), plus every node type of the autoscaling config
    that may be launched (max_workers > 0), so a fresh cluster whose GPU workers start at
    min_workers 0 counts the GPUs it will add.
    """
    shapes = {}
    for node in nodes:
        if node.get("Alive"):
            resources = node.get("Resources", {})
            # by address and id: several nodes may share a host (one IP), and none may hide another
            name = (
                f"node {node.get('NodeManagerAddress', '?')} ({str(node.get('NodeID', '?'))[:8]})"
            )
            shapes[name] = {
                "CPU": float(resources.get("CPU", 0)),
                "GPU": float(resources.get("GPU", 0)),
            }
    if config_path.is_file():
        config = yaml.safe_load(config_path.read_text()) or {}
        for name, node_type in (config.get("available_node_types") or {}).items():
            if node_type.get("max_workers", config.get("max_workers", 0)) > 0:
                resources = node_type.get("resources") or {}
                shapes[f"node type {name}"] = {
                    "CPU": float(resources.get("CPU", 0)),
                    "GPU": float(resources.get("GPU", 0)),
                }
    return shapes


def check_trial_fits(
    gpus_per_trial: float, cpus_per_trial: float, shapes: dict[str, dict[str, float]]
) -> None:
    """ValueError (one line) unless one node (now or after scaling) can hold a trial."""
    if any(s["GPU"] >= gpus_per_trial and s["CPU"] >= cpus_per_trial for s in shapes.values()):
        return
    largest = max((s["GPU"] for s in shapes.values()), default=0.0)
    where = ", ".join(f"{name}: {s['GPU']:g} GPU, {s['CPU']:g} CPU" for name, s in shapes.items())
    raise ValueError(
        f"--gpus-per-trial {gpus_per_trial:g} (with --cpus-per-trial {cpus_per_trial:g}) exceeds "
        f"what one node of the cluster has or can scale to (largest: {largest:g} GPU(s); "
        f"{where or 'no nodes'}; node types read from {autoscaling_config_path()})"
    )


def check_cluster_file(path: Path) -> None:
    """Raise ValueError with a one-line reason if `path` is not a valid cluster file."""
    # Private on purpose: Ray has no public validator of cluster files (`ray up` calls
    # these two). tests/reliability/test_isolation.py fails loudly if they move.
    from ray.autoscaler._private.util import prepare_config, validate_config

    logging.getLogger("ray.autoscaler._private.util").setLevel(logging.WARNING)
    try:
        config = yaml.safe_load(path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a YAML mapping")
        validate_config(prepare_config(config))
    except Exception as err:  # schema, YAML and click errors all mean "invalid"
        reason = " ".join(str(getattr(err, "message", err)).split())[:300]
        raise ValueError(f"{path}: invalid cluster file: {reason}") from None


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or [
        Path("cluster.yaml")
    ]
    status = 0
    for path in paths:
        try:
            check_cluster_file(path)
            print(f"{path}: ok")
        except (OSError, ValueError) as err:
            print(f"study.cluster_check: error: {err}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
