"""Loads a little demo data through the public API (idempotent): `python3 deploy/demo.py URL`."""

from __future__ import annotations

import sys
import time

import httpx

PASSWORD = "demo-password"  # noqa: S105 - public demo account


def session(http: httpx.Client, username: str) -> dict[str, str]:
    http.post(
        "/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    r = http.post("/auth/login", json={"login": username, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def main(base: str) -> None:
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
    alice, bob = session(http, "demo_alice"), session(http, "demo_bob")
    http.post("/communities", json={"name": "demo", "description": "Demo community"}, headers=alice)
    http.post("/communities/demo/join", headers=bob)
    existing = http.get("/communities/demo/posts?sort=new").json()["items"]
    if not existing:
        for title in (
            "Welcome to agora",
            "Votes are tallied by a Bytewax dataflow",
            "Every mutation is an event on Kafka",
        ):
            r = http.post(
                "/communities/demo/posts",
                json={"title": title, "kind": "text", "body": "demo"},
                headers=alice,
            )
            r.raise_for_status()
        deadline = time.monotonic() + 30
        while len(existing) < 3 and time.monotonic() < deadline:
            existing = http.get("/communities/demo/posts?sort=new").json()["items"]
            time.sleep(0.2)
    for i, post in enumerate(existing):
        http.put(
            "/votes",
            json={"target_id": post["post_id"], "target_type": "post", "direction": 1},
            headers=bob,
        )
        http.put(
            "/votes",
            json={
                "target_id": post["post_id"],
                "target_type": "post",
                "direction": 1 if i % 2 == 0 else -1,
            },
            headers=alice,
        )
    if existing:
        demo_thread(http, existing[-1]["post_id"], alice, bob)
    print(
        f"demo data: users demo_alice / demo_bob (password {PASSWORD!r}), community 'demo', "
        f"{len(existing)} posts, a comment thread on the first"
    )


def demo_thread(
    http: httpx.Client, post_id: str, alice: dict[str, str], bob: dict[str, str]
) -> None:
    """Bob comments (mentioning Alice, who gets a notification), Alice replies."""
    url = f"/posts/{post_id}/comments"
    items = http.get(url).json()["items"]
    if not items:
        body = {"body": "Nested comments live in a CQL partition per post, u/demo_alice"}
        top = http.post(url, json=body, headers=bob).json()
        deadline = time.monotonic() + 30
        while not items and time.monotonic() < deadline:
            items = http.get(url).json()["items"]
            time.sleep(0.2)
        reply = {"body": "and replies notify their parent's author", "parent_id": top["comment_id"]}
        http.post(url, json=reply, headers=alice)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
