"""`python -m rankae.train`: one run from the command line, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rankae.config import linear_synthetic
from rankae.train import build_parser, config_from_args, main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rankae.train", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_short_synthetic_run_prints_the_summary(tmp_path) -> None:
    out = tmp_path / "records.json"
    result = run_cli(
        *("--dataset", "synthetic", "--bottleneck", "orthogonal", "--depth", "4"),
        *("--alpha", "2", "--steps", "1000", "--json", str(out)),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in ("W_e rank: 8", "latent rank: 8", "steps: 1000"):
        assert expected in lines
    assert any(line.startswith("final loss: ") for line in lines)
    assert any(line.startswith("wall time: ") for line in lines)
    written = json.loads(out.read_text())
    assert written["config"]["depth"] == 4 and written["config"]["init"] == "orthogonal"
    assert [r["step"] for r in written["records"]] == list(range(100, 1001, 100))


def test_bad_value_exits_2_with_one_line_naming_it() -> None:
    result = run_cli("--dataset", "synthetic", "--depth", "0")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "depth=0" in line and "integer in [1, 1,024]" in line


def config_for(*args: str):
    return config_from_args(build_parser().parse_args(list(args)))


def test_flags_map_onto_run_config() -> None:
    config = config_for(
        *("--dataset", "synthetic", "--bottleneck", "standard", "--depth", "32"),
        *("--alpha", "2", "--steps", "10000", "--two-stage", "--force-switch-epoch", "none"),
    )
    paper = linear_synthetic()  # dataset=synthetic starts from App. B
    assert (config.bottleneck, config.init) == ("linear_net", "standard")  # the shorthand
    assert config.depth == 32 and config.alpha == 2.0
    assert config.two_stage and config.force_switch_epoch is None
    assert (config.lr, config.init_scale, config.optimizer) == (paper.lr, 1e-3, "gd")
    assert config.epochs * config.gd_steps_per_epoch == 10_000
    assert not config_for("--dataset", "synthetic", "--no-two-stage").two_stage
    assert config_for("--dataset", "digits").optimizer == "adam"  # the RunConfig defaults


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--dataset", "synthetic", "--alpha", "-1"], "alpha=-1.0"),
        (["--dataset", "synthetic", "--init-scale", "0"], "init_scale=0.0"),
        (["--dataset", "synthetic", "--rank-threshold", "1"], "rank_threshold=1.0"),
        (["--dataset", "synthetic", "--steps", "150"], "--steps 150"),
        (["--dataset", "synthetic", "--steps", "300", "--epochs", "2"], "--epochs 2"),
        (["--dataset", "digits", "--steps", "100"], "not 'adam'"),
        (["--bottleneck", "deep"], "bottleneck='deep'"),
        (["--bottleneck", "standard", "--init", "orthogonal"], "--init orthogonal"),
        (["--dataset", "svhn"], "dataset='svhn'"),
    ],
)
def test_bad_values_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], named: str) -> None:
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert named in line


def test_malformed_flags_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--depth", "two"], ["--device", "toaster"], ["--no-such-flag"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
        assert args[-1] in capsys.readouterr().err
