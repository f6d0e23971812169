"""Messages pushed to WebSocket clients (API.md): the same bytes travel on a user's
Redis pub/sub channel and over the socket, so WebSocket servers forward without
re-encoding."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson


def notification_view(row: Any) -> dict[str, Any]:
    """A stored notification as clients see it (REST list items and pushes)."""
    return {
        "notification_id": row["notification_id"],
        "kind": row["kind"],
        "actor": row["actor_name"],
        "target_id": row["target_id"],
        "post_id": row["post_id"],
        "snippet": row["snippet"],
        "created_at": _iso(row["created_at"]),
        "read": row["read_at"] is not None,
    }


def notification_message(view: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "notification", "notification": view})


def unread_message(count: int) -> bytes:
    return orjson.dumps({"type": "unread_count", "unread_count": count})


def notification_id_of(message: bytes) -> str | None:
    """The notification id a pushed message carries (None for other message types)."""
    try:
        data = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and data.get("type") == "notification":
        inner = data.get("notification")
        if isinstance(inner, dict) and isinstance(inner.get("notification_id"), str):
            return str(inner["notification_id"])
    return None


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
