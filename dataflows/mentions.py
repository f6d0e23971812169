"""mentions: posts and comments -> reply and mention notifications, stored and pushed;
moderators' removals -> `mod_action` notifications to the author.

No one is notified by a shadow-banned author's content, and a private community's
content notifies only its members (a snippet is content).

Each new post, comment or edit becomes an `Item`; the sink resolves the names it
mentions to existing users, plans the notifications (`domain/notifications.py`),
stores them (idempotent: one row per recipient per item), refreshes the recipients'
unread counts under their inbox locks, and publishes on each recipient's Redis
channel, from which the WebSocket servers push. A notification is published while
undelivered (at-least-once; the servers drop repeats per connection), so one whose
push was lost is still delivered when its user next connects.

`replay` keeps existing rows (their read and delivered marks are the users' state):
it fills in what is missing and recounts unread notifications.

`python -m dataflows run mentions`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink
from redis import Redis

from dataflows.common import Event, SourceItem, events
from dataflows.guard import Guard, Traced
from dataflows.sinks import ShardConnections
from domain.notifications import (
    Item,
    ModAction,
    Notification,
    audience,
    extract_mentions,
    plan,
    plan_mod_action,
)
from schemas.events import (
    CommentCreated,
    CommentEdited,
    ContentModerated,
    DeadLetter,
    PostCreated,
)
from schemas.push import notification_message, notification_view, unread_message
from schemas.topics import COMMENTS, MODERATION, POSTS
from stores import moderation
from stores import notifications as store
from stores.communities import private_members
from stores.redis_store import inbox_channel, sync_client, unread_key
from stores.settings import Settings
from stores.users import DELETED_NAME, deleted_user_ids, existing_users

NAME = "mentions"
TOPICS = [POSTS.name, COMMENTS.name, MODERATION.name]
PUSH_WINDOW = timedelta(hours=24)  # older notifications wait in the inbox, unpushed


def notifiable(event: Event) -> Item | ModAction | None:
    p = event.payload
    if isinstance(p, PostCreated):
        text = f"{p.title}\n{p.body or ''}"
        return Item(
            p.post_id,
            p.post_id,
            p.author_id,
            p.author_name,
            text,
            None,
            p.created_at,
            p.community_id,
        )
    if isinstance(p, CommentCreated):
        return Item(
            p.comment_id,
            p.post_id,
            p.author_id,
            p.author_name,
            p.body,
            p.parent_author_id,
            p.created_at,
            p.community_id,
        )
    if isinstance(p, CommentEdited):  # mentions added by an edit (never a second reply)
        return Item(
            p.comment_id,
            p.post_id,
            p.author_id,
            p.author_name,
            p.body,
            None,
            p.edited_at,
            p.community_id,
        )
    if isinstance(p, ContentModerated) and p.action == "remove":
        return ModAction(
            p.target_id,
            p.post_id,
            p.community_id,
            p.author_id,
            p.actor_id,
            p.actor_name,
            p.reason,
            p.at,
        )
    return None


class NotificationWriter:
    def __init__(self, connections: ShardConnections, identity_db: str, redis: Redis) -> None:
        self.connections = connections
        self.identity_db = identity_db
        self.redis = redis

    async def _store_and_count(self, batch: list[Item | ModAction]) -> list[asyncpg.Record]:
        conn = await self.connections.conn(self.identity_db)
        items = [i for i in batch if isinstance(i, Item)]
        # A deleted account's name never reaches a notification, live or replayed.
        gone = await deleted_user_ids(conn, sorted({i.author_id for i in items}))
        items = [replace(i, author_name=DELETED_NAME) if i.author_id in gone else i for i in items]
        names = {n for item in items for n in extract_mentions(item.text)}
        users = await existing_users(conn, names)
        communities = sorted({i.community_id for i in items})
        private = await private_members(conn, communities)
        silenced = await moderation.shadow_banned_in(
            conn, sorted({(i.community_id, i.author_id) for i in items})
        )
        planned: list[Notification] = [
            n
            for item in items
            for n in audience(
                plan(item, users),
                item,
                item.community_id in private,
                private.get(item.community_id, set()),
                (item.community_id, item.author_id) in silenced,
            )
        ]
        planned += [n for a in batch if isinstance(a, ModAction) for n in plan_mod_action(a)]
        if not planned:
            return []
        recipients = sorted({n.recipient_id for n in planned})
        async with conn.transaction():
            await store.lock_inboxes(conn, recipients)
            await store.insert(conn, planned)
            fresh = await store.undelivered(
                conn, [n.notification_id for n in planned], datetime.now(UTC) - PUSH_WINDOW
            )
            counts = await store.unread_counts(conn, recipients)
            # Still under the locks: no other writer's count can overtake these.
            pipe = self.redis.pipeline(transaction=False)
            for user_id, count in counts.items():
                pipe.set(unread_key(user_id), count)
                pipe.publish(inbox_channel(user_id), unread_message(count))
            pipe.execute()
        return fresh

    def write(self, batch: list[Item | ModAction]) -> None:
        fresh = self.connections.run(self._store_and_count(batch))
        # Published once committed: a server that pushes one can mark it delivered.
        pipe = self.redis.pipeline(transaction=False)
        for row in fresh:
            pipe.publish(
                inbox_channel(row["recipient_id"]),
                notification_message(notification_view(row)),
            )
        pipe.execute()

    def close(self) -> None:
        self.connections.close()
        self.redis.close()


@dataclass(frozen=True)
class Sinks:
    notifications: Sink[Traced[Item | ModAction]]


def build_flow(
    source: Source[SourceItem], sinks: Sinks, dead_letters: Sink[DeadLetter]
) -> Dataflow:
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    items: Stream[Traced[Item | ModAction]] = guard.map(
        "notifiable", events(guard, flow, source), notifiable
    )
    op.output("notifications_out", items, sinks.notifications)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """Drop the cached unread counts (recounted on demand); stored rows stay (see above)."""
    redis = sync_client(settings.redis_url)
    store.drop_cached_unread_counts(redis)
    redis.close()
