"""The bundled example archive (`threads/`): its images are real, and it shows every archive feature.

The quick start previews `threads/`, so the example must preview without a single error or warning, and
it doubles as living documentation of the format: each feature DESIGN.md describes appears at least once.
Everything is found through markdown-it-py tokens, never by pattern-matching raw Markdown.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from PIL import Image

from crossposter import counting

ROOT = Path(__file__).resolve().parents[2]
THREADS = ROOT / "threads"
EXAMPLE = THREADS / "example.md"
MAX_IMAGE_BYTES = 60_000
DATE_LINE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


@dataclass
class Section:
    """One `##` section: its title and the block tokens up to the next `#`/`##` heading."""

    title: str
    tokens: list[Token] = field(default_factory=list)

    def inlines(self) -> list[Token]:
        return [t for t in self.tokens if t.type == "inline"]

    def children(self) -> list[Token]:
        return [c for t in self.inlines() for c in (t.children or [])]

    def types(self) -> set[str]:
        return {t.type for t in self.tokens} | {c.type for c in self.children()}


@dataclass
class Parsed:
    tokens: list[Token]
    preamble: list[Token]
    sections: list[Section]

    def section(self, predicate: Callable[[Section], bool]) -> list[Section]:
        return [s for s in self.sections if predicate(s)]


def parse(path: Path) -> Parsed:
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    preamble: list[Token] = []
    sections: list[Section] = []
    current: Section | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open" and tok.tag in ("h1", "h2"):
            title = tokens[i + 1].content
            current = Section(title) if tok.tag == "h2" else None
            if current is not None:
                sections.append(current)
            i += 3  # heading_open, inline, heading_close
            continue
        (current.tokens if current is not None else preamble).append(tok)
        i += 1
    return Parsed(tokens, preamble, sections)


def metadata_block(section: Section) -> dict | None:
    """The YAML of the `<!-- crossposter ... -->` block when it is the first thing under the heading."""
    if not section.tokens or section.tokens[0].type != "html_block":
        return None
    html = section.tokens[0].content.strip()
    if not (html.startswith("<!-- crossposter") and html.endswith("-->")):
        return None
    return yaml.safe_load(html[len("<!-- crossposter") : -len("-->")]) or {}


def is_toc(section: Section) -> bool:
    """A section that is only a list of in-document `#anchor` links."""
    if not section.tokens or section.tokens[0].type != "bullet_list_open":
        return False
    allowed = {"bullet_list_open", "bullet_list_close", "list_item_open", "list_item_close"}
    allowed |= {"paragraph_open", "paragraph_close", "inline"}
    links = [c for c in section.children() if c.type == "link_open"]
    return (
        all(t.type in allowed for t in section.tokens)
        and bool(links)
        and all(str(c.attrs["href"]).startswith("#") for c in links)
    )


def plain_text(inline: Token) -> str:
    """What a reader sees of an inline token: text and code, without Markdown markers or link targets."""
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline", "softbreak"))


def text_outside_links(section: Section) -> list[str]:
    out: list[str] = []
    for inline in section.inlines():
        depth = 0
        for c in inline.children or []:
            depth += c.type == "link_open"
            depth -= c.type == "link_close"
            if c.type == "text" and depth == 0:
                out.append(c.content)
    return out


@pytest.fixture(scope="module")
def example() -> Parsed:
    assert EXAMPLE.is_file(), "threads/example.md is the example the README's quick start previews"
    return parse(EXAMPLE)


def _postable(p: Parsed) -> list[Section]:
    return [s for s in p.sections if not is_toc(s) and not (metadata_block(s) or {}).get("skip")]


# --- images ----------------------------------------------------------------------------------------------


def _images() -> list[tuple[Path, Token]]:
    found = []
    for md in sorted(THREADS.glob("*.md")):
        for tok in parse(md).tokens:
            found.extend((md, c) for c in tok.children or [] if c.type == "image")
    return found


def test_the_archive_has_images() -> None:
    assert len(_images()) >= 2


@pytest.mark.parametrize(
    ("md", "image"), _images(), ids=lambda v: v.name if isinstance(v, Path) else v.attrs["src"]
)
def test_every_image_is_real_small_inside_threads_and_described(md: Path, image: Token) -> None:
    src = str(image.attrs["src"])
    path = (md.parent / src).resolve()
    assert path.is_relative_to(THREADS.resolve()), f"{md.name}: {src} points outside threads/"
    assert path.is_file(), f"{md.name}: {src} does not exist"
    assert path.stat().st_size < MAX_IMAGE_BYTES, f"{src} is {path.stat().st_size} bytes"
    with Image.open(path) as img:
        img.verify()  # structure and checksums
    with Image.open(path) as img:
        img.load()  # and the pixels decode
        assert img.width >= 200 and img.height >= 100
    alt = "".join(c.content for c in image.children or [])
    assert len(alt.split()) >= 5, f"{src}: alt text should describe the image, got {alt!r}"


def test_every_image_file_is_referenced() -> None:
    referenced = {(md.parent / str(t.attrs["src"])).resolve() for md, t in _images()}
    on_disk = {
        p.resolve() for p in (THREADS / "imgs").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    }
    assert on_disk == referenced


# --- the features, one by one ----------------------------------------------------------------------------


def test_title_and_preamble(example: Parsed) -> None:
    first = example.tokens[0]
    assert first.type == "heading_open" and first.tag == "h1"
    assert any(t.type == "paragraph_open" for t in example.preamble), (
        "text before the first ## (not a thread)"
    )


def test_table_of_contents_with_nesting(example: Parsed) -> None:
    tocs = example.section(is_toc)
    assert len(tocs) == 1
    assert sum(t.type == "bullet_list_open" for t in tocs[0].tokens) >= 2  # a nested list of sub-sections


def test_threads_with_date_lines_and_opening_posts(example: Parsed) -> None:
    dated = [
        s
        for s in _postable(example)
        if s.inlines()
        and s.tokens[0].type == "paragraph_open"
        and DATE_LINE.fullmatch(s.inlines()[0].content)
    ]
    assert len(dated) >= 2
    # After the date line comes the opening post: a paragraph before any ### sub-section.
    first = dated[0]
    blocks_before_h3 = []
    for t in first.tokens[3:]:
        if t.type == "heading_open":
            break
        blocks_before_h3.append(t.type)
    assert "paragraph_open" in blocks_before_h3


def test_sub_sections(example: Parsed) -> None:
    h3 = [s for s in _postable(example) if any(t.type == "heading_open" and t.tag == "h3" for t in s.tokens)]
    assert h3 and sum(t.tag == "h3" and t.type == "heading_open" for t in h3[0].tokens) >= 2


def test_bulleted_list_with_a_nested_item_and_a_numbered_list(example: Parsed) -> None:
    nested = False
    for s in _postable(example):
        levels = [t.level for t in s.tokens if t.type == "bullet_list_open"]
        nested |= len(levels) >= 2 and min(levels) < max(levels)
    assert nested, "a bulleted list with one nested item"
    assert any("ordered_list_open" in s.types() for s in _postable(example))


def test_markdown_links_and_bare_urls(example: Parsed) -> None:
    hrefs = [str(c.attrs["href"]) for s in _postable(example) for c in s.children() if c.type == "link_open"]
    assert sum(h.startswith("https://") for h in hrefs) >= 2
    bare = [t for s in _postable(example) for t in text_outside_links(s) if re.search(r"https?://\S+", t)]
    assert bare, "a URL written out in the text (not a Markdown link)"


def test_hashtag_inline_code_and_blockquote(example: Parsed) -> None:
    texts = [t for s in _postable(example) for t in text_outside_links(s)]
    assert any(re.search(r"(?:^|\s)#\w+", t) for t in texts), "a hashtag"
    assert any("code_inline" in s.types() for s in _postable(example))
    assert any("blockquote_open" in s.types() for s in _postable(example))


def test_images_with_alt_text_and_with_a_title(example: Parsed) -> None:
    images = [c for s in _postable(example) for c in s.children() if c.type == "image"]
    assert any(c.attrs.get("title") for c in images), "an image with a title"
    assert any(not c.attrs.get("title") for c in images), "an image with alt text only"


def test_a_paragraph_too_long_for_one_post_on_x(example: Parsed) -> None:
    paragraphs = [plain_text(t) for s in _postable(example) for t in s.inlines()]
    assert max(counting.length("x", p) for p in paragraphs) > 280


def test_text_in_other_scripts_and_emoji(example: Parsed) -> None:
    texts = " ".join(plain_text(t) for s in _postable(example) for t in s.inlines())
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", texts), "CJK text (weighs 2 on X)"
    assert any(len(g) > 1 and not g.isascii() for g in counting.graphemes(texts)), "a multi-code-point emoji"


def test_queued_thread_has_no_date_that_can_expire(example: Parsed) -> None:
    """One thread waits in the queue; none carries a `schedule:`, which would be in the past one day."""
    blocks = [m for s in example.sections if (m := metadata_block(s))]
    assert [m for m in blocks if "schedule" in m] == []
    assert [m for m in blocks if m.get("queued") is True] == [{"queued": True}]


def test_skipped_thread(example: Parsed) -> None:
    skipped = [s for s in example.sections if (metadata_block(s) or {}).get("skip") is True]
    assert len(skipped) == 1
    assert skipped[0].inlines(), "a draft with text, which must still never be posted"


# --- what crossposter itself makes of it -----------------------------------------------------------------


def test_archive_reader_sees_the_same_structure() -> None:
    from crossposter.archive import read_archive

    archive = read_archive(EXAMPLE)
    by_title = {t.title: t for t in archive.threads}
    assert by_title["Contents"].skipped == "table of contents"
    assert by_title["Drafts stay drafts"].skipped == "skip: true"
    assert by_title["How a thread becomes posts"].date == "2026-11-20 18:30"
    # queued, not dated: the bundled example must not expire (a past `schedule` makes `check` fail)
    assert by_title["A thread for the queue"].metadata == {"queued": True}
    assert [t.title for t in archive.threads if t.skipped is None] == [
        "How a thread becomes posts",
        "A picture needs words",
        "Counting other scripts",
        "A thread for the queue",
    ]


def test_preview_of_the_example_is_clean() -> None:
    """The quick start's command: no errors, no warnings, every post within its platform's limit."""
    result = subprocess.run(
        [sys.executable, "-m", "crossposter", "preview", "threads", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    threads = json.loads(result.stdout)["threads"]
    assert len(threads) == 6
    for thread in threads:
        assert thread["errors"] == [] and thread["warnings"] == [], thread["title"]
        for platform, plan in thread["platforms"].items():
            for post in plan["posts"]:
                assert counting.fits(platform, post["text"], plan["limit"])
                assert post["length"] == counting.length(platform, post["text"])
