"""Shared fixtures: one local Ray instance per test session, started the way the CLI does."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A quiet local Ray (2 CPUs), shared by every test that runs a study in-process."""
    import ray

    from study.run import start_ray

    start_ray(None, 1.0)
    yield ray
    ray.shutdown()
