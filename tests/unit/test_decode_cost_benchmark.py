"""The decode benchmark runs, restores the screen it replaces, and reports both ways."""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks import decode_cost
from schemas import envelope


def test_it_reports_each_event_type_both_ways(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    screen = envelope.could_hold_control
    monkeypatch.setattr(sys, "argv", ["decode_cost", "--rounds", "1", "--number", "20"])
    decode_cost.main()
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report) == {"vote.cast", "score.changed", "post.created"}
    assert all(r["screened_us"] > 0 and r["looked_us"] > 0 for r in report.values())
    assert envelope.could_hold_control is screen
