"""The votes benchmark's wrk script: free-running by default, paced with --rate."""

from __future__ import annotations

import re

from benchmarks.common import WRK_THREADS, paced
from benchmarks.votes_http import vote_script


def test_without_a_rate_every_connection_sends_as_fast_as_answers_come() -> None:
    script = vote_script(["t1", "t2"], ["p1"])
    assert "delay" not in script
    assert '"t1","t2"' in script and '"p1"' in script


def test_a_rate_is_a_schedule_per_wrk_thread() -> None:
    script = vote_script(["t1"], ["p1"], rate=300)
    gap = re.search(r"local gap_ms = ([\d.]+)", script)
    assert gap is not None
    # Each of the wrk threads sends on average every threads / 300 s: 300 votes/s.
    assert abs(float(gap.group(1)) - WRK_THREADS * 1000 / 300) < 0.01
    assert "delay = function()" in script


def test_the_schedule_reads_the_clock_instead_of_pausing_after_each_answer() -> None:
    script = paced("request = nil\n", 4000)
    # Slots are kept on the monotonic clock (a fixed pause per request would offer
    # less as the latency grows), and a stalled schedule restarts instead of bursting.
    assert "clock_gettime(1, clock)" in script
    assert "due < now - 1000" in script
    assert "due = due - math.log(1 - math.random()) * gap_ms" in script
