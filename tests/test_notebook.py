"""notebooks/explore_study.ipynb runs top to bottom against a smoke study's store (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from test_analysis import smoke_uri

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore_study.ipynb"


def test_explore_notebook_executes_and_redraws_figures(smoke_studies, monkeypatch):
    uri = smoke_uri(smoke_studies, "linear_depth_sweep")
    monkeypatch.setenv("RANKSTUDY_MLFLOW_URI", uri)  # the kernel inherits the environment
    monkeypatch.setenv("RANKSTUDY_STUDY", "linear_depth_sweep")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "linear_depth_sweep: 5 trials" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # Fig. 1 and Fig. 5 redrawn
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any("orthogonal-N16-a2-s0" in o["data"]["text/html"] for o in tables)
    assert not any(o.output_type == "error" for o in outputs)
