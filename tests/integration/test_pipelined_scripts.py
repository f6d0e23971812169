"""The dataflows' sink scripts go out as EVALSHA in one pipeline: one round trip per
batch, and a Redis that lost its scripts (restart, flush) gets them again."""

from __future__ import annotations

from domain.ids import new_id
from stores.redis_store import PipelinedScript, sync_client


def test_a_batch_runs_in_one_pipeline_and_survives_a_script_flush(settings, stack) -> None:
    client = sync_client(settings.redis_url)
    script = PipelinedScript(client, "set_max_field")
    keys = [f"test:pipelined:{new_id()}" for _ in range(3)]
    assert script.run_all([]) == []
    script.run_all(([k], ["n", 5]) for k in keys)  # NOSCRIPT the first time: loaded
    client.script_flush()
    script.run_all(([k], ["n", n]) for k, n in zip(keys, (3, 9, 5), strict=True))
    assert [client.hget(k, "n") for k in keys] == [b"5", b"9", b"5"]  # the larger wins
    assert client.script_exists(script.sha) == [True]
    client.delete(*keys)
    client.close()
