"""The benchmark scripts run end to end in their smallest mode and print well-formed tables.

Rates are only checked to be positive numbers: timings are not tested (the machine is shared).
One torch thread keeps the tiny runs fast when other processes load the CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from study.studies import names

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def table_rows(stdout: str) -> list[list[str]]:
    """Cells of each markdown table line, header first, the |---| line dropped."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_train_throughput_smallest_mode(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    stdout = run_script(
        "train_throughput.py",
        *("--device", "cpu", "--steps", "1", "--ks", "1", "2", "--batch-size", "2"),
        *("--depth", "2", "--threads", "1", "--json", str(out)),
    )
    assert stdout.startswith("# train_throughput: ") and "torch " in stdout
    header, *rows = table_rows(stdout)
    assert header == [
        "variant",
        "K",
        "fp64 model-steps/s",
        "fp64 vs naive",
        "fp32 model-steps/s",
        "fp32 vs naive",
    ]
    assert [row[:2] for row in rows] == [
        ["naive loop (DataLoader, .to(device), .item() per step)", "1"],
        ["Trainer epoch", "1"],
        ["VectorizedTrainer", "1"],
        ["VectorizedTrainer", "2"],
    ]
    for row in rows:
        assert float(row[2]) > 0 and float(row[4]) > 0
        assert row[3].endswith("x") and row[5].endswith("x")
    assert rows[0][3] == rows[0][5] == "1.00x"

    written = json.loads(out.read_text())
    assert written["machine"]["device"].startswith("cpu: ")
    assert written["machine"]["torch_threads"] == 1
    assert len(written["rows"]) == 8  # 4 variants x 2 dtypes
    assert all(row["model_steps_per_s"] > 0 for row in written["rows"])


def test_study_cost_quick_mode() -> None:
    stdout = run_script("study_cost.py", "--quick", "--threads", "1")
    assert "CPU rates measured now" in stdout and "H100 table in docs/benchmarks.md" in stdout
    header, *rows = table_rows(stdout)
    assert header[:5] == [
        "study",
        "trials",
        "optimiser steps",
        "CPU-h (study.cost rates)",
        "CPU-h (measured now)",
    ]
    assert [row[0] for row in rows] == names()
    for row in rows:
        assert int(row[1]) > 0 and int(row[2].replace(",", "")) > 0
        assert float(row[3]) > 0 and float(row[4]) > 0
        # the linear model and rank_of's MLP (priced on 2,000 vectors) are launch-bound
        launch_bound = row[0].startswith("linear_") or row[0] == "rank_of"
        assert (row[5] == "-") == launch_bound and (row[6] == "-") == launch_bound
        if not launch_bound:
            assert float(row[5]) > float(row[6]) > 0  # the vectorised GPU rate is the faster


def test_gpu_seed_group_records_each_epoch_and_summarises_per_seed(tmp_path: Path) -> None:
    """The GPU seed-group script on the CPU at its smallest: it writes every epoch's per-seed
    ranks, and --summarise gives one row per seed and a verdict by the settledness rule."""
    records, figure = tmp_path / "group.json", tmp_path / "ranks.png"
    run_script(
        "gpu_seed_group.py",
        *("--device", "cpu", "--seeds", "2", "--n-train", "64", "--n-eval", "64"),
        *("--max-epochs", "2", "--seconds", "600", "--json", str(records)),
    )
    run = json.loads(records.read_text())
    assert [epoch["epoch"] for epoch in run["epochs"]] == [1, 2]
    assert all(len(epoch["members"]) == 2 for epoch in run["epochs"])
    stdout = run_script("gpu_seed_group.py", "--summarise", str(records), "--figure", str(figure))
    header, *rows = table_rows(stdout)
    assert header[:3] == ["seed", "W_e rank", "latent rank"]
    assert [row[0] for row in rows] == ["0", "1"]
    # 2 epochs of 2 steps cannot be settled (3,000 unchanged steps are needed)
    assert all(row[-1] == "no" for row in rows if "diverged" not in row[1])
    assert "Rule: settled" in stdout and "inconclusive: 0 settled seed(s)" in stdout
    assert figure.stat().st_size > 0


def test_intrinsic_dimension_smallest_mode_scores_every_estimator_on_both_sets(
    tmp_path: Path,
) -> None:
    """Two tiny sets at the smoke preset: every estimator gets a row per set and a score."""
    out = tmp_path / "rows.json"
    stdout = run_script("intrinsic_dimension.py", "--smoke", "--json", str(out))
    assert stdout.startswith("# intrinsic-dimension benchmark: ")
    estimators = ["TwoNN", "MLE", "GRIDE", "DANCo", "lPCA GD", "PCA 95%", "rank_of"]
    rows = json.loads(out.read_text())["rows"]
    assert [r["estimator"] for r in rows] == estimators * 2
    circle = [r for r in rows if r["dataset"].startswith("circle")]
    # the circle's intrinsic dimension is 1; the code rank rank_of targets is 2
    assert {r["target"] for r in circle if r["estimator"] != "rank_of"} == {1}
    assert [r["target"] for r in circle if r["estimator"] == "rank_of"] == [2]
    summary = table_rows(stdout)[-len(estimators) - 1 :]
    assert summary[0] == [
        "estimator",
        "datasets",
        "exact",
        "within 1",
        "within 10%",
        "median seconds",
    ]
    assert [row[0] for row in summary[1:]] == estimators
    for row in summary[1:]:
        assert row[1] == "2" and 0 <= int(row[2]) <= int(row[3]) <= 2
