"""Images: what an upload is (judged from its bytes), the copy of it that may be stored
(metadata stripped), and its thumbnail. Pillow does the decoding and encoding; this
module only decides.

- Type: Pillow identifies the bytes, restricted to JPEG, PNG, GIF and WebP; a file's
  name or declared type is never consulted. Anything else is `Unsupported` (415).
- Pixel limit: the header's width x height is checked before anything is decoded, so a
  50,000 x 50,000 PNG of a few kilobytes is refused (`TooManyPixels`, 413) without
  allocating its 7.5 GB; Pillow's own bomb check is set to the same limit.
- Stripping: the image is decoded in full (a truncated or corrupt file is `Broken`,
  400) and encoded again from its pixels, so EXIF (a photo's GPS position), XMP, IPTC,
  comments, text chunks and whatever trails the image (a polyglot's second file) are
  gone; the EXIF orientation is applied first so the picture still shows upright; the
  ICC colour profile is kept.
- Thumbnail: at most `THUMB_WIDTH` px wide, aspect kept, Lanczos, JPEG quality 85;
  never enlarged.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
THUMB_WIDTH = 320
THUMB_QUALITY = 85
DEFAULT_MAX_PIXELS = 50_000_000
# info keys that carry metadata rather than how to draw the image
METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "iptc", "dpi")


class ImageRejected(ValueError):
    status = 400
    code = "invalid_image"


class Unsupported(ImageRejected):
    status = 415
    code = "unsupported_media_type"


class TooManyPixels(ImageRejected):
    status = 413
    code = "too_many_pixels"


class Broken(ImageRejected):
    status = 400
    code = "invalid_image"


@dataclass(frozen=True)
class Stripped:
    format: str  # JPEG, PNG, GIF, WEBP
    width: int
    height: int
    frames: int

    @property
    def content_type(self) -> str:
        return FORMATS[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def _open(source: IO[bytes], max_pixels: int) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source, formats=list(FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(f"more than {max_pixels} pixels") from exc
    except UnidentifiedImageError as exc:
        raise Unsupported("not a JPEG, PNG, GIF or WebP image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise Broken(f"unreadable image: {exc}") from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise TooManyPixels(f"{width}x{height} is more than {max_pixels} pixels")
    return image


def strip(source: IO[bytes], target: IO[bytes], max_pixels: int = DEFAULT_MAX_PIXELS) -> Stripped:
    """Decode `source` and write a metadata-free copy of it to `target`."""
    image = _open(source, max_pixels)
    fmt = str(image.format)
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1 and image.size[0] * image.size[1] * frames > max_pixels * 4:
        raise TooManyPixels(f"{frames} frames of {image.size[0]}x{image.size[1]}")
    icc = image.info.get("icc_profile")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if frames > 1:
                _save_animation(image, fmt, target)
                width, height = image.size
            else:
                image.load()
                upright = ImageOps.exif_transpose(image)
                for key in METADATA_KEYS:
                    upright.info.pop(key, None)
                width, height = upright.size
                _save_still(upright, fmt, target, icc)
    except ImageRejected:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Broken(f"unreadable image: {exc}") from exc
    return Stripped(fmt, width, height, frames)


def _save_still(image: Image.Image, fmt: str, target: IO[bytes], icc: object) -> None:
    extra: dict[str, object] = {}
    if isinstance(icc, bytes) and fmt in ("JPEG", "PNG", "WEBP"):
        extra["icc_profile"] = icc
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(target, "JPEG", quality=92, optimize=True, **extra)
    elif fmt == "PNG":
        image.save(target, "PNG", **extra)
    elif fmt == "GIF":
        image.save(target, "GIF", comment=b"")
    else:
        image.save(target, "WEBP", quality=90, **extra)


def _save_animation(image: Image.Image, fmt: str, target: IO[bytes]) -> None:
    for key in METADATA_KEYS:
        image.info.pop(key, None)
    if fmt == "GIF":
        image.save(target, "GIF", save_all=True, comment=b"")
    elif fmt == "WEBP":
        image.save(target, "WEBP", save_all=True, quality=90)
    else:  # an animated PNG
        image.save(target, "PNG", save_all=True)


def thumbnail_size(width: int, height: int, max_width: int = THUMB_WIDTH) -> tuple[int, int]:
    """At most `max_width` wide, aspect kept, never enlarged, at least 1 x 1."""
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def thumbnail(source: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, int, int]:
    """The JPEG thumbnail of an image (its first frame) and its size."""
    image = _open(io.BytesIO(source), max_pixels)
    try:
        size = thumbnail_size(*image.size)
        if image.format == "JPEG":
            image.draft("RGB", (size[0] * 2, size[1] * 2))  # decode at a reduced scale
        image.load()
        if image.mode in ("RGBA", "LA", "P", "PA"):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            image = flat
        elif image.mode != "RGB":
            image = image.convert("RGB")
        small = image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, "JPEG", quality=THUMB_QUALITY)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Broken(f"no thumbnail: {exc}") from exc
    return out.getvalue(), size[0], size[1]
