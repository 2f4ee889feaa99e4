"""Nothing the person wrote disappears without a word, and one thread's Markdown never hides the next threads.

Each case was found by trying hostile input: a deep list or quote (markdown-it skips the rest of the whole
document at nesting level 20), an unclosed `<!--` or code fence (CommonMark runs it to the end of the file),
a list of empty items (taken for a table of contents), a NUL byte, links markdown-it refuses to make links.
Expectations come from the test's own text (marker words, line numbers counted here), never from the program.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossposter.archive import parse_archive, read_archive
from crossposter.plan import PlanOptions, plan_thread
from crossposter.render import blocks

OPTIONS = PlanOptions(decode_images=False)


def _plans(text: str, tmp_path: Path) -> dict[str, object]:
    archive = parse_archive(text, tmp_path / "a.md")
    return {t.title: plan_thread(archive, t, OPTIONS) for t in archive.threads}


def _posted(plan) -> str:  # noqa: ANN001
    return "\n".join(p.text for pp in plan.platforms.values() for p in pp.posts)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if needle in line)


LATER = "\n## Two\n\nSecond thread text.\n\n## Three\n<!-- crossposter\nschedule: 2030-01-01T09:00:00Z\n-->\n\nThird.\n"


# --------------------------------------------------------------------------- nesting depth


def _deep_list(depth: int) -> str:
    return "".join("  " * d + f"- item{d}\n" for d in range(depth))


@pytest.mark.parametrize("deep", [_deep_list(10), _deep_list(14), "> " * 20 + "deep quote\n",
                                  "> " * 25 + "deep quote\n> " + "> " * 24 + "still deep\n",
                                  "- a\n" + "  " + "> " * 19 + "quoted deep in a list\n"],
                         ids=["list10", "list14", "quote20", "quote25", "mixed"])
def test_deep_nesting_is_an_error_at_its_line_and_hides_nothing_after_it(deep: str, tmp_path: Path) -> None:
    head = "# Archive\n\n## One\n\nOpening.\n\n"
    text = head + deep + "\nAfter the deep part.\n" + LATER
    first, last = head.count("\n") + 1, head.count("\n") + deep.count("\n")  # the deep part's lines
    plans = _plans(text, tmp_path)
    assert list(plans) == ["One", "Two", "Three"]  # markdown-it alone lost Two and Three (lists)
    one = plans["One"]
    assert "After the deep part." in _posted(one)
    assert any("nested too deeply" in d.message and first <= d.line <= last for d in one.errors), one.errors
    assert [p.text for pp in plans["Two"].platforms.values() for p in pp.posts] == ["Second thread text."] * 3
    assert plans["Three"].errors == [] and _posted(plans["Three"]) == "\n".join(["Third."] * 3)


def test_a_list_nine_deep_is_still_posted_whole(tmp_path: Path) -> None:
    """Below the limit nothing changes: the deepest item is posted, indented like the others."""
    plans = _plans("## One\n\n" + _deep_list(9) + LATER, tmp_path)
    assert not plans["One"].errors
    assert "item8" in _posted(plans["One"]) and list(plans) == ["One", "Two", "Three"]


def test_status_and_the_daemon_see_the_threads_after_a_deep_list(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from crossposter.commands import status as status_cmd
    from crossposter.config import load_config
    from crossposter.daemon.engine import Engine

    future = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    (tmp_path / "a.md").write_text(
        "## One\n\n" + _deep_list(12) + f"\n## Later\n<!-- crossposter\nschedule: {future}\n-->\n\nLater text.\n",
        encoding="utf-8")
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: UTC\nstate_dir: state\narchives: ['a.md']\n"
                   "platforms: {bluesky: {handle: me.test}}\ndaemon: {watch_interval: 0.2}\n")
    assert status_cmd.run([], "json", cfg) == 0
    by = {t["title"]: t for t in json.loads(capsys.readouterr().out)["threads"]}
    assert list(by) == ["One", "Later"]
    assert by["Later"]["schedule"] is not None and by["Later"]["state"] == "scheduled"
    assert any("nested too deeply" in e["message"] for e in by["One"]["errors"])
    eng = Engine(load_config(cfg), publish=lambda *a, **k: None)
    eng.poll(initial=True)
    later = [info for info in eng.threads.values() if info.title == "Later"]
    assert later and later[0].schedule is not None  # the daemon will publish it


# --------------------------------------------------------------------------- unclosed blocks


@pytest.mark.parametrize("later, closes", [(LATER, True), (LATER.replace("<!-- crossposter", "").replace(
    "-->", ""), False)], ids=["a metadata block's --> would close it", "never closed"])
def test_an_unclosed_comment_is_an_error_and_the_later_threads_stay_threads(later: str, closes: bool,
                                                                           tmp_path: Path) -> None:
    """The realistic case: a forgotten `-->`, and the next thread's metadata block supplies one. CommonMark
    then hides every thread in between (here Two, and Three with its schedule)."""
    text = "## One\n\nHello.\n\n<!-- a note I forgot to close\n\nMore text.\n" + later
    plans = _plans(text, tmp_path)
    assert list(plans) == ["One", "Two", "Three"]  # CommonMark alone: only One
    one = plans["One"]
    comment = _line_of(text, "<!-- a note")
    (error,) = [d for d in one.errors if d.line == comment]
    if closes:  # it names the line where the metadata block's `-->` would end it
        assert f"to line {_line_of(text, '-->')}" in error.message, error
    else:
        assert "never closed" in error.message, error
    # the later threads exist (a scheduled one is never silently dropped) but cannot be posted by accident:
    # per CommonMark they are inside the comment, and each says so, naming the comment's line
    for title in ("Two", "Three"):
        plan = plans[title]
        assert any(f"opened at line {comment}" in d.message for d in plan.errors), (title, plan.errors)
    path = tmp_path / "r.md"
    path.write_text(text, encoding="utf-8")
    assert ("schedule" in read_archive(path).find("Three").metadata) == closes


def test_an_unclosed_comment_in_the_last_thread_is_an_error(tmp_path: Path) -> None:
    text = "## One\n\nHello.\n\n<!-- note\n\nThis paragraph would vanish.\n"
    one = _plans(text, tmp_path)["One"]
    assert [d.line for d in one.errors] == [5] and "never closed" in one.errors[0].message


def test_an_unclosed_fence_does_not_swallow_the_later_threads(tmp_path: Path) -> None:
    text = "## One\n\nCode:\n\n```\nprint(1)\n" + LATER
    plans = _plans(text, tmp_path)
    assert list(plans) == ["One", "Two", "Three"]
    assert "## Two" not in _posted(plans["One"])  # CommonMark: the rest of the file is One's code block
    assert any(d.line == 5 and "never closed" in d.message for d in plans["One"].errors)
    assert all(plans[t].errors for t in ("Two", "Three"))


def test_a_comment_that_closes_later_keeps_its_meaning_with_a_warning(tmp_path: Path) -> None:
    """Commenting out a draft thread on purpose: it is not a thread, and the preview says so."""
    text = "## One\n\nHello.\n\n<!--\n## Draft\n\nnot ready\n-->\n\n## Two\n\nSecond.\n"
    plans = _plans(text, tmp_path)
    assert list(plans) == ["One", "Two"]
    assert not plans["One"].errors and not plans["Two"].errors
    assert any("6" in d.message and "hides the heading" in d.message for d in plans["One"].warnings)
    assert "not ready" not in _posted(plans["One"])


def test_a_closed_fence_holding_heading_lines_is_code(tmp_path: Path) -> None:
    text = "## One\n\n```markdown\n## Not a thread\n```\n\n## Two\n\nSecond.\n"
    plans = _plans(text, tmp_path)
    assert list(plans) == ["One", "Two"] and not plans["One"].errors and not plans["One"].warnings
    assert "## Not a thread" in _posted(plans["One"])


def test_check_reports_an_unclosed_comment_and_the_threads_it_would_hide(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from crossposter.commands import check as check_cmd

    future = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    (tmp_path / "a.md").write_text(f"## One\n\nHi.\n\n<!-- todo\n\n## Later\n<!-- crossposter\nschedule: {future}"
                                   "\n-->\n\nLater text.\n", encoding="utf-8")
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: UTC\nstate_dir: state\narchives: ['a.md']\nplatforms: {bluesky: {handle: me.test},"
                   " mastodon: {enabled: false}}\n")
    monkeypatch.setenv("CROSSPOSTER_BLUESKY_PASSWORD", "pw-abcdef")
    import crossposter.platforms as platforms_pkg
    from tests.process.test_status import _Adapter

    monkeypatch.setattr(platforms_pkg, "load_adapter", lambda p, config: _Adapter(p, fail=False))
    assert check_cmd.run(cfg) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("FAIL") and "a.md:7" in line and "line 5" in line for line in out.splitlines()), out
    assert any("a.md:5" in line and "not closed" in line for line in out.splitlines()), out


def test_the_daemon_logs_a_thread_hidden_by_an_unclosed_comment(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from crossposter.config import load_config
    from crossposter.daemon.engine import Engine

    future = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    (tmp_path / "a.md").write_text(f"## One\n\nHi.\n\n<!-- todo\n\n## Later\n<!-- crossposter\nschedule: {future}"
                                   "\n-->\n\nLater text.\n", encoding="utf-8")
    cfg = tmp_path / "crossposter.yaml"
    cfg.write_text("timezone: UTC\nstate_dir: state\narchives: ['a.md']\nplatforms: {bluesky: {handle: me.test}}\n")
    eng = Engine(load_config(cfg), publish=lambda *a, **k: None)
    with caplog.at_level(logging.ERROR):
        eng.poll(initial=True)
    assert any(info.title == "Later" for info in eng.threads.values())
    assert any("a.md:7" in r.getMessage() and "line 5" in r.getMessage() for r in caplog.records), caplog.text


# --------------------------------------------------------------------------- table of contents


@pytest.mark.parametrize("body", ["-\n-\n-\n-\n", "- \n- \n- \n", "- [One](#one)\n-\n"])
def test_a_list_of_empty_items_is_not_a_table_of_contents(body: str, tmp_path: Path) -> None:
    thread = parse_archive("## Notes\n\n" + body, tmp_path / "a.md").threads[0]
    assert thread.skipped is None


def test_a_real_table_of_contents_is_still_skipped(tmp_path: Path) -> None:
    toc = "- [One](#one)\n- [Two](#two)\n  - [Two, part](#two-part)\n"
    assert parse_archive("## Contents\n\n" + toc, tmp_path / "a.md").threads[0].skipped == "table of contents"


def test_an_empty_list_item_is_a_warning(tmp_path: Path) -> None:
    one = _plans("## One\n\n- first\n-\n- third\n", tmp_path)["One"]
    assert [d.line for d in one.warnings] == [4] and "empty list item" in one.warnings[0].message


# --------------------------------------------------------------------------- NUL, refused links, raw HTML


def test_a_nul_byte_is_an_error_at_its_line(tmp_path: Path) -> None:
    one = _plans("## One\n\nfine\n\nbro\0ken\n", tmp_path)["One"]
    assert [d.line for d in one.errors] == [5] and "NUL" in one.errors[0].message


@pytest.mark.parametrize("markdown", ["![](file:///etc/passwd)", "![x](javascript:alert(1))",
                                      "[click](javascript:alert(1))", "[home](file:///home/me)",
                                      "[x](vbscript:msgbox)", "<javascript:alert(1)>", "[d](data:text/html,hi)"])
def test_links_markdown_viewers_refuse_are_errors_not_literal_text(markdown: str, tmp_path: Path) -> None:
    one = _plans(f"## One\n\nLook: {markdown} there.\n", tmp_path)["One"]
    assert [d.line for d in one.errors] == [3], one.errors
    assert all(not p.images for pp in one.platforms.values() for p in pp.posts)


def test_http_and_mail_links_are_unchanged(tmp_path: Path) -> None:
    one = _plans("## One\n\n[site](https://example.com) and <mailto:me@example.com>\n", tmp_path)["One"]
    assert not one.errors
    assert one.platforms["mastodon"].posts[0].text == "site https://example.com and mailto:me@example.com"


def test_raw_html_is_an_error_and_a_closed_comment_is_silent(tmp_path: Path) -> None:
    one = _plans("## One\n\nText.\n\n<!-- a note -->\n\n<div>\nHidden words\n</div>\n", tmp_path)["One"]
    assert [d.line for d in one.errors] == [7] and "raw HTML" in one.errors[0].message


# --------------------------------------------------------------------------- the safety net


def test_a_block_the_renderer_was_not_given_is_an_error_at_its_lines() -> None:
    """Whatever drops a block without a token (a parser rule, a bug) is caught by the line coverage."""
    from crossposter.archive import markdown_parser

    body = "First paragraph.\n\nSecond paragraph,\non two lines.\n\n- item\n"
    tokens = markdown_parser().parse(body)
    assert not blocks(body, 10, Path("/tmp"), tokens=tokens).errors
    i = next(i for i, t in enumerate(tokens) if t.type == "paragraph_open" and t.map == [2, 4])
    dropped = tokens[:i] + tokens[i + 3:]  # the second paragraph's open, inline and close
    rendered = blocks(body, 10, Path("/tmp"), tokens=dropped)
    assert [d.line for d in rendered.errors] == [12] and "lines 12–13" in rendered.errors[0].message


_FRAGMENTS = [
    "plain words here",
    "- item\n  - nested item",
    "> quoted\n>\n> more",
    "```\ncode line\n```",
    "<!-- closed note -->",
    "<!-- open note",
    "```\nopen fence",
    "<div>\nraw html\n</div>",
    "-\n- after empty",
    "[x](javascript:void)",
    "1. one\n2. two",
    "    indented code",
    "---",
    "[ref]: https://example.com",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.integers(1, 30)), min_size=1, max_size=6))
def test_one_threads_body_never_changes_the_thread_list_and_every_loss_has_an_error(parts: list,
                                                                                   tmp_path: Path) -> None:
    """Property: whatever thread One holds, the file has threads One, Two, Three; and every marker word of
    One that is not posted has an error at or before its line (or One has an error that hides the rest)."""
    body = []
    for k, part in enumerate(parts):
        if isinstance(part, int):  # a list or quote nested `part` deep
            if k % 2:
                part_text = "".join("  " * d + f"- w{k}x{d}\n" for d in range(part))
            else:
                part_text = "> " * part + f"w{k}q\n"
            body.append(part_text.rstrip("\n"))
        else:
            body.append(part)
    text = "## One\n\n" + "\n\n".join(body) + "\n\nEND1 marker.\n" + LATER
    plans = _plans(text, tmp_path)
    assert list(plans) == ["One", "Two", "Three"]
    one = plans["One"]
    posted = _posted(one)
    lines = text.split("\n")
    for n, line in enumerate(lines, 1):
        if line.startswith("## Two"):
            break
        for word in line.replace(">", " ").replace("-", " ").split():
            if word.startswith(("w", "END1")) and word.rstrip(".") not in posted:
                assert any(d.line <= n for d in one.errors), (n, word, text, one.errors)
    for title in ("Two", "Three"):  # posted as written unless One's unclosed block hides them (an error)
        plan = plans[title]
        assert plan.errors or "Second thread text." in _posted(plan) or "Third." in _posted(plan)


@pytest.mark.parametrize("opener", ["```", "~~~", "   ```py", "    ```", "\t```", "<div>", "  <!-- note -->", "<x-tag>",
                                    "<notatag", "a <b>c</b>", "`code` span", "~ tilde", "", "> ```"])
def test_the_guards_parse_closed_blocks_as_commonmark_does(opener: str) -> None:
    """The fence and HTML guards only bound blocks: on a file whose blocks all close they change nothing,
    whichever character a line starts with (they skip the lines that open no such block at once)."""
    from markdown_it import MarkdownIt

    from crossposter.markdown_dialect import markdown_parser

    start = opener.strip()
    closer = "```" if start.startswith("```") else "~~~" if start.startswith("~~~") else "</div>" if start[:1] == "<" else ""
    source = f"# A\n\n{opener}\ntext\n{closer}\n\n## B\n\npara <i>x</i>\n\n```\ncode\n```\n\n<!-- done -->\n"

    def shape(tokens: list) -> list:
        return [(t.type, t.map, t.content) for t in tokens]

    assert shape(markdown_parser().parse(source)) == shape(MarkdownIt("commonmark").parse(source))
