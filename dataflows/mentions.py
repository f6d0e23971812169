"""mentions: posts and comments -> reply and mention notifications, stored and pushed.

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

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import bytewax.operators as op
from bytewax.dataflow import Dataflow

from dataflows.common import Event, kafka_events
from dataflows.sinks import FunctionSink, ShardConnections
from domain.notifications import Item, Notification, extract_mentions, plan
from schemas.events import CommentCreated, CommentEdited, PostCreated
from schemas.push import notification_message, notification_view, unread_message
from schemas.topics import COMMENTS, POSTS
from stores import notifications as store
from stores.redis_store import inbox_channel, sync_client, unread_key
from stores.settings import Settings, get_settings

NAME = "mentions"
PUSH_WINDOW = timedelta(hours=24)  # older notifications wait in the inbox, unpushed


def notifiable(event: Event) -> Item | None:
    p = event.payload
    if isinstance(p, PostCreated):
        text = f"{p.title}\n{p.body or ''}"
        return Item(p.post_id, p.post_id, p.author_id, p.author_name, text, None, p.created_at)
    if isinstance(p, CommentCreated):
        return Item(
            p.comment_id,
            p.post_id,
            p.author_id,
            p.author_name,
            p.body,
            p.parent_author_id,
            p.created_at,
        )
    if isinstance(p, CommentEdited):  # mentions added by an edit (never a second reply)
        return Item(p.comment_id, p.post_id, p.author_id, p.author_name, p.body, None, p.edited_at)
    return None


async def existing_users(conn: asyncpg.Connection, names: set[str]) -> dict[str, str]:
    if not names:
        return {}
    rows = await conn.fetch(
        "SELECT lower(username) AS name, user_id FROM users"
        " WHERE lower(username) = ANY($1::text[]) AND deleted_at IS NULL",
        sorted(names),
    )
    return {r["name"]: r["user_id"] for r in rows}


def notification_sink(settings: Settings) -> FunctionSink[Item]:
    def factory() -> tuple[Callable[[list[Item]], None], Callable[[], None]]:
        connections = ShardConnections(settings)
        redis = sync_client(settings.redis_url)

        async def store_and_count(items: list[Item]) -> list[asyncpg.Record]:
            conn = await connections.conn(settings.identity_db)
            names = {n for item in items for n in extract_mentions(item.text)}
            users = await existing_users(conn, names)
            planned: list[Notification] = [n for item in items for n in plan(item, users)]
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
                pipe = redis.pipeline(transaction=False)
                for user_id, count in counts.items():
                    pipe.set(unread_key(user_id), count)
                    pipe.publish(inbox_channel(user_id), unread_message(count))
                pipe.execute()
            return fresh

        def write(batch: list[Item]) -> None:
            fresh = connections.run(store_and_count(batch))
            # Published once committed: a server that pushes one can mark it delivered.
            pipe = redis.pipeline(transaction=False)
            for row in fresh:
                pipe.publish(
                    inbox_channel(row["recipient_id"]),
                    notification_message(notification_view(row)),
                )
            pipe.execute()

        def close() -> None:
            connections.close()
            redis.close()

        return write, close

    return FunctionSink(factory)


def build_flow(tail: bool = True, settings: Settings | None = None) -> Dataflow:
    settings = settings or get_settings()
    flow = Dataflow(NAME)
    events = kafka_events(
        flow, NAME, settings.kafka_bootstrap, [POSTS.name, COMMENTS.name], tail=tail
    )
    items = op.filter_map("notifiable", events, notifiable)
    op.output("notifications_out", items, notification_sink(settings))
    return flow


def wipe(settings: Settings) -> None:
    """Drop the cached unread counts (recounted on demand); stored rows stay (see above)."""
    redis = sync_client(settings.redis_url)
    for key in redis.scan_iter(match="unread:*", count=1000):
        redis.delete(key)
    redis.close()
