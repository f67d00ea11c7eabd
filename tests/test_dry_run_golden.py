"""Every named study's `--dry-run` plan, at every tier it offers, against a saved copy.

A refactor of the planning code must not change a plan by accident: the saved copy
(tests/golden/dry_run.txt) was taken before the study service was reorganised. When a plan
changes on purpose, regenerate it and read the diff:

    RANKSTUDY_DATA_ROOT=... python tests/test_dry_run_golden.py > tests/golden/dry_run.txt

The `work:` line (the cost model's price on this machine's cores) is left out: it depends
on the machine. The folder the plans were made in reads `<folder>`.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

from study.run import main
from study.studies import names, presets, reads_user_data
from tools.example_data import write

GOLDEN = Path(__file__).parent / "golden" / "dry_run.txt"
EXAMPLE_DATA = "digits.npz"  # a study of a user's data is planned on the README's example


def dry_runs(folder: Path) -> str:
    """Every named study's plan at every tier, in one text, as run from `folder`."""
    write("digits", folder / EXAMPLE_DATA)
    sections = []
    for name in names():
        data = ["--data", EXAMPLE_DATA] if reads_user_data(name) else []
        for tier in presets(name):
            printed = io.StringIO()
            with contextlib.chdir(folder), contextlib.redirect_stdout(printed):
                code = main([name, "--preset", tier, "--dry-run", *data])
            lines = [line for line in printed.getvalue().splitlines()
                     if not line.startswith("work: ")]  # fmt: skip
            sections.append(f"== {name} --preset {tier} (exit {code})\n" + "\n".join(lines))
    return ("\n".join(sections) + "\n").replace(str(folder.resolve()), "<folder>")


def test_every_named_studys_dry_run_plan_is_the_saved_one(tmp_path):
    assert dry_runs(tmp_path) == GOLDEN.read_text()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        sys.stdout.write(dry_runs(Path(folder)))
