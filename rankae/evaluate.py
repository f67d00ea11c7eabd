"""The paper's downstream evaluation of a trained autoencoder (App. C), and its image grids.

- Low-label classification: the AE is frozen; codes of `classifier_labels` class-balanced,
  seeded training images feed a 2-layer ReLU MLP (`rankae.downstream.train_classifier`),
  at both code sites of every run. z_N, the rank-limited codes the decoder sees (the
  sub-network is absorbed into the adjacent layer at inference), gives the primary
  `acc_best` / `acc_selected`; z, before the bottleneck as the IRMAE code reads it, gives
  `acc_pre_best` / `acc_pre_selected`. `acc_best` trains on every label (App. C);
  `acc_selected` holds out `classifier_val_fraction` of them to choose its epoch.
- Sampling: a GaussianMixture(4, full) is fitted to the training set's z_N, `fid_samples`
  codes are drawn and decoded, and FID is measured against the first `fid_reference`
  training images (all of them by default), whose Inception statistics are cached.

A user's data (dataset='user') gets what applies to it: classification only where the data
has labels (`RunData.has_labels`), FID and the image grids only for images (an Inception
network on vectors measures nothing). The returned dict simply lacks the metrics that do
not apply; the labelled set is capped at the training split's size, class-balanced as far
as its classes allow (`select_labelled(cap=True)`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image

from .downstream import fit_gmm_and_sample, select_labelled, train_classifier
from .engine import EVAL_BATCH, Trainer
from .fid import InceptionFeatureExtractor, image_scores, reference_statistics

GRID_IMAGES = 64
_extractors: dict[str, InceptionFeatureExtractor] = {}  # one network per device and process


def feature_extractor(device: torch.device) -> InceptionFeatureExtractor:
    if str(device) not in _extractors:
        _extractors[str(device)] = InceptionFeatureExtractor(device)
    return _extractors[str(device)]


@torch.no_grad()
def decode(trainer: Trainer, codes: torch.Tensor) -> torch.Tensor:
    """Decoder outputs as images in [0, 1] (the Tanh output clipped, as an image file would)."""
    trainer.model.eval()
    parts = [trainer.model.decode(chunk).clamp(0, 1) for chunk in codes.split(EVAL_BATCH)]
    return torch.cat(parts)


def classifier_inputs(trainer: Trainer) -> dict[str, tuple[torch.Tensor, ...]]:
    """Per code site, by metric infix ("": z_N, the codes the decoder sees; "pre_": z before
    the bottleneck): labelled training codes, their labels, test codes, test labels.

    One encoder pass gives z; z_N is the bottleneck applied to it (the encoder, the costly
    part on the 10,000 test images, runs once for both sites). The test codes are those of
    the first `classifier_test` test images (all by default).
    """
    cfg, train, test = trainer.config, trainer.data.train, trainer.data.test
    labelled = select_labelled(train.labels.cpu(), cfg.classifier_labels, cfg.seed, cap=True)
    labels = train.labels[labelled.to(train.labels.device)]
    z_train = trainer.codes(train.images[labelled.to(train.images.device)], before_bottleneck=True)
    scored = slice(cfg.classifier_test)  # None: the whole test split
    z_test = trainer.codes(test.images[scored], before_bottleneck=True)
    test_labels = test.labels[scored]
    with torch.no_grad():
        bottleneck = trainer.model.bottleneck
        return {
            "": (bottleneck(z_train), labels, bottleneck(z_test), test_labels),
            "pre_": (z_train, labels, z_test, test_labels),
        }


def classify(trainer: Trainer) -> dict[str, float]:
    """acc_best, acc_selected and val_acc_selected on z_N; the same with `pre_` on z."""
    cfg, metrics = trainer.config, {}
    for infix, inputs in classifier_inputs(trainer).items():
        for name, val_fraction in (("best", 0.0), ("selected", cfg.classifier_val_fraction)):
            result = train_classifier(
                *inputs,
                hidden=cfg.classifier_hidden,
                epochs=cfg.classifier_epochs,
                lr=cfg.classifier_lr,
                batch_size=cfg.classifier_batch_size,
                val_fraction=val_fraction,
                seed=cfg.seed,
            )
            metrics[f"acc_{infix}{name}"] = getattr(result, f"acc_{name}")
        # the validation accuracy at the selected epoch: what a search may select on
        metrics[f"val_acc_{infix}selected"] = result.val_acc_selected
    return metrics


def sample_images(trainer: Trainer) -> torch.Tensor:
    """GMM samples of the training set's z_N, decoded (App. C)."""
    cfg = trainer.config
    codes = fit_gmm_and_sample(
        trainer.codes(trainer.data.train.images), cfg.fid_samples, cfg.gmm_components, cfg.seed
    )
    return decode(trainer, codes)


def sample_scores(trainer: Trainer, samples: torch.Tensor) -> dict[str, float]:
    """FID and KID (with its sd) of decoded samples against the first fid_reference
    training images."""
    cfg = trainer.config
    reference = trainer.data.train.images[: cfg.fid_reference]
    extractor = feature_extractor(trainer.device)
    dataset = cfg.dataset
    if dataset == "user":  # the cache is keyed by the images' hash; the name is for people
        dataset = "user-" + Path(str(cfg.data_path).removeprefix("torchvision:")).stem
    name = f"{dataset}-train-{len(reference)}"
    stats = reference_statistics(name, reference.float(), extractor)
    return image_scores(samples.float(), stats, extractor)


def evaluate_downstream(trainer: Trainer, artifact_dir: Path | None = None) -> dict[str, float]:
    """Accuracies at both code sites, fid and kid (at fid_samples samples); grid into
    artifact_dir.

    Accuracies only with labels (`trainer.data.has_labels`); fid, kid, fid_samples and the grid
    only for images: for unlabelled vectors the dict is empty.
    """
    metrics = classify(trainer) if trainer.data.has_labels else {}
    if trainer.data.kind != "images":
        return metrics
    samples = sample_images(trainer)
    metrics.update(sample_scores(trainer, samples))
    metrics["fid_samples"] = len(samples)
    if artifact_dir is not None:
        artifact_dir.mkdir(parents=True, exist_ok=True)
        save_image(samples[:GRID_IMAGES].float().cpu(), artifact_dir / "gmm_samples.png", nrow=8)
    return metrics


def save_reconstructions(trainer: Trainer, path: Path) -> None:
    """Evaluation images (odd rows) above their reconstructions (even rows); nothing is
    written for vectors."""
    if trainer.data.kind != "images":
        return
    originals = trainer.data.eval_inputs[: GRID_IMAGES // 2]
    with torch.no_grad():
        trainer.model.eval()
        recon = trainer.model(originals).clamp(0, 1)
    rows = [t for pair in zip(originals.split(8), recon.split(8), strict=True) for t in pair]
    save_image(torch.cat(rows).float().cpu(), path, nrow=8)
