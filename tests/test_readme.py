"""The README's commands as a new user types them, and every named study end to end.

One local Ray and one project folder for the session (tests/conftest.py): each named
study's `--smoke` tier through the CLI's `main` (the CIFAR-10 studies on the generated
fixture of tests/cifar10_fixture.py, MNIST real), then the README's "user's path" block
line by line and `analysis.report` on every study's results (the notebook runs on the same
store in tests/test_notebook.py, the MLflow UI in tests/test_mlflow_ui.py). Commands whose
tier takes from 45 minutes to GPU-weeks run as `--dry-run` here; the laptop tiers' real
runs are recorded in docs/results.md.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from analysis.report import main as report_main
from study.plans import AlphaEscalation, Grid, OptunaSpace
from study.prepare import read_data
from study.run import main
from study.studies import config, names

REPO = Path(__file__).resolve().parents[1]
# every named study, by name: a new one fails test_this_module_runs_every_named_study
# until it is added here, so its smoke tier runs end to end too
STUDIES = (
    "cifar10_alpha_sweep", "cifar10_depth_sweep", "cifar10_explicit",
    "linear_alpha_sweep", "linear_depth_sweep",
    "mnist_alpha_sweep", "mnist_depth_sweep", "mnist_explicit", "mnist_optuna", "rank_of",
)  # fmt: skip
IMAGE_STUDIES = [n for n in STUDIES if not n.startswith("linear_") and n != "rank_of"]
# a study of a user's data runs on the README's worked example (its section's first line)
EXAMPLE_DATA = "digits.npz"
DATA = {"rank_of": ("--data", EXAMPLE_DATA)}
OWN_DATA = "Estimate the latent rank of your own data"
# the explicit baseline each implicit study is compared with in the README
PAIRS = {"mnist_alpha_sweep": "mnist_explicit", "cifar10_alpha_sweep": "cifar10_explicit"}


def readme_commands(section: str) -> list[list[str]]:
    """The commands of the first bash block under a README heading, one argv per command."""
    text = (REPO / "README.md").read_text()
    block = re.search(rf"## {re.escape(section)}\n.*?```bash\n(.*?)```", text, re.S)
    assert block, f"README.md has no bash block under '## {section}'"
    commands = []
    for line in block.group(1).splitlines():
        for command in line.split("#", 1)[0].split("&&"):
            if command.strip():
                commands.append(shlex.split(command))
    return commands


def test_this_module_runs_every_named_study():
    assert sorted(STUDIES) == names()


@pytest.fixture(scope="module")
def studies(smoke_studies):
    from tools.example_data import write

    write("digits", smoke_studies.folder / EXAMPLE_DATA)
    for name in STUDIES:
        smoke_studies.run(name, *DATA.get(name, ()))
    return smoke_studies


def smoke_config(name: str, folder: Path):
    """The study's smoke spec, on the data its smoke run read."""
    data = read_data(str(folder / EXAMPLE_DATA), None, {})[1] if name in DATA else None
    return config(name, "smoke", data)


def trial_runs(db: Path, name: str) -> list:
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, f"{name}: no MLflow experiment"
    return client.search_runs([experiment.experiment_id])


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", STUDIES)
def test_every_named_study_runs_its_smoke_tier_to_the_end(studies, name):
    assert studies.codes[name] == 0, name
    spec = smoke_config(name, studies.folder)
    runs = trial_runs(studies.db, name)
    [parent] = [r for r in runs if r.data.tags["role"] == "study"]
    assert parent.info.status == "FINISHED" and parent.data.params["preset"] == "smoke"
    trials = [r for r in runs if r.data.tags["role"] == "trial"]
    assert {r.info.status for r in trials} == {"FINISHED"}
    planned = len(spec.run_configs())
    if isinstance(spec.plan, Grid | OptunaSpace):
        assert len(trials) == planned
    else:
        assert isinstance(spec.plan, AlphaEscalation)
        assert 1 <= len(trials) <= planned  # the ladder stops at a divergence
    dataset = spec.base.dataset
    assert {r.data.params["dataset"] for r in trials} == {dataset}
    healthy = [r for r in trials if r.data.tags.get("diverged") != "true"]
    assert healthy, f"{name}: every trial diverged"
    for run in healthy:
        metrics = run.data.metrics
        assert metrics["latent_rank"] >= 1
        if name in IMAGE_STUDIES:
            assert 0.0 <= metrics["acc_best"] <= 1.0 and metrics["fid"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", STUDIES)
def test_a_smoke_study_shows_its_plan_while_it_runs_and_where_everything_went(studies, name):
    printed = studies.printed[name]
    spec = smoke_config(name, studies.folder)
    total = spec.plan.trial_count(len(spec.seed_groups()))
    bound = "up to " if isinstance(spec.plan, AlphaEscalation) else ""
    statuses = re.findall(
        rf"== {name} \(smoke\): (\d+)/{bound}{total} trials .*\| (ETA|done)", printed
    )
    assert statuses and statuses[-1][1] == "done", printed[:2000]
    assert "infinite" not in printed and "Result logdir" not in printed
    trials = trial_runs(studies.db, name)
    [parent] = [r for r in trials if r.data.tags["role"] == "study"]
    for run in (r for r in trials if r.data.tags["role"] == "trial"):
        assert re.search(rf"^{re.escape(run.info.run_name)} ", printed, re.M), run.info.run_name
    end = printed[printed.index(f"== {name} (smoke) done in ") :]
    assert f"parent run {parent.info.run_id}" in end
    assert f"Ray results (checkpoints, trial logs): {studies.folder}" in end
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in end
    assert f"python -m analysis.report {name}\n" in end


@pytest.mark.slow
@pytest.mark.parametrize("section", ["The user's path", OWN_DATA, "On a cluster"])
def test_the_readmes_commands_run_as_typed(studies, section):
    """Each line of the README block: run as typed, or dry-run where it is hours or a GPU."""
    seen = set()
    for argv in readme_commands(section):
        program = " ".join(argv[:3])
        if program == "python -m study.run":
            args = argv[3:]
            if args == ["--list"]:
                assert studies.in_folder(main, args) == 0
            elif args[1:] == ["--smoke"]:  # run as typed by the module fixture
                assert studies.codes[args[0]] == 0, argv
            elif args[:3] == ["rank_of", "--data", EXAMPLE_DATA]:  # minutes: the plan only
                assert studies.in_folder(main, [*args, "--dry-run"]) == 0, argv
                assert studies.codes["rank_of"] == 0  # its smoke tier ran on the same file
            else:
                assert studies.in_folder(main, [*args, "--dry-run"]) == 0, argv
        elif program == "python -m analysis.report":
            assert studies.in_folder(report_main, argv[3:]) == 0, argv
            assert (studies.folder / "reports" / argv[3] / "report.html").is_file()
        elif program == "python -m tools.example_data":
            from tools.example_data import main as example_main

            assert studies.in_folder(example_main, argv[3:]) == 0, argv
            assert (studies.folder / argv[4]).is_file()
        elif argv[:2] == ["mlflow", "ui"]:
            assert argv[2:] == ["--backend-store-uri", "sqlite:///mlflow.db"]
            assert (studies.folder / "mlflow.db").is_file()  # served by tests/test_mlflow_ui.py
        elif argv[:2] == ["ray", "up"]:
            # a cluster cannot start here: its file is validated offline, as the README says
            check = cli("-m", "study.cluster_check", argv[2], cwd=REPO)
            assert check.returncode == 0, check.stdout + check.stderr
        elif argv[:2] == ["ray", "submit"]:
            # what `ray submit` runs on the head: submit.py with the options after `--`,
            # here up to the plan check (the autoscaling check: tests/test_study_paths.py)
            script, rest = argv[3], argv[argv.index("--") + 1 :]
            out = cli(str(REPO / script), *rest, "--dry-run", cwd=studies.folder)
            assert out.returncode == 0 and "alpha escalation" in out.stdout, out.stderr
        elif argv[:2] == ["ray", "attach"]:
            # the tunnel reaches the MLflow server the cluster file starts on that port
            port = argv[argv.index("-p") + 1]
            assert f"--port {port}" in (REPO / argv[2]).read_text()
        else:
            pytest.fail(f"README '{section}': a command this test does not know: {argv}")
        seen.add(program if program.startswith("python") else " ".join(argv[:2]))
    expected = {
        "The user's path": {"python -m study.run", "python -m analysis.report", "mlflow ui"},
        OWN_DATA: {
            "python -m tools.example_data",
            "python -m study.run",
            "python -m analysis.report",
        },
        "On a cluster": {"ray up", "ray submit", "ray attach"},
    }
    assert expected[section] <= seen


@pytest.mark.slow
@pytest.mark.parametrize("name", STUDIES)
def test_every_studys_report_is_written_from_its_smoke_results(studies, name, tmp_path):
    extra = ["--compare-with", PAIRS[name]] if name in PAIRS else []
    out = tmp_path / name
    assert studies.in_folder(report_main, [name, "--out", str(out), *extra]) == 0
    report = (out / "report.md").read_text()
    assert name in report and (out / "report.html").is_file()
    pngs = list(out.glob("*.png"))
    assert pngs, f"{name}: the report drew no figure"
    for png in pngs:  # print versions beside each figure
        assert png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in png.with_suffix(".svg").read_bytes()[:2000]
    tables = out / "tables"
    for table in ("per_configuration", "trials"):
        assert (tables / f"{table}.csv").read_text().count("\n") >= 2
        assert "\\begin{tabular}" in (tables / f"{table}.tex").read_text()
    [parent] = [r for r in trial_runs(studies.db, name) if r.data.tags["role"] == "study"]
    assert f"preset smoke, seeds (0,), code {parent.data.params['code_version']}" in report
    statements = [line for line in report.splitlines() if line.startswith("- ")]
    assert len(statements) == len(set(statements)), f"{name}: a statement is repeated"
    if name in DATA:  # the answer, its check and the established estimators beside it
        for heading in ("Latent-rank estimate", "The check", "Side by side"):
            assert f"## {heading}" in report, heading
        estimators = (tables / "rank_estimators.csv").read_text()
        assert "TwoNN" in estimators and "orthogonal codes (N = 8" in estimators
        assert "directions emerged at step" in (tables / "rank_emergence.csv").read_text()
        assert (out / "rank_knee.png").is_file()
    if name in PAIRS:
        assert PAIRS[name] in report  # the implicit rank is read against that baseline
        headline = (tables / "headline.csv").read_text()  # the per-seed Fig. 4 verdicts
        assert "verdict" in headline and "orthogonal" in headline
    assert "## Headline" in report and (tables / "headline.csv").read_text().count("\n") >= 2
