"""The terminal preview as a person sees it: boxes that hold together around wide characters at 80 and
100 columns, soft-wrapped rows told apart from the archive's own line breaks, Bluesky links with their
URL, URLs kept whole where they can be, and control characters in the archive shown rather than obeyed.

Widths are measured twice, with rich's `cell_len` (what lays the boxes out) and with `wcwidth` (an
independent table of what terminals draw), so a layout that only agrees with itself does not pass.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from crossposter.model import Facet, ImageRef, Post
from crossposter.preview_text import CONTINUATION, post_rows, render_plans, wrap_line

wcwidth = pytest.importorskip("wcwidth")

ROOT = Path(__file__).resolve().parents[2]

WIDE_ARCHIVE = (
    "# Wide characters\n\n"
    "## Coding all night 👩🏽‍💻 with 🇩🇪 and 日本語\n\n"
    "Coding all night 👩🏽‍💻👩🏽‍💻 with flags 🇩🇪🇯🇵🇺🇦 and a family 👨‍👩‍👧‍👦, hearts ❤️❤️ and keycaps #️⃣1️⃣, "
    "combining e\u0301te\u0301 cafe\u0301 and a\u0301\u0302\u0303 stacked marks, a rainbow 🏳️‍🌈 flag.\n"
    "日本語のテキストはとても長いのでここで折り返す必要がありますがどこで折り返しても構いません。中文也一样需要换行处理才行。\n"
    "한국어 문장도 들어갑니다 띄어쓰기가 있어요 그래서 단어 사이에서 줄을 바꿉니다.\n"
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ and 🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵🧵 a run of emoji.\n\n"
    "### Links 🔗\n\n"
    "See [the paper 📄](https://arxiv.org/abs/2401.04088) and "
    "https://example.com/a/very/long/path/that/should/not/be/broken/in/the/middle/of/it?query=1&other=2 "
    "and https://example.org/short here.\n\n"
    "![Ein Würstchen 🌭 mit Senf, fotografiert von oben auf einem weißen Teller, daneben ein Glas "
    "Bier 🍺 und 日本語の説明](dog.png)\n\n"
    "    code\twith\ttabs 👩🏽‍💻\n"
)


def _archive(tmp_path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(tmp_path / "dog.png")
    path = tmp_path / "wide.md"
    path.write_text(WIDE_ARCHIVE, encoding="utf-8")
    return path


def _preview(*args: str, cwd: Path, columns: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("NO_COLOR", None)
    return subprocess.run([sys.executable, "-m", "crossposter", "preview", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _boxes(out: str, width: int) -> list[list[str]]:
    """Every line fits in `width` cells by both measures; each box's rows are as wide as its top border,
    with the border at both ends. Returns each box's content rows (border and padding removed)."""
    lines = out.splitlines()
    for line in lines:
        assert cell_len(line) <= width, f"{cell_len(line)} cells > {width}: {line!r}"
        assert 0 <= wcwidth.wcswidth(line) <= width, f"wcwidth {wcwidth.wcswidth(line)} > {width}: {line!r}"
    boxes = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("╭"):
            top = lines[i]
            assert top.endswith("╮"), top
            w = cell_len(top)
            rows = []
            i += 1
            while not lines[i].startswith("╰"):
                row = lines[i]
                assert row.startswith("│ ") and row.endswith(" │"), row
                assert cell_len(row) == w == wcwidth.wcswidth(row), f"border off its column: {row!r}"
                rows.append(row[2:-2].rstrip())
                i += 1
            assert lines[i].endswith("╯") and cell_len(lines[i]) == w, lines[i]
            boxes.append(rows)
        i += 1
    return boxes


def _unwrapped(rows: list[str]) -> str:
    """The box's rows with soft wraps undone (a continuation mark joins its row to the one before)."""
    out = ""
    for row in rows:
        out += (" " + row[len(CONTINUATION):]) if row.startswith(CONTINUATION) else ("\n" + row)
    return out[1:]


def _no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("columns", [80, 100])
def test_boxes_hold_together_around_wide_characters(tmp_path: Path, columns: int) -> None:
    path = _archive(tmp_path)
    proc = _preview(path.name, cwd=tmp_path, columns=columns)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = json.loads(_preview(path.name, "--format", "json", cwd=tmp_path, columns=columns).stdout)
    (thread,) = doc["threads"]
    posts = [(name, p) for name, pp in thread["platforms"].items() for p in pp["posts"]]
    boxes = _boxes(proc.stdout, columns)
    assert len(boxes) == len(posts) >= 6
    assert any(cell_len(row) > columns - 10 for rows in boxes for row in rows), "nothing was wrapped"
    for rows, (name, post) in zip(boxes, posts, strict=True):
        shown = _no_space(_unwrapped(rows))
        if name == "bluesky":  # every character of the post, in order, plus the links' URLs
            it = iter(shown)
            assert all(ch in it for ch in _no_space(post["text"])), (post["text"], rows)
        else:
            assert shown.startswith(_no_space(post["text"])), (post["text"], rows)
        for img in post["images"]:
            assert _no_space(f"image: {img['path']} — {img['alt']}") in shown
    # the run of 43 thread emoji (86 cells) is longer than any row: cut between emoji, never inside one
    for rows in boxes:
        for row in rows:
            assert "\u200d" not in row[-1:] and not row.endswith("\U0001f3fd"), row


def test_soft_wraps_are_marked_and_real_line_breaks_are_not(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "## T\n\nShort first line.\nA second real line that is long enough to need a soft wrap at eighty "
        "columns, surely, with words.\nThird.\n", encoding="utf-8")
    proc = _preview("a.md", "-p", "mastodon", cwd=tmp_path, columns=80)
    (rows,) = _boxes(proc.stdout, 80)
    assert rows[0] == "Short first line."
    assert rows[1].startswith("A second real line") and not rows[1].startswith(CONTINUATION)
    assert rows[2].startswith(CONTINUATION) and rows[2].endswith("words.")
    assert rows[3] == "Third."


def test_bluesky_links_show_where_they_go(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "## T\n\nRead [the paper](https://arxiv.org/abs/2401.04088) first, then "
        "https://developer.nvidia.com/blog/nvidia-tensorrt-llm and https://arxiv.org/abs/2211.15841 too.\n",
        encoding="utf-8")
    proc = _preview("a.md", "-p", "bluesky", "-p", "mastodon", cwd=tmp_path, columns=100)
    bluesky, mastodon = (_unwrapped(rows) for rows in _boxes(proc.stdout, 100))
    assert "the paper <https://arxiv.org/abs/2401.04088> first" in bluesky
    # a bare URL the app shortens: the full URL beside the short form
    assert "developer.nvidia.com/blog/nvidia-... <https://developer.nvidia.com/blog/nvidia-tensorrt-llm>" in bluesky
    # a bare URL shown whole is not said twice
    assert "arxiv.org/abs/2211.15841 too." in bluesky and "<https://arxiv.org/abs/2211.15841>" not in bluesky
    # Mastodon writes the URL out itself: nothing added
    assert "<" not in mastodon and "the paper https://arxiv.org/abs/2401.04088 first" in mastodon


def test_a_bluesky_link_is_underlined_and_clickable_in_a_terminal() -> None:
    text = "see the paper now"
    post = Post(text=text, length=len(text), facets=[Facet(4, 13, "link", "https://arxiv.org/abs/1")])
    (row,) = post_rows(post, "bluesky", 80)
    assert row.plain == "see the paper <https://arxiv.org/abs/1> now"
    styles = {row.plain[s.start:s.end]: s.style for s in row.spans}
    assert styles["the paper"].link == "https://arxiv.org/abs/1" and styles["the paper"].underline
    assert str(styles[" <https://arxiv.org/abs/1>"]) == "dim"


def test_a_facet_off_a_character_boundary_adds_nothing() -> None:
    text = "ü link"  # 'ü' is two bytes: byte 1 is inside it
    post = Post(text=text, length=6, facets=[Facet(1, 4, "link", "https://example.com")])
    assert [r.plain for r in post_rows(post, "bluesky", 80)] == ["ü link"]


def test_a_url_moves_to_the_next_row_whole_and_a_too_long_one_is_cut_after_a_slash() -> None:
    url = "https://example.com/" + "/".join(["segment"] * 12)  # 115 characters
    rows = [r.plain for r in wrap_line(Text(f"words before {url} after"), 60)]
    assert rows[0] == "words before"
    assert rows[1].startswith(CONTINUATION + "https://example.com/") and rows[1].endswith("/")
    assert _no_space("".join(r.removeprefix(CONTINUATION) for r in rows)) == _no_space(f"wordsbefore{url}after")
    short = "https://example.com/a/b?c=d&e=f"
    rows = [r.plain for r in wrap_line(Text("x" * 50 + " " + short), 60)]
    assert rows == ["x" * 50, CONTINUATION + short]


def test_control_characters_are_shown_not_sent_to_the_terminal() -> None:
    text = "red \x1b[31mALERT\x1b[0m\rover \u202eevil\u202c \x9b2J\u2028end"
    rows = post_rows(Post(text=text, length=len(text)), "mastodon", 80)
    (shown,) = [r.plain for r in rows]
    assert shown == "red ␛[31mALERT␛[0m␍over <U+202E>evil<U+202C> <U+009B>2J<U+2028>end"
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system="standard")
    console.print(Text("\n").join(rows))
    assert "\x1b[31m" not in buf.getvalue() and "\r" not in buf.getvalue() and "\u202e" not in buf.getvalue()


def test_titles_with_control_characters_and_long_locations(tmp_path: Path) -> None:
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 2)
    folder.mkdir()
    (folder / "archive.md").write_text("## Title \x1b]52;c;Zm9v\x07 here\n\nText.\n", encoding="utf-8")
    proc = _preview(str(folder.relative_to(tmp_path) / "archive.md"), "-p", "x", cwd=tmp_path, columns=80)
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "Title ␛]52;c;Zm9v␇ here" in proc.stdout
    # the location does not fit beside the title: it gets its own line, whole (clickable, greppable)
    assert f"{folder.name}/archive.md:1" in proc.stdout.splitlines()


def test_images_use_no_emoji_of_ambiguous_width() -> None:
    """🖼 (U+1F5BC) is one cell by Unicode's tables but two in many terminals: the image row uses text."""
    img = ImageRef(src="imgs/a.png", path=Path("imgs/a.png"), alt="a dog", title=None, line=3)
    rows = post_rows(Post(text="t", length=1, images=[img]), "x", 80)
    assert [r.plain for r in rows] == ["t", "image: imgs/a.png — a dog"]


def test_rich_measures_grapheme_clusters_as_terminals_draw_them() -> None:
    """pyproject.toml asks for rich >= 14.3.3: older rich counted `👩🏽‍💻` as 6 cells and drew box borders
    4 cells off their column in every terminal that draws it as one emoji."""
    for glyph in ("👩🏽‍💻", "🇩🇪", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "#️⃣"):
        assert cell_len(glyph) == 2 == wcwidth.wcswidth(glyph), glyph
    assert cell_len("e\u0301") == 1 and cell_len("日本") == 4


def test_render_plans_writes_only_what_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same check in-process, through a fixed-width console without colour (what `-o FILE` writes)."""
    from crossposter.plan import PlanOptions, plan_paths

    monkeypatch.chdir(tmp_path)  # locations are shown relative to the working folder, and short
    plans = plan_paths([_archive(tmp_path)], PlanOptions(decode_images=False), None, None)
    for width in (80, 100, 43):
        buf = io.StringIO()
        render_plans(plans, Console(file=buf, width=width, no_color=True, color_system=None, highlight=False))
        assert len(_boxes(buf.getvalue(), width)) == sum(len(pp.posts) for pp in plans[0].platforms.values())


_PIECES = st.sampled_from([
    "hello", "naïve", "e\u0301te\u0301", "👩🏽‍💻", "🇩🇪🇯🇵", "👨‍👩‍👧‍👦", "❤️", "日本語のテキスト", "한국어",
    "https://example.com/a/b/c?x=1&y=2", "https://example.org/" + "p" * 70, "x" * 90, "a-b_c.d", "—", "“quoted”",
    "path/\u0301x/y&\u20e3z", "\u0301mark", "ｆｕｌｌ", "한국어/テスト",
])
_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\u3000-\u303f\uff00-\uffef]")
_GAPS = st.sampled_from([" ", "  ", "\t", " \t "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_PIECES, _GAPS), min_size=1, max_size=30), st.integers(min_value=12, max_value=120))
def test_wrap_keeps_every_grapheme_fits_the_width_and_keeps_short_words_whole(pieces, width) -> None:
    line = "".join(p + g for p, g in pieces).rstrip()
    rows = [r.plain for r in wrap_line(Text(line), width)]
    assert all(cell_len(r) <= width for r in rows), rows
    assert all(r.startswith(CONTINUATION) for r in rows[1:]) and not rows[0].startswith(CONTINUATION)
    bodies = [rows[0]] + [r[len(CONTINUATION):] for r in rows[1:]]
    # nothing lost, nothing added, no grapheme cluster split between rows
    def visible(text: str) -> list[str]:
        return [g for g in regex.findall(r"\X", text) if not g.isspace()]

    expanded = Text(line)
    expanded.expand_tabs(8)  # tabs are drawn as spaces to the next stop of 8
    assert [g for b in bodies for g in visible(b)] == visible(expanded.plain)
    # a word that fits in a row is never cut (CJK, which may break between characters, aside)
    for word in {p for p, _ in pieces}:
        if cell_len(word) <= width - len(CONTINUATION) and not _CJK.search(word):
            assert sum(b.count(word) for b in bodies) == line.count(word), (word, rows)


def test_the_json_preview_imports_no_rich(tmp_path: Path) -> None:
    """The layout lives in preview_text, imported only for the text format: `--format json` stays fast."""
    path = _archive(tmp_path)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "crossposter", "preview", path.name,
                           "--format", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "crossposter" in imported and imported.isdisjoint({"rich", "wcwidth", "pydantic", "PIL"})
    json.loads(proc.stdout)
