"""Helpers for the governance tests: communities of each visibility with people in
every role, through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from domain.ids import new_id
from tests.e2e.conftest import Client, User
from tests.processes import wait_for


def make_community(client: Client, owner: User, visibility: str) -> str:
    name = f"g{new_id()[-12:].lower()}"
    r = client.http.post(
        "/communities",
        json={"name": name, "description": "governed", "visibility": visibility},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    return name


def join(client: Client, user: User, community: str, moderator: User) -> None:
    """Join (through a moderator's approval when the community is private)."""
    r = client.http.post(f"/communities/{community}/join", headers=user.headers)
    if r.status_code == 202:
        assert r.json() == {"status": "pending"}
        r = client.http.post(
            f"/communities/{community}/join-requests/{user.username}/approve",
            headers=moderator.headers,
        )
    assert r.status_code == 200, r.text


def mod(client: Client, actor: User, community: str, action: str, **body: Any) -> httpx.Response:
    return client.http.post(
        f"/communities/{community}/moderation/{action}", json=body, headers=actor.headers
    )


def submit(client: Client, author: User, community: str, title: str = "hello") -> str:
    r = client.http.post(
        f"/communities/{community}/posts",
        json={"title": title, "kind": "text", "body": f"body of {title}"},
        headers=author.headers,
    )
    assert r.status_code == 202, r.text
    post_id: str = r.json()["post_id"]
    wait_for(
        lambda: client.http.get(f"/posts/{post_id}", headers=author.headers).status_code == 200,
        timeout=60,
        what=f"post {post_id}",
    )
    return post_id


def listed(client: Client, community: str, user: User | None, sort: str = "new") -> list[str]:
    r = client.http.get(
        f"/communities/{community}/posts",
        params={"sort": sort, "limit": 100},
        headers=user.headers if user else None,
    )
    assert r.status_code == 200, r.text
    return [i["post_id"] for i in r.json()["items"]]


def tree_ids(client: Client, post_id: str, user: User | None) -> list[str]:
    r = client.http.get(
        f"/posts/{post_id}/comments",
        params={"depth": 10, "limit": 100},
        headers=user.headers if user else None,
    )
    assert r.status_code == 200, r.text
    out: list[str] = []
    stack = list(r.json()["items"])
    while stack:
        c = stack.pop()
        out.append(c["comment_id"])
        stack.extend(c["children"])
    return out


@dataclass
class Cast:
    """A community and one person in each role."""

    name: str
    visibility: str
    owner: User
    moderator: User
    member: User
    approved: User
    banned: User
    muted: User
    shadow: User
    stranger: User

    def role(self, role: str) -> User | None:
        return None if role == "anonymous" else getattr(self, role)


def cast(client: Client, visibility: str) -> Cast:
    """A community of `visibility` with a moderator, a member, an approved user and
    members who are banned, muted and shadow-banned."""
    users = {
        role: client.register(role[:3])
        for role in Cast.__dataclass_fields__
        if role not in ("name", "visibility")
    }
    owner = users["owner"]
    name = make_community(client, owner, visibility)
    for role in ("moderator", "member", "approved", "banned", "muted", "shadow"):
        join(client, users[role], name, owner)
    r = client.http.post(
        f"/communities/{name}/moderators",
        json={"username": users["moderator"].username},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    r = client.http.post(
        f"/communities/{name}/approved-users",
        json={"username": users["approved"].username},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    assert mod(client, owner, name, "ban", username=users["banned"].username).status_code == 200
    assert mod(client, owner, name, "mute", username=users["muted"].username).status_code == 200
    r = mod(client, owner, name, "shadow-ban", username=users["shadow"].username)
    assert r.status_code == 200, r.text
    return Cast(name, visibility, **users)
