"""Uploads end to end: API (streamed multipart) -> MinIO -> outbox -> media dataflow ->
thumbnail in MinIO and status in Postgres -> API; objects checked with boto3."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from stores.objects import client as s3_client
from tests.e2e.conftest import Client, User
from tests.images import GPS_IFD, animated_gif, photo, png_header_only, polyglot
from tests.processes import wait_for


def upload(
    client: Client, user: User, data: bytes, name: str = "a.bin", declared: str = "image/png"
) -> httpx.Response:
    return client.http.post("/media", files={"file": (name, data, declared)}, headers=user.headers)


def ready(client: Client, user: User, media_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        r = client.http.get(f"/media/{media_id}", headers=user.headers)
        assert r.status_code == 200, r.text
        found.update(r.json())
        return found["status"] in ("ready", "failed")

    wait_for(done, timeout=60, what=f"upload {media_id} to be processed")
    return found


def s3_object(settings, url: str) -> bytes:
    key = url.split(f"/{settings.s3_bucket}/", 1)[1]
    s3 = s3_client(settings)
    return s3.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def uploader(client: Client) -> User:
    return client.register("img")


@pytest.mark.parametrize(
    ("data", "content_type", "size"),
    [
        (photo(1200, 800, "JPEG"), "image/jpeg", (1200, 800)),
        (photo(640, 960, "PNG"), "image/png", (640, 960)),
        (photo(300, 200, "GIF"), "image/gif", (300, 200)),
        (photo(800, 400, "WEBP"), "image/webp", (800, 400)),
        (animated_gif(), "image/gif", (400, 200)),
    ],
)
def test_every_supported_type_becomes_ready_with_a_thumbnail(
    client, uploader, settings, data, content_type, size
):
    # the declared type lies (always image/png) and the name says nothing: bytes decide
    r = upload(client, uploader, data, name="upload.txt")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    media = ready(client, uploader, r.json()["media_id"])
    assert media["status"] == "ready"
    assert media["content_type"] == content_type
    assert (media["width"], media["height"]) == size
    original = Image.open(io.BytesIO(s3_object(settings, media["url"])))
    assert original.size == size
    assert not original.getexif().get_ifd(GPS_IFD)
    thumb_bytes = s3_object(settings, media["thumbnail_url"])
    thumb = Image.open(io.BytesIO(thumb_bytes))
    expected_width = min(320, size[0])
    assert thumb.format == "JPEG"
    assert thumb.size == (expected_width, round(size[1] * expected_width / size[0]))
    assert thumb.quantization[0][0] == 5  # type: ignore[attr-defined]  # quality 85
    # the URLs work without credentials
    for url in (media["url"], media["thumbnail_url"]):
        assert httpx.get(url, timeout=10).status_code == 200


def test_gps_never_reaches_storage(client, uploader, settings):
    r = upload(client, uploader, photo(1000, 750, "JPEG", gps=True), declared="image/jpeg")
    assert r.status_code == 202
    media = ready(client, uploader, r.json()["media_id"])
    stored = s3_object(settings, media["url"])
    assert b"SpyCam" not in stored and b"Exif" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "validation_failed"),
        (b"just some text pretending to be a picture", 415, "unsupported_media_type"),
        (b"%PDF-1.7\n" + b"0" * 5000, 415, "unsupported_media_type"),
        (photo(800, 600, gps=False)[:5000], 400, "invalid_image"),
        (png_header_only(50_000, 50_000), 413, "too_many_pixels"),
    ],
    ids=["zero-byte", "text", "pdf", "truncated", "50k-square-png"],
)
def test_bad_inputs_are_refused_with_a_clear_4xx(client, uploader, data, status, code):
    r = upload(client, uploader, data)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_a_polyglot_is_stored_as_the_image_alone(client, uploader, settings):
    r = upload(client, uploader, polyglot(), declared="application/zip")
    assert r.status_code == 202
    media = ready(client, uploader, r.json()["media_id"])
    assert media["content_type"] == "image/jpeg"
    assert b"<script>" not in s3_object(settings, media["url"])


def test_a_huge_file_is_413_and_nothing_is_stored(client, uploader, settings):
    huge = b"\xff\xd8\xff" + b"\x00" * (settings.media_max_bytes + 10)
    r = upload(client, uploader, huge)  # Content-Length says it all: refused unread
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Any:  # no Content-Length: refused once the limit is passed
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=x\r\n\r\n"
        for _ in range(settings.media_max_bytes // (1 << 20) + 2):
            yield b"\x00" * (1 << 20)
        yield b"\r\n--b--\r\n"

    try:
        streamed = client.http.post(
            "/media",
            content=chunks(),
            headers={**uploader.headers, "Content-Type": "multipart/form-data; boundary=b"},
        )
    except httpx.HTTPError:  # the server may close the connection after answering
        return
    assert streamed.status_code == 413


def test_uploads_need_a_signed_in_user_and_a_file_part(client, uploader):
    assert client.http.post("/media", files={"file": ("a", b"x")}).status_code == 401
    r = client.http.post("/media", files={"other": ("a", photo(10, 10))}, headers=uploader.headers)
    assert r.status_code == 400
    r = client.http.post("/media", json={"file": "x"}, headers=uploader.headers)
    assert r.status_code == 400


def test_an_upload_is_private_to_its_owner(client, uploader):
    r = upload(client, uploader, photo(100, 100, gps=False))
    media_id = r.json()["media_id"]
    other = client.register("peek")
    assert client.http.get(f"/media/{media_id}", headers=other.headers).status_code == 404
    assert client.http.get(f"/media/{media_id}").status_code == 401
    assert client.http.get("/media/nope", headers=uploader.headers).status_code == 404


def test_a_media_post_end_to_end(client, uploader, settings):
    r = upload(client, uploader, photo(1600, 900, "JPEG"))
    media = ready(client, uploader, r.json()["media_id"])
    community = client.community(uploader)
    other = client.register("thief")
    # someone else's upload, or none, is refused
    for who, media_id in ((other, media["media_id"]), (uploader, "0" * 26)):
        bad = client.http.post(
            f"/communities/{community}/posts",
            json={"title": "look", "kind": "media", "media_id": media_id},
            headers=who.headers,
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["code"] == "media_not_ready"
    created = client.http.post(
        f"/communities/{community}/posts",
        json={"title": "look at this", "kind": "media", "media_id": media["media_id"]},
        headers=uploader.headers,
    )
    assert created.status_code == 202, created.text
    post_id = created.json()["post_id"]
    wait_for(
        lambda: client.http.get(f"/posts/{post_id}").status_code == 200,
        timeout=60,
        what="the media post",
    )
    post = client.get_post(post_id)
    assert post["kind"] == "media"
    assert post["thumbnail_url"] == media["thumbnail_url"]
    assert post["media"] == {
        "media_id": media["media_id"],
        "url": media["url"],
        "thumbnail_url": media["thumbnail_url"],
    }

    def listed() -> list[str | None] | None:  # the listing is the ranking dataflow's
        items = client.listing(f"/communities/{community}/posts?sort=new")["items"]
        found = [p["thumbnail_url"] for p in items if p["post_id"] == post_id]
        return found or None

    assert wait_for(listed, timeout=60, what="the media post listed") == [media["thumbnail_url"]]
    assert httpx.get(post["thumbnail_url"], timeout=10).status_code == 200
