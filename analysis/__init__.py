"""A study's MLflow runs as tables, the paper's figures and a report.

- `analysis.load`: MLflow -> pandas (`load_trials`, `load_history`, `load_spectra`,
  `load_codes`)
- `analysis.compare`: mean ± sd per configuration (`summary_table`, the one results table:
  the report's, the CLI's end of a study, the MLflow parent run's); the escalation ladder;
  implicit rank vs the explicit optimum
- `analysis.rank_estimate`: a user's latent rank from a `rank_of` study, its verdict and
  the explicit check around it
- `analysis.intrinsic`: scikit-dimension's intrinsic-dimension estimators, for comparison
- `analysis.figures`: Figs. 1-5 (and a rank estimate's knee) as matplotlib Figures
- `analysis.report`: `python -m analysis.report STUDY` (Markdown + HTML + PNGs)

Imports only `rankae` of this project (`analysis -> rankae`); the study service imports it.
"""
