"""How deleted, removed and shadow-banned content shows, decided in one place.

- Deleted by its author: title, body and author `[deleted]` for everyone (a deleted
  post keeps its comment tree).
- Removed by a moderator: title and body `[removed]` for everyone but its author and
  the moderators, who see it as it was, marked `removed: true`.
- Shadow-banned author: invisible to everyone but the author and the moderators; the
  author sees nothing different, moderators see it marked `shadow_banned: true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.comments import DELETED

REMOVED = "[removed]"


def show_post(
    view: Mapping[str, Any], *, deleted: bool, removed: bool, privileged: bool
) -> dict[str, Any]:
    """A post view as a reader sees it; `privileged`: its author or a moderator."""
    shown = dict(view)
    if deleted:
        shown.update(title=DELETED, author=DELETED, url=None)
        if "body" in shown:
            shown["body"] = DELETED
    elif removed and not privileged:
        shown.update(title=REMOVED, url=None)
        if "body" in shown:
            shown["body"] = REMOVED
    return shown


def show_comment_body(body: str, *, removed: bool, privileged: bool) -> str:
    return REMOVED if removed and not privileged else body
