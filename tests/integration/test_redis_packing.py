"""The API's Redis client (hiredis-packed commands) against the real server: values of
every kind come back as sent, a multi-word command works, and a call with hundreds of
arguments reaches the script whole."""

from __future__ import annotations

from domain.ids import new_id
from stores.redis_store import PackedConnection, async_client


async def test_commands_packed_by_hiredis_round_trip(settings, stack):
    redis = async_client(settings.redis_url)
    key = f"bench:packing:{new_id()}"
    try:
        assert redis.connection_pool.connection_class is PackedConnection
        await redis.hset(key, mapping={"ключ": "значение", "n": -7, "f": 0.1, "b": b"\x00\xff"})  # type: ignore[misc]
        assert await redis.hgetall(key) == {  # type: ignore[misc]
            "ключ".encode(): "значение".encode(),
            b"n": b"-7",
            b"f": b"0.1",
            b"b": b"\x00\xff",
        }
        sha = await redis.script_load("return {#KEYS, #ARGV, ARGV[#ARGV]}")  # SCRIPT LOAD
        args = [f"arg{i}" for i in range(640)]
        assert await redis.evalsha(sha, 1, key, *args) == [1, 640, b"arg639"]  # type: ignore[misc]
    finally:
        await redis.delete(key)
        await redis.aclose()
