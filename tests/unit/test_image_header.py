"""The preview's Pillow-free image check must never contradict Pillow (crossposter.images.check_image).

Pillow writes real files in every mode people post; then each file is cut at
many lengths. Whatever `image_header.problem` calls broken, Pillow must call
broken too (no false alarm), every intact file passes, a cut PNG or WebP that
Pillow refuses is refused here too, and a cut JPEG header is always caught.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest
from PIL import Image

from crossposter import image_header, image_limits
from crossposter.images import check_image


def _pictures() -> dict[str, bytes]:
    rng = random.Random(7)
    out: dict[str, bytes] = {}
    for mode in ("RGB", "RGBA", "L", "P", "1"):
        img = Image.new(mode if mode != "P" else "RGB", (37, 23))
        img.putdata([tuple(rng.randrange(256) for _ in range(3)) if mode != "P" else (rng.randrange(256),) * 3
                     for _ in range(37 * 23)] if mode in ("RGB", "P") else
                    [rng.randrange(256) for _ in range(37 * 23)] if mode in ("L", "1") else
                    [tuple(rng.randrange(256) for _ in range(4)) for _ in range(37 * 23)])
        if mode == "P":
            img = img.convert("P")
        for fmt in ("PNG", "GIF", "WEBP") + (("JPEG",) if mode in ("RGB", "L") else ()):
            buf = io.BytesIO()
            extra = {"progressive": True} if fmt == "JPEG" and mode == "L" else {}
            img.save(buf, fmt, **extra)
            out[f"{mode}.{fmt.lower()}"] = buf.getvalue()
    return out


PICTURES = _pictures()


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_intact_images_pass_without_pillow(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / name
    path.write_bytes(PICTURES[name])
    # Pillow is not consulted for an intact file of a known format: make any call to it fail loudly.
    monkeypatch.setattr("crossposter.images.inspect_image", lambda p: pytest.fail(f"Pillow consulted for {name}"))
    assert image_header.problem(path) is None


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_cut_files_never_contradict_pillow(name: str, tmp_path: Path) -> None:
    data = PICTURES[name]
    path = tmp_path / name
    cuts = sorted({*range(0, min(len(data), 64)), *random.Random(name).sample(range(len(data)), min(len(data), 60))})
    caught = 0
    for cut in cuts:
        path.write_bytes(data[:cut])
        fast = image_header.problem(path)
        slow = check_image(path)
        if fast is not None:
            caught += 1
            assert slow is not None, f"{name} cut at {cut}: header check says {fast!r}, Pillow reads it fine"
        if name.endswith((".png", ".webp")) and slow is not None:
            assert fast is not None, f"{name} cut at {cut} of {len(data)} bytes passed the header check"
    assert caught > 0


def test_cut_jpeg_headers_are_caught(tmp_path: Path) -> None:
    data = PICTURES["RGB.jpeg"]
    scan = data.index(b"\xff\xda")
    path = tmp_path / "cut.jpg"
    for cut in range(0, scan + 4):
        path.write_bytes(data[:cut])
        assert image_header.problem(path) is not None, f"JPEG cut at {cut} (scan starts at {scan}) passed"


def test_not_an_image_is_judged_by_pillow(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not an image at all", encoding="utf-8")
    problem = image_header.problem(path)
    assert problem is not None and problem == check_image(path)


def test_other_formats_pillow_reads_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "scan.bmp"
    Image.new("RGB", (8, 8), "red").save(path, "BMP")
    assert image_header.problem(path) is None  # handed to Pillow, which reads BMP (and `post` re-encodes it)


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert "empty" in (image_header.problem(empty) or "")
    locked = tmp_path / "locked.png"
    locked.write_bytes(PICTURES["RGB.png"])
    locked.chmod(0)
    try:
        if sys.platform != "win32" and not _can_read(locked):
            assert image_header.problem(locked) == "permission denied"
    finally:
        locked.chmod(0o644)


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


def test_a_jpeg_is_judged_by_its_structure_up_to_pillows_own_limit(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Above crossposter's pixel cap a JPEG still passes the header walk (the pre-flight checks it with Pillow
    at a reduced scale); above Pillow's decompression-bomb limit only Pillow may judge it."""
    path = tmp_path / "big.jpg"
    path.write_bytes(PICTURES["RGB.jpeg"])
    monkeypatch.setattr(image_limits, "MAX_PIXELS", 10)
    asked: list[Path] = []
    monkeypatch.setattr("crossposter.images.inspect_image", lambda p: asked.append(p) or ("too many pixels", None))
    assert image_header.problem(path) is None and asked == []
    monkeypatch.setattr(image_header, "_PILLOW_MAX_PIXELS", 10)
    assert image_header.problem(path) == "too many pixels"
    assert asked == [path]


@pytest.mark.parametrize("name", ["RGB.png", "RGB.gif", "RGB.webp", "RGBA.webp", "L.webp"])
def test_above_the_pixel_cap_other_formats_are_refused_from_the_header_as_pillow_refuses_them(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / name
    path.write_bytes(PICTURES[name])
    monkeypatch.setattr(image_limits, "MAX_PIXELS", 37 * 23 - 1)  # the pictures are 37 x 23
    monkeypatch.setattr("crossposter.images.inspect_image", lambda p: pytest.fail("Pillow consulted"))
    problem = image_header.problem(path)
    assert problem is not None and problem.startswith("37×23 pixels")
    monkeypatch.undo()
    monkeypatch.setattr(image_limits, "MAX_PIXELS", 37 * 23 - 1)
    assert check_image(path) == problem  # Pillow's path says the same, without decoding
    monkeypatch.setattr(image_limits, "MAX_PIXELS", 37 * 23)
    assert image_header.problem(path) is None and check_image(path) is None




def _animation(fmt: str) -> bytes:
    frames = [Image.new("RGB", (24, 16), (k * 80, 255 - k * 80, 40)) for k in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, ext", [("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")])
def test_an_animation_is_a_warning_from_the_header_and_from_pillow_alike(fmt: str, ext: str,
                                                                         tmp_path: Path) -> None:
    """Only the first frame is ever posted: the preview says so (and agrees with the Pillow check)."""
    from crossposter.images import inspect_image

    path = tmp_path / f"anim.{ext}"
    path.write_bytes(_animation(fmt))
    problem, note = image_header.inspect(path)
    assert problem is None and note is not None and "animated" in note and "first frame" in note
    assert inspect_image(path) == (None, note)
    assert image_header.problem(path) is None  # still a usable image
    for name in (f"RGB.{ext}", f"P.{ext}"):  # a still image of the same format: no warning
        still = tmp_path / name
        still.write_bytes(PICTURES[name])
        assert image_header.inspect(still) == (None, None) and inspect_image(still) == (None, None)


def test_the_preview_warns_about_an_animated_gif_at_its_line(tmp_path: Path) -> None:
    from crossposter.archive import parse_archive
    from crossposter.plan import PlanOptions, plan_thread

    (tmp_path / "dance.gif").write_bytes(_animation("GIF"))
    archive = parse_archive("## T\n\nLook at this.\n\n![a dancing cat](dance.gif)\n", tmp_path / "a.md")
    for decode in (False, True):  # the preview's header check, and the pre-flight's Pillow check
        plan = plan_thread(archive, archive.threads[0], PlanOptions(decode_images=decode))
        assert not plan.errors
        assert [(w.line, "animated GIF" in w.message) for w in plan.warnings] == [(5, True)]
