"""The operator's one command, `agora`, against the running platform: help a newcomer
can follow, dataflow status from the recovery snapshots and the log, and a backfill."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta

from tests.processes import ROOT, wait_for


def agora(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["agora", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_help_lists_every_group() -> None:
    out = agora("--help")
    assert out.returncode == 0, out.stderr
    for group in (
        "stack",
        "platform",
        "dataflow",
        "shards",
        "migrate",
        "topics",
        "rebuild",
        "seed",
    ):
        assert group in out.stdout
    sub = agora("dataflow", "--help")
    for command in ("run", "replay", "backfill", "status", "dead-letters", "republish"):
        assert command in sub.stdout


def test_status_shows_positions_lag_and_dead_letters(client, platform) -> None:
    owner = client.register("op")
    name = client.community(owner)
    post = client.post(owner, name, "status")
    assert client.vote(owner, post, 1).status_code == 200

    def caught_up() -> str | None:
        out = agora("dataflow", "status", "votes", "--sample", "0")
        assert out.returncode == 0, out.stderr
        rows = [line.split() for line in out.stdout.splitlines() if line.startswith("votes ")]
        assert len(rows) == 6  # one per partition of the votes topic
        committed = [r[3] for r in rows]
        # Every partition snapshotted, and nothing left to read.
        if "-" in committed or any(r[5] != "0" for r in rows):
            return None
        return out.stdout

    table = wait_for(caught_up, timeout=60, interval=1, what="votes caught up in status")
    assert re.search(r"^dataflow\s+topic\s+part\s+committed\s+end\s+lag", table, re.MULTILINE)


def test_backfill_refuses_stateful_dataflows_and_rereads_stateless_ones(client, platform) -> None:
    refused = agora("dataflow", "backfill", "votes", "--offset", "0")
    assert refused.returncode != 0 and "replay" in refused.stderr
    owner = client.register("bf")
    name = client.community(owner)
    client.post(owner, name, "backfilled")
    since = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    out = agora("dataflow", "backfill", "mentions", "--since", since, timeout=240)
    assert out.returncode == 0, out.stderr
    assert re.search(r"backfilled mentions: \d+ events", out.stdout)
