"""A study's MLflow runs as tables, the paper's figures and a report.

- `analysis.load`: MLflow -> pandas (`load_trials`, `load_history`, `load_spectra`)
- `analysis.compare`: mean ± sd per configuration; implicit rank vs the explicit optimum
- `analysis.figures`: Figs. 1-5 as matplotlib Figures
- `analysis.report`: `python -m analysis.report STUDY` (Markdown + HTML + PNGs)
"""
