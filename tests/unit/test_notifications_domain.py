"""Mention parsing and notification planning."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.notifications import Item, extract_mentions, notification_id, plan

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_mentions_are_found_once_in_order_lower_cased():
    text = "hi u/Bob and /u/carol_1, again U/bob? u/bob. also u/Bob!"
    assert extract_mentions(text) == ["bob", "carol_1"]


def test_what_is_not_a_mention():
    for text in (
        "mu/bob",  # inside a word
        "https://example.com/u/bob",  # a URL path
        "u/ab",  # too short for a username
        "u/" + "x" * 21,  # too long
        "user/bob",
    ):
        assert extract_mentions(text) == [], text
    assert extract_mentions("(u/bob)") == ["bob"]


def item(text: str, author: str = "A", reply_to: str | None = None) -> Item:
    return Item("c1", "p1", author, "alice", text, reply_to, T0)


USERS = {"bob": "B", "carol": "C", "alice": "A"}


def test_reply_wins_over_mention_and_authors_never_notify_themselves():
    planned = plan(item("thanks u/bob, u/carol, u/alice and u/nobody", reply_to="B"), USERS)
    assert {(n.recipient_id, n.kind) for n in planned} == {("B", "reply"), ("C", "mention")}
    assert plan(item("self reply", reply_to="A"), USERS) == []


def test_ids_are_stable_per_item_and_recipient_and_time_ordered():
    first = plan(item("u/bob"), USERS)
    again = plan(item("u/bob"), USERS)
    assert [n.notification_id for n in first] == [n.notification_id for n in again]
    later = notification_id("c1", "B", datetime(2025, 1, 2, tzinfo=UTC))
    assert later > first[0].notification_id
    assert notification_id("c1", "C", T0) != first[0].notification_id
