"""media: media topic -> thumbnails in the object store and each upload's status.

For each `media.uploaded` the sink marks the upload `processing`, reads the stored
(already stripped) image, writes its thumbnail (`domain.images.thumbnail`: at most
320 px wide, Lanczos, JPEG q85) to `thumbs/{media_id}.jpg`, and marks it `ready` with
its dimensions. A thumbnail that cannot be made leaves the upload `ready` without one
(as the reference does); an image that is no longer in the store makes it `failed`.
Statuses only move forward and thumbnails are overwritten with the same bytes, so a
repeated or replayed event changes nothing. The object store being away is a
transient fault (the batch is retried), never a dead letter.

`python -m dataflows run media`.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import asyncpg
import bytewax.operators as op
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from dataflows.common import Event, SourceItem, events
from dataflows.guard import Guard, Traced
from domain import images
from schemas.events import DeadLetter, MediaUploaded
from schemas.topics import MEDIA
from stores import media as store
from stores.objects import ObjectStore, thumbnail_key
from stores.settings import Settings

NAME = "media"
TOPICS = [MEDIA.name]
MISSING = ("404", "NoSuchKey", "NotFound")


def uploaded(event: Event) -> MediaUploaded | None:
    return event.payload if isinstance(event.payload, MediaUploaded) else None


def _transient(exc: BaseException) -> BaseException:
    """botocore's own connection errors as the built-in kind the guard retries."""
    return ConnectionError(f"object store: {type(exc).__name__}: {exc}")


def process(objects: ObjectStore, upload: MediaUploaded, max_pixels: int) -> store.Outcome:
    """The upload's outcome; its thumbnail written when one could be made."""
    original = io.BytesIO()
    try:
        objects.download(upload.key, original)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING:
            return store.Outcome(upload.media_id, "failed", reason="the stored image is missing")
        raise _transient(exc) from exc
    except (BotoConnectionError, BotoCoreError) as exc:
        raise _transient(exc) from exc
    done = store.Outcome(upload.media_id, "ready", upload.width, upload.height)
    try:
        data, width, height = images.thumbnail(original.getvalue(), max_pixels)
    except Exception as exc:  # any failure to make it: the upload is still ready
        return store.Outcome(
            upload.media_id, "ready", upload.width, upload.height, reason=f"thumbnail: {exc}"
        )
    key = thumbnail_key(upload.media_id)
    try:
        objects.put_bytes(key, data, "image/jpeg")
    except (BotoConnectionError, BotoCoreError, ClientError) as exc:
        raise _transient(exc) from exc
    return store.Outcome(
        done.media_id, "ready", done.width, done.height, key, width, height, done.reason
    )


class MediaProcessor:
    def __init__(self, settings: Settings, objects: ObjectStore) -> None:
        self.dsn = settings.dsn(settings.identity_db)
        self.max_pixels = settings.media_max_pixels
        self.objects = objects
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None

    async def _record(self, outcomes: list[store.Outcome]) -> None:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.dsn)
        await store.record(self.conn, outcomes)

    def write(self, batch: list[MediaUploaded]) -> None:
        started = [store.Outcome(u.media_id, "processing") for u in batch]
        self.loop.run_until_complete(self._record(started))
        outcomes = [process(self.objects, u, self.max_pixels) for u in batch]
        self.loop.run_until_complete(self._record(outcomes))

    def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            self.loop.run_until_complete(self.conn.close())
        self.loop.close()
        self.objects.close()


@dataclass(frozen=True)
class Sinks:
    media: Sink[Traced[MediaUploaded]]


def build_flow(
    source: Source[SourceItem], sinks: Sinks, dead_letters: Sink[DeadLetter]
) -> Dataflow:
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    uploads = guard.map("uploaded", events(guard, flow, source), uploaded)
    op.output("media_out", uploads, sinks.media)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """Every upload back to pending: a replay derives each outcome again."""

    async def reset() -> None:
        conn = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            await store.reset_to_pending(conn)
        finally:
            await conn.close()

    asyncio.run(reset())
