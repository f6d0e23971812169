"""Stop and start one server of the local stack from a test (`deploy/stack.sh`), and read
what a dataflow dead-lettered: the pieces every outage drill shares."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.processes import ROOT


def stack_sh(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "deploy" / "stack.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def service_up(service: str) -> bool:
    pattern = rf"^{re.escape(service)}\s+up\s"
    return re.search(pattern, stack_sh("status").stdout, re.MULTILINE) is not None


def stop_service(service: str) -> None:
    stopped = stack_sh("stop", service)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def start_service(service: str) -> None:
    started = stack_sh("start", service)
    assert started.returncode == 0, started.stdout + started.stderr


@contextmanager
def stack_service(service: str) -> Iterator[None]:
    """A server run by deploy/stack.sh from this state folder, up again when the test ends
    (skips when another supervisor runs it: the test must not stop what it did not start)."""
    if not service_up(service):
        pytest.skip(f"{service} is not run by deploy/stack.sh from this state folder")
    try:
        yield
    finally:
        if not service_up(service):
            start_service(service)


def dead_letters_of(dataflow: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "dataflows", "dead-letters", "--dataflow", dataflow],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(out.stdout.splitlines())
