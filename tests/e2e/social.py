"""Helpers for comment, karma and notification tests (through the API)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.e2e.conftest import Client, User
from tests.processes import wait_for


def comment(
    client: Client, user: User, post_id: str, body: str = "a comment", parent: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"body": body}
    if parent is not None:
        payload["parent_id"] = parent
    r = client.http.post(f"/posts/{post_id}/comments", json=payload, headers=user.headers)
    assert r.status_code == 202, r.text
    return r.json()


def tree(client: Client, post_id: str, user: User | None = None, **params: Any) -> dict[str, Any]:
    r = client.http.get(
        f"/posts/{post_id}/comments", params=params, headers=user.headers if user else None
    )
    assert r.status_code == 200, r.text
    return r.json()


def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from walk(item["children"])


def wait_comments(client: Client, post_id: str, count: int, timeout: float = 30) -> None:
    """Until the tree (10 levels, 100 per parent) shows `count` comments."""

    def seen() -> bool:
        items = tree(client, post_id, depth=10, limit=100)["items"]
        return sum(1 for _ in walk(items)) >= count

    wait_for(seen, timeout=timeout, what=f"{count} comments on {post_id}")
