"""Reading archives: threads, line numbers, dates, metadata, skips, encodings.

Expectations are computed independently of crossposter.archive (line scans of the file,
values read off the fixture by eye) so the tests cannot simply echo the implementation.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from crossposter.archive import Archive, ArchiveError, Thread, parse_archive, read_archive

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "archives"

SEED_TITLES = [
    "Table of Contents",
    "Würstchen",
    "Mixtral of Experts",
    "Aespa - Post-Training Quantization of Hyper-Scale Transformers",
    "Aya",
    "Scalable Diffusion Models with Transformers",
    "SambaNova Systems",
    "Groq",
]
# read off the seed by eye
SEED_DATES = {
    "Würstchen": "2024-02-13 21:25",
    "Mixtral of Experts": "2024-02-14 23:23",
    "Aespa - Post-Training Quantization of Hyper-Scale Transformers": "2024-02-16 19:26",
    "Aya": "2024-02-17 14:21",
    "Scalable Diffusion Models with Transformers": "2024-02-17 16:11",
    "SambaNova Systems": None,
    "Groq": None,
}


def scan_headings(text: str) -> list[tuple[int, str, int]]:
    """(line, title, level) of `#`/`##` ATX headings found by a plain line scan (the seed has no fences)."""
    out = []
    for n, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        m = re.match(r"(#{1,2}) (.*)$", line)
        if m:
            out.append((n, m.group(2).strip(), len(m.group(1))))
    return out


@pytest.fixture(scope="module")
def seed_path(shared_dir: Path) -> Path:
    return shared_dir / "seed" / "tweets.md"


def file_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8-sig").replace("\r\n", "\n")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def check_against_scan(archive: Archive, data: bytes) -> None:
    """Heading lines, end lines and body lines all agree with a line scan of the raw bytes."""
    lines = file_lines(data)
    heads = scan_headings(data.decode("utf-8-sig"))
    h2 = [(n, t) for n, t, lvl in heads if lvl == 2]
    assert [(t.line, t.title) for t in archive.threads] == h2
    boundaries = [n for n, _, _ in heads]
    for t in archive.threads:
        later = [b for b in boundaries if b > t.line]
        assert t.end_line == (later[0] - 1 if later else len(lines))
        for k, body_line in enumerate(t.body.removesuffix("\n").split("\n") if t.body else []):
            assert body_line == lines[t.body_line - 1 + k]


def test_seed_threads(seed_path: Path) -> None:
    data = seed_path.read_bytes()
    archive = read_archive(seed_path)
    assert archive.path == seed_path.absolute()
    assert [t.title for t in archive.threads] == SEED_TITLES
    check_against_scan(archive, data)
    toc, *threads = archive.threads
    assert toc.skipped == "table of contents"
    assert [t.skipped for t in threads] == [None] * 7
    assert {t.title: t.date for t in threads} == SEED_DATES
    for t in threads:
        assert t.metadata == {}
        assert t.date is None or t.date not in t.body
        assert t.body.strip() and not t.body.startswith("\n")
    # the date never leaks into the body; the first body line of Würstchen is its first sentence
    wurst = archive.find("Würstchen")
    assert wurst.body.startswith("Never really understood diffusion models")
    assert wurst.key == "tweets.md::Würstchen"


def test_seed_crlf_bom_and_no_final_newline(seed_path: Path, tmp_path: Path) -> None:
    reference = read_archive(seed_path)
    lf = seed_path.read_bytes()
    variants = {
        "crlf.md": lf.replace(b"\n", b"\r\n"),
        "bom.md": b"\xef\xbb\xbf" + lf,
        "bom_crlf.md": b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n"),
        "nofinal.md": lf.rstrip(b"\n"),
        "nofinal_crlf.md": lf.replace(b"\n", b"\r\n").rstrip(b"\r\n"),
    }
    for name, data in variants.items():
        p = tmp_path / name
        p.write_bytes(data)
        archive = read_archive(p)
        check_against_scan(archive, data)
        got = [(t.title, t.line, t.end_line, t.date, t.body, t.body_line, t.skipped) for t in archive.threads]
        want = [(t.title, t.line, t.end_line, t.date, t.body, t.body_line, t.skipped) for t in reference.threads]
        if name.startswith("nofinal"):  # the body is the exact slice: no invented final line ending
            last = want[-1]
            want[-1] = (*last[:4], last[4].removesuffix("\n"), *last[5:])
        assert got == want, name
        assert all("\r" not in t.body for t in archive.threads)


def test_structure_fixture() -> None:
    path = FIXTURES / "structure.md"
    data = path.read_bytes()
    assert not data.endswith(b"\n")  # the fixture's point: no final newline
    archive = read_archive(path)
    by_title = {t.title: t for t in archive.threads}
    assert list(by_title) == ["First thread", "Second thread", "Setext thread", "Empty thread", "Date only",
                              "Not a contents list", "Ends the file"]
    lines = file_lines(data)

    def line_of(text: str) -> int:
        return lines.index(text) + 1

    first = by_title["First thread"]
    assert first.line == line_of("## First thread")
    assert first.date == "2025-01-02"
    # fenced, indented, quoted and HTML `##` lines are body, not threads; `# A chapter` ends the section
    for inner in ("## not a heading, inside a fence", "    ## not a heading, indented code",
                  "> ## not a thread, inside a blockquote", "## still html"):
        assert inner in first.body.split("\n")
    assert first.end_line == line_of("# A chapter") - 1
    assert "Text under a level-1 heading" not in "".join(t.body for t in archive.threads)
    assert "Preamble" not in "".join(t.body for t in archive.threads)

    second = by_title["Second thread"]
    assert second.metadata == {"skip": True} and second.skipped == "skip: true"
    assert (second.block_line, second.block_end_line) == (line_of("<!-- crossposter"), line_of("-->"))
    assert second.body == "Skipped text.\n\n"  # the exact slice up to the next heading

    setext = by_title["Setext thread"]
    assert setext.line == line_of("Setext thread")
    assert setext.heading_end_line == line_of("-------------")
    assert setext.date == "2025-03-04 05:06"
    assert setext.body_line == line_of("Body of the setext thread with a [reference link][ref].")

    assert by_title["Empty thread"].skipped == "empty"
    assert by_title["Date only"].skipped == "empty" and by_title["Date only"].date == "2025-05-06 07:08"
    assert by_title["Not a contents list"].skipped is None  # one link leaves the document

    last = by_title["Ends the file"]
    assert last.end_line == len(lines)
    assert last.body.startswith("Last line without newline.\n")


def test_body_tokens_match_a_fresh_parse_of_the_body(seed_path: Path) -> None:
    from crossposter.markdown_dialect import href_as_typed

    md = MarkdownIt("commonmark")
    md.normalizeLink = href_as_typed  # links as typed, the project's one change to CommonMark's tokens

    def shape(tokens: list) -> list:
        return [(t.type, t.map, t.content, t.level, t.attrs,
                 [(c.type, c.content, c.attrs) for c in t.children or []]) for t in tokens]

    for path in (seed_path, FIXTURES / "structure.md"):
        archive = read_archive(path)
        for t in archive.threads:
            if t.title == "Setext thread":
                continue  # its reference definition lives elsewhere in the file: checked below
            # plain CommonMark, plus a `definition` token where a reference definition is (so its lines
            # are accounted for)
            ours = [tok for tok in archive.body_tokens(t) if tok.type != "definition"]
            assert shape(ours) == shape(md.parse(t.body)), (path, t.title)
            assert archive.body_tokens(t) is archive.body_tokens(t)  # cached, not re-parsed


def test_body_tokens_resolve_references_from_the_whole_file() -> None:
    archive = read_archive(FIXTURES / "structure.md")
    tokens = archive.body_tokens(archive.find("Setext thread"))
    hrefs = [c.attrs["href"] for t in tokens for c in t.children or [] if c.type == "link_open"]
    assert hrefs == ["https://example.com/ref"]


def test_body_tokens_when_date_and_text_share_a_paragraph() -> None:
    archive = parse_archive("## T\n2024-01-01 10:00\nText right under the date.\n", Path("a.md"))
    t = archive.threads[0]
    assert t.date == "2024-01-01 10:00"
    assert t.body == "Text right under the date.\n" and t.body_line == 3
    tokens = archive.body_tokens(t)
    assert [x.type for x in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    assert tokens[0].map == [0, 1]


@pytest.mark.parametrize("date_line, expected", [
    ("2024-02-13 21:25", "2024-02-13 21:25"),
    ("2024-02-13", "2024-02-13"),
    ("2024-02-13T21:25", "2024-02-13 21:25"),
    ("2024-02-13 21:25 and more", None),
    ("On 2024-02-13", None),
])
def test_date_line_forms(date_line: str, expected: str | None) -> None:
    t = parse_archive(f"## T\n\n{date_line}\n\nBody.\n", Path("a.md")).threads[0]
    assert t.date == expected
    assert (date_line in t.body) == (expected is None)


def test_toc_detection_is_strict() -> None:
    text = ("## Contents\n\n1. [A](#a)\n   - [B](#b)\n\n"
            "## Notes list\n\n- see [A](#a) for the intro\n\n"
            "## Plain list\n\n- one\n- two\n\n"
            "## List then text\n\n- [A](#a)\n\nMore text.\n")
    skipped = {t.title: t.skipped for t in parse_archive(text, Path("a.md")).threads}
    assert skipped == {"Contents": "table of contents", "Notes list": None, "Plain list": None,
                       "List then text": None}


def test_skip_false_and_empty_block() -> None:
    text = "## A\n<!-- crossposter\nskip: false\n-->\nBody.\n\n## B\n<!-- crossposter -->\nBody.\n"
    a, b = parse_archive(text, Path("a.md")).threads
    assert a.skipped is None and a.metadata == {"skip": False}
    assert b.metadata == {} and (b.block_line, b.block_end_line) == (8, 8) and b.body == "Body.\n"


def test_malformed_block_names_file_and_line() -> None:
    path = FIXTURES / "malformed_yaml.md"
    bad = file_lines(path.read_bytes()).index("schedule: 2026: bad") + 1
    with pytest.raises(ArchiveError) as info:
        read_archive(path)
    err = info.value
    assert err.line == bad and err.path == path.absolute()
    assert str(err).startswith(f"{path.absolute()}:{bad}: ")
    assert "YAML" in err.message and "fix" in err.message


def test_unterminated_block() -> None:
    path = FIXTURES / "unterminated.md"
    opened = file_lines(path.read_bytes()).index("<!-- crossposter") + 1
    with pytest.raises(ArchiveError) as info:
        read_archive(path)
    assert info.value.line == opened and "-->" in info.value.message


@pytest.mark.parametrize("block, line, words", [
    ("<!-- crossposter\n- a\n- b\n-->\n", 2, "mapping"),
    ("<!-- crossposter\nskip: true\n--> trailing\n", 4, "own"),
])
def test_bad_blocks(block: str, line: int, words: str) -> None:
    with pytest.raises(ArchiveError) as info:
        parse_archive("## T\n" + block + "Body.\n", Path("a.md"))
    assert info.value.line == line and words in info.value.message


def test_block_below_date_is_refused() -> None:
    with pytest.raises(ArchiveError) as info:
        parse_archive("## T\n2024-01-01\n<!-- crossposter\nskip: true\n-->\n", Path("a.md"))
    assert info.value.line == 3 and "directly under" in info.value.message


def test_non_utf8_names_the_line() -> None:
    path = FIXTURES / "latin1.md"
    data = path.read_bytes()
    bad_line = data[:data.index(b"\xdf")].count(b"\n") + 1
    with pytest.raises(ArchiveError) as info:
        read_archive(path)
    assert info.value.line == bad_line and "UTF-8" in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as info:
        read_archive(tmp_path / "nope.md")
    assert info.value.line is None and str(info.value).startswith(str(tmp_path / "nope.md") + ": ")


def test_find() -> None:
    archive = parse_archive("## Alpha\nx\n## Beta  Two\ny\n## Dup\na\n## Dup\nb\n", Path("a.md"))
    assert archive.find("Alpha").line == 1
    assert archive.find("beta two").title == "Beta  Two"
    with pytest.raises(ArchiveError, match="ambiguous.*lines 5, 7"):
        archive.find("Dup")
    with pytest.raises(ArchiveError) as info:
        archive.find("Gamma")
    assert "'Alpha'" in info.value.message and "'Beta  Two'" in info.value.message


def test_lone_cr_is_not_a_line_break() -> None:
    archive = parse_archive("## A\nx\ry\n## B\nz\n", Path("a.md"))
    assert [(t.title, t.line) for t in archive.threads] == [("A", 1), ("B", 3)]


def test_error_pickles_and_thread_defaults() -> None:
    err = pickle.loads(pickle.dumps(ArchiveError(Path("a.md"), 3, "bad")))
    assert str(err) == "a.md:3: bad" and err.line == 3
    t = Thread(title="T", line=1, end_line=2, date=None, metadata={}, body="x\n", body_line=2, skipped=None)
    assert t.key == "::T"


def test_generated_archive_parses_in_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is block-parsed once; per-thread work never re-parses it (the benchmark depends on it)."""
    from crossposter.markdown_dialect import block_parser

    text = "".join(f"## T{i}\n\n2024-01-01 10:00\n\n- item {i}\n\nText {i}.\n\n" for i in range(200))
    calls = []
    real = block_parser()
    original = type(real).parse

    def counting(self: MarkdownIt, src: str, env: dict | None = None) -> list:
        calls.append(len(src))
        return original(self, src, env)

    monkeypatch.setattr(type(real), "parse", counting)
    archive = parse_archive(text, tmp_path / "g.md")
    for t in archive.threads:
        archive.body_tokens(t)
    assert len(archive.threads) == 200 and calls == [len(text)]


def test_body_tokens_of_a_foreign_thread_are_parsed_from_its_body() -> None:
    one = parse_archive("## A\n\nfirst *one*\n", Path("a.md"))
    two = parse_archive("# x\n\n## B\n\n- item\n", Path("b.md"))
    tokens = one.body_tokens(two.threads[0])
    assert [t.type for t in tokens][:2] == ["bullet_list_open", "list_item_open"]


def test_unicode_digits_are_not_a_date() -> None:
    t = parse_archive("## A\n٢٠٢٤-٠١-٠١\nBody\n", Path("a.md")).threads[0]
    assert t.date is None and t.body.startswith("٢٠٢٤")


# --------------------------------------------------------------------------- property test over generated Markdown

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PIECES = ["## Title", "##", "# Top", "### Sub", "Title", "---", "===", "```", "~~~", "    code", "> quote",
          "- item", "  - nested", "1. one", "<!--", "-->", "<div>", "", "", "text", "2024-02-13 21:25",
          "[x](#x)", "😀 ש", "  ", "\t## tab"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), min_size=1, max_size=3).map(" ".join), max_size=40),
       st.booleans())
def test_generated_archives_keep_line_mapping(lines: list[str], final_newline: bool) -> None:
    text = "\n".join(lines) + ("\n" if final_newline else "")
    archive = parse_archive(text, Path("g.md"))
    file_lines = text.split("\n")
    previous_end = 0
    for t in archive.threads:
        assert previous_end < t.line <= t.heading_end_line <= max(t.end_line, t.heading_end_line)
        previous_end = t.end_line
        # body line k is file line body_line + k, byte for byte
        for k, line in enumerate(t.body.removesuffix("\n").split("\n") if t.body else []):
            assert line == file_lines[t.body_line - 1 + k]
        assert t.body_line > t.heading_end_line
        assert t.body == "" or t.body_line + t.body.count("\n") - 1 <= t.end_line
    # the same file with CRLF and a BOM reads the same
    again = parse_archive("\ufeff" + text.replace("\n", "\r\n"), Path("g.md"))
    assert [(t.title, t.line, t.end_line, t.body, t.body_line, t.date, t.skipped) for t in again.threads] == \
        [(t.title, t.line, t.end_line, t.body, t.body_line, t.date, t.skipped) for t in archive.threads]
    md = MarkdownIt("commonmark")
    for t in archive.threads:
        got = [(x.type, x.map, x.content) for x in archive.body_tokens(t)]
        assert got == [(x.type, x.map, x.content) for x in md.parse(t.body)]


def test_not_found_lists_a_bounded_number_of_titles() -> None:
    archive = parse_archive("".join(f"## T{i}\nx\n" for i in range(50)), Path("a.md"))
    with pytest.raises(ArchiveError) as info:
        archive.find("nope")
    assert "'T19'" in info.value.message and "'T20'" not in info.value.message and "30 more" in info.value.message
    with pytest.raises(ArchiveError, match="no `##` headings"):
        parse_archive("# only a title\n", Path("b.md")).find("x")


# --------------------------------------------------------------------------- reading only what is a file


def test_a_folder_or_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import os
    import threading

    with pytest.raises(ArchiveError, match="is a folder"):
        read_archive(tmp_path)
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_archive(fifo)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - the outcome is asserted below
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)  # a blocked open would never return
    reader.start()
    reader.join(10)
    assert outcome and isinstance(outcome[0], ArchiveError), "reading a FIFO blocked (or did not fail)"
    assert "FIFO" in outcome[0].message and outcome[0].path == fifo


def test_an_archive_above_the_size_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crossposter.archive as mod

    path = tmp_path / "big.md"
    path.write_text("## T\n\n" + "word " * 100, encoding="utf-8")
    monkeypatch.setattr(mod, "MAX_ARCHIVE_BYTES", 100)
    with pytest.raises(ArchiveError, match="more than crossposter reads") as info:
        read_archive(path)
    assert info.value.path == path
    monkeypatch.setattr(mod, "MAX_ARCHIVE_BYTES", 10_000)
    assert read_archive(path).threads[0].title == "T"


# --------------------------------------------------------------------------- parsing in slices


def _snapshot(archives: list[Archive]) -> list[tuple]:
    """Everything a reader sees of each thread, down to its tokens and its posts."""
    from crossposter.plan import PlanOptions, plan_thread

    out = []
    for archive in archives:
        for t in archive.threads:
            tokens = [(x.type, x.map, x.content, dict(x.meta or {}),
                       [(c.type, c.content, c.attrs) for c in x.children or []]) for x in archive.body_tokens(t)]
            plan = plan_thread(archive, t, PlanOptions(decode_images=False))
            posts = {p: [x.text for x in pp.posts] for p, pp in plan.platforms.items()}
            out.append((t.title, t.line, t.end_line, t.heading_end_line, t.body, t.body_line, t.date, t.metadata,
                        t.skipped, t.block_line, t.block_end_line, t.errors, t.warnings, tokens, posts,
                        plan.errors, plan.warnings))
    return out


SECTION_PIECES = ["Plain text with a [ref link][r1].", "- item\n  - nested", "> quote\n> more",
                  "```\n## a heading line in a closed fence\n```", "```markdown\n# top\n", "<!-- a comment -->",
                  "<!-- unclosed", "-->", "<div>\n## in html\n</div>", "[r1]: https://example.com/r1",
                  "[r2]: https://example.com/r2 'title'", "See [two][r2].", "### Sub", "---", "    code",
                  "1. one\n2. two", "text", "Setext\n------"]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(SECTION_PIECES), max_size=5)), min_size=1,
                max_size=8), st.integers(8, 120))
def test_parsing_in_slices_reads_exactly_what_one_parse_reads(sections: list, chunk: int) -> None:
    """Property: with any slice size (here a few dozen characters, so every heading can end a slice),
    read_archive and the streamed parts give the same threads, tokens, posts and problems as one parse."""
    from unittest import mock

    import crossposter.archive as mod
    from crossposter.archive import parse_archive_parts

    parts = ["# Archive\n\nPreamble.\n"]
    for i, (metadata, pieces) in enumerate(sections):
        meta = "<!-- crossposter\nschedule: 2030-01-01T09:00:00Z\n-->\n" if metadata else ""
        parts.append(f"\n## Thread {i}\n{meta}\n" + "\n\n".join(pieces) + "\n")
    text = "".join(parts)
    whole = _snapshot([parse_archive(text, Path("/tmp/s.md"))])
    with mock.patch.object(mod, "_CHUNK_CHARS", chunk):
        sliced = _snapshot([parse_archive(text, Path("/tmp/s.md"))])
        streamed = _snapshot(list(parse_archive_parts(text, Path("/tmp/s.md"))))
    assert sliced == whole
    assert streamed == whole


def test_a_long_archive_is_parsed_in_slices_that_end_at_headings(monkeypatch: pytest.MonkeyPatch) -> None:
    import crossposter.archive as mod
    from crossposter.archive import parse_archive_parts
    from crossposter.markdown_dialect import block_parser

    calls: list[str] = []
    real = block_parser()
    original = type(real).parse

    def counting(self: MarkdownIt, src: str, env: dict | None = None) -> list:
        calls.append(src)
        return original(self, src, env)

    monkeypatch.setattr(type(real), "parse", counting)
    monkeypatch.setattr(mod, "_CHUNK_CHARS", 200)
    text = "".join(f"## T{i}\n\n```\ncode {i}\n```\n\n- item {i}\n" for i in range(60))
    parts = list(parse_archive_parts(text, Path("a.md")))
    assert len(parts) == len(calls) > 5 and "".join(calls) == text  # each character parsed once
    assert all(src.startswith("## T") for src in calls)
    assert [t.title for p in parts for t in p.threads] == [f"T{i}" for i in range(60)]
    # a `## ` line inside a code block can end a slice only once the block is known to close later:
    # that slice is parsed again up to the next heading after the close
    calls.clear()
    text = "".join(f"## T{i}\n\n```\n## code {i}\n```\n\n- item {i}\n" for i in range(60))
    parts = list(parse_archive_parts(text, Path("a.md")))
    assert [t.title for p in parts for t in p.threads] == [f"T{i}" for i in range(60)]
    assert all(src.startswith("## T") for src in calls) and len(parts) > 5
