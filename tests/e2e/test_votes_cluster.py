"""`votes` as a Bytewax cluster of two processes (`-i`/`-a`), as the Kubernetes
StatefulSet runs it: one process is killed with -9 during a stream of votes, the
cluster is restarted from its snapshots, and the tallies equal a recomputation from
the log. The session's single-process votes job is stopped meanwhile, so every tally
seen here is the cluster's work."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.status import committed_offsets
from schemas.topics import VOTES
from stores.kafka_admin import end_offsets
from tests.e2e.log_tallies import recompute
from tests.e2e.test_recovery_replay import stored_tallies, vote_stream
from tests.processes import Process, free_port, wait_for

pytestmark = pytest.mark.slow


class Cluster:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.recovery = Path(tempfile.mkdtemp(prefix="agora-cluster-"))
        ports = [free_port(), free_port()]
        self.addresses = ";".join(f"127.0.0.1:{p}" for p in ports)
        self.procs: list[Process] = []

    def start(self) -> None:
        self.procs = [
            Process(
                f"votes-cluster-{i}",
                ["-m", "dataflows", "run", "votes", "-i", str(i), "-a", self.addresses],
                self.log_dir,
                env={"RECOVERY_ROOT": str(self.recovery)},
            ).start()
            for i in range(2)
        ]

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


@pytest.fixture
def cluster(platform, log_dir) -> Iterator[Cluster]:
    platform.flows["votes"].stop()
    running = Cluster(log_dir)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        platform.restart_flow("votes")


def test_a_two_process_cluster_survives_a_kill_9(client, settings, cluster) -> None:
    author = client.register("cl")
    community = client.community(author)
    posts = [client.post(author, community, f"cluster {i}") for i in range(4)]
    voters = [client.register("cv") for _ in range(12)]
    done = threading.Event()

    def stream() -> None:
        vote_stream(client, posts, voters, 600, seed=7)
        done.set()

    worker = threading.Thread(target=stream)
    worker.start()
    wait_for(
        lambda: any(sum(t) for t in stored_tallies(client, posts).values()),
        timeout=60,
        what="the cluster's first tallies",
    )
    cluster.procs[1].kill9()
    # A Bytewax cluster fails as a whole: its other process stops too, and both
    # restart from the last snapshot they agreed on.
    wait_for(lambda: not cluster.procs[0].alive(), timeout=60, what="the peer to stop")
    cluster.start()
    worker.join(180)
    assert done.is_set()

    expected = recompute(settings.kafka_bootstrap, set(posts))
    wait_for(
        lambda: stored_tallies(client, posts) == expected,
        timeout=90,
        interval=0.5,
        what=f"cluster tallies to equal the recomputation {expected}",
    )
    ends = end_offsets(settings.kafka_bootstrap, VOTES.name)

    def snapshotted_to_the_end() -> bool:
        held = committed_offsets(cluster.recovery / "votes", "votes")
        return all(held.get((VOTES.name, p), -1) >= end for p, end in ends.items() if end)

    wait_for(snapshotted_to_the_end, timeout=60, what="the cluster's snapshots at the log end")
    assert all(p.alive() for p in cluster.procs), [p.log_tail() for p in cluster.procs]
