"""Make a local image safe and small enough to upload.

Photos carry their owner's home in their GPS tags, so every image is decoded and
re-encoded from pixels only: nothing of the original file's metadata survives
except the colour profile. Platforms refuse blobs above their byte limit, so the
image is re-encoded (lower JPEG quality first, because that costs less detail
than fewer pixels) and then shrunk until it fits, always keeping the aspect ratio.

A publication needs the same file several times: the planner's pre-flight
decodes it (`check_image`), then every platform wants it at its own byte (and
pixel) limit. Inside a `shared_work()` scope each file is decoded and cleaned
once, every encoding is made once and reused by every limit that tries it (the
first JPEG/PNG attempt is the same at 1 MB, 5 MB and 16 MB), and `warm` does that
shared part while the log-in requests are on the wire. Outside a scope every call
starts from the file, as it always did. Files are told apart by their stat
(device, inode, size, mtime, ctime), so an edited or replaced file is read afresh.

Pillow is imported inside the functions: `preview` imports this module's
callers but must not pay for Pillow at start-up.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from crossposter.platforms.base import ImageUpload

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: JPEG qualities tried at each size before shrinking; below ~70 artefacts become visible.
_JPEG_QUALITIES = (90, 82, 74)
#: A transparent image is kept as PNG down to this fraction of its size before it is flattened to JPEG.
_PNG_MIN_SCALE = 0.5
#: Below this many pixels on the short side an image is useless; stop and report instead.
_MIN_SIDE = 32
#: Upper bound of re-encodes per image, so a pathological file cannot loop for minutes.
_MAX_ROUNDS = 12

_SUPPORTED = "JPEG, PNG, GIF or WebP"
#: Marks an image decoded at a reduced scale for a check: never used for posting.
_REDUCED = "crossposter_reduced"


class ImageError(Exception):
    """An image that cannot be uploaded; the message names the file and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _open_problem(path: Path, max_pixels: int | None = None) -> tuple[str | None, PILImage.Image | None, str | None]:
    """Open, verify and decode `path`: (problem, None, note) or (None, decoded image, note).

    A JPEG decoded at a reduced scale (see below) carries `_REDUCED` in its `info`.

    `verify()` catches broken PNG chunks but not a JPEG cut short, and it leaves
    the image unusable, hence the second open and a full `load()`. With `max_pixels` (a check), the size is
    read before decoding: a JPEG above it is decoded at a reduced scale (libjpeg's DCT scaling still reads
    and decodes every block of the file), any other image above it is refused. `note` says what is worth a
    warning: an animation is posted as its first frame.
    """
    from PIL import Image, UnidentifiedImageError

    from crossposter.image_limits import animated, too_many_pixels

    path = Path(path)
    if not path.exists():
        return "file not found", None, None
    if not path.is_file():
        return "not a file", None, None
    try:
        with Image.open(path) as probe:
            probe.verify()
    except UnidentifiedImageError:
        return f"not an image Pillow can read (use {_SUPPORTED})", None, None
    except Image.DecompressionBombError as e:
        return f"too many pixels to decode safely ({e})", None, None
    except PermissionError:
        return "permission denied", None, None
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, struct.error… on damage
        return f"damaged image file ({type(e).__name__}: {e})", None, None
    note = None
    try:
        img = Image.open(path)
        if getattr(img, "is_animated", False):
            note = animated({"WEBP": "WebP"}.get(img.format or "", img.format or "image"))
        width, height = img.size
        if max_pixels is not None and width * height > max_pixels:
            if img.format != "JPEG":
                img.close()
                return too_many_pixels(width, height), None, note
            scale = next(s for s in (2, 4, 8, 16) if width * height <= max_pixels * s * s)
            img.draft(img.mode, (max(1, width // scale), max(1, height // scale)))
            img.info[_REDUCED] = True
        img.load()
    except Image.DecompressionBombError as e:
        return f"too many pixels to decode safely ({e})", None, note
    except Exception as e:
        detail = str(e) or type(e).__name__
        return f"damaged or truncated image file ({detail}); re-export it from an image editor", None, note
    return None, img, note


def _has_alpha(img: PILImage.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return "transparency" in img.info


def _clean(img: PILImage.Image) -> tuple[PILImage.Image, bytes | None, bool]:
    """Pixels only, orientation applied: (image in L/RGB/RGBA, ICC profile to keep, has alpha)."""
    from PIL import ImageOps

    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)  # animations are posted as their first frame
    upright = ImageOps.exif_transpose(img)
    alpha = _has_alpha(upright)
    icc = upright.info.get("icc_profile")
    if alpha:
        pixels = upright.convert("RGBA")
    elif upright.mode in ("L", "RGB"):
        pixels = upright  # exif_transpose already returned a new image
    elif upright.mode in ("1", "I", "I;16", "I;16B", "I;16L", "F"):
        pixels = upright.convert("L")
        icc = None
    else:  # P, CMYK, YCbCr, LAB…: an RGB rendering; a CMYK profile would be wrong for RGB pixels
        if upright.mode != "P":
            icc = None
        pixels = upright.convert("RGB")
    # Fresh info: encoders read "comment", "icc_profile", "dpi" etc. from here; nothing else may travel.
    pixels.info = {}
    return pixels, (icc if isinstance(icc, bytes) and icc else None), alpha


def _resized(img: PILImage.Image, scale: float) -> PILImage.Image:
    from PIL import Image

    if scale >= 1.0:
        return img
    w, h = img.size
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _scaled_size(img: PILImage.Image, scale: float) -> tuple[int, int]:
    """The size `_resized(img, scale)` gives."""
    if scale >= 1.0:
        return img.size
    w, h = img.size
    return max(1, round(w * scale)), max(1, round(h * scale))


def _encode(img: PILImage.Image, fmt: str, icc: bytes | None, quality: int = 0, final: bool = True) -> bytes:
    """`final=False` for JPEG trials: optimal Huffman tables only ever make the file smaller, so the
    trial that fits is encoded once more with them instead of paying for them on every trial."""
    buf = io.BytesIO()
    kwargs: dict[str, object] = {}
    if icc:
        kwargs["icc_profile"] = icc
    if fmt == "JPEG":
        kwargs.update(quality=quality, optimize=final)
    else:
        kwargs.update(optimize=True)
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _flatten(img: PILImage.Image) -> PILImage.Image:
    """Transparent pixels on white: what a transparent logo looks like on a light timeline."""
    from PIL import Image

    base = Image.new("RGB", img.size, (255, 255, 255))
    base.paste(img, mask=img.getchannel("A"))
    return base


def _identity(path: Path) -> tuple[int, ...] | None:
    """What makes two looks at a file the same file with the same bytes; None when it is not a regular file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Unusable(Exception):
    """A source that cannot be prepared; the caller adds its own path to the problem."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _Source:
    """One file's decoded pixels and everything made of them. Callers hold `lock` while using it.

    Encodings are remembered by what determines their bytes (base image, size, format, quality,
    final): Pillow's encoders are deterministic, so a remembered encoding is exactly what encoding
    again would give, and every limit walks the same steps as `prepare_image` always did.
    """

    def __init__(self, path: Path, identity: tuple[int, ...] | None, shared: bool) -> None:
        self.path = path
        self.identity = identity
        self.shared = shared
        self.lock = threading.Lock()
        self._opened = False
        self._checked = False
        self.problem: str | None = None
        self.note: str | None = None
        self._img: PILImage.Image | None = None  # decoded, not yet cleaned
        self._clean: tuple[PILImage.Image, bytes | None, bool, str | None] | None = None
        self._shrunk: dict[tuple[int, int], PILImage.Image] = {}
        self._flat: dict[tuple[object, ...], PILImage.Image] = {}
        self._encodings: dict[tuple[object, ...], bytes] = {}
        self._last_resize: tuple[tuple[object, ...], PILImage.Image] | None = None
        self._results: dict[tuple[int, int | None], tuple[bytes, str, int, int] | str] = {}

    # ------------------------------------------------------------------ decoding

    def open(self) -> str | None:
        """Decode once: None when the file is a usable image, else the problem (what check_image says)."""
        if self._checked and self.problem is not None:
            return self.problem  # refused by the check (e.g. too many pixels): never decoded in full
        if not self._opened:
            self.problem, self._img, self.note = _open_problem(self.path)
            self._opened = self._checked = True
            self._changed()
        return self.problem

    def check(self) -> str | None:
        """The check's verdict, decoding at most `image_limits.MAX_PIXELS` (see `_open_problem`).

        A full decode is kept for a later `prepare` in the same scope; a reduced one is not.
        """
        if not self._opened and not self._checked:
            from crossposter import image_limits

            self.problem, img, self.note = _open_problem(self.path, image_limits.MAX_PIXELS)
            self._checked = True
            if img is not None and not img.info.get(_REDUCED):
                self._img, self._opened = img, True
            elif img is not None:
                img.close()  # decoded at a reduced scale: `prepare` decodes the file itself
            self._changed()
        return self.problem

    def _changed(self) -> None:
        if self.shared and _identity(self.path) != self.identity:
            _forget(self)  # changed while being read: this caller keeps what it read, nobody else shares it

    def release(self) -> None:
        """Drop the pixels (the verdict and the results stay); a later use decodes the file again."""
        if self._img is not None:
            self._img.close()
        self._img = None
        if self.problem is None:
            self._opened = False
        self._clean = None
        self._shrunk.clear()
        self._flat.clear()
        self._encodings.clear()
        self._last_resize = None

    def cleaned(self) -> tuple[PILImage.Image, bytes | None, bool, str | None]:
        """(pixels in L/RGB/RGBA, ICC profile, has alpha, source format); _Unusable when it cannot be read."""
        if self._clean is None:
            problem = self.open()
            if problem is not None or self._img is None:
                raise _Unusable(problem or "cannot be read")
            img = self._img
            try:
                source_format = img.format
                pixels, icc, alpha = _clean(img)
            finally:
                img.close()
                self._img = None
            self._clean = (pixels, icc, alpha, source_format)
        return self._clean

    # ------------------------------------------------------------------ remembered steps

    def _base(self, max_pixels: int | None) -> tuple[tuple[object, ...], PILImage.Image]:
        pixels = self.cleaned()[0]
        if max_pixels is None or pixels.width * pixels.height <= max_pixels:
            return ("full",), pixels
        from PIL import Image

        shrink = math.sqrt(max_pixels / (pixels.width * pixels.height))
        # floor, not round: rounding up could land one row above the cap
        size = (max(1, math.floor(pixels.width * shrink)), max(1, math.floor(pixels.height * shrink)))
        if size not in self._shrunk:
            self._shrunk[size] = pixels.resize(size, Image.Resampling.LANCZOS)
        return ("pixels", *size), self._shrunk[size]

    def _flattened(self, tag: tuple[object, ...], img: PILImage.Image) -> tuple[tuple[object, ...], PILImage.Image]:
        if tag not in self._flat:
            self._flat[tag] = _flatten(img)
        return ("flat", *tag), self._flat[tag]

    def encode(self, tag: tuple[object, ...], base: PILImage.Image, scale: float, fmt: str, quality: int = 0,
               final: bool = True) -> tuple[bytes, tuple[int, int]]:
        """`_encode(_resized(base, scale), …)`, made once per distinct input; also returns the encoded size."""
        size = _scaled_size(base, scale)
        key = (tag, size, fmt, quality, final)
        data = self._encodings.get(key)
        if data is None:
            data = _encode(self._resized(tag, base, scale, size), fmt, self.cleaned()[1], quality, final)
            self._encodings[key] = data
        return data, size

    def _resized(self, tag: tuple[object, ...], base: PILImage.Image, scale: float,
                 size: tuple[int, int]) -> PILImage.Image:
        if size == base.size:
            return _resized(base, scale)
        key = (tag, size)
        if self._last_resize is None or self._last_resize[0] != key:  # one kept: the qualities tried at a size
            self._last_resize = (key, _resized(base, scale))
        return self._last_resize[1]

    # ------------------------------------------------------------------ the recipe

    def prepared(self, max_bytes: int, max_pixels: int | None) -> tuple[bytes, str, int, int]:
        """(data, MIME type, width, height) within the limits; _Unusable with the problem otherwise."""
        key = (max_bytes, max_pixels)
        if key not in self._results:
            try:
                self._results[key] = self._prepare(max_bytes, max_pixels)
            except _Unusable as e:
                self._results[key] = e.problem
        result = self._results[key]
        if isinstance(result, str):
            raise _Unusable(result)
        return result

    def _prepare(self, max_bytes: int, max_pixels: int | None) -> tuple[bytes, str, int, int]:
        _, _, alpha, source_format = self.cleaned()
        tag, pixels = self._base(max_pixels)

        # PNG first for transparency and for PNG sources (screenshots, diagrams: JPEG smears text).
        # An opaque PNG source file far above the limit will not fit as PNG: skip the slow attempt.
        if alpha or (source_format == "PNG" and self._file_size() <= 2 * max_bytes):
            png_scale = 1.0
            while True:
                data, size = self.encode(tag, pixels, png_scale, "PNG")
                if len(data) <= max_bytes:
                    return data, "image/png", size[0], size[1]
                if not alpha:
                    break
                png_scale *= min(0.8, math.sqrt(max_bytes / len(data)) * 0.95)
                if png_scale < _PNG_MIN_SCALE:
                    break
            if alpha:
                tag, pixels = self._flattened(tag, pixels)

        scale = 1.0
        width, height = pixels.size
        for _ in range(_MAX_ROUNDS):
            size = 0
            for quality in _JPEG_QUALITIES:
                trial, (width, height) = self.encode(tag, pixels, scale, "JPEG", quality, final=False)
                size = len(trial)
                if size <= max_bytes:
                    data, _ = self.encode(tag, pixels, scale, "JPEG", quality)
                    if len(data) > size:  # never seen, but the limit is a hard one
                        data = trial
                    return data, "image/jpeg", width, height
                if size > 2 * max_bytes:
                    break  # lower quality saves ~40% at best: shrink now rather than encode twice more
            # Bytes grow roughly with pixel count: aim a little under the limit, but always shrink by ≥10%.
            factor = min(0.9, math.sqrt(max_bytes / size) * 0.95)
            next_size = (round(width * factor), round(height * factor))
            if min(next_size) < _MIN_SIDE:
                break
            scale = (width * factor) / pixels.width
        raise _Unusable(f"cannot be made smaller than {max_bytes} bytes without becoming unusably small")

    def _file_size(self) -> int:
        if self.identity is not None:
            return self.identity[2]
        return self.path.stat().st_size

    def warm(self) -> None:
        """The work every prepare of this file starts with, whatever its limit (see `warm`)."""
        _, _, alpha, source_format = self.cleaned()
        _, pixels = self._base(None)
        if alpha or source_format == "PNG":
            self.encode(("full",), pixels, 1.0, "PNG")
        if not alpha:
            self.encode(("full",), pixels, 1.0, "JPEG", _JPEG_QUALITIES[0], final=False)


# --------------------------------------------------------------------------- sharing within a scope

_state_lock = threading.Lock()
_scopes = 0
_sources: dict[tuple[int, ...], _Source] = {}


@contextlib.contextmanager
def shared_work() -> Iterator[None]:
    """While any such scope is open (in any thread), files are decoded and encoded once and shared.

    Leaving the last open scope drops every decoded image: a long-running daemon must not keep a
    48-megapixel photo in memory after its thread went out.
    """
    global _scopes
    with _state_lock:
        _scopes += 1
    try:
        yield
    finally:
        with _state_lock:
            _scopes -= 1
            dropped = list(_sources.values()) if _scopes == 0 else []
            if _scopes == 0:
                _sources.clear()
        for source in dropped:
            with source.lock:
                source.release()


def _source(path: Path) -> _Source:
    """The shared source of `path` inside a scope, else a private one."""
    identity = _identity(path)
    with _state_lock:
        if _scopes and identity is not None:
            source = _sources.get(identity)
            if source is None:
                source = _sources[identity] = _Source(path, identity, shared=True)
            return source
    return _Source(path, identity, shared=False)


def _forget(source: _Source) -> None:
    with _state_lock:
        if source.identity is not None and _sources.get(source.identity) is source:
            del _sources[source.identity]


def check_image(path: Path) -> str | None:
    """None when `path` is an image that can be decoded, else what is wrong (without the path)."""
    return inspect_image(path)[0]


def inspect_image(path: Path) -> tuple[str | None, str | None]:
    """(`check_image`'s verdict, a warning or None): an animation is posted as its first frame.

    Decodes at most `image_limits.MAX_PIXELS` pixels (see `_open_problem`).
    """
    source = _source(Path(path))
    with source.lock:
        problem = source.check()
        note = source.note
        if not source.shared:
            source.release()
    return problem, note


def warm(path: Path) -> None:
    """Inside a `shared_work()` scope: decode and clean `path` and make the encodings any limit tries first.

    Meant for the time the log-in requests are on the wire, before the limits are known. Outside a scope
    it does nothing (the work would be thrown away). Never raises: the real `prepare_image` reports.
    """
    source = _source(Path(path))
    if not source.shared:
        return
    with source.lock, contextlib.suppress(Exception):
        source.warm()


def prepare_image(path: Path, alt: str, max_bytes: int, max_pixels: int | None = None) -> ImageUpload:
    """A metadata-free JPEG or PNG of `path` of at most `max_bytes` (and `max_pixels`), same aspect ratio.

    Inside a `shared_work()` scope the decoded file and its encodings are shared with every other call.
    """
    path = Path(path)
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    source = _source(path)
    with source.lock:
        try:
            data, mime_type, width, height = source.prepared(max_bytes, max_pixels)
        except _Unusable as e:
            raise ImageError(path, e.problem) from None
        finally:
            if not source.shared:
                source.release()
    return ImageUpload(path=path, data=data, mime_type=mime_type, width=width, height=height, alt=alt)
