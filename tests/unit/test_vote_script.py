"""The votes benchmark's wrk script: free-running by default, paced with --rate."""

from __future__ import annotations

import re

from benchmarks.votes_http import vote_script


def test_without_a_rate_every_connection_sends_as_fast_as_answers_come() -> None:
    script = vote_script(["t1", "t2"], ["p1"])
    assert "delay" not in script
    assert '"t1","t2"' in script and '"p1"' in script


def test_a_rate_spreads_the_votes_over_the_connections() -> None:
    script = vote_script(["t1"], ["p1"], rate=300, connections=64)
    pause = re.search(r"math\.floor\(([\d.]+) \* \(0\.5 \+ math\.random\(\)\)\)", script)
    assert pause is not None
    # 64 connections each waiting on average 64 / 300 s between votes: 300 votes/s.
    assert abs(float(pause.group(1)) - 64 * 1000 / 300) < 0.01
