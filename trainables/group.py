"""The vectorised-group trial: several seeds of one config trained side by side.

`rankae.vectorized.VectorizedTrainer` runs the members in one stacked step (a CUDA graph on
a GPU with Adam); this file only adapts it to Ray's trial API, like `autoencoder.py` does for
one run. Each epoch it reports every member's latest metrics under `members[<seed>]` (the
driver's MLflow callback turns them into one run per seed) plus a group summary for Tune:
the epoch, the mean loss of the healthy members and `diverged` only once every member has.
A diverged member is masked out of the stack and keeps its last metrics. Checkpoints hold
each member's `Trainer.state_dict()`, so a restarted group continues where it was; the final
one holds `artifacts/seed-<seed>/` per member.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

from rankae.vectorized import VectorizedTrainer
from study.members import MEMBERS_KEY, member_configs

from .autoencoder import (
    ARTIFACT_DIR,
    inject_test_fault,
    injected_divergence_due,
    poison,
    split_trial_config,
    trial_device,
    write_artifacts,
)

GROUP_STATE_FILE = "group.pt"


def train_group(trial_config: dict[str, Any]) -> None:
    members = [split_trial_config(config) for config in member_configs(trial_config)]
    configs, checkpoint_every = [config for config, _ in members], members[0][1]
    seeds = [config.seed for config in configs]
    device = trial_device()
    cuda_graph = configs[0].cuda_graph and device.type == "cuda"  # opt-in: --set cuda_graph=true

    def fresh() -> VectorizedTrainer:
        return VectorizedTrainer(configs, device, cuda_graph=cuda_graph)

    group, discarded, final = fresh(), False, None
    latest: dict[str, dict[str, float]] = {}  # per seed: the member's latest metrics
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        try:
            final, latest = load_group_checkpoint(group, checkpoint)
        except Exception as err:  # a torn or foreign file: any failure means "start over"
            print(f"rankstudy: checkpoint {checkpoint.path} is unreadable ({err}); restarting")
            group, discarded, latest = fresh(), True, {}
    if final is not None:
        tune.report(final)  # restored after it had finished: report the end again
        return
    resumed_from = max(member.epoch for member in group.members)
    while group.running:
        inject_test_divergence(group, seeds)
        records = group.train_one_epoch()
        inject_test_fault(max(member.epoch for member in group.members))
        for seed, record in zip(seeds, records, strict=True):
            if record is None:
                continue
            metrics = record.metrics()
            if discarded:
                metrics["checkpoint_discarded"] = 1.0
            if resumed_from:
                metrics["resumed_from_epoch"] = resumed_from
            latest[str(seed)] = metrics
        result = group_result(latest)
        last = not group.running
        if not (last or result["epoch"] % checkpoint_every == 0):
            tune.report(result)
            continue
        with tempfile.TemporaryDirectory() as folder:
            if last:
                for k, seed in enumerate(seeds):
                    artifacts = Path(folder) / ARTIFACT_DIR / f"seed-{seed}"
                    metrics = latest[str(seed)]
                    metrics.update(write_artifacts(group.members[k], metrics, artifacts))
                result = group_result(latest)
                final_file = Path(folder) / ARTIFACT_DIR / "final.json"
                final_file.write_text(json.dumps(result, indent=1, sort_keys=True))
            states = [group.member_state(k) for k in range(len(seeds))]
            torch.save({"members": states, "latest": latest}, Path(folder) / GROUP_STATE_FILE)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


def group_result(latest: dict[str, dict[str, float]]) -> dict[str, Any]:
    """What Tune sees: a summary of the members, and every member's metrics."""
    healthy = [m["loss"] for m in latest.values() if not m["diverged"]]
    return {
        "epoch": max(m["epoch"] for m in latest.values()),
        "loss": sum(healthy) / len(healthy) if healthy else math.nan,
        "diverged": float(not healthy),
        "members_diverged": len(latest) - len(healthy),
        MEMBERS_KEY: latest,
    }


def load_group_checkpoint(
    group: VectorizedTrainer, checkpoint: tune.Checkpoint
) -> tuple[dict[str, Any] | None, dict[str, dict[str, float]]]:
    """Restore every member; return (the final result if the group had finished, latest)."""
    with checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / GROUP_STATE_FILE, map_location=group.device)
        final = Path(folder) / ARTIFACT_DIR / "final.json"
        result = json.loads(final.read_text()) if final.exists() else None
    group.load_member_states(state["members"])
    return result, state["latest"]


def inject_test_divergence(group: VectorizedTrainer, seeds: list[int]) -> None:
    """`RANKSTUDY_TEST_DIVERGE` (`injected_divergence_due`) for a member, stacked or alone."""
    for k, seed in enumerate(seeds):
        member = group.members[k]
        if member.diverged or not injected_divergence_due(seed, member.epoch + 1):
            continue
        if k in group.rows:
            row = group.rows.index(k)
            poison(stacked[row] for stacked in group.params.values())
        else:
            poison(member.model.parameters())
