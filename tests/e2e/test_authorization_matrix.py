"""The authorization matrix: routes x 9 roles x 3 visibilities, every cell's expected
status from one table. Each visibility gets its own community with one person in each
role (tests/e2e/governance.py `cast`), and the post every route works on is the
owner's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Client
from tests.e2e.governance import Cast, cast, submit

ROLES = (
    "anonymous",
    "stranger",
    "member",
    "approved",
    "banned",
    "muted",
    "shadow",
    "moderator",
    "owner",
)
VISIBILITIES = ("public", "restricted", "private")

Body = Callable[[Cast, str], dict[str, Any] | None]


def row(statuses: str) -> tuple[int, ...]:
    codes = tuple(int(s) for s in statuses.split())
    assert len(codes) == len(ROLES)
    return codes


# The table: (label, method, path, body) -> visibility -> status per role, in ROLES order
#                          anon str mem apr ban mut shd mod own
READ = row("                200 200 200 200 200 200 200 200 200")
READ_PRIVATE = row("        404 404 200 200 200 200 200 200 200")
MODS = row("                401 403 403 403 403 403 403 200 200")
MODS_PRIVATE = row("        401 404 403 403 403 403 403 200 200")
OWNER = row("               401 403 403 403 403 403 403 403 200")
OWNER_PRIVATE = row("       401 404 403 403 403 403 403 403 200")
CONTRIBUTE = {
    "public": row("         401 202 202 202 403 403 202 202 202"),
    "restricted": row("     401 403 403 202 403 403 403 202 202"),
    "private": row("        401 404 202 202 403 403 202 202 202"),
}
VOTE = {
    "public": row("         401 200 200 200 403 200 200 200 200"),
    "restricted": row("     401 200 200 200 403 200 200 200 200"),
    "private": row("        401 404 200 200 403 200 200 200 200"),
}


def signed_in(code: int) -> dict[str, tuple[int, ...]]:
    open_ = row(f"401 {code} {code} {code} {code} {code} {code} {code} {code}")
    private = row(f"401 404 {code} {code} {code} {code} {code} {code} {code}")
    return {"public": open_, "restricted": open_, "private": private}


def same(codes: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return dict.fromkeys(VISIBILITIES, codes)


def readable() -> dict[str, tuple[int, ...]]:
    return {"public": READ, "restricted": READ, "private": READ_PRIVATE}


def moderators() -> dict[str, tuple[int, ...]]:
    return {"public": MODS, "restricted": MODS, "private": MODS_PRIVATE}


LOG = {
    "public": READ,
    "restricted": row("403 403 403 403 403 403 403 200 200"),
    "private": row("404 404 403 403 403 403 403 200 200"),
}

TABLE: list[tuple[str, str, str, Body, dict[str, tuple[int, ...]]]] = [
    ("community", "GET", "/communities/{c}", lambda c, p: None, same(READ)),
    ("listing", "GET", "/communities/{c}/posts", lambda c, p: None, readable()),
    ("post", "GET", "/posts/{p}", lambda c, p: None, readable()),
    ("comment tree", "GET", "/posts/{p}/comments", lambda c, p: None, readable()),
    ("moderators", "GET", "/communities/{c}/moderators", lambda c, p: None, readable()),
    ("mod log", "GET", "/communities/{c}/moderation/log", lambda c, p: None, LOG),
    ("queue", "GET", "/communities/{c}/moderation/queue", lambda c, p: None, moderators()),
    ("join requests", "GET", "/communities/{c}/join-requests", lambda c, p: None, moderators()),
    (
        "submit post",
        "POST",
        "/communities/{c}/posts",
        lambda c, p: {"title": "matrix", "kind": "text", "body": "cell"},
        CONTRIBUTE,
    ),
    ("comment", "POST", "/posts/{p}/comments", lambda c, p: {"body": "cell"}, CONTRIBUTE),
    (
        "vote",
        "PUT",
        "/votes",
        lambda c, p: {"target_id": p, "target_type": "post", "direction": 1},
        VOTE,
    ),
    ("report", "POST", "/reports", lambda c, p: {"target_id": p, "reason": "cell"}, signed_in(201)),
    ("save", "PUT", "/posts/{p}/save", lambda c, p: None, signed_in(204)),
    ("patch community", "PATCH", "/communities/{c}", lambda c, p: {"rules": "r"}, moderators()),
    (
        "flair",
        "POST",
        "/communities/{c}/moderation/flair",
        lambda c, p: {"post_id": p, "flair": "cell"},
        moderators(),
    ),
    (
        "lock",
        "POST",
        "/communities/{c}/moderation/lock",
        lambda c, p: {"post_id": p, "locked": False},
        moderators(),
    ),
    (
        "add moderator",
        "POST",
        "/communities/{c}/moderators",
        lambda c, p: {"username": c.moderator.username},
        {"public": OWNER, "restricted": OWNER, "private": OWNER_PRIVATE},
    ),
]


@pytest.fixture(scope="module")
def casts(client: Client) -> dict[str, tuple[Cast, str]]:
    out = {}
    for visibility in VISIBILITIES:
        c = cast(client, visibility)
        out[visibility] = (c, submit(client, c.owner, c.name, f"{visibility} post"))
    return out


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_every_cell_of_the_matrix(client: Client, casts, visibility: str) -> None:
    community, post_id = casts[visibility]
    wrong: list[str] = []
    cells = 0
    for label, method, path, body, expected in TABLE:
        url = path.format(c=community.name, p=post_id)
        for role, want in zip(ROLES, expected[visibility], strict=True):
            user = community.role(role)
            r = client.http.request(
                method, url, json=body(community, post_id), headers=user.headers if user else None
            )
            cells += 1
            if r.status_code != want:
                wrong.append(f"{label} as {role}: {r.status_code} (want {want}) {r.text[:120]}")
            elif r.status_code >= 400:
                assert r.json()["error"]["code"]  # every refusal is a JSON error
    assert cells == len(TABLE) * len(ROLES)
    assert not wrong, "\n".join(wrong)
