"""Make a local image safe and small enough to upload.

Photos carry their owner's home in their GPS tags, so every image is decoded and
re-encoded from pixels only: nothing of the original file's metadata survives
except the colour profile. Platforms refuse blobs above their byte limit, so the
image is re-encoded (lower JPEG quality first, because that costs less detail
than fewer pixels) and then shrunk until it fits, always keeping the aspect ratio.

Pillow is imported inside the functions: `preview` imports this module's
callers but must not pay for Pillow at start-up.
"""

from __future__ import annotations

import io
import math
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


class ImageError(Exception):
    """An image that cannot be uploaded; the message names the file and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _open_problem(path: Path) -> tuple[str | None, PILImage.Image | None]:
    """Open, verify and fully decode `path`: (problem, None) or (None, decoded image).

    `verify()` catches broken PNG chunks but not a JPEG cut short, and it leaves
    the image unusable, hence the second open and a full `load()`.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        return "file not found", None
    if not path.is_file():
        return "not a file", None
    try:
        with Image.open(path) as probe:
            probe.verify()
    except UnidentifiedImageError:
        return f"not an image Pillow can read (use {_SUPPORTED})", None
    except Image.DecompressionBombError as e:
        return f"too many pixels to decode safely ({e})", None
    except PermissionError:
        return "permission denied", None
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, struct.error… on damage
        return f"damaged image file ({type(e).__name__}: {e})", None
    try:
        img = Image.open(path)
        img.load()
    except Image.DecompressionBombError as e:
        return f"too many pixels to decode safely ({e})", None
    except Exception as e:
        detail = str(e) or type(e).__name__
        return f"damaged or truncated image file ({detail}); re-export it from an image editor", None
    return None, img


def check_image(path: Path) -> str | None:
    """None when `path` is an image that can be decoded, else what is wrong (without the path)."""
    problem, img = _open_problem(Path(path))
    if img is not None:
        img.close()
    return problem


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


def prepare_image(path: Path, alt: str, max_bytes: int, max_pixels: int | None = None) -> ImageUpload:
    """A metadata-free JPEG or PNG of `path` of at most `max_bytes` (and `max_pixels`), same aspect ratio."""
    path = Path(path)
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    problem, img = _open_problem(path)
    if img is None:
        raise ImageError(path, problem or "cannot be read")
    try:
        source_format = img.format
        pixels, icc, alpha = _clean(img)
    finally:
        img.close()

    if max_pixels is not None and pixels.width * pixels.height > max_pixels:
        from PIL import Image

        shrink = math.sqrt(max_pixels / (pixels.width * pixels.height))
        # floor, not round: rounding up could land one row above the cap
        size = (max(1, math.floor(pixels.width * shrink)), max(1, math.floor(pixels.height * shrink)))
        pixels = pixels.resize(size, Image.Resampling.LANCZOS)

    # PNG first for transparency and for PNG sources (screenshots, diagrams: JPEG smears text).
    # An opaque PNG source file far above the limit will not fit as PNG: skip the slow attempt.
    if alpha or (source_format == "PNG" and path.stat().st_size <= 2 * max_bytes):
        png_scale = 1.0
        candidate = pixels
        while True:
            data = _encode(candidate, "PNG", icc)
            if len(data) <= max_bytes:
                return ImageUpload(path=path, data=data, mime_type="image/png", width=candidate.width,
                                   height=candidate.height, alt=alt)
            if not alpha:
                break
            png_scale *= min(0.8, math.sqrt(max_bytes / len(data)) * 0.95)
            if png_scale < _PNG_MIN_SCALE:
                break
            candidate = _resized(pixels, png_scale)
        if alpha:
            pixels = _flatten(pixels)

    current = pixels
    for _ in range(_MAX_ROUNDS):
        size = 0
        for quality in _JPEG_QUALITIES:
            trial = _encode(current, "JPEG", icc, quality, final=False)
            size = len(trial)
            if size <= max_bytes:
                data = _encode(current, "JPEG", icc, quality)
                if len(data) > size:  # never seen, but the limit is a hard one
                    data = trial
                return ImageUpload(path=path, data=data, mime_type="image/jpeg", width=current.width,
                                   height=current.height, alt=alt)
            if size > 2 * max_bytes:
                break  # lower quality saves ~40% at best: shrink now rather than encode twice more
        # Bytes grow roughly with pixel count: aim a little under the limit, but always shrink by ≥10%.
        factor = min(0.9, math.sqrt(max_bytes / size) * 0.95)
        nxt = (round(current.width * factor), round(current.height * factor))
        if min(nxt) < _MIN_SIDE:
            break
        current = _resized(pixels, (current.width * factor) / pixels.width)
    raise ImageError(path, f"cannot be made smaller than {max_bytes} bytes without becoming unusably small")

