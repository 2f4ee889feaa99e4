"""A thematic break (`---`) in a thread is a hard post boundary on every platform, and is never posted.

Everything goes through `plan_thread` on a real archive file (what `preview`, `post`, the daemon and the
HTML preview all call), so the boundary holds wherever posts are made.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from crossposter.archive import read_archive
from crossposter.model import PLATFORMS, ThreadPlan
from crossposter.plan import PlanOptions, plan_thread
from crossposter.preview_html import render_html

OPTIONS = PlanOptions(decode_images=False)


def plan_of(folder: Path, body: str, options: PlanOptions = OPTIONS, index: int = 0) -> ThreadPlan:
    path = folder / "archive.md"
    path.write_text(f"# Archive\n\n## A thread\n\n{body}", encoding="utf-8")
    archive = read_archive(path)
    return plan_thread(archive, archive.threads[index], options)


def texts(plan: ThreadPlan, platform: str) -> list[str]:
    return [p.text for p in plan.platforms[platform].posts]


def image(folder: Path, name: str) -> None:
    Image.new("RGB", (8, 8), "red").save(folder / name)


def test_a_thematic_break_starts_a_new_post_on_every_platform(tmp_path: Path) -> None:
    for rule in ("---", "***", "___", "- - -", "   ----"):
        plan = plan_of(tmp_path, f"One short post.\n\n{rule}\n\nAnother short post.\n")
        for platform in PLATFORMS:
            assert texts(plan, platform) == ["One short post.", "Another short post."], (rule, platform)
        assert plan.warnings == [] and plan.errors == []


def test_the_boundary_is_a_boundary_after_a_list_a_heading_and_code(tmp_path: Path) -> None:
    body = "- one\n- two\n\n---\n\n#### Lead\n\n---\n\n```\ncode\n```\n\n---\n\n1. item\n"
    plan = plan_of(tmp_path, body)
    for platform in PLATFORMS:
        assert texts(plan, platform) == ["- one\n- two", "Lead", "code", "1. item"], platform


def test_the_post_after_a_rule_is_numbered_and_posted_whole(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "a\n\n---\n\nb\n", PlanOptions(decode_images=False, numbering=True))
    assert texts(plan, "x") == ["a\n1/2", "b\n2/2"]


def test_inside_quotes_and_list_items_a_thematic_break_is_still_one(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "> quoted one\n>\n> ---\n>\n> quoted two\n\n- item one\n\n  ***\n\n  still item\n")
    assert texts(plan, "mastodon") == ["“quoted one”", "“quoted two”\n- item one", "still item"]


def test_inside_code_it_is_code(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "```\nabove\n---\nbelow\n```\n\n    indented\n    ---\n")
    assert texts(plan, "bluesky") == ["above\n---\nbelow\n\nindented\n---"]


def test_text_right_above_dashes_is_a_setext_heading_as_the_archive_reads_it(tmp_path: Path) -> None:
    """`text\\n---` is CommonMark's setext `##` heading (the whole paragraph above the dashes): at the top level
    the archive reader starts a new thread there, like at every `##`; in a quote it is a lead line."""
    path = tmp_path / "archive.md"
    path.write_text("# Archive\n\n## First\n\nOpening.\n\nNot a\ncut\n---\n\nBody of the second.\n",
                    encoding="utf-8")
    archive = read_archive(path)
    assert [t.title for t in archive.threads] == ["First", "Not a cut"]
    assert texts(plan_thread(archive, archive.threads[0], OPTIONS), "x") == ["Opening."]
    assert texts(plan_thread(archive, archive.threads[1], OPTIONS), "x") == ["Body of the second."]
    nested = plan_of(tmp_path, "> Quoted lead\n> ---\n> text\n")
    assert texts(nested, "x") == ["Quoted lead\n“text”"]  # a lead line, like `####`


def test_rules_with_nothing_between_make_no_empty_post_but_a_warning(tmp_path: Path) -> None:
    body = "---\n\nOne.\n\n---\n\n---\n\nTwo.\n\n---\n"
    #        line 5      7        9       11      13      15 (the body starts at line 5)
    plan = plan_of(tmp_path, body)
    for platform in PLATFORMS:
        assert texts(plan, platform) == ["One.", "Two."]
    assert [(w.line, w.message.split(":")[0]) for w in plan.warnings] == [
        (5, "`---` right after the start of the thread, with nothing between them"),
        (11, "`---` right after the `---` at line 9, with nothing between them"),
        (15, "`---` at the end of the thread, with nothing after it"),
    ]
    assert plan.errors == []


def test_a_post_of_images_only_after_a_rule(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        image(tmp_path, name)
    plan = plan_of(tmp_path, "Text.\n\n---\n\n![one](a.png) ![two](b.png)\n\n---\n\nMore text.\n\n---\n\n![three](c.png)\n")
    for platform in PLATFORMS:
        posts = plan.platforms[platform].posts
        assert [(p.text, [i.alt for i in p.images]) for p in posts] == [
            ("Text.", []), ("", ["one", "two"]), ("More text.", []), ("", ["three"])], platform
    assert plan.errors == [] and plan.warnings == []


def test_images_after_a_rule_go_with_the_text_after_them_not_the_post_before(tmp_path: Path) -> None:
    image(tmp_path, "a.png")
    plan = plan_of(tmp_path, "Before.\n\n---\n\n![one](a.png)\n\nAfter.\n")
    for platform in PLATFORMS:
        posts = plan.platforms[platform].posts
        assert [(p.text, [i.alt for i in p.images]) for p in posts] == [("Before.", []), ("After.", ["one"])]


def test_a_thread_opening_with_an_image_only_post(tmp_path: Path) -> None:
    """What a backup writes for a post that was only a picture."""
    image(tmp_path, "a.png")
    plan = plan_of(tmp_path, "![one](a.png)\n\n---\n\nSecond post.\n")
    for platform in PLATFORMS:
        posts = plan.platforms[platform].posts
        assert [(p.text, [i.alt for i in p.images]) for p in posts] == [("", ["one"]), ("Second post.", [])]


def test_the_html_preview_shows_the_posts_the_rule_makes(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "First post here.\n\n---\n\nSecond post here.\n")
    page = render_html([plan])
    assert page.count('<span class="pos">1/2</span>') == 3 and page.count('<span class="pos">2/2</span>') == 3
    assert page.count("First post here.") == 3 and page.count("Second post here.") == 3


_WORD = st.sampled_from(["word", "longer-word", "日本語", "🧵", "e.g.", "end.", "https://example.com/a", "#tag",
                         "[link text](https://example.com/x)", "**bold**"])


@settings(max_examples=60, deadline=None)
@given(segments=st.lists(st.lists(st.lists(_WORD, min_size=1, max_size=40), min_size=1, max_size=3),
                         min_size=2, max_size=5),
       limit=st.integers(min_value=40, max_value=300), numbering=st.booleans())
def test_no_post_ever_spans_a_rule(tmp_path_factory, segments, limit: int, numbering: bool) -> None:
    """Each segment between rules becomes its own posts: a post's words all come from one segment, in order."""
    folder = tmp_path_factory.mktemp("rules")
    parts = []
    for s, paragraphs in enumerate(segments):
        parts.append("\n\n".join(" ".join(f"s{s}w{k}-{w}" for k, w in enumerate(words)) for words in paragraphs))
    body = "\n\n---\n\n".join(parts) + "\n"
    options = PlanOptions(decode_images=False, numbering=numbering, limits={p: limit for p in PLATFORMS})
    plan = plan_of(folder, body, options)
    for platform in PLATFORMS:
        seen: list[int] = []
        for post in plan.platforms[platform].posts:
            marks = {int(w.split("w", 1)[0][1:]) for w in post.text.split() if w.startswith("s") and "w" in w
                     and w.split("w", 1)[0][1:].isdigit()}
            assert len(marks) <= 1, (platform, post.text)
            seen.extend(marks)
        assert seen == sorted(seen) and set(seen) == set(range(len(segments))), platform
