"""crossposter.images: metadata stripped, byte limit met, aspect ratio kept, bad files named."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageOps

from crossposter.images import ImageError, check_image, prepare_image

GPS_IFD = ExifTags.IFD.GPSInfo


def _exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    return exif


def _noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    w, h = size
    return Image.frombytes(mode, size, os.urandom(w * h * len(mode)))


def test_gps_exif_is_removed(tmp_path: Path) -> None:
    src = tmp_path / "holiday.jpg"
    Image.new("RGB", (640, 480), (200, 120, 40)).save(src, "JPEG", exif=_exif_with_gps(), comment=b"home")
    with Image.open(src) as before:  # the fixture really carries GPS, or the test proves nothing
        assert before.getexif().get_ifd(GPS_IFD)
        assert before.getexif()[ExifTags.Base.Make] == "TestCam"

    up = prepare_image(src, "a sunset", max_bytes=1_000_000)

    with Image.open(io.BytesIO(up.data)) as after:
        exif = after.getexif()
        assert len(exif) == 0
        assert not exif.get_ifd(GPS_IFD)
        assert "exif" not in after.info
        assert "comment" not in after.info
    assert b"TestCam" not in up.data
    assert up.alt == "a sunset"
    assert up.path == src
    assert up.mime_type == "image/jpeg"
    assert (up.width, up.height) == (640, 480)


def test_exif_orientation_applied_before_stripping(tmp_path: Path) -> None:
    # Stored 300x200 with "rotate 90° CW to display" (6): people see it 200x300, and so must the upload.
    src = tmp_path / "phone.jpg"
    img = Image.new("RGB", (300, 200), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 150, 200))  # left half white as stored
    img.save(src, "JPEG", exif=_exif_with_gps(orientation=6), quality=95)
    with Image.open(src) as shown:
        expected = ImageOps.exif_transpose(shown)

    up = prepare_image(src, "", max_bytes=1_000_000)

    with Image.open(io.BytesIO(up.data)) as after:
        assert after.size == (200, 300)
        assert ExifTags.Base.Orientation not in after.getexif()
        # the stored left half ends up on top once displayed
        assert after.convert("L").getpixel((100, 40)) > 200
        assert after.convert("L").getpixel((100, 260)) < 50
        assert expected.convert("L").getpixel((100, 40)) > 200


def test_large_noisy_image_fits_and_keeps_aspect_ratio(tmp_path: Path) -> None:
    src = tmp_path / "noise.png"
    _noise((4000, 3000)).save(src, "PNG", compress_level=1)
    assert src.stat().st_size > 1_000_000

    up = prepare_image(src, "static", max_bytes=1_000_000)

    assert len(up.data) <= 1_000_000
    assert up.width < 4000
    assert abs(up.height - up.width * 3 / 4) <= 1
    with Image.open(io.BytesIO(up.data)) as out:
        assert out.size == (up.width, up.height)
        out.verify()


def test_max_pixels_caps_the_size(tmp_path: Path) -> None:
    src = tmp_path / "wide.jpg"
    Image.new("RGB", (3000, 1000), (10, 20, 30)).save(src, "JPEG")
    up = prepare_image(src, "", max_bytes=5_000_000, max_pixels=300_000)
    assert up.width * up.height <= 300_000
    assert abs(up.width - 3 * up.height) <= 3


def test_small_transparent_png_stays_png_with_alpha(tmp_path: Path) -> None:
    src = tmp_path / "logo.png"
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (50, 25, 150, 75))
    img.save(src, "PNG")
    up = prepare_image(src, "logo", max_bytes=1_000_000)
    assert up.mime_type == "image/png"
    with Image.open(io.BytesIO(up.data)) as out:
        assert out.mode == "RGBA"
        assert out.getpixel((0, 0))[3] == 0
        assert out.getpixel((100, 50)) == (255, 0, 0, 255)


def test_transparent_png_too_big_for_png_becomes_jpeg_on_white(tmp_path: Path) -> None:
    src = tmp_path / "noisy-alpha.png"
    img = _noise((1500, 1000), "RGBA")
    img.putalpha(Image.new("L", img.size, 0))
    img.paste(_noise((700, 1000), "RGB"), (800, 0))  # right part opaque noise
    img.putalpha(Image.new("L", (1500, 1000), 0))
    alpha = Image.new("L", (1500, 1000), 0)
    alpha.paste(255, (800, 0, 1500, 1000))
    img.putalpha(alpha)
    img.save(src, "PNG", compress_level=1)

    up = prepare_image(src, "", max_bytes=200_000)

    assert len(up.data) <= 200_000
    assert up.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(up.data)) as out:
        left = out.convert("RGB").getpixel((5, 5))
        assert min(left) > 240  # transparent area flattened onto white, not black
    assert abs(up.height - up.width * 2 / 3) <= 1


def test_not_an_image_names_the_file(tmp_path: Path) -> None:
    src = tmp_path / "notes.jpg"
    src.write_text("this is not a picture\n")
    with pytest.raises(ImageError) as info:
        prepare_image(src, "", max_bytes=1_000_000)
    assert str(src) in str(info.value)
    assert "not an image" in str(info.value)
    assert check_image(src) is not None


def test_truncated_jpeg_is_an_error(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    _noise((800, 600)).save(full, "JPEG", quality=90)
    data = full.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])

    assert check_image(full) is None
    problem = check_image(cut)
    assert problem is not None and "truncated" in problem
    with pytest.raises(ImageError) as info:
        prepare_image(cut, "", max_bytes=1_000_000)
    assert str(cut) in str(info.value)


def test_truncated_png_is_an_error(tmp_path: Path) -> None:
    full = tmp_path / "full.png"
    _noise((300, 200)).save(full, "PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:5000])
    assert check_image(cut) is not None
    with pytest.raises(ImageError):
        prepare_image(cut, "", max_bytes=1_000_000)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    assert check_image(missing) == "file not found"
    with pytest.raises(ImageError, match="nope.png: file not found"):
        prepare_image(missing, "", max_bytes=1000)


def test_impossible_limit_is_reported_not_looped(tmp_path: Path) -> None:
    src = tmp_path / "noise.jpg"
    _noise((400, 300)).save(src, "JPEG")
    with pytest.raises(ImageError, match="cannot be made smaller than 100 bytes"):
        prepare_image(src, "", max_bytes=100)


# --------------------------------------------------------------------------- shared work within a publication


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count decodes and encodes done by crossposter.images."""
    import crossposter.images as images

    counts = {"decode": 0, "encode": 0}
    real_open, real_encode = images._open_problem, images._encode

    def open_problem(path, *args):  # type: ignore[no-untyped-def]
        counts["decode"] += 1
        return real_open(path, *args)

    def encode(*a, **k):  # type: ignore[no-untyped-def]
        counts["encode"] += 1
        return real_encode(*a, **k)

    monkeypatch.setattr(images, "_open_problem", open_problem)
    monkeypatch.setattr(images, "_encode", encode)
    return counts


def test_shared_work_decodes_once_and_gives_the_same_bytes_as_separate_calls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crossposter.images import shared_work

    photo = tmp_path / "photo.jpg"
    _noise((900, 700)).save(photo, "JPEG", quality=95)
    shot = tmp_path / "shot.png"
    Image.new("RGB", (640, 480), (20, 140, 90)).save(shot)
    limits = [(200_000, None), (1_000_000, None), (5_000_000, None), (1_000_000, 100_000)]
    alone = {(p, lim): prepare_image(p, "alt", *lim) for p in (photo, shot) for lim in limits}
    assert alone[(photo, limits[0])].data != alone[(photo, limits[2])].data  # the limits really differ

    counts = _counting(monkeypatch)
    with shared_work():
        assert check_image(photo) is None and check_image(shot) is None
        together = {(p, lim): prepare_image(p, "other alt", *lim) for p in (photo, shot) for lim in limits}
    assert counts["decode"] == 2  # the pre-flight check's decode served every limit
    for key, up in together.items():
        assert (up.data, up.mime_type, up.width, up.height) == (
            alone[key].data, alone[key].mime_type, alone[key].width, alone[key].height), key
        assert up.alt == "other alt" and up.path == key[0]
    # the 1 MB and 5 MB JPEGs of the photo start with the same full-size trial: made once, not twice
    encodes_together = counts["encode"]
    counts["encode"] = 0
    for p in (photo, shot):
        for lim in limits:
            prepare_image(p, "alt", *lim)
    assert encodes_together < counts["encode"]


def test_shared_work_reads_an_edited_file_afresh(tmp_path: Path) -> None:
    from crossposter.images import shared_work

    src = tmp_path / "pic.png"
    Image.new("RGB", (100, 80), (1, 2, 3)).save(src)
    with shared_work():
        assert check_image(src) is None
        first = prepare_image(src, "", max_bytes=1_000_000)
        src.write_bytes(b"not an image any more")
        assert check_image(src) is not None
        with pytest.raises(ImageError, match="pic.png"):
            prepare_image(src, "", max_bytes=1_000_000)
        Image.new("RGB", (50, 40), (9, 9, 9)).save(src)
        second = prepare_image(src, "", max_bytes=1_000_000)
    assert (first.width, second.width) == (100, 50)


def test_leaving_the_last_scope_drops_the_decoded_images(tmp_path: Path) -> None:
    import crossposter.images as images

    src = tmp_path / "pic.jpg"
    Image.new("RGB", (100, 80), (1, 2, 3)).save(src)
    with images.shared_work():
        with images.shared_work():
            images.warm(src)
        assert images._sources  # the outer scope still shares it
    assert not images._sources


def test_warm_does_the_first_encodings_prepare_would_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crossposter.images as images

    src = tmp_path / "photo.jpg"
    _noise((400, 300)).save(src, "JPEG", quality=95)
    counts = _counting(monkeypatch)
    images.warm(src)  # outside a scope: nothing to keep, nothing done
    assert counts == {"decode": 0, "encode": 0}
    with images.shared_work():
        images.warm(src)
        assert counts == {"decode": 1, "encode": 1}  # the full-size q90 trial every limit starts with
        up = prepare_image(src, "", max_bytes=5_000_000)
        assert counts == {"decode": 1, "encode": 2}  # only the final (optimised) encoding was left
    assert up.mime_type == "image/jpeg" and (up.width, up.height) == (400, 300)


def test_a_source_used_after_its_scope_closed_is_read_again(tmp_path: Path) -> None:
    """A caller that got the shared source just before the last scope closed must not see 'cannot be read'."""
    import crossposter.images as images

    src = tmp_path / "pic.jpg"
    Image.new("RGB", (120, 90), (1, 2, 3)).save(src)
    with images.shared_work():
        source = images._source(src)
        assert source.open() is None
    # the scope is gone and the pixels with it; the straggler still works from the file
    with source.lock:
        data, mime, width, height = source.prepared(1_000_000, None)
    assert (mime, width, height) == ("image/jpeg", 120, 90)


def test_the_check_never_decodes_more_than_the_pixel_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 0.6 MB PNG of 13000 x 13000 pixels once cost 2 GB to check: above the cap a PNG is refused from its
    size alone, a JPEG is decoded at a reduced scale, and posting still gets the JPEG's full pixels."""
    from PIL import ImageFile

    from crossposter import image_limits
    from crossposter.images import inspect_image, shared_work

    png, jpeg = tmp_path / "wide.png", tmp_path / "photo.jpg"
    Image.new("RGB", (400, 300), "navy").save(png)
    Image.linear_gradient("L").convert("RGB").resize((400, 300)).save(jpeg, quality=90)
    monkeypatch.setattr(image_limits, "MAX_PIXELS", 400 * 300 - 1)
    decoded: list[tuple[str, tuple[int, int]]] = []
    real_load = ImageFile.ImageFile.load

    def load(self):  # type: ignore[no-untyped-def]
        decoded.append((self.format, self.size))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    problem, _ = inspect_image(png)
    assert problem is not None and problem.startswith("400×300 pixels") and decoded == []
    assert check_image(jpeg) is None
    assert decoded == [("JPEG", (200, 150))]  # libjpeg's 1/2 scale: the whole file is still decoded
    with shared_work():
        assert check_image(jpeg) is None
        upload = prepare_image(jpeg, "alt", 5_000_000)
    assert (upload.width, upload.height) == (400, 300)  # the reduced check image is never what gets posted
    monkeypatch.setattr(image_limits, "MAX_PIXELS", 400 * 300)
    decoded.clear()
    assert check_image(png) is None and decoded == [("PNG", (400, 300))]
