"""Uploads: the image is received streamed, judged from its bytes, stripped of its
metadata and stored in the public bucket, then recorded `pending` with its
`media.uploaded` event (outbox); the media dataflow makes the thumbnail."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from typing import IO, Any

from api.security import Principal
from domain import images
from domain.errors import DomainError, NotFound, ValidationFailed
from domain.ids import new_id
from schemas.envelope import new_event
from schemas.events import MediaUploaded
from stores.media import MediaRow, MediaStore
from stores.objects import ObjectStore, original_key


class RejectedImage(DomainError):
    """An image refused for what its bytes are (status and code from domain.images)."""

    def __init__(self, reason: images.ImageRejected) -> None:
        super().__init__(str(reason), {"file": reason.code})
        self.status = reason.status
        self.code = reason.code


class MediaNotUsable(DomainError):
    status = 422
    code = "media_not_ready"


class MediaService:
    def __init__(
        self, media: MediaStore, objects: ObjectStore, max_pixels: int, concurrency: int
    ) -> None:
        self.media = media
        self.objects = objects
        self.max_pixels = max_pixels
        # Decoding is the memory-hungry part: a few at a time per process.
        self.decoding = asyncio.Semaphore(concurrency)

    def _strip_and_store(
        self, upload: IO[bytes], media_id: str
    ) -> tuple[images.Stripped, str, int]:
        with tempfile.SpooledTemporaryFile(max_size=1 << 20) as clean:
            try:
                stripped = images.strip(upload, clean, self.max_pixels)
            except images.ImageRejected as exc:
                raise RejectedImage(exc) from None
            size = clean.tell()
            clean.seek(0)
            key = original_key(media_id, stripped.extension)
            self.objects.put_file(key, clean, stripped.content_type)
        return stripped, key, size

    async def upload(self, principal: Principal, upload: IO[bytes], size: int) -> dict[str, Any]:
        if size == 0:
            raise ValidationFailed("the file is empty", {"file": "empty"})
        media_id = new_id()
        async with self.decoding:
            stripped, key, stored = await asyncio.to_thread(self._strip_and_store, upload, media_id)
        now = datetime.now(UTC)
        event = new_event(
            MediaUploaded(
                media_id=media_id,
                owner_id=principal.user_id,
                key=key,
                content_type=stripped.content_type,  # type: ignore[arg-type]
                size=stored,
                width=stripped.width,
                height=stripped.height,
                uploaded_at=now,
            ),
            key=media_id,
        )
        row = MediaRow(
            media_id,
            principal.user_id,
            "pending",
            stripped.content_type,
            stored,
            stripped.width,
            stripped.height,
            key,
            None,
            None,
            None,
            None,
            now,
        )
        await self.media.create(row, event)
        return {"media_id": media_id, "status": "pending"}

    def view(self, row: MediaRow) -> dict[str, Any]:
        return {
            "media_id": row.media_id,
            "status": row.status,
            "url": self.objects.url(row.original_key),
            "thumbnail_url": self.objects.url(row.thumbnail_key) if row.thumbnail_key else None,
            "width": row.width,
            "height": row.height,
            "thumbnail_width": row.thumb_width,
            "thumbnail_height": row.thumb_height,
            "content_type": row.content_type,
            "size": row.size,
            "created_at": row.created_at,
        }

    async def get(self, principal: Principal, media_id: str) -> dict[str, Any]:
        row = await self.media.get(media_id)
        if row is None or row.owner_id != principal.user_id:
            raise NotFound("media not found", {"media_id": media_id})
        return self.view(row)

    async def usable(self, principal: Principal, media_id: str) -> MediaRow:
        """The author's own upload, ready: what a media post needs (422 otherwise)."""
        row = await self.media.get(media_id)
        if row is None or row.owner_id != principal.user_id:
            raise MediaNotUsable("media_id is not an upload of yours", {"media_id": "unknown"})
        if row.status != "ready":
            raise MediaNotUsable(f"the upload is {row.status}", {"media_id": row.status})
        return row
