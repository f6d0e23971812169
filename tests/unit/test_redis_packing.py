"""The API's Redis connection packs commands with hiredis (C) into the very bytes
redis-py's Python packer makes, and refuses what redis-py refuses."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError
from redis.typing import EncodableT

from stores.redis_store import PackedConnection

COMMANDS: list[tuple[EncodableT, ...]] = [
    ("GET", "k"),
    ("SCRIPT LOAD", "return 1"),  # a two-word command given as one string
    (b"CONFIG GET", b"maxmemory"),
    ("HSET", "t:{p}", "up", 3, "dn", -2, "v", 1796414329692872),
    ("SET", "rl:x", 12.5, "PX", 60000),
    ("EVALSHA", "a" * 40, 2, "ключ", b"\x00\xff", 60.0, 1e-07, 0.1, 2**70, "", b""),
    ("SET", "k", memoryview(b"view")),
]


def packed(conn: aioredis.Connection, args: tuple[EncodableT, ...]) -> bytes:
    return b"".join(bytes(part) for part in conn.pack_command(*args))


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
def test_the_bytes_are_redis_pys_own(args: tuple[EncodableT, ...]) -> None:
    assert packed(PackedConnection(), args) == packed(aioredis.Connection(), args)


def test_a_batch_of_votes_is_one_buffer_of_the_same_bytes() -> None:
    votes = [("u", 1, 2, "1", "*", "p", 100000000, "60.0", 1) for _ in range(64)]
    args: tuple[EncodableT, ...] = ("EVALSHA", "b" * 40, 0, *(a for v in votes for a in v))
    parts = PackedConnection().pack_command(*args)
    assert len(parts) == 1
    assert parts[0] == packed(aioredis.Connection(), args)


@pytest.mark.parametrize("value", [True, bytearray(b"array")], ids=["bool", "bytearray"])
def test_what_redis_py_refuses_is_refused(value: EncodableT) -> None:
    with pytest.raises(DataError):
        aioredis.Connection().pack_command("SET", "k", value)
    with pytest.raises(DataError):
        PackedConnection().pack_command("SET", "k", value)
