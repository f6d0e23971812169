"""The benchmarks' CPU meter reads real process trees from /proc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.cpu import (
    BENCHMARK,
    LOAD_GENERATOR,
    CpuMeter,
    children_of,
    cost_table,
    platform_total,
    tree_seconds,
)

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"


def test_a_tree_counts_the_children_its_members_reaped() -> None:
    # the parent runs a busy child to its end, says so, then waits for its stdin to close
    code = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {BUSY!r}])\n"
        "print('done', flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "done"
        assert tree_seconds(parent.pid, children_of()) >= 0.25
    finally:
        parent.communicate("", timeout=30)


def test_the_load_generator_is_what_the_benchmark_runs(tmp_path: Path) -> None:
    meter = CpuMeter(state=tmp_path)  # no stack in this folder: no roots
    meter.start()
    subprocess.run([sys.executable, "-c", BUSY], check=True)
    spent = meter.stop()
    assert spent[LOAD_GENERATOR] >= 0.25
    assert set(spent) == {LOAD_GENERATOR, BENCHMARK}


def test_cost_table_excludes_the_load_generator_from_the_total() -> None:
    spent = {"api": 0.5, "redis": 0.1, LOAD_GENERATOR: 2.0, BENCHMARK: 0.3}
    assert platform_total(spent, 1000) == 600.0
    table = cost_table(spent, 1000)
    assert "platform total" in table and "600.0" in table and "500.0" in table
