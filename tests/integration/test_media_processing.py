"""The media dataflow's step against the real object store: a thumbnail that cannot be
made leaves the upload ready without one; a missing original fails it."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from PIL import Image

from dataflows.media import process
from domain.ids import new_id
from schemas.events import MediaUploaded
from stores.objects import ObjectStore, ensure_bucket, original_key, thumbnail_key
from tests.images import photo


def uploaded(media_id: str, key: str) -> MediaUploaded:
    return MediaUploaded(
        media_id=media_id,
        owner_id=new_id(),
        key=key,
        content_type="image/jpeg",
        size=10,
        width=1200,
        height=800,
        uploaded_at=datetime.now(UTC),
    )


def test_outcomes(settings):
    ensure_bucket(settings)
    objects = ObjectStore(settings)
    try:
        good, garbage, missing = new_id(), new_id(), new_id()
        objects.put_bytes(original_key(good, "jpg"), photo(1200, 800), "image/jpeg")
        objects.put_bytes(original_key(garbage, "jpg"), b"\xff\xd8\xff not really", "image/jpeg")

        done = process(objects, uploaded(good, original_key(good, "jpg")), 50_000_000)
        assert (done.status, done.thumbnail_key, done.thumb_width, done.thumb_height) == (
            "ready",
            thumbnail_key(good),
            320,
            213,
        )
        stored = io.BytesIO()
        objects.download(thumbnail_key(good), stored)
        assert Image.open(stored).size == (320, 213)

        no_thumb = process(objects, uploaded(garbage, original_key(garbage, "jpg")), 50_000_000)
        assert (no_thumb.status, no_thumb.thumbnail_key) == ("ready", None)
        assert no_thumb.reason and no_thumb.reason.startswith("thumbnail")
        assert not objects.exists(thumbnail_key(garbage))

        gone = process(objects, uploaded(missing, original_key(missing, "jpg")), 50_000_000)
        assert gone.status == "failed"
    finally:
        objects.close()
