"""Domain checks of an event's ids, applied when a dataflow decodes a record.

The schema says an id is a string; the dataflows route and key by what an id means
(a post id carries its community, a comment id its post). An event whose ids do not
agree with each other would be written under the wrong shard or partition, or make a
timer raise later, so it is refused here, where it becomes a dead letter with the
reason, before any state or store sees it.
"""

from __future__ import annotations

from domain.ids import community_of_post, is_valid_id, post_of_comment
from schemas.events import (
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    CommunityCreated,
    CommunityUpdated,
    ContentModerated,
    MediaUploaded,
    MemberSanctioned,
    MembershipChanged,
    Payload,
    PostCreated,
    PostDeleted,
    PostEdited,
    PostFlaired,
    PostLocked,
    PostPinned,
    ReportFiled,
    ScoreChanged,
    VoteCast,
    VoteExcluded,
)


class InconsistentIds(ValueError):
    """Ids that do not parse, or that contradict each other."""


def check_ids(payload: Payload) -> None:
    """Raise InconsistentIds when the payload's ids cannot be what they claim."""
    # Votes and scores first: they are most of every hot dataflow's records.
    if isinstance(payload, VoteCast | ScoreChanged | VoteExcluded):
        if payload.target_type == "post":
            _post_in(payload.target_id, payload.community_id)
        else:
            _comment_in(payload.target_id, _post_of(payload.target_id), payload.community_id)
    elif isinstance(payload, PostCreated | PostEdited | PostDeleted | PostLocked | PostFlaired):
        _post_in(payload.post_id, payload.community_id)
    elif isinstance(payload, CommentCreated | CommentEdited | CommentDeleted):
        _comment_in(payload.comment_id, payload.post_id, payload.community_id)
        parent = payload.parent_id if isinstance(payload, CommentCreated) else None
        if parent is not None:
            _comment_in(parent, payload.post_id, payload.community_id)
    elif isinstance(payload, ContentModerated | ReportFiled):
        if payload.target_type == "post":
            _post_in(payload.target_id, payload.community_id)
        else:
            _comment_in(payload.target_id, _post_of(payload.target_id), payload.community_id)
        if isinstance(payload, ContentModerated) and payload.target_type == "post":
            if payload.post_id != payload.target_id:
                raise InconsistentIds("a moderated post's post_id must be its target_id")
    elif isinstance(payload, PostPinned):
        _community(payload.community_id)
        for post_id in {payload.post_id, *payload.pins}:
            _post_in(post_id, payload.community_id)
    elif isinstance(payload, CommunityCreated | CommunityUpdated | MembershipChanged):
        _community(payload.community_id)
    elif isinstance(payload, MemberSanctioned):
        _community(payload.community_id)
    elif isinstance(payload, MediaUploaded):
        if not is_valid_id(payload.media_id):
            raise InconsistentIds(f"media_id {payload.media_id[:80]!r} is not an id")
        if not payload.key.startswith(f"media/{payload.media_id}."):
            raise InconsistentIds("an upload's key must be its own object")


def _community(community_id: str) -> None:
    if not is_valid_id(community_id):
        raise InconsistentIds(f"community_id {community_id[:80]!r} is not an id")


def _post_in(post_id: str, community_id: str) -> None:
    try:
        owner = community_of_post(post_id)
    except Exception:
        raise InconsistentIds(f"post id {post_id[:80]!r} does not parse") from None
    if owner != community_id:
        raise InconsistentIds(f"post {post_id[:80]!r} is not in community {community_id[:80]!r}")


def _post_of(comment_id: str) -> str:
    try:
        return post_of_comment(comment_id)
    except Exception:
        raise InconsistentIds(f"comment id {comment_id[:80]!r} does not parse") from None


def _comment_in(comment_id: str, post_id: str, community_id: str) -> None:
    if _post_of(comment_id) != post_id:
        raise InconsistentIds(f"comment {comment_id[:80]!r} is not under post {post_id[:80]!r}")
    _post_in(post_id, community_id)
