"""Community -> post shard placement on a consistent-hash ring (uhashring, virtual nodes)."""

from __future__ import annotations

from collections.abc import Iterable

from uhashring import HashRing


class ShardRing:
    def __init__(self, shards: Iterable[str], vnodes: int = 40) -> None:
        self.shards = tuple(shards)
        if not self.shards:
            raise ValueError("a ring needs at least one shard")
        self._ring = HashRing(nodes={name: {"vnodes": vnodes} for name in self.shards})

    def shard_for(self, community_id: str) -> str:
        return str(self._ring.get_node(community_id))
