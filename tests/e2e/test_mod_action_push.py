"""A moderator's removal reaches the affected author's WebSocket as a mod_action."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Client
from tests.e2e.governance import make_community, mod, submit
from tests.e2e.test_ws_push import next_notification, open_socket
from tests.processes import start_ws


@pytest.fixture(scope="module")
def ws_base(platform) -> Iterator[str]:
    proc, base = start_ws(platform.log_dir)
    yield base
    proc.stop()


def test_a_removal_is_pushed_to_its_author(client: Client, ws_base: str) -> None:
    owner, author = client.register("own"), client.register("aut")
    name = make_community(client, owner, "public")
    post_id = submit(client, author, name, "to be removed")
    socket = open_socket(ws_base, author.token)
    try:
        r = mod(client, owner, name, "remove", target_id=post_id, reason="rule 1")
        assert r.status_code == 200
        note = next_notification(socket)
    finally:
        socket.close()
    assert note["kind"] == "mod_action" and note["target_id"] == post_id
    assert note["actor"] == owner.username
