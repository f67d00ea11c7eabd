"""Write a study's report (Markdown + HTML; figures as PNG, PDF and SVG; tables also as CSV and
LaTeX in tables/) from its MLflow runs.

    python -m analysis.report mnist_alpha_sweep
    python -m analysis.report mnist_alpha_sweep --mlflow-uri sqlite:///runs/mlflow.db --out DIR
    python -m analysis.report mnist_alpha_sweep --compare-with mnist_explicit

The implicit-vs-explicit comparison needs the explicit sweep and the sub-network runs;
when the study holds only one side, the other studies of the same dataset in the store
(e.g. mnist_explicit for mnist_alpha_sweep) are pooled in, or the ones named with
`--compare-with`. The figures and the report are also logged to the study's parent run
(artifact folder `report/`), so they sit next to the runs in the MLflow UI.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from PIL import Image

from rankae.userdata import UserData

from . import figures
from .compare import (
    config_label,
    healthy,
    implicit_vs_explicit,
    mean_sd,
    partner_studies,
    setting_differences,
    summary_table,
)
from .document import Document
from .findings import (
    comparison_findings,
    downstream_findings,
    escalation_findings,
    overview,
    rank_findings,
    two_stage_findings,
)
from .load import (
    AnalysisError,
    find_runs,
    history_frame,
    load_codes,
    study_names,
    trials_frame,
)
from .rank_estimate import RANK_STUDY, knee_table, per_depth_table, trials_answer, verdict

YES_NO = {True: "yes", False: "no"}
FIGURES: tuple[tuple[str, str, Callable, str], ...] = (
    ("fig1_rank_trajectories.png", "Fig. 1: loss, W_e rank and latent rank over training, "
     "per init and N", figures.rank_trajectories, "history"),
    ("fig2_downstream_vs_rank.png", "Fig. 2: downstream metrics vs final latent rank, "
     "annotated by N (or k)", figures.downstream_vs_rank, "trials"),
    ("fig3_metrics_vs_alpha.png", "Fig. 3: latent rank and downstream metrics vs alpha per N, "
     "divergence marked", figures.metrics_vs_alpha, "trials"),
    ("fig4_implicit_vs_explicit.png", "Fig. 4: implicit rank vs the explicit baseline over k",
     figures.implicit_vs_explicit, "pooled"),
    ("fig5_top_singular_values.png", "Fig. 5: top singular values of W_e and of the latent "
     "codes over training (one representative run)", figures.top_singular_values, "history"),
)  # fmt: skip


def save_png(figure: Figure, path: Path) -> None:
    """A 128-colour palette PNG: plots have few colours, and reports are meant to be committed
    (about 4x smaller than matplotlib's RGBA output, no visible difference)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def save_figure(figure: Figure, path: Path) -> list[Path]:
    """The report's PNG, and the same figure as PDF and SVG (vector: print at any size)."""
    save_png(figure, path)
    vectors = [path.with_suffix(suffix) for suffix in (".pdf", ".svg")]
    for vector in vectors:
        figure.savefig(vector, bbox_inches="tight")
    return [path, *vectors]


def save_table(frame: pd.DataFrame, folder: Path, name: str) -> list[Path]:
    """A report table as `tables/NAME.csv` (to read back) and `tables/NAME.tex` (to paste)."""
    folder.mkdir(exist_ok=True)
    csv, tex = folder / f"{name}.csv", folder / f"{name}.tex"
    frame.to_csv(csv, index=False)
    tex.write_text(frame.astype(str).to_latex(index=False, escape=True))
    return [csv, tex]


def show_table(doc: Document, frame: pd.DataFrame, folder: Path, name: str) -> list[Path]:
    """The table in the report, and saved beside it (`save_table`)."""
    doc.table(frame)
    return save_table(frame, folder, name)


def headline_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per task, the one-screen answer at the paper's setting, each N's largest alpha run
    (Sec. 3.2: alpha as large as training stays stable; diverged runs are already out):
    where the implicit rank lands, the explicit-optimal k, and the gap to the explicit best
    (± sd: the two sides' seed spreads combined as independent)."""
    largest = comparison.groupby(["task", "method", "depth"])["alpha"].transform("max")
    table = comparison[comparison["alpha"] == largest]
    gap_sd = (table["implicit_metric_sd"] ** 2 + table["best_explicit_sd"] ** 2) ** 0.5
    return pd.DataFrame(
        {
            "task": table["task"],
            "implicit configuration": [
                config_label(r.method, r.depth, r.alpha) for r in table.itertuples()
            ],
            "implicit rank": [
                mean_sd(m, s)
                for m, s in zip(table["implicit_rank"], table["implicit_rank_sd"], strict=True)
            ],  # fmt: skip
            "explicit-optimal k": table["optimal_k"],
            "gap to explicit best": [
                mean_sd(g, s) for g, s in zip(table["gap"], gap_sd, strict=True)
            ],
        }
    )


def preset_of(runs: Any) -> str:
    """The smallest tier among the invocations read (what their numbers can claim)."""
    tiers = {p.data.params.get("preset", "full") for p in runs.parents}
    return next((t for t in ("smoke", "laptop") if t in tiers), "full")


def rank_headline(trials: pd.DataFrame) -> pd.DataFrame:
    """Without an explicit baseline to compare with, the one-screen answer is the latent rank
    each method reaches across all its N (and alpha) and seeds: Fig. 1's "stable across N"."""
    good = healthy(trials)
    rows = []
    for method, group in good.groupby("method", sort=False):
        ranks = group["latent_rank"].dropna()
        depths = sorted({int(d) for d in group["depth"].dropna()})
        rows.append(
            {
                "method": method,
                "N": ", ".join(map(str, depths)) or "-",
                "runs": len(ranks),
                "latent rank (mean ± sd)": mean_sd(ranks.mean(), ranks.std(ddof=1)),
                "range": f"{ranks.min():g}-{ranks.max():g}" if len(ranks) else "-",
            }
        )
    return pd.DataFrame(rows)


def preset_differences(presets: dict[str, str]) -> list[str]:
    """A caution when the compared studies ran different tiers (study -> preset)."""
    if len(set(presets.values())) <= 1:
        return []
    tiers = ", ".join(f"{name}: {tier}" for name, tier in presets.items())
    return [f"the compared invocations ran different presets ({tiers}), so their numbers are "
            "not comparable"]  # fmt: skip


def provenance(runs: Any) -> str:
    """The code version and the tier of each invocation read, from their parent runs."""
    parts = []
    for parent in runs.parents:
        params = parent.data.params
        parts.append(
            f"{parent.data.tags.get('invocation', parent.info.run_id)}: preset "
            f"{params.get('preset', 'full')}, seeds {params.get('seeds', '?')}, "
            f"code {params.get('code_version', 'not recorded')}"
        )
    return "; ".join(parts)


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """The implicit-vs-explicit table as the reader sees it."""
    return pd.DataFrame(
        {
            "task": table["task"],
            "implicit configuration": [
                config_label(r.method, r.depth, r.alpha) for r in table.itertuples()
            ],
            "seeds": table["seeds"],
            "implicit rank": [
                mean_sd(m, s)
                for m, s in zip(table["implicit_rank"], table["implicit_rank_sd"], strict=True)
            ],  # fmt: skip
            "implicit metric": [
                mean_sd(m, s)
                for m, s in zip(table["implicit_metric"], table["implicit_metric_sd"], strict=True)
            ],  # fmt: skip
            "best explicit k": table["best_explicit_k"],
            "explicit best": [
                mean_sd(m, s)
                for m, s in zip(
                    table["best_explicit_metric"], table["best_explicit_sd"], strict=True
                )
            ],  # fmt: skip
            "explicit-optimal k": table["optimal_k"],
            "gap": [f"{g:+.3g}" for g in table["gap"]],
            "implicit rank in explicit-optimal range": table["rank_in_optimal_range"].map(YES_NO),
            "as good as explicit best": table["as_good_as_explicit"].map(YES_NO),
        }
    )


def trial_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Every trial with its MLflow run id, so a reader can open it in the UI."""
    columns = ["run_name", "seed", "status", "diverged", "epoch", "latent_rank", "we_rank"]
    columns += [c for c in ("acc_best", "acc_selected", "fid") if trials[c].notna().any()]
    out = trials[columns + ["run_id"]].copy()
    for column in ("latent_rank", "we_rank", "acc_best", "acc_selected", "fid"):
        if column in out:
            out[column] = out[column].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}")
    return out


def pooled_trials(
    study: str, trials: pd.DataFrame, uri: str, compare_with: list[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """This study's trials plus its comparison partners' (latest invocation each).

    Without `compare_with`, a study that lacks the explicit sweep or the sub-network runs
    pools in the same-dataset studies of the store that have the missing side.
    """
    if compare_with is not None:
        partners = {name: trials_frame(find_runs(name, uri)) for name in compare_with}
    else:
        sides = {"explicit": "method", "linear_net": "bottleneck"}
        missing = [(v, c) for v, c in sides.items() if not trials[c].eq(v).any()]
        partners = {}
        if len(missing) == 1:  # with both sides missing there is nothing to compare
            value, column = missing[0]
            for other in partner_studies(study, study_names(uri)):
                frame = trials_frame(find_runs(other, uri))
                if frame[column].eq(value).any():
                    partners[other] = frame
    return pd.concat([trials, *partners.values()], ignore_index=True), list(partners)


def estimators_table(
    trials: pd.DataFrame, data: UserData | None, tracking_uri: str
) -> pd.DataFrame:
    """The estimate beside scikit-dimension's and PCA's, each with its wall time: on the
    user's inputs (read again from the runs' `data_path`) and on the vanilla autoencoder's
    codes of the training split (its first seed's `CODES_ARTIFACT`)."""
    from .intrinsic import estimate_intrinsic_dimension

    answer = trials_answer(trials)
    rows = []
    if answer is not None:
        rows.append(
            {
                "estimator": "latent rank (this study)",
                "on": "the runs",
                "dimension": f"{answer.rank} ({answer.low}-{answer.high})",
                "seconds": f"{healthy(trials)['wall_s'].sum():.0f}",
                "notes": f"{answer.runs} run(s) at the largest stable alpha per N; seconds: "
                "every run of the study, the check's included",
            }
        )
    sources = [] if data is None else [("the inputs", data.x.numpy())]
    vanilla = trials[(trials["bottleneck"] == "vanilla") & (trials["status"] == "FINISHED")]
    if len(vanilla):
        codes = load_codes(vanilla.sort_values("seed")["run_id"].iloc[0], tracking_uri)
        if codes is not None:  # None: a run written before the codes were kept
            sources.append(("vanilla codes", codes))
    for on, x in sources:
        for row in estimate_intrinsic_dimension(x).itertuples():
            rows.append(
                {
                    "estimator": row.estimator,
                    "on": on,
                    "dimension": f"{row.dimension:.1f}",
                    "seconds": f"{row.seconds:.1f}",
                    "notes": row.notes,
                }
            )
    return pd.DataFrame(rows)


def user_data_of(trials: pd.DataFrame) -> UserData | None:
    """The user's data a rank_of study read (its runs' `data_path`), read again."""
    from rankae.userdata import load_user_data

    paths, labels = trials["data_path"].dropna(), trials["labels_path"].dropna()
    if paths.empty:
        return None
    return load_user_data(paths.iloc[0], labels.iloc[0] if len(labels) else None)


def rank_section(
    doc: Document, trials: pd.DataFrame, tracking_uri: str, out: Path, tables: Path
) -> list[Path]:
    """A rank_of study's answer, its evidence and its check; returns the files written."""
    doc.heading("Latent-rank estimate")
    doc.paragraph(verdict(trials) + ".")
    doc.paragraph(
        "Per N, alpha climbed its ladder until a run diverged; the runs at the largest "
        "stable alpha give the estimate (their median; 'stable' when every one lies within "
        "±1 of it)."
    )
    written = []
    depths = per_depth_table(trials)
    written += show_table(doc, depths, tables, "rank_per_depth")
    doc.heading("The check: explicit bottleneck around the estimate")
    doc.paragraph(
        "The reconstruction loss of d -> k -> d should fall steeply up to the data's rank "
        "and little after it; a large ratio just above the estimate says the runs stopped "
        "short of it."
    )
    knee = knee_table(trials, trials_answer(trials))
    written += show_table(doc, knee, tables, "rank_knee")
    try:
        written += save_figure(figures.rank_knee(trials), out / "rank_knee.png")
        doc.figure("rank_knee.png", "The check: explicit loss over k, the sub-network runs "
                   "at their latent rank, and the estimate")  # fmt: skip
    except figures.NotApplicable as reason:
        doc.paragraph(f"The knee figure: not drawn — {reason}.")
    doc.heading("Side by side: established intrinsic-dimension estimators")
    data = user_data_of(trials)
    doc.paragraph(
        "TwoNN and MLE measure a manifold's dimension from nearest neighbours (biased low on "
        "small or curved samples); lPCA and the PCA count measure linear directions (they "
        "over-count curved data). analysis/intrinsic.py says how each is run. On the inputs: "
        f"{data.describe() if data else 'not recorded'}; on the vanilla codes: its d-wide "
        "codes of the training split, where the autoencoder has already removed what it "
        "cannot reconstruct."
    )
    estimators = estimators_table(trials, data, tracking_uri)
    written += show_table(doc, estimators, tables, "rank_estimators")
    return written


def build_report(
    study: str,
    tracking_uri: str | None = None,
    out: Path | None = None,
    compare_with: list[str] | None = None,
    invocation: str = "latest",
    log_to_mlflow: bool = True,
) -> Path:
    """Load, compare, draw, write `report.md` + `report.html` + PNGs; returns the folder."""
    runs = find_runs(study, tracking_uri, invocation)
    trials = trials_frame(runs)
    history = history_frame(runs, trials)
    pooled, partners = pooled_trials(study, trials, runs.tracking_uri, compare_with)
    comparison = implicit_vs_explicit(pooled)
    out = Path(out or Path("reports") / study)
    out.mkdir(parents=True, exist_ok=True)
    preset = preset_of(runs)

    doc = Document(f"Study report: {study}")
    doc.paragraph(
        f"From the MLflow store {runs.tracking_uri}, invocation(s) {', '.join(runs.invocations)}"
        + (f"; compared with {', '.join(partners)}" if partners else "")
        + f". Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"python -m analysis.report; every sentence below is generated from the numbers."
    )
    doc.paragraph(f"Invocations read: {provenance(runs)}.")
    tables = out / "tables"
    written = []
    doc.heading("Headline")
    headline = rank_headline(trials) if comparison.empty else headline_table(comparison)
    written += show_table(doc, headline, tables, "headline")

    if study == RANK_STUDY:
        written += rank_section(doc, trials, runs.tracking_uri, out, tables)

    doc.heading("Findings")
    doc.bullets(overview(trials, preset))
    doc.bullets(rank_findings(trials))
    doc.bullets(two_stage_findings(trials))
    doc.bullets(escalation_findings(trials))
    doc.bullets(downstream_findings(trials))

    doc.heading("Per configuration (mean ± sd over healthy seeds)")
    summary = summary_table(trials)
    written += show_table(doc, summary, tables, "per_configuration")

    doc.heading("Implicit vs explicit rank")
    if comparison.empty:
        doc.paragraph(
            "Not applicable: this needs explicit-bottleneck runs and sub-network runs with "
            "downstream metrics (accuracy, FID) in this study or its partners "
            f"({', '.join(partners) or 'none found in the store'})."
        )
    else:
        doc.paragraph(
            "Explicit-optimal k: the tested k whose mean over seeds is within a tolerance of "
            "the best k's (the best k's sd over seeds, at least 0.01 accuracy or 2% of the best "
            "FID) or better; a-b is a run of such neighbouring k, and an implicit rank between "
            "them is in range. Vanilla counts as k = d. Implicit rank: the final latent rank of "
            "the sub-network runs. Gap: implicit metric minus the explicit best. As good: "
            "better than the explicit best, or within the tolerance of it."
        )
        shown = comparison_table(comparison)
        written += show_table(doc, shown, tables, "implicit_vs_explicit")
        doc.bullets(comparison_findings(comparison))
        presets = {study: preset_of(runs)} | {
            name: preset_of(find_runs(name, runs.tracking_uri)) for name in partners
        }
        notes = preset_differences(presets) + setting_differences(pooled)
        doc.bullets([f"Caution: {note}." for note in notes])

    doc.heading("Figures")
    data = {"history": history, "trials": trials, "pooled": pooled}
    for filename, caption, draw, source in FIGURES:
        try:
            figure = draw(data[source])
        except figures.NotApplicable as reason:
            doc.paragraph(f"{caption.split(':')[0]}: not drawn — {reason}.")
            continue
        written += save_figure(figure, out / filename)
        doc.figure(filename, caption)
    doc.paragraph("Every figure is also beside its PNG as PDF and SVG; every table is in "
                  "tables/ as CSV and LaTeX.")  # fmt: skip

    doc.heading("Trials")
    trial_rows = trial_table(trials)
    written += show_table(doc, trial_rows, tables, "trials")

    (out / "report.md").write_text(doc.markdown())
    (out / "report.html").write_text(doc.html())
    parent = runs.latest_parent
    if log_to_mlflow and parent is not None:
        client = MlflowClient(runs.tracking_uri)
        for path in [*written, out / "report.md", out / "report.html"]:
            folder = "report/tables" if path.parent == tables else "report"
            client.log_artifact(parent.info.run_id, str(path), artifact_path=folder)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.report", description=__doc__.split("\n")[0]
    )
    p.add_argument("study", help="the study's name (its MLflow runs' `study` tag)")
    p.add_argument("--mlflow-uri", help="tracking URI (default: sqlite:///./mlflow.db)")
    p.add_argument("--out", type=Path, help="output folder (default: reports/STUDY)")
    p.add_argument("--compare-with", action="append", metavar="STUDY",
                   help="pool this study's runs in for implicit vs explicit (repeatable; "
                        "default: same-dataset studies in the store when needed)")  # fmt: skip
    p.add_argument("--all-invocations", action="store_true",
                   help="pool every invocation of the study (default: the latest)")  # fmt: skip
    p.add_argument("--no-log", action="store_true",
                   help="do not log the report to the study's parent run in MLflow")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out = build_report(
            args.study,
            args.mlflow_uri,
            args.out,
            args.compare_with,
            "all" if args.all_invocations else "latest",
            log_to_mlflow=not args.no_log,
        )
    except AnalysisError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'report.md'} and {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
