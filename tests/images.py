"""Test images made on the spot (Pillow), including hostile ones."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
MAKE = 0x010F


def photo(width: int = 1200, height: int = 800, fmt: str = "JPEG", gps: bool = True) -> bytes:
    """A noisy gradient (so it does not compress to nothing), with camera and GPS EXIF."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.merge(
        "RGB", (image.getchannel(0), image.getchannel(0).rotate(90), image.getchannel(0))
    )
    out = io.BytesIO()
    extra: dict[str, object] = {}
    if gps and fmt in ("JPEG", "PNG", "WEBP"):
        exif = Image.Exif()
        exif[MAKE] = "SpyCam 3000"
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (51.0, 30.0, 26.0), 3: "W", 4: (0.0, 7.0, 39.0)})
        extra["exif"] = exif.tobytes()
    if fmt == "PNG":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "taken at home, 1 Secret Street")
        extra["pnginfo"] = info
    if fmt == "GIF":
        image = image.convert("P")
        extra["comment"] = b"taken at home, 1 Secret Street"
    image.save(out, fmt, **extra)
    return out.getvalue()


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (400, 200), (i * 80, 20, 200 - i * 60)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(
        out,
        "GIF",
        save_all=True,
        append_images=images[1:],
        duration=100,
        loop=0,
        comment=b"secret comment",
    )
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def polyglot() -> bytes:
    """A JPEG with a ZIP archive appended (opens as either)."""
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    return photo(300, 200, gps=False) + archive.getvalue()
