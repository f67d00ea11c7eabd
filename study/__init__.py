"""The study service: named studies run on Ray Tune and tracked in MLflow.

- `run.py`: the CLI (`python -m study.run`), each option's kind in `kinds.py`;
  `cluster_check.py`: a cluster file checked offline
- `spec.py`: `StudySpec` (base config, plan, seeds, resources, `--set` and `--grid`);
  `cost.py`: what it costs; `prepare.py`: a user's data, read once and prepared for the trials
- `studies/`: one small module per named study (`get_config(preset, data=None) -> StudySpec`)
- `plans/`: planning, no Ray: one module per plan kind, holding the plan and its search
- `service/`: running it: the launch (Ray, the Tuner, the end summary), what `--resume`
  needs, the probes before the first write, seeds per trial
- `adapters/`: Ray Tune and MLflow: a plan's search as Tune's searcher, the divergence
  stopper, the console progress, Tune's results as a frame, MLflow runs per seed, the store

Imports point down: `study -> trainables -> rankae`, `study -> analysis -> rankae`; inside,
`run -> service -> adapters -> plans`, and nothing below `study/` imports `run`.
"""
