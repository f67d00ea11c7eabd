"""A study's MLflow runs as tables, the paper's figures and a report.

- `analysis.load`: MLflow -> pandas (`load_trials`, `load_history`, `load_spectra`)
- `analysis.compare`: mean ± sd per configuration (`summary_table`, the one results table:
  the report's, the CLI's end of a study, the MLflow parent run's); the escalation ladder;
  implicit rank vs the explicit optimum
- `analysis.intrinsic`: scikit-dimension's intrinsic-dimension estimators, for comparison
- `analysis.figures`: Figs. 1-5 as matplotlib Figures
- `analysis.report`: `python -m analysis.report STUDY` (Markdown + HTML + PNGs)

Imports only `rankae` of this project (`analysis -> rankae`); the study service imports it.
"""
