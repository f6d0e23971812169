"""The analysts' notebooks run headless against a stack seeded by the workload generator
(ordinary users over Zipf-sized communities, a spammer and a vote ring, driven through
the API), and fail the build if any cell raises; committed notebooks carry no outputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from benchmarks.workload import Driver, Truth, WorkloadConfig, generate
from domain.ids import new_id

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def seeded(platform) -> Truth:
    """A small seeded workload through the API, so every plot has data."""
    config = WorkloadConfig(
        seed=11,
        users=24,
        communities=4,
        posts=16,
        votes_per_post=4.0,
        comments=16,
        spammers=1,
        spam_posts=4,
        rings=(3,),
        ring_posts=2,
        camouflage_votes=3,
        duration=20.0,
        tag=f"nb{new_id()[-6:].lower()}",
    )
    truth = Driver(platform.base, generate(config), speed=2.0).run()
    assert truth.outcomes.get("post 202", 0) >= config.posts, truth.outcomes
    return truth


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_without_errors(path: Path, seeded: Truth) -> None:
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
