"""The stack's Redis keeps its data in the append-only file and takes no RDB snapshots
(each one forks and dumps the whole dataset)."""

from stores.redis_store import sync_client


def test_redis_persists_by_its_append_only_file_alone(stack, settings):
    redis = sync_client(settings.redis_url)
    assert redis.config_get("appendonly") == {"appendonly": "yes"}
    assert redis.config_get("save") == {"save": ""}
