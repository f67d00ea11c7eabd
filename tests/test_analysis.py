"""analysis/: MLflow -> pandas, comparison tables, figures and the report, on real smoke stores.

The store is the session's smoke folder (tests/conftest.py: `python -m study.run NAME
--smoke` in-process, each study once, shared with test_readme.py, test_notebook.py and
test_mlflow_ui.py): the linear smoke study and the MNIST explicit and alpha-sweep smoke
studies, which give the downstream metrics the comparison needs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from mlflow.tracking import MlflowClient

from analysis import figures
from analysis.compare import (
    TASKS,
    config_label,
    dtype_comparison,
    dtype_pairs,
    healthy,
    partner_studies,
    summarise,
    summary_table,
)
from analysis.load import AnalysisError, find_runs, load_history, load_spectra, load_trials
from analysis.report import build_report, main
from analysis.verdicts import explicit_points, implicit_vs_explicit
from study.studies import config

SMOKE_EPOCHS = config("linear_depth_sweep", "smoke").base.epochs  # records per trial


def smoke_uri(smoke_studies, *names: str) -> str:
    """The session's smoke store (tests/conftest.py) with these studies' `--smoke` in it."""
    for name in names:
        assert smoke_studies.run(name) == 0, name
    return f"sqlite:///{smoke_studies.db}"


@pytest.fixture(scope="module")
def linear_uri(smoke_studies) -> str:
    return smoke_uri(smoke_studies, "linear_depth_sweep")


@pytest.fixture(scope="module")
def image_uri(smoke_studies) -> str:
    return smoke_uri(smoke_studies, "mnist_explicit", "mnist_alpha_sweep")


@pytest.fixture(scope="module")
def linear(linear_uri):
    return load_trials("linear_depth_sweep", linear_uri), load_history(
        "linear_depth_sweep", linear_uri
    )


@pytest.fixture(scope="module")
def pooled(image_uri) -> pd.DataFrame:
    return pd.concat(
        [load_trials("mnist_explicit", image_uri), load_trials("mnist_alpha_sweep", image_uri)],
        ignore_index=True,
    )


def trial_runs(uri: str, study: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], "tags.role = 'trial'")
    return list(runs)


# -- loading ------------------------------------------------------------------------------
def test_trials_frame_has_one_row_per_trial_with_its_config_and_final_metrics(linear, linear_uri):
    trials, _ = linear
    runs = {r.info.run_id: r for r in trial_runs(linear_uri, "linear_depth_sweep")}
    assert sorted(trials["run_id"]) == sorted(runs)  # vanilla + standard/orthogonal x N=4,16
    expected = {"study", "invocation", "method", "init", "depth", "alpha", "k", "seed",
                "latent_rank", "we_rank", "loss", "acc_best", "acc_selected", "fid",
                "fid_samples", "diverged", "switch_epoch", "switch_k", "elapsed_s", "wall_s",
                "run_id", "status", "epoch", "rank_threshold"}  # fmt: skip
    assert expected <= set(trials.columns)
    assert list(trials["method"]) == ["vanilla", "standard", "standard", "orthogonal", "orthogonal"]
    net = trials[trials["method"] != "vanilla"]
    assert list(net["depth"]) == [4, 16, 4, 16]
    assert list(net["alpha"]) == [1.0, 1.0, 2.0, 2.0]
    vanilla = trials[trials["method"] == "vanilla"].iloc[0]
    assert pd.isna(vanilla["depth"]) and pd.isna(vanilla["alpha"]) and pd.isna(vanilla["we_rank"])
    assert trials["k"].isna().all() and trials[["acc_best", "fid"]].isna().all().all()
    assert (trials["epoch"] == SMOKE_EPOCHS).all() and (trials["status"] == "FINISHED").all()
    assert not trials["diverged"].any()
    for row in trials.itertuples():
        metrics = runs[row.run_id].data.metrics
        assert row.latent_rank == metrics["latent_rank"] and row.loss == metrics["loss"]
        assert row.elapsed_s == metrics["elapsed_s"] and row.wall_s > 0
    assert set(trials["study"]) == {"linear_depth_sweep"} and trials["invocation"].nunique() == 1


def test_history_matches_what_each_trial_logged(linear, linear_uri):
    trials, history = linear
    client = MlflowClient(linear_uri)
    assert len(history) == SMOKE_EPOCHS * len(trials)
    for row in trials.itertuples():
        run = history[history["run_id"] == row.run_id]
        assert list(run["epoch"]) == list(range(1, SMOKE_EPOCHS + 1))
        logged = sorted(client.get_metric_history(row.run_id, "loss"), key=lambda m: m.step)
        assert list(run["loss"]) == [m.value for m in logged]
        assert list(run["step"]) == [
            100.0 * e for e in range(1, SMOKE_EPOCHS + 1)
        ]  # 100 GD steps per epoch
        assert run["latent_rank"].iloc[-1] == row.latent_rank
        assert run["method"].eq(row.method).all() and run["seed"].eq(row.seed).all()
        top = client.get_metric_history(row.run_id, "latent_sv_1")
        assert list(run["latent_sv_1"]) == [m.value for m in sorted(top, key=lambda m: m.step)]
    vanilla = history[history["method"] == "vanilla"]
    assert vanilla["we_rank"].isna().all() and vanilla["we_sv_1"].isna().all()
    assert history.loc[history["method"] != "vanilla", "we_sv_10"].notna().all()


def test_spectra_are_the_whole_logged_spectra(linear, linear_uri):
    trials, history = linear
    spectra = load_spectra(list(trials["run_id"]), linear_uri)
    assert set(spectra) == set(trials["run_id"])
    for run_id, epochs in spectra.items():
        assert [e["epoch"] for e in epochs] == list(range(1, SMOKE_EPOCHS + 1))
        final = history[history["run_id"] == run_id].iloc[-1]
        assert len(epochs[-1]["latent"]) > 10
        assert epochs[-1]["latent"][0] == pytest.approx(final["latent_sv_1"])


def test_latest_invocation_by_default_all_on_request(linear_uri, tmp_path):
    """An older invocation in the same store is not mixed in unless asked for."""
    copy = tmp_path / "mlflow.db"
    copy.write_bytes(Path(linear_uri.removeprefix("sqlite:///")).read_bytes())
    uri = f"sqlite:///{copy}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("linear_depth_sweep").experiment_id
    old = {"study": "linear_depth_sweep", "invocation": "linear_depth_sweep-old"}
    client.create_run(experiment, start_time=1, tags={**old, "role": "study"})
    client.create_run(experiment, start_time=2, tags={**old, "role": "trial", "method": "vanilla"})
    latest = find_runs("linear_depth_sweep", uri)
    assert len(latest.trials) == 5 and "linear_depth_sweep-old" not in latest.invocations
    everything = find_runs("linear_depth_sweep", uri, invocation="all")
    assert len(everything.trials) == 6 and everything.invocations[0] == "linear_depth_sweep-old"
    assert (
        len(find_runs("linear_depth_sweep", uri, invocation="linear_depth_sweep-old").trials) == 1
    )
    with pytest.raises(AnalysisError, match="no invocation 'nope'"):
        find_runs("linear_depth_sweep", uri, invocation="nope")


def test_a_missing_store_is_a_clear_error_and_is_not_created(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "typo" / "mlflow.db"
    with pytest.raises(AnalysisError, match="no MLflow store at sqlite:///.*typo"):
        load_trials("linear_depth_sweep", f"sqlite:///{missing}")
    monkeypatch.chdir(tmp_path)  # the default store ./mlflow.db does not exist here
    with pytest.raises(AnalysisError, match="no MLflow store"):
        load_trials("linear_depth_sweep")
    with pytest.raises(AnalysisError, match="folder .* does not exist"):
        load_trials("linear_depth_sweep", str(tmp_path / "no_mlruns"))
    assert main(["linear_depth_sweep"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no MLflow store" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created anywhere


def test_a_study_without_runs_is_a_clear_error(linear_uri, capsys):
    with pytest.raises(AnalysisError, match="'mnist_typo' has no runs .*linear_depth_sweep"):
        load_trials("mnist_typo", linear_uri)
    assert main(["mnist_typo", "--mlflow-uri", linear_uri]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- comparison ---------------------------------------------------------------------------
BOTTLENECK = {"vanilla": "vanilla", "explicit": "explicit"}


def synthetic_trials() -> pd.DataFrame:
    """A hand-made study whose comparison is known (accuracy only)."""
    rows = []

    def add(method, accs, k=None, depth=None, alpha=None, ranks=None, diverged=False):
        for seed, acc in enumerate(accs):
            rows.append({
                "study": "s", "method": method, "depth": depth, "alpha": alpha, "k": k,
                "seed": seed, "latent_dim": 32, "diverged": diverged, "status": "FINISHED",
                "bottleneck": BOTTLENECK.get(method, "linear_net"),
                "acc_best": acc, "latent_rank": (ranks or [k or 32] * len(accs))[seed],
            })  # fmt: skip

    add("vanilla", [0.6, 0.6])
    add("explicit", [0.5, 0.5], k=2)
    add("explicit", [0.80, 0.82], k=4)
    add("explicit", [0.80, 0.80], k=8)
    add("explicit", [0.70, 0.70], k=16)
    add("orthogonal", [0.79, 0.79], depth=4, alpha=100.0, ranks=[6, 6])
    add("orthogonal", [0.70, 0.72], depth=8, alpha=100.0, ranks=[20, 22])
    add("orthogonal", [0.1], depth=8, alpha=200.0, ranks=[1], diverged=True)
    frame = pd.DataFrame(rows).astype({"depth": "Int64", "k": "Int64"})
    return frame.assign(acc_selected=np.nan, fid=np.nan)


def test_summary_is_mean_and_sd_over_healthy_seeds():
    summary = summarise(synthetic_trials()).set_index(["method", "k"], drop=False)
    k4 = summary.loc[("explicit", 4)]
    assert k4["seeds"] == 2 and k4["acc_best_mean"] == pytest.approx(0.81)
    assert k4["acc_best_sd"] == pytest.approx(np.std([0.80, 0.82], ddof=1))
    diverged = summary[(summary["method"] == "orthogonal") & (summary["alpha"] == 200.0)].iloc[0]
    assert diverged["diverged"] == 1 and math.isnan(diverged["acc_best_mean"])
    assert list(summary["method"])[:2] == ["vanilla", "explicit"]


def test_the_results_table_never_averages_ranks_of_seeds_that_split():
    trials = synthetic_trials()
    table = summary_table(trials).set_index("configuration")
    assert table.loc["orthogonal N=4 α=100", "latent rank"] == "6 ± 0"  # agreeing seeds
    split = trials.copy()
    split.loc[(split["depth"] == 4) & (split["seed"] == 1), "latent_rank"] = 12
    table = summary_table(split).set_index("configuration")
    assert table.loc["orthogonal N=4 α=100", "latent rank"] == "split: 6, 12"
    assert table.loc["orthogonal N=8 α=100", "latent rank"] == "21 ± 1.4"  # 20, 22: agree


def test_partner_studies_share_the_dataset():
    names = ["cifar10_explicit", "linear_depth_sweep", "mnist_alpha_sweep", "mnist_explicit"]
    assert partner_studies("mnist_alpha_sweep", names) == ["mnist_explicit"]
    assert partner_studies("mnist_explicit", names) == ["mnist_alpha_sweep"]
    assert partner_studies("cifar10_alpha_sweep", names) == ["cifar10_explicit"]


def test_dtype_comparison_pairs_config_and_seed_across_dtypes():
    columns = ["method", "depth", "alpha", "k", "seed", "dtype", "latent_rank", "we_rank", "loss"]
    rows = [  # vanilla has no depth/alpha/k (NaN keys must still pair) and no W_e
        ("vanilla", None, None, None, 0, "float64", 38, None, 0.0269),
        ("vanilla", None, None, None, 0, "float32", 39, None, 0.0270),
        ("standard", 4, 1.0, None, 0, "float64", 8, 88, 0.0312),
        ("standard", 4, 1.0, None, 0, "float32", 8, 86, 0.0312),
        ("standard", 4, 1.0, None, 1, "float32", 8, 90, 0.0311),  # listed before its pair
        ("standard", 4, 1.0, None, 1, "float64", 8, 87, 0.0313),
        ("standard", 4, 1.0, None, 2, "float32", 8, 85, 0.0310),  # no float64 run: unpaired
        ("orthogonal", 4, 2.0, None, 0, "float64", 8, 8, 0.0348),  # no float32 run: unpaired
    ]
    frame = pd.DataFrame(rows, columns=columns).assign(diverged=False)
    metrics = {"latent_rank": "float64", "we_rank": "float64"}  # as analysis.load types them
    frame = frame.astype({"depth": "Int64", "k": "Int64", **metrics})
    frame.loc[3, "diverged"] = True  # float32 standard N=4 seed 0
    pairs = dtype_pairs(frame)
    assert list(pairs["method"]) == ["vanilla", "standard", "standard"]
    assert list(pairs["seed"]) == [0, 0, 1]
    assert list(pairs["we_rank_float64"].iloc[1:]) == [88, 87]
    assert list(pairs["we_rank_diff"].iloc[1:]) == [-2, 3]  # float32 - float64, same seed
    assert pairs["latent_rank_diff"].tolist() == [1, 0, 0]
    assert pairs["loss_diff"].iloc[0] == pytest.approx(0.0001)
    table = dtype_comparison(frame).set_index("method")
    standard, vanilla = table.loc["standard"], table.loc["vanilla"]
    assert standard["seeds"] == 2 and standard["diverged"] == 1 and vanilla["diverged"] == 0
    assert standard["we_rank_float64_mean"] == 87.5 and standard["we_rank_float32_mean"] == 88
    assert standard["we_rank_diff_mean"] == 0.5
    assert standard["we_rank_diff_sd"] == pytest.approx(np.std([-2, 3], ddof=1))
    assert standard["we_rank_changed"] == 2 and standard["latent_rank_changed"] == 0
    assert vanilla["latent_rank_changed"] == 1 and vanilla["we_rank_changed"] == 0
    assert pd.isna(vanilla["latent_rank_diff_sd"])  # one seed: no spread
    assert "orthogonal" not in table.index
    with pytest.raises(ValueError, match="more than once in float32"):
        dtype_pairs(pd.concat([frame, frame.iloc[[1]]]))


# -- figures ------------------------------------------------------------------------------
def test_rank_trajectories_draws_each_configuration_per_init(linear):
    trials, history = linear
    figure = figures.rank_trajectories(history)
    axes = np.array(figure.axes).reshape(3, 3)
    assert [a.get_title() for a in axes[0]] == ["vanilla", "standard", "orthogonal"]
    assert [a.get_ylabel() for a in axes[:, 0]] == ["loss", "W_e rank", "latent rank"]
    assert all(a.get_xlabel() == "optimiser step" for a in axes[2])
    assert not axes[1, 0].lines and "no W_e rank" in axes[1, 0].texts[0].get_text()
    for col, method in ((1, "standard"), (2, "orthogonal")):
        for row, metric in ((0, "loss"), (1, "we_rank"), (2, "latent_rank")):
            lines = axes[row, col].lines
            assert [line.get_label() for line in lines] == ["N=4", "N=16"]
            for line, depth in zip(lines, (4, 16), strict=True):
                run = history[(history["method"] == method) & (history["depth"] == depth)]
                assert list(line.get_xdata()) == list(run["step"])
                assert list(line.get_ydata()) == list(run[metric])


def test_top_singular_values_shows_a_representative_run(linear):
    _, history = linear
    figure = figures.top_singular_values(history)
    assert "orthogonal N=16 α=2" in figure._suptitle.get_text()
    run = history[(history["method"] == "orthogonal") & (history["depth"] == 16)]
    we, latent = figure.axes
    labels = [f"$\\sigma_{{{i}}}$" for i in range(1, 11)] + ["rank threshold"]
    assert [line.get_label() for line in we.lines] == labels and we.get_yscale() == "log"
    assert [line.get_label() for line in latent.lines] == labels
    assert list(we.lines[0].get_xdata()) == list(run["epoch"])
    assert list(we.lines[2].get_ydata()) == list(run["we_sv_3"])
    assert list(latent.lines[9].get_ydata()) == list(run["latent_sv_10"])
    threshold = list(latent.lines[10].get_ydata())
    assert threshold == pytest.approx(list(0.01 * run["latent_sv_1"]))


def test_figures_that_need_other_data_say_why(linear):
    trials, _ = linear
    with pytest.raises(figures.NotApplicable, match="no downstream metrics"):
        figures.downstream_vs_rank(trials)
    with pytest.raises(figures.NotApplicable, match="no alpha sweep"):
        figures.metrics_vs_alpha(trials)  # standard at alpha 1, orthogonal at 2: not a sweep
    with pytest.raises(figures.NotApplicable, match="explicit-bottleneck runs"):
        figures.implicit_vs_explicit(trials)


def _points(axis) -> set[tuple[float, float]]:
    """Every scattered point of an axis (error bars are collections too, but not scatters)."""
    scatters = [c for c in axis.collections if isinstance(c, PathCollection)]
    return {(float(x), float(y)) for c in scatters for x, y in c.get_offsets()}


def test_downstream_vs_rank_plots_every_seed_at_its_rank(pooled):
    figure = figures.downstream_vs_rank(pooled)
    tasks = [t for t in TASKS if pooled[t.metric].notna().any()]
    assert [a.get_title() for a in figure.axes] == [t.label for t in tasks]
    for axis, task in zip(figure.axes, tasks, strict=True):
        assert axis.get_xlabel() == "latent rank (final)"
        good = healthy(pooled)
        assert _points(axis) == set(zip(good["latent_rank"], good[task.metric], strict=True))
        assert {c.get_label() for c in axis.collections} == set(good["method"])
        net = good[good["bottleneck"] == "linear_net"]
        several = net["alpha"].nunique() > 1  # then the notes name alpha too
        expected = {f"k={k}" for k in good["k"].dropna()} | {
            config_label("", row.depth, row.alpha if several else None) for row in net.itertuples()
        }
        assert {t.get_text() for t in axis.texts} == expected


def test_metrics_vs_alpha_has_a_line_per_depth(pooled):
    sweep = pooled[pooled["study"] == "mnist_alpha_sweep"]
    figure = figures.metrics_vs_alpha(sweep)
    rank_axis = figure.axes[0]
    assert rank_axis.get_xlabel() == "alpha" and rank_axis.get_title() == "latent rank (final)"
    bars = [c for c in rank_axis.containers if isinstance(c, ErrorbarContainer)]
    assert [b.get_label() for b in bars] == ["N=4", "N=16"]
    for bar, depth in zip(bars, (4, 16), strict=True):
        runs = sweep[(sweep["depth"] == depth) & ~sweep["diverged"]].sort_values("alpha")
        line = bar.lines[0]
        assert list(line.get_xdata()) == list(runs["alpha"])
        assert list(line.get_ydata()) == list(runs["latent_rank"])
    marked = [line for line in rank_axis.lines if line.get_marker() == "x"]
    assert len(marked) == sweep["diverged"].sum()
    assert len(figure.axes) == 1 + sum(sweep[t.metric].notna().any() for t in TASKS)


def test_implicit_vs_explicit_figure_draws_each_seed_on_its_own_curve(pooled):
    figure = figures.implicit_vs_explicit(pooled)
    table = implicit_vs_explicit(pooled)
    tasks = [t for t in TASKS if t.metric in set(table["task"])]
    assert [a.get_title() for a in figure.axes] == [t.label for t in tasks]
    for axis, task in zip(figure.axes, tasks, strict=True):
        points = explicit_points(pooled, task.metric)
        curves = {line.get_label(): line for line in axis.lines}
        for seed, curve in points.groupby("seed"):
            line = curves[f"explicit, seed {seed}"]
            curve = curve.sort_values("k")
            assert list(line.get_xdata()) == list(curve["k"])
            assert list(line.get_ydata()) == list(curve["value"])
        net = healthy(pooled)[healthy(pooled)["bottleneck"] == "linear_net"]
        assert _points(axis) == set(zip(net["latent_rank"], net[task.metric], strict=True))


# -- report -------------------------------------------------------------------------------
def test_report_has_the_comparison_table_and_every_figure(image_uri, pooled, tmp_path):
    # named, as the README types it: the store also holds mnist_optuna, which the default
    # (every same-dataset study) would pool in too
    out = build_report("mnist_alpha_sweep", image_uri, tmp_path / "report", ["mnist_explicit"])
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "compared with mnist_explicit" in markdown
    assert "Implicit vs explicit rank, per seed" in markdown and "near-optimal k" in markdown
    table = implicit_vs_explicit(pooled)
    assert len(table) > 0
    assert any(v in markdown for v in ("| reproduced", "| not reproduced", "| inconclusive"))
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "fig1_rank_trajectories.png",
        "fig2_downstream_vs_rank.png",
        "fig3_metrics_vs_alpha.png",
        "fig4_implicit_vs_explicit.png",
        "fig5_top_singular_values.png",
        "final_code_spectra.png",
    ]
    for png in pngs:
        assert f"]({png})" in markdown and f'<img src="{png}"' in html
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "<table" in html and "not drawn" not in markdown
    assert "smoke" in markdown  # the words come from the numbers, including their caveats
    client = MlflowClient(image_uri)
    parent = find_runs("mnist_alpha_sweep", image_uri).latest_parent
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{p}" for p in [*pngs, "report.md", "report.html"]} <= logged


def test_report_of_a_linear_study_says_which_figures_do_not_apply(linear_uri, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["linear_depth_sweep", "--mlflow-uri", linear_uri, "--no-log"]) == 0
    out = tmp_path / "reports" / "linear_depth_sweep"
    markdown = (out / "report.md").read_text()
    assert sorted(p.name for p in out.glob("*.png")) == [
        "fig1_rank_trajectories.png",
        "fig5_top_singular_values.png",
        "final_code_spectra.png",
    ]
    assert "Fig. 2: not drawn — this study has no downstream metrics" in markdown
    assert "Fig. 4: not drawn" in markdown and "Implicit vs explicit rank" in markdown
    assert "The synthetic data have rank 8" in markdown
    assert "Steps until the data's rank (8) is reached, per run" in markdown
    assert "Settledness and degradation, per run" in markdown
    for run_name in load_trials("linear_depth_sweep", linear_uri)["run_name"]:
        assert run_name in markdown


def test_comparing_studies_of_different_presets_is_flagged():
    from analysis.report import preset_differences

    assert preset_differences({"mnist_alpha_sweep": "smoke", "mnist_explicit": "smoke"}) == []
    [note] = preset_differences({"mnist_alpha_sweep": "laptop", "mnist_explicit": "smoke"})
    assert "mnist_alpha_sweep: laptop, mnist_explicit: smoke" in note and "not comparable" in note


def test_runs_that_differ_in_any_setting_are_different_configurations_not_seeds():
    """A study file or --grid may sweep a setting outside N, alpha and k (here W_e's init
    scale): its runs at one seed are two configurations, each with its own row and label; a
    setting that differs only between bottlenecks (the check's budget) labels nothing."""
    from rankae.config import linear_synthetic
    from study.adapters.table import trials_frame
    from trainables.contract import trial_config

    sub_network = linear_synthetic(depth=16, alpha=2.0)
    runs = [sub_network.replace(init_scale=c) for c in (1e-3, 1.0)]
    runs += [linear_synthetic(bottleneck="explicit", k=8, lr=0.3)]  # another lr, its own k
    ranks = (4.0, 49.0, 8.0)
    frame = trials_frame(
        [(trial_config([run], 1), {"members": {"0": {"latent_rank": rank}}}, False)
         for run, rank in zip(runs, ranks, strict=True)]
    )  # fmt: skip
    assert sorted(frame["variant"]) == ["", "init_scale=0.001", "init_scale=1"]
    assert "orthogonal-N16-a2-s0 init_scale=1" in set(frame["run_name"])  # names tell them apart
    table = summary_table(frame)
    assert sorted(table["configuration"]) == [
        "explicit k=8", "orthogonal N=16 α=2 init_scale=0.001", "orthogonal N=16 α=2 init_scale=1",
    ]  # fmt: skip
    assert not table["latent rank"].str.startswith("split").any()  # no seeds to split


def test_the_report_asks_for_the_rank_where_the_plan_estimated_one_not_by_the_name():
    """rank_of with --grid runs a grid: its report is a study's, not a rank estimate's; a
    store from before the plan kind was recorded is read by the study's name."""
    from types import SimpleNamespace

    from analysis.report import estimates_a_rank

    def runs(*kinds: str | None) -> SimpleNamespace:
        params = [{} if kind is None else {"plan_kind": kind} for kind in kinds]
        return SimpleNamespace(parents=[SimpleNamespace(data=SimpleNamespace(params=p))
                                        for p in params])  # fmt: skip

    assert estimates_a_rank("rank_of", runs("RankEstimate"))
    assert not estimates_a_rank("rank_of", runs("Grid"))
    assert estimates_a_rank("my_rank", runs("RankEstimate", "RankEstimate"))
    assert estimates_a_rank("rank_of", runs(None)) and not estimates_a_rank("x", runs(None))
