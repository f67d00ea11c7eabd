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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from PIL import Image

from rankae.userdata import UserData

from . import figures
from .compare import (
    config_label,
    healthy,
    partner_studies,
    seeds_split,
    setting_differences,
    summary_table,
)
from .document import Document
from .findings import (
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
    load_search_record,
    load_spectra,
    study_names,
    trials_frame,
)
from .rank_estimate import (
    MODE_SHARE,
    RANK_STUDY,
    answer_table,
    emergence_table,
    knee_table,
    largest_stable_rungs,
    per_depth_table,
    trials_answer,
    verdict,
)
from .search import confirmation
from .settle import SETTLED_RULE, SETTLED_STEPS, settledness_table, steps_to_rank
from .verdicts import (
    FIG3_RULE,
    FIG4_RULE,
    fig3_per_seed,
    fig3_verdicts,
    fig4_verdicts,
    implicit_vs_explicit,
)

YES_NO = {True: "yes", False: "no"}
HEADLINE_TASKS = ("acc_selected", "kid")  # validation-selected accuracy; KID, unbiased
# the run settings a user's data's training split is made from (`training_inputs`)
SPLIT_SETTINGS = ("data_path", "labels_path", "architecture", "batch_size", "eval_fraction",
                  "n_train", "data_seed")  # fmt: skip
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
    ("final_code_spectra.png", "Each configuration's final normalised code spectrum, one "
     "panel per seed, log scale, with the rank threshold", figures.final_code_spectra,
     "spectra"),
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


def preset_of(runs: Any) -> str:
    """The smallest tier among the invocations read (what their numbers can claim)."""
    tiers = {p.data.params.get("preset", "full") for p in runs.parents}
    return next((t for t in ("smoke", "laptop", "desktop") if t in tiers), "full")


def estimates_a_rank(study: str, runs: Any) -> bool:
    """Whether the invocations ran a user's rank estimate (their parent runs' `plan_kind`):
    its question is the data's rank, not the paper's figures. Stores from before the plan kind
    was recorded: the study's name says."""
    kinds = {p.data.params.get("plan_kind") for p in runs.parents} - {None}
    return kinds == {"RankEstimate"} if kinds else study == RANK_STUDY


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
                "latent ranks (every run)": ", ".join(f"{r:g}" for r in sorted(ranks)) or "-",
                "seeds split": YES_NO[seeds_split(ranks.tolist())],
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


def per_seed_table(table: pd.DataFrame) -> pd.DataFrame:
    """The per-seed implicit-vs-explicit table as the reader sees it."""
    settled = table["settled"].map({True: "yes", False: "no"}).fillna("-")
    return pd.DataFrame(
        {
            "task": table["task"],
            "implicit configuration": [
                config_label(r.method, r.depth, r.alpha) for r in table.itertuples()
            ],
            "seed": table["seed"],
            "implicit rank": table["implicit_rank"].map(lambda v: f"{v:g}"),
            "settled": settled,
            "explicit best k (same seed)": table["best_explicit_k"],
            "near-optimal k": table["near_optimal_k"].where(~table["flat_curve"], "flat"),
            "tolerance": table["tolerance"].map(lambda v: f"{v:.3g}"),
            "rank in range": table["rank_in_range"].map(YES_NO),
            "implicit metric": table["implicit_metric"].map(lambda v: f"{v:.4g}"),
            "explicit at nearest k": [
                f"{v:.4g} (k={k})"
                for v, k in zip(table["explicit_at_nearest"], table["nearest_k"], strict=True)
            ],
            "gap": table["gap"].map(lambda v: f"{v:+.3g}"),
            "within noise": table["within_noise"].map(YES_NO),
        }
    )


def settledness_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """Per run: the final ranks, how long W_e's rank had held, its gap, settled, degraded,
    and the switch a two-stage run would have made (`analysis.settle`)."""

    def fmt(value: Any, spec: str = "g") -> str:
        return "-" if value is None or pd.isna(value) else format(value, spec)

    return pd.DataFrame(
        {
            "run": trials["run_name"],
            "seed": trials["seed"],
            "latent rank": trials["latent_rank"].map(fmt),
            "W_e rank": trials["we_rank"].map(fmt),
            "steps since W_e rank changed": trials["we_stable_steps"].map(lambda v: fmt(v, ",.0f")),
            "longest earlier wait": trials["we_longest_wait"].map(lambda v: fmt(v, ",.0f")),
            "gap σ_r/σ_r+1": trials["we_gap"].map(lambda v: fmt(v, ".3g")),
            "settled": trials["settled"].map(YES_NO).fillna("-"),
            "degraded": trials["degraded"].map(YES_NO).fillna("not recorded"),
            f"switch at patience {SETTLED_STEPS:,} (epoch, k)": [
                "-" if pd.isna(e) else f"{int(e)}, {int(k)}"
                for e, k in zip(
                    trials["switch_epoch_at_patience"], trials["switch_k_at_patience"], strict=True
                )
            ],
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


def training_inputs(run_id: str, tracking_uri: str) -> np.ndarray:
    """A run's training split of the user's data, flattened, row i the input of its codes' row
    i: the split `rankae.rundata.load_run_data` made, made again from the run's settings."""
    from rankae.config import RunConfig, parse_value
    from rankae.rundata import load_run_data

    params = MlflowClient(tracking_uri).get_run(run_id).data.params
    settings = {key: parse_value(key, params[key]) for key in SPLIT_SETTINGS}
    split = load_run_data(RunConfig(dataset="user", **settings)).train
    return split.images.flatten(1).numpy()


def estimator_sources(trials: pd.DataFrame, tracking_uri: str) -> list[tuple[str, np.ndarray]]:
    """(name, samples) the established estimators run on: the training split of the vanilla
    autoencoder's first healthy seed (without one, of the first healthy run), that run's
    codes of it and those of the estimate's first run (the smallest N's largest stable
    alpha, first seed) (`CODES_ARTIFACT`), row for row; none without a healthy run."""
    runs = healthy(trials).dropna(subset=["data_path"]).sort_values("seed")
    if runs.empty:
        return []
    vanilla = runs[runs["bottleneck"] == "vanilla"]
    reference = (vanilla if len(vanilla) else runs)["run_id"].iloc[0]
    sources = [("the inputs", training_inputs(reference, tracking_uri))]
    coded = [("vanilla codes", reference)] if len(vanilla) else []
    estimate = [healthy(rung) for _, rung in largest_stable_rungs(trials)]
    estimate = [rung for rung in estimate if len(rung)]
    if estimate:
        first = estimate[0].sort_values("seed").iloc[0]
        depth, seed = int(first.depth), int(first.seed)
        name = f"orthogonal codes (N = {depth}, α = {first.alpha:g}, seed {seed})"
        coded.append((name, first.run_id))
    for name, run_id in coded:
        codes = load_codes(run_id, tracking_uri)
        if codes is not None:  # None: a run written before the codes were kept
            sources.append((name, codes))
    return sources


def estimators_table(trials: pd.DataFrame, tracking_uri: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The estimate beside the established estimators (`analysis.intrinsic`) on each of the
    `estimator_sources`, each with its wall time, and GRIDE's estimates per scale (column
    `on`: the source) for the figure. The sources have as many rows and the panel one seed,
    so it estimates the inputs and their codes on the same samples."""
    from .intrinsic import estimate_intrinsic_dimension

    answer = trials_answer(trials)
    rows = []
    if answer is not None:
        rows.append(
            {
                "estimator": "latent rank (this study)",
                "on": "the runs",
                "dimension": str(answer.rank) if answer.stable else "no single rank",
                "error": "-",
                "seconds": f"{healthy(trials)['wall_s'].sum():.0f}",
                "notes": f"{answer.tally()} run(s) at the largest stable alpha per N; "
                "seconds: every run of the study, the check's included",
            }
        )
    scales = []
    for on, x in estimator_sources(trials, tracking_uri):
        panel = estimate_intrinsic_dimension(x)
        scales.append(panel.scales.assign(on=on))
        for row in panel.table.itertuples():
            rows.append(
                {
                    "estimator": row.estimator,
                    "on": on,
                    "dimension": f"{row.dimension:.1f}",
                    "error": "-" if pd.isna(row.error) else f"{row.error:.2f}",
                    "seconds": f"{row.seconds:.1f}",
                    "notes": f"the training split's {len(x):,} samples; {row.notes}",
                }
            )
    return pd.DataFrame(rows), pd.concat(scales, ignore_index=True) if scales else pd.DataFrame()


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
        "stable alpha give the estimate: the rank most of them found, with how often; "
        f"'no single rank' when fewer than {MODE_SHARE:.0%} of them found it (no median or mean "
        "of runs that disagree is ever given)."
    )
    written = []
    depths = per_depth_table(trials)
    written += show_table(doc, depths, tables, "rank_per_depth")
    emergence = emergence_table(trials)
    if not emergence.empty:
        doc.paragraph(
            "When each direction emerged: W_e's rank read once per epoch, a direction counted "
            f"from the step after which the rank never fell below it again. {SETTLED_RULE}."
        )
        written += show_table(doc, emergence, tables, "rank_emergence")
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
        "TwoNN, MLE, GRIDE and DANCo measure a manifold's dimension from nearest neighbours "
        "(biased low on small or curved samples, high where noise fills every direction at "
        "their scale; GRIDE's error is its standard error); lPCA's Gavish-Donoho rank and "
        "the PCA count measure linear directions (they over-count curved data). "
        "analysis/intrinsic.py says how each is run. On the inputs: the training split of "
        f"{data.describe() if data else 'not recorded'}; on the vanilla codes: its d-wide "
        "codes of that split, where the autoencoder has already removed what it cannot "
        "reconstruct; on the orthogonal codes: one run of the estimate's codes of that split, "
        "whose linear rank the sub-network has cut. All are estimated on the same samples."
    )
    estimators, scales = estimators_table(trials, tracking_uri)
    written += show_table(doc, estimators, tables, "rank_estimators")
    if not scales.empty:  # empty: no healthy run to read the inputs' split from
        written += save_figure(figures.id_by_scale(scales), out / "rank_id_by_scale.png")
        doc.figure("rank_id_by_scale.png", "Intrinsic dimension by scale: GRIDE at n2 = 2, "
                   "4, ..., 64 neighbours, one line per source of the table")  # fmt: skip
    return written


def search_section(doc: Document, runs: Any, trials: pd.DataFrame, out: Path, tables: Path):
    """An Optuna study: its history and parameter importances (Optuna's own matplotlib
    figures, from the invocation's record), and the honest result: the configuration chosen
    on the validation objective, re-trained on fresh seeds, with their test accuracy."""
    import optuna
    from matplotlib import pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    parent = runs.latest_parent
    if parent is None:
        return []
    with tempfile.TemporaryDirectory() as folder:
        record = load_search_record(parent.info.run_id, runs.tracking_uri, Path(folder))
        if record is None:
            return []
        name = parent.data.tags["invocation"]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search = optuna.load_study(study_name=name, storage=f"sqlite:///{record}")
        objective = search.user_attrs.get("objective", "the objective")
        doc.heading("Search (Optuna)")
        doc.paragraph(
            f"{len(search.trials)} search trials, selected on {objective} (validation data "
            "only). The test accuracy is reported for the chosen configuration alone, "
            "re-trained on fresh seeds that the search never saw."
        )
        written = show_table(doc, confirmation(trials, objective), tables, "search_confirmation")
        drawn = (
            ("search_history.png", "Optuna: the objective per trial and the best so far",
             optuna_plots.plot_optimization_history),
            ("search_importances.png", "Optuna: parameter importances (its default evaluator)",
             optuna_plots.plot_param_importances),
        )  # fmt: skip
        for filename, caption, draw in drawn:
            try:
                axis = draw(search)
            except (ValueError, RuntimeError) as reason:  # e.g. too few finished trials
                doc.paragraph(f"{caption.split(':')[0]}: not drawn — {reason}.")
                continue
            written += save_figure(axis.figure, out / filename)
            plt.close(axis.figure)  # Optuna draws with pyplot, which keeps its figures
            doc.figure(filename, caption)
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
    spectra = load_spectra(list(pooled["run_id"]), runs.tracking_uri)
    settled = settledness_table(pooled, spectra)
    # the same rule from the spectra (stores from before it was logged live included)
    recomputed = [c for c in settled.columns if c != "run_id"]
    pooled = pooled.drop(columns=recomputed, errors="ignore").merge(
        settled, on="run_id", how="left"
    )
    trials = trials.drop(columns=recomputed, errors="ignore").merge(
        settled, on="run_id", how="left"
    )
    per_seed = implicit_vs_explicit(pooled)
    fig4 = fig4_verdicts(per_seed)
    fig3 = fig3_verdicts(fig3_per_seed(trials))
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
    rank_estimate = estimates_a_rank(study, runs)
    if rank_estimate:
        written += show_table(doc, answer_table(trials), tables, "headline")
    elif not fig4.empty:
        doc.paragraph(
            "Fig. 4, per seed, on the honestly selected accuracy and the unbiased image score "
            "(every task: the Fig. 4 section below)."
        )
        primary = fig4[fig4["task"].isin(HEADLINE_TASKS)]
        written += show_table(doc, primary if not primary.empty else fig4, tables, "headline")
    elif not fig3.empty:
        doc.paragraph(f"Fig. 3, per seed. Rule: {FIG3_RULE}")
        written += show_table(doc, fig3, tables, "headline")
    else:
        written += show_table(doc, rank_headline(trials), tables, "headline")

    if rank_estimate:
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

    if not fig3.empty:
        doc.heading("Fig. 3: the metric against alpha, per N and seed")
        doc.paragraph(f"Rule: {FIG3_RULE}")
        written += show_table(doc, fig3, tables, "fig3_verdicts")

    doc.heading("Implicit vs explicit rank, per seed (Fig. 4)")
    if per_seed.empty:
        doc.paragraph(
            "Not applicable: this needs explicit-bottleneck runs and sub-network runs with "
            "downstream metrics (accuracy, FID, KID) at the same seeds, in this study or its "
            f"partners ({', '.join(partners) or 'none found in the store'})."
        )
    else:
        doc.paragraph(f"Rule: {FIG4_RULE}")
        written += show_table(doc, fig4, tables, "fig4_verdicts")
        doc.paragraph(
            "Each implicit run against its own seed's explicit curve: the near-optimal k of "
            "that curve, whether the run's final latent rank lies in them, and its metric "
            "against the explicit run at the grid k nearest its rank (log scale). FID is "
            "compared within a seed only (its small-sample bias is shared by a seed's runs); "
            "KID is unbiased."
        )
        written += show_table(doc, per_seed_table(per_seed), tables, "implicit_vs_explicit")
        presets = {study: preset_of(runs)} | {
            name: preset_of(find_runs(name, runs.tracking_uri)) for name in partners
        }
        notes = preset_differences(presets) + setting_differences(pooled)
        doc.bullets([f"Caution: {note}." for note in notes])

    speed = steps_to_rank(history, trials)
    if not speed.empty:
        rank = int(trials["synth_rank"].dropna().iloc[0])
        doc.heading(f"Steps until the data's rank ({rank}) is reached, per run")
        doc.paragraph(
            "The first logged step at which W_e's rank and the latent rank equal the data's "
            "rank ('-': never in the run). End values alone cannot show speed or N-invariance "
            "along the way."
        )
        steps = {
            "steps_to_we_rank": "steps to W_e rank",
            "steps_to_latent_rank": "steps to latent rank",
        }
        shown = speed.drop(columns="run_id").rename(columns={"run_name": "run", **steps})
        for column in steps.values():
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{int(v):,}")
        written += show_table(doc, shown, tables, "steps_to_rank")

    if trials["settled"].notna().any() or trials["degraded"].notna().any():
        doc.heading("Settledness and degradation, per run")
        doc.paragraph(f"Rules (analysis/settle.py): {SETTLED_RULE}.")
        written += show_table(doc, settledness_rows(trials), tables, "settledness")

    written += search_section(doc, runs, trials, out, tables)

    doc.heading("Figures")
    data = {"history": history, "trials": trials, "pooled": pooled, "spectra": (pooled, spectra)}
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
