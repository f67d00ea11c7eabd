"""The Ray Tune function trainable: one trial trains a group of seeds of one run config.

The only place that talks to Ray's trial API (the contract: `trainables/contract.py`).
`rankae.vectorized.VectorizedTrainer` trains the members, stacked in one vectorised step
when there are several (a CUDA graph on a GPU with Adam, opt-in) and as a plain `Trainer`
when there is one. Each epoch the trial reports every member's latest metrics, with a
checkpoint every `checkpoint_every` epochs holding each member's whole `Trainer` state
(model, optimiser, data-order RNG, stage, spectra), so a restarted trial continues at the
epoch after its last checkpoint. A diverged member keeps its last metrics. The final
checkpoint holds each member's artifacts (spectra, final metrics, image grids), which the
driver's MLflow callback logs.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from rankae.engine import Trainer
from rankae.records import CODES_ARTIFACT
from rankae.vectorized import VectorizedTrainer

from .contract import (
    ARTIFACT_DIR,
    CHECKPOINT_EVERY_KEY,
    STATE_FILE,
    member_artifacts,
    trial_result,
    trial_runs,
)
from .faults import hold_if_asked, inject_divergence, raise_injected_fault


def trial_device() -> torch.device:
    """CUDA only when Ray gave this trial a GPU (CPU trials on a GPU node see every GPU)."""
    if ray.get_gpu_ids() and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def train_autoencoder(trial_config: dict[str, Any]) -> None:
    configs = trial_runs(trial_config)
    checkpoint_every = int(trial_config[CHECKPOINT_EVERY_KEY])
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
            final, latest = load_checkpoint(group, checkpoint)
        except Exception as err:  # a torn or foreign file: any failure means "start over"
            print(f"rankstudy: checkpoint {checkpoint.path} is unreadable ({err}); restarting")
            group, discarded, latest = fresh(), True, {}
    if final is not None:
        tune.report(final)  # restored after it had finished: report the end again
        return
    resumed_from = max(member.epoch for member in group.members)
    while group.running:
        hold_if_asked(max(member.epoch for member in group.members), configs[0])
        inject_divergence(group)
        records = group.train_one_epoch()
        raise_injected_fault(max(member.epoch for member in group.members))
        for seed, record in zip(seeds, records, strict=True):
            if record is None:
                continue
            metrics = record.metrics()
            if discarded:
                metrics["checkpoint_discarded"] = 1.0
            if resumed_from:
                metrics["resumed_from_epoch"] = resumed_from
            latest[str(seed)] = metrics
        last = not group.running
        if not (last or max(m["epoch"] for m in latest.values()) % checkpoint_every == 0):
            tune.report(trial_result(latest))
            continue
        with tempfile.TemporaryDirectory() as folder:
            if last:
                for k, seed in enumerate(seeds):
                    metrics = latest[str(seed)]
                    artifacts = member_artifacts(folder, seed)
                    metrics.update(write_artifacts(group.members[k], metrics, artifacts))
                final_file = Path(folder) / ARTIFACT_DIR / "final.json"
                final = trial_result(latest, ended=True)
                final_file.write_text(json.dumps(final, indent=1, sort_keys=True))
            states = [group.member_state(k) for k in range(len(seeds))]
            torch.save({"members": states, "latest": latest}, Path(folder) / STATE_FILE)
            result = trial_result(latest, ended=last)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


def load_checkpoint(
    group: VectorizedTrainer, checkpoint: tune.Checkpoint
) -> tuple[dict[str, Any] | None, dict[str, dict[str, float]]]:
    """Restore every member; return (the final result if the trial had finished, latest)."""
    with checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / STATE_FILE, map_location=group.device)
        final = Path(folder) / ARTIFACT_DIR / "final.json"
        result = json.loads(final.read_text()) if final.exists() else None
    group.load_member_states(state["members"])
    return result, state["latest"]


def write_artifacts(trainer: Trainer, metrics: dict[str, float], folder: Path) -> dict[str, float]:
    """Final artifacts: every epoch's spectra, image grids, downstream results, final metrics,
    and the codes where the config asks for them (`save_codes`).

    `metrics` are the run's last epoch metrics. Returns the metrics measured now: the
    held-out reconstruction loss and, with `downstream` on, the downstream results (empty
    for a diverged run).
    """
    folder.mkdir(parents=True, exist_ok=True)
    downstream: dict[str, float] = {}
    if not metrics["diverged"]:
        downstream["eval_loss"] = trainer.eval_loss()
    if trainer.config.architecture != "linear" and not metrics["diverged"]:
        from rankae.evaluate import evaluate_downstream, save_reconstructions

        save_reconstructions(trainer, folder / "reconstructions.png")
        if trainer.config.downstream:
            downstream.update(evaluate_downstream(trainer, folder))
    if trainer.config.save_codes and not metrics["diverged"]:
        codes = trainer.codes(trainer.data.train.images)
        np.save(folder / CODES_ARTIFACT, codes.cpu().numpy())
    (folder / "spectra.json").write_text(json.dumps(trainer.spectra))
    final = {**metrics, **downstream}
    (folder / "final.json").write_text(json.dumps(final, indent=1, sort_keys=True))
    return downstream
