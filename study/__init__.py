"""The study service: named studies run on Ray Tune and tracked in MLflow.

- `studies/`: one small module per named study (`get_config(preset, data) -> StudySpec`)
- `spec.py`: `StudySpec` (base config, plan, seeds, resources, `--set` overrides)
- `plans.py`: grid, alpha escalation, a user's rank estimate (the escalation, then its
  check), Optuna; each plan expands, prices, describes and searches itself (`searchers.py`)
- `run.py`: the CLI (`python -m study.run`); `launch.py`: Ray, the Tuner and the end
  summary; `invocations.py`: what `--resume` needs; `prepare.py`: a user's data, read
  once and prepared for the trials
- `tracking.py`: MLflow runs per seed; `progress.py`, `cost.py`, `grouping.py`,
  `stopper.py`, `store.py`, `cluster_check.py`: one job each

Imports point down: `study -> trainables -> rankae`, `study -> analysis -> rankae`.
"""
