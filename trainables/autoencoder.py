"""The Ray Tune function trainable: one trial = one `rankae.Trainer` run.

The only place that talks to Ray's trial API. Each epoch it reports the record's metrics
(the schema of `rankae.records`) with a checkpoint every `checkpoint_every` epochs holding
the trainer's whole state (model, optimiser, data-order RNG, stage, spectra), so a
restarted trial continues at the epoch after its last checkpoint. The final report
carries `artifacts/` in its checkpoint (spectra, final metrics, image grids), which the
driver's MLflow callback logs.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from rankae.config import RunConfig
from rankae.engine import Trainer
from study.spec import CHECKPOINT_EVERY_KEY

STATE_FILE = "trainer.pt"
ARTIFACT_DIR = "artifacts"


def trial_device() -> torch.device:
    """CUDA only when Ray gave this trial a GPU (CPU trials on a GPU node see every GPU)."""
    if ray.get_gpu_ids() and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def split_trial_config(trial_config: dict[str, Any]) -> tuple[RunConfig, int]:
    values = dict(trial_config)
    every = int(values.pop(CHECKPOINT_EVERY_KEY, 1))
    return RunConfig.from_dict(values), every


def train_autoencoder(trial_config: dict[str, Any]) -> None:
    config, checkpoint_every = split_trial_config(trial_config)
    trainer = Trainer(config, device=trial_device())
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, map_location=trainer.device)
        trainer.load_state_dict(state)
    for record in trainer.run():
        metrics = record.metrics()
        final = record.diverged or trainer.epoch >= config.epochs
        if final and config.downstream and not record.diverged:
            from rankae.evaluate import evaluate_downstream

            metrics.update(evaluate_downstream(trainer))
        if final or trainer.epoch % checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as folder:
                torch.save(trainer.state_dict(), Path(folder) / STATE_FILE)
                if final:
                    write_artifacts(trainer, metrics, Path(folder) / ARTIFACT_DIR)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)


def write_artifacts(trainer: Trainer, metrics: dict[str, float], folder: Path) -> None:
    """Spectra of every epoch and the final metrics as JSON (plus image grids, if any)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spectra.json").write_text(json.dumps(trainer.spectra))
    (folder / "final.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    if trainer.config.architecture != "linear":
        from rankae.evaluate import save_image_grids

        save_image_grids(trainer, folder)
