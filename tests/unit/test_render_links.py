"""Links are posted as the author typed them: no percent-encoding, no punycode, `[url](url)` shown in full."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from crossposter.archive import read_archive
from crossposter.backup.markdown import link_markdown
from crossposter.markdown_dialect import href_as_typed
from crossposter.model import PLATFORMS, ThreadPlan
from crossposter.plan import PlanOptions, plan_thread

OPTIONS = PlanOptions(decode_images=False)


def plan_of(folder: Path, body: str, options: PlanOptions = OPTIONS) -> ThreadPlan:
    path = folder / "archive.md"
    path.write_text(f"# Archive\n\n## A thread\n\n{body}", encoding="utf-8")
    archive = read_archive(path)
    return plan_thread(archive, archive.threads[0], options)


def only_post(plan: ThreadPlan, platform: str):
    posts = plan.platforms[platform].posts
    assert len(posts) == 1, [p.text for p in posts]
    return posts[0]


def facet_values(post) -> list[tuple[str, str, str]]:
    raw = post.text.encode()
    return [(f.kind, raw[f.byte_start:f.byte_end].decode(), f.value) for f in post.facets]


LONG = "https://example.com/a/rather/long/path/to/a/page.html"


def test_a_link_whose_text_is_its_url_keeps_its_full_text_on_bluesky(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, f"See [{LONG}]({LONG}) now.\n")
    bluesky = only_post(plan, "bluesky")
    assert bluesky.text == f"See {LONG} now."
    assert facet_values(bluesky) == [("link", LONG, LONG)]
    for platform in ("mastodon", "x"):
        post = only_post(plan, platform)
        assert post.text == f"See {LONG} now." and post.links == [LONG]


def test_bare_urls_and_autolinks_are_still_shortened_on_bluesky(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, f"See {LONG} and <{LONG}>.\n")
    bluesky = only_post(plan, "bluesky")
    assert bluesky.text == "See example.com/a/rather/lon... and example.com/a/rather/lon....", bluesky.text
    assert [v for _, _, v in facet_values(bluesky)] == [LONG, LONG]


def test_non_ascii_urls_are_posted_as_typed_on_every_platform(tmp_path: Path) -> None:
    url = "https://例え.jp/パス/Würstchen_(Wurst)?q=ü&r=100%25"
    plan = plan_of(tmp_path, f"[Würstchen]({url}) and [{url}]({url}) and <{url}>\n\n[ref]\n\n[ref]: {url}\n")
    bluesky = plan.platforms["bluesky"].posts
    assert {f.value for p in bluesky for f in p.facets} == {url}
    for platform in ("mastodon", "x"):
        posts = plan.platforms[platform].posts
        assert [u for p in posts for u in p.links] == [url] * 4
        assert posts[0].text.startswith(f"Würstchen {url} and {url} and {url}")


def test_white_space_in_an_angle_bracket_destination_is_the_only_thing_encoded(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "[a file](<https://example.com/my file ü.pdf>)\n")
    assert [f.value for f in only_post(plan, "bluesky").facets] == ["https://example.com/my%20file%20ü.pdf"]
    assert href_as_typed("https://x.org/a\u2060b\tc") == "https://x.org/a%E2%81%A0b%09c"
    assert href_as_typed("https://ü.de/%C3%BC()") == "https://ü.de/%C3%BC()"


def test_image_paths_with_non_ascii_names_still_resolve(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "größe 1.png")
    plan = plan_of(tmp_path, "Text.\n\n![a chart](größe%201.png) ![the same](<größe 1.png>)\n")
    assert plan.errors == []
    assert [i.src for i in only_post(plan, "x").images] == ["größe%201.png", "größe%201.png"]


# Characters a facet URI holds in the wild: non-ASCII (IRIs: Bluesky's app puts the typed text in the facet),
# parentheses (Wikipedia), percent escapes and lone %, Markdown's own punctuation.
_URL_CHARS = st.sampled_from(list("aZ09-._~!$'()*+,;=:@/?#%[]\\`<>{}|^\"") + ["ü", "例", "ß", "🧵", "é", "%C3%BC",
                                                                              "%41", "%", "%%", "((", "))"])


@settings(max_examples=300, deadline=None)
@given(path=st.lists(_URL_CHARS, max_size=25).map("".join),
       text=st.sampled_from(["a link", "ü", "@not a mention", "x"]))
def test_a_bluesky_link_facet_uri_round_trips_through_the_archive(tmp_path_factory, path: str, text: str) -> None:
    """What a backup writes for a link facet (`backup.markdown.link_markdown`) reads back as the same URI."""
    uri = "https://example.com/" + path
    folder = tmp_path_factory.mktemp("links")
    plan = plan_of(folder, f"Before {link_markdown(text, uri)} after.\n")
    post = only_post(plan, "bluesky")
    assert post.text == f"Before {text} after."
    assert facet_values(post) == [("link", text, uri)]
    for platform in ("mastodon", "x"):
        assert only_post(plan, platform).links == [uri]
    assert plan.errors == []


def test_the_same_round_trip_for_a_url_shown_in_full(tmp_path: Path) -> None:
    for uri in ("https://de.wikipedia.org/wiki/Würstchen_(Lebensmittel)", "https://example.com/%E2%9C%93%",
                "https://例え.jp/a(b)c"):
        plan = plan_of(tmp_path, f"{link_markdown(uri, uri)}\n")
        assert facet_values(only_post(plan, "bluesky")) == [("link", uri, uri)]
        for platform in PLATFORMS:
            assert only_post(plan, platform).text == uri
