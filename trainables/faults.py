"""Faults injected by the reliability tests (tests/reliability/), read from the environment.

Unset, they do nothing. `RANKSTUDY_TEST_FAULT=EPOCH:TIMES` raises at EPOCH, TIMES times
over the trial's retries; `RANKSTUDY_TEST_DIVERGE=SEED:EPOCH` (EPOCH >= 2) turns member
SEED's weights NaN before its EPOCH-th epoch, as an overflow would;
`RANKSTUDY_TEST_HOLD=EPOCH[:KEY=VALUE]` stops the trial (the one whose setting KEY is VALUE)
after it reported EPOCH, until it is killed, so a test signals a study while a trial runs
without racing its training.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from ray import tune

from rankae.config import RunConfig
from rankae.vectorized import VectorizedTrainer


def raise_injected_fault(epoch: int) -> None:
    """The count is kept in a file per trial under $RANKSTUDY_TEST_FAULT_DIR, so it survives
    the retries that Ray starts in fresh processes."""
    spec = os.environ.get("RANKSTUDY_TEST_FAULT")
    if not spec:
        return
    at, times = (int(part) for part in spec.split(":"))
    counter = Path(os.environ["RANKSTUDY_TEST_FAULT_DIR"]) / tune.get_context().get_trial_id()
    raised = int(counter.read_text()) if counter.exists() else 0
    if epoch == at and raised < times:
        counter.write_text(str(raised + 1))
        raise RuntimeError(f"injected test fault at epoch {epoch} ({raised + 1}/{times})")


def hold_if_asked(epoch: int, run: RunConfig) -> None:
    spec = os.environ.get("RANKSTUDY_TEST_HOLD")
    if not spec:
        return
    at, _, setting = spec.partition(":")
    key, _, value = setting.partition("=")
    if epoch == int(at) and (not key or str(getattr(run, key)) == value):
        while True:  # ended by the signal the test sends
            time.sleep(1)


def inject_divergence(group: VectorizedTrainer) -> None:
    """Poison the weights of the member whose injected divergence is due, stacked or alone."""
    spec = os.environ.get("RANKSTUDY_TEST_DIVERGE")
    if not spec:
        return
    at_seed, at_epoch = (int(part) for part in spec.split(":"))
    for k, member in enumerate(group.members):
        if member.diverged or (member.config.seed, member.epoch + 1) != (at_seed, at_epoch):
            continue
        if k in group.rows:
            row = group.rows.index(k)
            _poison(stacked[row] for stacked in group.params.values())
        else:
            _poison(member.model.parameters())


def _poison(parameters: Iterable[torch.Tensor]) -> None:
    with torch.no_grad():
        for p in parameters:
            p.fill_(math.nan)
