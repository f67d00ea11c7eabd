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
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from rankae.config import RunConfig
from rankae.engine import Trainer
from study.members import GROUP_SEEDS_KEY
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
    if GROUP_SEEDS_KEY in trial_config:  # several seeds side by side
        from .group import train_group

        return train_group(trial_config)
    config, checkpoint_every = split_trial_config(trial_config)
    trainer = Trainer(config, device=trial_device())
    checkpoint, discarded, final = tune.get_checkpoint(), False, None
    if checkpoint is not None:
        try:
            final = load_checkpoint(trainer, checkpoint)
        except Exception as err:  # a torn or foreign file: any failure means "start over"
            print(f"rankstudy: checkpoint {checkpoint.path} is unreadable ({err}); restarting")
            trainer, discarded = Trainer(config, device=trainer.device), True
    if final is not None:
        # restored after it had finished (Ray's snapshot missed the end): report the end again
        tune.report(final)
        return
    resumed_from = trainer.epoch
    for record in trainer.run():
        inject_test_fault(trainer.epoch)
        if injected_divergence_due(config.seed, trainer.epoch + 1):
            poison(trainer.model.parameters())
        metrics = record.metrics()
        if discarded:
            metrics["checkpoint_discarded"] = 1.0
        if resumed_from:
            metrics["resumed_from_epoch"] = resumed_from
        final = record.diverged or trainer.epoch >= config.epochs
        if not (final or trainer.epoch % checkpoint_every == 0):
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as folder:
            if final:
                artifacts = Path(folder) / ARTIFACT_DIR
                metrics.update(write_artifacts(trainer, record.metrics(), artifacts))
            torch.save(trainer.state_dict(), Path(folder) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def load_checkpoint(trainer: Trainer, checkpoint: tune.Checkpoint) -> dict[str, float] | None:
    """Restore the trainer; return the final metrics if the checkpoint is a finished run's."""
    with checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / STATE_FILE, map_location=trainer.device)
        final = Path(folder) / ARTIFACT_DIR / "final.json"
        metrics = json.loads(final.read_text()) if final.exists() else None
    trainer.load_state_dict(state)
    return metrics


def inject_test_fault(epoch: int) -> None:
    """Reliability tests only: `RANKSTUDY_TEST_FAULT=EPOCH:TIMES` raises at EPOCH, TIMES times.

    The count is kept in a file per trial under $RANKSTUDY_TEST_FAULT_DIR, so it survives
    the retries that Ray starts in fresh processes.
    """
    spec = os.environ.get("RANKSTUDY_TEST_FAULT")
    if not spec:
        return
    at, times = (int(part) for part in spec.split(":"))
    counter = Path(os.environ["RANKSTUDY_TEST_FAULT_DIR"]) / tune.get_context().get_trial_id()
    raised = int(counter.read_text()) if counter.exists() else 0
    if epoch == at and raised < times:
        counter.write_text(str(raised + 1))
        raise RuntimeError(f"injected test fault at epoch {epoch} ({raised + 1}/{times})")


def injected_divergence_due(seed: int, next_epoch: int) -> bool:
    """Reliability tests only: `RANKSTUDY_TEST_DIVERGE=SEED:EPOCH` (EPOCH >= 2) asks that run
    SEED's weights turn NaN before its EPOCH-th epoch, as an overflow would."""
    spec = os.environ.get("RANKSTUDY_TEST_DIVERGE")
    if not spec:
        return False
    at_seed, at_epoch = (int(part) for part in spec.split(":"))
    return seed == at_seed and next_epoch == at_epoch


def poison(parameters: Iterable[torch.Tensor]) -> None:
    with torch.no_grad():
        for p in parameters:
            p.fill_(math.nan)


def write_artifacts(trainer: Trainer, metrics: dict[str, float], folder: Path) -> dict[str, float]:
    """Final artifacts: every epoch's spectra, image grids, downstream results, final metrics.

    `metrics` are the run's last epoch metrics. Returns the downstream metrics (empty unless
    `downstream` is on and the run is healthy).
    """
    folder.mkdir(parents=True, exist_ok=True)
    downstream: dict[str, float] = {}
    if trainer.config.architecture != "linear" and not metrics["diverged"]:
        from rankae.evaluate import evaluate_downstream, save_reconstructions

        save_reconstructions(trainer, folder / "reconstructions.png")
        if trainer.config.downstream:
            downstream = evaluate_downstream(trainer, folder)
    (folder / "spectra.json").write_text(json.dumps(trainer.spectra))
    final = {**metrics, **downstream}
    (folder / "final.json").write_text(json.dumps(final, indent=1, sort_keys=True))
    return downstream
