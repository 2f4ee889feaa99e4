"""How many pixels crossposter decodes, and the words for an image above it or animated.

Shared by the header check (`image_header`, the preview's Pillow-free path) and the Pillow check (`images`),
which must give the same verdict in the same words. It lives apart from both because `image_header` hands
what it cannot judge to `images`: were the wording in `image_header`, the two would import each other.
Read `MAX_PIXELS` as `image_limits.MAX_PIXELS` at call time (tests lower it with monkeypatch).
"""

from __future__ import annotations

#: The most pixels crossposter decodes to check an image (50 megapixels: ~200 MB as RGBA, where a
#: 13000 x 13000 PNG of 0.6 MB would cost 2 GB). Read from the header first: a PNG, GIF or WebP above it is
#: refused without decoding; a JPEG above it passes here as any JPEG does (its structure is walked), and
#: Pillow checks it at a reduced scale before posting.
MAX_PIXELS = 50_000_000


def too_many_pixels(width: int, height: int) -> str:
    """The problem of an image above `MAX_PIXELS` (worded once for `image_header` and `images`)."""
    return (f"{width}×{height} pixels ({width * height / 1e6:.0f} megapixels) is more than crossposter decodes "
            f"({MAX_PIXELS // 1_000_000} megapixels); scale it down and save it again (no platform shows that "
            "many pixels anyway)")


def animated(kind: str) -> str:
    """The warning for an animation (worded once for `image_header` and `images`)."""
    return (f"an animated {kind}: only its first frame is posted, as a still image; convert it to a video to "
            "post the animation, or accept the still")
