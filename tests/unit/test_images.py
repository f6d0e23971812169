"""Judging, stripping and thumbnailing images (domain.images), no servers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from domain import images
from tests.images import GPS_IFD, MAKE, animated_gif, photo, png_header_only, polyglot


def strip(
    data: bytes, max_pixels: int = images.DEFAULT_MAX_PIXELS
) -> tuple[images.Stripped, bytes]:
    out = io.BytesIO()
    result = images.strip(io.BytesIO(data), out, max_pixels)
    return result, out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_each_supported_type_is_judged_from_its_bytes(fmt, content_type):
    result, clean = strip(photo(640, 480, fmt))
    assert (result.content_type, result.width, result.height) == (content_type, 640, 480)
    assert Image.open(io.BytesIO(clean)).format == fmt


def test_exif_and_gps_never_survive():
    original = photo()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # it was there
    _result, clean = strip(original)
    kept = Image.open(io.BytesIO(clean))
    assert not kept.getexif().get_ifd(GPS_IFD)
    assert MAKE not in kept.getexif()
    assert b"SpyCam" not in clean and b"Exif" not in clean


def test_png_text_and_gif_comments_are_dropped():
    _r, png = strip(photo(200, 100, "PNG"))
    _r, gif = strip(photo(200, 100, "GIF"))
    _r, anim = strip(animated_gif())
    for clean in (png, gif, anim):
        assert b"Secret Street" not in clean and b"secret comment" not in clean
    assert getattr(Image.open(io.BytesIO(anim)), "n_frames", 1) == 3


def test_a_polyglot_loses_what_trails_the_image():
    _r, clean = strip(polyglot())
    assert b"PK" not in clean[-200:] and b"<script>" not in clean


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"%PDF-1.7 trailer"])
def test_anything_else_is_unsupported(data):
    with pytest.raises(images.Unsupported):
        strip(data)


def test_a_truncated_image_is_broken():
    data = photo(800, 600, gps=False)
    with pytest.raises(images.Broken):
        strip(data[: len(data) // 2])


def test_a_50k_square_png_header_is_refused_before_decoding():
    bomb = png_header_only(50_000, 50_000)
    assert len(bomb) < 2000
    with pytest.raises(images.TooManyPixels) as refused:
        strip(bomb)
    assert refused.value.status == 413


def test_the_pixel_limit_is_a_setting():
    with pytest.raises(images.TooManyPixels):
        strip(photo(400, 300), max_pixels=100_000)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1200, 800), (320, 213)),
        ((320, 1000), (320, 1000)),
        ((100, 50), (100, 50)),
        ((4000, 3), (320, 1)),
        ((2000, 4000), (320, 640)),
    ],
)
def test_thumbnail_size_keeps_the_aspect_and_never_enlarges(size, expected):
    assert images.thumbnail_size(*size) == expected


def test_thumbnails_are_lanczos_jpegs_at_q85():
    data, width, height = images.thumbnail(photo(2000, 1500, "PNG"))
    thumb = Image.open(io.BytesIO(data))
    assert (thumb.format, thumb.size, (width, height)) == ("JPEG", (320, 240), (320, 240))
    # q85's luminance table: its first quantiser is 5 (q75 would give 8, q95 2)
    assert thumb.quantization[0][0] == 5  # type: ignore[attr-defined]
    expected = (
        Image.open(io.BytesIO(photo(2000, 1500, "PNG")))
        .convert("RGB")
        .resize((320, 240), Image.Resampling.LANCZOS)
    )
    got, want = thumb.convert("L").tobytes(), expected.convert("L").tobytes()
    diff = sum(abs(a - b) for a, b in zip(got, want, strict=True))
    assert diff / (320 * 240) < 3  # the same picture, up to JPEG's loss


def test_a_transparent_png_thumbnail_is_flattened_on_white():
    image = Image.new("RGBA", (640, 320), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    data, _w, _h = images.thumbnail(out.getvalue())
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((10, 10)) == (255, 255, 255)
