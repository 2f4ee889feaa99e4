"""Draws the example archive's images with Pillow: `python threads/imgs/make_images.py`.

The images are committed; this script is here so anyone can see how they were made and redraw them.
Both are small on purpose (well under 60 KB) and drawn from shapes only: no fonts from the system (Pillow's
built-in font), no randomness without a fixed seed, so a rerun gives the same picture.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent

STAGES = ["archive", "render", "split", "publish", "record"]
NOTES = [
    "threads/*.md",
    "Markdown to rich text",
    "posts per platform",
    "Bluesky · Mastodon · X",
    "IDs back into the file",
]


def pipeline(path: Path) -> None:
    """Five boxes joined by arrows, with a loop from "record" back to "archive"."""
    width, height = 1200, 360
    img = Image.new("RGB", (width, height), (250, 250, 247))
    draw = ImageDraw.Draw(img)
    title_font = ImageFont.load_default(size=30)
    label_font = ImageFont.load_default(size=26)
    note_font = ImageFont.load_default(size=15)

    draw.text((40, 26), "How crossposter publishes a thread", fill=(40, 40, 40), font=title_font)
    box_w, box_h, gap, top = 180, 90, 45, 120
    left0 = (width - (len(STAGES) * box_w + (len(STAGES) - 1) * gap)) // 2
    colours = [(214, 234, 248), (213, 245, 227), (252, 243, 207), (250, 219, 216), (232, 218, 239)]
    centres = []
    for i, (stage, note) in enumerate(zip(STAGES, NOTES, strict=True)):
        x0 = left0 + i * (box_w + gap)
        draw.rounded_rectangle(
            (x0, top, x0 + box_w, top + box_h), radius=16, fill=colours[i], outline=(60, 60, 60), width=3
        )
        tw = draw.textlength(stage, font=label_font)
        draw.text((x0 + (box_w - tw) / 2, top + 28), stage, fill=(30, 30, 30), font=label_font)
        nw = draw.textlength(note, font=note_font)
        draw.text((x0 + (box_w - nw) / 2, top + box_h + 14), note, fill=(90, 90, 90), font=note_font)
        centres.append((x0, x0 + box_w))
        if i:  # arrow from the previous box
            x_from, x_to, y = centres[i - 1][1] + 4, x0 - 4, top + box_h // 2
            draw.line((x_from, y, x_to - 10, y), fill=(60, 60, 60), width=4)
            draw.polygon([(x_to, y), (x_to - 14, y - 9), (x_to - 14, y + 9)], fill=(60, 60, 60))

    # "record" writes back into the archive: a loop under the boxes.
    y_loop = top + box_h + 70
    x_start = (centres[-1][0] + centres[-1][1]) // 2
    x_end = (centres[0][0] + centres[0][1]) // 2
    draw.line((x_start, top + box_h + 40, x_start, y_loop), fill=(120, 90, 160), width=3)
    draw.line((x_start, y_loop, x_end, y_loop), fill=(120, 90, 160), width=3)
    draw.line((x_end, y_loop, x_end, top + box_h + 48), fill=(120, 90, 160), width=3)
    draw.polygon(
        [(x_end, top + box_h + 38), (x_end - 8, top + box_h + 52), (x_end + 8, top + box_h + 52)],
        fill=(120, 90, 160),
    )
    loop_note = "the archive stays the source of truth"
    lw = draw.textlength(loop_note, font=note_font)
    draw.rectangle(
        ((x_start + x_end - lw) / 2 - 8, y_loop - 10, (x_start + x_end + lw) / 2 + 8, y_loop + 10),
        fill=(250, 250, 247),
    )
    draw.text(((x_start + x_end - lw) / 2, y_loop - 9), loop_note, fill=(120, 90, 160), font=note_font)

    img = img.quantize(colors=32)  # flat colours: a small palette PNG
    img.save(path, optimize=True)


def dusk(path: Path) -> None:
    """A photo-like dusk sky: vertical gradient, a blurred sun, a dark hill line and a little grain."""
    width, height = 960, 540
    top_c, mid_c, low_c = (28, 42, 94), (196, 98, 84), (247, 184, 96)
    img = Image.new("RGB", (width, height))
    px = img.load()
    for y in range(height):
        t = y / (height - 1)
        a, b, u = (top_c, mid_c, t / 0.6) if t < 0.6 else (mid_c, low_c, (t - 0.6) / 0.4)
        row = tuple(round(a[k] + (b[k] - a[k]) * u) for k in range(3))
        for x in range(width):
            px[x, y] = row
    glow = Image.new("L", (width, height), 0)
    ImageDraw.Draw(glow).ellipse((600, 330, 720, 450), fill=255)
    glow = glow.filter(ImageFilter.GaussianBlur(28))
    img = Image.composite(Image.new("RGB", (width, height), (255, 226, 160)), img, glow)
    draw = ImageDraw.Draw(img)
    hill = [(0, height)]
    for x in range(0, width + 1, 8):
        hill.append((x, 430 + 28 * math.sin(x / 130) + 14 * math.sin(x / 47)))
    hill.append((width, height))
    draw.polygon(hill, fill=(24, 22, 36))
    rng = random.Random(7)  # film grain, seeded so a rerun draws the same picture
    grain = Image.new("L", (width, height))
    grain.putdata([128 + rng.randint(-24, 24) for _ in range(width * height)])
    img = Image.blend(img, Image.merge("RGB", (grain, grain, grain)), 0.05)
    img.save(path, quality=78, optimize=True, progressive=True)


def main() -> None:
    pipeline(HERE / "pipeline.png")
    dusk(HERE / "dusk.jpg")
    for name in ("pipeline.png", "dusk.jpg"):
        size = (HERE / name).stat().st_size
        print(f"{name}: {size} bytes")


if __name__ == "__main__":
    main()
