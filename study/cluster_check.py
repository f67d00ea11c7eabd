"""Check a Ray cluster file offline, the way `ray up` would, without touching any cloud.

    python -m study.cluster_check cluster.yaml cluster-onprem.yaml

Uses Ray's own schema validator (`prepare_config` + `validate_config`); prints one line per
file and exits 2 if any file is invalid.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import yaml


def check_cluster_file(path: Path) -> None:
    """Raise ValueError with a one-line reason if `path` is not a valid cluster file."""
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
