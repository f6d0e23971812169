"""Who is notified of a post or comment: the replied-to author and `u/name` mentions.

One notification per user per item: the replied-to author gets a `reply` (which wins
over a mention of them), every other existing user named gets a `mention`, the author
never notifies themself. Ids are derived from (item, recipient) and the item's time,
so the same event planned twice gives the same notifications (idempotent sinks).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ulid import ULID

# u/name or /u/name, not inside a word or a URL path; names as registration allows.
MENTION = re.compile(r"(?<![A-Za-z0-9_/])/?u/([A-Za-z0-9_]{3,20})(?![A-Za-z0-9_])")
SNIPPET_CHARS = 140

Kind = Literal["reply", "mention", "mod_action"]


def extract_mentions(text: str) -> list[str]:
    """Lower-cased names mentioned in `text`, each once, in order of appearance."""
    return list(dict.fromkeys(m.lower() for m in MENTION.findall(text)))


@dataclass(frozen=True)
class Item:
    """A post or comment as far as notifications care."""

    target_id: str
    post_id: str
    author_id: str
    author_name: str
    text: str
    reply_to: str | None  # the author it replies to (None: no reply notification)
    created_at: datetime
    community_id: str = ""  # who may be told of it depends on the community (see below)


@dataclass(frozen=True)
class Notification:
    notification_id: str
    recipient_id: str
    kind: str
    actor_id: str
    actor_name: str
    target_id: str
    post_id: str
    snippet: str
    created_at: datetime


def notification_id(target_id: str, recipient_id: str, at: datetime) -> str:
    """Time-ordered like every id, and the same for the same (item, recipient)."""
    digest = hashlib.sha256(f"{target_id}|{recipient_id}".encode()).digest()
    millis = int(at.timestamp() * 1000)
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))


def plan(item: Item, users: dict[str, str]) -> list[Notification]:
    """Notifications for `item`; `users` maps lower-cased names to ids of existing users."""
    kinds: dict[str, str] = {}
    if item.reply_to and item.reply_to != item.author_id:
        kinds[item.reply_to] = "reply"
    for name in extract_mentions(item.text):
        user_id = users.get(name)
        if user_id and user_id != item.author_id and user_id not in kinds:
            kinds[user_id] = "mention"
    snippet = item.text[:SNIPPET_CHARS]
    return [
        Notification(
            notification_id(item.target_id, recipient, item.created_at),
            recipient,
            kind,
            item.author_id,
            item.author_name,
            item.target_id,
            item.post_id,
            snippet,
            item.created_at,
        )
        for recipient, kind in kinds.items()
    ]


@dataclass(frozen=True)
class ModAction:
    """A moderator removed the author's post or comment."""

    target_id: str
    post_id: str
    community_id: str
    author_id: str
    actor_id: str
    actor_name: str
    reason: str
    at: datetime


def plan_mod_action(action: ModAction) -> list[Notification]:
    if not action.author_id or action.author_id == action.actor_id:
        return []
    snippet = f"removed by a moderator: {action.reason}" if action.reason else "removed"
    return [
        Notification(
            notification_id(f"mod:{action.target_id}", action.author_id, action.at),
            action.author_id,
            "mod_action",
            action.actor_id,
            action.actor_name or "moderator",
            action.target_id,
            action.post_id,
            snippet[:SNIPPET_CHARS],
            action.at,
        )
    ]


def audience(
    planned: list[Notification], item: Item, private: bool, members: set[str], silenced: bool
) -> list[Notification]:
    """Who of the planned recipients may be told: nobody when the author is shadow-banned
    there (`silenced`); in a private community only its members (a snippet is content)."""
    if silenced:
        return []
    if private:
        return [n for n in planned if n.recipient_id in members]
    return planned
