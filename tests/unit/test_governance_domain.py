"""Governance logic without servers: the access policy, how removed and deleted content
shows, the comment count per author, the ranking's hiding, notification audiences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataflows import content, ranking
from domain.access import (
    Banned,
    Muted,
    Standing,
    can_read,
    check_contribute,
    check_moderator,
    check_vote,
)
from domain.errors import Forbidden, NotFound
from domain.masks import REMOVED, show_post
from domain.notifications import Item, Notification, audience
from tests.unit.flows import a_comment, a_post

MEMBER = Standing(signed_in=True, role="member")
MODERATOR = Standing(signed_in=True, role="moderator")
STRANGER = Standing(signed_in=True)


def test_private_content_is_not_found_for_non_members():
    assert not can_read("private", STRANGER) and can_read("private", MEMBER)
    with pytest.raises(NotFound):
        check_contribute("private", STRANGER, {})
    with pytest.raises(NotFound):
        check_vote("private", Standing(), {})
    with pytest.raises(NotFound):
        check_moderator("private", STRANGER, {})


def test_restricted_needs_approval_and_sanctions_win():
    with pytest.raises(Forbidden):
        check_contribute("restricted", MEMBER, {})
    check_contribute("restricted", Standing(signed_in=True, role="member", approved=True), {})
    check_contribute("restricted", MODERATOR, {})
    until = datetime.now(UTC) + timedelta(hours=1)
    banned = Standing(signed_in=True, role="member", banned=True, banned_until=until)
    with pytest.raises(Banned) as err:
        check_contribute("public", banned, {})
    assert err.value.code == "banned" and err.value.details["until"] == until.isoformat()
    with pytest.raises(Banned):
        check_vote("public", banned, {})
    muted = Standing(signed_in=True, muted=True)
    with pytest.raises(Muted):
        check_contribute("public", muted, {})
    check_vote("public", muted, {})  # a mute still lets one vote


def test_removed_shows_to_the_privileged_only_and_deleted_to_no_one():
    view = {"title": "t", "author": "a", "body": "b", "url": None}
    assert show_post(view, deleted=False, removed=True, privileged=False)["body"] == REMOVED
    assert show_post(view, deleted=False, removed=True, privileged=True) == view
    gone = show_post(view, deleted=True, removed=False, privileged=True)
    assert gone["title"] == gone["author"] == gone["body"] == "[deleted]"


def test_the_comment_count_keeps_each_authors_share():
    post = a_post()
    fold = content.CountFold(None, timedelta(days=1))
    first, second = a_comment(post), a_comment(post, path="000002")
    for c in (first, second, a_comment(post, path="000003", author_id=first.author_id)):
        fold.apply(c)
    (count,) = fold.emit()
    assert count.count == 3
    assert dict(count.authors) == {first.author_id: 2, second.author_id: 1}


def test_a_removed_post_leaves_every_set_until_approved_whatever_the_order():
    post = a_post()
    fold = ranking.RankFold(None)
    fold.apply(ranking.Hide(post.post_id, post.community_id, removed=True))  # replayed first
    fold.apply(ranking.PostSeen(post.post_id, post.community_id, post.created_at))
    assert [u.hidden for u in fold.emit()] == [True, True]
    assert fold.notify_at() is None
    fold.apply(ranking.Hide(post.post_id, post.community_id, removed=False))
    (back,) = fold.emit()
    assert not back.hidden and "all" in back.windows_in
    fold.apply(ranking.Hide(post.post_id, post.community_id, deleted=True))
    fold.apply(ranking.Hide(post.post_id, post.community_id, removed=False))
    assert all(u.hidden for u in fold.emit())  # a deletion is for good


def test_no_one_hears_of_a_shadow_banned_author_and_private_threads_stay_inside():
    at = datetime.now(UTC)
    item = Item("c1", "p1", "author", "name", "hi u/x", None, at, "community")
    planned = [
        Notification("n1", "member", "mention", "author", "name", "c1", "p1", "hi", at),
        Notification("n2", "outsider", "mention", "author", "name", "c1", "p1", "hi", at),
    ]
    assert audience(planned, item, False, set(), False) == planned
    assert [n.recipient_id for n in audience(planned, item, True, {"member"}, False)] == ["member"]
    assert audience(planned, item, False, set(), True) == []
