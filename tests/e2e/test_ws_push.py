"""Notifications pushed over WebSocket by two push servers side by side: exactly once to
the right user, nothing to others, the backlog on reconnect, unread counts after
marking read, 4401 for bad tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api.security import Principal, TokenService
from tests.e2e.social import comment
from tests.processes import start_ws, wait_for

RECV_TIMEOUT = 15


@pytest.fixture(scope="module")
def ws_servers(platform) -> Iterator[list[str]]:
    started = [start_ws(platform.log_dir) for _ in range(2)]
    yield [base for _proc, base in started]
    for proc, _base in started:
        proc.stop()


def open_socket(base: str, token: str, *, in_query: bool = True) -> ClientConnection:
    if in_query:
        return connect(f"{base}/ws?token={token}", open_timeout=10)
    socket = connect(f"{base}/ws", open_timeout=10)
    socket.send(json.dumps({"token": token}))
    return socket


def next_message(socket: ClientConnection) -> dict[str, Any]:
    return json.loads(socket.recv(timeout=RECV_TIMEOUT))


def next_notification(socket: ClientConnection) -> dict[str, Any]:
    """The next notification, skipping unread counts."""
    while True:
        message = next_message(socket)
        if message["type"] == "notification":
            return message["notification"]


def until_unread(socket: ClientConnection) -> tuple[list[dict[str, Any]], int]:
    """Notifications received before the next unread count, and that count."""
    notes: list[dict[str, Any]] = []
    while True:
        message = next_message(socket)
        if message["type"] == "unread_count":
            return notes, message["unread_count"]
        notes.append(message["notification"])


def test_a_mention_reaches_its_user_once_and_nobody_else(client, ws_servers):
    ws1, ws2 = ws_servers
    a, b, c = client.register("wa"), client.register("wb"), client.register("wc")
    community = client.community(a)
    post_id = client.post(a, community, "push")

    b_tab1 = open_socket(ws1, b.token)
    b_tab2 = open_socket(ws2, b.token, in_query=False)  # token as the first message
    c_socket = open_socket(ws2, c.token)
    for socket in (b_tab1, b_tab2, c_socket):
        assert until_unread(socket) == ([], 0)

    mention = comment(client, a, post_id, f"look u/{b.username}")
    for tab in (b_tab1, b_tab2):
        note = next_notification(tab)
        assert (note["kind"], note["actor"], note["target_id"]) == (
            "mention",
            a.username,
            mention["comment_id"],
        )
    # a second, later mention of b is the very next notification: nothing was repeated
    second = comment(client, a, post_id, f"again u/{b.username}")
    for tab in (b_tab1, b_tab2):
        assert next_notification(tab)["target_id"] == second["comment_id"]
    # c's first notification is one naming c, sent after everything above
    sentinel = comment(client, a, post_id, f"and u/{c.username}")
    assert next_notification(c_socket)["target_id"] == sentinel["comment_id"]

    # b goes offline; a mentions b again; b reconnects and gets it first, and only it
    b_tab1.close()
    b_tab2.close()
    missed = comment(client, a, post_id, f"while you were away u/{b.username}")

    def stored() -> bool:
        items = client.http.get("/notifications", headers=b.headers).json()["items"]
        return any(n["target_id"] == missed["comment_id"] for n in items)

    wait_for(stored, timeout=20, what="the missed mention to be stored")
    back = open_socket(ws1, b.token)
    notes, unread = until_unread(back)
    assert [n["target_id"] for n in notes] == [missed["comment_id"]]
    assert unread == 3

    # marking read pushes the new unread count
    r = client.http.post("/notifications/read", json={"all": True}, headers=b.headers)
    assert r.json() == {"unread_count": 0}
    assert next_message(back) == {"type": "unread_count", "unread_count": 0}

    # and the next connection has nothing pending
    back.close()
    again = open_socket(ws2, b.token)
    assert until_unread(again) == ([], 0)
    again.close()
    c_socket.close()


@pytest.mark.parametrize("token", ["", "not-a-jwt", "expired"])
def test_bad_tokens_are_closed_with_4401(client, settings, ws_servers, token):
    if token == "expired":
        service = TokenService(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 60)
        token = service.issue(Principal("u", "u"), now=datetime.now(UTC) - timedelta(hours=1))
    socket = connect(f"{ws_servers[0]}/ws", open_timeout=10)
    socket.send(token or "{}")
    with pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=RECV_TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
