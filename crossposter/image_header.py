"""Is this file an image that can be posted? Answered from its structure, without Pillow, when that is certain.

`preview` is the first thing every user runs and must start in a blink, but
Pillow and its format plugins cost about 40 ms to import: more than the rest of
the preview's own work (benchmarks/cold_start.py). So the preview recognises
the formats people post (JPEG, PNG, GIF, WebP) by their signature and walks
their container structure where that is cheap and certain: PNG chunks up to
IEND, JPEG markers up to the image data, the GIF screen descriptor, the WebP
RIFF size. That finds non-images, empty, unreadable and cut-off files.

Anything this module is not sure about (an unknown signature, a format Pillow
may still read such as BMP or TIFF, a JPEG above Pillow's own pixel limit) is
handed to Pillow (`images.inspect_image`), so a verdict never differs from Pillow's for
lack of looking. Above `image_limits.MAX_PIXELS` a PNG, GIF or WebP is refused from its
header, as `images` refuses it, before anything is decoded. An animation (GIF,
APNG, WebP) is a warning: only its first frame is posted. What only a full decode finds (a JPEG whose compressed data is
damaged) is left to `images.check_image`, which `post`, `check` and the daemon
run in their pre-flight before anything is posted.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO

from crossposter import image_limits
from crossposter.image_limits import animated, too_many_pixels

_CUT_SHORT = "the file is cut short (truncated); re-export it from an image editor"


class _Unsure(Exception):
    """This module cannot give a certain verdict; Pillow must look."""


class _Verdict(Exception):
    """A certain verdict found before the walk is done (too many pixels)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def problem(path: Path) -> str | None:
    """None when `path` is structurally a whole image, else what is wrong (without the path)."""
    return inspect(path)[0]


def inspect(path: Path) -> tuple[str | None, str | None]:
    """(what makes `path` unusable or None, what is worth a warning or None): an animation is posted as its
    first frame."""
    note: list[str] = []
    try:
        # without blocking: a FIFO named like an image would hang the preview; only a regular file is read
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return "not a regular file (a folder, a FIFO or a device); give an image file", None
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(30)
            if not head:
                return "the file is empty; add the image or fix the path", None
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                return _png(f, size, note), _first(note)
            if head.startswith(b"\xff\xd8\xff"):
                return _jpeg(f, size), None
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return _gif(f, head, size, note), _first(note)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp(head, size, note), _first(note)
    except PermissionError:
        return "permission denied", None
    except OSError as e:
        return f"cannot read the file ({e.strerror or e})", None
    except _Verdict as v:
        return v.problem, None
    except _Unsure:
        pass
    from crossposter.images import inspect_image

    return inspect_image(path)


def _first(notes: list[str]) -> str | None:
    return notes[0] if notes else None


#: Above this many pixels Pillow warns about decompression bombs (its MAX_IMAGE_PIXELS); let it judge a JPEG.
_PILLOW_MAX_PIXELS = 89_478_485


def _check_pixels(width: int, height: int, jpeg: bool = False) -> None:
    if jpeg:  # any size up to Pillow's own limit is checked (at a reduced scale) before posting
        if width * height > _PILLOW_MAX_PIXELS:
            raise _Unsure
    elif width * height > image_limits.MAX_PIXELS:
        raise _Verdict(too_many_pixels(width, height))


def _png(f: BinaryIO, size: int, note: list[str]) -> str | None:
    """Walk the chunks (length, type, data, CRC) from the signature to IEND; the first must be IHDR.

    An `acTL` chunk makes it an animated PNG (APNG), posted as its first frame."""
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
        elif kind == b"acTL" and not seen_data:
            note.append(animated("PNG"))
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
            _check_pixels(width, height, jpeg=True)
            framed = True
        pos += length
        if pos > size:
            return _CUT_SHORT
        if marker == 0xDA:  # start of scan: the compressed data follows, only decoding can judge it
            if not framed:
                raise _Unsure
            return None if pos < size else _CUT_SHORT


def _gif(f: BinaryIO, head: bytes, size: int, note: list[str]) -> str | None:
    """Signature and logical screen descriptor, then the blocks up to a second image (an animation).

    The frames' compressed data is Pillow's to judge when posting; anything unexpected in the block
    structure is left to Pillow too.
    """
    if size < 14:  # header (6) + screen descriptor (7) + at least a trailer
        return _CUT_SHORT
    width, height = struct.unpack("<HH", head[6:10])
    if not width or not height:
        raise _Unsure
    _check_pixels(width, height)
    flags = head[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global colour table
    frames = 0
    while pos < size:
        f.seek(pos)
        kind = f.read(1)
        if kind == b"\x3b":  # trailer
            return None
        if kind == b"\x21":  # extension: label, then data sub-blocks
            pos = _gif_blocks(f, pos + 2, size)
        elif kind == b"\x2c":  # image: descriptor, local colour table, LZW code size, data sub-blocks
            frames += 1
            if frames == 2:
                note.append(animated("GIF"))
                return None
            desc = f.read(9)
            if len(desc) < 9:
                return _CUT_SHORT
            local = desc[8]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
            pos = _gif_blocks(f, pos, size)
        else:
            raise _Unsure
    raise _Unsure  # no trailer: Pillow decides whether what is there is enough


def _gif_blocks(f: BinaryIO, pos: int, size: int) -> int:
    """The offset after the data sub-blocks starting at `pos` (each: a length byte, then that many bytes)."""
    while True:
        f.seek(pos)
        n = f.read(1)
        if not n:
            raise _Unsure
        pos += 1 + n[0]
        if not n[0]:
            return pos
        if pos > size:
            raise _Unsure


def _webp(head: bytes, size: int, note: list[str]) -> str | None:
    """The RIFF header says how long the file is; a shorter file was cut. The first chunk gives the size
    (and, for the extended format, whether it is an animation)."""
    (declared,) = struct.unpack("<I", head[4:8])
    if size < 8 + declared or declared < 12:
        return _CUT_SHORT if size < 8 + declared else "damaged WebP file; re-export it from an image editor"
    chunk = head[12:16]
    if chunk not in (b"VP8 ", b"VP8L", b"VP8X") or len(head) < 30:
        raise _Unsure
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        if head[20] & 0x02:
            note.append(animated("WebP"))
    elif chunk == b"VP8L":
        if head[20] != 0x2F:
            raise _Unsure
        bits = int.from_bytes(head[21:25], "little")
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    else:
        if head[23:26] != b"\x9d\x01\x2a":
            raise _Unsure
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        height = int.from_bytes(head[28:30], "little") & 0x3FFF
    _check_pixels(width, height)
    return None
