"""One vote's trace, followed from the API's request span through the Kafka headers
into the votes, ranking and karma dataflows (each continues it for the store writes
it makes for that vote), read back from the spans the processes export to files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.processes import wait_for

FLOWS = ("votes", "ranking", "karma")


def spans(trace_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in trace_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def test_a_vote_is_traced_through_votes_ranking_and_karma(client, platform, trace_dir) -> None:
    base = platform.base
    author, voter = client.register("ta"), client.register("tv")
    post = client.post(author, client.community(author), "traced")

    def voted() -> httpx.Response | None:  # the vote marker lands just after the row
        r = client.http.put(
            f"{base}/api/v1/votes",
            json={"target_id": post, "target_type": "post", "direction": 1},
            headers=voter.headers,
        )
        return r if r.status_code == 200 else None

    answer = wait_for(voted, timeout=20, what="the vote to be accepted")
    trace_id = answer.headers["traceresponse"].split("-")[1]

    def services() -> set[str] | None:
        found = {
            s["resource"]["attributes"]["service.name"]
            for s in spans(trace_dir)
            if s["context"]["trace_id"] == f"0x{trace_id}"
        }
        return found if {"api", *(f"dataflow:{f}" for f in FLOWS)} <= found else None

    found = wait_for(services, timeout=60, interval=0.5, what=f"trace {trace_id} in every flow")
    assert found
    ours = [s for s in spans(trace_dir) if s["context"]["trace_id"] == f"0x{trace_id}"]
    names = {(s["resource"]["attributes"]["service.name"], s["name"]) for s in ours}
    assert ("dataflow:votes", "write tallies_out") in names
    assert ("dataflow:votes", "write scores_out") in names
    assert ("dataflow:ranking", "write ranks_out") in names
    assert ("dataflow:karma", "write karma_out") in names
    server = next(s for s in ours if s["resource"]["attributes"]["service.name"] == "api")
    # Every dataflow span descends from the request's span.
    assert all(s["parent_id"] for s in ours if s is not server)
