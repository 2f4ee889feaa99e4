"""Is this file an image that can be posted? Answered from its structure, without Pillow, when that is certain.

`preview` is the first thing every user runs and must start in a blink, but
Pillow and its format plugins cost about 40 ms to import: more than the rest of
the preview's own work (benchmarks/cold_start.py). So the preview recognises
the formats people post (JPEG, PNG, GIF, WebP) by their signature and walks
their container structure where that is cheap and certain: PNG chunks up to
IEND, JPEG markers up to the image data, the GIF screen descriptor, the WebP
RIFF size. That finds non-images, empty, unreadable and cut-off files.

Anything this module is not sure about (an unknown signature, a format Pillow
may still read such as BMP or TIFF, a huge pixel count) is handed to Pillow
(`images.check_image`), so a verdict never differs from Pillow's for lack of
looking. What only a full decode finds (a JPEG whose compressed data is
damaged) is left to `images.check_image`, which `post`, `check` and the daemon
run in their pre-flight before anything is posted.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

#: Above this many pixels Pillow warns about decompression bombs (its MAX_IMAGE_PIXELS); let it judge.
_PILLOW_MAX_PIXELS = 89_478_485

_CUT_SHORT = "the file is cut short (truncated); re-export it from an image editor"


class _Unsure(Exception):
    """This module cannot give a certain verdict; Pillow must look."""


def problem(path: Path) -> str | None:
    """None when `path` is structurally a whole image, else what is wrong (without the path)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(16)
            if not head:
                return "the file is empty; add the image or fix the path"
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                return _png(f, size)
            if head.startswith(b"\xff\xd8\xff"):
                return _jpeg(f, size)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return _gif(head, size)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp(head, size)
    except PermissionError:
        return "permission denied"
    except OSError as e:
        return f"cannot read the file ({e.strerror or e})"
    except _Unsure:
        pass
    from crossposter.images import check_image

    return check_image(path)


def _check_pixels(width: int, height: int) -> None:
    if width * height > _PILLOW_MAX_PIXELS:
        raise _Unsure


def _png(f: BinaryIO, size: int) -> str | None:
    """Walk the chunks (length, type, data, CRC) from the signature to IEND; the first must be IHDR."""
    pos = 8
    seen_data = False
    first = True
    while True:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return _cut_png(seen_data)
        length, kind = struct.unpack(">I4s", header)
        if first:
            if kind != b"IHDR" or length != 13:
                raise _Unsure  # damaged; Pillow words it
            dims = f.read(8)
            if len(dims) < 8:
                return _CUT_SHORT
            width, height = struct.unpack(">II", dims)
            if not width or not height:
                raise _Unsure
            _check_pixels(width, height)
            first = False
        pos += 12 + length
        if pos > size:
            return _CUT_SHORT if kind == b"IDAT" else _cut_png(seen_data)
        if kind == b"IDAT":
            seen_data = True
        elif kind == b"IEND":
            return None if seen_data else _CUT_SHORT


def _cut_png(seen_data: bool) -> str:
    """A PNG cut after its image data may still decode (Pillow does not insist on IEND): let Pillow judge."""
    if seen_data:
        raise _Unsure
    return _CUT_SHORT


#: JPEG markers that stand alone, without a length: TEM and RST0–7 (SOI/EOI are handled where they occur).
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
#: Start-of-frame markers (they carry the image size); C4, C8 and CC are other tables.
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(f: BinaryIO, size: int) -> str | None:
    """Walk the marker segments after SOI up to the start of scan; the frame header must come first."""
    pos = 2
    framed = False
    while True:
        f.seek(pos)
        byte = f.read(1)
        if not byte:
            return _CUT_SHORT
        if byte != b"\xff":
            raise _Unsure  # not a marker where one must be: damaged, Pillow words it
        while byte == b"\xff":  # fill bytes before a marker
            byte = f.read(1)
            pos += 1
        if not byte:
            return _CUT_SHORT
        marker = byte[0]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker == 0xD9:  # EOI before any image data
            raise _Unsure
        raw = f.read(2)
        if len(raw) < 2:
            return _CUT_SHORT
        (length,) = struct.unpack(">H", raw)
        if length < 2:
            raise _Unsure
        if marker in _SOF:
            frame = f.read(5)
            if len(frame) < 5:
                return _CUT_SHORT
            _precision, height, width = struct.unpack(">BHH", frame)
            if not width or not height:
                raise _Unsure
            _check_pixels(width, height)
            framed = True
        pos += length
        if pos > size:
            return _CUT_SHORT
        if marker == 0xDA:  # start of scan: the compressed data follows, only decoding can judge it
            if not framed:
                raise _Unsure
            return None if pos < size else _CUT_SHORT


def _gif(head: bytes, size: int) -> str | None:
    """Signature and logical screen descriptor; the frames themselves are Pillow's to judge when posting."""
    if size < 14:  # header (6) + screen descriptor (7) + at least a trailer
        return _CUT_SHORT
    width, height = struct.unpack("<HH", head[6:10])
    if not width or not height:
        raise _Unsure
    _check_pixels(width, height)
    return None


def _webp(head: bytes, size: int) -> str | None:
    """The RIFF header says how long the file is; a shorter file was cut."""
    (declared,) = struct.unpack("<I", head[4:8])
    if size < 8 + declared or declared < 12:
        return _CUT_SHORT if size < 8 + declared else "damaged WebP file; re-export it from an image editor"
    if head[12:16] not in (b"VP8 ", b"VP8L", b"VP8X"):
        raise _Unsure
    return None
