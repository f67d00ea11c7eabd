"""How many seeds one trial trains side by side (`--seeds-per-trial`, default auto).

Auto: on a CPU trial, 1 (a CPU step is compute-bound, so a stack of K costs K steps; see
docs/benchmarks.md). On a GPU trial, as many of the study's seeds as fit in the trial's
share of one GPU's memory (`--gpus-per-trial 0.25` packs four trials per GPU, each with a
quarter of its memory), measured once by a Ray task on such a share with the study's
largest model (`rankae.vectorized.group_size_for_gpu`).
"""

from __future__ import annotations

from dataclasses import replace

from rankae.config import RunConfig

from ..spec import StudySpec


def resolve_seeds_per_trial(spec: StudySpec) -> StudySpec:
    """The spec with `seeds_per_trial` decided (needs Ray running when it is auto on a GPU)."""
    return replace(spec, seeds_per_trial=choose_seeds_per_trial(spec))


def choose_seeds_per_trial(spec: StudySpec) -> int:
    if not spec.plan.groups_seeds:
        return 1  # e.g. an Optuna trial: one sampled config with one seed
    if spec.seeds_per_trial is not None:
        return min(spec.seeds_per_trial, len(spec.seeds))
    if spec.gpus_per_trial == 0:
        return 1
    import ray

    probe = ray.remote(num_gpus=spec.gpus_per_trial, num_cpus=spec.cpus_per_trial)(_fit_on_gpu)
    return ray.get(probe.remote(largest_config(spec), len(spec.seeds), spec.gpus_per_trial))


def largest_config(spec: StudySpec) -> RunConfig:
    """The plan's config with the deepest sub-network (the most memory per member)."""
    trials = spec.trials()
    configs = [trials.run_config(variant, spec.seeds[0]) for variant in spec.plan.all_variants()]
    return max(configs, key=lambda c: c.depth if c.bottleneck == "linear_net" else 0)


def _fit_on_gpu(config: RunConfig, members: int, gpu_share: float) -> int:
    import torch

    from rankae.vectorized import group_size_for_gpu

    return group_size_for_gpu(config, members, gpu_share, torch.device("cuda"))
