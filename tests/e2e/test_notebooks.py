"""The analysts' notebooks run headless against the stack the e2e suite has filled,
and fail the build if any cell raises; committed notebooks carry no outputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_without_errors(path: Path, client, platform) -> None:
    # Some activity of its own, so every plot has data even on a fresh stack.
    owner = client.register("nb")
    post = client.post(owner, client.community(owner), "notebook")
    assert client.vote(owner, post, 1).status_code == 200
    book = nbformat.read(path, as_version=4)
    os.environ["MPLBACKEND"] = "Agg"
    started = time.monotonic()
    NotebookClient(
        book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    print(f"{path.name}: {time.monotonic() - started:.1f}s")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name
